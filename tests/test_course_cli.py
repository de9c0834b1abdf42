"""``llmkit course`` commands on a copy of the course: what they do, and that they say only that."""

import subprocess
import sys

from tests import course_sim


def llmkit(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "llmkit.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def test_build_without_validation_status_and_grade_errors(tmp_path):
    root = course_sim.copy_course(tmp_path / "course")
    result = llmkit("course", "build", "04-attention", "--no-validate", "--course", str(root))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "generated 1 assignments: 04-attention" in result.stdout
    assert "no release contains solution code or hidden tests" in result.stdout
    assert "validates" not in result.stdout and "NOT validated (--no-validate)" in result.stdout
    assert "Warning" not in result.stdout + result.stderr, "library warnings leaked into the output"
    assert (root / "release" / "04-attention" / "04-attention.ipynb").is_file()
    assert llmkit("course", "status", "--course", str(root)).stdout.strip() == "no submissions yet"
    result = llmkit("course", "grade", "--course", str(root))
    assert result.returncode == 2 and result.stderr.startswith("error: No submissions to grade")
    assert "none waiting in the exchange" in result.stderr and len(result.stderr.strip().splitlines()) == 1

    # release: what is built goes out, what is not is named with the command that builds it
    result = llmkit("course", "release", "--course", str(root))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"released 04-attention to {root / 'exchange'}" in result.stdout
    assert "not built, so not released: 01-tokenization" in result.stdout
    assert "run `llmkit course build 01-tokenization" in result.stdout
    assert (root / "exchange" / "llmkit" / "outbound" / "04-attention" / "04-attention.ipynb").is_file()
    again = llmkit("course", "release", "04-attention", "--course", str(root))
    assert again.returncode == 0 and "04-attention was already released (--force replaces it)" in again.stdout
    unbuilt = llmkit("course", "release", "05-gpt-architecture", "--course", str(root))
    assert unbuilt.returncode == 2
    assert unbuilt.stderr.strip() == ("error: 05-gpt-architecture not built yet; run `llmkit course build "
                                      "05-gpt-architecture` first.")


def test_a_release_with_solution_code_is_refused(tmp_path):
    from llmkit_instructor.course import check_release

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "a.ipynb").write_text('{"cells": [{"source": "### BEGIN SOLUTION"}]}')
    assert check_release(tmp_path) and "BEGIN SOLUTION" in check_release(tmp_path)[0]


def test_student_setup_writes_the_students_nbgrader_config(tmp_path):
    from traitlets.config.loader import PyFileConfigLoader

    exchange = tmp_path / "exchange"
    exchange.mkdir()
    target = tmp_path / "home" / ".jupyter" / "nbgrader_config.py"
    result = llmkit("course", "student-setup", "--course-id", "llmkit", "--exchange", str(exchange),
                    "--config", str(target))
    assert result.returncode == 0, result.stderr
    assert f"wrote {target}" in result.stdout
    config = PyFileConfigLoader(target.name, path=str(target.parent)).load_config()
    assert config.CourseDirectory.course_id == "llmkit" and config.Exchange.root == str(exchange)
    # A second run replaces its own file; a file the student wrote is kept unless --force.
    assert llmkit("course", "student-setup", "--exchange", str(exchange), "--config", str(target)).returncode == 0
    target.write_text("c = get_config()\nc.Exchange.root = '/elsewhere'\n")
    kept = llmkit("course", "student-setup", "--exchange", str(exchange), "--config", str(target))
    assert kept.returncode == 2 and "already exists and was not written by llmkit" in kept.stderr
    assert "/elsewhere" in target.read_text()
    assert llmkit("course", "student-setup", "--exchange", str(exchange), "--config", str(target),
                  "--force").returncode == 0
    # The default place is Jupyter's config folder.
    home = tmp_path / "jupyter-config"
    env = {**__import__("os").environ, "JUPYTER_CONFIG_DIR": str(home)}
    assert llmkit("course", "student-setup", "--exchange", str(exchange), env=env).returncode == 0
    assert (home / "nbgrader_config.py").is_file()
    missing = llmkit("course", "student-setup", "--exchange", str(tmp_path / "nowhere"), "--config", str(target))
    assert missing.returncode == 2 and "no exchange folder at" in missing.stderr


def test_an_edition_is_released_and_collected_like_an_english_assignment(tmp_path):
    """`build --lang es` writes 04-attention-es; a plain `release` sends it out, and grade collects it."""
    import shutil

    from llmkit_instructor.course import built, every_assignment

    root = course_sim.copy_course(tmp_path / "course")
    shutil.copytree(course_sim.COURSE / "locale", root / "locale")
    result = llmkit("course", "build", "--lang", "es", "04-attention", "--no-validate", "--course", str(root))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "04-attention-es" in every_assignment(root) and built(root) == ["04-attention-es"]
    result = llmkit("course", "release", "--course", str(root))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"released 04-attention-es to {root / 'exchange'}" in result.stdout
    assert (root / "exchange" / "llmkit" / "outbound" / "04-attention-es" / "04-attention-es.ipynb").is_file()

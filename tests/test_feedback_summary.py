"""Feedback a student reads in ten seconds, and the Validate dialog's per-exercise summary.

A graded notebook made here (headings, a passing and a failing visible test, a failing hidden test
with a grader traceback that names instructor paths) goes through the course's feedback
preprocessors and template, configured as ``course/nbgrader_config.py`` configures them.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from nbgrader.utils import compute_checksum
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from llmkit_instructor.grading.feedback import HIDDEN_NOTE, HideGraderInternals, SummarizeExercises
from llmkit.validate_summary import VALIDATE_WIDTH, ValidateSummary

COURSE = Path(__file__).resolve().parent.parent / "course"
VISIBLE_DIAGNOSIS = ("the first token's output for seed 123: your code gave [0.3071, 0.823], expected [0.2996, "
                     "0.8053]; likely mistake: the scores are not divided by sqrt(d_out); divide by "
                     "keys.shape[-1] ** 0.5.")
HIDDEN_DIAGNOSIS = "CausalAttention's output differs; Likely mistake: each token sees one future token."
GRADER_TRACEBACK = ["Traceback (most recent call last):",
                    '  File "/work/main/llmkit_instructor/grading/attention.py", line 88, in check_causal_attention',
                    "    expected = reference(x)", f"GradingError: {HIDDEN_DIAGNOSIS}"]


def _test_cell(grade_id, source, points, score, error=None, traceback=None):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": grade_id,
                                 "points": points, "score": score, "schema_version": 3}
    if error:
        cell.outputs = [nbformat.NotebookNode(output_type="error", ename="CheckFailed", evalue=error,
                                              traceback=traceback or [f"CheckFailed: {error}"])]
    return cell


def graded_notebook():
    return new_notebook(cells=[
        new_markdown_cell("# Stage 4 — Attention\n\nIntro."),
        new_markdown_cell("## 1. Self-attention with `nn.Parameter`\n\nText."),
        _test_cell("v1-visible", 'with visible_test("SelfAttention_v1"):\n    pass', 1, 0, VISIBLE_DIAGNOSIS),
        _test_cell("v1-hidden", "# Hidden tests run when your work is graded.\n### BEGIN HIDDEN TESTS\n"
                   "from llmkit_instructor.grading.attention import check_self_attention_v1\n"
                   "check_self_attention_v1(SelfAttention_v1)\n### END HIDDEN TESTS", 2, 2),
        new_markdown_cell("## 3. Causal attention\n\nText."),
        _test_cell("ca-visible", "print('ok')", 1, 1),
        _test_cell("ca-hidden", "# Hidden tests run when your work is graded.\n### BEGIN HIDDEN TESTS\n"
                   "check_causal_attention(CausalAttention)\n### END HIDDEN TESTS", 2, 0,
                   HIDDEN_DIAGNOSIS, GRADER_TRACEBACK),
    ])


def _course_exporter():
    """An HTMLExporter with the course's feedback settings (template and its folders)."""
    from nbconvert import HTMLExporter

    import nbgrader

    course = PyFileConfigLoader("nbgrader_config.py", path=str(COURSE)).load_config()
    config = Config({"HTMLExporter": dict(course.HTMLExporter)})
    # What nbgrader's GenerateFeedback adds itself: the folder of the page's bootstrap.min.css.
    css = Path(nbgrader.__file__).parent / "server_extensions/formgrader/static/node_modules/bootstrap/dist/css"
    config.HTMLExporter.extra_template_paths = [str(css)]
    return HTMLExporter(config=config)


def feedback_page(nb) -> str:
    resources = {"nbgrader": {"notebook": "04-attention", "assignment": "04-attention", "score": 3,
                              "max_score": 6, "late_penalty": 0}}
    for preprocessor in (HideGraderInternals(), SummarizeExercises()):
        nb, resources = preprocessor.preprocess(nb, resources)
    page, _ = _course_exporter().from_notebook_node(nb, resources=resources)
    return page


def _text(page: str) -> str:
    page = re.sub(r"<(style|script)\b.*?</\1>", "", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_the_page_opens_with_each_exercise_its_points_and_its_diagnosis():
    text = _text(feedback_page(graded_notebook()))
    start = text.index("Your results: 3 / 6 points")
    first = text.index("1. Self-attention with nn.Parameter 2 / 3 points")
    diagnosis = text.index("Visible test: " + VISIBLE_DIAGNOSIS)
    second = text.index("3. Causal attention 1 / 3 points")
    hidden = text.index("Hidden test: " + HIDDEN_DIAGNOSIS)
    notebook = text.index("Intro.")
    assert start < first < diagnosis < second < hidden < notebook, "the summary comes before the notebook"


def test_the_page_shows_no_traceback_path_or_hidden_test_code():
    page = feedback_page(graded_notebook())
    text = _text(page)
    for leak in ("Traceback", "/work/", "llmkit_instructor/grading", "BEGIN HIDDEN TESTS", "check_causal_attention",
                 "check_self_attention_v1", "expected = reference(x)"):
        assert leak not in text, f"the feedback shows {leak!r}"
    assert HIDDEN_NOTE.lstrip("# ") in text


def test_outputs_wrap_instead_of_running_off_the_page():
    page = feedback_page(graded_notebook())
    style = " ".join(re.findall(r"<style[^>]*>(.*?)</style>", page, flags=re.S))
    assert re.search(r"output_subarea pre[^{]*\{[^}]*white-space: pre-wrap", style), "error outputs must wrap"
    assert "overflow-wrap: anywhere" in style


def test_validate_shows_each_failed_test_as_its_exercise_and_one_wrapped_sentence():
    nb = graded_notebook()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.metadata["nbgrader"]["checksum"] = compute_checksum(cell)
    tampered = nb.cells[5]
    tampered.outputs = nb.cells[2].outputs
    tampered.source += "\n# changed by the student"
    nb, _ = ValidateSummary().preprocess(nb, {})
    failed = nb.cells[2]
    assert failed.source == "1. Self-attention with nn.Parameter: test (1 point)"
    assert failed.metadata["nbgrader"]["checksum"] == compute_checksum(failed), "not reported as changed"
    lines = failed.outputs[0]["traceback"]
    assert " ".join(lines) == VISIBLE_DIAGNOSIS and all(len(line) <= VALIDATE_WIDTH for line in lines)
    assert "changed by the student" in tampered.source, "a changed cell keeps its code: nbgrader reports it"
    assert "Traceback" not in " ".join(nb.cells[6].outputs[0]["traceback"])


def test_the_course_and_a_students_setup_both_use_the_validate_summary(tmp_path):
    from llmkit.student import student_setup

    course = PyFileConfigLoader("nbgrader_config.py", path=str(COURSE)).load_config()
    assert ValidateSummary in course.Validator.preprocessors
    (tmp_path / "exchange").mkdir()
    written = student_setup("llmkit", tmp_path / "exchange", tmp_path / "nbgrader_config.py")
    student = PyFileConfigLoader(written.name, path=str(written.parent)).load_config()
    assert ValidateSummary in student.Validator.preprocessors
    from nbgrader.validator import Validator  # the Validator nbgrader makes takes it (its trait is not configurable by default)

    for config in (course, student):
        assert Validator(config=config).preprocessors[-1] is ValidateSummary

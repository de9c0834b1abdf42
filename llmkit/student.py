"""The student's side of a course: ``llmkit course student-setup`` writes the one config file a student needs.

JupyterLab's Assignments tab (nbgrader's lab extension) lists a course once ``nbgrader_config.py``
names its id and its exchange folder. This module is in the kit, not in the instructor package: a
student's environment has no grading internals.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import LLMKitError

SETUP_MARK = "# written by `llmkit course student-setup`"


def student_config_path() -> Path:
    from jupyter_core.paths import jupyter_config_dir

    return Path(jupyter_config_dir()) / "nbgrader_config.py"


def student_config(course_id: str, exchange: Path) -> str:
    return (f"{SETUP_MARK}: where JupyterLab's Assignments tab finds the course.\n"
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.course_id = {course_id!r}\n"
            f"c.Exchange.root = {str(exchange)!r}\n"
            "# The Validate button: each failed test as its exercise's title and one sentence.\n"
            "from llmkit.validate_summary import use_in_validate\n"
            "use_in_validate(c)\n")


def student_setup(course_id: str, exchange: Path | str, path: Path | str | None = None,
                  force: bool = False) -> Path:
    """Write a student's nbgrader_config.py (default ~/.jupyter/nbgrader_config.py); returns its path."""
    exchange = Path(exchange).expanduser().resolve()
    if not exchange.is_dir():
        raise LLMKitError(f"no exchange folder at {exchange}; ask your instructor for the course's exchange path")
    if not os.access(exchange, os.R_OK | os.X_OK):
        raise LLMKitError(f"cannot read the exchange folder {exchange}; ask your instructor to make it readable "
                          "(nbgrader's exchange is shared: chmod 777)")
    path = Path(path).expanduser() if path else student_config_path()
    text = student_config(course_id, exchange)
    if path.exists() and not force and path.read_text() != text and SETUP_MARK not in path.read_text():
        raise LLMKitError(f"{path} already exists and was not written by llmkit; add --force to replace it, "
                          "or add its two settings yourself (CourseDirectory.course_id, Exchange.root)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path

"""The Validate button's summary: each failed test as its exercise's title and one wrapped sentence.

nbgrader's ``validate`` (the command and JupyterLab's Validate button) shows every failed test cell
with its whole code and error. With ``ValidateSummary`` last in ``Validator.preprocessors`` (the
course's ``nbgrader_config.py`` and the file ``llmkit course student-setup`` writes), a failed cell
reads as ``3. Causal attention: test (1 point)`` and the visible test's one-sentence diagnosis,
wrapped so that nbgrader's line cut never hides its end.

Light on purpose: it runs in a student's Jupyter server, so it imports nbgrader and the i18n
lookup, never torch or the grader.
"""

from __future__ import annotations

import re
import textwrap

from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import compute_checksum

from llmkit.i18n.runtime import language_of, translator

VALIDATE_WIDTH = 84  # nbgrader validate cuts longer lines with "..." (its width is 90, minus an indent)

# An absolute path of two or more parts (an instructor's or the kit's file); the file name stays.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.+@-]+/)+([\w.+@-]+)")
_HEADING = re.compile(r"^(#{2,3})\s+(.+?)\s*#*\s*$", re.M)


def without_paths(text: str) -> str:
    """``/home/teacher/course/x.py`` -> ``x.py``: outputs keep the file name, never where it lives."""
    return _ABSOLUTE_PATH.sub(r"\1", text)


def exercise_title(markdown: str) -> str | None:
    """The first ``##`` or ``###`` heading of a markdown cell (the notebook's ``#`` title is not an exercise)."""
    found = _HEADING.search(markdown)
    return found.group(2).replace("`", "").strip() if found else None  # plain words: no code marks


def is_test_cell(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _points(x: float) -> str:
    return f"{x:g}"


class ValidateSummary(NbGraderPreprocessor):
    """After validation ran the notebook: a failed test cell reads as its exercise and one wrapped sentence.

    Its code is replaced by ``<exercise title>: test (N points)``; a cell whose checksum already
    differs from the instructor's keeps its code, so nbgrader still reports it as changed.
    """

    def preprocess(self, nb, resources):
        _ = translator(language_of(str(resources.get("metadata", {}).get("name", "") or "")))
        title = ""
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                title = exercise_title(cell.source) or title
                continue
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if not is_test_cell(cell) or not errors:
                continue
            for output in errors:
                sentence = without_paths(str(output.get("evalue", "")).strip() or str(output.get("ename", "")))
                output["traceback"] = textwrap.wrap(sentence, VALIDATE_WIDTH) or [sentence]
            meta = cell.metadata["nbgrader"]
            if meta.get("checksum") == compute_checksum(cell):  # the instructor's cell, untouched
                points = float(meta.get("points") or 0)
                cell.source = (_("{title}: test ({points} point)") if points == 1 else
                               _("{title}: test ({points} points)")).format(title=title or _("Tests"),
                                                                           points=_points(points))
                meta["checksum"] = compute_checksum(cell)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):  # pragma: no cover - preprocess does the work
        return cell, resources


def use_in_validate(c) -> None:
    """Put ``ValidateSummary`` last in nbgrader's Validator, from an ``nbgrader_config.py``.

    nbgrader 0.9 keeps ``Validator.preprocessors`` out of its configuration (the trait is not tagged
    ``config=True``), so a plain ``c.Validator.preprocessors = [...]`` is dropped with a warning. The
    tag is added here, before the Validator is made, and the list set as usual.
    """
    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, Execute
    from nbgrader.validator import Validator

    Validator.class_traits()["preprocessors"].tag(config=True)
    c.Validator.preprocessors = [CheckCellMetadata, ClearOutput, Execute, ValidateSummary]

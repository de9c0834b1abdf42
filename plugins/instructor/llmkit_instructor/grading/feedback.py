"""Feedback a student reads in ten seconds, and a Validate dialog that summarises per exercise.

Runs in nbgrader's ``GenerateFeedback`` (configured in ``course/nbgrader_config.py``):

- ``HideGraderInternals``: hidden test code is replaced by a one-line note, every error keeps only
  its one-line message (tracebacks name the grader's files and, for hidden tests, would show their
  code), and absolute paths in outputs are cut to their file name;
- ``SummarizeExercises`` (after nbgrader's ``GetGrades``): per exercise its title, points earned
  and possible, and the diagnosis of each failed test, as HTML that the course's feedback template
  (``templates/llmkit_feedback``) puts at the top of the page, wrapped, above the notebook.

The Validate button's summary is ``llmkit.validate_summary`` (light: it runs in a student's server).
"""

from __future__ import annotations

import html
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor

from llmkit.i18n.runtime import N_, language_of, translator
from llmkit.validate_summary import exercise_title, without_paths

from .trusted import HIDDEN_BEGIN, is_test_cell, without_hidden

HIDDEN_NOTE = "# Hidden tests ran here, in the grader; their verdict and diagnosis are below."
TEMPLATES = Path(__file__).resolve().parent / "templates"  # the feedback template's base folder
MAX_DIAGNOSIS = 600  # characters of one test's diagnosis in the summary

def _errors(cell) -> list[dict]:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def _diagnosis(cell) -> str:
    """The one sentence a failed test cell left: its error's message, without the error's class name."""
    for output in _errors(cell):
        message = str(output.get("evalue", "")).strip() or str(output.get("ename", ""))
        return message[:MAX_DIAGNOSIS] + ("…" if len(message) > MAX_DIAGNOSIS else "")
    return ""


class HideGraderInternals(NbGraderPreprocessor):
    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            if is_test_cell(cell) and HIDDEN_BEGIN in cell.source:
                visible = without_hidden(cell.source).rstrip()
                cell.source = f"{visible}\n{HIDDEN_NOTE}" if visible.strip() else HIDDEN_NOTE
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["evalue"] = without_paths(str(output.get("evalue", "")))
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output['evalue']}"]
                elif output.get("output_type") == "stream":
                    output["text"] = without_paths(str(output.get("text", "")))
                elif "text/plain" in output.get("data", {}):
                    output["data"]["text/plain"] = without_paths(str(output["data"]["text/plain"]))
        return cell, resources


# --------------------------------------------------------------------------- per exercise


def exercises(nb) -> list[dict]:
    """The notebook's exercises in order: title, points earned and possible, and failed tests' diagnoses.

    An exercise is what lies between two headings; its points are those of the test cells under it.
    """
    found: list[dict] = []
    title = None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            title = exercise_title(cell.source) or title
            continue
        if not is_test_cell(cell):
            continue
        meta = cell.metadata.get("nbgrader", {})
        if not found or found[-1]["title"] != title:
            found.append({"title": title or "", "earned": 0.0, "possible": 0.0, "failed": []})
        exercise = found[-1]
        points = float(meta.get("points") or 0)
        score = meta.get("score")
        earned = float(score) if score is not None else (0.0 if _errors(cell) else points)
        exercise["earned"] += earned
        exercise["possible"] += points
        if earned < points:
            hidden = HIDDEN_BEGIN in cell.source or cell.source.rstrip().endswith(HIDDEN_NOTE)
            exercise["failed"].append({"hidden": hidden,
                                       "diagnosis": _diagnosis(cell) or N_("this test did not pass")})
    return found


def _points(x: float) -> str:
    return f"{x:g}"


def summary_html(nb, lang: str | None = None) -> str:
    """The summary at the top of the feedback page: one block per exercise, diagnosis first."""
    _ = translator(lang)
    found = exercises(nb)
    earned, possible = sum(e["earned"] for e in found), sum(e["possible"] for e in found)
    heading = _("Your results: {earned} / {possible} points").format(earned=_points(earned),
                                                                   possible=_points(possible))
    parts = ['<section class="llmkit-summary">', f"<h2>{html.escape(heading)}</h2>"]
    for exercise in found:
        state = "passed" if exercise["earned"] >= exercise["possible"] else \
            ("partial" if exercise["earned"] > 0 else "failed")
        title = exercise["title"] or _("Tests")
        points = _("{earned} / {possible} points").format(earned=_points(exercise["earned"]),
                                                          possible=_points(exercise["possible"]))
        parts.append(f'<div class="llmkit-exercise llmkit-{state}">')
        parts.append(f'<h3>{html.escape(title)} <span class="llmkit-points">{html.escape(points)}</span></h3>')
        for failure in exercise["failed"]:
            which = _("Hidden test") if failure["hidden"] else _("Visible test")
            diagnosis = without_paths(_(failure["diagnosis"]))
            parts.append(f'<p class="llmkit-diagnosis"><b>{html.escape(which)}:</b> {html.escape(diagnosis)}</p>')
        if not exercise["failed"]:
            passed = _("All tests passed.")
            parts.append(f'<p class="llmkit-diagnosis">{html.escape(passed)}</p>')
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


class SummarizeExercises(NbGraderPreprocessor):
    """Puts ``summary_html`` in the resources, for the feedback template to show first."""

    def preprocess(self, nb, resources):
        assignment = resources.get("nbgrader", {}).get("assignment", "") or ""
        resources["llmkit_summary"] = summary_html(nb, language_of(assignment) if assignment else None)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):  # pragma: no cover - preprocess does the work
        return cell, resources

"""Feedback that shows the diagnosis and the student's own outputs, never the grader's internals.

Runs in nbgrader's ``GenerateFeedback`` (configured in ``course/nbgrader_config.py``): hidden test
code is replaced by a one-line note, and every error keeps only its one-line message (tracebacks
name the grader's files and, for hidden tests, would show their code).
"""

from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor

from .trusted import HIDDEN_BEGIN, is_test_cell, without_hidden

HIDDEN_NOTE = "# Hidden tests ran here, in the grader; their verdict and diagnosis are below."


class HideGraderInternals(NbGraderPreprocessor):
    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            if is_test_cell(cell) and HIDDEN_BEGIN in cell.source:
                visible = without_hidden(cell.source).rstrip()
                cell.source = f"{visible}\n{HIDDEN_NOTE}" if visible.strip() else HIDDEN_NOTE
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources

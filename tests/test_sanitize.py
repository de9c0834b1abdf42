"""Active content from a student never reaches the instructor's or the student's browser.

``sanitize_notebook`` runs on every graded notebook (``TrustedExecute``); the rendered HTML of the
result is what the formgrader and the feedback show. The attack suite grades a notebook with the
same outputs through the real sandbox (``tests/attacks.py``: ``active-content``).
"""

import base64

import nbformat
from nbconvert import HTMLExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from llmkit_instructor.grading.sanitize import sanitize_notebook

TOKEN = "FORGED_BY_STUDENT"
SVG = f'<svg xmlns="http://www.w3.org/2000/svg"><script>{TOKEN}()</script></svg>'
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def _hostile_notebook():
    outputs = [
        new_output("display_data", data={"text/html": f"<b>bold</b><script>{TOKEN}()</script>", "text/plain": "x"}),
        new_output("display_data", data={"application/javascript": f"{TOKEN}()"}),
        new_output("display_data", data={"image/svg+xml": SVG}),
        new_output("display_data", data={"text/markdown": f'<img src="x" onerror="{TOKEN}()"> [go](javascript:{TOKEN}())'}),
        new_output("execute_result", data={"text/html": "<table><tr><td>1</td></tr></table>"}, execution_count=1),
        new_output("display_data", data={"image/png": PNG}),
    ]
    instructor = new_markdown_cell(f"<details><summary>hint</summary>kept</details>",
                                   metadata={"nbgrader": {"grade_id": "intro", "locked": True}})
    student = new_markdown_cell(f'My answer <img src="x" onerror="{TOKEN}()"> and [a link](javascript:{TOKEN}())')
    plain = new_markdown_cell("Plain *Markdown* with `<|endoftext|>` and x < y stays as written.")
    attached = new_markdown_cell("![pic](attachment:a.svg) ![ok](attachment:b.png)",
                                 attachments={"a.svg": {"image/svg+xml": base64.b64encode(SVG.encode()).decode()},
                                              "b.png": {"image/png": PNG}})
    nb = new_notebook(cells=[instructor, new_code_cell("display()", outputs=outputs), student, plain, attached])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {TOKEN: {}}}}
    return nb, instructor


def _graded():
    nb, instructor = _hostile_notebook()
    changed = sanitize_notebook(nb, lambda cell: cell is instructor)
    return nb, changed


def test_outputs_keep_only_inert_types():
    nb, changed = _graded()
    kinds = [sorted(o.get("data", {})) for o in nb.cells[1].outputs]
    assert kinds == [["text/html", "text/plain"], ["text/plain"], ["text/plain"], ["text/markdown"], ["text/html"],
                     ["image/png"]]
    assert nb.cells[1].outputs[1].data["text/plain"] == "[application/javascript output not shown: it could run code]"
    assert "<script>" not in nb.cells[1].outputs[0].data["text/html"]
    assert "javascript:" not in nb.cells[1].outputs[3].data["text/markdown"]
    assert "onerror" not in nb.cells[1].outputs[3].data["text/markdown"]
    assert "<td>1</td>" in nb.cells[1].outputs[4].data["text/html"]
    assert changed >= 2


def test_student_markdown_is_neutralised_and_plain_markdown_untouched():
    nb, _ = _graded()
    assert 'onerror="' not in nb.cells[2].source and "javascript:" not in nb.cells[2].source
    assert nb.cells[3].source == "Plain *Markdown* with `<|endoftext|>` and x < y stays as written."
    assert nb.cells[0].source.startswith("<details>")  # the instructor's cell, byte for byte
    assert sorted(nb.cells[4].attachments) == ["a.svg", "b.png"]  # shown through <img>, where an SVG runs nothing
    assert "widgets" not in nb.metadata


def test_the_rendered_page_runs_nothing_of_the_student():
    nb, _ = _graded()
    html, _ = HTMLExporter().from_notebook_node(nbformat.from_dict(nb))
    for marker in (f"<script>{TOKEN}", f"onerror=\"{TOKEN}", f"javascript:{TOKEN}", f"{TOKEN}()</script>"):
        assert marker not in html, marker
    assert "<td>1</td>" in html  # tables still render
    assert 'src="data:image/svg+xml;base64,' in html and "<svg" not in html.split("</style>")[-1]

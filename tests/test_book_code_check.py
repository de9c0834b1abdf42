"""tools/book_code_check.py: how it finds the book's definitions and builds a cell from them.

The book's repository is not needed: a tiny stand-in with the same folder layout is written here.
Grading itself is the course's own trusted path, exercised by tests/test_course_e2e.py.
"""

import ast
import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

TOOL = Path(__file__).resolve().parent.parent / "tools" / "book_code_check.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("book_code_check", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _fake_book(root: Path) -> Path:
    main = root / "ch04" / "01_main-chapter-code"
    main.mkdir(parents=True)
    (main / "gpt.py").write_text(
        "import torch\nimport torch.nn as nn\nfrom previous_chapters import Helper\n\n"
        "def scale(x):\n    return 2 * x\n\n"
        "class Doubler(nn.Module):\n    def __init__(self, width, bias=True):\n        super().__init__()\n"
        "        self.helper = Helper()\n\n    def forward(self, x):\n        return scale(torch.as_tensor(x))\n")
    (main / "previous_chapters.py").write_text(
        "class Helper:\n    pass\n\nclass Doubler:\n    pass  # an older copy: gpt.py's comes first\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%matplotlib inline\nimport re\n"),
                nbformat.v4.new_code_cell("def tokens(text):\n    return re.split(r'\\s', text)\n")]
    nbformat.write(nb, main / "ch04.ipynb")
    return root


def test_definitions_come_from_the_chapter_scripts_first_then_its_notebook(tool, tmp_path):
    defs = tool.book_definitions(_fake_book(tmp_path), "ch04")
    assert defs["Doubler"].origin.endswith("gpt.py")
    assert defs["Doubler"].params == ["width", "bias"]
    assert defs["Helper"].origin.endswith("previous_chapters.py")
    assert defs["tokens"].origin.endswith("ch04.ipynb#cell1")
    assert defs["tokens"].imports["re"] == "import re"
    assert "previous_chapters" not in " ".join(defs["Doubler"].imports.values())


def test_a_book_cell_has_its_imports_helpers_and_our_extra_definitions(tool, tmp_path):
    defs = tool.book_definitions(_fake_book(tmp_path), "ch04")
    ours = "class Doubler:\n    pass\n\ndef describe(d):\n    return 'doubles'\n"
    cell = tool.book_cell(["Doubler"], ours, defs, available={"Helper"})
    tree = ast.parse(cell)
    top = [getattr(n, "name", None) for n in tree.body]
    assert top.count("Doubler") == 1 and "describe" in top and "scale" in top
    assert "Helper" not in top  # the notebook already binds it
    assert "import torch" in cell and "import torch.nn as nn" in cell
    namespace = {"Helper": object}
    exec(compile(cell, "<cell>", "exec"), namespace)
    assert namespace["Doubler"](3).forward(4).item() == 8


def test_extra_course_parameters_are_reported(tool):
    ex = tool.Exercise("generate", ["generate"], ["generate"], {"generate": ["model", "idx", "use_cache"]},
                       {"generate": ["model", "idx"]}, {"generate": "gpt_generate.py"})
    assert tool.extra_parameters(ex) == {"generate": ["use_cache"]}
    assert tool.signature_notes(ex) == ["generate: course (model, idx, use_cache) vs book (model, idx)"]


def test_a_folder_that_is_not_the_book_is_refused_in_one_line(tool, tmp_path, capsys):
    assert tool.main(["--book-repo", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rasbt/LLMs-from-scratch" in err


def test_an_unknown_assignment_is_refused_in_one_line(tool, tmp_path, capsys):
    book = _fake_book(tmp_path)
    assert tool.main(["--book-repo", str(book), "--assignments", "10-nothing"]) == 2
    assert "unknown assignment(s) 10-nothing" in capsys.readouterr().err


def test_methods_the_student_writes_that_the_book_lacks_are_reported(tool):
    ours = ("class Layer:\n    def forward(self, x):\n        ### BEGIN SOLUTION\n        return x\n"
            "        ### END SOLUTION\n\n    def delta(self):\n        ### BEGIN SOLUTION\n        return 0\n"
            "        ### END SOLUTION\n\n    def save(self):\n        return None\n")
    book = "class Layer:\n    def forward(self, x):\n        return x\n"
    assert tool.asked_methods(ours, book) == ["delta"]  # save() is given code, not asked of the student

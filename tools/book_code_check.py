"""Grade the book's published chapter code as if a student had pasted it into every exercise.

Usage (from the repository root, with the course environment on PATH):

    PATH=$PWD/.venv/bin:$PATH python tools/book_code_check.py --book-repo /tmp/book [--assignments 01-tokenization,...]

``--book-repo`` is a checkout (or extract) of the book's public repository, rasbt/LLMs-from-scratch.
Nothing from it is copied into this repository: the definitions are read from that folder, placed in
a submission on a scratch copy of the course, and graded through the real trusted path
(``llmkit_instructor.course.build`` / ``llmkit_instructor.course.grade``), exactly as a student's notebook would be.

For every exercise the table shows the points earned and, for each lost point, the feedback line.
Exercises whose graded names the book does not define are listed as "course asks for more"; those cells
keep our own solution so the rest of the notebook still runs. Exit status 1 when the book's code loses a
point in an exercise whose names it defines all of, 2 on bad input.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmkit_instructor import course  # noqa: E402
from llmkit_instructor.grading.trusted import graded_names, is_test_cell  # noqa: E402
from tests import course_sim  # noqa: E402

# Which chapter folder of the book each assignment follows; the others are searched after it.
CHAPTER_OF = {"01": "ch02", "02": "ch02", "03": "ch02", "04": "ch03", "05": "ch04", "06": "ch05",
              "07": "appendix-E", "08": "ch06", "09": "ch07"}
SEARCH_DIRS = ("01_main-chapter-code", "02_bonus_additional-experiments")
# The book's own helper modules: a name imported from them is looked up among the book's definitions.
BOOK_MODULES = {"previous_chapters", "gpt_download", "gpt", "gpt_generate", "gpt_train",
                "gpt_class_finetune", "gpt_instruction_finetuning", "ollama_evaluate"}
STUDENT = "book"


@dataclass
class Definition:
    name: str
    source: str
    origin: str  # file (and cell) it came from
    params: list[str]
    imports: dict[str, str] = field(default_factory=dict)  # name -> import statement of its file


def _params(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ClassDef):
        init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        return _params(init)[1:] if init else []
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
    return []


def _imports_of(tree: ast.Module) -> dict[str, str]:
    """Local name -> the import line that binds it, for every import anywhere at a module's top level."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            for alias in node.names:
                root = (module or alias.name).split(".")[0]
                if root in BOOK_MODULES:
                    continue  # resolved through the book's definitions instead
                line = (f"from {module} import {alias.name}" if module else f"import {alias.name}") + \
                    (f" as {alias.asname}" if alias.asname else "")
                found[(alias.asname or alias.name).split(".")[0]] = line
    return found


def _code_units(path: Path) -> list[tuple[str, str]]:
    """(origin, python source) pieces of one book file: the file itself, or each code cell of a notebook."""
    if path.suffix == ".py":
        return [(str(path), path.read_text(encoding="utf-8"))]
    nb = nbformat.read(path, 4)
    units = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            text = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                             for line in cell.source.splitlines())
            units.append((f"{path}#cell{i}", text))
    return units


def _book_files(book: Path, chapter: str) -> list[Path]:
    """The chapter's scripts first, its previous_chapters.py next, then its notebooks (exercise
    solutions last), and then every other chapter in the same order."""
    chapters = [chapter] + sorted({c for c in CHAPTER_OF.values()} - {chapter})
    ordered = []
    for ch in chapters:
        for sub in SEARCH_DIRS:
            folder = book / ch / sub
            if not folder.is_dir():
                continue
            scripts = sorted(p for p in folder.glob("*.py") if p.name not in ("tests.py",))
            # The chapter's main scripts before its experiment variants and its copies of earlier chapters.
            scripts.sort(key=lambda p: ("exercise" in p.name, p.name == "previous_chapters.py"))
            notebooks = sorted(folder.glob("*.ipynb"), key=lambda p: ("exercise" in p.name, p.name))
            ordered += scripts + notebooks
    return ordered


def book_definitions(book: Path, chapter: str) -> dict[str, Definition]:
    """The first definition of each top-level class/function in search order (a notebook's last one)."""
    found: dict[str, Definition] = {}
    for path in _book_files(book, chapter):
        units = _code_units(path)
        file_defs: dict[str, Definition] = {}
        trees = []
        for origin, text in units:
            try:
                trees.append((origin, text, ast.parse(text)))
            except SyntaxError:
                continue
        imports = {}
        for _, _, tree in trees:
            imports.update(_imports_of(tree))
        for origin, text, tree in trees:
            for node in tree.body:
                if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                    file_defs[node.name] = Definition(node.name, ast.get_source_segment(text, node),
                                                      origin, _params(node), imports)
        for name, definition in file_defs.items():
            found.setdefault(name, definition)
    return found


def _loaded_names(source: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}


def _top_level_bound(source: str) -> set[str]:
    try:
        tree = ast.parse("\n".join("" if line.lstrip().startswith(("%", "!")) else line
                                   for line in source.splitlines()))
    except SyntaxError:
        return set()
    bound = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return bound


def book_cell(names: list[str], ours: str, defs: dict[str, Definition], available: set[str]) -> str:
    """A solution cell holding the book's definitions of ``names``, the imports and book helpers they
    need, and whatever else our solution cell binds that the book does not (helpers later cells use)."""
    wanted, helpers, imports = list(names), [], []
    seen = set(names)
    queue = list(names)
    while queue:  # the book's helpers the definitions call, when the notebook does not provide them
        definition = defs[queue.pop(0)]
        for free in sorted(_loaded_names(definition.source)):
            if free in seen or hasattr(builtins, free):
                continue
            seen.add(free)
            if free in definition.imports:
                imports.append(definition.imports[free])
            elif free in defs and free not in available:
                helpers.append(free)
                queue.append(free)
    ours_tree = ast.parse(ours)
    extras = [ast.get_source_segment(ours, n) for n in ours_tree.body
              if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name not in names]
    parts = sorted(set(imports)) + extras + [defs[n].source for n in helpers] + [defs[n].source for n in wanted]
    return "\n\n".join(parts) + "\n"


@dataclass
class Exercise:
    grade_id: str
    names: list[str]
    from_book: list[str]
    ours_params: dict[str, list[str]]
    book_params: dict[str, list[str]]
    origins: dict[str, str]
    extra_methods: dict[str, list[str]] = field(default_factory=dict)


def build_submission(root: Path, assignment: str, defs: dict[str, Definition]) -> tuple[nbformat.NotebookNode,
                                                                                      list[Exercise]]:
    nb = course_sim.solved(root, assignment)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    tests = [c.source for c in cells if is_test_cell(c)]
    graded = graded_names(tests)
    available = set()
    for cell in cells:
        available |= _top_level_bound(cell.source)
    exercises = []
    for cell in cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution"):
            continue
        tree = ast.parse(cell.source)
        ours = {n.name: n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
        names = [n for n in ours if n in graded]
        from_book = [n for n in names if n in defs]
        exercise = Exercise(meta["grade_id"], names, from_book, {n: _params(ours[n]) for n in names},
                            {n: defs[n].params for n in from_book},
                            {n: str(Path(defs[n].origin)) for n in from_book})
        for n in from_book:
            if isinstance(ours[n], ast.ClassDef):
                missing = asked_methods(ast.get_source_segment(cell.source, ours[n]), defs[n].source)
                if missing:
                    exercise.extra_methods[n] = missing
        exercises.append(exercise)
        if from_book:
            cell.source = book_cell(from_book, cell.source, defs, available - set(from_book))
    return nb, exercises


def _methods(source: str) -> dict[str, str]:
    """Method name -> its source, for the first class in ``source``."""
    cls = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef))
    return {n.name: ast.get_source_segment(source, n) for n in cls.body if isinstance(n, ast.FunctionDef)}


def asked_methods(ours_source: str, book_source: str) -> list[str]:
    """Methods the student writes in our class (they hold a solution region) that the book's class lacks."""
    book = _methods(book_source)
    return [m for m, code in _methods(ours_source).items() if "BEGIN SOLUTION" in code and m not in book]


def _feedback_lines(root: Path, assignment: str) -> dict[str, str]:
    """grade_id -> the last line the grader wrote into that test cell (the verdict a student reads)."""
    path = next((root / "autograded" / STUDENT / assignment).glob("*.ipynb"), None)
    if path is None:
        return {}
    lines = {}
    for cell in nbformat.read(path, 4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade"):
            continue
        text = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                text.append(f"{out.get('ename')}: {out.get('evalue')}")
            elif out.get("output_type") == "stream":
                text += out.get("text", "").strip().splitlines()
        lines[meta["grade_id"]] = " | ".join(t for t in text if t.strip())[-600:]
    return lines


def check(book: Path, assignment: str, scratch: Path) -> tuple[list[dict], list[Exercise]]:
    root = course_sim.copy_course(scratch / assignment)
    report = course.build(root, only=[assignment], validate=False)
    if report.problems:
        raise SystemExit(f"building {assignment} failed: {report.problems}")
    defs = book_definitions(book, CHAPTER_OF[assignment[:2]])
    nb, exercises = build_submission(root, assignment, defs)
    course_sim.submit(root, STUDENT, assignment, nb)
    (scratch / f"{assignment}-book.ipynb").write_text(nbformat.writes(nb))  # to read what was graded
    course.grade(root, assignment, student=STUDENT, progress=False)
    points = course.grade_cells(root, assignment, STUDENT)
    feedback = _feedback_lines(root, assignment)
    rows = []
    for ex in exercises:
        for grade_id in sorted(g for g in points if g.rsplit("-", 1)[0] == ex.grade_id):
            earned, possible = points[grade_id]
            rows.append({"assignment": assignment, "exercise": ex.grade_id, "test": grade_id,
                         "earned": earned, "possible": possible, "source": _source_kind(ex),
                         "feedback": feedback.get(grade_id, "") if earned < possible else ""})
    return rows, exercises


def _source_kind(ex: Exercise) -> str:
    if not ex.from_book:
        return "ours (course asks for more)"
    if len(ex.from_book) < len(ex.names):
        return "book+ours"
    return "book"


def extra_parameters(ex: Exercise) -> dict[str, list[str]]:
    """Parameters (and methods) the course asks for and the book's definition lacks."""
    extra = {n: [p for p in ex.ours_params[n] if p not in ex.book_params[n]] for n in ex.from_book}
    for n, methods in ex.extra_methods.items():
        extra[n] = extra.get(n, []) + [f"method {m}()" for m in methods]
    return {n: ps for n, ps in extra.items() if ps}


def signature_notes(ex: Exercise) -> list[str]:
    return [f"{n}: course ({', '.join(ex.ours_params[n])}) vs book ({', '.join(ex.book_params[n])})"
            for n in ex.from_book if ex.ours_params[n] != ex.book_params[n]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--book-repo", required=True, type=Path,
                        help="folder holding the book's repository (ch02/, ch03/, ..., appendix-E/)")
    parser.add_argument("--assignments", default="", help="comma-separated, e.g. 01-tokenization (default: all)")
    parser.add_argument("--keep", type=Path, help="scratch folder to keep (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    if not (args.book_repo / "ch04" / "01_main-chapter-code").is_dir():
        print(f"{args.book_repo} does not look like the book's repository (no ch04/01_main-chapter-code); "
              "pass --book-repo the folder of a clone of rasbt/LLMs-from-scratch.", file=sys.stderr)
        return 2
    known = course.assignments(course_sim.COURSE)
    wanted = [a for a in args.assignments.split(",") if a] or known
    unknown = [a for a in wanted if a not in known]
    if unknown:
        print(f"unknown assignment(s) {', '.join(unknown)}; choose from {', '.join(known)}.", file=sys.stderr)
        return 2
    # nbgrader calls `alembic` and the kernels by name: the tools beside this interpreter must be found.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="book-code-check-"))
    all_rows, more, unfair = [], [], []
    for assignment in wanted:
        rows, exercises = check(args.book_repo.resolve(), assignment, scratch)
        all_rows += rows
        print(f"\n== {assignment}   (graded notebook: {scratch / assignment})")
        for ex in exercises:
            mine = [r for r in rows if r["exercise"] == ex.grade_id]
            earned, possible = sum(r["earned"] for r in mine), sum(r["possible"] for r in mine)
            print(f"  {ex.grade_id:24s} {earned:g}/{possible:g}  {_source_kind(ex)}"
                  + (f"  [{'; '.join(f'{n} <- {o}' for n, o in ex.origins.items())}]" if ex.origins else ""))
            for note in signature_notes(ex):
                print(f"      signature: {note}")
            for n, methods in ex.extra_methods.items():
                print(f"      course asks {n} for {', '.join(m + '()' for m in methods)}, which the book's class lacks")
            for r in mine:
                if r["earned"] < r["possible"]:
                    print(f"      lost {r['possible'] - r['earned']:g} on {r['test']}: {r['feedback']}")
            if not ex.from_book:
                more.append(f"{assignment}/{ex.grade_id} ({', '.join(ex.names)})")
            elif len(ex.from_book) < len(ex.names):
                more.append(f"{assignment}/{ex.grade_id} (book lacks {', '.join(set(ex.names) - set(ex.from_book))})")
            elif extra_parameters(ex):
                more.append(f"{assignment}/{ex.grade_id} (the book's definition lacks " + "; ".join(
                    f"{n}: {', '.join(ps)}" for n, ps in extra_parameters(ex).items()) + ")")
            elif earned < possible:
                unfair.append(f"{assignment}/{ex.grade_id}")
        total = (sum(r["earned"] for r in rows), sum(r["possible"] for r in rows))
        print(f"  {'total':24s} {total[0]:g}/{total[1]:g}")
    print("\nCourse asks for more than the book defines:\n  " + ("\n  ".join(more) or "none"))
    print("\nBook code losing points where it defines the names:\n  " + ("\n  ".join(unfair) or "none"))
    if args.json:
        args.json.write_text(json.dumps(all_rows, indent=1))
    return 1 if unfair else 0


if __name__ == "__main__":
    raise SystemExit(main())

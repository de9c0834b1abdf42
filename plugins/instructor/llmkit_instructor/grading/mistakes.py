"""Mistakes as data: the table of known mistakes per assignment, its hints, its checks and its docs.

``course/mutants/<assignment>.json`` is the one table of an assignment's known mistakes. Each entry
simulates one submission by editing the solution:

    {"student": "mutant-<short-name>",        # who submits it (see STUDENT_KINDS)
     "mistake": "<key of HINTS>" or null,     # the hint in the stage's grading module that names it
     "cell": "<grade id of the solution cell>",
     "old": "...", "new": "..."               # one edit of the solution cell's source,
     or "replace_cell": "...",                # or the whole cell replaced
     "fails": ["<grade ids that lose all their points>"],
     "feedback": "<phrase the feedback must contain>"}

The hint text is written once, in the stage's grading module (``HINTS[mistake]``); the entry's
``feedback`` is a phrase of it. Entries that are not a mistake with a hint (an import of the
reference, a correct rewrite that must keep full marks) have ``"mistake": null``; a rewrite has
``"fails": []``. A grading module may list hints no table can simulate (for instance a mistake that
only shows on a GPU) in ``NOT_SIMULATED = {key: reason}``.

``python -m llmkit_instructor.grading.mistakes`` checks every table and rewrites ``docs/mistakes.md`` from them.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__import__("llmkit").__file__).resolve().parent.parent  # the kit's checkout (course/, docs/)
TABLES = ROOT / "course" / "mutants"
DOCS = ROOT / "docs" / "mistakes.md"

# Which grading module holds the checks (and the HINTS) of each assignment.
STAGE_MODULES = {
    "01-tokenization": "llmkit_instructor.grading.tokenization",
    "02-data-sampling": "llmkit_instructor.grading.sampling",
    "03-embeddings": "llmkit_instructor.grading.embeddings",
    "04-attention": "llmkit_instructor.grading.attention",
    "05-gpt-architecture": "llmkit_instructor.grading.gpt",
    "06-pretraining": "llmkit_instructor.grading.pretraining",
    "07-lora": "llmkit_instructor.grading.lora",
    "08-classification-finetuning": "llmkit_instructor.grading.classification",
    "09-instruction-finetuning": "llmkit_instructor.grading.instruction",
    "10-encoders-and-masked-lm": "llmkit_instructor.grading.encoders",
    "11-retrieval-augmented-generation": "llmkit_instructor.grading.retrieval",
}

# What the prefix of ``student`` says an entry is.
STUDENT_KINDS = {
    "mutant-": "a realistic mistake; it loses points and its feedback names the mistake",
    "imports-": "an integrity case (the answer imported instead of written); it loses points",
    "rewrite-": "a correct solution written differently; it keeps full marks (fails: [])",
}
ENTRY_KEYS = {"student", "mistake", "cell", "old", "new", "replace_cell", "fails", "feedback"}


@dataclass(frozen=True)
class Mistake:
    """One table entry, with the hint its ``mistake`` key resolves to."""

    assignment: str
    student: str
    mistake: str | None
    cell: str
    old: str | None
    new: str | None
    replace_cell: str | None
    fails: tuple[str, ...]
    feedback: str
    hint: str | None

    @property
    def kind(self) -> str:
        return next((k for k in STUDENT_KINDS if self.student.startswith(k)), "")

    @property
    def is_mutant(self) -> bool:
        """A realistic mistake: a ``mutant-`` entry that must lose points."""
        return self.kind == "mutant-" and bool(self.fails)


def assignments(tables: Path = TABLES) -> list[str]:
    return sorted(p.stem for p in tables.glob("*.json"))


def grading_module(assignment: str):
    name = STAGE_MODULES.get(assignment)
    if name is None:
        raise KeyError(f"no grading module is known for {assignment}; add it to STAGE_MODULES in {__name__}")
    return importlib.import_module(name)


def hints(assignment: str) -> dict[str, str]:
    return dict(getattr(grading_module(assignment), "HINTS", {}))


def not_simulated(assignment: str) -> dict[str, str]:
    return dict(getattr(grading_module(assignment), "NOT_SIMULATED", {}))


def raw_table(assignment: str, tables: Path = TABLES) -> list:
    path = tables / f"{assignment}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def load(assignment: str, tables: Path = TABLES) -> list[Mistake]:
    """The table's entries with their hints resolved (unknown keys resolve to None; ``validate`` names them)."""
    known = hints(assignment)
    return [Mistake(assignment=assignment, student=e.get("student", ""), mistake=e.get("mistake"),
                    cell=e.get("cell", ""), old=e.get("old"), new=e.get("new"), replace_cell=e.get("replace_cell"),
                    fails=tuple(e.get("fails", ())), feedback=e.get("feedback", ""),
                    hint=known.get(e.get("mistake")) if isinstance(e.get("mistake"), str) else None)
            for e in raw_table(assignment, tables) if isinstance(e, dict)]


# --------------------------------------------------------------------------- validation


def _entry_problems(where: str, entry, known: dict[str, str]) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{where}: an entry must be an object, got {type(entry).__name__}"]
    problems = [f"{where}: unknown field {key!r}; the fields are {', '.join(sorted(ENTRY_KEYS))}"
                for key in entry if key not in ENTRY_KEYS]
    student, mistake = entry.get("student"), entry.get("mistake", ...)
    fails, feedback = entry.get("fails"), entry.get("feedback")
    if not isinstance(student, str) or not any(student.startswith(k) for k in STUDENT_KINDS):
        problems.append(f"{where}: student must start with {', '.join(STUDENT_KINDS)}, got {student!r}")
    if not isinstance(entry.get("cell"), str):
        problems.append(f"{where}: cell must be the grade id of a solution cell")
    edits = ("old" in entry) + ("replace_cell" in entry)
    if edits != 1 or ("old" in entry) != ("new" in entry):
        problems.append(f"{where}: give either old and new (one edit of the cell) or replace_cell, not both")
    if not isinstance(fails, list) or not all(isinstance(f, str) for f in fails):
        problems.append(f"{where}: fails must be a list of grade ids ([] for a correct rewrite)")
        fails = []
    if mistake is ...:
        problems.append(f"{where}: mistake is missing; give the HINTS key, or null for an entry without a hint")
    elif mistake is not None and mistake not in known:
        problems.append(f"{where}: mistake {mistake!r} is not a key of HINTS in the stage's grading module")
    if not isinstance(feedback, str):
        problems.append(f"{where}: feedback must be a phrase of the feedback (\"\" only for a rewrite)")
    elif isinstance(mistake, str) and mistake in known and feedback not in known[mistake]:
        problems.append(f"{where}: feedback {feedback!r} is not a phrase of HINTS[{mistake!r}]; copy it from the hint")
    elif fails and not feedback.strip():
        problems.append(f"{where}: feedback is empty; give the phrase that names the mistake")
    if isinstance(student, str) and student.startswith("rewrite-") and (fails or mistake):
        problems.append(f"{where}: a rewrite keeps full marks: fails [] and mistake null")
    if isinstance(student, str) and not student.startswith("rewrite-") and fails == []:
        problems.append(f"{where}: fails is empty; only a rewrite- entry keeps full marks")
    return problems


@functools.lru_cache(maxsize=None)  # the tests validate each table several times; the notebooks do not change
def _notebook_cells(assignment: str, course: Path) -> dict[str, tuple[str, dict]] | None:
    import nbformat

    found = sorted((course / "source" / assignment).glob("*.ipynb"))
    if not found:
        return None
    nb = nbformat.read(found[0], as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: (c.source, c.metadata["nbgrader"])
            for c in nb.cells if "grade_id" in c.metadata.get("nbgrader", {})}


def _cell_problems(where: str, entry: dict, cells: dict) -> list[str]:
    problems = []
    cell = cells.get(entry.get("cell"))
    if cell is None or not cell[1].get("solution"):
        problems.append(f"{where}: cell {entry.get('cell')!r} is not a solution cell of the notebook")
    elif isinstance(entry.get("old"), str) and entry["old"] not in cell[0]:
        problems.append(f"{where}: old {entry['old'][:60]!r} does not occur in cell {entry['cell']!r}; copy it "
                        "from the solution")
    for grade_id in entry.get("fails") or []:
        if not cells.get(grade_id, ("", {}))[1].get("grade"):
            problems.append(f"{where}: fails names {grade_id!r}, which is not a graded cell of the notebook")
    return problems


def validate(assignment: str, tables: Path = TABLES, course: Path | None = ROOT / "course") -> list[str]:
    """Every problem of one table, one line each (an empty list: the table is sound)."""
    try:
        table = raw_table(assignment, tables)
    except (OSError, ValueError) as exc:
        return [f"{assignment}: the table cannot be read ({exc}); write a JSON list of entries"]
    if not isinstance(table, list):
        return [f"{assignment}: the table must be a JSON list of entries"]
    try:
        known = hints(assignment)
    except (KeyError, ImportError) as exc:
        return [f"{assignment}: {exc}"]
    cells = _notebook_cells(assignment, course) if course is not None else None
    problems, seen = [], set()
    for i, entry in enumerate(table):
        name = entry.get("student") if isinstance(entry, dict) else None
        where = f"{assignment}[{i}] {name or ''}".rstrip()
        problems += _entry_problems(where, entry, known)
        if name in seen:
            problems.append(f"{where}: student {name!r} appears twice; give each entry its own name")
        seen.add(name)
        if cells is not None and isinstance(entry, dict):
            problems += _cell_problems(where, entry, cells)
    return problems


def unused_hints(assignment: str, tables: Path = TABLES) -> list[str]:
    """HINTS keys no entry simulates and ``NOT_SIMULATED`` does not excuse."""
    used = {m.mistake for m in load(assignment, tables)}
    excused = not_simulated(assignment)
    return [key for key in hints(assignment) if key not in used and key not in excused]


# --------------------------------------------------------------------------- docs


def _code(text: str) -> str:
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _block(lang: str, lines: list[str]) -> str:
    """A fenced block inside a nested list item (indented, so Markdown keeps it in the item)."""
    return "\n\n" + "\n".join(f"    {line}".rstrip() for line in [f"```{lang}", *lines, "```"]) + "\n"


def _how(m: Mistake) -> str:
    if m.replace_cell is not None:
        return "the cell is replaced by:" + _block("python", m.replace_cell.rstrip().splitlines())
    if not m.new.strip() and "\n" not in m.old:
        return f"the line {_code(m.old)} is deleted\n"
    if "\n" not in m.old and "\n" not in m.new:
        return f"{_code(m.old)} becomes {_code(m.new)}\n"
    diff = [f"- {line}" for line in m.old.splitlines()] + [f"+ {line}" for line in m.new.splitlines()]
    return "the edit:" + _block("diff", diff)


def _entry_md(m: Mistake) -> str:
    title = f"`{m.mistake}`" if m.mistake else ("correct rewrite" if m.kind == "rewrite-" else "no hint")
    text = f"- **{title}** ({m.student})\n  - simulated: {_how(m)}"
    text += f"  - loses all points of: {', '.join(m.fails)}\n" if m.fails else "  - keeps full marks\n"
    if m.hint:
        text += f"  - hint: {m.hint}\n"
    elif m.feedback:
        text += f"  - the feedback says: \"{m.feedback}\"\n"
    return text


def render(tables: Path = TABLES) -> str:
    """docs/mistakes.md: per assignment and exercise, each known mistake, how it is simulated, its hint."""
    out = ["# Known mistakes per exercise\n",
           "Generated from `course/mutants/*.json` and the `HINTS` of `llmkit_instructor/grading/` by "
           "`python -m llmkit_instructor.grading.mistakes`; do not edit by hand. Every entry is graded end to end by "
           "`tests/test_course_e2e.py`: a mistake loses the points listed and its feedback holds the hint; "
           "a rewrite keeps full marks.\n"]
    for assignment in assignments(tables):
        entries = load(assignment, tables)
        out.append(f"## {assignment}\n")
        out.append(f"Checks and hints: `{STAGE_MODULES.get(assignment, '?')}`.\n")
        for cell in dict.fromkeys(m.cell for m in entries):
            out.append(f"### {cell}\n")
            out.extend(_entry_md(m) for m in entries if m.cell == cell)
        excused = not_simulated(assignment) if assignment in STAGE_MODULES else {}
        if excused:
            out.append("### hints without a simulated mistake\n")
            out.extend(f"- `{key}`: {why}\n" for key, why in excused.items())
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Check every table and rewrite docs/mistakes.md (``--check``: only say whether it is stale)."""
    args = sys.argv[1:] if argv is None else argv
    problems = [p for a in assignments() for p in validate(a)]
    for line in problems:
        print(line, file=sys.stderr)
    text = render()
    if "--check" in args:
        stale = not DOCS.is_file() or DOCS.read_text(encoding="utf-8") != text
        if stale:
            print(f"{DOCS} is out of date; run python -m llmkit_instructor.grading.mistakes", file=sys.stderr)
        return int(stale or bool(problems))
    DOCS.write_text(text, encoding="utf-8")
    print(f"wrote {DOCS}" + (f" ({len(problems)} problems in the tables, listed above)" if problems else ""))
    return int(bool(problems))


if __name__ == "__main__":
    raise SystemExit(main())

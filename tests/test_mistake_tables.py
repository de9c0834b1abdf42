"""The mistake tables (course/mutants/*.json) are sound, linked to their hints, and documented.

Fast: nothing is graded here (tests/test_course_e2e.py grades every entry end to end).
"""

import json

import pytest

from llmkit_instructor.grading import mistakes

ASSIGNMENTS = mistakes.assignments()
MIN_MUTANTS = 8


def test_every_assignment_has_a_table_and_a_grading_module():
    assert ASSIGNMENTS, "no tables in course/mutants"
    assert set(ASSIGNMENTS) == set(mistakes.STAGE_MODULES)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_entry_resolves_and_its_feedback_is_a_phrase_of_its_hint(assignment):
    problems = mistakes.validate(assignment)
    assert not problems, "\n".join(problems)
    for entry in mistakes.load(assignment):
        if entry.mistake is not None:
            assert entry.hint and entry.feedback and entry.feedback in entry.hint, entry.student


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_assignment_has_enough_realistic_mutants(assignment):
    mutants = [m for m in mistakes.load(assignment) if m.is_mutant and (m.old is not None or m.replace_cell)]
    assert len(mutants) >= MIN_MUTANTS, f"{assignment} has {len(mutants)} mutants, needs {MIN_MUTANTS}"


def test_nearly_every_mutant_is_linked_to_a_hint():
    mutants = [m for a in ASSIGNMENTS for m in mistakes.load(a) if m.is_mutant]
    unlinked = [f"{m.assignment}/{m.student}" for m in mutants if m.mistake is None]
    assert len(unlinked) <= 0.05 * len(mutants), f"mutants without a hint: {unlinked}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_hint_is_simulated_or_excused(assignment):
    unused = mistakes.unused_hints(assignment)
    assert not unused, (f"{assignment}: HINTS {unused} have no table entry; add a mutant, or list the key in "
                        "NOT_SIMULATED with the reason")
    for key, reason in mistakes.not_simulated(assignment).items():
        assert key in mistakes.hints(assignment), f"{assignment}: NOT_SIMULATED names {key!r}, which is no hint"
        assert isinstance(reason, str) and reason.strip(), f"{assignment}: NOT_SIMULATED[{key!r}] needs a reason"


def test_docs_are_up_to_date():
    assert mistakes.DOCS.is_file(), "docs/mistakes.md is missing; run python -m llmkit_instructor.grading.mistakes"
    assert mistakes.DOCS.read_text(encoding="utf-8") == mistakes.render(), \
        "docs/mistakes.md is out of date; run python -m llmkit_instructor.grading.mistakes"


def test_validation_names_each_problem_in_one_line(tmp_path):
    tables = tmp_path / "mutants"
    tables.mkdir()
    hints = mistakes.hints("04-attention")
    key = next(iter(hints))
    entries = [
        {"student": "mutant-a", "mistake": key, "cell": "mha", "old": "not in the cell", "new": "y", "fails": ["mha-hidden"],
         "feedback": "not in the hint at all"},
        {"student": "mutant-b", "mistake": "no-such-key", "cell": "mha", "replace_cell": "pass",
         "fails": ["mha-hidden"], "feedback": "x"},
        {"student": "mutant-b", "mistake": None, "cell": "nope", "old": "a", "new": "b", "replace_cell": "c",
         "fails": ["not-a-cell"], "feedback": "x", "extra": 1},
        {"student": "rewrite-c", "mistake": None, "cell": "mha", "old": "x", "new": "y", "fails": ["mha-hidden"],
         "feedback": ""},
        {"student": "someone", "cell": "mha", "old": "x", "new": "y", "fails": [], "feedback": "x"},
    ]
    (tables / "04-attention.json").write_text(json.dumps(entries))
    problems = mistakes.validate("04-attention", tables)
    assert all("\n" not in p for p in problems)
    text = "\n".join(problems)
    for expected in ("is not a phrase of HINTS", "'no-such-key' is not a key of HINTS", "appears twice",
                     "unknown field 'extra'", "either old and new", "is not a solution cell",
                     "'not-a-cell', which is not a graded cell", "a rewrite keeps full marks",
                     "student must start with", "mistake is missing", "does not occur in cell 'mha'"):
        assert expected in text, f"no problem says {expected!r}:\n{text}"
    (tables / "04-attention.json").write_text("{ not json")
    assert mistakes.validate("04-attention", tables)[0].startswith("04-attention: the table cannot be read")


def test_docs_show_each_entry_with_its_hint():
    text = mistakes.render()
    for assignment in ASSIGNMENTS:
        assert f"## {assignment}" in text
        for m in mistakes.load(assignment):
            assert m.student in text
            if m.hint:
                assert m.hint in text

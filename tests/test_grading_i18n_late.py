"""Stages 7-9 and the integrity check speak the edition's language: their messages and hints are
looked up in the catalog (by their English template) while the grader runs an edition's checks."""

import ast
import inspect
from pathlib import Path

import pytest

from llmkit_instructor.grading import GradingError, classification, instruction, integrity, lora
from llmkit_instructor.grading.classification import check_random_split
from llmkit_instructor.grading.instruction import check_format_input
from llmkit_instructor.grading.lora import check_count_trainable
from llmkit.i18n import catalog as cat
from llmkit.i18n import runtime
from tests.grading_helpers import install_grading_catalog, notebook

MODULES = (lora, classification, instruction, integrity)

# English template -> a Spanish translation, as a translator would write them in course.po.
SPANISH = {
    "{name} is imported from {module}; write it yourself in this notebook to earn these points.":
        "{name} se importa de {module}; escríbelo tú mismo en este cuaderno para ganar estos puntos.",
    "count_trainable gives {got} for a model with {trainable:,} trainable of {total:,}.":
        "count_trainable da {got} para un modelo con {trainable:,} entrenables de {total:,}.",
    "{detail} Likely mistake: {hint}": "{detail} Error probable: {hint}",
    lora.HINTS["swapped_counts"]: "los números están en el orden equivocado: devuelve (trainable, total).",
    classification.HINTS["unshuffled"]: "random_split corta los datos en su orden original: primero mézclalos.",
    "{what}: {hint}": "{what}: {hint}",
    instruction.HINTS["input_when_empty"]: "el prompt tiene una sección '### Input:' aunque la entrada está vacía.",
}


@pytest.fixture
def spanish_catalog(tmp_path, monkeypatch):
    install_grading_catalog(tmp_path, monkeypatch, SPANISH)
    yield
    runtime._messages.cache_clear()


def _message(check, student, lang=None) -> str:
    with runtime.language(lang), pytest.raises(GradingError) as failure:
        check(student)
    return str(failure.value)


SWAPPED_COUNTS = '''
def count_trainable(model):
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable
'''

UNSHUFFLED_SPLIT = '''
def random_split(data, train_frac, validation_frac, seed=123):
    train_end = int(len(data) * train_frac)
    validation_end = train_end + int(len(data) * validation_frac)
    return data[:train_end], data[train_end:validation_end], data[validation_end:]
'''

INPUT_ALWAYS = '''
def format_input(entry):
    text = ("Below is an instruction that describes a task. Write a response that appropriately completes "
            f"the request.\\n\\n### Instruction:\\n{entry['instruction']}")
    return text + f"\\n\\n### Input:\\n{entry['input']}"
'''


def test_a_lora_message_and_its_hint_come_back_in_the_edition_language(spanish_catalog):
    student = notebook("import torch\n" + SWAPPED_COUNTS)["count_trainable"]
    english = _message(check_count_trainable, student)
    assert english.startswith("count_trainable gives (")
    assert english.endswith("Likely mistake: " + lora.HINTS["swapped_counts"])
    spanish = _message(check_count_trainable, student, "es")
    assert spanish.startswith("count_trainable da (")
    assert "entrenables de" in spanish
    assert spanish.endswith("Error probable: los números están en el orden equivocado: devuelve (trainable, total).")
    assert "Likely mistake" not in spanish


def test_a_classification_hint_shown_alone_is_translated(spanish_catalog):
    student = notebook(UNSHUFFLED_SPLIT)["random_split"]
    assert _message(check_random_split, student) == classification.HINTS["unshuffled"]
    assert _message(check_random_split, student, "es") == SPANISH[classification.HINTS["unshuffled"]]


def test_an_instruction_hint_after_the_call_is_translated(spanish_catalog):
    student = notebook(INPUT_ALWAYS)["format_input"]
    english = _message(check_format_input, student)
    assert english.endswith(": " + instruction.HINTS["input_when_empty"])
    spanish = _message(check_format_input, student, "es")
    assert spanish.startswith("format_input(")
    assert spanish.endswith(": " + SPANISH[instruction.HINTS["input_when_empty"]])


def test_the_integrity_verdict_is_translated(spanish_catalog):
    source = integrity.SourceIntegrity([integrity.Cell(0, "from llmkit_solutions.lora import count_trainable", True)])
    with pytest.raises(GradingError) as english:
        source.check("count_trainable", before=1)
    assert str(english.value) == ("count_trainable is imported from llmkit_solutions.lora; write it yourself in this "
                                  "notebook to earn these points.")
    with runtime.language("es"), pytest.raises(GradingError) as spanish:
        source.check("count_trainable", before=1)
    assert str(spanish.value) == ("count_trainable se importa de llmkit_solutions.lora; escríbelo tú mismo en este "
                                  "cuaderno para ganar estos puntos.")


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rpartition(".")[2])
def test_every_hint_is_extracted_for_the_catalog(module):
    extracted = {e.msgid for e in cat.grading_entries(dirs=(), files=(Path(module.__file__),))}
    hints = set(getattr(module, "HINTS", {}).values())
    assert hints <= extracted, f"hints not marked with N_: {sorted(hints - extracted)}"
    assert extracted, f"{module.__name__} marks no message"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rpartition(".")[2])
def test_the_gettext_underscore_is_never_rebound(module):
    """A throwaway ``_`` (``a, _ = ...``) would shadow gettext's ``_`` and crash the check that uses it."""
    tree = ast.parse(inspect.getsource(module))
    rebound = [node.lineno for node in ast.walk(tree)
               if (isinstance(node, ast.Name) and node.id == "_" and isinstance(node.ctx, ast.Store))
               or (isinstance(node, ast.arg) and node.arg == "_")]
    assert not rebound, f"{module.__name__} binds _ at lines {rebound}"


def test_the_preamble_hint_quotes_the_preamble_itself():
    assert repr(instruction.PREAMBLE) in instruction.HINTS["no_preamble"]

"""The middle stages' hidden checks (the GPT architecture, pretraining) speak the edition's language.

A fake Spanish catalog translates a few grading templates and hints; a wrong student solution checked under
``language("es")`` must get its whole message from that catalog: the template, the pieces and the hint, each
looked up once. The English messages themselves are pinned by the stages' own tests.
"""

import ast
import inspect
import re

import pytest

from llmkit_instructor.grading import GradingError, gpt, pretraining
from llmkit.i18n import catalog as cat
from llmkit.i18n import runtime
from llmkit_solutions import gpt as ref_gpt
from llmkit_solutions import pretraining as ref_pretraining
from tests.grading_helpers import install_grading_catalog, mutate, notebook, reference_source

MODULES = [gpt, pretraining]

# English template -> a stand-in translation. Each hint's translation is itself "translated" to TWICE, so a
# hint looked up two times shows up in the message.
SPANISH = {
    "{detail} Likely mistake: {hint}": "{detail} Error probable: {hint}",
    # LayerNorm, through fail_with_diagnosis
    "LayerNorm.forward on shape {shape}": "LayerNorm.forward con la forma {shape}",
    "LayerNorm's output on inputs of shape {shape}": "la salida de LayerNorm con entradas de forma {shape}",
    "{what} differs from the reference {where} (largest difference {diff:.3g}).":
        "{what} difiere de la referencia {where} (diferencia máxima {diff:.3g}).",
    "first at {where}: got {got:.6g}, expected {expected:.6g}; {count} of {total} entries differ":
        "primero en {where}: da {got:.6g}, se esperaba {expected:.6g}; difieren {count} de {total} valores",
    "index {index}": "el índice {index}",
    gpt.HINTS["unbiased"]: "ES-HINT la varianza es la insesgada; usa unbiased=False.",
    # greedy generation, a message built from pieces
    "{name} chose other tokens than greedy decoding: got {got}, expected {expected}.":
        "{name} eligió otros tokens que la decodificación voraz: da {got}, se esperaba {expected}.",
    gpt.HINTS["first_position"]: "ES-HINT usa los logits de la última posición.",
    # calc_loss_batch
    "calc_loss_batch returned a Python {type_name}.": "calc_loss_batch devolvió un {type_name} de Python.",
    pretraining.HINTS["item"]: "ES-HINT devuelve el tensor de la pérdida, no loss.item().",
    # evaluate_model: a whole sentence chosen by which loss is wrong
    "evaluate_model's validation loss is the other split's.":
        "la pérdida de validación de evaluate_model es la de la otra partición.",
    "evaluate_model's train loss is the other split's.":
        "la pérdida de entrenamiento de evaluate_model es la de la otra partición.",
    pretraining.HINTS["swapped"]: "ES-HINT devuelve (train_loss, val_loss) en ese orden.",
}


@pytest.fixture
def spanish(tmp_path, monkeypatch):
    install_grading_catalog(tmp_path, monkeypatch, SPANISH)
    with runtime.language("es"):
        yield
    runtime._messages.cache_clear()


def failure(check, student) -> str:
    with pytest.raises(GradingError) as caught:
        check(student)
    message = str(caught.value)
    assert "TWICE" not in message, f"a hint was translated twice: {message}"
    assert "Likely mistake" not in message, message
    return message


def unbiased_layer_norm():
    code = mutate(reference_source(ref_gpt.LayerNorm), "unbiased=False", "unbiased=True")
    return notebook("import torch\nfrom torch import nn\n" + code)["LayerNorm"]


def test_a_layer_norm_mistake_comes_back_in_spanish(spanish):
    message = failure(gpt.check_layer_norm, unbiased_layer_norm())
    assert re.fullmatch(r"la salida de LayerNorm con entradas de forma \(\d+(, \d+)*\) difiere de la referencia "
                        r"primero en el índice \(\d+(, \d+)*\): da \S+, se esperaba \S+; difieren \d+ de \d+ valores "
                        r"\(diferencia máxima \S+\)\. Error probable: ES-HINT la varianza es la insesgada; usa "
                        r"unbiased=False\.", message), message


def test_a_greedy_decoding_mistake_is_translated_piece_by_piece(spanish):
    code = mutate(reference_source(ref_gpt.generate_text_simple), "logits = logits[:, -1, :]",
                  "logits = logits[:, 0, :]")
    student = notebook("import torch\n" + code)["generate_text_simple"]
    message = failure(gpt.check_generate_text_simple, student)
    assert re.fullmatch(r"generate_text_simple eligió otros tokens que la decodificación voraz: da \[\[.*\]\], "
                        r"se esperaba \[\[.*\]\]\. Error probable: ES-HINT usa los logits de la última posición\.",
                        message), message


def test_a_loss_mistake_comes_back_in_spanish(spanish):
    code = mutate(reference_source(ref_pretraining.calc_loss_batch), "target_batch.flatten())",
                  "target_batch.flatten()).item()")
    student = notebook("import torch\n" + code)["calc_loss_batch"]
    assert failure(pretraining.check_calc_loss_batch, student) == (
        "calc_loss_batch devolvió un float de Python. Error probable: ES-HINT devuelve el tensor de la pérdida, "
        "no loss.item().")


def test_swapped_losses_come_back_in_spanish(spanish):
    header = "import torch\n" + "".join(reference_source(f) for f in (ref_pretraining.calc_loss_batch,
                                                                        ref_pretraining.calc_loss_loader))
    code = mutate(reference_source(ref_pretraining.evaluate_model), "return train_loss, val_loss",
                  "return val_loss, train_loss")
    student = notebook(header + code)["evaluate_model"]
    assert failure(pretraining.check_evaluate_model, student) == (
        "la pérdida de entrenamiento de evaluate_model es la de la otra partición. Error probable: ES-HINT "
        "devuelve (train_loss, val_loss) en ese orden.")


def test_without_a_language_the_messages_stay_english(spanish):
    with runtime.language(None):
        with pytest.raises(GradingError, match=r"^LayerNorm's output on inputs of shape .* differs from the reference "
                                               r".* Likely mistake: the variance is the unbiased one"):
            gpt.check_layer_norm(unbiased_layer_norm())


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_hint_is_marked_for_the_catalog(module):
    extracted = {entry.msgid for entry in cat.grading_entries(dirs=(), files=(inspect.getfile(module),))}
    unmarked = [key for key, hint in module.HINTS.items() if hint not in extracted]
    assert not unmarked, f"{module.__name__}: HINTS {unmarked} are not wrapped in N_(...)"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_no_name_shadows_the_translation_function(module):
    tree = ast.parse(inspect.getsource(module))
    bound = [node.lineno for node in ast.walk(tree)
             if isinstance(node, ast.Name) and node.id == "_" and not isinstance(node.ctx, ast.Load)]
    assert not bound, f"{module.__name__} binds _ at lines {bound}; rename the throwaway (e.g. _unused)"

"""The early stages' hidden checks (tokenization, sampling, embeddings, attention) speak the edition's language.

A fake Spanish catalog translates a few grading templates and hints; a wrong student solution checked under
``language("es")`` must get its whole message from that catalog: the template, the pieces and the hint, each
looked up once. The English messages themselves are pinned by the stages' own tests.
"""

import ast
import inspect
import re

import pytest

import llmkit_instructor.grading
from llmkit_instructor.grading import GradingError, attention, embeddings, sampling, tokenization
from llmkit.i18n import catalog as cat
from llmkit.i18n import runtime
from llmkit_solutions import attention as ref_attention
from llmkit_solutions import tokenization as ref_tokenization
from tests.grading_helpers import install_grading_catalog, mutate, notebook, reference_source
from tests.test_grading_tokenization import HEADER as TOKENIZATION_HEADER  # the notebook's setup cell

MODULES = [attention, embeddings, sampling, tokenization]

# English template -> a stand-in translation. Each hint's translation is itself "translated" to TWICE, so a
# hint looked up two times shows up in the message.
SPANISH = {
    "{detail} Likely mistake: {hint}": "{detail} Error probable: {hint}",
    "SelfAttention_v1's output": "la salida de SelfAttention_v1",
    "{what} differs from the reference {where} (largest difference {diff:.3g}).":
        "{what} difiere de la referencia {where} (diferencia máxima {diff:.3g}).",
    "first at {where}: got {got:.6g}, expected {expected:.6g}; {count} of {total} entries differ":
        "primero en {where}: da {got:.6g}, se esperaba {expected:.6g}; difieren {count} de {total} valores",
    "index {index}": "el índice {index}",
    attention.HINTS["no_scale"]: "ES-HINT las puntuaciones no se dividen por sqrt(d_k).",
    "build_vocab differs from the reference.": "build_vocab difiere de la referencia.",
    tokenization.HINTS["unsorted"]: "ES-HINT ordena las palabras antes de numerarlas.",
    "SimpleTokenizerV2.encode is wrong{where}.": "SimpleTokenizerV2.encode está mal{where}.",
    "(a vocabulary with its special tokens at other ids)": "(un vocabulario con sus tokens especiales en otros ids)",
    "unknown words get the id {got}, but '<|unk|>' has the id {unk} here; {hint}":
        "las palabras desconocidas reciben el id {got}, pero aquí '<|unk|>' tiene el id {unk}; {hint}",
    tokenization.HINTS["unk_id"]: "ES-HINT busca el id de <|unk|> en el vocabulario.",
    "input_target_pair(token_ids, {start}, {length}) is wrong.":
        "input_target_pair(token_ids, {start}, {length}) está mal.",
    sampling.HINTS["not_shifted"]: "ES-HINT los objetivos no están desplazados un token.",
    "sinusoidal_positions({T}, {E}) differs from the reference (largest difference {diff:.3g}).":
        "sinusoidal_positions({T}, {E}) difiere de la referencia (diferencia máxima {diff:.3g}).",
    embeddings.HINTS["sin_cos_swapped"]: "ES-HINT seno y coseno están intercambiados.",
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


def test_an_attention_mistake_comes_back_in_spanish(spanish):
    code = mutate(reference_source(ref_attention.SelfAttention_v1),
                  "weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)",
                  "weights = torch.softmax(scores, dim=-1)")
    student = notebook("import torch\nfrom torch import nn\n" + code)["SelfAttention_v1"]
    message = failure(attention.check_self_attention_v1, student)
    assert re.fullmatch(r"la salida de SelfAttention_v1 difiere de la referencia primero en el índice \(\d+, \d+\): "
                        r"da \S+, se esperaba \S+; difieren \d+ de \d+ valores \(diferencia máxima \S+\)\. "
                        r"Error probable: ES-HINT las puntuaciones no se dividen por sqrt\(d_k\)\.", message), message


def test_a_build_vocab_mistake_comes_back_in_spanish(spanish):
    code = mutate(reference_source(ref_tokenization.build_vocab), "tokens = sorted(set(words))",
                  "tokens = list(dict.fromkeys(words))")
    student = notebook("import re\nfrom llmkit.tokenizers import WORD_SPLIT\n" + code)["build_vocab"]
    assert failure(tokenization.check_build_vocab, student) == \
        "build_vocab difiere de la referencia. Error probable: ES-HINT ordena las palabras antes de numerarlas."


def test_a_composed_tokenizer_hint_is_translated_piece_by_piece_and_once(spanish):
    v2 = mutate(reference_source(ref_tokenization.SimpleTokenizerV2), "unk = self.str_to_int[self.UNK]",
                "unk = len(self.str_to_int) - 1")
    student = notebook(TOKENIZATION_HEADER + reference_source(ref_tokenization.SimpleTokenizerV1) + v2)[
        "SimpleTokenizerV2"]
    message = failure(tokenization.check_simple_tokenizer_v2, student)
    assert re.fullmatch(r"SimpleTokenizerV2\.encode está mal \(un vocabulario con sus tokens especiales en otros "
                        r"ids\)\. Error probable: las palabras desconocidas reciben el id \d+, pero aquí '<\|unk\|>' "
                        r"tiene el id \d+; ES-HINT busca el id de <\|unk\|> en el vocabulario\.", message), message


def test_a_sampling_mistake_comes_back_in_spanish(spanish):
    student = notebook("def input_target_pair(token_ids, start, max_length):\n"
                       "    return token_ids[start:start + max_length], token_ids[start:start + max_length]\n"
                       )["input_target_pair"]
    assert failure(sampling.check_input_target_pair, student) == (
        "input_target_pair(token_ids, 0, 4) está mal. Error probable: ES-HINT los objetivos no están desplazados "
        "un token.")


def test_an_embedding_mistake_comes_back_in_spanish(spanish):
    student = notebook(
        "import torch\n"
        "def sinusoidal_positions(context_length, emb_dim):\n"
        "    positions = torch.arange(context_length, dtype=torch.float32).unsqueeze(1)\n"
        "    freqs = 1 / 10000 ** (torch.arange(0, emb_dim, 2, dtype=torch.float32) / emb_dim)\n"
        "    table = torch.zeros(context_length, emb_dim)\n"
        "    table[:, 0::2] = torch.cos(positions * freqs)\n"
        "    table[:, 1::2] = torch.sin(positions * freqs)\n"
        "    return table\n")["sinusoidal_positions"]
    assert re.fullmatch(r"sinusoidal_positions\(12, 8\) difiere de la referencia \(diferencia máxima \S+\)\. "
                        r"Error probable: ES-HINT seno y coseno están intercambiados\.",
                        failure(embeddings.check_sinusoidal_positions, student))


def test_without_a_language_the_messages_stay_english(spanish):
    with runtime.language(None):
        student = notebook("def input_target_pair(token_ids, start, max_length):\n"
                           "    return token_ids[start:start + max_length], token_ids[start:start + max_length]\n"
                           )["input_target_pair"]
        with pytest.raises(GradingError, match=r"^input_target_pair\(token_ids, 0, 4\) is wrong\. Likely mistake: "
                                               r"targets not shifted by one"):
            sampling.check_input_target_pair(student)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_hint_is_marked_for_the_catalog(module):
    extracted = {entry.msgid for entry in cat.grading_entries(dirs=(), files=(inspect.getfile(module),))}
    unmarked = [key for key, hint in module.HINTS.items() if hint not in extracted]
    assert not unmarked, f"{module.__name__}: HINTS {unmarked} are not wrapped in N_(...)"


@pytest.mark.parametrize("module", MODULES + [llmkit_instructor.grading],
                         ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_no_name_shadows_the_translation_function(module):
    tree = ast.parse(inspect.getsource(module))
    bound = [node.lineno for node in ast.walk(tree)
             if isinstance(node, ast.Name) and node.id == "_" and not isinstance(node.ctx, ast.Load)]
    assert not bound, f"{module.__name__} binds _ at lines {bound}; rename the throwaway (e.g. _unused)"

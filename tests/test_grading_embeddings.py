"""The embedding checks: correct solutions in other styles pass; realistic mistakes fail by name."""

import re

import pytest

from llmkit_instructor.grading import GradingError
from llmkit_instructor.grading.embeddings import (
    check_embed_batch,
    check_embed_one_hot,
    check_gpt_embedding,
    check_sinusoidal_positions,
)
from llmkit_solutions import embeddings as ref
from tests.grading_helpers import mutate, notebook, reference_source

HEADER = "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n"
ONE_HOT = reference_source(ref.embed_one_hot)
BATCH = reference_source(ref.embed_batch)
MODULE = reference_source(ref.GPTEmbedding)
SINUS = reference_source(ref.sinusoidal_positions)


def student(code, name):
    return notebook(HEADER + code)[name]


@pytest.mark.parametrize("check, obj", [
    (check_embed_one_hot, ref.embed_one_hot), (check_embed_batch, ref.embed_batch),
    (check_gpt_embedding, ref.GPTEmbedding), (check_sinusoidal_positions, ref.sinusoidal_positions),
])
def test_the_reference_written_in_a_notebook_passes(check, obj):
    check(student(reference_source(obj), obj.__name__))


OTHER_STYLES = {
    "embed_one_hot": '''
def embed_one_hot(token_ids, weight):
    eye = torch.eye(weight.shape[0], dtype=weight.dtype)
    return eye[token_ids] @ weight
''',
    "embed_batch": '''
def embed_batch(inputs, token_embedding_layer, pos_embedding_layer):
    b, t = inputs.shape
    pos = pos_embedding_layer.weight[:t]
    return token_embedding_layer.weight[inputs] + pos.unsqueeze(0)
''',
    "GPTEmbedding": '''
class GPTEmbedding(nn.Module):
    def __init__(self, vocab_size, emb_dim, context_length):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, emb_dim)
        self.pos_emb = nn.Embedding(context_length, emb_dim)
        self.register_buffer("positions", torch.arange(context_length), persistent=False)

    def forward(self, in_idx):
        return self.tok_emb(in_idx) + self.pos_emb(self.positions[: in_idx.size(1)])[None]
''',
    "sinusoidal_positions": '''
import math
def sinusoidal_positions(context_length, emb_dim):
    table = torch.empty(context_length, emb_dim)
    for p in range(context_length):
        for i in range(emb_dim // 2):
            angle = p / math.pow(10000, 2 * i / emb_dim)
            table[p, 2 * i] = math.sin(angle)
            table[p, 2 * i + 1] = math.cos(angle)
    return table
''',
}


@pytest.mark.parametrize("name, check", [("embed_one_hot", check_embed_one_hot), ("embed_batch", check_embed_batch),
                                         ("GPTEmbedding", check_gpt_embedding),
                                         ("sinusoidal_positions", check_sinusoidal_positions)])
def test_correct_solutions_in_another_style_pass(name, check):
    check(student(OTHER_STYLES[name], name))


@pytest.mark.parametrize("old, new, hint", [
    ("num_classes=weight.shape[0]", "", "pass num_classes=weight.shape[0]"),
    ("one_hot.to(weight.dtype) @ weight", "one_hot @ weight", "convert the one-hot matrix"),
    ("one_hot.to(weight.dtype) @ weight", "one_hot.to(weight.dtype) @ weight.detach()", "cut off from weight"),
])
def test_one_hot_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_embed_one_hot(student(mutate(ONE_HOT, old, new), "embed_one_hot"))


@pytest.mark.parametrize("old, new, hint", [
    ("pos_embedding_layer(positions)", "pos_embedding_layer(inputs)", "looked up with the token ids"),
    ("inputs.shape[-1]", "inputs.shape[0]", "count the batch rows"),
    ("return token_embeddings + pos_embeddings", "return token_embeddings", "only the token embeddings"),
    ("return token_embeddings + pos_embeddings",
     "return torch.cat([token_embeddings, pos_embeddings.expand_as(token_embeddings)], dim=-1)", "concatenated"),
    ("pos_embedding_layer(positions)", "pos_embedding_layer.weight", "use only the first T positions"),
])
def test_embed_batch_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_embed_batch(student(mutate(BATCH, old, new), "embed_batch"))


@pytest.mark.parametrize("old, new, hint", [
    ("return tok + pos", "return tok", "only the token embeddings"),
    ("torch.arange(num_tokens, device=in_idx.device)", "in_idx", "looked up with the token ids"),
    ("        self.tok_emb = nn.Embedding(vocab_size, emb_dim)\n        self.pos_emb = nn.Embedding(context_length, emb_dim)",
     "        self.pos_emb = nn.Embedding(context_length, emb_dim)\n        self.tok_emb = nn.Embedding(vocab_size, emb_dim)",
     "tok_emb first, then pos_emb"),
    ("self.tok_emb = nn.Embedding(vocab_size, emb_dim)", "self.token_table = nn.Embedding(vocab_size, emb_dim)",
     "keep the book's two tables"),
    ("nn.Embedding(context_length, emb_dim)", "nn.Embedding(vocab_size, emb_dim)", "pos_emb has shape"),
])
def test_gpt_embedding_mistakes_are_named(old, new, hint):
    code = mutate(MODULE, old, new).replace("self.tok_emb(in_idx)", "self.token_table(in_idx)") \
        if "token_table" in new else mutate(MODULE, old, new)
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_gpt_embedding(student(code, "GPTEmbedding"))


@pytest.mark.parametrize("old, new, hint", [
    ("table[:, 0::2] = torch.sin(angles)\n    table[:, 1::2] = torch.cos(angles)",
     "table[:, 0::2] = torch.cos(angles)\n    table[:, 1::2] = torch.sin(angles)", "sine and cosine are swapped"),
    ("torch.arange(0, emb_dim, 2, dtype=torch.float32)", "torch.arange(0, emb_dim // 2, dtype=torch.float32)",
     "2i / emb_dim"),
    ("table[:, 0::2] = torch.sin(angles)\n    table[:, 1::2] = torch.cos(angles)",
     "table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)", "interleave them"),
    ("torch.arange(context_length, dtype=torch.float32)", "torch.arange(1, context_length + 1, dtype=torch.float32)",
     "positions start at 1"),
])
def test_sinusoidal_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_sinusoidal_positions(student(mutate(SINUS, old, new), "sinusoidal_positions"))


def test_per_column_exponent_is_named():
    code = '''
def sinusoidal_positions(context_length, emb_dim):
    pos = torch.arange(context_length, dtype=torch.float32)[:, None]
    cols = torch.arange(emb_dim, dtype=torch.float32)
    angles = pos / 10000 ** (cols / emb_dim)
    return torch.where(cols.long() % 2 == 0, torch.sin(angles), torch.cos(angles))
'''
    with pytest.raises(GradingError, match="shares the frequency"):
        check_sinusoidal_positions(student(code, "sinusoidal_positions"))


def test_importing_subclassing_or_wrapping_the_reference_earns_nothing():
    with pytest.raises(GradingError, match="imported from llmkit_solutions.embeddings"):
        check_gpt_embedding(notebook("from llmkit_solutions.embeddings import GPTEmbedding")["GPTEmbedding"])
    sub = notebook("import llmkit_solutions.embeddings as e\nclass GPTEmbedding(e.GPTEmbedding):\n    pass")
    with pytest.raises(GradingError, match="subclasses GPTEmbedding"):
        check_gpt_embedding(sub["GPTEmbedding"])
    wrapped = notebook(HEADER + "from llmkit_solutions.embeddings import embed_batch as ref\n"
                                "def embed_batch(a, b, c):\n    return ref(a, b, c)\n")
    with pytest.raises(GradingError, match="calls the reference solution ref"):
        check_embed_batch(wrapped["embed_batch"])


def test_a_crashing_student_function_is_a_failed_check_not_a_crash():
    code = mutate(SINUS, "table = torch.zeros(context_length, emb_dim)", "table = torch.zeros(emb_dim)")
    with pytest.raises(GradingError, match="raised"):
        check_sinusoidal_positions(student(code, "sinusoidal_positions"))

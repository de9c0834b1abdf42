"""The stage-5 checks: the reference, other correct styles and the book's own code pass; realistic
mistakes fail with a message naming them."""

import re

import pytest

from llmkit_instructor.grading import GradingError
from llmkit_instructor.grading.gpt import (
    check_feed_forward,
    check_gelu,
    check_generate,
    check_generate_text_simple,
    check_gpt_model,
    check_layer_norm,
    check_next_token,
    check_transformer_block,
)
from llmkit_solutions import gpt as ref
from tests.grading_helpers import mutate, notebook, reference_source

# What the notebook's setup cell provides (the helpers are defined there, not imported from the
# reference solutions, so graded classes may use them).
HEADER = '''
import inspect
import torch
from torch import nn
import llmkit
from llmkit.config import check_gpt_config
from llmkit.errors import LLMKitError
from llmkit.kv_cache import KVCache

def build_attention(cfg):
    return llmkit.create("attention", cfg.get("attention", "mha"), d_in=cfg["emb_dim"], d_out=cfg["emb_dim"],
                         context_length=cfg["context_length"], dropout=cfg["drop_rate"], num_heads=cfg["n_heads"],
                         qkv_bias=cfg["qkv_bias"], **cfg.get("attention_options", {}))

def supports_kv_cache(model):
    blocks = getattr(model, "trf_blocks", None)
    return blocks is not None and all("kv_cache" in inspect.signature(b.att.forward).parameters for b in blocks)
'''
SOURCES = {name: reference_source(getattr(ref, name)) for name in (
    "LayerNorm", "GELU", "FeedForward", "TransformerBlock", "GPTModel", "generate_text_simple", "next_token",
    "generate")}
CHECKS = {"LayerNorm": check_layer_norm, "GELU": check_gelu, "FeedForward": check_feed_forward,
          "TransformerBlock": check_transformer_block, "GPTModel": check_gpt_model,
          "generate_text_simple": check_generate_text_simple, "next_token": check_next_token,
          "generate": check_generate}


def solved(**replaced):
    """The whole solved notebook, with some definitions replaced by other code."""
    return notebook(HEADER + "\n".join(replaced.get(name, src) for name, src in SOURCES.items()))


def mutant(name, old, new):
    return solved(**{name: mutate(SOURCES[name], old, new)})


@pytest.fixture(scope="module")
def reference_notebook():
    return solved()


@pytest.mark.parametrize("name", list(CHECKS))
def test_the_reference_written_in_a_notebook_passes(reference_notebook, name):
    CHECKS[name](reference_notebook[name])


OTHER_STYLES = {
    "LayerNorm": '''
class LayerNorm(nn.Module):
    def __init__(self, emb_dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(emb_dim))
        self.bias = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        return nn.functional.layer_norm(x, x.shape[-1:], self.weight, self.bias, eps=1e-5)
''',
    "GELU": '''
class GELU(nn.Module):
    def forward(self, x):
        return nn.functional.gelu(x, approximate="tanh")
''',
    "FeedForward": '''
class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.fc_in = nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"])
        self.fc_out = nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"])

    def forward(self, x):
        return self.fc_out(GELU()(self.fc_in(x)))
''',
    "TransformerBlock": '''
class TransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.att = build_attention(cfg)
        self.ff = FeedForward(cfg)
        self.norm1, self.norm2 = LayerNorm(cfg["emb_dim"]), LayerNorm(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x, kv_cache=None):
        h = self.norm1(x)
        h = self.att(h) if kv_cache is None else self.att(h, kv_cache=kv_cache)
        x = x + self.drop_shortcut(h)
        return x + self.drop_shortcut(self.ff(self.norm2(x)))
''',
    # The book's GPTModel, without the kit's kv_cache lines.
    "GPTModel": '''
class GPTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, in_idx):
        batch_size, seq_len = in_idx.shape
        x = self.tok_emb(in_idx) + self.pos_emb(torch.arange(seq_len, device=in_idx.device))
        x = self.trf_blocks(self.drop_emb(x))
        return self.out_head(self.final_norm(x))
''',
    "generate_text_simple": '''
def generate_text_simple(model, idx, max_new_tokens, context_size):
    for _ in range(max_new_tokens):
        with torch.no_grad():
            nxt = model(idx[:, -context_size:])[:, -1].argmax(-1).unsqueeze(-1)
        idx = torch.cat([idx, nxt], dim=-1)
    return idx
''',
    "next_token": '''
def next_token(logits, temperature=0.0, top_k=None):
    if top_k is not None:
        values, indices = logits.topk(top_k, dim=-1)
        logits = torch.full_like(logits, float("-inf")).scatter(-1, indices, values)
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    return torch.distributions.Categorical(logits=logits / temperature).sample().unsqueeze(-1)
''',
    # The book's generate (batch-1 top-k and eos), without the kit's cache.
    "generate": '''
def generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]
        with torch.no_grad():
            logits = model(idx_cond)
        logits = logits[:, -1, :]
        if top_k is not None:
            top_logits, _ = torch.topk(logits, top_k)
            min_val = top_logits[:, -1]
            logits = torch.where(logits < min_val, torch.tensor(float("-inf")).to(logits.device), logits)
        if temperature > 0.0:
            logits = logits / temperature
            probs = torch.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
        else:
            idx_next = torch.argmax(logits, dim=-1, keepdim=True)
        if idx_next == eos_id:
            break
        idx = torch.cat((idx, idx_next), dim=1)
    return idx
''',
}


@pytest.mark.parametrize("name", list(OTHER_STYLES))
def test_correct_solutions_in_other_styles_and_the_books_code_pass(name):
    CHECKS[name](solved(**{name: OTHER_STYLES[name]})[name])


def test_a_whole_model_in_other_styles_passes():
    ns = solved(**OTHER_STYLES)
    for name, check in CHECKS.items():
        check(ns[name])


LAYER_NORM_MISTAKES = [
    ("unbiased=False", "unbiased=True", "unbiased one"),
    ("torch.sqrt(var + self.eps)", "torch.sqrt(var)", "eps is missing"),
    ("torch.sqrt(var + self.eps)", "(torch.sqrt(var) + self.eps)", "outside the square root"),
    ("mean = x.mean(dim=-1, keepdim=True)\n        var = x.var(dim=-1, keepdim=True, unbiased=False)",
     "mean = x.mean(dim=1, keepdim=True)\n        var = x.var(dim=1, keepdim=True, unbiased=False)", "wrong dimension"),
    ("return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift",
     "return (x - mean) / torch.sqrt(var + self.eps)", "scale and shift are not applied"),
    ("torch.ones(emb_dim)", "torch.rand(emb_dim)", "start scale at ones"),
]


@pytest.mark.parametrize("old, new, hint", LAYER_NORM_MISTAKES)
def test_layer_norm_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_layer_norm(mutant("LayerNorm", old, new)["LayerNorm"])


EXACT_GELU = '''
class GELU(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1.0 + torch.erf(x / 2 ** 0.5))
'''


@pytest.mark.parametrize("old, new, hint", [
    ("torch.sqrt(torch.tensor(2.0 / torch.pi))", "(2.0 / torch.pi)", "its square root"),
    ("0.044715", "0.44715", "cubic coefficient"),
    ("return 0.5 * x * (1.0 + torch.tanh(inner))", "return x * (1.0 + torch.tanh(inner))", "factor 0.5"),
    ("return 0.5 * x * (1.0 + torch.tanh(inner))", "return torch.relu(x)", "this is ReLU"),
])
def test_gelu_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_gelu(mutant("GELU", old, new)["GELU"])


def test_exact_gelu_is_named():
    with pytest.raises(GradingError, match="tanh approximation"):
        check_gelu(solved(GELU=EXACT_GELU)["GELU"])


@pytest.mark.parametrize("old, new, hint", [
    ("            GELU(),\n", "", "parameters have shapes"),  # still two layers: no activation at all
    ("GELU(),", "nn.ReLU(),", "the activation is ReLU"),
    ("GELU(),", "nn.GELU(),", "nn.GELU() defaults to erf"),
    ("4 * cfg[\"emb_dim\"]),", "2 * cfg[\"emb_dim\"]),", "4 * emb_dim"),
])
def test_feed_forward_mistakes_are_named(old, new, hint):
    if old == "            GELU(),\n":
        ns = mutant("FeedForward", old, "            nn.Identity(),\n")
        with pytest.raises(GradingError, match="no activation"):
            check_feed_forward(ns["FeedForward"])
        return
    if "2 * cfg" in new:
        code = SOURCES["FeedForward"].replace('4 * cfg["emb_dim"]', '2 * cfg["emb_dim"]')
        with pytest.raises(GradingError, match=re.escape(hint)):
            check_feed_forward(solved(FeedForward=code)["FeedForward"])
        return
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_feed_forward(mutant("FeedForward", old, new)["FeedForward"])


def test_feed_forward_with_a_wrong_gelu_keeps_its_points():
    # The wrong GELU costs the GELU exercise; FeedForward is graded with a correct activation in its place.
    ns = solved(GELU=EXACT_GELU)
    check_feed_forward(ns["FeedForward"])


BLOCK = SOURCES["TransformerBlock"]
BLOCK_TAIL = '''        shortcut = x
        x = self.norm1(x)
        x = self.att(x) if kv_cache is None else self.att(x, kv_cache=kv_cache)
        x = self.drop_shortcut(x) + shortcut

        shortcut = x
        x = self.ff(self.norm2(x))
        return self.drop_shortcut(x) + shortcut'''
POST_NORM = '''        shortcut = x
        x = self.att(x) if kv_cache is None else self.att(x, kv_cache=kv_cache)
        x = self.norm1(self.drop_shortcut(x) + shortcut)

        shortcut = x
        x = self.ff(x)
        return self.norm2(self.drop_shortcut(x) + shortcut)'''


@pytest.mark.parametrize("old, new, hint", [
    (BLOCK_TAIL, POST_NORM, "post-norm"),
    ("x = self.drop_shortcut(x) + shortcut\n\n", "x = self.drop_shortcut(x)\n\n", "shortcut around the attention"),
    ("return self.drop_shortcut(x) + shortcut", "return self.drop_shortcut(x)", "around the feed-forward"),
    ("shortcut = x\n        x = self.norm1(x)", "x = self.norm1(x)\n        shortcut = x", "saved after the LayerNorm"),
    ("x = self.norm1(x)", "x = self.norm2(x)", "norm1 and norm2 are swapped"),
])
def test_transformer_block_mistakes_are_named(old, new, hint):
    code = mutate(BLOCK, old, new)
    if hint == "norm1 and norm2 are swapped":
        code = code.replace("self.ff(self.norm2(x))", "self.ff(self.norm1(x))")
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_transformer_block(solved(TransformerBlock=code)["TransformerBlock"])


def test_transformer_block_with_a_wrong_layer_norm_or_feed_forward_keeps_its_points():
    # A mistake in an earlier exercise costs that exercise only: the block is graded with correct parts.
    check_transformer_block(mutant("LayerNorm", "unbiased=False", "unbiased=True")["TransformerBlock"])
    check_transformer_block(mutant("FeedForward", "nn.Linear(cfg[\"emb_dim\"], 4 * cfg[\"emb_dim\"]),",
                                   "nn.Linear(cfg[\"emb_dim\"], 4 * cfg[\"emb_dim\"], bias=False),")["TransformerBlock"])


@pytest.mark.parametrize("old, new, hint", [
    ("x = self.drop_shortcut(x) + shortcut\n\n", "x = x + shortcut\n\n", "added back without dropout"),
    ("return self.drop_shortcut(x) + shortcut", "return x + shortcut", "feed-forward output is added back"),
    ("return self.drop_shortcut(x) + shortcut", "return self.drop_shortcut(x + shortcut)", "after the shortcut"),
])
def test_dropout_in_the_wrong_place_is_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_transformer_block(mutant("TransformerBlock", old, new)["TransformerBlock"])


def test_a_dropout_under_another_name_passes():
    code = BLOCK.replace("drop_shortcut", "drop_resid")
    check_transformer_block(solved(TransformerBlock=code)["TransformerBlock"])


GPT = SOURCES["GPTModel"]


@pytest.mark.parametrize("old, new, hint", [
    ("x = self.drop_emb(tok_embeds + pos_embeds)", "x = self.drop_emb(tok_embeds)", "position embeddings are missing"),
    ("        x = self.final_norm(x)\n", "", "final_norm is not applied"),
    ("return self.out_head(x)", "return torch.softmax(self.out_head(x), dim=-1)", "returns probabilities"),
    ("bias=False)", "bias=False)\n        self.out_head.weight = self.tok_emb.weight", "(tied)"),
    ("bias=False)", "bias=True)", "out_head has a bias"),
    ("torch.arange(start, start + seq_len, device=in_idx.device)", "torch.arange(seq_len, device=in_idx.device)",
     "positions ignore start"),
])
def test_gpt_model_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_gpt_model(mutant("GPTModel", old, new)["GPTModel"])


def test_gpt_model_built_in_another_order_is_named():
    code = mutate(GPT, '''        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])''', '''        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])''')
    with pytest.raises(GradingError, match="different order"):
        check_gpt_model(solved(GPTModel=code)["GPTModel"])


def test_gpt_model_with_a_wrong_block_or_layer_norm_keeps_its_points():
    check_gpt_model(mutant("TransformerBlock", "return self.drop_shortcut(x) + shortcut",
                           "return self.drop_shortcut(x)")["GPTModel"])
    check_gpt_model(mutant("LayerNorm", "unbiased=False", "unbiased=True")["GPTModel"])
    check_gpt_model(mutant("LayerNorm", "torch.sqrt(var + self.eps)", "(torch.sqrt(var) + self.eps)")["GPTModel"])


def test_gpt_model_without_embedding_dropout_is_named():
    with pytest.raises(GradingError, match="no dropout is applied to the embeddings"):
        check_gpt_model(mutant("GPTModel", "x = self.drop_emb(tok_embeds + pos_embeds)",
                               "x = tok_embeds + pos_embeds")["GPTModel"])


@pytest.mark.parametrize("old, new, hint", [
    ("idx_cond = idx[:, -context_size:]", "idx_cond = idx", "context is not cropped"),
    ("logits = logits[:, -1, :]", "logits = logits[:, 0, :]", "first position"),
    ("torch.argmax(probas, dim=-1, keepdim=True)", "torch.argmax(probas, dim=0, keepdim=True)", "shape (batch, 1)"),
    ("torch.argmax(probas, dim=-1, keepdim=True)", "torch.argmax(probas, dim=-1)", "shape (batch, 1)"),
    ("torch.argmax(probas, dim=-1, keepdim=True)", "torch.argmin(probas, dim=-1, keepdim=True)", "argmin"),
])
def test_generate_text_simple_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_generate_text_simple(mutant("generate_text_simple", old, new)["generate_text_simple"])


@pytest.mark.parametrize("old, new, hint", [
    ("logits / temperature", "logits * temperature", "multiplied by the temperature"),
    ("logits / temperature", "logits", "temperature is ignored"),
    ("logits < cutoff", "logits <= cutoff", "one token too few"),
    ("torch.full_like(logits, -torch.inf)", "torch.zeros_like(logits)", "set to 0"),
    ("top_logits[:, -1:]", "top_logits[:, -1]", "one value per row"),
    ("torch.softmax(logits / temperature, dim=-1)", "torch.softmax(logits / temperature, dim=0)", "wrong dimension"),
    ("return torch.multinomial(probs, num_samples=1)", "return torch.argmax(probs, dim=-1, keepdim=True)",
     "should be sampled"),
    ("return torch.argmax(logits, dim=-1, keepdim=True)  # (B, 1)", "return torch.argmax(logits, dim=-1)",
     "shape (batch, 1)"),
])
def test_next_token_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_next_token(mutant("next_token", old, new)["next_token"])


def test_top_k_ignored_is_named():
    code = SOURCES["next_token"].replace("if top_k is not None:", "if False:")
    with pytest.raises(GradingError, match="top_k is ignored"):
        check_next_token(solved(next_token=code)["next_token"])


@pytest.mark.parametrize("old, new, hint", [
    ("        if eos_id is not None and bool((idx_next == eos_id).all()):\n            break\n"
     "        idx = torch.cat((idx, idx_next), dim=1)\n",
     "        idx = torch.cat((idx, idx_next), dim=1)\n"
     "        if eos_id is not None and bool((idx_next == eos_id).all()):\n            break\n", "appended before"),
    ("        if eos_id is not None and bool((idx_next == eos_id).all()):\n            break\n", "", "does not stop"),
    ("next_token(logits[:, -1, :], temperature, top_k)", "next_token(logits[:, -1, :])", "pass temperature and top_k"),
    ("(idx_next == eos_id).all()", "(idx_next == eos_id).any()", "as soon as one row draws eos_id"),
    ("(idx_next == eos_id).all()", "(idx_next[0] == eos_id).all()", "only the first row is checked"),
    ("logits = model(idx[:, -context_size:])\n", "logits = model(idx)\n", "context is not cropped"),
])
def test_generate_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_generate(mutant("generate", old, new)["generate"])


def test_generate_that_passes_kv_cache_none_to_the_model_passes():
    # The sampling check's fast toy model (an nn.Embedding, so it can run in the student's kernel) takes no
    # kv_cache; generate that always passes one is sampled again with a toy model that accepts it.
    ns = mutant("generate", "logits = model(idx[:, -context_size:])\n",
                "logits = model(idx[:, -context_size:], kv_cache=cache)\n")
    check_generate(ns["generate"])


def test_importing_subclassing_or_wrapping_the_reference_earns_nothing():
    with pytest.raises(GradingError, match="imported from llmkit_solutions.gpt"):
        check_gpt_model(notebook("from llmkit_solutions.gpt import GPTModel")["GPTModel"])
    sub = notebook("import llmkit_solutions.gpt as g\nclass LayerNorm(g.LayerNorm):\n    pass")
    with pytest.raises(GradingError, match="subclasses LayerNorm"):
        check_layer_norm(sub["LayerNorm"])
    wrapped = notebook(HEADER + "from llmkit_solutions.gpt import generate as ref\n"
                                "def generate(*args, **kwargs):\n    return ref(*args, **kwargs)\n")
    with pytest.raises(GradingError, match="calls the reference solution ref"):
        check_generate(wrapped["generate"])
    block = notebook(HEADER + '''
import llmkit_solutions.gpt as g
class TransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.inner = g.TransformerBlock(cfg)
    def forward(self, x, kv_cache=None):
        return self.inner(x)
''')
    with pytest.raises(GradingError, match="calls the reference solution"):
        check_transformer_block(block["TransformerBlock"])


def test_a_crashing_student_model_is_a_failed_check_not_a_crash():
    ns = mutant("GPTModel", "x = self.final_norm(x)", "x = self.final_norm(x, 1)")
    with pytest.raises(GradingError, match="raised TypeError"):
        check_gpt_model(ns["GPTModel"])


# Hints the course's mistake table (course/mutants/05-gpt-architecture.json) leaves to this unit test.
RARER_MISTAKES = [
    ("LayerNorm", "/ torch.sqrt(var + self.eps)", "/ (var + self.eps)", "var_not_std"),
    ("GELU", "(x + 0.044715 * torch.pow(x, 3))", "x", "gelu_no_cube"),
    ("TransformerBlock", "x = self.drop_shortcut(x) + shortcut\n\n", "x = self.drop_shortcut(x)\n\n", "no_shortcuts"),
    ("TransformerBlock", "x = self.drop_shortcut(x) + shortcut\n\n", "x = x + shortcut\n\n", "no_dropout"),
    ("TransformerBlock", "x = self.norm1(x)\n", "x = self.drop_shortcut(self.norm1(x))\n", "drop_on_input"),
    ("TransformerBlock", "        x = self.norm1(x)\n", "", "no_norm1"),
    ("TransformerBlock", "x = self.ff(self.norm2(x))", "x = self.ff(x)", "no_norm2"),
    ("GPTModel", "x = self.drop_emb(tok_embeds + pos_embeds)", "x = self.drop_emb(tok_embeds) + pos_embeds",
     "drop_tok_only"),
    ("GPTModel", "x = self.final_norm(x)", "x = self.drop_emb(self.final_norm(x))", "drop_after_norm"),
    ("GPTModel", "self.pos_emb(torch.arange(start, start + seq_len, device=in_idx.device))", "self.pos_emb(in_idx)",
     "pos_from_ids"),
    ("next_token", "cutoff = top_logits[:, -1:]", "cutoff = torch.topk(logits, top_k + 1).values[:, -1:]",
     "top_k_plus_one"),
]


@pytest.mark.parametrize("name, old, new, key", RARER_MISTAKES)
def test_rarer_mistakes_are_named(name, old, new, key):
    from llmkit_instructor.grading.gpt import HINTS

    code = mutate(SOURCES[name], old, new)
    if key == "no_shortcuts":
        code = code.replace("return self.drop_shortcut(x) + shortcut", "return self.drop_shortcut(x)")
    if key == "no_dropout":
        code = code.replace("return self.drop_shortcut(x) + shortcut", "return x + shortcut")
    if key == "drop_on_input":
        code = code.replace("self.ff(self.norm2(x))", "self.ff(self.drop_shortcut(self.norm2(x)))")
        code = code.replace("x = self.drop_shortcut(x) + shortcut", "x = x + shortcut")
        code = code.replace("return self.drop_shortcut(x) + shortcut", "return x + shortcut")
    with pytest.raises(GradingError, match=re.escape(HINTS[key])):
        CHECKS[name](solved(**{name: code})[name])

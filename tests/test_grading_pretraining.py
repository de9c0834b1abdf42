"""The stage-6 checks: correct solutions in other styles pass; realistic mistakes fail by name."""

import re

import pytest
import torch

from llmkit_instructor.grading import GradingError
from llmkit_instructor.grading.pretraining import (
    check_calc_loss_batch,
    check_calc_loss_loader,
    check_evaluate_model,
    check_load_weights_into_gpt,
    check_softmax_with_temperature,
    check_top_k_filter,
    check_train_model_simple,
)
from llmkit_solutions import loading
from llmkit_solutions import pretraining as ref
from tests.grading_helpers import mutate, notebook, reference_source

HEADER = "import math\nimport numpy as np\nimport torch\nfrom torch import nn\nimport torch.nn.functional as F\n"
# What the notebook gives: the stage-5 helpers and generate_and_print_sample, written in the notebook.
GIVEN = (HEADER + "from llmkit.tokenizers import encode_text\n"
         + "from llmkit_solutions.gpt import generate_text_simple, text_to_token_ids, token_ids_to_text\n"
         + reference_source(ref.generate_and_print_sample))
LOSS_BATCH = reference_source(ref.calc_loss_batch)
LOSS_LOADER = reference_source(ref.calc_loss_loader)
EVALUATE = reference_source(ref.evaluate_model)
TRAIN = reference_source(ref.train_model_simple)
SOFTMAX_T = reference_source(ref.softmax_with_temperature)
TOP_K = reference_source(ref.top_k_filter)
LOAD_HELPERS = (HEADER + "from llmkit.errors import LLMKitError\nCONFIG_HINT = 'use the checkpoint config'\n"
                + "".join(reference_source(getattr(loading, n)) for n in ("_shape", "_to_tensor", "_copy_into",
                                                                          "_get", "_linear")))
LOAD = reference_source(loading.load_weights_into_gpt)


def solved(**replace):
    """A notebook namespace with every stage-6 answer; ``replace`` swaps one answer's source."""
    parts = {"calc_loss_batch": LOSS_BATCH, "calc_loss_loader": LOSS_LOADER, "evaluate_model": EVALUATE,
             "train_model_simple": TRAIN, "softmax_with_temperature": SOFTMAX_T, "top_k_filter": TOP_K}
    parts.update(replace)
    return notebook(GIVEN + "".join(parts.values()))


CHECKS = {"calc_loss_batch": check_calc_loss_batch, "calc_loss_loader": check_calc_loss_loader,
          "evaluate_model": check_evaluate_model, "train_model_simple": check_train_model_simple,
          "softmax_with_temperature": check_softmax_with_temperature, "top_k_filter": check_top_k_filter}


@pytest.mark.parametrize("name", list(CHECKS))
def test_the_reference_written_in_a_notebook_passes(name):
    CHECKS[name](solved()[name])


def test_the_reference_loader_written_in_a_notebook_passes():
    check_load_weights_into_gpt(notebook(LOAD_HELPERS + LOAD)["load_weights_into_gpt"])


# --------------------------------------------------------------------------- other correct styles

OTHER_LOSS = '''
def calc_loss_batch(input_batch, target_batch, model, device):
    logits = model(input_batch.to(device))
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, target_batch.to(device).unsqueeze(-1)).squeeze(-1)
    return -picked.mean()
'''
TRANSPOSED_LOSS = '''
def calc_loss_batch(input_batch, target_batch, model, device):
    logits = model(input_batch.to(device))                   # (B, T, V)
    return F.cross_entropy(logits.transpose(1, 2), target_batch.to(device))  # (B, V, T) is fine too
'''
OTHER_LOADER = '''
import itertools
def calc_loss_loader(data_loader, model, device, num_batches=None):
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    if n == 0:
        return float("nan")
    losses = [calc_loss_batch(x, y, model, device) for x, y in itertools.islice(data_loader, n)]
    return torch.stack(losses).mean().item()
'''
OTHER_EVALUATE = '''
def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        losses = tuple(calc_loss_loader(l, model, device, num_batches=eval_iter) for l in (train_loader, val_loader))
    model.train(was_training)
    return losses
'''
OTHER_TRAIN = '''
def train_model_simple(model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq, eval_iter,
                       start_context, tokenizer):
    history = {"train": [], "val": [], "tokens": []}
    tokens = 0
    step = 0
    for epoch in range(num_epochs):
        model.train()
        for inputs, targets in train_loader:
            loss = calc_loss_batch(inputs, targets, model, device)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            tokens += inputs.shape[0] * inputs.shape[1]
            if step % eval_freq == 0:
                tr, va = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                history["train"].append(tr)
                history["val"].append(va)
                history["tokens"].append(tokens)
            step += 1
        generate_and_print_sample(model, tokenizer, device, start_context)
    return history["train"], history["val"], history["tokens"]
'''
OTHER_SAMPLING = '''
def softmax_with_temperature(logits, temperature):
    z = logits / temperature
    e = torch.exp(z - z.max())
    return e / e.sum()

def top_k_filter(logits, top_k):
    _, keep = torch.topk(logits, top_k, dim=-1)
    out = torch.full_like(logits, float("-inf"))
    return out.scatter(-1, keep, logits.gather(-1, keep))
'''
OTHER_LOAD = HEADER + '''
def put(param, value):
    value = torch.as_tensor(np.asarray(value))
    assert param.shape == value.shape, (param.shape, value.shape)
    with torch.no_grad():
        param.copy_(value)

def load_weights_into_gpt(gpt, params):
    put(gpt.tok_emb.weight, params["wte"])
    put(gpt.pos_emb.weight, params["wpe"])
    for block, p in zip(gpt.trf_blocks, params["blocks"]):
        w_q, w_k, w_v = np.split(p["attn"]["c_attn"]["w"], 3, axis=-1)
        b_q, b_k, b_v = np.split(p["attn"]["c_attn"]["b"], 3, axis=-1)
        for lin, w, b in ((block.att.W_query, w_q, b_q), (block.att.W_key, w_k, b_k), (block.att.W_value, w_v, b_v)):
            put(lin.weight, w.T)
            put(lin.bias, b)
        for lin, conv in ((block.att.out_proj, p["attn"]["c_proj"]), (block.ff.layers[0], p["mlp"]["c_fc"]),
                          (block.ff.layers[2], p["mlp"]["c_proj"])):
            put(lin.weight, conv["w"].T)
            put(lin.bias, conv["b"])
        put(block.norm1.scale, p["ln_1"]["g"]); put(block.norm1.shift, p["ln_1"]["b"])
        put(block.norm2.scale, p["ln_2"]["g"]); put(block.norm2.shift, p["ln_2"]["b"])
    put(gpt.final_norm.scale, params["g"])
    put(gpt.final_norm.shift, params["b"])
    put(gpt.out_head.weight, params["wte"])
'''


@pytest.mark.parametrize("name, code", [
    ("calc_loss_batch", OTHER_LOSS), ("calc_loss_batch", TRANSPOSED_LOSS), ("calc_loss_loader", OTHER_LOADER),
    ("evaluate_model", OTHER_EVALUATE), ("train_model_simple", OTHER_TRAIN),
])
def test_other_correct_styles_pass(name, code):
    CHECKS[name](solved(**{name: code})[name])


def test_other_sampling_and_loading_styles_pass():
    ns = solved(softmax_with_temperature=OTHER_SAMPLING, top_k_filter="")
    check_softmax_with_temperature(ns["softmax_with_temperature"])
    check_top_k_filter(ns["top_k_filter"])
    check_load_weights_into_gpt(notebook(OTHER_LOAD)["load_weights_into_gpt"])


# --------------------------------------------------------------------------- mistakes, each named

@pytest.mark.parametrize("old, new, hint", [
    ("target_batch.flatten())", "input_batch.flatten())", "compare them with target_batch"),
    ("logits.flatten(0, 1), target_batch.flatten()", "logits[:, :-1].flatten(0, 1), target_batch[:, 1:].flatten()",
     "shifted twice"),
    ("logits.flatten(0, 1), target_batch.flatten()", "logits, target_batch", "flatten both"),
    ("target_batch.flatten())", "target_batch.flatten(), reduction='sum')", "the loss is summed"),
    ("target_batch.flatten())", "target_batch.flatten()).item()", "not loss.item()"),
    ("logits.flatten(0, 1), target_batch.flatten()", "logits[:, -1], target_batch[:, -1]",
     "only the last position"),
    ("    logits = model(input_batch)", "    with torch.no_grad():\n        logits = model(input_batch)",
     "must not run under torch.no_grad()"),
])
def test_loss_batch_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_calc_loss_batch(solved(calc_loss_batch=mutate(LOSS_BATCH, old, new))["calc_loss_batch"])


@pytest.mark.parametrize("old, new, hint", [
    ("return total / num_batches", "return total / len(data_loader)", "divide by num_batches"),
    ("if i >= num_batches:", "if i > num_batches:", "one batch too many"),
    ("else min(num_batches, len(data_loader))", "else num_batches", "not reduced to len(data_loader)"),
    ("        return float(\"nan\")\n", "        pass\n", "return float('nan')"),
    ("return total / num_batches", "return total", "summed; return their mean"),
])
def test_loss_loader_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_calc_loss_loader(solved(calc_loss_loader=mutate(LOSS_LOADER, old, new))["calc_loss_loader"])


@pytest.mark.parametrize("old, new, hint", [
    ("    model.eval()\n", "", "dropout is on"),
    ("    with torch.no_grad():\n", "    if True:\n", "under torch.no_grad()"),
    ("    model.train()\n", "", "call model.train() before returning"),
    ("return train_loss, val_loss", "return val_loss, train_loss", "wrong order"),
    ("num_batches=eval_iter)\n        val_loss", "num_batches=None)\n        val_loss", "eval_iter is ignored"),
])
def test_evaluate_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_evaluate_model(solved(evaluate_model=mutate(EVALUATE, old, new))["evaluate_model"])


@pytest.mark.parametrize("old, new, hint", [
    ("            optimizer.zero_grad()\n", "", "gradients accumulate"),
    ("tokens_seen += input_batch.numel()", "tokens_seen += input_batch.shape[0]", "counts sequences"),
    ("global_step = 0, -1", "global_step = 0, 0", "first evaluation comes eval_freq steps late"),
    ("            optimizer.step()\n", "", "weights did not change"),
])
def test_training_loop_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_train_model_simple(solved(train_model_simple=mutate(TRAIN, old, new))["train_model_simple"])


def test_a_wrong_helper_costs_only_its_own_exercise():
    """train_model_simple calling a wrong calc_loss_batch still earns its points; the loss check fails."""
    ns = solved(calc_loss_batch=mutate(LOSS_BATCH, "target_batch.flatten())", "input_batch.flatten())"))
    check_train_model_simple(ns["train_model_simple"])
    check_evaluate_model(ns["evaluate_model"])
    check_calc_loss_loader(ns["calc_loss_loader"])
    with pytest.raises(GradingError):
        check_calc_loss_batch(ns["calc_loss_batch"])


def test_a_train_loop_that_trains_in_eval_mode_is_named():
    ns = solved(train_model_simple=mutate(TRAIN, "        model.train()\n", "        model.eval()\n"))
    with pytest.raises(GradingError, match="call model.train\\(\\) at the start of each epoch"):
        check_train_model_simple(ns["train_model_simple"])


@pytest.mark.parametrize("old, new, hint", [
    ("softmax(logits / temperature", "softmax(logits * temperature", "multiplied by the temperature"),
    ("torch.softmax(logits / temperature, dim=-1)", "torch.softmax(logits, dim=-1) / temperature",
     "divided by the temperature after the softmax"),
])
def test_temperature_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_softmax_with_temperature(solved(softmax_with_temperature=mutate(SOFTMAX_T, old, new))[
            "softmax_with_temperature"])


@pytest.mark.parametrize("old, new, hint", [
    ("torch.full_like(logits, -torch.inf)", "torch.zeros_like(logits)", "set them to -inf"),
    ("logits < cutoff", "logits <= cutoff", "only k-1 logits survive"),
    ("top_logits[..., -1:]", "top_logits[:, -1]", "its own k-th largest"),
    ("torch.topk(logits, top_k, dim=-1)", "torch.topk(logits, top_k, dim=-1, largest=False)",
     "k smallest"),
])
def test_top_k_mistakes_are_named(old, new, hint):
    code = mutate(TOP_K, old, new)
    if "largest=False" in new:
        code = code.replace("logits < cutoff", "logits > cutoff")
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_top_k_filter(solved(top_k_filter=code)["top_k_filter"])


@pytest.mark.parametrize("old, new, hint", [
    ('_copy_into(lin.weight, _linear(w), f"{at}.att.{n}.weight")', '_copy_into(lin.weight, w, f"{at}.att.{n}.weight")',
     "transpose them"),
    ('zip(("W_query", "W_key", "W_value"), qkv_w, qkv_b)', 'zip(("W_key", "W_query", "W_value"), qkv_w, qkv_b)',
     "query, key and value side by side"),
    ('    _copy_into(gpt.out_head.weight, params["wte"], "out_head.weight")  # (vocab, E), tied to wte\n', "",
     "ties its output head"),
    ('_copy_into(norm.scale, _get(ln, "g", inner)', '_copy_into(norm.scale, _get(ln, "b", inner)', "is the scale"),
    ('(block.norm1, "ln_1", "norm1"), (block.norm2, "ln_2", "norm2")',
     '(block.norm1, "ln_2", "norm1"), (block.norm2, "ln_1", "norm2")', "ln_1 is the norm before attention"),
    ('_copy_into(lin.weight, _linear(_get(conv, "w", inner)), f"{at}.{n}.weight")',
     '_copy_into(lin.weight, _to_tensor(_get(conv, "w", inner)), f"{at}.{n}.weight")', "transpose them"),
])
def test_loading_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_load_weights_into_gpt(notebook(LOAD_HELPERS + mutate(LOAD, old, new))["load_weights_into_gpt"])


def test_importing_or_wrapping_the_reference_earns_nothing():
    ns = notebook("from llmkit_solutions.pretraining import calc_loss_batch, train_model_simple")
    with pytest.raises(GradingError, match="imported from llmkit_solutions.pretraining"):
        check_calc_loss_batch(ns["calc_loss_batch"])
    wrapped = notebook(HEADER + '''
import llmkit.training
def calc_loss_batch(input_batch, target_batch, model, device):
    return llmkit.training.lm_loss(model, input_batch, target_batch)
''')
    with pytest.raises(GradingError, match="calls the reference solution"):
        check_calc_loss_batch(wrapped["calc_loss_batch"])
    loader = notebook("from llmkit_solutions.loading import load_weights_into_gpt as inner\n"
                      "def load_weights_into_gpt(gpt, params):\n    inner(gpt, params)\n")
    with pytest.raises(GradingError, match="calls the reference solution inner"):
        check_load_weights_into_gpt(loader["load_weights_into_gpt"])


def test_a_crashing_function_is_a_failed_check_not_a_crash():
    code = mutate(TRAIN, "loss.backward()", "loss.backwards()")
    with pytest.raises(GradingError, match="raised AttributeError"):
        check_train_model_simple(solved(train_model_simple=code)["train_model_simple"])


def test_checks_leave_the_thread_count_alone():
    threads = torch.get_num_threads()
    check_top_k_filter(solved()["top_k_filter"])
    assert torch.get_num_threads() == threads


# Hints the course's mistake table (course/mutants/06-pretraining.json) leaves to this unit test.
EVALUATION_LINE = ("                print(f\"Ep {epoch + 1} (Step {global_step:06d}): Train loss {train_loss:.3f}, "
                   "Val loss {val_loss:.3f}\")\n")
RARER_MISTAKES = [
    ("calc_loss_batch", "cross_entropy(logits.flatten(0, 1)", "cross_entropy(torch.softmax(logits, dim=-1).flatten(0, 1)",
     "softmax_first"),
    ("calc_loss_batch", "logits.flatten(0, 1), target_batch.flatten()",
     "logits.transpose(0, 1).flatten(0, 1), target_batch.flatten()", "flatten_order"),
    ("calc_loss_batch", "target_batch.flatten())", "target_batch.flatten(), reduction='none')", "not_scalar"),
    ("calc_loss_batch", "    logits = model(input_batch)", "    model.eval()\n    logits = model(input_batch)",
     "mode_changed"),
    ("calc_loss_loader", "num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))",
     "num_batches = len(data_loader)", "ignores_num_batches"),
    ("calc_loss_loader", "        if i >= num_batches:\n            break\n", "", "no_break"),
    ("train_model_simple", "tokens_seen += input_batch.numel()", "tokens_seen += input_batch.shape[1]", "tokens_cols"),
    ("train_model_simple", "            tokens_seen += input_batch.numel()\n", "", "tokens_late"),
    ("softmax_with_temperature", "softmax(logits / temperature", "softmax(logits", "ignores_t"),
]


@pytest.mark.parametrize("name, old, new, key", RARER_MISTAKES)
def test_rarer_mistakes_are_named(name, old, new, key):
    from llmkit_instructor.grading.pretraining import HINTS

    code = mutate(reference_source(getattr(ref, name)), old, new)
    if key == "tokens_late":  # the batch's tokens are counted after the evaluation instead of before it
        code = code.replace(EVALUATION_LINE, EVALUATION_LINE + "            tokens_seen += input_batch.numel()\n")
    with pytest.raises(GradingError, match=re.escape(HINTS[key])):
        CHECKS[name](solved(**{name: code})[name])


def test_a_block_loaded_into_another_block_is_named():
    from llmkit_instructor.grading.pretraining import HINTS

    code = mutate(LOAD, "zip(gpt.trf_blocks, blocks)", "zip(gpt.trf_blocks, blocks[::-1])")
    with pytest.raises(GradingError, match=re.escape(HINTS["block_index"])):
        check_load_weights_into_gpt(notebook(LOAD_HELPERS + code)["load_weights_into_gpt"])

"""Hidden-test checks for stage 5: the GPT architecture and text generation.

Modules are built with a tiny config and seeded; the student's weights (with seeded noise added, so
LayerNorm's ``scale``/``shift`` are not the identity) are copied into the reference, outputs are
compared on seeded inputs, and on a mismatch the output of each known-wrong variant is computed to
name the mistake. Generation is checked with the reference model (so an earlier mistake in the
model does not count twice), a recorder that sees what the model was fed, and sampling statistics.

Under trusted grading the student's classes and functions run in their kernel: weights go in with
``load_state_dict`` and come back as copies, the reference model and the toy models are lent to the
student's generation functions (each call asks the grader), and a toy model for a 2,000-step
sampling loop is built in the kernel from torch's own ``nn.Embedding`` so the loop stays there.
"""

from __future__ import annotations

import copy
import inspect
import math

import torch
from torch import nn

from llmkit.i18n.runtime import N_, _

from . import (GradingError, assert_defined_in_notebook, call_checked, close, fail_with_diagnosis, seeded,
               transplant, with_hint)
from .remote import is_remote

TINY = {"vocab_size": 40, "context_length": 12, "emb_dim": 16, "n_heads": 2, "n_layers": 2, "drop_rate": 0.0,
        "qkv_bias": False}
BOOK_TOTAL, BOOK_TIED = 163_009_536, 124_412_160
BOOK_BLOCKS = 12 * 7_085_568  # the twelve transformer blocks of GPT_CONFIG_124M

HINTS = {
    "unbiased": N_("the variance is the unbiased one (divides by n - 1); use var(dim=-1, keepdim=True, unbiased=False) "
                   "(or correction=0), as GPT-2's LayerNorm does."),
    "no_eps": N_("eps is missing: divide by torch.sqrt(var + self.eps) with eps = 1e-5, so a row with zero variance "
                 "does not divide by zero."),
    "eps_outside": N_("eps is added outside the square root; the book divides by torch.sqrt(var + eps)."),
    "norm_dim": N_("the statistics are taken over the wrong dimension; normalise each vector over its last "
                   "dimension (dim=-1, keepdim=True)."),
    "no_affine": N_("scale and shift are not applied: return self.scale * normalised + self.shift."),
    "var_not_std": N_("the centred input is divided by the variance; divide by the standard deviation "
                      "torch.sqrt(var + eps)."),
    "gelu_exact": N_("this is the exact GELU (with erf); GPT-2 uses the tanh approximation "
                     "0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x ** 3)))."),
    "gelu_no_sqrt": N_("the factor inside tanh is 2 / pi; it is its square root, sqrt(2 / pi)."),
    "gelu_coefficient": N_("the cubic coefficient is wrong; it is 0.044715."),
    "gelu_no_half": N_("the factor 0.5 in front is missing."),
    "gelu_no_cube": N_("the cubic term is missing: tanh(sqrt(2 / pi) * (x + 0.044715 * x ** 3))."),
    "relu": N_("this is ReLU; GPT-2's activation is GELU (tanh approximation)."),
    "ff_no_activation": N_("there is no activation between the two linear layers; put GELU() between them."),
    "ff_shapes": N_("FeedForward needs two nn.Linear layers, emb_dim -> 4 * emb_dim and 4 * emb_dim -> emb_dim, "
                    "with biases (nn.Linear's default bias=True)."),
    "ff_relu": N_("the activation is ReLU; use the GELU you wrote."),
    "ff_exact": N_("the activation is the exact GELU (nn.GELU() defaults to erf); use the GELU you wrote "
                   "(tanh approximation)."),
    "post_norm": N_("the LayerNorms come after the shortcut additions (post-norm, the original transformer); GPT-2 "
                    "normalises before each sub-layer: x = x + att(norm1(x)), then x = x + ff(norm2(x))."),
    "no_shortcut_att": N_("the shortcut around the attention is missing: add the block's input back after "
                          "the attention (x = drop_shortcut(att(norm1(x))) + shortcut)."),
    "no_shortcut_ff": N_("the shortcut around the feed-forward part is missing: add x back after ff(norm2(x))."),
    "no_shortcuts": N_("both shortcut connections are missing: add each sub-layer's input back to its output."),
    "shortcut_after_norm": N_("the shortcut is saved after the LayerNorm; save the block's input before norm1 "
                              "(and before norm2), so the shortcut carries the unnormalised x."),
    "no_drop_att": N_("the attention's output is added back without dropout: in training it goes through the dropout "
                      "before the shortcut is added, x = drop_shortcut(att(norm1(x))) + shortcut."),
    "no_drop_ff": N_("the feed-forward output is added back without dropout: in training it goes through the dropout "
                     "before the shortcut is added, drop_shortcut(ff(norm2(x))) + shortcut."),
    "no_dropout": N_("the block applies no dropout: in training, each sub-layer's output goes through "
                     "nn.Dropout(cfg[\"drop_rate\"]) before its shortcut is added."),
    "drop_after_add": N_("the dropout is applied after the shortcut addition, so it also drops the shortcut; apply it "
                         "to the sub-layer's output alone: drop_shortcut(att(norm1(x))) + shortcut."),
    "drop_on_input": N_("the dropout is applied to the sub-layer's input; apply it to the sub-layer's output, before "
                        "the shortcut is added."),
    "no_drop_emb": N_("no dropout is applied to the embeddings: x = drop_emb(tok_embeds + pos_embeds) before the blocks."),
    "drop_tok_only": N_("the dropout is applied to the token embeddings alone; apply it to their sum with the position "
                        "embeddings, drop_emb(tok_embeds + pos_embeds)."),
    "drop_after_norm": N_("a dropout is applied after final_norm; the book's model applies dropout only to the "
                          "embeddings and inside the blocks."),
    "norms_swapped": N_("norm1 and norm2 are swapped: norm1 goes before the attention, norm2 before the feed-forward."),
    "no_norm1": N_("norm1 is not applied before the attention."),
    "no_norm2": N_("norm2 is not applied before the feed-forward part."),
    "no_pos": N_("the position embeddings are missing: add pos_emb(torch.arange(start, start + seq_len))."),
    "no_final_norm": N_("final_norm is not applied before out_head."),
    "softmax_out": N_("the model returns probabilities; return the logits (out_head's output) without a softmax."),
    "pos_from_ids": N_("the position embeddings are looked up with the token ids; use the positions "
                       "torch.arange(start, start + seq_len)."),
    "tied": N_("out_head shares its weight with tok_emb (tied); the book's GPTModel gives out_head its own weight "
               "(tying is counted separately as 124,412,160)."),
    "head_bias": N_("out_head has a bias; GPT-2's output head has none: nn.Linear(emb_dim, vocab_size, bias=False)."),
    "order": N_("the modules are built in a different order from the book's (tok_emb, pos_emb, drop_emb, trf_blocks, "
                "final_norm, out_head), so seed 123 does not give the book's weights."),
    "cache_positions": N_("the positions ignore start: with a kv_cache the new tokens sit at positions start, "
                          "start + 1, ...; use torch.arange(start, start + seq_len)."),
    "no_crop": N_("the context is not cropped: feed the model only the last context_size tokens, idx[:, -context_size:]."),
    "first_position": N_("the next token is chosen from the first position's logits; use the last one, logits[:, -1, :]."),
    "next_shape": N_("the new ids must have shape (batch, 1): take argmax over the last dimension (the vocabulary), "
                     "dim=-1, with keepdim=True, then torch.cat along dim=1."),
    "argmin": N_("argmin picks the least likely token; greedy decoding takes argmax."),
    "temperature_times": N_("the logits are multiplied by the temperature; divide them: logits / temperature."),
    "temperature_ignored": N_("the temperature is ignored; divide the logits by it before the softmax."),
    "greedy_only": N_("with temperature > 0 the next id should be sampled (torch.multinomial on the softmax), "
                      "not taken with argmax."),
    "uniform": N_("every token is equally likely: the softmax runs over the wrong dimension; use dim=-1."),
    "top_k_ignored": N_("top_k is ignored: keep only the k largest logits (set the rest to -inf) before sampling."),
    "top_k_minus_one": N_("one token too few is kept: mask logits < the k-th largest, not <=."),
    "top_k_plus_one": N_("one token too many is kept: the cutoff is the k-th largest logit, top_logits[:, -1:]."),
    "top_k_zero": N_("the tokens outside the top k are set to 0; set them to -inf so their probability is 0."),
    "top_k_rows": N_("the cutoff must be one value per row, shape (batch, 1): top_logits[:, -1:] (or [:, [-1]])."),
    "eos_appended": N_("eos_id is appended before stopping; stop as soon as it is drawn, without adding it."),
    "eos_any_row": N_("generation stops as soon as one row draws eos_id; stop only when every row's next id is eos_id: "
                      "(idx_next == eos_id).all()."),
    "eos_first_row": N_("only the first row is checked for eos_id; stop when every row's next id is eos_id: "
                        "(idx_next == eos_id).all()."),
    "eos_ignored": N_("generation does not stop at eos_id: break out of the loop when the next id is eos_id."),
    "not_forwarded": N_("generate samples greedily although temperature > 0: pass temperature and top_k on to "
                        "next_token."),
}


# Hints the course's mistake table does not simulate end to end (each notebook there takes long to grade):
# tests/test_grading_gpt.py names every one of them with a mutated solution.
UNIT_TESTED = "named by a mutated solution in tests/test_grading_gpt.py"
NOT_SIMULATED = {
    "no_eps": UNIT_TESTED,
    "norm_dim": UNIT_TESTED,
    "no_affine": UNIT_TESTED,
    "var_not_std": UNIT_TESTED,
    "gelu_exact": UNIT_TESTED,
    "gelu_no_sqrt": UNIT_TESTED,
    "gelu_coefficient": UNIT_TESTED,
    "gelu_no_half": UNIT_TESTED,
    "gelu_no_cube": UNIT_TESTED,
    "relu": UNIT_TESTED,
    "ff_no_activation": UNIT_TESTED,
    "ff_relu": UNIT_TESTED,
    "no_shortcut_att": UNIT_TESTED,
    "no_shortcut_ff": UNIT_TESTED,
    "no_shortcuts": UNIT_TESTED,
    "shortcut_after_norm": UNIT_TESTED,
    "no_drop_att": UNIT_TESTED,
    "no_dropout": UNIT_TESTED,
    "drop_on_input": UNIT_TESTED,
    "drop_tok_only": UNIT_TESTED,
    "drop_after_norm": UNIT_TESTED,
    "norms_swapped": UNIT_TESTED,
    "no_norm1": UNIT_TESTED,
    "no_norm2": UNIT_TESTED,
    "no_pos": UNIT_TESTED,
    "no_final_norm": UNIT_TESTED,
    "pos_from_ids": UNIT_TESTED,
    "order": UNIT_TESTED,
    "cache_positions": UNIT_TESTED,
    "first_position": UNIT_TESTED,
    "argmin": UNIT_TESTED,
    "temperature_ignored": UNIT_TESTED,
    "greedy_only": UNIT_TESTED,
    "uniform": UNIT_TESTED,
    "top_k_ignored": UNIT_TESTED,
    "top_k_minus_one": UNIT_TESTED,
    "top_k_plus_one": UNIT_TESTED,
    "top_k_zero": UNIT_TESTED,
    "top_k_rows": UNIT_TESTED,
    "eos_first_row": UNIT_TESTED,
    "eos_ignored": UNIT_TESTED,
    "not_forwarded": UNIT_TESTED,
    "shortcut_after_norm1": UNIT_TESTED,
    "shortcut_after_norm2": UNIT_TESTED,
}


# --------------------------------------------------------------------------- helpers


def _with_hint(err: GradingError, hint: str | None) -> GradingError:
    """``err`` followed by the hint (an English HINTS text, translated by ``with_hint``) when there is one."""
    return GradingError(with_hint(str(err), hint))


def _perturb(module: nn.Module, seed: int) -> None:
    """Add seeded noise to every parameter, so identity LayerNorms and swapped modules become visible.

    The noisy weights go in through ``load_state_dict``: a module in the student's kernel hands out
    copies of its parameters, so changing those in place would change nothing there.
    """
    g = seeded(seed)
    noisy = {name: p.detach() + 0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype)
             for name, p in module.named_parameters()}
    module.load_state_dict(noisy, strict=False)


def _notebook_class_name(module) -> str | None:
    """The name of a module's class when the notebook defined it (for hints only, never for a verdict)."""
    if is_remote(module):
        mro = object.__getattribute__(module, "_meta").get("mro") or [""]
        module_name, _dot, qualname = str(mro[0]).rpartition(".")
    else:
        module_name, qualname = type(module).__module__, type(module).__qualname__
    return qualname if module_name == "__main__" else None


def _transplant(student, reference, what):
    src = [tuple(p.shape) for _name, p in student.named_parameters()]
    dst = [tuple(p.shape) for _name, p in reference.named_parameters()]
    if sorted(src) != sorted(dst):
        names = ", ".join(f"{n}{tuple(p.shape)}" for n, p in student.named_parameters())
        book_names = ", ".join(f"{n}{tuple(p.shape)}" for n, p in reference.named_parameters())
        # TRANSLATORS: {what} is a class name (LayerNorm, GPTModel); {names} and {book_names} list parameters
        # with their shapes.
        raise GradingError(_("{what}'s parameters [{names}] do not match the book's [{book_names}]; keep the "
                             "book's layers, names and sizes.").format(what=what, names=names, book_names=book_names))
    try:
        transplant(student, reference)
    except GradingError:
        book_names = ", ".join(n for n, _p in reference.named_parameters())
        # TRANSLATORS: {what} is a class name; {book_names} lists the reference's parameter names.
        raise GradingError(_("{what}'s parameters could not be matched to the book's by name or order; keep the "
                             "book's names ({book_names}).").format(what=what, book_names=book_names)) from None


def _same_as_reference(student_sub, reference_sub, x) -> bool:
    with torch.no_grad():
        try:
            return close(student_sub(x), reference_sub(x))
        except Exception:
            return False


def _accepts_kv_cache(module) -> bool:
    try:
        return "kv_cache" in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False


def _check_dropout_off_in_eval(module, x, name):
    module.eval()
    with torch.no_grad():
        first, second = call_checked(f"{name}.forward", module, x), module(x)
    if not torch.allclose(first, second, equal_nan=True):
        # TRANSLATORS: {name} is a class name (TransformerBlock, GPTModel).
        raise GradingError(_("{name} gives different outputs for the same input in eval mode: dropout is active "
                             "in eval; use nn.Dropout layers (model.eval() switches them off).").format(name=name))


# --------------------------------------------------------------------------- LayerNorm


def layer_norm(x, scale, shift, eps=1e-5, unbiased=False, dim=-1, eps_outside=False, affine=True, std=True):
    """Reference LayerNorm with switchable mistakes."""
    mean = x.mean(dim=dim, keepdim=True)
    var = x.var(dim=dim, keepdim=True, unbiased=unbiased)
    denom = (torch.sqrt(var) + eps if eps_outside else torch.sqrt(var + eps)) if std else var + eps
    norm = (x - mean) / denom
    return scale * norm + shift if affine else norm


def check_layer_norm(cls):
    from llmkit_solutions.gpt import LayerNorm

    assert_defined_in_notebook(cls)
    dim = 8
    student = call_checked(f"LayerNorm({dim})", cls, dim)
    shapes = sorted(tuple(p.shape) for p in student.parameters())
    if shapes != [(dim,), (dim,)]:
        raise GradingError(_("LayerNorm({dim}) has parameters of shapes {shapes}; it needs two trainable vectors of "
                             "size emb_dim: scale = nn.Parameter(torch.ones(emb_dim)) and shift (zeros).").format(
                                 dim=dim, shapes=shapes))
    reference = LayerNorm(dim)
    x = torch.randn(2, 5, dim, generator=seeded(51))
    fresh = call_checked("LayerNorm.forward", student, x)
    _transplant(student, reference, "LayerNorm")
    with torch.no_grad():
        if close(student(x), reference(x)) and not close(fresh, LayerNorm(dim)(x)):
            raise GradingError(_("A new LayerNorm should leave normalised vectors unchanged: start scale at ones and "
                                 "shift at zeros."))
    _perturb(student, 52)
    _transplant(student, reference, "LayerNorm")
    constant = torch.full((1, dim), 3.0)
    cases = [x, 0.01 * torch.randn(4, dim, generator=seeded(53)) + 2.0,  # small variance: eps matters
             3.0 * torch.randn(3, 2, dim, generator=seeded(54)) - 1.0]
    with torch.no_grad():
        for inputs in cases:
            out = call_checked(_("LayerNorm.forward on shape {shape}").format(shape=tuple(inputs.shape)), student,
                               inputs)
            expected = reference(inputs)
            if not close(out, expected):
                s, b = reference.scale, reference.shift
                variants = {name: (layer_norm(inputs, s, b, **kw), HINTS[name]) for name, kw in {
                    "unbiased": dict(unbiased=True), "no_eps": dict(eps=0.0), "eps_outside": dict(eps_outside=True),
                    "no_affine": dict(affine=False), "var_not_std": dict(std=False)}.items()}
                if inputs.dim() == 3:
                    variants["norm_dim"] = (layer_norm(inputs, s, b, dim=1), HINTS["norm_dim"])
                    variants["norm_dim_0"] = (layer_norm(inputs, s, b, dim=0), HINTS["norm_dim"])
                fail_with_diagnosis(_("LayerNorm's output on inputs of shape {shape}").format(
                    shape=tuple(inputs.shape)), out, expected, variants)
        out = call_checked(_("LayerNorm.forward on a constant vector"), student, constant)
        if not torch.isfinite(out).all():
            raise GradingError(_("LayerNorm returns NaN for a vector whose entries are all equal: {hint}").format(
                hint=_(HINTS["no_eps"])))


# --------------------------------------------------------------------------- GELU


def gelu(x, coefficient=0.044715, root=True, half=0.5, cube=True):
    factor = math.sqrt(2.0 / math.pi) if root else 2.0 / math.pi
    inner = factor * (x + coefficient * x ** 3) if cube else factor * x
    return half * x * (1.0 + torch.tanh(inner))


def _gelu_variants(x):
    return {"gelu_exact": (nn.functional.gelu(x), HINTS["gelu_exact"]),
            "gelu_no_sqrt": (gelu(x, root=False), HINTS["gelu_no_sqrt"]),
            "gelu_coefficient": (gelu(x, coefficient=0.44715), HINTS["gelu_coefficient"]),
            "gelu_no_half": (gelu(x, half=1.0), HINTS["gelu_no_half"]),
            "gelu_no_cube": (gelu(x, cube=False), HINTS["gelu_no_cube"]),
            "relu": (torch.relu(x), HINTS["relu"])}


def check_gelu(cls):
    from llmkit_solutions.gpt import GELU

    assert_defined_in_notebook(cls)
    student = call_checked("GELU()", cls)
    reference = GELU()
    for x in (torch.linspace(-5, 5, 101), torch.randn(2, 3, 7, generator=seeded(55))):
        out = call_checked(_("GELU on shape {shape}").format(shape=tuple(x.shape)), student, x)
        expected = reference(x)
        if not isinstance(out, torch.Tensor) or not close(out, expected):
            if not isinstance(out, torch.Tensor):
                # TRANSLATORS: {type_name} is a Python type name (list, float).
                raise GradingError(_("GELU should return a tensor, got {type_name}.").format(
                    type_name=type(out).__name__))
            fail_with_diagnosis(_("GELU's output on shape {shape}").format(shape=tuple(x.shape)), out, expected,
                                _gelu_variants(x))


# --------------------------------------------------------------------------- FeedForward


def check_feed_forward(cls):
    from llmkit_solutions.gpt import FeedForward

    assert_defined_in_notebook(cls)
    cfg = dict(TINY)
    E = cfg["emb_dim"]
    torch.manual_seed(56)
    student = call_checked("FeedForward(cfg)", cls, cfg)
    reference = FeedForward(cfg)
    shapes = sorted(tuple(p.shape) for p in student.parameters())
    expected_shapes = sorted([(4 * E, E), (4 * E,), (E, 4 * E), (E,)])
    if shapes != expected_shapes:
        raise _with_hint(GradingError(_("FeedForward's parameters have shapes {shapes}, expected {expected_shapes}.")
                                      .format(shapes=shapes, expected_shapes=expected_shapes)), HINTS["ff_shapes"])
    _transplant(student, reference, "FeedForward")
    x = torch.randn(2, 5, E, generator=seeded(57))
    with torch.no_grad():
        out = call_checked("FeedForward.forward", student, x)
        expected = reference(x)
        if not close(out, expected):
            first, last = reference.layers[0], reference.layers[2]
            h = first(x)
            variants = {"ff_no_activation": (last(h), HINTS["ff_no_activation"]),
                        "ff_relu": (last(torch.relu(h)), HINTS["ff_relu"]),
                        "ff_exact": (last(nn.functional.gelu(h)), HINTS["ff_exact"])}
            if _replace_own_gelu(student) and close(call_checked("FeedForward.forward", student, x), expected):
                return  # only the student's GELU is wrong: that costs the GELU exercise, not this one
            fail_with_diagnosis(_("FeedForward's output"), out, expected, variants)


def _replace_own_gelu(student) -> bool:
    """Put a correct GELU where the student's FeedForward holds their own GELU class and that GELU is wrong.

    Returns whether one was replaced: the FeedForward is then graded with the right activation, so a
    mistake in GELU costs the GELU exercise only.
    """
    from llmkit_solutions.gpt import GELU

    replaced = False
    for name, module in list(student.named_modules()):
        if name and _notebook_class_name(module) == "GELU":
            if not _same_as_reference(module, GELU(), torch.linspace(-4, 4, 33)):
                parent_name, _dot, child = name.rpartition(".")
                parent = student.get_submodule(parent_name) if parent_name else student
                setattr(parent, child, _placed_beside(student, nn.GELU(approximate="tanh")))
                replaced = True
    return replaced


# --------------------------------------------------------------------------- stand-ins for earlier parts


def _torch_layer_norm(reference) -> nn.LayerNorm:
    """torch's LayerNorm computing exactly the reference LayerNorm (biased variance, eps inside the root)."""
    twin = nn.LayerNorm(reference.scale.shape[0], eps=reference.eps)
    with torch.no_grad():
        twin.weight.copy_(reference.scale)
        twin.bias.copy_(reference.shift)
    return twin


def _torch_feed_forward(reference) -> nn.Sequential:
    """torch's modules computing exactly the reference FeedForward (GELU with the tanh approximation)."""
    first, last = reference.layers[0], reference.layers[2]
    return nn.Sequential(copy.deepcopy(first), nn.GELU(approximate="tanh"), copy.deepcopy(last))


def _placed_beside(student, module: nn.Module):
    """``module`` built where ``student`` lives (in the student's kernel under trusted grading)."""
    if not is_remote(student):
        return module
    if isinstance(module, nn.Sequential):
        from .trusted import current_session

        parts = [_placed_beside(student, m) for m in module]
        return current_session.get().build("torch.nn", "Sequential", *parts)
    if isinstance(module, nn.LayerNorm):
        return _beside(student, module, module.normalized_shape[0], eps=module.eps)
    if isinstance(module, nn.Linear):
        return _beside(student, module, module.in_features, module.out_features, bias=module.bias is not None)
    if isinstance(module, nn.GELU):
        return _beside(student, module, approximate=module.approximate)
    raise TypeError(f"no stand-in is built for {type(module).__name__}")


def _sensitive_inputs(emb_dim) -> list[torch.Tensor]:
    """Inputs that show small mistakes of a part: ordinary vectors, and vectors of tiny variance (where eps and
    the variance's divisor matter), so a part that passes here also passes its own exercise's check."""
    g = seeded(65)
    return [torch.randn(2, 5, emb_dim, generator=g), 0.01 * torch.randn(2, 5, emb_dim, generator=g) + 2.0]


def _shapes(module) -> list:
    return sorted(tuple(p.shape) for p in module.parameters())


# --------------------------------------------------------------------------- TransformerBlock


def block_forward(ref, x, variant=None):
    """The reference TransformerBlock's forward (eval mode) with switchable mistakes."""
    n1, n2, att, ff = ref.norm1, ref.norm2, ref.att, ref.ff
    if variant == "post_norm":
        x = n1(x + att(x))
        return n2(x + ff(x))
    if variant == "norms_swapped":
        n1, n2 = n2, n1
    if variant == "no_norm1":
        n1 = nn.Identity()
    if variant == "no_norm2":
        n2 = nn.Identity()
    after_norm = {"shortcut_after_norm": (1, 2), "shortcut_after_norm1": (1,), "shortcut_after_norm2": (2,)}.get(
        variant, ())
    h = n1(x)
    a = att(h)
    base = h if 1 in after_norm else x
    x = a if variant in ("no_shortcut_att", "no_shortcuts") else base + a
    h = n2(x)
    f = ff(h)
    base = h if 2 in after_norm else x
    return f if variant in ("no_shortcut_ff", "no_shortcuts") else base + f


def _branch(drop, sublayer, norm, x, placement):
    """One sub-layer with its shortcut, the dropout placed as ``placement`` says."""
    if placement == "after_add":
        return drop(sublayer(norm(x)) + x)
    if placement == "input":
        return sublayer(drop(norm(x))) + x
    if placement == "none":
        return sublayer(norm(x)) + x
    return drop(sublayer(norm(x))) + x  # the book's: on the sub-layer's output


def block_forward_train(ref, x, att_placement="output", ff_placement="output"):
    """The reference block's forward in train mode (dropout on) with the dropout of each branch placed elsewhere.

    Run right after ``torch.manual_seed``, the same dropout calls in the same order draw the same masks
    as the student's block, so only where dropout sits can differ.
    """
    x = _branch(ref.drop_shortcut, ref.att, ref.norm1, x, att_placement)
    return _branch(ref.drop_shortcut, ref.ff, ref.norm2, x, ff_placement)


PLACEMENTS = ("output", "none", "after_add", "input")


def _dropout_hint(att_placement, ff_placement) -> str:
    if att_placement == ff_placement == "none":
        return HINTS["no_dropout"]
    wrong = att_placement if att_placement != "output" else ff_placement
    if wrong == "none":
        return HINTS["no_drop_att" if att_placement == "none" else "no_drop_ff"]
    return HINTS["drop_after_add" if wrong == "after_add" else "drop_on_input"]


BLOCK_VARIANTS = ("post_norm", "no_shortcut_att", "no_shortcut_ff", "no_shortcuts", "shortcut_after_norm",
                  "shortcut_after_norm1", "shortcut_after_norm2", "norms_swapped", "no_norm1", "no_norm2")
HINTS["shortcut_after_norm1"] = HINTS["shortcut_after_norm2"] = HINTS["shortcut_after_norm"]


BLOCK_PARTS = {"norm1": _torch_layer_norm, "norm2": _torch_layer_norm, "ff": _torch_feed_forward}


def _replace_misshapen_parts(student, reference) -> None:
    """Before the weights move: a norm1/norm2/ff whose parameters differ in shape from the reference's
    (a mistake graded in LayerNorm's or FeedForward's exercise) is replaced by a correct torch copy."""
    for name, twin in BLOCK_PARTS.items():
        mine, ref = getattr(student, name, None), getattr(reference, name)
        if isinstance(mine, nn.Module) and _shapes(mine) != _shapes(ref):
            setattr(student, name, _placed_beside(student, twin(ref)))


def _replace_wrong_parts(student, reference, x) -> list[str]:
    """After the weights moved: replace a norm1/norm2/ff that computes something else than the reference's
    by a correct torch copy, so the block is graded on its own wiring. Returns the names replaced."""
    replaced = []
    for name, twin in BLOCK_PARTS.items():
        mine, ref = getattr(student, name, None), getattr(reference, name)
        if isinstance(mine, nn.Module) and not all(_same_as_reference(mine, ref, h) for h in (x, *_sensitive_inputs(
                x.shape[-1]))):
            setattr(student, name, _placed_beside(student, twin(ref)))
            replaced.append(name)
    return replaced


def _check_block_dropout(cls, cfg, x):
    """In train mode under one RNG stream, the student's block must apply dropout where the book does."""
    from llmkit_solutions.gpt import TransformerBlock

    cfg = {**cfg, "drop_rate": 0.5}
    torch.manual_seed(75)
    student = call_checked(_("TransformerBlock(cfg with drop_rate=0.5)"), cls, cfg)
    reference = TransformerBlock(cfg)
    _replace_misshapen_parts(student, reference)
    _perturb(student, 76)
    _transplant(student, reference, "TransformerBlock")
    with torch.no_grad():
        _replace_wrong_parts(student, reference, x)
        student.train()
        reference.train()
        torch.manual_seed(77)
        out = call_checked(_("TransformerBlock.forward in train mode"), student, x)
        torch.manual_seed(77)
        expected = reference(x)
        if close(out, expected):
            return
        variants = {}
        for att_placement in PLACEMENTS:
            for ff_placement in PLACEMENTS:
                if att_placement == ff_placement == "output":
                    continue
                torch.manual_seed(77)
                variants[(att_placement, ff_placement)] = (block_forward_train(reference, x, att_placement, ff_placement),
                                                           _dropout_hint(att_placement, ff_placement))
        fail_with_diagnosis(_("TransformerBlock's output in train mode (drop_rate=0.5, the same seed as the book's "
                              "block)"), out, expected, variants)


def check_transformer_block(cls):
    from llmkit_solutions.gpt import TransformerBlock

    assert_defined_in_notebook(cls)
    cfg = dict(TINY)
    x = torch.randn(2, 7, cfg["emb_dim"], generator=seeded(58))
    _check_dropout_off_in_eval(call_checked(_("TransformerBlock(cfg with drop_rate=0.5)"), cls,
                                            {**cfg, "drop_rate": 0.5}), x, "TransformerBlock")
    torch.manual_seed(59)
    student = call_checked("TransformerBlock(cfg)", cls, cfg).eval()
    reference = TransformerBlock(cfg).eval()
    # Parts written in earlier exercises (LayerNorm, FeedForward) that are wrong are replaced by correct
    # ones: their mistakes cost their own exercises, and this check grades the block's wiring.
    _replace_misshapen_parts(student, reference)
    _perturb(student, 60)
    _transplant(student, reference, "TransformerBlock")
    with torch.no_grad():
        _replace_wrong_parts(student, reference, x)
        out = call_checked("TransformerBlock.forward", student, x)
        expected = reference(x)
        if not close(out, expected):
            variants = {v: (block_forward(reference, x, v), HINTS[v]) for v in BLOCK_VARIANTS}
            fail_with_diagnosis(_("TransformerBlock's output"), out, expected, variants)
    _check_block_dropout(cls, cfg, x)


# --------------------------------------------------------------------------- GPTModel


def _count(model):
    return sum(p.numel() for p in model.parameters())


def _check_book_counts(cls):
    from llmkit_solutions.gpt import GPT_CONFIG_124M

    with torch.device("meta"):
        model = call_checked(_("GPTModel(GPT_CONFIG_124M) on the meta device"), cls, dict(GPT_CONFIG_124M))
    total = _count(model)
    if total == BOOK_TOTAL:
        return
    vocab, emb = GPT_CONFIG_124M["vocab_size"], GPT_CONFIG_124M["emb_dim"]
    # The blocks and the final LayerNorm are graded in their own exercises: a wrong count there (a
    # FeedForward without biases, say) does not count again here.
    book_parts = {"trf_blocks": BOOK_BLOCKS, "final_norm": 2 * emb}
    parts = {name: getattr(model, name, None) for name in book_parts}
    if all(isinstance(part, nn.Module) for part in parts.values()):
        total += sum(book_parts[name] - _count(part) for name, part in parts.items())
        if total == BOOK_TOTAL:
            return
    hint = {BOOK_TIED: _(HINTS["tied"]), BOOK_TOTAL + vocab: _(HINTS["head_bias"]),
            BOOK_TIED + vocab: _(HINTS["tied"]) + " " + _(HINTS["head_bias"])}.get(total)
    # TRANSLATORS: {total} and {book_total} are parameter counts written with thousands separators.
    detail = _("GPTModel(GPT_CONFIG_124M) has {total:,} parameters (counting the book's blocks and final_norm); "
               "the book's has {book_total:,}.").format(total=total, book_total=BOOK_TOTAL)
    # The hint is translated above (it may join two hints), so the message is built here, with with_hint's
    # template, not by with_hint itself.
    raise GradingError(_("{detail} Likely mistake: {hint}").format(detail=detail, hint=hint) if hint else detail)


def gpt_forward(ref, idx, variant=None):
    T = idx.shape[1]
    tok = ref.tok_emb(idx)
    if variant == "no_pos":
        x = tok
    elif variant == "pos_from_ids":
        x = tok + ref.pos_emb(idx)
    else:
        x = tok + ref.pos_emb(torch.arange(T))
    x = ref.trf_blocks(x)
    if variant != "no_final_norm":
        x = ref.final_norm(x)
    logits = ref.out_head(x)
    return torch.softmax(logits, dim=-1) if variant == "softmax_out" else logits


def _same_initial_weights(student, reference) -> bool:
    """Every reference parameter has an equal one in the student's model: the modules were created in the
    book's order, so a seed gives the book's weights (however the student's modules are registered)."""
    mine = [p.detach() for p in student.parameters()]
    return all(any(m.shape == r.shape and torch.equal(m, r) for m in mine) for r in reference.parameters())


def _block_is_right(student_block, reference_block, emb_dim, train=False) -> bool:
    """The student's TransformerBlock (graded in its own exercise) computes the reference block's output:
    in eval mode, and with ``train`` also in train mode under the same RNG stream."""
    if _shapes(student_block) != _shapes(reference_block):
        return False
    try:
        transplant(student_block, reference_block)
    except GradingError:
        return False
    modes = (False, True) if train else (False,)
    with torch.no_grad():
        for h in _sensitive_inputs(emb_dim):
            for mode in modes:
                student_block.train(mode)
                reference_block.train(mode)
                torch.manual_seed(78)
                try:
                    mine = student_block(h)
                except Exception:  # noqa: BLE001 - a block that raises is graded in its own exercise
                    return False
                torch.manual_seed(78)
                if not close(mine, reference_block(h)):
                    return False
    return True


def _layer_norm_is_right(student_norm, reference_norm, emb_dim) -> bool:
    if _shapes(student_norm) != _shapes(reference_norm):
        return False
    try:
        transplant(student_norm, reference_norm)
    except GradingError:
        return False
    return all(_same_as_reference(student_norm, reference_norm, h) for h in _sensitive_inputs(emb_dim))


def _use_right_earlier_parts(student, reference, cfg, train=False) -> bool:
    """Grade GPTModel on its own wiring: where the student's blocks or final LayerNorm (graded in their own
    exercises) are wrong, both models get the same stand-in instead. Returns whether one was replaced."""
    E = cfg["emb_dim"]
    replaced = False
    blocks = getattr(student, "trf_blocks", None)
    if isinstance(blocks, nn.Module) and len(blocks) == len(reference.trf_blocks) > 0:
        if not _block_is_right(blocks[0], reference.trf_blocks[0], E, train):
            g = seeded(80)
            stand_in = nn.Sequential(*[nn.Linear(E, E) for _block in range(len(reference.trf_blocks))])
            with torch.no_grad():
                for p in stand_in.parameters():
                    p.copy_(0.2 * torch.randn(p.shape, generator=g))
            reference.trf_blocks = stand_in
            student.trf_blocks = _placed_beside(student, copy.deepcopy(stand_in))
            replaced = True
    final = getattr(student, "final_norm", None)
    if isinstance(final, nn.Module) and not _layer_norm_is_right(final, reference.final_norm, E):
        twin = nn.LayerNorm(E)
        reference.final_norm = twin
        student.final_norm = _placed_beside(student, copy.deepcopy(twin))
        replaced = True
    return replaced


def gpt_forward_train(ref, idx, variant=None):
    """The reference model's forward in train mode with switchable placements of the embedding dropout."""
    T = idx.shape[1]
    tok, pos = ref.tok_emb(idx), ref.pos_emb(torch.arange(T))
    if variant == "no_drop_emb":
        x = tok + pos
    elif variant == "drop_tok_only":
        x = ref.drop_emb(tok) + pos
    else:
        x = ref.drop_emb(tok + pos)
    x = ref.trf_blocks(x)
    if variant == "drop_after_norm":
        return ref.out_head(ref.drop_emb(ref.final_norm(x)))
    return ref.out_head(ref.final_norm(x))


def _check_model_dropout(cls, cfg, ids):
    """In train mode under one RNG stream, dropout on the embeddings sits where the book puts it."""
    from llmkit_solutions.gpt import GPTModel

    cfg = {**cfg, "drop_rate": 0.5}
    torch.manual_seed(81)
    student = call_checked(_("GPTModel(cfg with drop_rate=0.5)"), cls, cfg)
    torch.manual_seed(81)
    reference = GPTModel(cfg)
    _use_right_earlier_parts(student, reference, cfg, train=True)
    _perturb(student, 82)
    _transplant(student, reference, "GPTModel")
    student.train()
    reference.train()
    with torch.no_grad():
        torch.manual_seed(83)
        out = call_checked(_("GPTModel.forward in train mode"), student, ids)
        torch.manual_seed(83)
        expected = reference(ids)
        if close(out, expected):
            return
        variants = {}
        for v in ("no_drop_emb", "drop_tok_only", "drop_after_norm"):
            torch.manual_seed(83)
            variants[v] = (gpt_forward_train(reference, ids, v), HINTS[v])
        fail_with_diagnosis(_("GPTModel's logits in train mode (drop_rate=0.5, the same seed as the book's model)"),
                            out, expected, variants)


def check_gpt_model(cls):
    from llmkit_solutions.gpt import GPTModel, generate, supports_kv_cache

    assert_defined_in_notebook(cls)
    _check_book_counts(cls)
    cfg = dict(TINY)
    ids = torch.randint(0, cfg["context_length"], (2, 7), generator=seeded(61))  # also valid positions
    _check_dropout_off_in_eval(call_checked(_("GPTModel(cfg with drop_rate=0.5)"), cls, {**cfg, "drop_rate": 0.5}),
                               ids, "GPTModel")
    torch.manual_seed(62)
    student = call_checked("GPTModel(cfg)", cls, cfg).eval()
    torch.manual_seed(62)
    reference = GPTModel(cfg).eval()
    same_seed = _same_initial_weights(student, reference)
    # Blocks or a final LayerNorm that are wrong are replaced in both models (their mistakes cost their
    # own exercises); what is graded here is GPTModel's own wiring.
    replaced = _use_right_earlier_parts(student, reference, cfg)
    _perturb(student, 63)
    _transplant(student, reference, "GPTModel")
    student.eval()
    reference.eval()
    full = torch.randint(0, cfg["vocab_size"], (1, cfg["context_length"]), generator=seeded(64))
    with torch.no_grad():
        for x in (ids, full):
            out = call_checked(_("GPTModel.forward on ids of shape {shape}").format(shape=tuple(x.shape)), student, x)
            expected = reference(x)
            if not close(out, expected):
                names = ["no_pos", "no_final_norm", "softmax_out"]
                if int(x.max()) < cfg["context_length"]:
                    names.append("pos_from_ids")
                variants = {v: (gpt_forward(reference, x, v), HINTS[v]) for v in names}
                fail_with_diagnosis(_("GPTModel's logits for ids of shape {shape}").format(shape=tuple(x.shape)), out,
                                    expected, variants)
    _check_model_dropout(cls, cfg, ids)
    if not same_seed and not replaced:
        # TRANSLATORS: {hint} is a translated hint in lower case ("the modules are built in a different order ...").
        raise GradingError(_("GPTModel computes the right logits, but {hint}").format(hint=_(HINTS["order"])))
    if replaced:  # the kv_cache path runs through the blocks, which are graded in their own exercise
        return
    # The kit generates with a kv_cache: the new token's position must start where the cache ends.
    # (A model without the kv_cache lines, like the book's, is simply used without a cache.)
    blocks = getattr(student, "trf_blocks", [])
    if not (_accepts_kv_cache(student) and all(_accepts_kv_cache(b) for b in blocks) and supports_kv_cache(student)):
        return
    prompt = ids[:1, :4]
    try:
        cached = generate(student, prompt, 5, cfg["context_length"], use_cache=True)
    except Exception as exc:  # noqa: BLE001 - the student's forward raised on the cached path
        # TRANSLATORS: {error_type} is a Python exception name, {error} its message.
        raised = _("GPTModel.forward with a kv_cache raised {error_type}: {error}.").format(
            error_type=type(exc).__name__, error=exc)
        raise _with_hint(GradingError(raised), HINTS["cache_positions"]) from None
    if not torch.equal(cached, generate(student, prompt, 5, cfg["context_length"])):
        raise _with_hint(GradingError(_("GPTModel gives other tokens with a kv_cache than without.")),
                         HINTS["cache_positions"])


# --------------------------------------------------------------------------- generation


class Recorder(nn.Module):
    """Wraps a model and remembers the lengths of the inputs it was given."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.lengths = []

    def forward(self, idx, *args, **kwargs):
        self.lengths.append(idx.shape[1])
        return self.model(idx, *args, **kwargs)


def _greedy(model, idx, steps, context_size, crop=True, position=-1, pick=torch.argmax):
    for _step in range(steps):
        with torch.no_grad():
            logits = model(idx[:, -context_size:] if crop else idx)[:, position, :]
        idx = torch.cat((idx, pick(logits, dim=-1, keepdim=True)), dim=1)
    return idx


def _reference_model(seed=66, context_length=12):
    from llmkit_solutions.gpt import GPTModel

    torch.manual_seed(seed)
    return GPTModel({**TINY, "context_length": context_length}).eval()


def _check_greedy_generation(name, call, context_size=6, steps=6):
    """Greedy decoding beside the reference: cropping, last position, argmax shape."""
    model = _reference_model()
    prompt = torch.randint(0, TINY["vocab_size"], (2, 4), generator=seeded(67))
    recorder = Recorder(copy.deepcopy(model))  # lent to the student's code, which could change it
    try:
        # TRANSLATORS: a call as the student would write it; {name} is the function's name.
        what = _("{name}(model, idx of shape (2, 4), {steps}, context_size={context_size})").format(
            name=name, steps=steps, context_size=context_size)
        out = call_checked(what, call, recorder, prompt.clone(), steps, context_size)
    except GradingError as err:
        text = str(err)
        shape_error = any(s in text for s in ("same number of dimensions", "Sizes of tensors must match",
                                              "size of tensor", "dimension"))
        raise _with_hint(err, HINTS["next_shape"] if shape_error else None) from None
    expected = _greedy(model, prompt, steps, context_size)
    if not isinstance(out, torch.Tensor):
        # TRANSLATORS: {name} is the function's name, {type_name} a Python type name.
        raise GradingError(_("{name} should return the ids as a tensor, got {type_name}.").format(
            name=name, type_name=type(out).__name__))
    if out.shape != expected.shape:
        hint = HINTS["next_shape"] if out.shape[0] != 2 or out.shape[1] > expected.shape[1] else None
        message = _("{name} returned ids of shape {shape}, expected {expected_shape} (the prompt plus {steps} new "
                    "ids).").format(name=name, shape=tuple(out.shape), expected_shape=tuple(expected.shape),
                                    steps=steps)
        raise _with_hint(GradingError(message), hint)
    if max(recorder.lengths, default=0) > context_size:
        # TRANSLATORS: {longest} is the largest number of tokens the model was given at once.
        message = _("{name} fed the model {longest} tokens with context_size={context_size}.").format(
            name=name, longest=max(recorder.lengths), context_size=context_size)
        raise _with_hint(GradingError(message), HINTS["no_crop"])
    if not torch.equal(out, expected):
        variants = {"first_position": _greedy(model, prompt, steps, context_size, position=0),
                    "argmin": _greedy(model, prompt, steps, context_size, pick=torch.argmin)}
        hint = next((HINTS[k] for k, v in variants.items() if torch.equal(out, v)), None)
        if not torch.equal(out[:, :4], prompt):
            hint = N_("the prompt must stay at the start of the returned ids; append the new ids after it.")
        # TRANSLATORS: {got} and {expected} are lists of token ids.
        message = _("{name} chose other tokens than greedy decoding: got {got}, expected {expected}.").format(
            name=name, got=out[:, 4:].tolist(), expected=expected[:, 4:].tolist())
        raise _with_hint(GradingError(message), hint)


def check_generate_text_simple(fn):
    assert_defined_in_notebook(fn)
    _check_greedy_generation("generate_text_simple", fn)


# ---- sampling


def _top_k_probs(logits, k, temperature, mode="ok"):
    """Expected next-token probabilities for one row of logits, with switchable top-k mistakes."""
    if k is not None and mode != "ignored":
        kth = torch.topk(logits, min(k, logits.numel())).values[-1]
        if mode == "minus_one":
            logits = torch.where(logits <= kth, torch.tensor(-torch.inf), logits)
        elif mode == "plus_one":
            kth = torch.topk(logits, min(k + 1, logits.numel())).values[-1]
            logits = torch.where(logits < kth, torch.tensor(-torch.inf), logits)
        elif mode == "zero":
            logits = torch.where(logits < kth, torch.zeros_like(logits), logits)
        else:
            logits = torch.where(logits < kth, torch.tensor(-torch.inf), logits)
    return torch.softmax(logits / temperature, dim=-1)


def _frequencies(samples: torch.Tensor, vocab: int) -> torch.Tensor:
    return torch.bincount(samples.flatten().long(), minlength=vocab)[:vocab].float() / samples.numel()


def _tv(p, q) -> float:
    return 0.5 * float((p - q).abs().sum())


def _diagnose_sampling(freq, logits, temperature, top_k, batch_rows=None):
    """The hint (English, translated where shown) of the wrong distribution closest to the observed
    frequencies, if one is close."""
    vocab = logits.numel()
    candidates = {
        "temperature_times": _top_k_probs(logits * temperature * temperature, top_k, temperature),
        "temperature_ignored": _top_k_probs(logits, top_k, 1.0),
        "greedy_only": nn.functional.one_hot(logits.argmax(), vocab).float(),
        "uniform": torch.full((vocab,), 1.0 / vocab),
    }
    if top_k is not None:
        candidates.update(top_k_ignored=_top_k_probs(logits, top_k, temperature, "ignored"),
                          top_k_minus_one=_top_k_probs(logits, top_k, temperature, "minus_one"),
                          top_k_plus_one=_top_k_probs(logits, top_k, temperature, "plus_one"),
                          top_k_zero=_top_k_probs(logits, top_k, temperature, "zero"))
    if batch_rows is not None and top_k is None:  # softmax over the batch: each column sums to 1
        rows, counts = batch_rows
        column_sums = (counts[:, None] * torch.exp(rows / temperature)).sum(dim=0)
        wrong = torch.exp(logits / temperature) / column_sums
        candidates["uniform"] = wrong / wrong.sum()
    best = min(candidates, key=lambda k: _tv(freq, candidates[k]))
    return HINTS[best] if _tv(freq, candidates[best]) < 0.04 else None


SAMPLING_CASES = ((2.0, None), (0.5, None), (1.0, 3), (0.7, 4))


def check_next_token(fn):
    from llmkit_solutions.gpt import next_token as reference

    assert_defined_in_notebook(fn)
    vocab = 8
    logits = torch.randn(5, vocab, generator=seeded(68)) * 2
    for kwargs in ({}, {"temperature": 0.0}, {"temperature": 0.0, "top_k": 3}):
        try:
            # TRANSLATORS: a call as the student would write it; {kwargs} is a dict of keyword arguments.
            what = _("next_token(logits of shape (5, 8), {kwargs})").format(kwargs=kwargs)
            out = call_checked(what, fn, logits.clone(), **kwargs)
        except GradingError as err:
            rows_hint = "top_k" in kwargs and ("size of tensor" in str(err) or "must match" in str(err))
            raise _with_hint(err, HINTS["top_k_rows"] if rows_hint else None) from None
        expected = reference(logits, **kwargs)
        if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            # TRANSLATORS: {shape} is a shape or a Python type name.
            message = _("next_token returned {shape}, expected shape (batch, 1) = (5, 1).").format(shape=shape)
            raise _with_hint(GradingError(message), HINTS["next_shape"])
        if not torch.equal(out, expected):
            # TRANSLATORS: {got} and {expected} are lists of token ids.
            raise GradingError(_("With temperature 0 next_token should return the argmax of each row; got {got}, "
                                 "expected {expected}.").format(got=out.flatten().tolist(),
                                                                expected=expected.flatten().tolist()))
    # Sampling: two different rows, each repeated, so frequencies estimate each row's distribution.
    rows = torch.randn(2, vocab, generator=seeded(69)) * 1.5
    n = 6000
    batch = rows.repeat_interleave(n, dim=0)  # (2n, vocab)
    for temperature, top_k in SAMPLING_CASES:
        torch.manual_seed(70)
        what = _("next_token(logits of shape {shape}, temperature={temperature}, top_k={top_k})").format(
            shape=tuple(batch.shape), temperature=temperature, top_k=top_k)
        try:
            out = call_checked(what, fn, batch.clone(), temperature=temperature, top_k=top_k)
        except GradingError as err:
            rows_hint = top_k is not None and ("size of tensor" in str(err) or "must match" in str(err))
            raise _with_hint(err, HINTS["top_k_rows"] if rows_hint else None) from None
        if not isinstance(out, torch.Tensor) or out.shape != (2 * n, 1):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            # TRANSLATORS: {what} describes the call; {shape} is a shape or a Python type name.
            message = _("{what} returned {shape}, expected (batch, 1).").format(what=what, shape=shape)
            raise _with_hint(GradingError(message), HINTS["next_shape"])
        for r in range(2):
            freq = _frequencies(out[r * n:(r + 1) * n], vocab)
            expected = _top_k_probs(rows[r], top_k, temperature)
            if _tv(freq, expected) > 0.04:
                hint = _diagnose_sampling(freq, rows[r], temperature, top_k, (rows, torch.tensor([n, n]).float()))
                if hint is None and r == 1 and top_k is not None:
                    hint = HINTS["top_k_rows"]
                # TRANSLATORS: {what} describes the call; {row} is a row number; {frequencies} and {expected} are
                # lists of probabilities.
                detail = _("{what}: the sampled ids do not follow softmax(logits / temperature) over the top-k logits "
                           "(row {row}: frequencies {frequencies}, expected {expected}).").format(
                               what=what, row=r, frequencies=[round(v, 2) for v in freq.tolist()],
                               expected=[round(v, 2) for v in expected.tolist()])
                raise _with_hint(GradingError(detail), hint)


# ---- generate


class Counter(nn.Module):
    """A toy model whose most likely next id is (last id + 1) % vocab; the same logits at every position."""

    def __init__(self, vocab=10):
        super().__init__()
        self.vocab = vocab

    def forward(self, idx, kv_cache=None):
        nxt = (idx + 1) % self.vocab  # (B, T)
        return 5.0 * nn.functional.one_hot(nxt, self.vocab).float()


class FixedLogits(nn.Module):
    """A toy model that predicts the same distribution whatever it is given."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, idx, kv_cache=None):
        return self.logits.expand(idx.shape[0], idx.shape[1], -1)


def _fixed_logits_table(logits) -> nn.Embedding:
    """FixedLogits as a plain torch module (every id's row holds the logits), so it can run in the student's kernel."""
    table = nn.Embedding(len(logits), len(logits))
    with torch.no_grad():
        table.weight.copy_(logits.expand(len(logits), -1))
    return table


def _beside(fn, module: nn.Module, *args, **kwargs):
    """``module`` where ``fn`` runs: a copy built in the student's kernel (from ``args`` and its weights) when
    ``fn`` lives there, so a long loop does not ask the grader at every step; else ``module`` itself."""
    if is_remote(fn):
        from .trusted import current_session

        session = current_session.get()
        if session is not None:
            return session.ship(module, *args, **kwargs)
    return module


class _NoAttention(nn.Module):
    def forward(self, x, kv_cache=None):
        return x


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.att = _NoAttention()


class BigramWithCacheInterface(nn.Module):
    """Logits that depend on the last id only, behind the kit's kv_cache interface (blocks whose attention
    takes ``kv_cache``). It never touches the cache, so generation with and without one must agree."""

    def __init__(self, vocab, seed):
        super().__init__()
        self.table = nn.Embedding(vocab, vocab)
        with torch.no_grad():
            self.table.weight.copy_(3.0 * torch.randn(vocab, vocab, generator=seeded(seed)))
        self.trf_blocks = nn.ModuleList([_Block(), _Block()])

    def forward(self, idx, kv_cache=None):
        return self.table(idx)  # (B, T, vocab)


def _generate_call(temperature, top_k, rows, steps) -> str:
    """How a sampling call of generate is named in messages."""
    # TRANSLATORS: a call of the student's generate, then how many rows and new tokens it was asked for.
    return _("generate(..., temperature={temperature}, top_k={top_k}) for {rows} row(s), {steps} new token(s)").format(
        temperature=temperature, top_k=top_k, rows=rows, steps=steps)


def _sample(fn, logits, temperature, top_k, rows, steps):
    """``fn``'s ids sampled from a model whose distribution never changes (the prompt is one 0 per row)."""
    prompt = torch.zeros(rows, 1, dtype=torch.long)
    what = _generate_call(temperature, top_k, rows, steps)
    if steps == 1:  # one call of the model: the grader answers it
        return what, call_checked(what, fn, FixedLogits(logits), prompt, steps, 1, temperature=temperature,
                                  top_k=top_k), steps
    model = _beside(fn, _fixed_logits_table(logits), len(logits), len(logits))
    try:
        return what, fn(model, prompt, steps, 1, temperature=temperature, top_k=top_k), steps
    except TypeError as exc:
        if "kv_cache" not in str(exc):
            # TRANSLATORS: {what} describes the call; {error} is the exception's message.
            raise GradingError(_("{what} raised TypeError: {error}").format(what=what, error=exc)) from exc
    except Exception as exc:  # noqa: BLE001 - the student's code raised: a failed check
        # TRANSLATORS: {what} describes the call; {error_type} is a Python exception name, {error} its message.
        raise GradingError(_("{what} raised {error_type}: {error}").format(
            what=what, error_type=type(exc).__name__, error=exc)) from exc
    # generate passes kv_cache=None to the model, which the table does not take: fewer steps, with a model
    # that does (every step asks the grader).
    steps = 400
    torch.manual_seed(72)
    what = _generate_call(temperature, top_k, rows, steps)
    out = call_checked(what, fn, FixedLogits(logits), prompt, steps, 1, temperature=temperature, top_k=top_k)
    return what, out, steps


def _check_batched_eos(fn):
    """Several rows: generation stops only when every row's next id is eos_id.

    The book's generate stops on eos for one row (``if idx_next == eos_id``), which raises for a batch;
    that is accepted (the book defines no batched stop); a batched stop that returns must be right.
    """
    from llmkit_solutions.gpt import generate as reference

    # The counter counts on from each row's last id: rows ending in 3 and in 5 draw eos 7 at different
    # steps (nobody stops); rows both ending in 3 draw it together (everybody stops).
    for prompt in (torch.tensor([[2, 3], [4, 5]]), torch.tensor([[2, 3], [0, 3]])):
        # TRANSLATORS: a call of the student's generate with a toy model; {prompt} is a list of token ids.
        what = _("generate(counter model, {prompt}, 8, 4, eos_id=7)").format(prompt=prompt.tolist())
        try:
            out = fn(Counter(), prompt.clone(), 8, 4, eos_id=7)
        except RuntimeError as exc:
            if "ambiguous" in str(exc):
                return  # the book's one-row stop
            raise GradingError(_("{what} raised RuntimeError: {error}").format(what=what, error=exc)) from exc
        except Exception as exc:  # noqa: BLE001 - the student's code raised: a failed check
            raise GradingError(_("{what} raised {error_type}: {error}").format(
                what=what, error_type=type(exc).__name__, error=exc)) from exc
        expected = reference(Counter(), prompt, 8, 4, eos_id=7)
        if isinstance(out, torch.Tensor) and torch.equal(out, expected):
            continue
        got = out.tolist() if isinstance(out, torch.Tensor) else type(out).__name__
        hint = None
        if isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[1] < expected.shape[1]:
            steps = out.shape[1] - prompt.shape[1]  # where it stopped: when the first row or any row drew 7
            hint = HINTS["eos_first_row"] if int(prompt[0, -1]) + steps + 1 == 7 else HINTS["eos_any_row"]
        # TRANSLATORS: {got} is a list of token ids or a Python type name; {expected} a list of token ids.
        message = _("{what} with a batch of two rows returned {got}, expected {expected}.").format(
            what=what, got=got, expected=expected.tolist())
        raise _with_hint(GradingError(message), hint)


def check_generate(fn):
    from llmkit_solutions.gpt import generate as reference

    assert_defined_in_notebook(fn)
    _check_greedy_generation("generate", fn)
    # eos: the counter model counts 3, 4, 5, ...; with eos_id=7 generation stops before appending 7.
    prompt = torch.tensor([[2, 3]])
    out = call_checked(_("generate(counter model, {prompt}, 8, 4, eos_id=7)").format(prompt=prompt.tolist()), fn,
                       Counter(), prompt.clone(), 8, 4, eos_id=7)
    expected = reference(Counter(), prompt, 8, 4, eos_id=7)
    if not torch.equal(out, expected):
        hint = None
        if isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[0] == 1:
            if out.shape[1] == expected.shape[1] + 1 and int(out[0, -1]) == 7:
                hint = HINTS["eos_appended"]
            elif out.shape[1] == prompt.shape[1] + 8:
                hint = HINTS["eos_ignored"]
        # TRANSLATORS: {got} and {expected} are lists of token ids.
        message = _("generate with eos_id=7 returned {got}, expected {expected}.").format(
            got=out.tolist(), expected=expected.tolist())
        raise _with_hint(GradingError(message), hint)
    _check_batched_eos(fn)
    # Sampling from a model whose distribution never changes: with temperature only, one step for a
    # batch of many rows; with top-k, many steps for one row (the book's top-k handles batch 1 only).
    vocab = 8
    logits = torch.randn(vocab, generator=seeded(71)) * 1.5
    for temperature, top_k, rows, steps in ((1.5, None, 4000, 1), (0.8, 3, 1, 2000)):
        torch.manual_seed(72)
        what, out, steps = _sample(fn, logits, temperature, top_k, rows, steps)
        if not isinstance(out, torch.Tensor) or out.shape != (rows, 1 + steps):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise GradingError(_("{what} returned {shape}, expected {expected_shape}.").format(
                what=what, shape=shape, expected_shape=(rows, 1 + steps)))
        freq = _frequencies(out[:, 1:], vocab)
        expected = _top_k_probs(logits, top_k, temperature)
        if _tv(freq, expected) > 0.05:
            hint = _diagnose_sampling(freq, logits, temperature, top_k)
            if hint == HINTS["greedy_only"]:
                hint = HINTS["not_forwarded"]
            # TRANSLATORS: {what} describes the call; {frequencies} and {expected} are lists of probabilities.
            detail = _("{what}: the sampled ids do not follow the expected distribution (frequencies {frequencies}, "
                       "expected {expected}).").format(what=what, frequencies=[round(v, 2) for v in freq.tolist()],
                                                       expected=[round(v, 2) for v in expected.tolist()])
            raise _with_hint(GradingError(detail), hint)
    if "use_cache" in inspect.signature(fn).parameters:
        model = BigramWithCacheInterface(TINY["vocab_size"], seed=73).eval()
        prompt = torch.randint(0, TINY["vocab_size"], (2, 3), generator=seeded(74))
        plain = call_checked("generate(model, idx, 6, 5)", fn, model, prompt.clone(), 6, 5)
        cached = call_checked("generate(model, idx, 6, 5, use_cache=True)", fn, model, prompt.clone(), 6, 5,
                              use_cache=True)
        if not torch.equal(plain, cached):
            raise GradingError(_("generate gives other ids with use_cache=True than without; keep the given cache "
                                 "lines and compute idx_next from logits[:, -1, :] in both cases."))


"""Hidden-test checks for stage 3: token and position embeddings.

Each ``check_*`` takes the student's function or class, runs it on seeded inputs beside the
reference, and on a mismatch names the known mistake whose output the student's matches.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from llmkit.i18n.runtime import N_, _

from . import (GradingError, assert_defined_in_notebook, call_checked, close, fail_with_diagnosis, seeded, transplant,
               with_hint)

HINTS = {
    "num_classes": N_("one_hot guesses the number of classes from the largest id in the input; pass "
                      "num_classes=weight.shape[0] so every one-hot row has vocab_size entries."),
    "one_hot_dtype": N_("one_hot returns integers; convert the one-hot matrix to weight's dtype "
                        "(.to(weight.dtype)) before multiplying."),
    "detached": N_("the result is cut off from weight (no gradient reaches it); do not use .detach(), "
                   "torch.no_grad() or .data, so training can update the embedding table."),
    "no_positions": N_("only the token embeddings are returned; add the position embeddings "
                       "pos_embedding_layer(torch.arange(T))."),
    "positions_from_ids": N_("the position embeddings are looked up with the token ids; look them up with the "
                             "positions 0..T-1, torch.arange(T)."),
    "positions_from_batch": N_("the positions count the batch rows; they count the tokens in a row: "
                               "torch.arange(inputs.shape[1])."),
    "concatenated": N_("the token and position embeddings are concatenated; add them (the output keeps emb_dim)."),
    "all_positions": N_("every row of the position table is used; use only the first T positions "
                        "(torch.arange(T)), since a batch may be shorter than context_length."),
    "sin_cos_swapped": N_("sine and cosine are swapped: even columns (0, 2, ...) hold the sine, odd ones the cosine."),
    "exponent_column": N_("each column uses its own index in the exponent; a sine/cosine pair (columns 2i and 2i+1) "
                          "shares the frequency 1 / 10000 ** (2i / emb_dim)."),
    "exponent_no_2": N_("the exponent uses i / emb_dim; with i counting the pairs it is 2i / emb_dim "
                        "(torch.arange(0, emb_dim, 2) / emb_dim)."),
    "halves": N_("the first half of the columns holds the sines and the second half the cosines; interleave them "
                 "instead: table[:, 0::2] = sin, table[:, 1::2] = cos."),
    "positions_from_1": N_("the positions start at 1; they start at 0 (row 0 is sin 0 = 0, cos 0 = 1)."),
    "tok_emb_order": N_("the two tables are built in a different order from GPTModel's (tok_emb first, then "
                        "pos_emb), so a seed gives other weights than the model's."),
}


# --------------------------------------------------------------------------- one-hot lookup


def _weight_gradient(fn, ids, weight):
    """The gradient of fn(ids, weight).sum() with respect to weight, computed where ``fn`` runs.

    Gradients cannot cross from a student's kernel (a tensor it returns is a fresh leaf here), so a kernel
    function backpropagates there and sends the gradient back as data.
    """
    from .remote import is_remote

    if is_remote(fn):
        _output, grads = fn.call_with_grad(ids, weight.detach(), wrt=(1,))
        return grads[0]
    leaf = weight.detach().clone().requires_grad_()
    fn(ids, leaf).sum().backward()
    return leaf.grad


def check_embed_one_hot(fn):
    assert_defined_in_notebook(fn)
    vocab, dim = 7, 5
    weight = torch.randn(vocab, dim, generator=seeded(31)).requires_grad_()
    cases = [torch.randint(0, vocab, (9,), generator=seeded(32)),
             torch.randint(0, vocab, (3, 4), generator=seeded(33)),
             torch.tensor([0, 2, 1, 2])]  # the largest id is far below vocab_size
    cases[0][0] = vocab - 1
    for ids in cases:
        try:
            # TRANSLATORS: a call shown in messages; {shape} is a tuple, {vocab}x{dim} the weight's size, e.g. 7x5.
            out = call_checked(_("embed_one_hot(ids of shape {shape}, weight {vocab}x{dim})").format(
                shape=tuple(ids.shape), vocab=vocab, dim=dim), fn, ids, weight)
        except GradingError as err:
            text = str(err)
            # The English description of the call says "shape", so every error the call raised (err.__cause__)
            # got the num_classes hint; ask that directly, as a translated description need not say "shape".
            names_shape = err.__cause__ is not None or "shape" in text or "size" in text
            hint = HINTS["one_hot_dtype"] if "dtype" in text or "Long" in text or "Float" in text else (
                HINTS["num_classes"] if names_shape else None)
            raise GradingError(with_hint(text, hint)) from None
        expected = nn.functional.embedding(ids, weight)
        if not close(out, expected):
            if out.shape[:-1] == ids.shape and out.shape[-1] != dim:
                raise GradingError(_("embed_one_hot gives vectors of length {length}, expected emb_dim = {dim}: "
                                     "multiply the one-hot rows (..., vocab_size) by weight (vocab_size, emb_dim).")
                                   .format(length=out.shape[-1], dim=dim))
            fail_with_diagnosis(_("embed_one_hot on ids of shape {shape}").format(shape=tuple(ids.shape)), out,
                                expected.detach())
    out = call_checked("embed_one_hot", fn, cases[1], weight)
    if not out.requires_grad:
        raise GradingError(_("embed_one_hot: {hint}").format(hint=_(HINTS["detached"])))
    grad = call_checked(_("backpropagating through embed_one_hot"), _weight_gradient, fn, cases[1], weight)
    counts = torch.bincount(cases[1].flatten(), minlength=vocab).float()
    if grad is None or not close(grad, counts[:, None].expand(vocab, dim)):
        raise GradingError(_("embed_one_hot: the gradient reaching weight is wrong; row k of weight should receive "
                             "one gradient per occurrence of id k (use one_hot(ids) @ weight or weight[ids])."))


# --------------------------------------------------------------------------- a batch from the dataloader


def _embed_variants(inputs, tok, pos):
    T = inputs.shape[-1]
    t = tok(inputs)
    variants = {"no_positions": (t, HINTS["no_positions"]),
                "concatenated": (torch.cat([t, pos(torch.arange(T)).expand_as(t)], dim=-1), HINTS["concatenated"])}
    if int(inputs.max()) < pos.num_embeddings:
        variants["positions_from_ids"] = (t + pos(inputs), HINTS["positions_from_ids"])
    return variants


def _explain_shape(what, out, expected, inputs, context_length):
    B, T = inputs.shape
    if out.shape == expected.shape:
        return
    # TRANSLATORS: {what} names the checked output, e.g. "embed_batch's output"; {got} and {want} are shapes.
    shapes = _("{what} has shape {got}, expected (batch, T, emb_dim) = {want}").format(
        what=what, got=tuple(out.shape), want=tuple(expected.shape))
    if out.shape[-1] == 2 * expected.shape[-1]:
        raise GradingError(f"{shapes}: {_(HINTS['concatenated'])}")
    if out.shape[:2] == (B, context_length) or out.shape[:1] == (context_length,):
        raise GradingError(f"{shapes}: {_(HINTS['all_positions'])}")
    raise GradingError(f"{shapes}.")


def _guess_from_error(text: str, batch: int, num_tokens: int, context_length: int) -> str | None:
    if "index out of range" in text.lower():
        return HINTS["positions_from_ids"]
    sizes = re.search(r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\)", text)
    if sizes:
        pair = {int(sizes.group(1)), int(sizes.group(2))}
        if pair == {num_tokens, batch}:
            return HINTS["positions_from_batch"]
        if pair == {num_tokens, context_length}:
            return HINTS["all_positions"]
    return None


def check_embed_batch(fn):
    assert_defined_in_notebook(fn)
    torch.manual_seed(34)
    tok, pos = nn.Embedding(20, 6), nn.Embedding(8, 6)
    # First ids that are all valid positions too (so looking positions up by id gives a value to
    # recognise), then ids of a whole vocabulary; batch 3 and 5 tokens, fewer than context_length 8.
    small = torch.randint(0, 8, (3, 5), generator=seeded(35))
    large = torch.randint(0, 20, (3, 5), generator=seeded(36))
    large[0, 0] = 19
    for inputs in (small, large):
        B, T = inputs.shape
        try:
            out = call_checked(_("embed_batch(inputs of shape {shape}, ...)").format(shape=(B, T)), fn, inputs, tok,
                               pos)
        except GradingError as err:
            raise GradingError(with_hint(str(err), _guess_from_error(str(err), B, T, 8))) from None
        with torch.no_grad():
            expected = tok(inputs) + pos(torch.arange(T))
            _explain_shape(_("embed_batch's output"), out, expected, inputs, 8)
            if not close(out.detach(), expected):
                fail_with_diagnosis(_("embed_batch's output"), out.detach(), expected,
                                    _embed_variants(inputs, tok, pos))
    # Also for a batch of one row and for a full context window.
    full = torch.randint(0, 20, (1, 8), generator=seeded(37))
    with torch.no_grad():
        expected = tok(full) + pos(torch.arange(8))
        out = call_checked(_("embed_batch(inputs of shape {shape}, ...)").format(shape=(1, 8)), fn, full, tok, pos)
        if not close(out.detach(), expected):
            fail_with_diagnosis(_("embed_batch's output for one row of 8 tokens"), out.detach(), expected,
                                _embed_variants(full, tok, pos))


# --------------------------------------------------------------------------- GPTEmbedding


def check_gpt_embedding(cls):
    from llmkit_solutions.embeddings import GPTEmbedding

    assert_defined_in_notebook(cls)
    vocab, dim, context = 30, 8, 10
    torch.manual_seed(38)
    student = call_checked(f"GPTEmbedding({vocab}, {dim}, {context})", cls, vocab, dim, context)
    torch.manual_seed(38)
    reference = GPTEmbedding(vocab, dim, context)
    names = {n for n, _param in student.named_parameters()}
    if names != {"tok_emb.weight", "pos_emb.weight"}:
        raise GradingError(_("GPTEmbedding's parameters are {names}; keep the book's two tables, "
                             "self.tok_emb = nn.Embedding(vocab_size, emb_dim) and "
                             "self.pos_emb = nn.Embedding(context_length, emb_dim) (GPTModel uses the same names).")
                           .format(names=sorted(names)))
    for name in ("tok_emb", "pos_emb"):
        got, want = getattr(student, name).weight.shape, getattr(reference, name).weight.shape
        if got != want:
            # TRANSLATORS: {name} is tok_emb or pos_emb.
            raise GradingError(_("GPTEmbedding.{name} has shape {got}, expected {want} "
                                 "(tok_emb: vocab_size x emb_dim, pos_emb: context_length x emb_dim).").format(
                name=name, got=tuple(got), want=tuple(want)))
    same_seed = all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), reference.state_dict().values()))
    transplant(student, reference)
    inputs = torch.randint(0, vocab, (3, 6), generator=seeded(39))
    inputs[0, 0] = vocab - 1
    for x in (inputs, torch.randint(0, vocab, (2, context), generator=seeded(40)), inputs[:1, :1]):
        B, T = x.shape
        try:
            out = call_checked(_("GPTEmbedding.forward on ids of shape {shape}").format(shape=(B, T)), student, x)
        except GradingError as err:
            raise GradingError(with_hint(str(err), _guess_from_error(str(err), B, T, context))) from None
        with torch.no_grad():
            expected = reference(x)
            _explain_shape(_("GPTEmbedding's output"), out, expected, x, context)
            if not close(out.detach(), expected):
                fail_with_diagnosis(_("GPTEmbedding's output on ids of shape {shape}").format(shape=(B, T)),
                                    out.detach(), expected, _embed_variants(x, reference.tok_emb, reference.pos_emb))
    if not same_seed:
        # TRANSLATORS: {hint} is a hint sentence that starts in lower case ("the two tables are built ...").
        raise GradingError(_("GPTEmbedding computes the right thing, but {hint}").format(
            hint=_(HINTS["tok_emb_order"])))


# --------------------------------------------------------------------------- sinusoidal positions


def _sinusoid(T, E, start=0, swap=False, exponent="pair", halves=False):
    positions = torch.arange(start, start + T, dtype=torch.float64).unsqueeze(1)
    if exponent == "column":
        cols = torch.arange(E, dtype=torch.float64)
        angles = positions / 10000 ** (cols / E)
        table = torch.where(torch.arange(E) % 2 == 0, torch.sin(angles), torch.cos(angles))
        return table.float()
    pair = torch.arange(0, E, 2, dtype=torch.float64)
    if exponent == "no_2":
        pair = pair / 2
    angles = positions / 10000 ** (pair / E)
    first, second = (torch.cos, torch.sin) if swap else (torch.sin, torch.cos)
    if halves:
        return torch.cat([first(angles), second(angles)], dim=-1).float()
    table = torch.zeros(T, E, dtype=torch.float64)
    table[:, 0::2], table[:, 1::2] = first(angles), second(angles)
    return table.float()


def check_sinusoidal_positions(fn):
    assert_defined_in_notebook(fn)
    for T, E in ((12, 8), (7, 16), (50, 32)):
        out = call_checked(f"sinusoidal_positions({T}, {E})", fn, T, E)
        if not isinstance(out, torch.Tensor):
            raise GradingError(_("sinusoidal_positions should return a tensor, got {type_name}.").format(
                type_name=type(out).__name__))
        expected = _sinusoid(T, E)
        if out.shape != expected.shape:
            raise GradingError(_("sinusoidal_positions({T}, {E}) has shape {got}, expected "
                                 "(context_length, emb_dim) = {want}.").format(T=T, E=E, got=tuple(out.shape),
                                                                               want=(T, E)))
        if not torch.allclose(out.double(), expected.double(), atol=1e-4, rtol=1e-4):
            variants = {"sin_cos_swapped": (_sinusoid(T, E, swap=True), HINTS["sin_cos_swapped"]),
                        "exponent_column": (_sinusoid(T, E, exponent="column"), HINTS["exponent_column"]),
                        "exponent_no_2": (_sinusoid(T, E, exponent="no_2"), HINTS["exponent_no_2"]),
                        "halves": (_sinusoid(T, E, halves=True), HINTS["halves"]),
                        "positions_from_1": (_sinusoid(T, E, start=1), HINTS["positions_from_1"])}
            hint = next((h for v, h in variants.values() if torch.allclose(out.double(), v.double(), atol=1e-4)), None)
            detail = _("sinusoidal_positions({T}, {E}) differs from the reference (largest difference "
                       "{diff:.3g}).").format(T=T, E=E, diff=(out.double() - expected.double()).abs().max().item())
            raise GradingError(with_hint(detail, hint))
    if not out.is_floating_point():
        raise GradingError(_("sinusoidal_positions should return floating-point numbers."))
    if math.isnan(float(out.sum())):
        raise GradingError(_("sinusoidal_positions returns NaN values."))

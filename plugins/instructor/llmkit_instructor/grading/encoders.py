"""Hidden-test checks for stage 10: special tokens, the padding mask, MLM masking, pooling, feature extraction.

Each ``check_*`` runs the student's code on fresh seeded inputs beside the reference and, on a mismatch,
names the known mistake whose output the student's matches. Masking is random: its check first tests
what must hold whatever the draws (special tokens never chosen, targets, untouched positions, the
80/10/10 proportions on a large batch), then the exact result for a seed, since the exercise fixes the
order of the draws (torch's global generator, which the grader seeds in the student's kernel too).
"""

from __future__ import annotations

import torch
from torch import nn

from llmkit.i18n.runtime import N_, _

from . import GradingError, assert_defined_in_notebook, call_checked, close, diagnose, fail_with_diagnosis, seeded, \
    seeded_random, with_hint
from .remote import is_remote

IGNORE = -100
BERT_ROLES = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}

HINTS = {
    "special_id_skips": N_("the first new special token does not get the next free id; the vocabulary's ids run "
                           "0 .. len(vocab) - 1, so the next one is len(vocab) of the growing copy."),
    "special_reassigned": N_("a special token the vocabulary already has gets a new id; a token already present "
                             "keeps its id (check `if token not in vocab` first)."),
    "sep_cut": N_("the row is cut after [SEP] was added, so a long text loses its [SEP]; cut the text to "
                  "max_length - 2 ids first, then add [CLS] and [SEP]."),
    "no_truncation": N_("a text longer than max_length is not cut; keep its first max_length - 2 ids."),
    "pad_with_zero": N_("the padding uses id 0, an ordinary token; pad with special['pad']."),
    "mask_inverted": N_("the padding mask is inverted: it must be True for real tokens and False at padding "
                        "(ids != pad_id)."),
    "no_scale": N_("the scores are not divided by sqrt(D) = keys.shape[-1] ** 0.5 before the softmax."),
    "causal_mask": N_("there is a causal mask; an encoder is bidirectional: every token sees the tokens after it "
                      "too, and only padded keys are hidden."),
    "padding_ignored": N_("padded keys still get weight; fill their scores with -inf before the softmax "
                          "(~mask[:, None, None, :])."),
    "mask_on_queries": N_("the mask hides rows (queries) instead of columns (keys); expand it to (B, 1, 1, T) so "
                          "every query ignores the padded keys."),
    "mask_hides_real": N_("the attention mask hides the real tokens and keeps the padding; hide the keys where the "
                          "mask is False (~mask)."),
    "mask_fill_zero": N_("padded scores are set to 0 instead of -inf, so padding still gets weight after the "
                         "softmax; use -inf."),
    "softmax_dim": N_("the softmax normalises the wrong dimension: use dim=-1, so each query's weights sum to 1."),
    "special_chosen": N_("special tokens are chosen for masking; choose only tokens that are not special "
                         "(~torch.isin(ids, special), with mask_id among the special ones)."),
    "targets_everywhere": N_("the targets are not -100 where nothing was chosen; cross_entropy must skip those "
                             "positions: torch.where(chosen, ids, -100)."),
    "targets_from_inputs": N_("the targets hold the masked inputs; they must hold the original ids (a target of "
                              "[MASK] teaches nothing)."),
    "choose_share": N_("the share of chosen tokens is not prob; choose where torch.rand(ids.shape) < prob."),
    "always_mask": N_("every chosen token becomes [MASK]; BERT's rule keeps 10% unchanged and replaces 10% with a "
                      "random ordinary id."),
    "split_wrong": N_("the 80/10/10 split is off: below 0.8 becomes mask_id, from 0.8 to 0.9 a random ordinary id, "
                      "the rest stays."),
    "random_any_id": N_("the random replacements are drawn from every id; draw a position in `ordinary`, the ids "
                        "that are not special, and take ordinary[position]."),
    "draw_order": N_("the proportions are right but the exact draws differ; draw in the order given: rand to "
                     "choose, rand for how, then randint(len(ordinary), ids.shape), all with `generator`."),
    "cls_last": N_("the last token is taken; [CLS] is the first one: hidden[:, 0]."),
    "mean_with_padding": N_("the padding is averaged in; multiply by the mask and divide by the number of real "
                            "tokens."),
    "mean_over_all": N_("the sum of the real tokens is divided by T; divide by each row's number of real tokens "
                        "(mask.sum(dim=1))."),
    "bad_how": N_("pool must raise ValueError for a `how` other than 'cls' or 'mean'."),
    "not_frozen": N_("the encoder is not frozen; set requires_grad to False on every one of its parameters, so "
                     "only the head trains."),
    "encoder_in_train": N_("the frozen encoder's dropout is on in train mode, so the same text gives other "
                           "features each time; override train() to call self.encoder.eval() after "
                           "super().train(mode)."),
    "how_ignored": N_("FeatureClassifier ignores `how`; pass it on to pool."),
    "no_padding_mask": N_("FeatureClassifier pools without the padding mask; pass padding_mask(ids, self.pad_id) "
                          "to pool."),
}

UNIT_TESTED = "named by a mutated solution in tests/test_grading_encoders.py"
NOT_SIMULATED = {"softmax_dim": UNIT_TESTED, "choose_share": UNIT_TESTED, "split_wrong": UNIT_TESTED,
                 "draw_order": UNIT_TESTED, "bad_how": UNIT_TESTED, "mask_hides_real": UNIT_TESTED}


# --------------------------------------------------------------------------- 1. special tokens


def reference_add(vocab, roles, skip=0, reassign=False):
    extended, ids = dict(vocab), {}
    for role, token in roles.items():
        if reassign or token not in extended:
            extended[token] = len(extended) + skip
        ids[role] = extended[token]
    return extended, ids


def reference_encode(ids, special, max_length, sep_cut=False, no_cut=False, pad=None):
    body = list(ids) if no_cut or sep_cut else list(ids)[: max_length - 2]
    row = [special["cls"], *body, special["sep"]]
    if sep_cut:
        row = row[:max_length]
    return row + [special["pad"] if pad is None else pad] * (max_length - len(row))


def _fail_value(what: str, got, expected, variants: dict) -> None:
    hint = next((HINTS[key] for key, value in variants.items() if value == got and value != expected), None)
    # TRANSLATORS: {what} names the checked value; {got} and {expected} are short Python values.
    detail = _("{what} is {got!r}, expected {expected!r}.").format(what=what, got=got, expected=expected)
    raise GradingError(with_hint(detail, hint))


def check_special_tokens(add_special_tokens, encode_for_encoder):
    from llmkit_solutions.encoders import add_special_tokens as ref_add
    from llmkit_solutions.encoders import encode_for_encoder as ref_encode

    assert_defined_in_notebook(add_special_tokens)
    assert_defined_in_notebook(encode_for_encoder)
    rng = seeded_random(10)
    words = [f"w{rng.randrange(10_000)}x{i}" for i in range(rng.randrange(20, 40))]
    vocab = {w: i for i, w in enumerate(words)}
    roles = dict(BERT_ROLES, bos="<BOS>")
    order = list(roles)
    rng.shuffle(order)
    roles = {role: roles[role] for role in order}
    for case, base in (("fresh", vocab), ("has [UNK]", {**vocab, "[UNK]": len(vocab)})):
        got = call_checked("add_special_tokens", add_special_tokens, dict(base), dict(roles))
        expected = ref_add(base, roles)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise GradingError(_("add_special_tokens must return two dicts (the new vocabulary, the ids by role); "
                                 "it returned {got!r}.").format(got=type(got).__name__))
        variants = {"special_id_skips": reference_add(base, roles, skip=1)[1],
                    "special_reassigned": reference_add(base, roles, reassign=True)[1]}
        if dict(got[1]) != expected[1]:
            # TRANSLATORS: {case} says which vocabulary: "fresh" or "has [UNK]".
            _fail_value(_("add_special_tokens' ids by role ({case} vocabulary)").format(case=case), dict(got[1]),
                        expected[1], variants)
        if dict(got[0]) != expected[0]:
            raise GradingError(_("add_special_tokens' new vocabulary differs from the reference: it must hold the "
                                 "old tokens with their ids and each special token once, with the id it reports."))
    special = expected[1]
    for length, max_length in ((5, 12), (10, 12), (11, 12), (20, 12), (3, 5), (9, 4)):
        ids = [rng.randrange(len(vocab)) for _ in range(length)]
        got = call_checked("encode_for_encoder", encode_for_encoder, list(ids), dict(special), max_length)
        want = ref_encode(ids, special, max_length)
        got = list(got) if isinstance(got, (list, tuple)) else got
        if got != want:
            variants = {"sep_cut": reference_encode(ids, special, max_length, sep_cut=True),
                        "no_truncation": reference_encode(ids, special, max_length, no_cut=True),
                        "pad_with_zero": reference_encode(ids, special, max_length, pad=0)}
            # TRANSLATORS: {n} ids of text, {max_length} the row's length.
            _fail_value(_("encode_for_encoder of {n} ids with max_length={max_length}").format(
                n=length, max_length=max_length), got, want, variants)


# --------------------------------------------------------------------------- 2. padding mask and attention


def attend(q, k, v, mask, scale=True, causal=False, mask_mode="keys", fill=-torch.inf, softmax_dim=-1):
    """Reference bidirectional attention with switchable mistakes."""
    scores = q @ k.transpose(-2, -1)
    if scale:
        scores = scores / k.shape[-1] ** 0.5
    T = scores.shape[-1]
    if causal:
        scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), -torch.inf)
    if mask is not None and mask_mode != "none":
        hide = {"keys": ~mask[:, None, None, :], "queries": ~mask[:, None, :, None],
                "inverted": mask[:, None, None, :]}[mask_mode]
        scores = scores.masked_fill(hide, fill)
    return torch.softmax(scores, dim=softmax_dim) @ v


def _attention_variants(q, k, v, mask):
    cases = {"no_scale": dict(scale=False), "causal_mask": dict(causal=True), "padding_ignored": dict(mask_mode="none"),
             "mask_on_queries": dict(mask_mode="queries"), "mask_hides_real": dict(mask_mode="inverted"),
             "mask_fill_zero": dict(fill=0.0), "softmax_dim": dict(softmax_dim=-2)}
    return {name: (attend(q, k, v, mask, **kw), HINTS[name]) for name, kw in cases.items()}


def check_padding_attention(padding_mask, bidirectional_attention):
    assert_defined_in_notebook(padding_mask)
    assert_defined_in_notebook(bidirectional_attention)
    g = seeded(20)
    pad_id = int(torch.randint(3, 50, (1,), generator=g))
    ids = torch.randint(0, 50, (4, 9), generator=g)
    ids[ids == pad_id] = pad_id + 1
    lengths = [9, 6, 3, 8]
    for row, n in enumerate(lengths):
        ids[row, n:] = pad_id
    expected_mask = ids != pad_id
    got = call_checked("padding_mask", padding_mask, ids.clone(), pad_id)
    if not isinstance(got, torch.Tensor) or got.shape != ids.shape or not torch.equal(got.bool(), expected_mask):
        hint = HINTS["mask_inverted"] if isinstance(got, torch.Tensor) and got.shape == ids.shape and \
            torch.equal(got.bool(), ~expected_mask) else None
        raise GradingError(with_hint(_("padding_mask of a padded batch (pad_id={pad_id}) differs from ids != pad_id.")
                                     .format(pad_id=pad_id), hint))
    q, k, v = torch.randn(3, 4, 2, 9, 4, generator=g).unbind(0)  # (B, H, T, D) each
    expected = attend(q, k, v, expected_mask)
    out = call_checked("bidirectional_attention", bidirectional_attention, q, k, v, expected_mask.clone())
    if not isinstance(out, torch.Tensor) or not close(out, expected):
        fail_with_diagnosis(_("bidirectional_attention's output on a padded batch"),
                            out if isinstance(out, torch.Tensor) else torch.tensor(float("nan")), expected,
                            _attention_variants(q, k, v, expected_mask))
    out = call_checked("bidirectional_attention with mask=None", bidirectional_attention, q, k, v, None)
    if not isinstance(out, torch.Tensor) or not close(out, attend(q, k, v, None)):
        raise GradingError(_("bidirectional_attention with mask=None must attend to every key; it differs from the "
                             "reference."))


# --------------------------------------------------------------------------- 3. MLM masking


def reference_masking(ids, vocab_size, mask_id, special_ids, prob=0.15, any_id=False, choose_above=False,
                      always_mask=False, split=(0.8, 0.9), targets_from_inputs=False, no_ignore=False,
                      choose_special=False):
    """BERT's masking with switchable mistakes, drawing from torch's global generator in the exercise's order."""
    special = torch.tensor(sorted(set(special_ids) | {mask_id}))
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in set(special.tolist())])
    draw = torch.rand(ids.shape)
    chosen = draw > 1 - prob if choose_above else draw < prob
    if not choose_special:
        chosen &= ~torch.isin(ids, special)
    how = torch.rand(ids.shape)
    if any_id:
        random_ids = torch.randint(vocab_size, ids.shape)
    else:
        random_ids = ordinary[torch.randint(len(ordinary), ids.shape)]
    inputs = ids.clone()
    if always_mask:
        inputs[chosen] = mask_id
    else:
        inputs[chosen & (how < split[0])] = mask_id
        replace = chosen & (how >= split[0]) & (how < split[1])
        inputs[replace] = random_ids[replace]
    source = inputs if targets_from_inputs else ids
    targets = source.clone() if no_ignore else torch.where(chosen, source, torch.full_like(ids, IGNORE))
    return inputs, targets


MLM_VARIANTS = {"special_chosen": dict(choose_special=True), "targets_everywhere": dict(no_ignore=True),
                "targets_from_inputs": dict(targets_from_inputs=True), "always_mask": dict(always_mask=True),
                "random_any_id": dict(any_id=True), "split_wrong": dict(split=(0.1, 0.9)),
                "choose_share": dict(choose_above=True)}


def _masking_batch(seed: int, rows: int, length: int, vocab_size: int, specials: list[int]):
    """[CLS] ordinary tokens [SEP] [PAD]...: rows of different lengths, ids of ordinary tokens only inside."""
    g = seeded(seed)
    cls_id, sep_id, pad_id = specials[:3]
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in specials])
    ids = ordinary[torch.randint(len(ordinary), (rows, length), generator=g)]
    ids[:, 0] = cls_id
    for row in range(rows):
        end = int(torch.randint(length // 2, length, (1,), generator=g))
        ids[row, end] = sep_id
        ids[row, end + 1:] = pad_id
    return ids


def _masking_fail(detail: str, key: str) -> None:
    raise GradingError(with_hint(detail, HINTS[key]))


def _check_masking_invariants(inputs, targets, ids, mask_id, special, prob):
    if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor) or \
            inputs.shape != ids.shape or targets.shape != ids.shape:
        raise GradingError(_("mask_tokens must return (inputs, targets), two tensors shaped like ids {shape}.")
                           .format(shape=tuple(ids.shape)))
    is_special = torch.isin(ids, special)
    chosen = targets != IGNORE
    if chosen.all():
        _masking_fail(_("mask_tokens gave every position a target, none -100."), "targets_everywhere")
    if (chosen & is_special).any() or (inputs[is_special] != ids[is_special]).any():
        _masking_fail(_("mask_tokens chose or changed special tokens ([CLS], [SEP], [PAD])."), "special_chosen")
    share = chosen.float().sum().item() / max(1, int((~is_special).sum()))
    if share > 0.5:
        _masking_fail(_("mask_tokens gave a target to {share:.0%} of the ordinary tokens.").format(share=share),
                      "choose_share")
    if chosen.any() and (targets[chosen] == mask_id).float().mean() > 0.5:
        _masking_fail(_("most targets are the [MASK] id."), "targets_from_inputs")
    if (targets[chosen] != ids[chosen]).any():
        raise GradingError(_("mask_tokens' targets at chosen positions differ from the original ids."))
    if (inputs[~chosen] != ids[~chosen]).any():
        raise GradingError(_("mask_tokens changed inputs at positions it did not choose (targets -100); change "
                             "only chosen positions."))
    if abs(share - prob) > 0.03:
        _masking_fail(_("mask_tokens chose {share:.1%} of the ordinary tokens with prob={prob}.").format(
            share=share, prob=prob), "choose_share")
    n = int(chosen.sum())
    masked = (inputs[chosen] == mask_id).float().mean().item()
    kept = (inputs[chosen] == ids[chosen]).float().mean().item()
    if masked > 0.97:
        _masking_fail(_("mask_tokens put [MASK] at {masked:.0%} of the chosen positions.").format(masked=masked),
                      "always_mask")
    if abs(masked - 0.8) > 0.05 or kept < 0.05 or kept > 0.16:
        # TRANSLATORS: {n} chosen tokens; {masked} and {kept} are percentages.
        _masking_fail(_("of {n} chosen tokens {masked:.0%} became [MASK] and {kept:.0%} stayed (expected about 80% "
                        "and 10%, plus about 1% of random ids that happen to equal the original).").format(
                            n=n, masked=masked, kept=kept), "split_wrong")
    replaced = chosen & (inputs != mask_id) & (inputs != ids)
    if torch.isin(inputs[replaced], special).any():
        _masking_fail(_("a random replacement is a special token."), "random_any_id")


def check_mask_tokens(mask_tokens):
    assert_defined_in_notebook(mask_tokens)
    vocab_size, specials = 40, [0, 1, 2, 3, 4]  # cls, sep, pad, unk, mask
    mask_id, prob = 4, 0.15
    special = torch.tensor(specials)
    big = _masking_batch(30, 128, 96, vocab_size, specials)
    torch.manual_seed(31)
    inputs, targets = call_checked("mask_tokens", mask_tokens, big.clone(), vocab_size, mask_id, list(specials[:4]),
                                   prob)
    _check_masking_invariants(inputs, targets, big, mask_id, special, prob)
    for seed, p in ((32, 0.15), (33, 0.3)):
        small = _masking_batch(seed, 6, 20, vocab_size, specials)
        torch.manual_seed(seed)
        got = call_checked("mask_tokens", mask_tokens, small.clone(), vocab_size, mask_id, list(specials[:4]), p)
        torch.manual_seed(seed)
        want = reference_masking(small, vocab_size, mask_id, specials[:4], p)
        if not (isinstance(got, (tuple, list)) and len(got) == 2 and all(close(a, b) for a, b in zip(got, want))):
            variants = {}
            for key, options in MLM_VARIANTS.items():
                torch.manual_seed(seed)
                variants[key] = (torch.cat(reference_masking(small, vocab_size, mask_id, specials[:4], p, **options)),
                                 HINTS[key])
            got_cat = torch.cat(list(got)) if isinstance(got, (tuple, list)) and len(got) == 2 else torch.tensor([])
            hint = diagnose(got_cat, variants) or HINTS["draw_order"]
            raise GradingError(with_hint(_("mask_tokens after torch.manual_seed (prob={prob}) differs from the "
                                           "reference's draws.").format(prob=p), hint))


# --------------------------------------------------------------------------- 4. pooling


def reference_pool(hidden, mask, how, mistake=None):
    if how == "cls":
        return hidden[:, -1] if mistake == "cls_last" else hidden[:, 0]
    if mask is None or mistake == "mean_with_padding":
        return hidden.mean(dim=1)
    keep = mask.unsqueeze(-1).to(hidden.dtype)
    count = torch.full_like(keep.sum(dim=1), hidden.shape[1]) if mistake == "mean_over_all" else keep.sum(dim=1)
    return (hidden * keep).sum(dim=1) / count.clamp(min=1.0)


def check_pool(pool):
    assert_defined_in_notebook(pool)
    g = seeded(40)
    hidden = torch.randn(4, 7, 5, generator=g)
    mask = torch.ones(4, 7, dtype=torch.bool)
    for row, n in enumerate((7, 4, 2, 6)):
        mask[row, n:] = False
    for how in ("cls", "mean"):
        out = call_checked(f"pool(..., how={how!r})", pool, hidden.clone(), mask.clone(), how)
        expected = reference_pool(hidden, mask, how)
        if not isinstance(out, torch.Tensor) or not close(out, expected):
            variants = {key: (reference_pool(hidden, mask, how, key), HINTS[key])
                        for key in ("cls_last", "mean_with_padding", "mean_over_all")}
            fail_with_diagnosis(_("pool(..., how={how!r})").format(how=how),
                                out if isinstance(out, torch.Tensor) else torch.tensor(float("nan")), expected,
                                variants)
    out = call_checked("pool(..., mask=None, how='mean')", pool, hidden.clone(), None, "mean")
    if not isinstance(out, torch.Tensor) or not close(out, hidden.mean(dim=1)):
        raise GradingError(_("pool with mask=None and how='mean' must average every token: hidden.mean(dim=1)."))
    try:
        pool(hidden.clone(), mask.clone(), "max")
    except Exception as exc:  # noqa: BLE001 - the student's error, as Python's own type
        if type(exc).__name__ == "ValueError":
            return
    raise GradingError(with_hint(_("pool(..., how='max') did not raise ValueError."), HINTS["bad_how"]))


# --------------------------------------------------------------------------- 5. feature extraction


def _encoder_beside(student, vocab_size: int, emb_dim: int, seed: int):
    """(grader copy, what the student's class receives): an embedding table with dropout, in the kernel if remote."""
    torch.manual_seed(seed)
    embedding = nn.Embedding(vocab_size, emb_dim)
    local = nn.Sequential(embedding, nn.Dropout(0.5))
    if not is_remote(student):
        return local, nn.Sequential(nn.Embedding.from_pretrained(embedding.weight.detach().clone(), freeze=False),
                                    nn.Dropout(0.5))
    from .trusted import current_session

    session = current_session.get()
    remote_embedding = session.ship(embedding, vocab_size, emb_dim)
    dropout = session.build("torch.nn", "Dropout", 0.5)
    return local, session.build("torch.nn", "Sequential", remote_embedding, dropout)


def _as_float(value):
    return value if isinstance(value, torch.Tensor) else torch.tensor(float("nan"))


def check_feature_classifier(cls):
    assert_defined_in_notebook(cls)
    vocab_size, emb_dim, num_classes, pad_id = 30, 6, 3, 2
    g = seeded(50)
    ids = torch.randint(3, vocab_size, (5, 8), generator=g)
    ids[:, 0] = 0
    for row, n in enumerate((8, 5, 3, 7, 4)):
        ids[row, n:] = pad_id
    for how in ("mean", "cls"):
        local, given = _encoder_beside(cls, vocab_size, emb_dim, 51)
        student = call_checked(f"FeatureClassifier(encoder, {emb_dim}, {num_classes}, pad_id={pad_id}, how={how!r})",
                               cls, given, emb_dim, num_classes, pad_id, how)
        params = [(p.numel(), bool(p.requires_grad)) for p in student.parameters()]
        trainable = sum(n for n, needs in params if needs)
        head_size = emb_dim * num_classes + num_classes
        if trainable != head_size:
            key = "not_frozen" if trainable >= head_size + vocab_size * emb_dim else None
            raise GradingError(with_hint(_("FeatureClassifier has {trainable} trainable parameters; the head alone "
                                           "has {head}.").format(trainable=trainable, head=head_size),
                                         HINTS[key] if key else None))
        weight, bias = student.head.weight.detach(), student.head.bias.detach()
        table = local[0].weight.detach()
        hidden = table[ids]  # what the encoder gives in eval mode
        mask = ids != pad_id

        def logits(pooled):
            return pooled @ weight.T + bias

        student.eval()
        out = _as_float(call_checked("FeatureClassifier.forward", student, ids.clone()))
        expected = logits(reference_pool(hidden, mask, how))
        if not close(out, expected):
            other = "cls" if how == "mean" else "mean"
            variants = {"how_ignored": (logits(reference_pool(hidden, mask, other)), HINTS["how_ignored"]),
                        "no_padding_mask": (logits(reference_pool(hidden, None, how)), HINTS["no_padding_mask"])}
            variants.update({key: (logits(reference_pool(hidden, mask, how, key)), HINTS[key])
                             for key in ("cls_last", "mean_with_padding", "mean_over_all")})
            fail_with_diagnosis(_("FeatureClassifier's logits (how={how!r}, eval mode)").format(how=how), out,
                                expected, variants)
        call_checked("FeatureClassifier.train()", student.train)
        first = _as_float(call_checked("FeatureClassifier.forward in train mode", student, ids.clone()))
        if not close(first, expected):
            raise GradingError(with_hint(_("FeatureClassifier in train mode gives other logits than in eval mode."),
                                         HINTS["encoder_in_train"]))

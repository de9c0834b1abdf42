"""Hidden-test checks for stage 8: fine-tuning GPT to classify spam.

Each ``check_*`` takes the student's function or class, runs it on small seeded inputs (a toy
word tokenizer, a stub model whose logits depend on each token and its position, a tiny
``GPTModel``), compares the result with the reference solution, and on a mismatch names the known
mistake whose result the student's matches: labels not mapped to 0/1, padding on the wrong side or
with the wrong id, the head not replaced, layers not frozen (or all frozen), the logits of the
first token instead of the last, and so on. Random choices (which ham rows, the shuffle order) are
graded by their properties, so ``random.Random(seed)`` passes as well as ``np.random``.

Under trusted grading the student's code runs in their kernel. The toy tokenizer and the stub
model are lent to it (each use asks the grader), and the expected answers come from the grader's
own copies, which student code never touches; the tiny GPT that ``prepare_for_classification``
changes is built in the kernel (``beside``) and read back as data (names, shapes, requires_grad).
"""

from __future__ import annotations

import csv
import io

import torch
from torch import nn

from llmkit.i18n.runtime import N_, _

from . import GradingError, assert_defined_in_notebook, call_checked, seeded, with_hint
from .lora import beside, type_name
from .remote import file_for

PAD = 50256

HINTS = {
    "left_pad": N_("the padding is on the wrong side: put the pad ids after the text (ids + [pad_token_id] * ...), "
                   "as the book does; the model is trained and used with padding at the end."),
    "zero_pad": N_("the texts are padded with 0 instead of pad_token_id (50256, <|endoftext|>)."),
    "fixed_pad": N_("the texts are padded with 50256 whatever pad_token_id says; pad with the pad_token_id argument."),
    "no_truncation": N_("texts longer than max_length are not cut: keep the first max_length ids (ids[:max_length])."),
    "cut_front": N_("long texts lose their beginning: keep the first max_length ids (ids[:max_length]), not the last."),
    "first_token": N_("the logits of the first token are used; with causal attention only the last token has seen "
                      "the whole text, so read logits[:, -1, :]."),
    "mean_tokens": N_("the logits are averaged over all tokens; the book reads the last token only: logits[:, -1, :]."),
    "all_tokens": N_("the loss is computed at every position; use only the last token's logits (logits[:, -1, :]) "
                     "against one label per text."),
    "no_pad_review": N_("classify_review does not pad the text to max_length; pad it at the end with pad_token_id, "
                        "exactly as SpamDataset did for training."),
    "swapped_names": N_("the two answers are swapped: class 1 is spam, class 0 is not spam."),
    "not_undersampled": N_("ham is not undersampled; draw as many ham rows as there are spam rows."),
    "with_replacement": N_("the same ham row is drawn twice: sample without replacement "
                           "(RandomState(seed).choice(n, k, replace=False) or random.Random(seed).sample)."),
    "unshuffled": N_("random_split cuts the data in its original order: shuffle it first. create_balanced_dataset puts "
                     "all ham before all spam, so the test split would be almost all spam."),
    "split_order": N_("the splits come back as (train, test, validation); return train, validation, test."),
    "labels_not_mapped": N_("labels are not mapped to 0/1; store 0 for ham and 1 for spam (the given _label_id "
                            "does it)."),
    "labels_swapped": N_("the labels are swapped; the book maps ham to 0 and spam to 1."),
    "not_frozen": N_("the layers are not frozen; set requires_grad = False on every parameter first, then unfreeze the "
                     "last block(s) and final_norm."),
    "all_frozen": N_("everything is frozen, even the new head; freeze first, then create the head (new layers train by "
                     "default) and unfreeze the last block(s) and final_norm."),
    "head_frozen": N_("the new head is frozen: replace the head after freezing the model (a fresh nn.Linear trains by "
                      "default), or set its requires_grad = True."),
    "head_no_bias": N_("the new head has no bias; the book's head is nn.Linear(emb_dim, num_classes) with its default "
                       "bias."),
    "not_in_place": N_("the model it was given is left unchanged (a copy was prepared): change model itself, in place, "
                       "and return it, as the book's code does."),
    "final_norm_frozen": N_("final_norm is frozen; unfreeze it with the last block(s), as the book does."),
    "first_block": N_("the first block trains instead of the last: the last block is model.trf_blocks[-1] "
                      "(index n_layers - 1)."),
    "accuracy_train_mode": N_("the model runs in train mode: call model.eval() first, or dropout makes the accuracy "
                              "noisy."),
}

# Hints the course's mistake table does not simulate end to end (each notebook there takes long to grade):
# tests/test_grading_classification.py names every one of them with a mutated solution.
UNIT_TESTED = "named by a mutated solution in tests/test_grading_classification.py"
NOT_SIMULATED = {
    "fixed_pad": UNIT_TESTED,
    "no_truncation": UNIT_TESTED,
    "cut_front": UNIT_TESTED,
    "all_tokens": UNIT_TESTED,
    "swapped_names": UNIT_TESTED,
    "not_undersampled": UNIT_TESTED,
    "with_replacement": UNIT_TESTED,
    "labels_swapped": UNIT_TESTED,
    "all_frozen": UNIT_TESTED,
    "final_norm_frozen": UNIT_TESTED,
}


# --------------------------------------------------------------------------- test material


class WordTokenizer:
    """A toy tokenizer for the checks: one id (3..92) per whitespace-separated word."""

    def encode(self, text, **kwargs):  # **kwargs: students may pass allowed_special=...
        return [3 + sum(map(ord, word)) % 90 for word in text.split()]

    def decode(self, ids):
        return " ".join(f"w{int(i)}" for i in ids)


WORDS = ("win cash now call free prize claim txt reply stop see you at six ok sure running late dinner "
         "tonight mum bus home love thanks meeting moved lunch").split()


def spam_rows(seed, count=14, min_words=1, max_words=9):
    """Seeded ``(label, text)`` rows with "ham"/"spam" labels and texts of varied length."""
    g = seeded(seed)
    rows = []
    for i in range(count):
        n = int(torch.randint(min_words, max_words + 1, (1,), generator=g))
        words = [WORDS[int(j)] for j in torch.randint(0, len(WORDS), (n,), generator=g)]
        rows.append(("spam" if i % 3 == 1 else "ham", " ".join(words) + f" m{i}"))
    return rows


class TokenPositionStub(nn.Module):
    """Stub classifier, causal like a GPT: the logits at position t sum table[token s] * weight[s] over s <= t.

    So the last position depends on every token and on where it stands (padding side matters), the
    first position on the first token only. Records the train/eval mode of each call.
    """

    def __init__(self, vocab_size=PAD + 1, context_length=16, num_classes=2, seed=0):
        super().__init__()
        g = seeded(seed)
        self.token_logits = nn.Parameter(torch.randn(vocab_size, num_classes, generator=g))
        self.position_logits = nn.Parameter(torch.randn(context_length, num_classes, generator=g))
        self.pos_emb = nn.Embedding(context_length, 1)  # where the book reads the context length
        self.modes_seen = []

    def forward(self, in_idx):
        self.modes_seen.append(self.training)
        per_token = self.token_logits[in_idx] * self.position_logits[: in_idx.shape[1]]  # (B, T, C)
        return per_token.cumsum(dim=1)  # (B, T, C): position t has seen tokens 0..t


def _tiny_gpt(seed, n_layers=3):
    from llmkit_solutions.gpt import GPTModel

    torch.manual_seed(seed)
    cfg = dict(vocab_size=40, context_length=8, emb_dim=16, n_heads=2, n_layers=n_layers, drop_rate=0.0,
               qkv_bias=False)
    return GPTModel(cfg), cfg


def _describe(value, limit=90):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- data


def _as_rows(result, what):
    if not isinstance(result, (list, tuple)):
        raise GradingError(_("{what} should return a list of (label, text) rows, got {type_name}.").format(
            what=what, type_name=type_name(result)))
    return [tuple(row) if isinstance(row, (list, tuple)) else row for row in result]


def check_create_balanced_dataset(fn):
    """Every spam row kept, as many distinct ham rows drawn from the input, seeded."""
    from collections import Counter

    assert_defined_in_notebook(fn)
    rows = [("ham", f"ham message {i}") for i in range(40)] + [("spam", f"spam message {i}") for i in range(11)]
    order = torch.randperm(len(rows), generator=seeded(8)).tolist()
    rows = [rows[i] for i in order]  # spam and ham interleaved, as in the real file
    ham = {row for row in rows if row[0] == "ham"}
    spam = [row for row in rows if row[0] == "spam"]
    before = list(rows)
    out = _as_rows(call_checked("create_balanced_dataset(rows)", fn, rows), "create_balanced_dataset")
    if rows != before:
        raise GradingError(_("create_balanced_dataset changed the list it was given; build and return a new list."))
    counts = Counter(row[0] for row in out if isinstance(row, tuple))
    if len(out) == len(rows) and counts["ham"] == 40:
        raise GradingError(_("create_balanced_dataset returns every row: {hint}").format(
            hint=_(HINTS["not_undersampled"])))
    if Counter(row for row in out if row[0] == "spam") != Counter(spam):
        # TRANSLATORS: {spam} is how many spam rows the input holds; {got} how many the result holds.
        raise GradingError(_("create_balanced_dataset must keep every spam row unchanged ({spam} here); got "
                             "{got} spam rows.").format(spam=len(spam), got=counts["spam"]))
    out_ham = [row for row in out if row[0] == "ham"]
    if len(out) != 2 * len(spam) or len(out_ham) != len(spam):
        # TRANSLATORS: {spam} is the number of spam rows in the input; {got_ham} and {got_spam} count the result.
        raise GradingError(_("with {spam} spam and 40 ham rows the result must hold {spam} of each; "
                             "got {got_ham} ham and {got_spam} spam.").format(
            spam=len(spam), got_ham=counts["ham"], got_spam=counts["spam"]))
    if not set(out_ham) <= ham:
        raise GradingError(_("create_balanced_dataset returns ham rows that were not in the input."))
    if len(set(out_ham)) != len(out_ham):
        raise GradingError(_(HINTS["with_replacement"]))
    again = _as_rows(call_checked(_("create_balanced_dataset(rows) again"), fn, rows), "create_balanced_dataset")
    if again != out:
        raise GradingError(_("two calls with the same seed give different rows; draw with a generator seeded "
                             "by the seed argument (np.random.RandomState(seed) or random.Random(seed))."))
    others = [_as_rows(call_checked(f"create_balanced_dataset(rows, seed={s})", fn, rows, seed=s),
                       "create_balanced_dataset") for s in (1, 2, 3)]
    if all(sorted(o) == sorted(out) for o in others):
        raise GradingError(_("the seed argument makes no difference to which ham rows are drawn; use it to seed "
                             "the random draw."))
    few_ham = [("ham", "a"), ("spam", "b"), ("spam", "c")]
    try:
        fn(few_ham)
    except Exception:  # any clear error is fine here
        return
    raise GradingError(_("with fewer ham than spam rows there is nothing to undersample: raise an error "
                         "(the given lines do) instead of returning a dataset."))


def _check_split(fn, data, train_frac, validation_frac, seed_kw):
    n = len(data)
    # TRANSLATORS: the call being checked; {count} is how many items the data holds.
    what = _("random_split(data of {count}, {train_frac}, {validation_frac})").format(
        count=n, train_frac=train_frac, validation_frac=validation_frac)
    parts = call_checked(what, fn, data, train_frac, validation_frac, **seed_kw)
    if not isinstance(parts, (list, tuple)) or len(parts) != 3:
        raise GradingError(_("{what} should return three lists (train, validation, test), got {got}.").format(
            what=what, got=_describe(parts)))
    train, validation, test = (list(p) for p in parts)
    sizes = (len(train), len(validation), len(test))
    n_train, n_val = int(n * train_frac), int(n * validation_frac)
    expected = (n_train, n_val, n - n_train - n_val)
    if sizes != expected:
        if sizes == (expected[0], expected[2], expected[1]):
            raise GradingError(with_hint(_("{what} gives sizes {sizes}, expected {expected}.").format(
                what=what, sizes=sizes, expected=expected), HINTS["split_order"]))
        if sizes[0] == round(n * train_frac) or sizes[1] == round(n * validation_frac):
            raise GradingError(_("{what} gives sizes {sizes}, expected {expected}: round the sizes down with int(), "
                                 "as the book does; the test split gets the rest.").format(
                what=what, sizes=sizes, expected=expected))
        raise GradingError(_("{what} gives sizes {sizes}, expected {expected} (int(n * train_frac), "
                             "int(n * validation_frac), the rest).").format(what=what, sizes=sizes, expected=expected))
    if sorted(train + validation + test) != sorted(data):
        raise GradingError(_("{what}: the three splits together must hold every item exactly once.").format(
            what=what))
    return train, validation, test


def check_random_split(fn):
    """Sizes (int-rounded), a seeded shuffle, every item once, (train, validation, test) order."""
    assert_defined_in_notebook(fn)
    data = [("ham", f"h{i}") for i in range(24)] + [("spam", f"s{i}") for i in range(23)]  # 47 rows, ham first
    train, validation, test = _check_split(fn, data, 0.7, 0.1, {})
    if train + validation + test == data:
        raise GradingError(_(HINTS["unshuffled"]))
    if _check_split(fn, data, 0.7, 0.1, {})[0] != train:
        raise GradingError(_("two calls with the same seed give different splits; shuffle with a generator seeded "
                             "by the seed argument."))
    if all(_check_split(fn, data, 0.7, 0.1, {"seed": s})[0] == train for s in (1, 2)):
        raise GradingError(_("the seed argument makes no difference to the shuffle; use it to seed the shuffle."))
    _check_split(fn, data[:31], 0.5, 0.25, {"seed": 7})
    _check_split(fn, data[:40], 0.8, 0.2, {"seed": 7})


def _item_ids(item, what):
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise GradingError(_("{what} should be a pair (token ids, label), got {got}.").format(
            what=what, got=_describe(item)))
    ids, label = item
    if isinstance(label, str) or (isinstance(label, (list, tuple)) and label and isinstance(label[0], str)):
        raise GradingError(_("{what} has the label {label!r}: {hint}").format(
            what=what, label=label, hint=_(HINTS["labels_not_mapped"])))
    try:
        ids_t = torch.as_tensor(ids)
        label_t = torch.as_tensor(label)
    except Exception as exc:
        raise GradingError(_("{what} could not be read as tensors ({error_type}: {error}).").format(
            what=what, error_type=type(exc).__name__, error=exc)) from exc
    if ids_t.dtype != torch.long:
        raise GradingError(_("{what}: the token ids are {dtype}; make them torch.long "
                             "(torch.tensor(ids, dtype=torch.long)), as an embedding layer needs.").format(
            what=what, dtype=ids_t.dtype))
    if label_t.dtype != torch.long or label_t.dim() != 0:
        raise GradingError(_("{what}: the label is {label}; return one integer per text as a 0-d "
                             "torch.long tensor (cross_entropy needs class indices).").format(
            what=what, label=_describe(label)))
    return ids_t.tolist(), int(label_t)


def _ids_variants(encoded, length, pad):
    cut = [ids[:length] for ids in encoded]
    return {
        "left_pad": [[pad] * (length - len(c)) + c for c in cut],
        "zero_pad": [c + [0] * (length - len(c)) for c in cut],
        "fixed_pad": [c + [PAD] * (length - len(c)) for c in cut],
        "no_truncation": [ids + [pad] * (length - len(ids)) for ids in encoded],
        "cut_front": [ids[-length:] + [pad] * (length - len(ids[-length:])) for ids in encoded],
    }


def book_csv(rows) -> str:
    """``(label, text)`` rows as the book saves a split: a ``Label,Text`` header and labels 0/1."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Label", "Text"])
    for label, text in rows:
        writer.writerow([{"ham": 0, "spam": 1}[label], text])
    return buffer.getvalue()


def check_spam_dataset(cls):
    """Items (ids padded at the end with pad_token_id to max_length, label 0/1); max_length set or longest.

    The book's class reads a saved split's CSV (with pandas); the course's notebook also passes
    ``(label, text)`` rows. Each interface the class accepts must be right, and it must accept one."""
    from llmkit_solutions.classification import SpamDataset

    assert_defined_in_notebook(cls)
    tokenizer = WordTokenizer()
    cases = [(spam_rows(21), {}), (spam_rows(22, max_words=12), dict(max_length=6, pad_token_id=2))]
    for number, (rows, kwargs) in enumerate(cases):
        reference = SpamDataset(rows, tokenizer, **kwargs)
        options = "".join(f", {k}={v}" for k, v in kwargs.items())
        built, refused = 0, []
        for what, source in ((f'SpamDataset("split{number}.csv", tokenizer{options})',
                              lambda: file_for(cls, f"split{number}.csv", book_csv(rows))),
                             (f"SpamDataset(rows, tokenizer{options})", lambda: rows)):
            try:
                student = call_checked(what, cls, source(), tokenizer, **kwargs)
            except GradingError as exc:
                refused.append(exc)  # a class may read files only (the book's) or take rows only
                continue
            _check_spam_items(student, what, rows, tokenizer, kwargs, reference)
            built += 1
        if not built:
            # TRANSLATORS: {error} is the message of the failed call (already translated).
            raise GradingError(_("{error} (It must build from the path of a saved split, as the book's does, "
                                 "or from (label, text) rows.)").format(error=refused[0]))


def _check_spam_items(student, what, rows, tokenizer, kwargs, reference):
    if call_checked(f"len({what})", len, student) != len(rows):
        raise GradingError(_("len({what}) is {got}, expected {expected}: one item per text.").format(
            what=what, got=len(student), expected=len(rows)))
    if getattr(student, "max_length", None) != reference.max_length:
        if not hasattr(student, "max_length"):
            raise GradingError(_("{what} has no max_length attribute; store the padded length as "
                                 "self.max_length (the validation and test sets are built with it).").format(
                what=what))
        rule = (_("the longest encoded text") if "max_length" not in kwargs
                else _("the max_length argument"))
        # TRANSLATORS: {rule} says where the expected length comes from ("the longest encoded text").
        raise GradingError(_("{what}.max_length is {got}, expected {expected} ({rule}).").format(
            what=what, got=student.max_length, expected=reference.max_length, rule=rule))
    got, labels = [], []
    for i in range(len(rows)):
        try:
            item = call_checked(f"{what}[{i}]", student.__getitem__, i)
        except GradingError as exc:
            stored = getattr(student, "labels", None)
            if isinstance(stored, (list, tuple)) and any(isinstance(v, str) for v in stored):
                # TRANSLATORS: {error} is the message of the failed call; {first} the first stored label.
                raise GradingError(_("{error} The stored labels are strings ({first!r}, ...): {hint}").format(
                    error=exc, first=stored[0], hint=_(HINTS["labels_not_mapped"]))) from exc
            raise
        ids, label = _item_ids(item, f"{what}[{i}]")
        got.append(ids)
        labels.append(label)
    expected_labels = [int(reference[i][1]) for i in range(len(rows))]
    if labels != expected_labels:
        if labels == [1 - v for v in expected_labels]:
            # TRANSLATORS: {what} is the checked object or call, {hint} a sentence naming the mistake.
            raise GradingError(_("{what}: {hint}").format(what=what, hint=_(HINTS["labels_swapped"])))
        first = next(i for i, (a, b) in enumerate(zip(labels, expected_labels)) if a != b)
        raise GradingError(_("{what}: the labels differ first at item {index}: got {got!r}, expected "
                             "{expected} (ham 0, spam 1, in the order of the rows).").format(
            what=what, index=first, got=labels[first], expected=expected_labels[first]))
    expected = [reference[i][0].tolist() for i in range(len(rows))]
    if got != expected:
        encoded = [tokenizer.encode(text) for _label, text in rows]
        pad = kwargs.get("pad_token_id", PAD)
        for name, variant in _ids_variants(encoded, reference.max_length, pad).items():
            if variant == got and variant != expected:
                raise GradingError(with_hint(_("{what}: the token ids differ from the reference.").format(
                    what=what), HINTS[name]))
        first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        raise GradingError(_("{what}[{index}] holds ids {got}, expected {expected}: encode the "
                             "text, cut it to max_length and pad it at the end with pad_token_id.").format(
            what=what, index=first, got=got[first], expected=expected[first]))


# --------------------------------------------------------------------------- the model


def _trainable_groups(model):
    """Top-level parts with at least one trainable parameter: 'tok_emb', 'trf_blocks.2', 'out_head' ..."""
    groups = set()
    for name, param in model.named_parameters():
        if param.requires_grad:
            parts = name.split(".")
            groups.add(".".join(parts[:2]) if parts[0] == "trf_blocks" else parts[0])
    return groups


def _frozen_parts(model):
    groups = set()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            parts = name.split(".")
            groups.add(".".join(parts[:2]) if parts[0] == "trf_blocks" else parts[0])
    return groups


def _check_prepared(fn, num_classes, trainable_blocks, seed):
    model, cfg = _tiny_gpt(seed)
    model = beside(fn, model, cfg)  # the student's function changes a copy in their kernel; we read it back
    n_layers = cfg["n_layers"]
    kwargs = {}
    if num_classes != 2:
        kwargs["num_classes"] = num_classes
    if trainable_blocks != 1:
        kwargs["trainable_blocks"] = trainable_blocks
    what = "prepare_for_classification(model" + "".join(f", {k}={v}" for k, v in kwargs.items()) + ")"
    out = call_checked(what, fn, model, **kwargs)
    head = getattr(model, "out_head", None)
    if isinstance(out, nn.Module) and out is not model and isinstance(head, nn.Linear) \
            and head.out_features == cfg["vocab_size"]:
        # TRANSLATORS: {what} is the call, e.g. prepare_for_classification(model); {hint} names the mistake.
        raise GradingError(_("after {what}: {hint}").format(what=what, hint=_(HINTS["not_in_place"])))
    model = out if isinstance(out, nn.Module) else model
    head = getattr(model, "out_head", None)
    if not isinstance(head, nn.Linear):
        raise GradingError(_("after {what}, model.out_head is {type_name}; make it an nn.Linear.").format(
            what=what, type_name=type_name(head)))
    if head.out_features == cfg["vocab_size"]:
        raise GradingError(_("after {what} the head still has {count} outputs: the head was not "
                             "replaced; set model.out_head = nn.Linear(emb_dim, num_classes).").format(
            what=what, count=cfg["vocab_size"]))
    if head.out_features != num_classes:
        raise GradingError(_("after {what} the head has {count} outputs, expected num_classes={num_classes}.").format(
            what=what, count=head.out_features, num_classes=num_classes))
    if head.in_features != cfg["emb_dim"]:
        raise GradingError(_("the new head reads {features} features, but this model's emb_dim is "
                             "{emb_dim}; take it from the old head (model.out_head.in_features), "
                             "not a fixed 768.").format(features=head.in_features, emb_dim=cfg["emb_dim"]))
    if getattr(head, "bias", None) is None:
        raise GradingError(_("after {what}: {hint}").format(what=what, hint=_(HINTS["head_no_bias"])))
    wanted = {"out_head", "final_norm"} | {f"trf_blocks.{i}" for i in range(n_layers - trainable_blocks, n_layers)}
    got = _trainable_groups(model)
    partly = _trainable_groups(model) & _frozen_parts(model)
    if got == wanted and not partly:
        logits = call_checked(_("the prepared model on a batch"), model, torch.randint(0, 40, (2, 5)))
        if tuple(logits.shape) != (2, 5, num_classes):
            raise GradingError(_("the prepared model returns logits of shape {shape}, expected "
                                 "(2, 5, {num_classes}).").format(shape=tuple(logits.shape), num_classes=num_classes))
        return
    every = {"tok_emb", "pos_emb", "final_norm", "out_head"} | {f"trf_blocks.{i}" for i in range(n_layers)}
    if got == every:
        raise GradingError(_("after {what} every parameter still trains: {hint}").format(
            what=what, hint=_(HINTS["not_frozen"])))
    if not got:
        raise GradingError(_("after {what} nothing trains: {hint}").format(what=what, hint=_(HINTS["all_frozen"])))
    if "out_head" not in got:
        raise GradingError(_("after {what}: {hint}").format(what=what, hint=_(HINTS["head_frozen"])))
    if trainable_blocks == 0 and got >= {f"trf_blocks.{i}" for i in range(n_layers)}:
        raise GradingError(_("with trainable_blocks=0 every block trains: blocks[-0:] is the whole list; take the "
                             "blocks from index len(model.trf_blocks) - trainable_blocks on."))
    if got == {"out_head"}:
        raise GradingError(_("after {what} only the head trains: everything else is frozen; unfreeze the last "
                             "transformer block(s) and final_norm too.").format(what=what))
    if "final_norm" not in got:
        raise GradingError(_("after {what}: {hint}").format(what=what, hint=_(HINTS["final_norm_frozen"])))
    early = sorted(g for g in got - wanted if g.startswith("trf_blocks"))
    missing = sorted(g for g in wanted - got if g.startswith("trf_blocks"))
    if early and missing and "trf_blocks.0" in early:
        # TRANSLATORS: {early} and {missing} are lists of blocks, e.g. ['trf_blocks.0'].
        raise GradingError(_("after {what} {early} train instead of {missing}: {hint}").format(
            what=what, early=early, missing=missing, hint=_(HINTS["first_block"])))
    if missing:
        # TRANSLATORS: {missing} is a list of blocks, e.g. ['trf_blocks.2']; {count} how many blocks should train.
        raise GradingError(_("after {what} {missing} stay frozen; unfreeze the last {count} "
                             "transformer block(s).").format(what=what, missing=missing, count=trainable_blocks))
    extra = sorted(got - wanted)
    if extra:
        # TRANSLATORS: {extra} is a list of model parts, e.g. ['tok_emb']; {count} how many blocks should train.
        raise GradingError(_("after {what} {extra} still train: the layers are not frozen; only the last "
                             "{count} block(s), final_norm and the new head should train.").format(
            what=what, extra=extra, count=trainable_blocks))
    # TRANSLATORS: {modules} is a list of model parts, e.g. ['trf_blocks.2'].
    raise GradingError(_("after {what} some modules are only partly frozen ({modules}); freeze or unfreeze "
                         "every parameter of a module.").format(what=what, modules=sorted(partly)))


def check_prepare_for_classification(fn):
    """New num_classes head; only the last ``trainable_blocks`` blocks, final_norm and the head train."""
    assert_defined_in_notebook(fn)
    _check_prepared(fn, 2, 1, seed=31)
    _check_prepared(fn, 3, 1, seed=32)
    _check_prepared(fn, 2, 2, seed=33)
    _check_prepared(fn, 2, 0, seed=34)


# --------------------------------------------------------------------------- loss and accuracy


def check_calc_loss_batch(fn):
    """Cross-entropy of the last token's logits against one label per text, as a tensor to backpropagate."""
    from llmkit_solutions.classification import calc_loss_batch

    assert_defined_in_notebook(fn)
    for num_classes, seed in ((2, 41), (3, 42)):
        model = TokenPositionStub(vocab_size=50, context_length=8, num_classes=num_classes, seed=seed)
        own = TokenPositionStub(vocab_size=50, context_length=8, num_classes=num_classes, seed=seed)  # never lent
        g = seeded(seed)
        inputs = torch.randint(0, 50, (6, 7), generator=g)
        labels = torch.randint(0, num_classes, (6,), generator=g)
        out = call_checked("calc_loss_batch(input_batch, target_batch, model, 'cpu')", fn, inputs, labels, model, "cpu")
        if not isinstance(out, torch.Tensor):
            raise GradingError(_("calc_loss_batch returned {type_name}; return the loss tensor itself "
                                 "(not .item()), so that loss.backward() can train the model.").format(
                type_name=type_name(out)))
        if out.numel() != 1:
            raise GradingError(_("calc_loss_batch returned a tensor of shape {shape}; return the mean "
                                 "loss of the batch, one number.").format(shape=tuple(out.shape)))
        if not out.requires_grad:
            raise GradingError(_("the loss does not require grad: do not compute it under torch.no_grad() or "
                                 "detach it; training calls loss.backward()."))
        with torch.no_grad():
            logits = own(inputs)
            expected = calc_loss_batch(inputs, labels, own, "cpu")
            T = logits.shape[1]
            ce = nn.functional.cross_entropy
            variants = {"first_token": ce(logits[:, 0, :], labels), "mean_tokens": ce(logits.mean(dim=1), labels),
                        "all_tokens": ce(logits.flatten(0, 1), labels.repeat_interleave(T))}
        value = out.detach().reshape(())
        if not torch.allclose(value, expected, atol=1e-5, rtol=1e-4):
            for name, variant in variants.items():
                if torch.allclose(value, variant, atol=1e-5, rtol=1e-4):
                    raise GradingError(with_hint(_("calc_loss_batch gives {got:.4f}, expected {expected:.4f}.").format(
                        got=value.item(), expected=expected.item()), HINTS[name]))
            raise GradingError(_("calc_loss_batch gives {got:.4f}, expected {expected:.4f}: the "
                                 "cross-entropy of the last token's logits (B, num_classes) against the labels (B,).")
                               .format(got=value.item(), expected=expected.item()))


def _accuracy_loader(seed):
    """10 examples in batches of 4, 4, 2, labelled so that 7 of 10 match the last token's argmax."""
    from torch.utils.data import DataLoader

    model = TokenPositionStub(vocab_size=50, context_length=8, num_classes=2, seed=seed)
    inputs = torch.randint(0, 50, (10, 6), generator=seeded(seed))
    with torch.no_grad():
        last = model(inputs)[:, -1, :].argmax(dim=-1)
    labels = last.clone()
    labels[[0, 1, 8]] = 1 - labels[[0, 1, 8]]  # batch accuracies 0.5, 1.0, 0.5: the mean of batches is 2/3
    model.modes_seen.clear()
    return model, inputs, labels, DataLoader(list(zip(inputs, labels)), batch_size=4)


def check_calc_accuracy_loader(fn):
    """Share of examples whose last-token argmax equals the label, over the first num_batches batches."""
    assert_defined_in_notebook(fn)
    model, inputs, labels, loader = _accuracy_loader(seed=43)
    with torch.no_grad():
        first = (model(inputs)[:, 0, :].argmax(dim=-1) == labels).float().mean().item()
    cases = (({}, 0.7), ({"num_batches": 2}, 0.75), ({"num_batches": 1}, 0.5), ({"num_batches": 10}, 0.7))
    for kwargs, expected in cases:
        model.train()
        model.modes_seen.clear()
        what = "calc_accuracy_loader(loader, model, 'cpu'" + "".join(f", {k}={v}" for k, v in kwargs.items()) + ")"
        out = call_checked(what, fn, loader, model, "cpu", **kwargs)
        try:
            value = float(out)
        except (TypeError, ValueError):
            raise GradingError(_("{what} returned {got}; return the accuracy as a number.").format(
                what=what, got=_describe(out))) from None
        if any(model.modes_seen):
            raise GradingError(_("{what}: {hint}").format(what=what, hint=_(HINTS["accuracy_train_mode"])))
        if abs(value - expected) < 1e-6:
            continue
        if abs(value - 100 * expected) < 1e-4:
            raise GradingError(_("{what} gives {value}: return a fraction between 0 and 1, not a percentage.").format(
                what=what, value=value))
        if not kwargs and abs(value - 2 / 3) < 1e-6:
            raise GradingError(_("{what} gives {value:.4f}, expected {expected}: it averages the batches' accuracies; "
                                 "count correct predictions and divide by the number of examples.").format(
                what=what, value=value, expected=expected))
        if abs(value - first) < 1e-6 and abs(first - expected) > 1e-6:
            raise GradingError(with_hint(_("{what} gives {value:.4f}, expected {expected}.").format(
                what=what, value=value, expected=expected), HINTS["first_token"]))
        if kwargs.get("num_batches", 10) < 3 and abs(value - 0.7) < 1e-6:
            raise GradingError(_("{what} gives {value:.4f}, expected {expected}: num_batches is ignored; stop after "
                                 "the first num_batches batches.").format(what=what, value=value, expected=expected))
        raise GradingError(_("{what} gives {value:.4f}, expected {expected}: the share of examples whose last-token "
                             "argmax equals the label.").format(what=what, value=value, expected=expected))


# --------------------------------------------------------------------------- classifying one text


def review_texts(seed, count=40):
    g = seeded(seed)
    texts = []
    for i in range(count):
        n = int(torch.randint(1, 14, (1,), generator=g))
        texts.append(" ".join(WORDS[int(j)] for j in torch.randint(0, len(WORDS), (n,), generator=g)))
    return texts


def _review_variants(texts, model, tokenizer, max_length, pad):
    """What known-wrong versions of classify_review answer for each text."""

    def label(ids, position=-1, swap=False):
        with torch.no_grad():
            logits = model(torch.tensor([ids]))[0, position]
        spam = int(logits.argmax()) == 1
        return "spam" if spam != swap else "not spam"

    answers = {name: [] for name in ("first_token", "left_pad", "no_pad_review", "no_truncation", "swapped_names")}
    for text in texts:
        ids = tokenizer.encode(text)
        cut = ids[:max_length]
        answers["first_token"].append(label(cut + [pad] * (max_length - len(cut)), position=0))
        answers["left_pad"].append(label([pad] * (max_length - len(cut)) + cut))
        answers["no_pad_review"].append(label(cut))
        answers["no_truncation"].append(label(ids + [pad] * (max_length - len(ids))))
        answers["swapped_names"].append(label(cut + [pad] * (max_length - len(cut)), swap=True))
    return answers


def check_classify_review(fn):
    """'spam' / 'not spam' from the last token's logits, the text cut and padded at the end to max_length."""
    from llmkit_solutions.classification import classify_review

    assert_defined_in_notebook(fn)
    tokenizer = WordTokenizer()
    for seed, max_length, pad in ((51, 8, PAD), (52, 6, 1)):
        model = TokenPositionStub(context_length=16, seed=seed)
        own = TokenPositionStub(context_length=16, seed=seed)  # the grader's copy, never lent to student code
        texts = review_texts(seed)
        kwargs = {"max_length": max_length} if pad == PAD else {"max_length": max_length, "pad_token_id": pad}
        what = "classify_review(text, model, tokenizer, 'cpu'" + "".join(f", {k}={v}" for k, v in kwargs.items()) + ")"
        expected = [classify_review(t, own, tokenizer, "cpu", **kwargs) for t in texts]
        got = [call_checked(what, fn, t, model, tokenizer, "cpu", **kwargs) for t in texts]
        if got == expected:
            continue
        if any(a not in ("spam", "not spam") for a in got):
            odd = next(a for a in got if a not in ("spam", "not spam"))
            # TRANSLATORS: 'spam' and 'not spam' are the exact strings the function must return: keep them.
            raise GradingError(_("{what} returned {got}; return the string 'spam' or 'not spam'.").format(
                what=what, got=_describe(odd)))
        for name, answers in _review_variants(texts, own, tokenizer, max_length, pad).items():
            if answers == got:
                differ = sum(a != b for a, b in zip(got, expected))
                raise GradingError(with_hint(_("{what} disagrees with the reference on {differ} of {total} texts.")
                                             .format(what=what, differ=differ, total=len(texts)), HINTS[name]))
        first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        raise GradingError(_("{what} answers {got!r} for {text!r}, expected {expected!r}: cut "
                             "the ids to max_length, pad them at the end with pad_token_id, and read the argmax of "
                             "the last token's logits (1 = spam).").format(
            what=what, got=got[first], text=texts[first], expected=expected[first]))

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

from . import GradingError, assert_defined_in_notebook, call_checked, seeded
from .lora import beside, type_name
from .remote import file_for

PAD = 50256

HINTS = {
    "left_pad": "the padding is on the wrong side: put the pad ids after the text (ids + [pad_token_id] * ...), "
                "as the book does; the model is trained and used with padding at the end.",
    "zero_pad": "the texts are padded with 0 instead of pad_token_id (50256, <|endoftext|>).",
    "fixed_pad": "the texts are padded with 50256 whatever pad_token_id says; pad with the pad_token_id argument.",
    "no_truncation": "texts longer than max_length are not cut: keep the first max_length ids (ids[:max_length]).",
    "cut_front": "long texts lose their beginning: keep the first max_length ids (ids[:max_length]), not the last.",
    "first_token": "the logits of the first token are used; with causal attention only the last token has seen "
                   "the whole text, so read logits[:, -1, :].",
    "mean_tokens": "the logits are averaged over all tokens; the book reads the last token only: logits[:, -1, :].",
    "all_tokens": "the loss is computed at every position; use only the last token's logits (logits[:, -1, :]) "
                  "against one label per text.",
    "no_pad_review": "classify_review does not pad the text to max_length; pad it at the end with pad_token_id, "
                     "exactly as SpamDataset did for training.",
    "swapped_names": "the two answers are swapped: class 1 is spam, class 0 is not spam.",
    "not_undersampled": "ham is not undersampled; draw as many ham rows as there are spam rows.",
    "with_replacement": "the same ham row is drawn twice: sample without replacement "
                        "(RandomState(seed).choice(n, k, replace=False) or random.Random(seed).sample).",
    "unshuffled": "random_split cuts the data in its original order: shuffle it first. create_balanced_dataset puts "
                  "all ham before all spam, so the test split would be almost all spam.",
    "split_order": "the splits come back as (train, test, validation); return train, validation, test.",
    "labels_not_mapped": "labels are not mapped to 0/1; store 0 for ham and 1 for spam (the given _label_id does it).",
    "labels_swapped": "the labels are swapped; the book maps ham to 0 and spam to 1.",
    "not_frozen": "the layers are not frozen; set requires_grad = False on every parameter first, then unfreeze the "
                  "last block(s) and final_norm.",
    "all_frozen": "everything is frozen, even the new head; freeze first, then create the head (new layers train by "
                  "default) and unfreeze the last block(s) and final_norm.",
    "head_frozen": "the new head is frozen: replace the head after freezing the model (a fresh nn.Linear trains by "
                   "default), or set its requires_grad = True.",
    "head_no_bias": "the new head has no bias; the book's head is nn.Linear(emb_dim, num_classes) with its default "
                    "bias.",
    "not_in_place": "the model it was given is left unchanged (a copy was prepared): change model itself, in place, "
                    "and return it, as the book's code does.",
    "final_norm_frozen": "final_norm is frozen; unfreeze it with the last block(s), as the book does.",
    "first_block": "the first block trains instead of the last: the last block is model.trf_blocks[-1] "
                   "(index n_layers - 1).",
    "accuracy_train_mode": "the model runs in train mode: call model.eval() first, or dropout makes the accuracy noisy.",
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
        raise GradingError(f"{what} should return a list of (label, text) rows, got {type_name(result)}.")
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
        raise GradingError("create_balanced_dataset changed the list it was given; build and return a new list.")
    counts = Counter(row[0] for row in out if isinstance(row, tuple))
    if len(out) == len(rows) and counts["ham"] == 40:
        raise GradingError(f"create_balanced_dataset returns every row: {HINTS['not_undersampled']}")
    if Counter(row for row in out if row[0] == "spam") != Counter(spam):
        raise GradingError(f"create_balanced_dataset must keep every spam row unchanged ({len(spam)} here); got "
                           f"{counts['spam']} spam rows.")
    out_ham = [row for row in out if row[0] == "ham"]
    if len(out) != 2 * len(spam) or len(out_ham) != len(spam):
        raise GradingError(f"with {len(spam)} spam and 40 ham rows the result must hold {len(spam)} of each; "
                           f"got {counts['ham']} ham and {counts['spam']} spam.")
    if not set(out_ham) <= ham:
        raise GradingError("create_balanced_dataset returns ham rows that were not in the input.")
    if len(set(out_ham)) != len(out_ham):
        raise GradingError(HINTS["with_replacement"])
    again = _as_rows(call_checked("create_balanced_dataset(rows) again", fn, rows), "create_balanced_dataset")
    if again != out:
        raise GradingError("two calls with the same seed give different rows; draw with a generator seeded "
                           "by the seed argument (np.random.RandomState(seed) or random.Random(seed)).")
    others = [_as_rows(call_checked(f"create_balanced_dataset(rows, seed={s})", fn, rows, seed=s),
                       "create_balanced_dataset") for s in (1, 2, 3)]
    if all(sorted(o) == sorted(out) for o in others):
        raise GradingError("the seed argument makes no difference to which ham rows are drawn; use it to seed "
                           "the random draw.")
    few_ham = [("ham", "a"), ("spam", "b"), ("spam", "c")]
    try:
        fn(few_ham)
    except Exception:  # any clear error is fine here
        return
    raise GradingError("with fewer ham than spam rows there is nothing to undersample: raise an error "
                       "(the given lines do) instead of returning a dataset.")


def _check_split(fn, data, train_frac, validation_frac, seed_kw):
    n = len(data)
    what = f"random_split(data of {n}, {train_frac}, {validation_frac})"
    parts = call_checked(what, fn, data, train_frac, validation_frac, **seed_kw)
    if not isinstance(parts, (list, tuple)) or len(parts) != 3:
        raise GradingError(f"{what} should return three lists (train, validation, test), got {_describe(parts)}.")
    train, validation, test = (list(p) for p in parts)
    sizes = (len(train), len(validation), len(test))
    n_train, n_val = int(n * train_frac), int(n * validation_frac)
    expected = (n_train, n_val, n - n_train - n_val)
    if sizes != expected:
        if sizes == (expected[0], expected[2], expected[1]):
            raise GradingError(f"{what} gives sizes {sizes}, expected {expected}. Likely mistake: "
                               f"{HINTS['split_order']}")
        if sizes[0] == round(n * train_frac) or sizes[1] == round(n * validation_frac):
            raise GradingError(f"{what} gives sizes {sizes}, expected {expected}: round the sizes down with int(), "
                               "as the book does; the test split gets the rest.")
        raise GradingError(f"{what} gives sizes {sizes}, expected {expected} (int(n * train_frac), "
                           "int(n * validation_frac), the rest).")
    if sorted(train + validation + test) != sorted(data):
        raise GradingError(f"{what}: the three splits together must hold every item exactly once.")
    return train, validation, test


def check_random_split(fn):
    """Sizes (int-rounded), a seeded shuffle, every item once, (train, validation, test) order."""
    assert_defined_in_notebook(fn)
    data = [("ham", f"h{i}") for i in range(24)] + [("spam", f"s{i}") for i in range(23)]  # 47 rows, ham first
    train, validation, test = _check_split(fn, data, 0.7, 0.1, {})
    if train + validation + test == data:
        raise GradingError(HINTS["unshuffled"])
    if _check_split(fn, data, 0.7, 0.1, {})[0] != train:
        raise GradingError("two calls with the same seed give different splits; shuffle with a generator seeded "
                           "by the seed argument.")
    if all(_check_split(fn, data, 0.7, 0.1, {"seed": s})[0] == train for s in (1, 2)):
        raise GradingError("the seed argument makes no difference to the shuffle; use it to seed the shuffle.")
    _check_split(fn, data[:31], 0.5, 0.25, {"seed": 7})
    _check_split(fn, data[:40], 0.8, 0.2, {"seed": 7})


def _item_ids(item, what):
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise GradingError(f"{what} should be a pair (token ids, label), got {_describe(item)}.")
    ids, label = item
    if isinstance(label, str) or (isinstance(label, (list, tuple)) and label and isinstance(label[0], str)):
        raise GradingError(f"{what} has the label {label!r}: {HINTS['labels_not_mapped']}")
    try:
        ids_t = torch.as_tensor(ids)
        label_t = torch.as_tensor(label)
    except Exception as exc:
        raise GradingError(f"{what} could not be read as tensors ({type(exc).__name__}: {exc}).") from exc
    if ids_t.dtype != torch.long:
        raise GradingError(f"{what}: the token ids are {ids_t.dtype}; make them torch.long "
                           "(torch.tensor(ids, dtype=torch.long)), as an embedding layer needs.")
    if label_t.dtype != torch.long or label_t.dim() != 0:
        raise GradingError(f"{what}: the label is {_describe(label)}; return one integer per text as a 0-d "
                           "torch.long tensor (cross_entropy needs class indices).")
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
            raise GradingError(f"{refused[0]} (It must build from the path of a saved split, as the book's does, "
                               "or from (label, text) rows.)")


def _check_spam_items(student, what, rows, tokenizer, kwargs, reference):
    if call_checked(f"len({what})", len, student) != len(rows):
        raise GradingError(f"len({what}) is {len(student)}, expected {len(rows)}: one item per text.")
    if getattr(student, "max_length", None) != reference.max_length:
        if not hasattr(student, "max_length"):
            raise GradingError(f"{what} has no max_length attribute; store the padded length as "
                               "self.max_length (the validation and test sets are built with it).")
        rule = ("the longest encoded text" if "max_length" not in kwargs
                else "the max_length argument")
        raise GradingError(f"{what}.max_length is {student.max_length}, expected {reference.max_length} "
                           f"({rule}).")
    got, labels = [], []
    for i in range(len(rows)):
        try:
            item = call_checked(f"{what}[{i}]", student.__getitem__, i)
        except GradingError as exc:
            stored = getattr(student, "labels", None)
            if isinstance(stored, (list, tuple)) and any(isinstance(v, str) for v in stored):
                raise GradingError(f"{exc} The stored labels are strings ({stored[0]!r}, ...): "
                                   f"{HINTS['labels_not_mapped']}") from exc
            raise
        ids, label = _item_ids(item, f"{what}[{i}]")
        got.append(ids)
        labels.append(label)
    expected_labels = [int(reference[i][1]) for i in range(len(rows))]
    if labels != expected_labels:
        if labels == [1 - v for v in expected_labels]:
            raise GradingError(f"{what}: {HINTS['labels_swapped']}")
        first = next(i for i, (a, b) in enumerate(zip(labels, expected_labels)) if a != b)
        raise GradingError(f"{what}: the labels differ first at item {first}: got {labels[first]!r}, expected "
                           f"{expected_labels[first]} (ham 0, spam 1, in the order of the rows).")
    expected = [reference[i][0].tolist() for i in range(len(rows))]
    if got != expected:
        encoded = [tokenizer.encode(text) for _, text in rows]
        pad = kwargs.get("pad_token_id", PAD)
        for name, variant in _ids_variants(encoded, reference.max_length, pad).items():
            if variant == got and variant != expected:
                raise GradingError(f"{what}: the token ids differ from the reference. Likely mistake: "
                                   f"{HINTS[name]}")
        first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        raise GradingError(f"{what}[{first}] holds ids {got[first]}, expected {expected[first]}: encode the "
                           "text, cut it to max_length and pad it at the end with pad_token_id.")


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
        raise GradingError(f"after {what}: {HINTS['not_in_place']}")
    model = out if isinstance(out, nn.Module) else model
    head = getattr(model, "out_head", None)
    if not isinstance(head, nn.Linear):
        raise GradingError(f"after {what}, model.out_head is {type_name(head)}; make it an nn.Linear.")
    if head.out_features == cfg["vocab_size"]:
        raise GradingError(f"after {what} the head still has {cfg['vocab_size']} outputs: the head was not "
                           f"replaced; set model.out_head = nn.Linear(emb_dim, num_classes).")
    if head.out_features != num_classes:
        raise GradingError(f"after {what} the head has {head.out_features} outputs, expected num_classes="
                           f"{num_classes}.")
    if head.in_features != cfg["emb_dim"]:
        raise GradingError(f"the new head reads {head.in_features} features, but this model's emb_dim is "
                           f"{cfg['emb_dim']}; take it from the old head (model.out_head.in_features), "
                           "not a fixed 768.")
    if getattr(head, "bias", None) is None:
        raise GradingError(f"after {what}: {HINTS['head_no_bias']}")
    wanted = {"out_head", "final_norm"} | {f"trf_blocks.{i}" for i in range(n_layers - trainable_blocks, n_layers)}
    got = _trainable_groups(model)
    partly = _trainable_groups(model) & _frozen_parts(model)
    if got == wanted and not partly:
        logits = call_checked(f"the prepared model on a batch", model, torch.randint(0, 40, (2, 5)))
        if tuple(logits.shape) != (2, 5, num_classes):
            raise GradingError(f"the prepared model returns logits of shape {tuple(logits.shape)}, expected "
                               f"(2, 5, {num_classes}).")
        return
    every = {"tok_emb", "pos_emb", "final_norm", "out_head"} | {f"trf_blocks.{i}" for i in range(n_layers)}
    if got == every:
        raise GradingError(f"after {what} every parameter still trains: {HINTS['not_frozen']}")
    if not got:
        raise GradingError(f"after {what} nothing trains: {HINTS['all_frozen']}")
    if "out_head" not in got:
        raise GradingError(f"after {what}: {HINTS['head_frozen']}")
    if trainable_blocks == 0 and got >= {f"trf_blocks.{i}" for i in range(n_layers)}:
        raise GradingError("with trainable_blocks=0 every block trains: blocks[-0:] is the whole list; take the "
                           "blocks from index len(model.trf_blocks) - trainable_blocks on.")
    if got == {"out_head"}:
        raise GradingError(f"after {what} only the head trains: everything else is frozen; unfreeze the last "
                           f"transformer block(s) and final_norm too.")
    if "final_norm" not in got:
        raise GradingError(f"after {what}: {HINTS['final_norm_frozen']}")
    early = sorted(g for g in got - wanted if g.startswith("trf_blocks"))
    missing = sorted(g for g in wanted - got if g.startswith("trf_blocks"))
    if early and missing and "trf_blocks.0" in early:
        raise GradingError(f"after {what} {early} train instead of {missing}: {HINTS['first_block']}")
    if missing:
        raise GradingError(f"after {what} {missing} stay frozen; unfreeze the last {trainable_blocks} "
                           "transformer block(s).")
    extra = sorted(got - wanted)
    if extra:
        raise GradingError(f"after {what} {extra} still train: the layers are not frozen; only the last "
                           f"{trainable_blocks} block(s), final_norm and the new head should train.")
    raise GradingError(f"after {what} some modules are only partly frozen ({sorted(partly)}); freeze or unfreeze "
                       "every parameter of a module.")


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
            raise GradingError(f"calc_loss_batch returned {type_name(out)}; return the loss tensor itself "
                               "(not .item()), so that loss.backward() can train the model.")
        if out.numel() != 1:
            raise GradingError(f"calc_loss_batch returned a tensor of shape {tuple(out.shape)}; return the mean "
                               "loss of the batch, one number.")
        if not out.requires_grad:
            raise GradingError("the loss does not require grad: do not compute it under torch.no_grad() or "
                               "detach it; training calls loss.backward().")
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
                    raise GradingError(f"calc_loss_batch gives {value.item():.4f}, expected {expected.item():.4f}. "
                                       f"Likely mistake: {HINTS[name]}")
            raise GradingError(f"calc_loss_batch gives {value.item():.4f}, expected {expected.item():.4f}: the "
                               "cross-entropy of the last token's logits (B, num_classes) against the labels (B,).")


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
            raise GradingError(f"{what} returned {_describe(out)}; return the accuracy as a number.") from None
        if any(model.modes_seen):
            raise GradingError(f"{what}: {HINTS['accuracy_train_mode']}")
        if abs(value - expected) < 1e-6:
            continue
        if abs(value - 100 * expected) < 1e-4:
            raise GradingError(f"{what} gives {value}: return a fraction between 0 and 1, not a percentage.")
        if not kwargs and abs(value - 2 / 3) < 1e-6:
            raise GradingError(f"{what} gives {value:.4f}, expected {expected}: it averages the batches' accuracies; "
                               "count correct predictions and divide by the number of examples.")
        if abs(value - first) < 1e-6 and abs(first - expected) > 1e-6:
            raise GradingError(f"{what} gives {value:.4f}, expected {expected}. Likely mistake: {HINTS['first_token']}")
        if kwargs.get("num_batches", 10) < 3 and abs(value - 0.7) < 1e-6:
            raise GradingError(f"{what} gives {value:.4f}, expected {expected}: num_batches is ignored; stop after "
                               "the first num_batches batches.")
        raise GradingError(f"{what} gives {value:.4f}, expected {expected}: the share of examples whose last-token "
                           "argmax equals the label.")


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
            raise GradingError(f"{what} returned {_describe(odd)}; return the string 'spam' or 'not spam'.")
        for name, answers in _review_variants(texts, own, tokenizer, max_length, pad).items():
            if answers == got:
                differ = sum(a != b for a, b in zip(got, expected))
                raise GradingError(f"{what} disagrees with the reference on {differ} of {len(texts)} texts. "
                                   f"Likely mistake: {HINTS[name]}")
        first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        raise GradingError(f"{what} answers {got[first]!r} for {texts[first]!r}, expected {expected[first]!r}: cut "
                           "the ids to max_length, pad them at the end with pad_token_id, and read the argmax of "
                           "the last token's logits (1 = spam).")

"""Fine-tuning data for the ``classify`` and ``instruct`` stages: splits, datasets and batches.

Spam classification follows the book: undersample ham to the spam count, shuffle, cut 70/10/20, and
pad (or cut) every message to one length; the label is read from the last position's logits.
Instruction tuning uses the Alpaca prompt; a batch is padded with ``<|endoftext|>``, keeps one end
token in the targets (the model must learn to stop) and hides the rest of the padding, and with
``mask_prompt`` the prompt too, from the loss with ``-100``.

The course's stage-8 and stage-9 notebooks have students write the book's versions of these; the
kit's own are here so that it runs without the answers. The files are read by ``llmkit.data``.
"""

from __future__ import annotations

import string

import numpy as np
import torch
from torch.utils.data import Dataset

from .contracts import context_length
from .data import label_id
from .errors import LLMKitError
from .tokenizers import encode_text

IGNORE_INDEX = -100  # cross_entropy skips these targets
CLASS_NAMES = ("not spam", "spam")  # label 0 (ham), label 1 (spam)


# --------------------------------------------------------------------------- spam classification


def balanced_split(rows: list, seed: int = 123, train_frac: float = 0.7, val_frac: float = 0.1):
    """``[(label, text)]`` -> (train, val, test): ham undersampled to the spam count, shuffled, cut.

    The draws are numpy's ``RandomState(seed).choice``, the ones pandas' ``sample`` makes in the book.
    """
    ham = [row for row in rows if label_id(row[0], "the spam data") == 0]
    spam = [row for row in rows if label_id(row[0], "the spam data") == 1]
    if not ham or not spam:
        raise LLMKitError(f"the spam data has {len(ham)} ham and {len(spam)} spam messages; "
                          "classification needs both.")
    if len(ham) < len(spam):
        raise LLMKitError(f"only {len(ham)} ham rows for {len(spam)} spam rows; "
                          "undersampling needs at least as many ham as spam.")
    picked = np.random.RandomState(seed).choice(len(ham), size=len(spam), replace=False)
    balanced = [ham[i] for i in picked] + spam
    order = np.random.RandomState(seed).choice(len(balanced), size=len(balanced), replace=False)
    shuffled = [balanced[i] for i in order]
    train_end = int(len(shuffled) * train_frac)
    val_end = train_end + int(len(shuffled) * val_frac)
    return shuffled[:train_end], shuffled[train_end:val_end], shuffled[val_end:]


def check_fits_context(max_length: int, context: int) -> None:
    if max_length > context:
        raise LLMKitError(f"sequences of {max_length} tokens exceed the model's context_length {context}; "
                          f"build the dataset with max_length={context} (longer texts are truncated).")


def pad_or_cut(ids: list[int], length: int, pad_id: int) -> list[int]:
    return ids[:length] + [pad_id] * (length - len(ids))


class SpamMessages(Dataset):
    """``[(label, text)]`` as equal-length ids: item ``i`` is ``(ids (max_length,), label ())``."""

    def __init__(self, rows: list, tokenizer, max_length: int, pad_id: int):
        if not rows:
            raise LLMKitError("no messages to classify; check the spam data file.")
        self.labels = [label_id(label, f"row {i}") for i, (label, _) in enumerate(rows)]
        self.ids = [pad_or_cut(encode_text(tokenizer, text), max_length, pad_id) for _, text in rows]
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return torch.tensor(self.ids[i]), torch.tensor(self.labels[i])  # (max_length,), ()


@torch.no_grad()
def classify(text: str, model, tokenizer, device, max_length: int, pad_id: int) -> str:
    """"spam" or "not spam" for one message, padded as in training (the label is read at the last position)."""
    check_fits_context(max_length, context_length(model))
    ids = pad_or_cut(encode_text(tokenizer, text), max_length, pad_id)
    logits = model.eval()(torch.tensor([ids], device=device))[:, -1, :]  # (1, C)
    return CLASS_NAMES[int(logits.argmax(dim=-1).item() == 1)]


# --------------------------------------------------------------------------- instruction tuning

PREAMBLE = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
RESPONSE_HEADER = "\n\n### Response:\n"


def alpaca_prompt(entry: dict) -> str:
    """Preamble, ``### Instruction:``, ``### Input:`` when there is one; the response header follows."""
    prompt = f"{PREAMBLE}\n\n### Instruction:\n{entry['instruction']}"
    return prompt + (f"\n\n### Input:\n{entry['input']}" if entry.get("input") else "")


def split_instructions(data: list, train_frac: float = 0.85, test_frac: float = 0.1):
    """The book's split, in file order: (train, test, validation) = 85/10/5."""
    train_end = int(len(data) * train_frac)
    test_end = train_end + int(len(data) * test_frac)
    return data[:train_end], data[train_end:test_end], data[test_end:]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


class InstructionTexts(Dataset):
    """Prompt + response ids per entry; item ``i`` is ``(prompt_length, ids)``.

    ``prompt_length`` counts the ids that encode the prompt and the response header. It is measured
    on the full text, since a BPE merge may straddle the seam between prompt and response.
    """

    def __init__(self, data: list, tokenizer):
        self.items = []
        for entry in data:
            prompt = alpaca_prompt(entry) + RESPONSE_HEADER
            ids = encode_text(tokenizer, prompt + entry["output"])
            self.items.append((_common_prefix(encode_text(tokenizer, prompt), ids), ids))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def collate_instructions(batch: list, pad_id: int, max_length: int | None = None, mask_prompt: bool = True):
    """``[(prompt_length, ids)]`` -> (inputs, targets), both (B, L) with L = longest item (+1 end token).

    Each item gets one ``pad_id`` (the end token) and padding to the longest; targets are the inputs
    shifted by one. In the targets the first end token stays, later padding becomes -100, and with
    ``mask_prompt`` so does every target that predicts a prompt token. ``max_length`` cuts both.
    """
    longest = max(len(ids) + 1 for _, ids in batch)
    inputs, targets = [], []
    for prompt_length, ids in batch:
        padded = torch.tensor(ids + [pad_id] * (longest - len(ids)))  # (L + 1,)
        x, y = padded[:-1], padded[1:].clone()  # y[i] is the id after x[i]
        y[len(ids):] = IGNORE_INDEX  # y[len(ids) - 1] is the end token; after it only padding
        if mask_prompt:
            y[: max(prompt_length - 1, 0)] = IGNORE_INDEX  # y[prompt_length - 1] is the first response id
        inputs.append(x[:max_length])
        targets.append(y[:max_length])
    return torch.stack(inputs), torch.stack(targets)  # (B, L) each


def extract_response(generated: str) -> str:
    """Drop a repeated ``### Response:`` header and the surrounding whitespace."""
    return generated.replace("### Response:", "").strip()


_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalise(text: str) -> str:
    """Lowercase, no ASCII punctuation, single spaces: "The  Sun!" -> "the sun"."""
    return " ".join(text.lower().translate(_PUNCTUATION).split())


def score_responses(entries: list, responses: list) -> dict:
    """Exact and normalised match of ``responses`` against the entries' outputs."""
    if len(entries) != len(responses) or not entries:
        raise LLMKitError(f"{len(entries)} entries and {len(responses)} responses; pass one response per entry.")
    exact = sum(e["output"].strip() == r.strip() for e, r in zip(entries, responses))
    loose = sum(normalise(e["output"]) == normalise(r) for e, r in zip(entries, responses))
    return {"n": len(entries), "exact_match": exact / len(entries), "normalised_match": loose / len(entries)}

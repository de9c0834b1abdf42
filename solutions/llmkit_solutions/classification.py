"""Stage 8: fine-tuning GPT to classify text (SMS spam).

The data path is the book's: read the SMS Spam Collection, undersample "ham" to the number of
"spam" messages, shuffle and split 70/10/20, save each split, and wrap a split in ``SpamDataset``
(token ids padded to one length). The model path: freeze the pretrained model, swap the
50,257-way output head for a 2-way one, unfreeze the last block and the final norm, and train
on the logits of the **last** token only — with causal attention it is the one position that has
seen the whole message.

No pandas: rows are plain ``(label, text)`` tuples; ``llmkit.data`` reads the files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

# The kit reads the files (zip, UCI tab file, the book's CSV splits); the exercises start from rows.
from llmkit.data import load_sms_spam_collection, read_labeled_file, save_split_csv, shipped_messages_path  # noqa: F401
from llmkit.errors import LLMKitError
from llmkit.tokenizers import encode_text

LABELS = {"ham": 0, "spam": 1}  # the book's mapping


# --------------------------------------------------------------------------- reading the data


def _label_id(raw, where):
    """'ham'/'spam' or '0'/'1' (any case, surrounding spaces ignored) -> 0/1."""
    value = str(raw).strip().lower()
    if value in LABELS:
        return LABELS[value]
    if value in ("0", "1"):
        return int(value)
    raise LLMKitError(f"bad label {str(raw).strip()!r} at {where}; every label must be ham/spam (or 0/1).")


def create_balanced_dataset(rows, seed=123):
    """Undersample "ham" to the number of "spam" rows: sampled ham first, then every spam row.

    Uses ``RandomState(seed).choice(n, k, replace=False)``, the draw pandas' ``sample`` makes, so
    the rows picked are the book's.
    """
    ham = [row for row in rows if _label_id(row[0], "create_balanced_dataset") == 0]
    spam = [row for row in rows if _label_id(row[0], "create_balanced_dataset") == 1]
    if len(ham) < len(spam):
        raise LLMKitError(
            f"only {len(ham)} ham rows for {len(spam)} spam rows; undersampling needs at least as many ham as spam."
        )
    picked = np.random.RandomState(seed).choice(len(ham), size=len(spam), replace=False)
    return [ham[i] for i in picked] + spam


def random_split(data, train_frac=0.7, validation_frac=0.1, seed=123):
    """Shuffle (seeded) and cut into train, validation, test: the book's 70/10/20."""
    if train_frac < 0 or validation_frac < 0 or train_frac + validation_frac > 1:
        raise LLMKitError(
            f"train_frac={train_frac} and validation_frac={validation_frac} must be >= 0 and sum to <= 1."
        )
    order = np.random.RandomState(seed).choice(len(data), size=len(data), replace=False)
    shuffled = [data[i] for i in order]
    train_end = int(len(shuffled) * train_frac)
    validation_end = train_end + int(len(shuffled) * validation_frac)
    return shuffled[:train_end], shuffled[train_end:validation_end], shuffled[validation_end:]


# --------------------------------------------------------------------------- the dataset


class SpamDataset(Dataset):
    """Messages as equal-length id tensors: item ``i`` is ``(ids (max_length,), label ())``.

    ``csv_file`` is a path (``.csv`` with Text/Label, or a ``.tsv``/UCI file) or a list of
    ``(label, text)`` rows. Texts longer than ``max_length`` are cut; shorter ones are padded with
    ``pad_token_id``. Without ``max_length`` the longest encoded text sets it.
    """

    def __init__(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
        if isinstance(csv_file, (str, Path)):
            rows = read_labeled_file(csv_file)
        else:
            rows = [(_label_id(label, f"row {i}"), text) for i, (label, text) in enumerate(csv_file)]
        if not rows:
            raise LLMKitError("SpamDataset got no rows; check the file or list you passed.")
        self.labels = [label for label, _ in rows]
        self.encoded_texts = [encode_text(tokenizer, text) for _, text in rows]
        if max_length is None:
            self.max_length = self._longest_encoded_length()
        else:
            self.max_length = max_length
            self.encoded_texts = [ids[:max_length] for ids in self.encoded_texts]
        self.encoded_texts = [ids + [pad_token_id] * (self.max_length - len(ids)) for ids in self.encoded_texts]

    def __getitem__(self, index):
        ids = torch.tensor(self.encoded_texts[index], dtype=torch.long)  # (max_length,)
        return ids, torch.tensor(self.labels[index], dtype=torch.long)

    def __len__(self):
        return len(self.labels)

    def _longest_encoded_length(self):
        return max(len(ids) for ids in self.encoded_texts)


def check_fits_context(max_length, context_length):
    """Raise when padded sequences would be longer than the model can read."""
    if max_length > context_length:
        raise LLMKitError(
            f"sequences of {max_length} tokens exceed the model's context_length {context_length}; "
            f"build the dataset with max_length={context_length} (longer texts are truncated)."
        )


# --------------------------------------------------------------------------- the model


def prepare_for_classification(model, num_classes=2, trainable_blocks=1):
    """The book's recipe, in place: freeze everything, new ``out_head`` (emb_dim -> num_classes),
    then unfreeze the last ``trainable_blocks`` transformer blocks and ``final_norm``.

    The new head is drawn from the global RNG: call ``torch.manual_seed(123)`` first for the book's.
    """
    missing = [a for a in ("out_head", "trf_blocks", "final_norm") if not hasattr(model, a)]
    if missing or not isinstance(model.out_head, nn.Linear):
        missing = missing or ["an nn.Linear out_head"]
        raise LLMKitError(
            f"prepare_for_classification needs GPTModel's out_head, trf_blocks and final_norm; "
            f"{type(model).__name__} lacks {', '.join(missing)}."
        )
    if not 0 <= trainable_blocks <= len(model.trf_blocks):
        raise LLMKitError(f"trainable_blocks must be between 0 and {len(model.trf_blocks)}, got {trainable_blocks}.")
    for param in model.parameters():
        param.requires_grad = False
    old = model.out_head
    model.out_head = nn.Linear(old.in_features, num_classes).to(device=old.weight.device, dtype=old.weight.dtype)
    for block in list(model.trf_blocks)[len(model.trf_blocks) - trainable_blocks:]:
        for param in block.parameters():
            param.requires_grad = True
    for param in model.final_norm.parameters():
        param.requires_grad = True
    return model


def calc_loss_batch(input_batch, target_batch, model, device):
    """Cross-entropy of the last token's logits (B, num_classes) against labels (B,)."""
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)[:, -1, :]  # (B, T, C) -> (B, C)
    return nn.functional.cross_entropy(logits, target_batch)


# The kit's name for it, beside the chapter-5 ``calc_loss_batch`` of next-token prediction.
calc_loss_batch_classification = calc_loss_batch


def calc_loss_loader_classification(data_loader, model, device, num_batches=None):
    """Mean batch loss over the first ``num_batches`` batches (all by default); NaN for no batches."""
    if len(data_loader) == 0:
        return float("nan")
    num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    total = 0.0
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i >= num_batches:
            break
        total += calc_loss_batch_classification(input_batch, target_batch, model, device).item()
    return total / num_batches


# The book's chapter 6 code calls it by its chapter 5 name, as it does calc_loss_batch.
calc_loss_loader = calc_loss_loader_classification


def calc_accuracy_loader(data_loader, model, device, num_batches=None):
    """Share of examples whose last-token argmax equals the label; NaN for no batches."""
    was_training = model.training
    model.eval()  # no dropout while measuring
    num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    correct, seen = 0, 0
    with torch.no_grad():
        for i, (input_batch, target_batch) in enumerate(data_loader):
            if i >= num_batches:
                break
            input_batch, target_batch = input_batch.to(device), target_batch.to(device)
            predicted = torch.argmax(model(input_batch)[:, -1, :], dim=-1)  # (B,)
            correct += (predicted == target_batch).sum().item()
            seen += predicted.shape[0]
    model.train(was_training)
    return correct / seen if seen else float("nan")


def _context_length(model):
    pos_emb = getattr(model, "pos_emb", None)
    return pos_emb.weight.shape[0] if pos_emb is not None else None


def classify_review(text, model, tokenizer, device, max_length=None, pad_token_id=50256):
    """Classify one text: "spam" when the last-token argmax is 1, else "not spam"."""
    model.eval()
    input_ids = encode_text(tokenizer, text)
    context_length = _context_length(model)
    if max_length is not None and context_length is not None:
        check_fits_context(max_length, context_length)
    limit = max_length if max_length is not None else context_length
    if limit is not None:
        input_ids = input_ids[:limit]
    if max_length is not None:
        # Pad as in training: the classifier learned to read the label at a pad position.
        input_ids = input_ids + [pad_token_id] * (max_length - len(input_ids))
    input_tensor = torch.tensor(input_ids, device=device).unsqueeze(0)  # (1, T)
    with torch.no_grad():
        logits = model(input_tensor)[:, -1, :]  # (1, C)
    return "spam" if torch.argmax(logits, dim=-1).item() == 1 else "not spam"

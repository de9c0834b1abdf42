"""Stage 2: cutting a token stream into (input, target) training pairs.

Two samplers. The book's sliding window walks the text with a ``stride`` (``GPTDatasetV1``,
``create_dataloader_v1``); nanoGPT's random block sampler draws ``batch_size`` windows of
``block_size`` tokens from random offsets. In both, the target is the input shifted by one token
(``input_target_pair``). ``GPTDatasetV1``, ``create_dataloader_v1``, ``input_target_pair`` and
``RandomBlockSampler`` are the answers of the stage-2 notebook, word for word.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from llmkit.errors import LLMKitError
from llmkit.gpt2_bpe import gpt2_encoding
from llmkit.tokenizers import encode_text


def check_window(n_tokens: int, max_length: int, stride: int | None = None) -> None:
    if max_length <= 0:
        raise LLMKitError(f"max_length must be positive, got {max_length}.")
    if stride is not None and stride <= 0:
        raise LLMKitError(f"stride must be positive, got {stride}; use stride=max_length for no overlap.")
    if n_tokens < max_length + 1:
        raise LLMKitError(
            f"The text has {n_tokens} tokens but one training pair needs max_length + 1 = {max_length + 1}; "
            "use a longer text or a smaller max_length."
        )


def input_target_pair(token_ids, start, max_length):
    """The ``max_length`` ids from ``start``, and the same window one token later: the ids to predict."""
    input_ids = token_ids[start : start + max_length]
    target_ids = token_ids[start + 1 : start + max_length + 1]
    return input_ids, target_ids


class GPTDatasetV1(Dataset):
    """The book's dataset: tokenize ``txt``, then cut a ``max_length`` window every ``stride`` tokens."""

    def __init__(self, txt, tokenizer, max_length, stride):
        token_ids = torch.as_tensor(encode_text(tokenizer, txt), dtype=torch.long)
        check_window(len(token_ids), max_length, stride)
        self.input_ids = []
        self.target_ids = []
        # The last window must leave one token for its target: starts run up to len - max_length - 1.
        for start in range(0, len(token_ids) - max_length, stride):
            input_ids, target_ids = input_target_pair(token_ids, start, max_length)
            self.input_ids.append(input_ids)
            self.target_ids.append(target_ids)

    def __len__(self):
        return len(self.input_ids)

    def __getitem__(self, idx):
        return self.input_ids[idx], self.target_ids[idx]


class _PreTokenized:
    """A stand-in tokenizer for ids that are already tokenized: ``encode`` returns them unchanged."""

    def encode(self, token_ids):
        return token_ids.tolist() if hasattr(token_ids, "tolist") else list(token_ids)


class TokenWindowDataset(GPTDatasetV1):
    """``GPTDatasetV1`` over ids already tokenized: windows of ``max_length`` every ``stride`` tokens."""

    def __init__(self, token_ids: Sequence[int], max_length: int, stride: int):
        super().__init__(token_ids, _PreTokenized(), max_length, stride)


def create_dataloader_v1(txt, batch_size=4, max_length=256, stride=128, shuffle=True, drop_last=True,
                         num_workers=0):
    """The book's loader: GPT-2 BPE ids (offline tiktoken) cut into windows by ``GPTDatasetV1``."""
    tokenizer = gpt2_encoding()
    dataset = GPTDatasetV1(txt, tokenizer, max_length, stride)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers)


def sliding_window_loader(token_ids, batch_size, max_length, stride=None, shuffle=True, drop_last=True,
                          num_workers=0, seed=None):
    """Kit sampler ``sliding-window``: the book's loader over ids already tokenized (stride defaults to max_length)."""
    dataset = TokenWindowDataset(token_ids, max_length, stride or max_length)
    if drop_last and len(dataset) < batch_size:
        raise LLMKitError(
            f"Only {len(dataset)} windows fit in the text, fewer than batch_size={batch_size}; "
            "lower batch_size or max_length, or use a longer text."
        )
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers, generator=generator)


class RandomBlockSampler:
    """nanoGPT-style batches: ``batch_size`` windows of ``block_size`` ids from random offsets.

    Iterating yields ``num_batches`` batches (one "epoch"); the generator carries on across epochs,
    so its state (``generator.get_state()``) is all a checkpoint needs to resume exactly.
    """

    def __init__(self, token_ids, block_size, batch_size, num_batches=None, seed=123):
        self.data = torch.as_tensor(token_ids, dtype=torch.long)
        check_window(len(self.data), block_size)
        if batch_size <= 0:
            raise LLMKitError(f"batch_size must be positive, got {batch_size}.")
        self.block_size = block_size
        self.batch_size = batch_size
        # Default: about one pass over the tokens per epoch.
        self.num_batches = num_batches or max(1, len(self.data) // (block_size * batch_size))
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        return self.num_batches

    def get_batch(self):
        # A start s needs s + block_size + 1 <= len(data): draw from [0, len(data) - block_size).
        starts = torch.randint(len(self.data) - self.block_size, (self.batch_size,), generator=self.generator)
        pairs = [input_target_pair(self.data, int(s), self.block_size) for s in starts]
        x = torch.stack([inputs for inputs, _ in pairs])  # (B, T)
        y = torch.stack([targets for _, targets in pairs])  # (B, T)
        return x, y

    def __iter__(self):
        for _ in range(self.num_batches):
            yield self.get_batch()


def random_block_loader(token_ids, batch_size, max_length, num_batches=None, seed=123):
    """Kit sampler ``random-block``: nanoGPT's random windows of ``max_length`` tokens."""
    return RandomBlockSampler(token_ids, block_size=max_length, batch_size=batch_size,
                              num_batches=num_batches, seed=seed)

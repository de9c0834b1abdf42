"""The kit's samplers: how a token stream becomes (inputs, targets) batches for pretraining.

    random-block    nanoGPT's: each batch draws ``batch_size`` windows from random offsets
    sliding-window  the book's: a window every ``stride`` tokens, batched by a DataLoader

In both the targets are the inputs shifted by one token. The random draws come from the sampler's
own ``generator`` (a ``torch.Generator``), never the global RNG, so dropout does not change which
windows a run sees, and a resumed run replays an epoch from the generator's saved state. The book's
versions (``GPTDatasetV1``, ``RandomBlockSampler``) are the reference solutions' stage-2 answers.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from llmkit.errors import LLMKitError
from llmkit.hookspecs import hookimpl


def _check(n_tokens: int, max_length: int, batch_size: int, stride: int | None = None) -> None:
    if max_length <= 0:
        raise LLMKitError(f"max_length must be positive, got {max_length}.")
    if batch_size <= 0:
        raise LLMKitError(f"batch_size must be positive, got {batch_size}.")
    if stride is not None and stride <= 0:
        raise LLMKitError(f"stride must be positive, got {stride}; use stride=max_length for no overlap.")
    if n_tokens < max_length + 1:
        raise LLMKitError(f"The text has {n_tokens} tokens but one training pair needs max_length + 1 = "
                          f"{max_length + 1}; use a longer text or a smaller max_length.")


class RandomBlocks:
    """nanoGPT's sampler: each batch is ``batch_size`` windows of ``max_length`` ids from random offsets."""

    def __init__(self, token_ids: Sequence[int], batch_size: int, max_length: int, num_batches: int | None = None,
                 seed: int = 123):
        self.data = torch.as_tensor(token_ids, dtype=torch.long)  # (N,)
        _check(len(self.data), max_length, batch_size)
        self.batch_size, self.max_length = batch_size, max_length
        # Default: about one pass over the tokens per epoch.
        self.num_batches = num_batches or max(1, len(self.data) // (max_length * batch_size))
        self.generator = torch.Generator().manual_seed(seed)
        self._window = torch.arange(max_length + 1)  # (T+1,) offsets of one window

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        for _ in range(self.num_batches):
            # A window starting at s needs s + max_length + 1 <= N.
            starts = torch.randint(len(self.data) - self.max_length, (self.batch_size,), generator=self.generator)
            windows = self.data[starts[:, None] + self._window]  # (B, T+1)
            yield windows[:, :-1].contiguous(), windows[:, 1:].contiguous()  # (B, T) each


class Windows(Dataset):
    """Every ``stride`` tokens, a window of ``max_length`` ids and the same window one token later."""

    def __init__(self, token_ids: Sequence[int], max_length: int, stride: int):
        self.data = torch.as_tensor(token_ids, dtype=torch.long)  # (N,)
        _check(len(self.data), max_length, 1, stride)
        self.max_length = max_length
        # The last window must leave one token for its target.
        self.starts = range(0, len(self.data) - max_length, stride)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.starts[i]
        return self.data[s : s + self.max_length], self.data[s + 1 : s + self.max_length + 1]  # (T,), (T,)


def sliding_windows(token_ids: Sequence[int], batch_size: int, max_length: int, stride: int | None = None,
                    shuffle: bool = True, drop_last: bool = True, seed: int | None = None) -> DataLoader:
    """The book's sampler over ids: a window every ``stride`` tokens (default: ``max_length``, no overlap)."""
    dataset = Windows(token_ids, max_length, stride or max_length)
    if batch_size <= 0:
        raise LLMKitError(f"batch_size must be positive, got {batch_size}.")
    if drop_last and len(dataset) < batch_size:
        raise LLMKitError(f"Only {len(dataset)} windows fit in the text, fewer than batch_size={batch_size}; "
                          "lower batch_size or max_length, or use a longer text.")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=generator)


@hookimpl
def register_samplers(register):
    register("random-block", RandomBlocks)
    register("sliding-window", sliding_windows)

"""Conformance suite for the ``samplers`` family.

Needs a ``sampler_factory`` fixture with the registry signature
``(token_ids, batch_size, max_length, **options)`` returning an iterable of (inputs, targets) batches
with a ``len()``. ``seed_options`` holds the keyword(s) that make two samplers draw the same batches.
"""

from __future__ import annotations

import pytest
import torch

from llmkit.errors import LLMKitError

N_TOKENS, BATCH, LENGTH = 400, 4, 16


class BaseSamplerTests:
    seed_options: dict = {"seed": 7}

    @pytest.fixture
    def token_ids(self):
        # Distinct ids, so every window can be located in the stream.
        return torch.randperm(N_TOKENS, generator=torch.Generator().manual_seed(0)).tolist()

    def batches(self, sampler_factory, token_ids, **options):
        return list(sampler_factory(token_ids, BATCH, LENGTH, **{**self.seed_options, **options}))

    def test_batches_are_long_tensors_of_batch_by_length(self, sampler_factory, token_ids):
        batches = self.batches(sampler_factory, token_ids)
        assert batches
        for inputs, targets in batches:
            assert inputs.dtype == targets.dtype == torch.long
            assert inputs.shape == targets.shape == (BATCH, LENGTH)

    def test_targets_are_inputs_shifted_by_one_token(self, sampler_factory, token_ids):
        position = {tok: i for i, tok in enumerate(token_ids)}
        for inputs, targets in self.batches(sampler_factory, token_ids):
            for x, y in zip(inputs.tolist(), targets.tolist()):
                start = position[x[0]]
                assert x == token_ids[start : start + LENGTH], "inputs must be a contiguous window"
                assert y == token_ids[start + 1 : start + LENGTH + 1], "targets must be the next tokens"

    def test_length_matches_the_batches_yielded(self, sampler_factory, token_ids):
        sampler = sampler_factory(token_ids, BATCH, LENGTH, **self.seed_options)
        assert len(sampler) == len(list(sampler)) > 0

    def test_same_seed_same_batches(self, sampler_factory, token_ids):
        first = self.batches(sampler_factory, token_ids)
        second = self.batches(sampler_factory, token_ids)
        for (x1, y1), (x2, y2) in zip(first, second):
            assert torch.equal(x1, x2) and torch.equal(y1, y2)

    def test_text_shorter_than_one_window_is_refused(self, sampler_factory):
        with pytest.raises(LLMKitError, match="max_length"):
            sampler_factory(list(range(LENGTH)), BATCH, LENGTH, **self.seed_options)

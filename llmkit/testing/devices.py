"""Conformance suite for the ``devices`` family (``llmkit.contracts.Device``).

Needs a ``device`` fixture: a built device (e.g. ``llmkit.create("devices", "cpu")``); build one
fixture per precision worth checking (a training step runs under the device's own autocast).
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from llmkit.contracts import check

PRECISIONS = ("fp32", "bf16", "fp16")


class BaseDeviceTests:
    def test_meets_the_protocol(self, device):
        check("devices", device)
        assert isinstance(device.torch_device, torch.device)
        assert device.precision in PRECISIONS
        assert 0 <= device.rank < device.world_size
        assert device.is_main == (device.rank == 0)

    def test_prepare_model_places_it_and_unwrap_gives_it_back(self, device):
        model = torch.nn.Linear(4, 3)
        prepared = device.prepare_model(model)
        inner = device.unwrap(prepared)
        assert isinstance(inner, torch.nn.Linear)
        assert all(p.device.type == device.torch_device.type for p in inner.parameters())

    def test_shard_gives_this_ranks_rows_on_the_device(self, device):
        inputs = torch.arange(4 * device.world_size * 3).reshape(4 * device.world_size, 3)
        x, y = device.shard(inputs, inputs + 1)
        assert x.shape == (4, 3) and torch.equal(y.cpu(), x.cpu() + 1)
        assert x.device.type == device.torch_device.type

    def test_a_training_step_under_autocast(self, device):
        torch.manual_seed(0)
        model = device.prepare_model(torch.nn.Sequential(torch.nn.Embedding(10, 8), torch.nn.Linear(8, 10)))
        ids = torch.randint(0, 10, (2 * device.world_size, 5))
        x, y = device.shard(ids, ids)
        context = device.autocast()
        assert isinstance(context, contextlib.AbstractContextManager) or hasattr(context, "__enter__")
        with context:
            loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1).float(), y.flatten())
        loss.backward()
        assert torch.isfinite(loss)

    def test_one_process_helpers_do_not_fail(self, device):
        if device.world_size != 1:
            pytest.skip("multi-process devices are checked under torchrun")
        assert device.mean_across_ranks(2.5) == 2.5
        device.barrier()
        device.close()

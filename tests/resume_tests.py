"""A suite for "a model resumes exactly": killed after a checkpoint, resumed, it gives the same losses.

Written to join ``llmkit.testing.models`` later: subclass it, give a ``model_factory`` fixture
(``factory(cfg)``) and, for a model that is not a next-token LM, override ``batches(seed)``.
"""

from __future__ import annotations

import json

import pytest
import torch

from llmkit.checkpoint import load_checkpoint
from llmkit.testing.models import CFG
from llmkit.training import TrainConfig, train

TRAIN = TrainConfig(epochs=1, max_steps=6, lr=1e-2, warmup_steps=2, eval_every=3, eval_batches=1,
                    checkpoint_every=3, sample_tokens=0)


class Killed(Exception):
    pass


class ResumeExactlyTests:
    cfg = dict(CFG, drop_rate=0.1)  # dropout on: the RNG state must come back too

    def batches(self, seed: int):
        ids = torch.randint(0, CFG["vocab_size"], (2000,), generator=torch.Generator().manual_seed(0)).tolist()
        import llmkit

        return llmkit.create("samplers", "random-block", ids, 4, CFG["context_length"], seed=seed, num_batches=4)

    def losses(self, run_dir) -> dict:
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        return {r["step"]: r["loss"] for r in records if r["kind"] == "train"}

    def fresh(self, model_factory):
        torch.manual_seed(0)
        return model_factory(dict(self.cfg))

    def test_resumes_exactly_after_a_kill(self, model_factory, tmp_path):
        whole, killed = tmp_path / "whole", tmp_path / "killed"
        whole.mkdir()
        killed.mkdir()
        torch.manual_seed(1)
        train(self.fresh(model_factory), self.batches(5), {"val": self.batches(9)}, TRAIN, run_dir=whole,
              show_progress=False)

        def kill(record):
            if record["kind"] == "train" and record["step"] == 4:
                raise Killed

        torch.manual_seed(1)
        with pytest.raises(Killed):
            train(self.fresh(model_factory), self.batches(5), {"val": self.batches(9)}, TRAIN, run_dir=killed,
                  callbacks=[kill], show_progress=False)
        torch.manual_seed(99)  # a resumed run must not depend on the global RNG it happens to find
        train(self.fresh(model_factory), self.batches(5), {"val": self.batches(9)}, TRAIN, run_dir=killed,
              resume_from=load_checkpoint(killed / "checkpoint.pt"), show_progress=False)
        assert self.losses(killed) == self.losses(whole)

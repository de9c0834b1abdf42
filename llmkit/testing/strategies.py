"""Conformance suite for the ``finetune_strategies`` family (``llmkit.contracts.FinetuneStrategy``).

Needs a ``strategy_factory`` fixture: ``factory(**options)``, as registered. Tune with:

- ``model_name``: the registered model the strategy is tried on (default ``gpt``, the kit's).
- ``options``: options passed to every strategy built here.
- ``learns``: a few optimizer steps on each task lower the loss (False for a strategy that trains
  nothing, e.g. one that only evaluates).
"""

from __future__ import annotations

import copy

import pytest
import torch

import llmkit
from llmkit.contracts import check
from llmkit.errors import LLMKitError

CFG = dict(vocab_size=48, context_length=10, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=False)
VOCAB_OUT = {"lm": CFG["vocab_size"], "instruction": CFG["vocab_size"], "classification": 2}


class BaseStrategyTests:
    model_name = "gpt"
    options: dict = {}
    learns = True

    def model(self, seed=0):
        torch.manual_seed(seed)
        return llmkit.create("models", self.model_name, dict(CFG)).eval()

    def strategy(self, strategy_factory):
        return strategy_factory(**self.options)

    @staticmethod
    def batch(seed=1):
        ids = torch.randint(0, CFG["vocab_size"], (4, 8), generator=torch.Generator().manual_seed(seed))
        return ids, ids[:, 0] % 2  # (4,): any fixed labels will do

    @staticmethod
    def loss(model, task, ids, labels):
        logits = model(ids)
        if task == "classification":
            return torch.nn.functional.cross_entropy(logits[:, -1, :], labels)
        return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())

    def test_meets_the_protocol(self, strategy_factory):
        strategy = check("finetune_strategies", self.strategy(strategy_factory))
        assert strategy.tasks and set(strategy.tasks) <= {"classification", "instruction", "lm"}
        assert isinstance(strategy.config, dict)

    def test_an_unknown_option_is_one_line(self, strategy_factory):
        with pytest.raises(LLMKitError):
            strategy_factory(**self.options, no_such_option=1)

    def test_prepare_gives_a_model_for_each_task(self, strategy_factory):
        ids, _ = self.batch()
        for task in self.strategy(strategy_factory).tasks:
            model = self.strategy(strategy_factory).prepare(self.model(), task, num_classes=2)
            assert model(ids).shape == (4, 8, VOCAB_OUT[task]), task
            assert any(p.requires_grad for p in model.parameters()), f"{task}: nothing trains"

    def test_describe_counts_what_trains(self, strategy_factory):
        strategy = self.strategy(strategy_factory)
        task = strategy.tasks[0]
        model = strategy.prepare(self.model(), task, num_classes=2)
        info = strategy.describe(model)
        params = list(model.parameters())
        assert info["trainable"] == sum(p.numel() for p in params if p.requires_grad)
        assert info["total"] == sum(p.numel() for p in params)

    def test_a_few_steps_lower_the_loss(self, strategy_factory):
        if not self.learns:
            pytest.skip("learns is False")
        ids, labels = self.batch()
        for task in self.strategy(strategy_factory).tasks:
            torch.manual_seed(0)
            model = self.strategy(strategy_factory).prepare(self.model(seed=2), task, num_classes=2)
            model.train()
            optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
            with torch.no_grad():
                before = self.loss(model.eval(), task, ids, labels).item()
            model.train()
            for _ in range(15):
                optimizer.zero_grad()
                self.loss(model, task, ids, labels).backward()
                optimizer.step()
            with torch.no_grad():
                after = self.loss(model.eval(), task, ids, labels).item()
            assert after < before, (task, before, after)

    def test_its_config_rebuilds_the_same_model(self, strategy_factory):
        """A fine-tuned checkpoint stores ``strategy.config``; the loader rebuilds the model from it."""
        strategy = self.strategy(strategy_factory)
        task = strategy.tasks[0]
        trained = strategy.prepare(self.model(seed=3), task, num_classes=2)
        rebuilt = strategy_factory(**copy.deepcopy(strategy.config)).prepare(self.model(seed=4), task, num_classes=2)
        rebuilt.load_state_dict(trained.state_dict())
        ids, _ = self.batch()
        with torch.no_grad():
            torch.testing.assert_close(rebuilt.eval()(ids), trained.eval()(ids), atol=0, rtol=0)

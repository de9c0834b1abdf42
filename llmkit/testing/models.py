"""Conformance suite for the ``models`` family (``llmkit.contracts.LanguageModel``).

Needs a ``model_factory`` fixture: a callable ``factory(cfg)`` taking the book's cfg dict. Tune with:

- ``registered_name``: the registry name; when set, ``llmkit.create("models", name, cfg)`` is checked too.
- ``declares_context_length``: the model has a ``context_length`` attribute (the contract asks for one;
  a model built exactly the book's way, whose context the kit reads from ``pos_emb``, sets False).
- ``book_compatible``: its state dict has the book's ``GPTModel`` names and shapes, so weights move
  between them and give the same logits (checked against the reference ``gpt-book`` when loaded).
- ``book_module_names``: it has ``out_head``, ``trf_blocks`` (with ``att``/``ff``) and ``final_norm``,
  which the kit's fine-tuning strategies use.
- ``atol``: tolerance of the logits comparisons.
- ``precision``: ``"bf16"`` runs every forward under the CPU's bf16 autocast (raise ``atol`` to match).
- ``compiled``: every forward goes through ``torch.compile`` (slow: a compile per model and shape).
"""

from __future__ import annotations

import pytest
import torch

import llmkit
from llmkit.contracts import LanguageModel, check, context_length, new_kv_cache, supports_kv_cache
from llmkit.errors import LLMKitError

CFG = dict(vocab_size=61, context_length=12, emb_dim=24, n_heads=4, n_layers=2, drop_rate=0.0, qkv_bias=False)


class BaseModelTests:
    registered_name: str | None = None
    declares_context_length = True
    book_compatible = True
    book_module_names = True
    atol = 1e-5
    precision = "fp32"
    compiled = False

    def build(self, model_factory, seed=0, **overrides):
        torch.manual_seed(seed)
        return model_factory({**CFG, **overrides})

    def call_model(self, model, ids, **kwargs):
        """``model(ids, **kwargs)`` the way this suite is set to run it: precision, compiled or not."""
        if self.compiled:
            compiled = getattr(model, "_conformance_compiled", None)
            if compiled is None:
                compiled = torch.compile(model)
                object.__setattr__(model, "_conformance_compiled", compiled)  # not a submodule
            forward = compiled
        else:
            forward = model
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            return forward(ids, **kwargs)

    @staticmethod
    def ids(batch=2, tokens=CFG["context_length"], seed=1):
        return torch.randint(0, CFG["vocab_size"], (batch, tokens), generator=torch.Generator().manual_seed(seed))

    def test_meets_the_protocol(self, model_factory):
        model = self.build(model_factory)
        check("models", model)
        assert isinstance(model, torch.nn.Module)
        assert context_length(model) == CFG["context_length"]
        if self.declares_context_length:
            assert isinstance(model, LanguageModel) and model.context_length == CFG["context_length"]

    def test_logits_have_one_row_per_token(self, model_factory):
        model = self.build(model_factory).eval()
        for tokens in (1, 5, CFG["context_length"]):
            assert self.call_model(model, self.ids(tokens=tokens)).shape == (2, tokens, CFG["vocab_size"])

    def test_causal_future_tokens_do_not_change_the_past(self, model_factory):
        model = self.build(model_factory).eval()
        ids = self.ids()
        changed = ids.clone()
        changed[:, 7:] = (changed[:, 7:] + 1) % CFG["vocab_size"]
        with torch.no_grad():
            before, after = self.call_model(model, ids), self.call_model(model, changed)
        torch.testing.assert_close(after[:, :7], before[:, :7], atol=self.atol, rtol=0)

    def test_input_longer_than_the_context_is_one_line(self, model_factory):
        model = self.build(model_factory).eval()
        with pytest.raises(LLMKitError, match="context_length"):
            self.call_model(model, self.ids(tokens=CFG["context_length"] + 1))

    def test_bad_config_is_one_line(self, model_factory):
        with pytest.raises(LLMKitError, match="divisible"):
            self.build(model_factory, n_heads=5)
        cfg = {k: v for k, v in CFG.items() if k != "emb_dim"}
        with pytest.raises(LLMKitError, match="emb_dim"):
            model_factory(cfg)

    def test_same_seed_same_weights(self, model_factory):
        first, second = self.build(model_factory, seed=3), self.build(model_factory, seed=3)
        for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
            assert torch.equal(a, b), name

    def test_eval_mode_is_deterministic_and_training_uses_dropout(self, model_factory):
        model = self.build(model_factory, drop_rate=0.5)
        ids = self.ids()
        model.eval()
        with torch.no_grad():
            torch.testing.assert_close(self.call_model(model, ids), self.call_model(model, ids), atol=0, rtol=0)
        model.train()
        torch.manual_seed(1)
        first = self.call_model(model, ids)
        torch.manual_seed(2)
        assert not torch.allclose(first, self.call_model(model, ids)), "dropout must act in training mode"

    def test_gradients_reach_every_parameter(self, model_factory):
        model = self.build(model_factory)
        ids = self.ids()
        logits = self.call_model(model, ids)  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), ids.roll(-1, dims=1).flatten())
        loss.backward()
        for name, param in model.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, f"{name} got no gradient"

    def test_state_dict_round_trip_gives_the_same_logits(self, model_factory):
        model = self.build(model_factory, seed=4).eval()
        again = self.build(model_factory, seed=5).eval()
        again.load_state_dict(model.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(self.call_model(again, self.ids()), self.call_model(model, self.ids()),
                                       atol=0, rtol=0)

    def test_kv_cache_gives_the_full_sequence_logits(self, model_factory):
        model = self.build(model_factory).eval()
        if not supports_kv_cache(model):
            pytest.skip("this model does not take a kv_cache")
        ids = self.ids()
        with torch.no_grad():
            full = self.call_model(model, ids)
            cache = new_kv_cache(model)
            parts = [self.call_model(model, ids[:, :5], kv_cache=cache)]
            parts += [self.call_model(model, ids[:, t : t + 1], kv_cache=cache)
                      for t in range(5, CFG["context_length"])]
        torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=self.atol, rtol=0)

    def test_has_the_modules_the_strategies_use(self, model_factory):
        if not self.book_module_names:
            pytest.skip("book_module_names is False")
        model = self.build(model_factory)
        assert isinstance(model.out_head, torch.nn.Linear) and hasattr(model, "final_norm")
        assert len(model.trf_blocks) == CFG["n_layers"]
        assert all(hasattr(block, "att") and hasattr(block, "ff") for block in model.trf_blocks)

    def test_weights_move_to_and_from_the_books_gpt(self, model_factory):
        if not self.book_compatible:
            pytest.skip("book_compatible is False")
        if "gpt-book" not in llmkit.names("models"):
            pytest.skip("the reference solutions (gpt-book) are not loaded")
        for qkv_bias in (False, True):
            book = llmkit.create("models", "gpt-book", {**CFG, "qkv_bias": qkv_bias}).eval()
            model = self.build(model_factory, seed=6, qkv_bias=qkv_bias).eval()
            assert {k: v.shape for k, v in model.state_dict().items()} == \
                   {k: v.shape for k, v in book.state_dict().items()}
            model.load_state_dict(book.state_dict())
            with torch.no_grad():
                # The reference stays eager fp32: the tolerance is the suite's precision's.
                torch.testing.assert_close(self.call_model(model, self.ids()).float(), book(self.ids()),
                                           atol=self.atol, rtol=0)

    def test_usable_by_name(self):
        if self.registered_name is None:
            pytest.skip("set registered_name to check the model through the registry")
        model = llmkit.create("models", self.registered_name, dict(CFG))
        assert self.call_model(model, self.ids()).shape == (2, CFG["context_length"], CFG["vocab_size"])

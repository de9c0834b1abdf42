"""Conformance suite for the ``attention`` family (causal, batched, the book's MHA signature).

Needs an ``attention_factory`` fixture: a callable with the signature
``(d_in, d_out, context_length, dropout, num_heads, qkv_bias=False, **options)``. Tune with:

- ``reference_options``: options under which the module must compute exactly what the reference
  ``MultiHeadAttention`` computes (e.g. ``{"num_kv_groups": 4}`` for GQA with one K/V per head).
- ``registered_name``: the registry name; when set, the module is also checked inside ``GPTModel``.
- ``transplant(reference, module)``: copies the reference's weights; by default by parameter name.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from llmkit.errors import LLMKitError
from llmkit.kv_cache import LayerCache

D_IN, D_OUT, HEADS, CONTEXT = 16, 24, 4, 12
ATOL = 1e-5


class BaseAttentionTests:
    reference_options: dict = {}
    registered_name: str | None = None

    def build(self, attention_factory, dropout=0.0, seed=0, **overrides):
        torch.manual_seed(seed)
        kwargs = dict(d_in=D_IN, d_out=D_OUT, context_length=CONTEXT, dropout=dropout, num_heads=HEADS)
        kwargs.update(overrides)
        return attention_factory(**kwargs, **self.reference_options)

    def transplant(self, reference, module):
        """Copy every reference parameter into the same-named, same-shaped parameter of ``module``."""
        own = dict(module.named_parameters())
        copied = set()
        with torch.no_grad():
            for name, tensor in reference.named_parameters():
                if name in own and own[name].shape == tensor.shape:
                    own[name].copy_(tensor)
                    copied.add(name)
        missing = set(own) - copied
        assert not missing, f"no reference weight for {sorted(missing)}; override transplant()"

    @staticmethod
    def inputs(batch=2, tokens=CONTEXT, seed=1):
        return torch.randn(batch, tokens, D_IN, generator=torch.Generator().manual_seed(seed))

    def test_output_shape(self, attention_factory):
        module = self.build(attention_factory).eval()
        for tokens in (1, 5, CONTEXT):
            assert module(self.inputs(tokens=tokens)).shape == (2, tokens, D_OUT)

    def test_causal_future_tokens_do_not_change_the_past(self, attention_factory):
        module = self.build(attention_factory).eval()
        x = self.inputs()
        changed = x.clone()
        changed[:, 7:] = torch.randn_like(changed[:, 7:])
        before, after = module(x), module(changed)
        torch.testing.assert_close(after[:, :7], before[:, :7], atol=ATOL, rtol=0)
        assert not torch.allclose(after[:, 7:], before[:, 7:]), "later outputs must see the change"

    def test_eval_mode_is_deterministic_and_training_uses_dropout(self, attention_factory):
        module = self.build(attention_factory, dropout=0.5)
        x = self.inputs()
        module.eval()
        torch.testing.assert_close(module(x), module(x), atol=0, rtol=0)
        module.train()
        torch.manual_seed(1)
        first = module(x)
        torch.manual_seed(2)
        assert not torch.allclose(first, module(x)), "dropout must act in training mode"

    def test_matches_reference_mha_with_transplanted_weights(self, attention_factory):
        from llmkit_solutions.attention import MultiHeadAttention

        for qkv_bias in (False, True):
            torch.manual_seed(3)
            reference = MultiHeadAttention(D_IN, D_OUT, CONTEXT, 0.0, HEADS, qkv_bias=qkv_bias).eval()
            module = self.build(attention_factory, qkv_bias=qkv_bias, seed=4).eval()
            self.transplant(reference, module)
            x = self.inputs()
            torch.testing.assert_close(module(x), reference(x), atol=ATOL, rtol=0)

    def test_gradients_reach_every_parameter(self, attention_factory):
        module = self.build(attention_factory)
        module(self.inputs()).sum().backward()
        for name, param in module.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, f"{name} got no gradient"

    def test_rejects_d_out_not_divisible_by_heads(self, attention_factory):
        with pytest.raises(LLMKitError, match="divisible"):
            self.build(attention_factory, d_out=HEADS * 6 + 1)

    def test_kv_cache_gives_the_full_sequence_outputs(self, attention_factory):
        module = self.build(attention_factory).eval()
        if "kv_cache" not in inspect.signature(module.forward).parameters:
            pytest.skip("this attention does not take a kv_cache")
        x = self.inputs()
        full = module(x)
        cache = LayerCache()
        parts = [module(x[:, :5], kv_cache=cache)]
        parts += [module(x[:, t : t + 1], kv_cache=cache) for t in range(5, CONTEXT)]
        torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=ATOL, rtol=0)

    def test_usable_by_name_inside_gpt_model(self):
        if self.registered_name is None:
            pytest.skip("set registered_name to check the module inside GPTModel")
        from llmkit_solutions.gpt import GPTModel

        cfg = dict(vocab_size=50, context_length=CONTEXT, emb_dim=D_OUT, n_heads=HEADS, n_layers=2,
                   drop_rate=0.0, qkv_bias=False)
        torch.manual_seed(5)
        reference = GPTModel(cfg).eval()
        model = GPTModel({**cfg, "attention": self.registered_name,
                          "attention_options": dict(self.reference_options)}).eval()
        for ref_block, block in zip(reference.trf_blocks, model.trf_blocks):
            self.transplant(ref_block.att, block.att)
        reference_rest = {k: v for k, v in reference.state_dict().items() if ".att." not in k}
        model.load_state_dict(reference_rest, strict=False)
        ids = torch.randint(0, 50, (2, CONTEXT), generator=torch.Generator().manual_seed(6))
        torch.testing.assert_close(model(ids), reference(ids), atol=1e-4, rtol=0)

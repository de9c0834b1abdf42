"""Conformance suite for the ``decoders`` family (``llmkit.contracts.Decoder``).

Needs a ``decoder`` fixture: the registered decoder, a function with the book's ``generate``
signature. Tune with ``model_name``: the registered model decoded with (default ``gpt``, the kit's),
and ``decodes_any_model``: False for a decoder made for models with a KV cache, which must then
refuse any other model in one line. Greedy decoding must give exactly the ids of the plain loop
below (argmax over the whole window).
"""

from __future__ import annotations

import pytest
import torch

import llmkit
from llmkit.contracts import check

CFG = dict(vocab_size=50, context_length=10, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=False)


def plain_greedy(model, idx, max_new_tokens, context_size):
    """The definition: each step, the argmax of the last position over the last ``context_size`` ids."""
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_size:])[:, -1, :]
        idx = torch.cat((idx, logits.argmax(dim=-1, keepdim=True)), dim=1)
    return idx


class NoCache(torch.nn.Module):
    """A model whose forward takes no kv_cache: a decoder must still decode it."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.context_length = inner.context_length if hasattr(inner, "context_length") else CFG["context_length"]

    def forward(self, idx):
        return self.inner(idx)


class BaseDecoderTests:
    model_name = "gpt"
    decodes_any_model = True

    def model(self, seed=0):
        torch.manual_seed(seed)
        return llmkit.create("models", self.model_name, dict(CFG)).eval()

    @staticmethod
    def prompt(batch=2, tokens=4, seed=1):
        return torch.randint(0, CFG["vocab_size"], (batch, tokens), generator=torch.Generator().manual_seed(seed))

    def test_meets_the_protocol(self, decoder):
        check("decoders", decoder)

    def test_greedy_is_the_plain_argmax_loop_past_the_context(self, decoder):
        model, prompt = self.model(), self.prompt()
        for new in (1, 5, 14):  # 4 + 14 ids overflow the 10-token window: the oldest are cropped
            out = decoder(model, prompt, new, CFG["context_length"])
            assert torch.equal(out, plain_greedy(model, prompt, new, CFG["context_length"])), new

    def test_keeps_the_prompt_and_adds_max_new_tokens(self, decoder):
        prompt = self.prompt()
        out = decoder(self.model(), prompt, 3, CFG["context_length"], temperature=1.0, top_k=5)
        assert out.shape == (2, 7) and torch.equal(out[:, :4], prompt)
        assert out.dtype == torch.long and int(out.max()) < CFG["vocab_size"]

    def test_stops_when_every_row_would_end(self, decoder):
        model, prompt = self.model(), self.prompt(batch=1)
        first = int(plain_greedy(model, prompt, 1, CFG["context_length"])[0, -1])
        out = decoder(model, prompt, 5, CFG["context_length"], eos_id=first)
        assert torch.equal(out, prompt), "the end token is not appended, and nothing after it"

    def test_the_same_seed_draws_the_same_sample(self, decoder):
        model, prompt = self.model(), self.prompt()
        torch.manual_seed(7)
        first = decoder(model, prompt, 6, CFG["context_length"], temperature=1.5)
        torch.manual_seed(7)
        assert torch.equal(decoder(model, prompt, 6, CFG["context_length"], temperature=1.5), first)

    def test_top_k_one_is_greedy_at_any_temperature(self, decoder):
        model, prompt = self.model(), self.prompt()
        greedy = decoder(model, prompt, 6, CFG["context_length"])
        assert torch.equal(decoder(model, prompt, 6, CFG["context_length"], temperature=2.0, top_k=1), greedy)

    def test_decodes_a_model_without_a_cache(self, decoder):
        from llmkit.errors import LLMKitError

        model = self.model()
        plain = NoCache(model).eval()
        prompt = self.prompt()
        if not self.decodes_any_model:
            with pytest.raises(LLMKitError):
                decoder(plain, prompt, 5, CFG["context_length"])
            return
        assert torch.equal(decoder(plain, prompt, 5, CFG["context_length"]),
                           plain_greedy(model, prompt, 5, CFG["context_length"]))

    def test_bad_sampling_settings_are_one_line(self, decoder):
        from llmkit.errors import LLMKitError

        with pytest.raises(LLMKitError):
            decoder(self.model(), self.prompt(), 2, CFG["context_length"], temperature=-1.0)

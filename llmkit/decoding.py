"""How the kit calls a decoder (the ``decoders`` family) on text: encode, crop, decode, stop at eos.

The training loop's per-epoch sample, the run's ``samples.md``, the instruct stage's answers,
``llmkit generate``, ``llmkit chat`` and the playground widget all come through ``complete``.
``DEFAULT_DECODER`` is the kit's production decoder (``plugins/llmkit_generate``); the book's
``generate`` is the reference's ``book``.
"""

from __future__ import annotations

import torch

from .contracts import context_length
from .plugins import get
from .tokenizers import encode_text

DEFAULT_DECODER = "kv-cache"


def decoder(name: str | None = None):
    """The decoder registered as ``name`` (default: the kit's)."""
    return get("decoders", name or DEFAULT_DECODER).factory


@torch.no_grad()
def complete_ids(model, ids: list[int], max_new_tokens: int, device, decoder_name: str | None = None,
                 temperature: float = 0.0, top_k: int | None = None, eos_id: int | None = None) -> list[int]:
    """The ids ``decoder_name`` appends to ``ids`` (the prompt cropped to the model's context)."""
    context = context_length(model)
    idx = torch.tensor([ids[-context:]], device=device)  # (1, T)
    was_training = model.training
    model.eval()
    out = decoder(decoder_name)(model, idx, max_new_tokens, context, temperature=temperature, top_k=top_k,
                                eos_id=eos_id)  # (1, T + new)
    model.train(was_training)
    return out[0, idx.shape[1]:].tolist()


def complete(model, tokenizer, prompt: str, max_new_tokens: int, device, decoder_name: str | None = None,
             **sampling) -> str:
    """``prompt`` followed by what the model writes (``temperature``, ``top_k``, ``eos_id`` as keywords)."""
    ids = encode_text(tokenizer, prompt)
    return tokenizer.decode(ids + complete_ids(model, ids, max_new_tokens, device, decoder_name, **sampling))

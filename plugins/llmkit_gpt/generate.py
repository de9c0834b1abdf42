"""Decoding for the production GPT: a preallocated KV cache, batched prompts, lighter weight copies.

``generate`` gives the same ids as the book's ``generate(..., use_cache=True)``: the same greedy or
sampled choice per step, the same stop on ``eos_id``, the same window rebuild once the context is
full. It is faster because it computes the output head for the last position only (the prompt's
other positions never need logits), writes keys and values into buffers allocated once instead of
concatenating a growing cache every step, and runs under ``torch.inference_mode``.

Prompts of different lengths go in one batch, left-padded (``pad_prompts``): each row's padding is
masked out of attention and its positions start at 0 where its prompt starts, so a row's ids are
those it gets alone.

Decoding reads every weight once per step and is bound by memory bandwidth, so
``quantize_for_decoding`` makes a bf16 or int8 weight-only copy (2x or 4x fewer bytes). Whether that is
faster depends on the CPU's kernels for those types: measure it with ``llmkit.bench_perf generate``.
"""

from __future__ import annotations

import copy
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from llmkit.errors import LLMKitError


class StaticLayerCache:
    """One layer's keys and values in buffers of shape (B, H, max_len, hd); ``llmkit.kv_cache``'s interface."""

    def __init__(self, owner: "StaticKVCache", keys: torch.Tensor, values: torch.Tensor):
        self.owner, self.keys_buf, self.values_buf = owner, keys, values
        self.length = 0

    @property
    def pad(self):
        return self.owner.pad

    def update(self, keys, values):
        """Write the new tokens' (B, H, T, hd) keys/values; return views of all (B, H, length, hd)."""
        start, stop = self.length, self.length + keys.shape[2]
        if stop > self.keys_buf.shape[2]:
            raise LLMKitError(f"the KV cache holds {self.keys_buf.shape[2]} tokens; {stop} do not fit.")
        self.keys_buf[:, :, start:stop] = keys
        self.values_buf[:, :, start:stop] = values
        self.length = stop
        return self.keys_buf[:, :, :stop], self.values_buf[:, :, :stop]


class StaticKVCache:
    """A ``llmkit.kv_cache.KVCache`` whose layers write into preallocated buffers.

    ``pad`` (B,) counts the left-padding tokens of each row (None: no padding): the model shifts that
    row's positions and the attention masks its padded keys.
    """

    def __init__(self, n_layers, batch, n_heads, head_dim, max_len, dtype=torch.float32, device="cpu", pad=None):
        shape = (batch, n_heads, max_len, head_dim)
        self.pad = pad
        self.layers = [StaticLayerCache(self, torch.empty(shape, dtype=dtype, device=device),
                                        torch.empty(shape, dtype=dtype, device=device)) for _ in range(n_layers)]

    @classmethod
    def for_model(cls, model, batch, max_len, pad=None):
        """A cache sized for ``model``: this plugin's GPT or any book-shaped one (trf_blocks[i].att)."""
        blocks = getattr(model, "trf_blocks", None)
        att = None if blocks is None else getattr(blocks[0], "att", None)
        heads = getattr(att, "n_heads", getattr(att, "num_heads", None))
        if heads is None or not hasattr(att, "head_dim"):
            raise LLMKitError(f"{type(model).__name__} is not a GPT with trf_blocks[i].att (num_heads, head_dim); "
                              "decode it with the kit's kv-cache decoder.")
        emb = model.tok_emb.weight
        dtype = emb.dtype if emb.is_floating_point() else torch.float32
        return cls(len(blocks), batch, heads, att.head_dim, max_len, dtype, emb.device, pad)

    @property
    def offset(self) -> int:
        return self.layers[0].length if self.layers else 0

    def reset(self) -> None:
        self.truncate(0)

    def truncate(self, length: int) -> None:
        """Forget every token from position ``length`` on (their buffers are simply overwritten later)."""
        for layer in self.layers:
            layer.length = min(layer.length, length)


def pad_prompts(prompts, pad_id=0):
    """A list of 1-D id tensors or lists -> ((B, T) left-padded ids, (B,) prompt lengths)."""
    rows = [torch.as_tensor(p, dtype=torch.long).flatten() for p in prompts]
    if not rows or any(len(r) == 0 for r in rows):
        raise LLMKitError("pad_prompts needs at least one prompt, and every prompt needs at least one id.")
    width = max(len(r) for r in rows)
    idx = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        idx[i, width - len(r):] = r
    return idx, torch.tensor([len(r) for r in rows])


def next_token(logits, temperature=0.0, top_k=None):
    """(B, V) last-position logits -> (B, 1) ids: greedy at temperature 0, else sampled after top-k."""
    logits = logits.float()
    if top_k is not None:
        if top_k <= 0:
            raise LLMKitError(f"top_k must be a positive integer or None, got {top_k}.")
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, -torch.inf)
    if temperature < 0:
        raise LLMKitError(f"temperature must be >= 0 (0 means greedy), got {temperature}.")
    if temperature == 0.0:
        return logits.argmax(dim=-1, keepdim=True)
    return torch.multinomial(torch.softmax(logits / temperature, dim=-1), num_samples=1)


def _last_logits(model, idx, cache):
    """Logits (B, V) of the last position only: the head runs on one row per prompt."""
    if hasattr(model, "hidden"):
        return model.out_head(model.hidden(idx, kv_cache=cache)[:, -1])
    return model(idx, kv_cache=cache)[:, -1]  # any model that takes the book's kv_cache


def _all_logits(model, idx, cache):
    """Logits (B, T, V) of every position of a chunk fed after the cache."""
    if hasattr(model, "hidden"):
        return model.out_head(model.hidden(idx, kv_cache=cache))
    return model(idx, kv_cache=cache)


def lookup_draft(ids, k, ngram=3):
    """Up to ``k`` ids that followed the latest earlier occurrence of the sequence's last n-gram.

    Prompt lookup: text often repeats itself (names, code, a quoted input, a greedy loop), so what
    came after the same few tokens before is a free guess at what comes next. n runs from ``ngram``
    down to 1; no match gives [].
    """
    seq = ids.tolist()
    for n in range(min(ngram, len(seq) - 1), 0, -1):
        tail = seq[-n:]
        for start in range(len(seq) - n - 1, -1, -1):
            if seq[start:start + n] == tail:
                return seq[start + n:start + n + k]
    return []


@torch.inference_mode()
def generate(model, idx, max_new_tokens, context_size=None, temperature=0.0, top_k=None, eos_id=None,
             prompt_lengths=None, lookup=0, draft=None, draft_tokens=8):
    """Append up to ``max_new_tokens`` ids to ``idx`` (B, T); the book's ``generate`` with a KV cache.

    ``prompt_lengths`` (B,) marks ``idx`` as left-padded prompts of those lengths (see
    ``pad_prompts``); then the prompt plus the new tokens must fit in the context.

    ``lookup=k`` (greedy only) guesses up to k next ids by prompt lookup and checks them all in one
    forward pass: the ids the model itself would pick are kept, the first wrong guess and what follows
    are dropped. The result is the greedy result; what changes is how many tokens one pass reading
    all the weights produces.

    ``draft=lighter`` (greedy only) guesses with a lighter copy of the same model instead, such as
    ``quantize_for_decoding(model, "bf16")``: it decodes ``draft_tokens`` ids ahead with its own cache
    (half the bytes per step), and ``model`` checks them in one pass as above (speculative decoding).
    The ids are still ``model``'s own greedy ids.
    """
    context_size = min(context_size or model.context_length, model.context_length)
    batch, width = idx.shape
    pad = None
    if prompt_lengths is not None:
        pad = (width - torch.as_tensor(prompt_lengths, device=idx.device)).clamp(min=0)  # (B,)
        if width + max_new_tokens > context_size:
            raise LLMKitError(f"padded prompts of {width} tokens plus {max_new_tokens} new ones exceed the "
                              f"context of {context_size}; generate fewer tokens or shorten the prompts.")
        if not bool(pad.any()):
            pad = None
        elif not hasattr(model, "hidden"):
            raise LLMKitError(f"{type(model).__name__} cannot mask padding; pass prompts of equal length.")
    if (lookup or draft is not None) and (temperature != 0.0 or pad is not None):
        raise LLMKitError("lookup and draft work for greedy decoding (temperature 0) of prompts of equal length.")
    if lookup and draft is not None:
        raise LLMKitError("pass either lookup=k or draft=model, not both.")
    cache = StaticKVCache.for_model(model, batch, context_size, pad)
    logits = _last_logits(model, idx[:, -context_size:], cache)  # (B, V)
    guesser = None
    if draft is not None:
        ours, theirs = model.tok_emb.num_embeddings, getattr(getattr(draft, "tok_emb", None), "num_embeddings", None)
        if theirs != ours:
            raise LLMKitError(f"the draft model's vocabulary ({theirs}) is not the model's ({ours}); pass a copy "
                              "of the same model, e.g. quantize_for_decoding(model, 'bf16').")
        guesser = _DraftModel(draft, batch, context_size)
    ahead = draft_tokens if draft is not None else lookup
    base = max(0, width - context_size)  # the cache's position 0 is idx[:, base] (guessing stops at a crop)
    produced = 0
    while produced < max_new_tokens:
        nxt = next_token(logits, temperature, top_k)  # (B, 1)
        if eos_id is not None and bool((nxt == eos_id).all()):
            break
        idx = torch.cat([idx, nxt], dim=1)
        produced += 1
        if produced == max_new_tokens:
            break  # the next logits would never be used
        if cache.offset + 1 > context_size:
            # The window is full: the book's generate crops the prompt, which shifts every position,
            # so the cache is rebuilt from the cropped window to give exactly its ids.
            cache.reset()
            logits = _last_logits(model, idx[:, -context_size:], cache)
            continue
        room = min(ahead, max_new_tokens - produced, context_size - cache.offset - 1)
        if room <= 0:
            guesses = None
        elif guesser is not None:
            guesses = guesser.propose(idx[:, base:], room)  # (B, room); positions as in the cache
        else:
            drafts = [lookup_draft(row, room) for row in idx]
            guess = min(len(d) for d in drafts)  # every row checks the same number
            guesses = torch.tensor([d[:guess] for d in drafts], device=idx.device) if guess else None
        if guesses is None:
            logits = _last_logits(model, nxt, cache)
            continue
        draft_ids, guess = guesses, guesses.shape[1]  # (B, g)
        start = cache.offset
        chunk_logits = _all_logits(model, torch.cat([nxt, draft_ids], dim=1), cache)  # (B, g+1, V)
        picks = chunk_logits.argmax(dim=-1)  # (B, g+1): the model's own choice after each position
        agree = (picks[:, :guess] == draft_ids).long().cumprod(dim=1).sum(dim=1)  # (B,) leading matches
        accepted = int(agree.min())
        if guesser is not None:
            guesser.keep(start + 1 + accepted)  # idx[:, start] is nxt; the kept guesses follow it
        for j in range(accepted):
            tok = draft_ids[:, j:j + 1]  # the model's own greedy choice here, so the book's too
            if eos_id is not None and bool((tok == eos_id).all()):
                return idx
            idx = torch.cat([idx, tok], dim=1)
            produced += 1
            if produced == max_new_tokens:
                return idx
        cache.truncate(start + 1 + accepted)  # drop the keys of rejected guesses
        logits = chunk_logits[:, accepted]  # (B, V): the next greedy pick follows the last kept id
    return idx


_DRAFTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> its lighter copy


def draft_kind(model) -> str:
    """The lightest copy that guesses well here: dynamic int8 on a CPU with a quantized engine (measured
    on a 2-core EPYC: 4.3x transformers' decoding alone, 2.0-2.2x as an 8-id draft), else bf16."""
    weight = next(model.parameters(), None)
    on_cpu = weight is None or weight.device.type == "cpu"
    return "int8-dynamic" if on_cpu and dynamic_int8_engine() is not None else "bf16"


def generate_speculative(model, idx, max_new_tokens, context_size=None, temperature=0.0, top_k=None, eos_id=None,
                         draft_tokens=8):
    """The ``speculative`` decoder: greedy ids guessed ahead by a lighter copy of ``model`` (``draft_kind``:
    dynamic int8 on a CPU, else bf16) and checked by ``model`` itself (``generate(draft=...)``); sampling
    decodes as ``generate`` does.

    The copy is made on first use and kept while the model lives. If the model's weights change
    afterwards (more training), its guesses get worse but the ids are still the model's own.
    """
    if temperature != 0.0:
        return generate(model, idx, max_new_tokens, context_size, temperature, top_k, eos_id)
    draft = _DRAFTS.get(model)
    if draft is None:
        draft = _DRAFTS[model] = quantize_for_decoding(model, draft_kind(model))
    return generate(model, idx, max_new_tokens, context_size, eos_id=eos_id, draft=draft, draft_tokens=draft_tokens)


class _DraftModel:
    """Greedy guesses from a lighter copy of the model, kept in step with the ids through its own cache."""

    def __init__(self, model, batch, context_size):
        self.model = model
        self.cache = StaticKVCache.for_model(model, batch, context_size)

    def propose(self, idx, k):
        """(B, L) ids, all but the last few already in this cache -> (B, k) greedy guesses of what follows."""
        chunk = idx[:, self.cache.offset:]  # (B, n) the ids this cache has not seen: 1 or 2 usually
        guesses = []
        for _ in range(k):
            chunk = _last_logits(self.model, chunk, self.cache).argmax(dim=-1, keepdim=True)  # (B, 1)
            guesses.append(chunk)
        return torch.cat(guesses, dim=1)  # the last guess is never fed to this cache

    def keep(self, length):
        """The first ``length`` positions hold the ids that stay; forget any guess after them."""
        self.cache.truncate(length)


class Int8Linear(nn.Module):
    """A Linear whose weight is stored as int8 with one fp32 scale per output row (weight-only)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()  # (out, in)
        scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0  # (out,)
        self.register_buffer("weight", torch.round(w / scale[:, None]).to(torch.int8))  # (out, in)
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float())
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x):
        flat = x.reshape(-1, self.in_features).float()  # (N, in)
        if hasattr(torch, "_weight_int8pack_mm"):
            y = torch._weight_int8pack_mm(flat, self.weight, self.scale)  # (N, out), reads int8 weights
        else:
            y = F.linear(flat, self.weight.float()) * self.scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)


def dynamic_int8_engine() -> str | None:
    """The quantized CPU engine that runs dynamic int8 Linears here (fbgemm/x86 or qnnpack), or None."""
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    return next((e for e in ("x86", "fbgemm", "onednn", "qnnpack") if e in engines), None)


def quantize_for_decoding(model, dtype="int8"):
    """A copy of ``model`` for generation only: ``"bf16"`` weights, ``"int8"`` weight-only Linears, or
    ``"int8-dynamic"`` Linears (int8 weights, activations quantized per call: PyTorch's dynamic
    quantization, whose fbgemm/qnnpack kernels are the fastest on a CPU, and the least exact)."""
    model = copy.deepcopy(model).eval()
    if dtype == "bf16":
        return model.to(torch.bfloat16)
    if dtype == "int8-dynamic":
        return _dynamic_int8(model)
    if dtype != "int8":
        raise LLMKitError(f"quantize_for_decoding takes 'bf16', 'int8' or 'int8-dynamic', not {dtype!r}.")
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, Int8Linear(child))
    return model


def _dynamic_int8(model):
    import warnings

    engine = dynamic_int8_engine()
    if engine is None:
        raise LLMKitError("this torch build has no quantized CPU engine (fbgemm, x86 or qnnpack) for "
                          "'int8-dynamic'; use quantize_for_decoding(model, 'bf16') instead.")
    weight = next(model.parameters(), None)
    if weight is not None and weight.device.type != "cpu":
        raise LLMKitError("'int8-dynamic' copies run on the CPU only; on a GPU use quantize_for_decoding(model, 'bf16').")
    if torch.backends.quantized.engine not in torch.backends.quantized.supported_engines or \
            torch.backends.quantized.engine == "none":  # keep a user's own choice of engine
        torch.backends.quantized.engine = engine
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao; it still works
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)

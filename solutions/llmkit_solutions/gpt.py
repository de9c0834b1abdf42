"""Stage 5: the GPT architecture and text generation.

``GPTModel(cfg)`` follows GPT-2: token + position embeddings, ``n_layers`` pre-norm transformer
blocks, a final LayerNorm and an untied output head. Modules are built in the book's order, so a
seed gives the book's weights. ``cfg`` may also name an ``attention`` from the registry (and its
``attention_options``); without that key the block uses the reference ``MultiHeadAttention``.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from llmkit.config import check_gpt_config
from llmkit.errors import LLMKitError
from llmkit.kv_cache import KVCache
from llmkit.tokenizers import encode_text

from .attention import MultiHeadAttention

GPT_CONFIG_124M = {
    "vocab_size": 50257,  # GPT-2 BPE
    "context_length": 1024,
    "emb_dim": 768,
    "n_heads": 12,
    "n_layers": 12,
    "drop_rate": 0.1,
    "qkv_bias": False,
}


class LayerNorm(nn.Module):
    """Normalise each vector to zero mean, unit (biased) variance, then learn ``scale`` and ``shift``."""

    def __init__(self, emb_dim):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift


class GELU(nn.Module):
    """GELU with GPT-2's tanh approximation."""

    def forward(self, x):
        inner = torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))
        return 0.5 * x * (1.0 + torch.tanh(inner))


class FeedForward(nn.Module):
    """Position-wise MLP: emb_dim -> 4*emb_dim -> GELU -> emb_dim."""

    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]),
            GELU(),
            nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]),
        )

    def forward(self, x):
        return self.layers(x)


def build_attention(cfg):
    """The attention for one block: the reference MHA, or ``cfg["attention"]`` from the registry."""
    kwargs = dict(
        d_in=cfg["emb_dim"],
        d_out=cfg["emb_dim"],
        context_length=cfg["context_length"],
        dropout=cfg["drop_rate"],
        num_heads=cfg["n_heads"],
        qkv_bias=cfg["qkv_bias"],
    )
    name = cfg.get("attention")
    options = dict(cfg.get("attention_options", {}))
    if name is None and not options:
        return MultiHeadAttention(**kwargs)

    import llmkit  # the registry; imported here so the book's path needs no plugins

    factory = llmkit.get("attention", name or "mha").factory
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unknown = [k for k in options if k not in params and not takes_any]
    if unknown:
        accepted = [k for k in params if k not in kwargs and k != "self"]
        raise LLMKitError(
            f"attention '{name}' has no option {', '.join(map(repr, unknown))}; "
            f"its options are: {', '.join(accepted) or 'none'}."
        )
    return factory(**kwargs, **options)


class TransformerBlock(nn.Module):
    """Pre-norm block: x + att(norm1(x)), then x + ff(norm2(x)), with dropout on each branch."""

    def __init__(self, cfg):
        super().__init__()
        self.att = build_attention(cfg)
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x, kv_cache=None):
        shortcut = x
        x = self.norm1(x)
        x = self.att(x) if kv_cache is None else self.att(x, kv_cache=kv_cache)
        x = self.drop_shortcut(x) + shortcut

        shortcut = x
        x = self.ff(self.norm2(x))
        return self.drop_shortcut(x) + shortcut


class GPTModel(nn.Module):
    """GPT-2-style decoder: (batch, T) token ids -> (batch, T, vocab_size) logits."""

    def __init__(self, cfg):
        super().__init__()
        check_gpt_config(cfg)
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, in_idx, kv_cache=None):
        batch_size, seq_len = in_idx.shape
        start = 0 if kv_cache is None else kv_cache.offset
        context_length = self.pos_emb.num_embeddings
        if start + seq_len > context_length:
            raise LLMKitError(
                f"The input has {start + seq_len} tokens but the model's context_length is {context_length}; "
                f"keep only the last {context_length}: idx[:, -{context_length}:]."
            )
        tok_embeds = self.tok_emb(in_idx)  # (B, T, E)
        pos_embeds = self.pos_emb(torch.arange(start, start + seq_len, device=in_idx.device))  # (T, E)
        x = self.drop_emb(tok_embeds + pos_embeds)
        if kv_cache is None:
            x = self.trf_blocks(x)
        else:
            for block, layer_cache in zip(self.trf_blocks, kv_cache.layers):
                x = block(x, kv_cache=layer_cache)
        x = self.final_norm(x)
        return self.out_head(x)  # (B, T, vocab_size)


def generate_text_simple(model, idx, max_new_tokens, context_size):
    """Greedy decoding: append the most likely next token ``max_new_tokens`` times."""
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]  # crop to what the model can see
        with torch.no_grad():
            logits = model(idx_cond)
        logits = logits[:, -1, :]  # (B, vocab) for the last position
        probas = torch.softmax(logits, dim=-1)
        idx_next = torch.argmax(probas, dim=-1, keepdim=True)  # (B, 1)
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


def next_token(logits, temperature=0.0, top_k=None):
    """Pick the next id from last-position logits (B, vocab): greedy, or sampled after top-k."""
    if top_k is not None:
        if top_k <= 0:
            raise LLMKitError(f"top_k must be a positive integer or None, got {top_k}.")
        top_logits, _ = torch.topk(logits, min(top_k, logits.shape[-1]))
        cutoff = top_logits[:, -1:]  # (B, 1): the k-th largest logit per row
        logits = torch.where(logits < cutoff, torch.full_like(logits, -torch.inf), logits)
    if temperature < 0:
        raise LLMKitError(f"temperature must be >= 0 (0 means greedy), got {temperature}.")
    if temperature > 0.0:
        probs = torch.softmax(logits / temperature, dim=-1)
        return torch.multinomial(probs, num_samples=1)  # (B, 1)
    return torch.argmax(logits, dim=-1, keepdim=True)  # (B, 1)


def supports_kv_cache(model) -> bool:
    """True when every block's attention accepts ``kv_cache``."""
    blocks = getattr(model, "trf_blocks", None)
    if blocks is None:
        return False
    return all("kv_cache" in inspect.signature(block.att.forward).parameters for block in blocks)


def generate(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None,
             use_cache=False):
    """Generate up to ``max_new_tokens`` ids; stop early when every row's next id is ``eos_id``.

    ``use_cache=True`` feeds only the newest token each step and reuses the keys/values of earlier
    ones. Once the window is full the uncached path crops the prompt, which shifts every position,
    so the cache is rebuilt from the cropped window: the ids produced are exactly the uncached ones.
    """
    if use_cache and not supports_kv_cache(model):
        raise LLMKitError(
            f"{type(model).__name__}'s attention does not accept kv_cache; call generate(..., use_cache=False)."
        )
    cache = KVCache(len(model.trf_blocks)) if use_cache else None
    logits = None
    for _ in range(max_new_tokens):
        with torch.no_grad():
            if cache is None:
                logits = model(idx[:, -context_size:])
            elif logits is None or cache.offset + 1 > context_size:
                cache.reset()
                logits = model(idx[:, -context_size:], kv_cache=cache)
            else:
                logits = model(idx[:, -1:], kv_cache=cache)
        idx_next = next_token(logits[:, -1, :], temperature, top_k)
        if eos_id is not None and bool((idx_next == eos_id).all()):
            break
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


def text_to_token_ids(text, tokenizer):
    """Text -> (1, T) tensor of ids, ``<|endoftext|>`` allowed."""
    return torch.tensor(encode_text(tokenizer, text)).unsqueeze(0)


def token_ids_to_text(token_ids, tokenizer):
    """(1, T) tensor of ids -> text."""
    return tokenizer.decode(token_ids.squeeze(0).tolist())

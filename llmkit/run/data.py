"""From a run config to tensors: the corpus, its tokenizer, the book's model cfg, and the loaders.

``prepare_data`` reads and splits the corpus and builds (or reuses) the tokenizer; the training
loader comes from the sampler named in the config; the evaluation loader is the kit's own: the same
non-overlapping windows every time, so evaluation never draws from the training sampler's RNG.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from ..data import load_corpus, split_documents, window_starts
from ..errors import LLMKitError
from ..plugins import create, get
from ..runconfig import RunConfig
from ..tokenizers import build_tokenizer, encode_text, vocab_size


@dataclass
class Prepared:
    tokenizer: object
    train_ids: list
    val_ids: list
    model_cfg: dict  # the book's cfg dict (+ attention name and options)
    corpus_chars: int = 0


def model_config(cfg: RunConfig, n_vocab: int) -> dict:
    """The book's cfg dict for this run, plus the attention name and options when they are not the default."""
    m = cfg.model
    model_cfg = {"vocab_size": n_vocab, "context_length": m.context_length, "emb_dim": m.emb_dim,
                 "n_heads": m.n_heads, "n_layers": m.n_layers, "drop_rate": m.drop_rate, "qkv_bias": m.qkv_bias}
    if m.attention != "mha" or m.attention_options:
        model_cfg["attention"] = m.attention
        model_cfg["attention_options"] = dict(m.attention_options)
    return model_cfg


def build_model(cfg: RunConfig, model_cfg: dict):
    """The model named in the config, built from the book's cfg dict."""
    return create("models", cfg.model.name, model_cfg)


def window_length(cfg: RunConfig) -> int:
    length = cfg.sampler.max_length or cfg.model.context_length
    if length > cfg.model.context_length:
        raise LLMKitError(f"sampler.max_length ({length}) exceeds model.context_length ({cfg.model.context_length}); "
                          "lower the first or raise the second.")
    return length


def prepare_data(cfg: RunConfig, tokenizer=None) -> Prepared:
    """Read and split the corpus, train the tokenizer on the training half (unless given one), encode both."""
    corpus = load_corpus(cfg.data.corpus)
    train_text, val_text = split_documents(corpus, cfg.data.val_fraction, cfg.data.split_seed)
    if tokenizer is None:
        options = {}
        from_text = getattr(get("tokenizers", cfg.tokenizer.name).factory, "from_text", None)
        if from_text is not None and "vocab_size" in inspect.signature(from_text).parameters:
            options["vocab_size"] = cfg.tokenizer.vocab_size  # for tokenizers that learn their vocabulary
        tokenizer = build_tokenizer(cfg.tokenizer.name, train_text, **options)
    train_ids, val_ids = encode_text(tokenizer, train_text), encode_text(tokenizer, val_text)
    length = window_length(cfg)
    for split, ids in (("training", train_ids), ("validation", val_ids)):
        if len(ids) < length + 1:
            raise LLMKitError(
                f"The {split} split of {cfg.data.corpus} has {len(ids)} tokens, fewer than one window "
                f"({length + 1}); use a longer corpus, a larger data.val_fraction, or a smaller model.context_length."
            )
    return Prepared(tokenizer, train_ids, val_ids, model_config(cfg, vocab_size(tokenizer)), len(corpus))


# The keywords a sampler may take beyond (token_ids, batch_size, max_length); each is passed when the
# sampler's signature names it (llmkit.contracts.Batches, docs/plugins.md).
def _sampler_options(cfg: RunConfig) -> dict:
    return {"seed": cfg.run.seed, "stride": cfg.sampler.stride or None,
            "num_batches": cfg.sampler.batches_per_epoch or None, "shuffle": True}


def make_train_loader(cfg: RunConfig, ids: list):
    """The training batches of the sampler named in the config."""
    factory = get("samplers", cfg.sampler.name).factory
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    options = {k: v for k, v in _sampler_options(cfg).items() if k in params or takes_any}
    return factory(ids, cfg.sampler.batch_size, window_length(cfg), **options)


class _Windows(Dataset):
    """Non-overlapping windows of ``length`` ids from the start, and the same windows one id later."""

    def __init__(self, ids: list, length: int):
        self.data = torch.as_tensor(ids, dtype=torch.long)  # (N,)
        self.length = length
        self.starts = window_starts(len(self.data), length, length)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int):
        s = self.starts[i]
        return self.data[s : s + self.length], self.data[s + 1 : s + self.length + 1]  # (T,), (T,)


def make_eval_loader(cfg: RunConfig, ids: list) -> DataLoader:
    """Deterministic, non-overlapping windows: evaluation never touches the training sampler's RNG."""
    return DataLoader(_Windows(ids, window_length(cfg)), batch_size=cfg.sampler.batch_size, shuffle=False)

"""``llmkit mlm pretrain``: masked-language-model pretraining of the ``bert`` encoder with the kit's trainer.

    corpus -> split -> tokenizer with special tokens (bpe-special) -> MLMBatches -> Encoder
           -> llmkit.training.train (AdamW, warmup + cosine, clipping, eval, checkpoints, exact resume)
           -> run folder: config.json, tokenizer.json, metrics.jsonl, checkpoint.pt, loss.png, report.md

The trainer needs no MLM branch: the batches' targets are -100 wherever nothing was masked, which
its cross-entropy ignores, and ``MLMBatches.generator`` (window starts and masks) is what it saves
and restores, so ``--resume`` replays a killed run exactly. ``report.md`` ends with fill-in-the-blank
samples. ``llmkit pretrain --objective mlm`` runs the same (see docs/beyond-gpt.md).
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint
from ..data import load_corpus, split_documents
from ..errors import LLMKitError
from ..plots import plot_losses
from ..plugins import create, get
from ..tokenizers import build_tokenizer, encode_text
from ..training import TrainConfig, train

PROMPTS = ("The lighthouse keeper climbed the [MASK] every evening.", "Bread rises because the [MASK] makes gas.",
           "The river bends around the [MASK].")


@dataclass
class MLMConfig:
    corpus: str = "builtin"
    tokenizer: str = "bpe-special"  # any tokenizer with mask/cls/pad ids: bpe-special, char-special ...
    vocab_size: int = 1024
    context_length: int = 128
    emb_dim: int = 192
    n_heads: int = 6
    n_layers: int = 4
    drop_rate: float = 0.1
    batch_size: int = 16
    batches_per_epoch: int = 50
    epochs: int = 4
    max_steps: int = 0
    lr: float = 1e-3
    mask_prob: float = 0.15
    seed: int = 123


def pretrain_mlm(c: MLMConfig, run_dir, resume: bool = False, overwrite: bool = False, log=print) -> dict:
    """Pretrain an encoder with MLM into ``run_dir``; returns the summary written to report.md."""
    run_dir = Path(run_dir)
    if resume:
        saved = run_dir / "config.json"
        if not saved.is_file():
            raise LLMKitError(f"{run_dir} has no config.json to resume; start it without --resume.")
        c = MLMConfig(**json.loads(saved.read_text()))
    elif run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise LLMKitError(f"{run_dir} already exists; pass --overwrite to replace it, or --resume to continue it.")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(asdict(c), indent=1))

    # Data: the corpus split, a tokenizer with [MASK]/[CLS]/[PAD] trained on the training half.
    train_text, val_text = split_documents(load_corpus(c.corpus), 0.1, c.seed)
    tok_file = run_dir / "tokenizer.json"
    if resume and tok_file.is_file():
        tokenizer = get("tokenizers", c.tokenizer).factory.load(tok_file)
    else:
        tokenizer = build_tokenizer(c.tokenizer, train_text, vocab_size=c.vocab_size)
        tokenizer.save(tok_file)
    if getattr(tokenizer, "mask_id", None) is None:
        raise LLMKitError(f"tokenizer '{c.tokenizer}' has no [MASK]; use one with special tokens, e.g. bpe-special.")
    from llmkit_encoder import MLMBatches, fill_mask  # the encoder plugin (found through the registry below)

    def batches(text, shuffle, n):
        return MLMBatches(encode_text(tokenizer, text), c.batch_size, c.context_length, tokenizer, seed=c.seed,
                          num_batches=n, shuffle=shuffle, prob=c.mask_prob)

    train_batches = batches(train_text, True, c.batches_per_epoch)
    evals = {"train": batches(train_text, False, 4), "val": batches(val_text, False, 4)}

    # Model: the registry's bert, sized by the config, masking [PAD].
    model_cfg = {"vocab_size": tokenizer.n_vocab, "context_length": c.context_length, "emb_dim": c.emb_dim,
                 "n_heads": c.n_heads, "n_layers": c.n_layers, "drop_rate": c.drop_rate, "qkv_bias": True,
                 "pad_token_id": tokenizer.pad_id}
    torch.manual_seed(c.seed)
    model = create("models", "bert", model_cfg)
    cfg = TrainConfig(epochs=c.epochs, max_steps=c.max_steps, lr=c.lr, warmup_steps=20, eval_every=25,
                      eval_batches=4, checkpoint_every=50, sample_tokens=0)
    payload = load_checkpoint(run_dir / "checkpoint.pt") if resume else None
    state = train(model, train_batches, evals, cfg, run_dir=run_dir, resume_from=payload,
                  checkpoint_extra={"model_name": "bert", "model_cfg": model_cfg, "tokenizer_name": c.tokenizer,
                                    "objective": "mlm"})
    history = [r for r in state.history if r["kind"] == "eval"]
    plot_losses(history, run_dir / "loss.png", title=f"Masked-LM pretraining on {c.corpus}")
    samples = {p: fill_mask(model, tokenizer, p) for p in PROMPTS}
    summary = {"parameters": sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()),
               "steps": state.step, "initial_val_loss": history[0]["val_loss"] if history else None,
               "final_val_loss": history[-1]["val_loss"] if history else None, "ln_vocab": math.log(tokenizer.n_vocab),
               "seconds": state.elapsed_s, "samples": samples}
    (run_dir / "report.md").write_text(report(c, summary))
    log(f"mlm: val loss {summary['initial_val_loss']:.3f} -> {summary['final_val_loss']:.3f} "
        f"(ln vocab {summary['ln_vocab']:.2f}), {state.step} steps, {state.elapsed_s:.1f} s")
    return summary


def report(c: MLMConfig, s: dict) -> str:
    lines = ["## Masked-LM pretraining", "",
             f"Encoder `bert` ({c.n_layers} layers, emb {c.emb_dim}, {c.n_heads} heads, {s['parameters']:,} parameters) on "
             f"`{c.corpus}` with `{c.tokenizer}`; {c.mask_prob:.0%} of tokens chosen, 80/10/10 mask/random/keep.", "",
             f"Validation loss (masked tokens only): {s['initial_val_loss']:.3f} -> **{s['final_val_loss']:.3f}** "
             f"after {s['steps']} steps ({s['seconds']:.0f} s); ln(vocab) = {s['ln_vocab']:.2f}.", "",
             "![loss curve](loss.png)", "", "Fill in the blank (top 3):", ""]
    lines += [f"- {prompt} -> {', '.join(repr(t) for t in guesses[0])}" for prompt, guesses in s["samples"].items()
              if guesses]
    return "\n".join(lines) + "\n"

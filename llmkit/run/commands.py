"""The commands beside ``llmkit run``: ``finetune``, ``classify``, ``chat`` and ``generate``.

Each one loads what it needs through ``llmkit.run.artifacts.load`` (the one loader) and, for
``finetune``, hands the pretrained model to the one orchestrator, ``llmkit.run.run``.
"""

from __future__ import annotations

import sys
from functools import partial

import torch

from ..decoding import complete
from ..devices import get_device
from ..errors import LLMKitError
from ..finetune_data import classify
from ..plugins import get
from ..runconfig import RunConfig, run_config_from_dict
from ..tokenizers import encode_text, vocab_size
from . import artifacts, run
from .rundir import default_run_dir
from .stages._common import TASK_STAGES, check_values, make_strategy
from .stages.instruct import respond


def finetune_from(cfg: RunConfig, source, strategy: str, task: str, run_dir=None, overwrite: bool = False):
    """``llmkit finetune``: one strategy, one task, from a pretrained checkpoint, into a new run folder."""
    if task not in TASK_STAGES:
        raise LLMKitError(f"Unknown task {task!r}; choose classification or instruction.")
    if cfg.run.threads > 0:
        torch.set_num_threads(cfg.run.threads)
    get("finetune_strategies", strategy)  # an unknown name fails here, with the closest match
    if task == "classification":
        cfg.finetune.strategies = [strategy]
    else:
        cfg.finetune.instruct_strategy = strategy
    check_values(cfg.finetune)
    make_strategy(cfg.finetune, strategy, task)  # options and task, before loading a large model
    base = artifacts.load_pretrained(source, cfg.model.name)
    # The checkpoint decides the architecture and tokenizer; record them in the saved config.
    if base.run_config:
        cfg.model = run_config_from_dict({"model": base.run_config.get("model", {})}).model
    else:
        m = base.model_cfg
        cfg.model.context_length, cfg.model.emb_dim = m["context_length"], m["emb_dim"]
        cfg.model.n_heads, cfg.model.n_layers = m["n_heads"], m["n_layers"]
        cfg.model.drop_rate, cfg.model.qkv_bias = float(m["drop_rate"]), bool(m["qkv_bias"])
    cfg.model.name = base.model_name
    cfg.tokenizer.name = base.tokenizer_name
    cfg.tokenizer.vocab_size = vocab_size(base.tokenizer)
    cfg.run.stages = [TASK_STAGES[task]]
    run_dir, results = run(cfg, run_dir or default_run_dir("finetune"), overwrite=overwrite, stages=cfg.run.stages,
                           base=base)
    return run_dir, results[0]


def classify_text(text: str, checkpoint, device_name: str = "auto") -> str:
    """``llmkit classify``: "spam" or "not spam" for one message."""
    if not text.strip():
        raise LLMKitError("The text is empty; pass the message to classify, e.g. llmkit classify \"Win a prize!\".")
    device = get_device(device_name, "fp32")
    trained = artifacts.load(checkpoint, device, expect="classification")
    info = trained.finetune
    return classify(text, trained.model, trained.tokenizer, device.torch_device, info["max_length"],
                    info["pad_token_id"])


def chat(checkpoint, lines=None, out=None, device_name: str = "auto", max_new_tokens: int | None = None,
         decoder: str | None = None) -> int:
    """``llmkit chat``: answer each input line as an instruction until EOF or ``exit``; returns the count."""
    lines = sys.stdin if lines is None else lines
    out = out or sys.stdout
    device = get_device(device_name, "fp32")
    trained = artifacts.load(checkpoint, device, expect="instruction")
    info = trained.finetune
    limit = max_new_tokens or info.get("max_new_tokens", 64)
    interactive = lines is sys.stdin and sys.stdin.isatty()
    read = lines.readline if hasattr(lines, "readline") else partial(next, iter(lines), "")
    answered = 0
    while True:
        if interactive:
            print("you> ", end="", file=out, flush=True)
        line = read()
        if not line:  # EOF
            break
        text = line.strip()
        if text.lower() in ("exit", "quit"):
            break
        if not text:
            continue
        answer = respond(trained.model, trained.tokenizer, {"instruction": text, "input": ""}, device, limit,
                         info["pad_token_id"], decoder)
        print(answer, file=out, flush=True)
        answered += 1
    return answered


def generate_text(checkpoint, prompt: str, max_new_tokens: int = 60, temperature: float = 0.8, top_k: int | None = 40,
                  seed: int = 123, device_name: str = "auto", decoder: str | None = None) -> str:
    """``llmkit generate``: the prompt and its continuation, from a run's checkpoint."""
    device = get_device(device_name, "fp32")
    trained = artifacts.load(checkpoint, device, expect="text")
    if not encode_text(trained.tokenizer, prompt):
        raise LLMKitError("The prompt is empty; give some text with --prompt.")
    torch.manual_seed(seed)
    return complete(trained.model, trained.tokenizer, prompt, max_new_tokens, device.torch_device, decoder,
                    temperature=temperature, top_k=top_k or None)

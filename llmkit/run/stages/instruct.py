"""The ``instruct`` stage: instruction-tune a copy of the pretrained model, score answers before and after.

One strategy (``finetune.instruct_strategy``, ``full`` or ``lora``) trains on the Alpaca-style set
(the book's 85/10/5 split, in file order). The held-out entries are answered greedily before and
after, and scored by exact and normalised match. ``RUN_DIR/instruct/<strategy>.pt`` rebuilds the
tuned model for ``llmkit chat``.
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

import torch

from ...data import load_instruction_json
from ...decoding import complete_ids
from ...devices import Device
from ...errors import LLMKitError
from ...evaluation import finetune, lm_step, plot_epochs
from ...finetune_data import (RESPONSE_HEADER, InstructionTexts, alpaca_prompt, collate_instructions,
                              extract_response, score_responses, split_instructions)
from ...io import atomic_write_text
from ...runconfig import RunConfig
from ...tokenizers import encode_text
from .. import artifacts
from ..rundir import StageResult, stage_dir
from ._common import check_fit, check_values, fresh_copy, loader, make_strategy, pad_token_id, training

NAME = "instruct"
TASK = "instruction"


def check(cfg: RunConfig, model_cfg: dict | None = None) -> None:
    check_values(cfg.finetune)
    load_instruction_json(cfg.finetune.instructions_path or None)
    check_fit(cfg, [cfg.finetune.instruct_strategy], TASK, model_cfg)


def respond(model, tokenizer, entry: dict, device, max_new_tokens: int, eos_id: int, decoder: str | None = None) -> str:
    """The model's answer to one entry: the prompt ends with the response header; decoding stops at eos."""
    ids = encode_text(tokenizer, alpaca_prompt(entry) + RESPONSE_HEADER)
    new = complete_ids(model, ids, max_new_tokens, getattr(device, "torch_device", device), decoder, eos_id=eos_id)
    return extract_response(tokenizer.decode(new))


def respond_all(model, tokenizer, entries, device, max_new_tokens: int, eos_id: int,
                decoder: str | None = None) -> list[str]:
    """Greedy answers to every entry (the model's training mode is left as it was)."""
    return [respond(model, tokenizer, e, device, max_new_tokens, eos_id, decoder) for e in entries]


def run(cfg: RunConfig, run_dir: Path, device: Device, base: artifacts.Trained) -> StageResult:
    """Instruction-tune a copy of ``base.model``; score held-out answers before and after."""
    f, seed = cfg.finetune, cfg.run.seed
    check_values(f)
    folder = stage_dir(run_dir, NAME, device)

    # 1. Data: the split, tokenized; batches padded with the end token, prompts masked when asked.
    tokenizer, eos = base.tokenizer, pad_token_id(base.tokenizer)
    context = base.model_cfg["context_length"]
    data = load_instruction_json(f.instructions_path or None)
    train, test, val = split_instructions(data)  # the book's 85/10/5, in file order
    if f.max_train_examples:
        train = train[: f.max_train_examples]
    if f.max_eval_examples:
        test = test[: f.max_eval_examples]
    if not train or not val or not test:
        raise LLMKitError(f"{len(data)} instruction entries leave an empty split (85/10/5); use at least 20 entries.")
    collate = partial(collate_instructions, pad_id=eos, max_length=context, mask_prompt=f.mask_prompt)
    train_set = InstructionTexts(train, tokenizer)
    train_loader = loader(train_set, f.batch_size, True, seed, collate)
    val_loader = loader(InstructionTexts(val, tokenizer), f.batch_size, False, seed, collate)
    too_long = sum(len(ids) >= context for _, ids in train_set)

    # 2. The strategy on a fresh copy; answers before training.
    torch.manual_seed(seed)
    strategy = make_strategy(f, f.instruct_strategy, TASK, eos)
    epochs, lr = training(strategy, f.instruct_epochs, f.instruct_lr)
    tuned = strategy.prepare(fresh_copy(base.model), TASK).to(device.torch_device)
    described = strategy.describe(tuned)
    answer = partial(respond_all, tokenizer=tokenizer, entries=test, device=device, max_new_tokens=f.max_new_tokens,
                     eos_id=eos, decoder=cfg.generate.decoder)
    generation_started = time.perf_counter()
    before = answer(tuned)
    seconds_generating = time.perf_counter() - generation_started

    # 3. Train, keep the best validation epoch; answers after.
    name = f.instruct_strategy
    path = folder / f"{name}.pt"
    extra = artifacts.checkpoint_fields(base, cfg.to_dict(), task=TASK, strategy=name,
                                        options=dict(strategy.config), pad_token_id=eos,
                                        max_new_tokens=f.max_new_tokens)
    result = finetune(tuned, train_loader, val_loader, lm_step, epochs=epochs, lr=lr,
                      weight_decay=cfg.train.weight_decay, grad_clip=cfg.train.grad_clip, patience=f.patience,
                      device=device, metrics_path=folder / "metrics.jsonl", label=name, checkpoint_path=path,
                      checkpoint_extra=extra)
    generation_started = time.perf_counter()
    after = answer(tuned)
    seconds_generating += time.perf_counter() - generation_started
    scores = {"before": score_responses(test, before), "after": score_responses(test, after)}

    # 4. Figures and the answers themselves.
    summary = {"strategy": name,
               "exact_match_before": round(scores["before"]["exact_match"], 4),
               "exact_match_after": round(scores["after"]["exact_match"], 4),
               "normalised_match_before": round(scores["before"]["normalised_match"], 4),
               "normalised_match_after": round(scores["after"]["normalised_match"], 4),
               "seconds": round(result.seconds + seconds_generating, 1),
               "details": {"trainable": described["trainable"], "total": described["total"], "train": len(train),
                           "val": len(val), "test": len(test), "truncated_train": too_long,
                           "epochs": len(result.history), "best_epoch": result.best_epoch,
                           "best_val_loss": result.best_val_loss, "train_seconds": round(result.seconds, 1),
                           "generation_seconds": round(seconds_generating, 1), "mask_prompt": f.mask_prompt,
                           "checkpoint": str(path)}}
    markdown = ""
    if device.is_main:
        answers = [{**entry, "before": b, "after": a} for entry, b, a in zip(test, before, after)]
        atomic_write_text(folder / "responses.json", json.dumps(answers, indent=1, ensure_ascii=False))
        plot_epochs({name: result.history}, folder / "curves.png", "Instruction tuning: per-epoch loss")
        markdown = report(summary, answers[: f.samples])
    return StageResult(NAME, summary, markdown)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or "(empty)"


def report(s: dict, samples: list) -> str:
    d = s["details"]

    def pct(v):
        return f"{100 * v:.1f}%"

    lines = ["## Fine-tuning: instructions", "",
             f"Strategy `{s['strategy']}` ({d['trainable']:,} of {d['total']:,} parameters trainable), "
             f"{d['epochs']} epoch(s) (best {d['best_epoch']}) on {d['train']} entries "
             f"({d['truncated_train']} cut to the context), prompt tokens "
             f"{'masked' if d['mask_prompt'] else 'in the loss'}; "
             f"{d['train_seconds']:.1f} s training, {d['generation_seconds']:.1f} s generating. "
             f"Scored on {d['test']} held-out entries with greedy decoding.", "",
             "| | before | after |", "|---|---:|---:|",
             f"| exact match | {pct(s['exact_match_before'])} | **{pct(s['exact_match_after'])}** |",
             f"| normalised match | {pct(s['normalised_match_before'])} | **{pct(s['normalised_match_after'])}** |",
             "", "| instruction | input | expected | before | after |", "|---|---|---|---|---|"]
    for a in samples:
        lines.append(f"| {_cell(a['instruction'])} | {_cell(a['input'])} | {_cell(a['output'])} | "
                     f"{_cell(a['before'])} | {_cell(a['after'])} |")
    lines += ["", "All answers: [instruct/responses.json](instruct/responses.json); curves: "
              "[instruct/curves.png](instruct/curves.png)."]
    return "\n".join(lines)

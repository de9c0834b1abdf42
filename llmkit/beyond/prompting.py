"""Prompting, the third way to build an application: zero- and few-shot templates beside instruction tuning.

    llmkit prompt eval --checkpoint runs/X/checkpoint.pt --instruct runs/X/instruct/full.pt

Every template is scored on the held-out test split of the shipped instruction set (the instruct
stage's split), by exact and normalised match, greedy decoding up to a new line or the end token:

    zero-shot (Alpaca)     the prompt the instruct stage trains on, with nothing before it
    zero-shot (plain)      "Instruction: ... Input: ... Answer:"
    few-shot, k random     k solved training entries, then the question, all in the plain template
    few-shot, k similar    the k training entries whose instructions share most words with the question
                           (often the same task type: the examples show the format *and* the task)

on the pretrained model and, when given, on the instruction-tuned one: one table, three ways.
"""

from __future__ import annotations

import random
import re

from ..decoding import complete_ids
from ..finetune_data import RESPONSE_HEADER, alpaca_prompt, extract_response, score_responses, split_instructions
from ..run import artifacts
from ..tokenizers import encode_text

PLAIN = "Instruction: {instruction}\n{input}Answer:"


def plain(entry: dict, with_answer: bool = False) -> str:
    text = PLAIN.format(instruction=entry["instruction"], input=f"Input: {entry['input']}\n" if entry.get("input") else "")
    return text + (f" {entry['output']}\n\n" if with_answer else "")


def _words(entry: dict) -> set:
    return set(re.findall(r"[a-z]+", (entry["instruction"] + " " + entry.get("input", "")).lower()))


def shots(entry: dict, pool: list, k: int, how: str, seed: int = 123) -> list:
    """``k`` solved examples for ``entry``: ``random`` (seeded by the entry) or most ``similar`` by shared words."""
    if how == "random":
        return random.Random(f"{seed}:{entry['instruction']}").sample(pool, k)
    words = _words(entry)
    return sorted(pool, key=lambda e: (-len(words & _words(e)) / (len(words | _words(e)) or 1), e["instruction"]))[:k]


def template(name: str, entry: dict, pool: list, k: int) -> str:
    if name == "zero-shot (Alpaca)":
        return alpaca_prompt(entry) + RESPONSE_HEADER
    if name == "zero-shot (plain)":
        return plain(entry)
    how = "random" if "random" in name else "similar"
    return "".join(plain(e, with_answer=True) for e in shots(entry, pool, k, how)) + plain(entry)


def answer(trained, text: str, max_new_tokens: int, eos_id: int | None, device="cpu") -> str:
    ids = encode_text(trained.tokenizer, text)
    room = trained.model_cfg["context_length"] - max_new_tokens
    new = complete_ids(trained.model, ids[-room:], max_new_tokens, device, eos_id=eos_id)
    return extract_response(trained.tokenizer.decode(new).split("\n")[0])


def evaluate_prompts(checkpoint, instruct=None, k: int = 3, max_eval: int = 0, max_new_tokens: int = 16,
                     log=print) -> list[dict]:
    """Rows of (model, template, exact match, normalised match) on the instruction test split."""
    from ..data import load_instruction_json

    train, test, _ = split_instructions(load_instruction_json(None))
    test = test[:max_eval] if max_eval else test
    names = ["zero-shot (Alpaca)", "zero-shot (plain)", f"few-shot, {k} random", f"few-shot, {k} similar"]
    models = [("pretrained", artifacts.load(checkpoint, expect="pretrained"))]
    if instruct:
        models.append(("instruction-tuned", artifacts.load(instruct, expect="instruction")))
    rows = []
    for label, trained in models:
        eos = encode_text(trained.tokenizer, "<|endoftext|>")
        eos = eos[0] if len(eos) == 1 else None
        for name in names:
            responses = [answer(trained, template(name, e, train, k), max_new_tokens, eos) for e in test]
            score = score_responses(test, responses)
            rows.append({"model": label, "template": name, **score, "example": (test[0]["instruction"], responses[0])})
            log(f"{label:<18} {name:<22} exact {score['exact_match']:.3f}  normalised {score['normalised_match']:.3f}")
    return rows


def report(rows: list[dict]) -> str:
    n = rows[0]["n"] if rows else 0
    lines = ["## Prompting beside instruction tuning", "",
             f"{n} held-out entries of the shipped instruction set (the instruct stage's test split), greedy answers "
             "cut at the first new line.", "",
             "| model | prompt | exact match | normalised match |", "|---|---|---:|---:|"]
    lines += [f"| {r['model']} | {r['template']} | **{100 * r['exact_match']:.1f}%** | {100 * r['normalised_match']:.1f}% |"
              for r in rows]
    return "\n".join(lines) + "\n"

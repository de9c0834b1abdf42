"""The RAG generator and the RAG report: a small GPT that answers from a passage, and how much retrieval helps.

The reader is the kit's ``gpt`` trained with the kit's trainer on (passage, question, answer) triples
about villages that are *not* in the knowledge base (``island.reader_examples``): it learns to read
the passage in its prompt, not to remember the island. The loss sees only the answer and the end
token (prompt targets are -100). ``evaluate`` then asks the shipped questions three ways: with the
top-k retrieved passages, with the gold passage (the reader's ceiling), and closed book (no passage).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint
from ..errors import LLMKitError
from ..finetune_data import normalise
from ..plugins import create, get
from ..tokenizers import build_tokenizer, encode_text
from ..training import TrainConfig, train
from .island import knowledge_base, reader_examples
from .rag import Retriever, prompt

IGNORE = -100
KNOWLEDGE = "knowledge"


@dataclass
class ReaderConfig:
    villages: int = 400  # training villages (6 questions each)
    vocab_size: int = 1024
    context_length: int = 192
    emb_dim: int = 128
    n_heads: int = 4
    n_layers: int = 2
    batch_size: int = 16
    steps: int = 600
    lr: float = 2e-3
    seed: int = 123


def knowledge_dir() -> Path:
    return Path(str(resources.files("llmkit") / "data" / KNOWLEDGE))


def _sequence(tokenizer, eos: int, example: dict) -> tuple[list[int], int]:
    ids = encode_text(tokenizer, prompt(example["question"], [{"text": example["passage"]}]))
    return ids + encode_text(tokenizer, " " + example["answer"]) + [eos], len(ids)


class ReaderBatches:
    """Random batches of (inputs, targets), answer-only targets; ``generator`` lets the trainer resume exactly."""

    def __init__(self, sequences: list, batch_size: int, num_batches: int, seed: int, eos: int, shuffle: bool = True):
        self.sequences, self.batch_size, self.num_batches, self.eos = sequences, batch_size, num_batches, eos
        self.shuffle, self.seed = shuffle, seed
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        if not self.shuffle:
            self.generator.manual_seed(self.seed)
        for _ in range(self.num_batches):
            picks = torch.randint(len(self.sequences), (self.batch_size,), generator=self.generator).tolist()
            rows = [self.sequences[i] for i in picks]
            longest = max(len(ids) for ids, _ in rows) - 1
            inputs = torch.full((len(rows), longest), self.eos)
            targets = torch.full((len(rows), longest), IGNORE)
            for r, (ids, prompt_len) in enumerate(rows):
                seq = torch.tensor(ids)
                inputs[r, : len(ids) - 1] = seq[:-1]
                targets[r, prompt_len - 1 : len(ids) - 1] = seq[prompt_len:]  # the answer and the end token
            yield inputs, targets  # (B, T) each


def train_reader(c: ReaderConfig, out_dir, log=print) -> Path:
    """Train the reader into ``out_dir/reader``; returns the checkpoint path."""
    kb_docs, _ = knowledge_base()
    examples = reader_examples(c.seed, c.villages, avoid=set(kb_docs))
    text = "\n".join(prompt(e["question"], [{"text": e["passage"]}]) + " " + e["answer"] for e in examples)
    tokenizer = build_tokenizer("bpe", text + "\n" + "\n".join(kb_docs.values()), vocab_size=c.vocab_size)
    eos = encode_text(tokenizer, "<|endoftext|>")[0]
    sequences = [_sequence(tokenizer, eos, e) for e in examples]
    too_long = max(len(s) for s, _ in sequences)
    if too_long > c.context_length + 1:
        raise LLMKitError(f"reader examples reach {too_long} tokens; raise context_length above that.")
    held_out = len(sequences) // 20
    train_batches = ReaderBatches(sequences[held_out:], c.batch_size, c.steps, c.seed, eos)
    val = ReaderBatches(sequences[:held_out], c.batch_size, 4, c.seed, eos, shuffle=False)
    model_cfg = {"vocab_size": tokenizer.n_vocab, "context_length": c.context_length, "emb_dim": c.emb_dim,
                 "n_heads": c.n_heads, "n_layers": c.n_layers, "drop_rate": 0.0, "qkv_bias": False}
    torch.manual_seed(c.seed)
    model = create("models", "gpt", model_cfg)
    run_dir = Path(out_dir) / "reader"
    run_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(run_dir / "tokenizer.json")
    (run_dir / "config.json").write_text(json.dumps(asdict(c), indent=1))
    state = train(model, train_batches, {"val": val}, TrainConfig(epochs=1, max_steps=c.steps, lr=c.lr, warmup_steps=50,
                  eval_every=250, eval_batches=4, checkpoint_every=500, sample_tokens=0), run_dir=run_dir,
                  checkpoint_extra={"model_name": "gpt", "model_cfg": model_cfg, "tokenizer_name": "bpe"})
    log(f"reader: {state.step} steps in {state.elapsed_s:.0f} s, held-out answer loss "
        f"{state.history[-1]['val_loss']:.3f}")
    return run_dir / "checkpoint.pt"


class Reader:
    """A trained reader: ``answer(question, passages)`` greedily, up to the end token or a new line."""

    def __init__(self, reader_dir, decoder: str = "kv-cache"):
        reader_dir = Path(reader_dir)
        if not (reader_dir / "checkpoint.pt").is_file():
            raise LLMKitError(f"{reader_dir} has no reader checkpoint; train one with llmkit rag train-reader.")
        payload = load_checkpoint(reader_dir / "checkpoint.pt")
        self.tokenizer = get("tokenizers", payload["tokenizer_name"]).factory.load(reader_dir / "tokenizer.json")
        self.model = create("models", payload["model_name"], payload["model_cfg"])
        self.model.load_state_dict(payload["model"])
        self.model.eval()
        self.eos = encode_text(self.tokenizer, "<|endoftext|>")[0]
        self.decode = get("decoders", decoder).factory

    @torch.no_grad()
    def answer(self, question: str, passages: list[dict] | None, max_new_tokens: int = 16) -> str:
        context = self.model.context_length
        ids = encode_text(self.tokenizer, prompt(question, passages))[-(context - max_new_tokens):]
        out = self.decode(self.model, torch.tensor([ids]), max_new_tokens, context, eos_id=self.eos)
        return self.tokenizer.decode(out[0, len(ids):].tolist()).split("\n")[0].replace("<|endoftext|>", "").strip()


def evaluate(index_dir, reader_dir, ks=(1, 3, 5), answer_k: int = 1, log=print) -> dict:
    """Recall@k of the retriever and exact match of the reader with / without retrieval, on the shipped questions."""
    questions = json.loads((knowledge_dir() / "questions.json").read_text())
    retriever = Retriever(index_dir)
    started = time.perf_counter()
    hits = retriever.search([q["question"] for q in questions], k=max(ks))
    recall = {k: sum(any(Path(p["source"]).stem == q["doc"].lower() for p in h[:k]) for q, h in zip(questions, hits))
              / len(questions) for k in ks}
    reader = Reader(Path(reader_dir))
    docs = {Path(p["source"]).stem: p for p in retriever.passages}
    settings = {"closed book (no retrieval)": lambda q, h: None, f"retrieved top-{answer_k}": lambda q, h: h[:answer_k],
                "gold passage (ceiling)": lambda q, h: [docs[q["doc"].lower()]]}
    scores, examples = {}, []
    for label, context in settings.items():
        answers = [reader.answer(q["question"], context(q, h)) for q, h in zip(questions, hits)]
        scores[label] = {"exact_match": sum(a == q["answer"] for a, q in zip(answers, questions)) / len(questions),
                         "normalised_match": sum(normalise(a) == normalise(q["answer"])
                                                 for a, q in zip(answers, questions)) / len(questions)}
        examples.append((label, questions[0]["question"], answers[0], questions[0]["answer"]))
        log(f"{label}: exact match {scores[label]['exact_match']:.3f}")
    return {"questions": len(questions), "passages": len(retriever.passages), "embedder": retriever.meta["embedder"],
            "recall": recall, "answers": scores, "examples": examples, "seconds": time.perf_counter() - started}


def report(result: dict) -> str:
    lines = ["## Retrieval-augmented generation", "",
             f"{result['questions']} questions on the Isle of Marrow knowledge base ({result['passages']} passages, "
             f"embedder `{result['embedder']}`, FAISS exact inner-product index).", "",
             "| retrieval | " + " | ".join(f"recall@{k}" for k in result["recall"]) + " |",
             "|---|" + "---:|" * len(result["recall"]),
             "| " + result["embedder"] + " | " + " | ".join(f"{100 * v:.1f}%" for v in result["recall"].values()) + " |",
             "", "| reader's context | exact match | normalised match |", "|---|---:|---:|"]
    for label, s in result["answers"].items():
        lines.append(f"| {label} | **{100 * s['exact_match']:.1f}%** | {100 * s['normalised_match']:.1f}% |")
    lines += ["", "First question, each way:", ""]
    lines += [f"- {label}: {q!r} -> {a!r} (expected {gold!r})" for label, q, a, gold in result["examples"]]
    return "\n".join(lines) + "\n"

"""Retrieval-augmented generation: embed a folder into a FAISS index, retrieve top-k, answer from a prompt.

    llmkit rag index llmkit/data/knowledge/docs --out runs/rag          # chunks -> embeddings -> index.faiss
    llmkit rag train-reader --out runs/rag                              # a small GPT that answers from a passage
    llmkit rag ask "In which year was Drethorpe founded?" --out runs/rag
    llmkit rag eval --out runs/rag                                      # recall@k, exact match with/without retrieval

Embeddings are an encoder's mean-pooled, L2-normalised final states (``llmkit_encoder.embed``): the
shipped all-MiniLM-L6-v2 by default, any BERT folder, or the kit's own MLM-pretrained encoder (a run
folder of ``llmkit mlm pretrain``). The index is FAISS's exact inner-product index, so a query's
scores are cosine similarities; ``brute_force_top_k`` computes the same with one matmul, which the
tests use to check the index. The generator is any kit language model; ``reader.py`` trains the one
the report uses, on villages the knowledge base does not contain.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from ..errors import LLMKitError
from ..plugins import create, get

PROMPT = "Context: {context}\nQuestion: {question}\nAnswer:"
CLOSED_BOOK = "Question: {question}\nAnswer:"


# --------------------------------------------------------------------------- chunks


def chunk(text: str, max_words: int = 80) -> list[str]:
    """Paragraphs of ``text`` packed into passages of at most ``max_words`` words (sentences kept whole);
    a ``# Title`` line is repeated at the top of each of its passages."""
    title, body = "", text.strip()
    if body.startswith("#"):
        title, _, body = body.partition("\n")
        title = title.lstrip("# ").strip()
    sentences = [s for p in re.split(r"\n\s*\n", body) for s in re.split(r"(?<=[.!?])\s+", p.strip()) if s]
    passages, current = [], []
    for sentence in sentences:
        if current and len(" ".join(current + [sentence]).split()) > max_words:
            passages.append(" ".join(current))
            current = []
        current.append(sentence)
    if current:
        passages.append(" ".join(current))
    return [f"{title}. {p}" if title else p for p in passages]


def read_folder(folder) -> list[dict]:
    """Every .md/.txt file under ``folder`` as passages: [{"source": file, "text": passage}]."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".md", ".txt") and p.is_file())
    if not files:
        raise LLMKitError(f"{folder} has no .md or .txt files to index; point at a folder of documents.")
    return [{"source": str(p.relative_to(folder)), "text": passage}
            for p in files for passage in chunk(p.read_text(encoding="utf-8"))]


# --------------------------------------------------------------------------- embeddings


class Embedder:
    """Text -> (N, E) float32 unit vectors, from the shipped MiniLM, a BERT folder or an MLM run folder."""

    def __init__(self, source: str = "minilm"):
        get("models", "bert")  # the encoder plugin must be loaded; says so in one line otherwise
        import llmkit_encoder

        self.source = source
        path = Path(source)
        if (path / "checkpoint.pt").is_file() and (path / "tokenizer.json").is_file():  # llmkit mlm pretrain
            from ..checkpoint import load_checkpoint

            payload = load_checkpoint(path / "checkpoint.pt")
            self.tokenizer = get("tokenizers", payload["tokenizer_name"]).factory.load(path / "tokenizer.json")
            self.model = create("models", "bert", payload["model_cfg"])
            self.model.load_state_dict(payload["model"])
        else:
            self.model, _, self.tokenizer = llmkit_encoder.load_bert(llmkit_encoder.resolve(source))
        self.model.eval()
        self._embed = llmkit_encoder.embed

    def __call__(self, texts: list[str]) -> np.ndarray:
        max_length = min(256, self.model.context_length)
        return self._embed(self.model, self.tokenizer, texts, max_length=max_length).numpy().astype("float32")


def brute_force_top_k(vectors: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine top-k without an index: (scores (Q, k), ids (Q, k)) for unit vectors (N, E) and queries (Q, E)."""
    scores = query @ vectors.T  # (Q, N)
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, ids, axis=1), ids


# --------------------------------------------------------------------------- the index


def _faiss():
    try:
        import faiss
    except ImportError:
        raise LLMKitError('llmkit rag needs FAISS: pip install "llmkit[rag]" (faiss-cpu).') from None
    return faiss


def build_index(folder, out_dir, embedder: str = "minilm") -> dict:
    """Chunk and embed ``folder`` into ``out_dir`` (index.faiss, passages.json, meta.json)."""
    faiss = _faiss()
    passages = read_folder(folder)
    embed = Embedder(embedder)
    vectors = embed([p["text"] for p in passages])  # (N, E)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(out / "index.faiss"))
    (out / "passages.json").write_text(json.dumps(passages, indent=1, ensure_ascii=False))
    meta = {"embedder": embedder, "dim": int(vectors.shape[1]), "passages": len(passages), "folder": str(folder)}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


class Retriever:
    """A built index, searched with the embedder it was built with."""

    def __init__(self, index_dir):
        index_dir = Path(index_dir)
        if not (index_dir / "index.faiss").is_file():
            raise LLMKitError(f"{index_dir} has no index.faiss; build one with llmkit rag index DIR --out {index_dir}.")
        self.index = _faiss().read_index(str(index_dir / "index.faiss"))
        self.passages = json.loads((index_dir / "passages.json").read_text())
        self.meta = json.loads((index_dir / "meta.json").read_text())
        self.embed = Embedder(self.meta["embedder"])

    def search(self, questions: list[str], k: int = 3) -> list[list[dict]]:
        scores, ids = self.index.search(self.embed(questions), k)  # (Q, k) each
        return [[{**self.passages[i], "score": float(s)} for s, i in zip(row_s, row_i) if i >= 0]
                for row_s, row_i in zip(scores, ids)]


def prompt(question: str, passages: list[dict] | None) -> str:
    """The prompt template: the retrieved passages as context, or the question alone (closed book)."""
    if not passages:
        return CLOSED_BOOK.format(question=question)
    return PROMPT.format(context=" ".join(p["text"] for p in passages), question=question)

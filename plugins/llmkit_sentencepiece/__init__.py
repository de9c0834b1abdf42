"""First-party plugin: a SentencePiece tokenizer (BPE or unigram) trained in memory on a text.

SentencePiece is what Llama, T5 and many later models use. This wrapper trains it offline with no
files, and configures it so that ``decode(encode(text)) == text`` for any text: no normalization,
no dummy prefix, whitespace kept as is, and byte fallback for characters never seen in training.
Registered as tokenizer ``"sentencepiece"``.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

import sentencepiece as spm

from llmkit.errors import LLMKitError
from llmkit.io import atomic_write_bytes
from llmkit.hookspecs import hookimpl

DEFAULT_SPECIALS = ("<|endoftext|>",)
MODEL_TYPES = ("bpe", "unigram")
# SentencePiece skips training sentences longer than this many bytes, so long lines are cut first.
MAX_SENTENCE_BYTES = 4096


class SentencePieceTokenizer:
    """SentencePiece trained on a text: ``SentencePieceTokenizer.from_text(text, vocab_size=1000)``."""

    def __init__(self, model_proto: bytes) -> None:
        processor = spm.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(model_proto)
        except Exception:
            raise LLMKitError(
                "These bytes are not a SentencePiece model; load a file written by SentencePieceTokenizer.save."
            ) from None
        self._sp = processor
        self.model_proto = bytes(model_proto)
        self.n_vocab: int = processor.get_piece_size()

    @classmethod
    def from_text(cls, text: str, vocab_size: int = 1000, model_type: str = "bpe",
                  special_tokens: Iterable[str] = DEFAULT_SPECIALS) -> "SentencePieceTokenizer":
        if not isinstance(text, str) or not text.strip():
            raise LLMKitError("Cannot train SentencePiece on empty text; pass a non-empty training text.")
        if model_type not in MODEL_TYPES:
            raise LLMKitError(f"model_type={model_type!r} is not supported; pass one of {', '.join(MODEL_TYPES)}.")
        specials = [special_tokens] if isinstance(special_tokens, str) else list(special_tokens or ())
        if any(not isinstance(s, str) or not s for s in specials):
            raise LLMKitError("special_tokens must be non-empty strings, e.g. ('<|endoftext|>',).")
        if not isinstance(vocab_size, int) or vocab_size < 1:
            raise LLMKitError(f"vocab_size={vocab_size!r} is not valid; pass a positive int such as 1000.")

        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=_sentences(text),
                model_writer=model,
                vocab_size=vocab_size,
                model_type=model_type,
                user_defined_symbols=specials,  # always matched whole, so each is one id
                # Lossless: keep text exactly as given and fall back to bytes for unseen characters.
                byte_fallback=True,
                character_coverage=1.0,
                normalization_rule_name="identity",
                add_dummy_prefix=False,
                remove_extra_whitespaces=False,
                allow_whitespace_only_pieces=True,
                split_digits=False,
                max_sentence_length=MAX_SENTENCE_BYTES,
                # Only <unk> is needed; the kit adds its own <|endoftext|> rather than BOS/EOS ids.
                bos_id=-1,
                eos_id=-1,
                pad_id=-1,
                num_threads=max(1, min(os.cpu_count() or 1, 8)),
                minloglevel=2,  # SentencePiece's own log lines would drown a notebook
            )
        except RuntimeError as exc:
            raise _training_error(str(exc), vocab_size) from None
        return cls(model.getvalue())

    def encode(self, text: str) -> list[int]:
        return self._sp.encode(text, out_type=int) if text else []

    def decode(self, ids: Iterable[int]) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else [int(i) for i in ids]
        bad = next((i for i in ids if not 0 <= i < self.n_vocab), None)
        if bad is not None:
            raise LLMKitError(
                f"Cannot decode id {bad}: ids must lie in [0, {self.n_vocab}); decode only ids this tokenizer produced."
            )
        return self._sp.decode(ids)

    def save(self, path: str | os.PathLike) -> None:
        """Write the model proto bytes; atomic (temp file + rename), so a file is never half-written."""
        path = Path(path)
        atomic_write_bytes(path, self.model_proto)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SentencePieceTokenizer":
        path = Path(path)
        if not path.is_file():
            raise LLMKitError(
                f"No SentencePiece model at {path}; check the path or save one with tokenizer.save(path)."
            )
        return cls(path.read_bytes())

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer(n_vocab={self.n_vocab})"


def _sentences(text: str) -> Iterator[str]:
    """Lines of the text, long ones cut at a space so SentencePiece does not drop them."""
    for line in text.splitlines():
        while len(line.encode("utf-8")) > MAX_SENTENCE_BYTES:
            # Characters are at most 4 bytes, so this many always fit.
            cut = line.rfind(" ", 1, MAX_SENTENCE_BYTES // 4)
            cut = cut if cut > 0 else MAX_SENTENCE_BYTES // 4
            yield line[:cut]
            line = line[cut:]
        if line:
            yield line


def _training_error(message: str, vocab_size: int) -> LLMKitError:
    """Turn SentencePiece's internal error into one line that names the fix."""
    too_high = re.search(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", message)
    if too_high:
        return LLMKitError(
            f"vocab_size={vocab_size} is more than this text supports for SentencePiece; "
            f"pass vocab_size <= {too_high.group(2)} or train on more text."
        )
    too_low = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", message)
    if too_low:
        return LLMKitError(
            f"vocab_size={vocab_size} is too small for SentencePiece with byte fallback on this text "
            f"(256 bytes + its characters + special tokens); pass vocab_size >= {too_low.group(2)}."
        )
    detail = message.strip().splitlines()[-1] if message.strip() else "unknown error"
    return LLMKitError(
        f"SentencePiece training failed ({detail}); try a smaller vocab_size or a longer training text."
    )


@hookimpl
def register_tokenizers(register):
    register("sentencepiece", SentencePieceTokenizer)

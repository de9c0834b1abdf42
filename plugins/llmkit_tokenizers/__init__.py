"""The kit's tokenizers: GPT-2's own BPE (offline), a byte-level BPE trained on your corpus, characters.

    gpt2  GPT-2's 50,257-token BPE through tiktoken, built from local files (``llmkit.gpt2_bpe``)
    bpe   byte-level BPE trained on the run's corpus (``BPETokenizer.from_text(text, vocab_size=1024)``)
    char  one id per character (``CharTokenizer.from_text(text)``)

Each one saves itself (``save(path)`` / ``load(path)``), which is how a checkpoint carries its
tokenizer. The book's word-level tokenizers are the reference solutions' (``simple-v1``, ``simple-v2``).
"""

from llmkit.gpt2_bpe import GPT2Tokenizer
from llmkit.hookspecs import hookimpl

from .bpe import BPETokenizer
from .char import CharTokenizer

__all__ = ["BPETokenizer", "CharTokenizer", "GPT2Tokenizer"]


@hookimpl
def register_tokenizers(register):
    register("gpt2", GPT2Tokenizer)
    register("bpe", BPETokenizer)
    register("char", CharTokenizer)

"""Registers the reference solutions with llmkit, exactly as a third-party plugin would."""

from llmkit.gpt2_bpe import GPT2Tokenizer
from llmkit.hookspecs import hookimpl

from .attention import MultiHeadAttention
from .bpe import BPETokenizer
from .data_sampling import random_block_loader, sliding_window_loader
from .gpt import GPTModel
from .tokenization import CharTokenizer, SimpleTokenizerV1, SimpleTokenizerV2


@hookimpl
def register_tokenizers(register):
    register("gpt2", GPT2Tokenizer)
    register("bpe", BPETokenizer)
    register("char", CharTokenizer)
    register("simple-v1", SimpleTokenizerV1)
    register("simple-v2", SimpleTokenizerV2)


@hookimpl
def register_samplers(register):
    register("sliding-window", sliding_window_loader)
    register("random-block", random_block_loader)


@hookimpl
def register_attention(register):
    register("mha", MultiHeadAttention)


@hookimpl
def register_models(register):
    register("gpt", GPTModel)

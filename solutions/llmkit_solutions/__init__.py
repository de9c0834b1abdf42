"""Reference solutions for the llmkit course, one module per stage, with the book's names.

    stage 1  tokenization.py    SimpleTokenizerV1/V2, CharTokenizer      (bpe.py: BPE from scratch)
    stage 2  data_sampling.py   GPTDatasetV1, create_dataloader_v1, RandomBlockSampler
    stage 3  embeddings.py      token + absolute position embeddings
    stage 4  attention.py       SelfAttention_v1/v2, CausalAttention, MultiHeadAttention(Wrapper)
    stage 5  gpt.py             LayerNorm, GELU, FeedForward, TransformerBlock, GPTModel, generation

``plugin.py`` registers them with llmkit's registry, like any other plugin.
"""

"""First-party plugin: the production GPT, registered as model ``"gpt"``.

``GPT(cfg)`` takes the book's cfg dict and has the book's ``GPTModel`` state-dict keys, shapes and
construction order, so the same seed gives the same weights, GPT-2 and reference checkpoints load
unchanged, and the book's ``generate`` runs it. It is computed the fast way (fused kernels, sdpa,
one QKV matmul, a chunked linear + cross-entropy loss, optional weight tying, no graph breaks under
``torch.compile``). ``generate`` here decodes with a preallocated KV cache, batched prompts of
different lengths, optional bf16, int8 weight-only or dynamic int8 copies of the model, and
speculative decoding with such a copy guessing ahead (decoder ``speculative``).

    from llmkit_gpt import GPT, configure_optimizer, generate
    model = GPT(cfg)                          # cfg: the book's dict (+ tie_weights, loss_chunk_rows)
    loss = model(inputs, targets=targets)     # the mean loss, no full logits
    out = generate(model.eval(), idx, 50)     # greedy, same ids as the book's generate
"""

from llmkit.hookspecs import hookimpl

from .generate import StaticKVCache, generate, generate_speculative, pad_prompts, quantize_for_decoding
from .loss import linear_cross_entropy
from .model import GPT, GPTConfig, configure_optimizer

__all__ = ["GPT", "GPTConfig", "StaticKVCache", "configure_optimizer", "generate", "generate_speculative",
           "linear_cross_entropy", "pad_prompts", "quantize_for_decoding"]


@hookimpl
def register_models(register):
    register("gpt", GPT)


@hookimpl
def register_decoders(register):
    register("static-cache", generate, doc="Decoding with a preallocated KV cache and last-position logits "
                                           "(the production GPT's; same ids as the book's generate).")
    register("speculative", generate_speculative,
             doc="Greedy ids guessed ahead by a dynamic-int8 (CPU) or bf16 copy of the model and checked by the model: the same ids "
                 "as static-cache, fewer passes over the fp32 weights.")

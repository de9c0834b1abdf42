import nbformat
from llmkit.notebook_cells import notebook, md, setup, code, solution, tests, hidden_tests

cells = [
md("""
# Stage 4 — Attention

A language model reads a sequence of token vectors. Attention lets every position build a new
vector as a weighted mix of the vectors it is allowed to see, with weights that depend on the
content: the word *it* can borrow most of its meaning from the noun it refers to.

You will build attention in five steps, each one the interface the book uses:

1. `SelfAttention_v1` — one head, weight matrices as raw parameters;
2. `SelfAttention_v2` — the same with `nn.Linear` layers;
3. `CausalAttention` — a mask so no token sees the future, plus dropout;
4. `MultiHeadAttentionWrapper` — several causal heads side by side;
5. `MultiHeadAttention` — all heads in one set of projections, the version GPT uses.

Run the setup cell, then fill in each `# YOUR CODE HERE`. The test cell after each exercise tells
you what it checks; more tests run when your notebook is graded.
""", "intro"),
setup("""
import torch
from torch import nn

import llmkit
from llmkit.config import check_attention_args
from llmkit.grading import assert_defined_in_notebook

# Six tokens ("Your journey starts with one step"), each embedded in 3 dimensions.
inputs = torch.tensor([[0.43, 0.15, 0.89], [0.55, 0.87, 0.66], [0.57, 0.85, 0.64],
                       [0.22, 0.58, 0.33], [0.77, 0.25, 0.10], [0.05, 0.80, 0.55]])
batch = torch.stack((inputs, inputs))  # (2, 6, 3): two copies make a batch
"""),
md("""
## 1. Self-attention with trainable weights

Each token vector `x` is projected three ways: a **query** (what am I looking for?), a **key**
(what do I offer?) and a **value** (what do I pass on?). The score between token *i* and token *j*
is the dot product of query *i* and key *j*. Scores are divided by the square root of the key
dimension — without it, large dot products push the softmax towards one-hot weights and the
gradients vanish — and a softmax over each row turns them into weights that sum to 1. The output
for token *i* is the weighted sum of all values.

Write `SelfAttention_v1(d_in, d_out)`: three parameters `W_query`, `W_key`, `W_value`, each
`nn.Parameter(torch.rand(d_in, d_out))` created in that order, and a `forward(x)` for `x` of shape
`(num_tokens, d_in)` returning `(num_tokens, d_out)`.
""", "ex1-text"),
solution("self-attention-v1", """
class SelfAttention_v1(nn.Module):
    \"\"\"Scaled dot-product self-attention with raw weight matrices; not causal.\"\"\"

    def __init__(self, d_in, d_out):
        super().__init__()
        ### BEGIN SOLUTION
        self.W_query = nn.Parameter(torch.rand(d_in, d_out))
        self.W_key = nn.Parameter(torch.rand(d_in, d_out))
        self.W_value = nn.Parameter(torch.rand(d_in, d_out))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        queries = x @ self.W_query  # (T, d_out)
        keys = x @ self.W_key  # (T, d_out)
        values = x @ self.W_value  # (T, d_out)
        scores = queries @ keys.T  # (T, T)
        weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)
        return weights @ values  # (T, d_out)
        ### END SOLUTION
"""),
tests("self-attention-v1-visible", """
# Checks: the output shape, and the value the book prints for seed 123 (first token).
assert_defined_in_notebook(SelfAttention_v1)  # written here, not imported
torch.manual_seed(123)
sa_v1 = SelfAttention_v1(3, 2)
out = sa_v1(inputs)
assert out.shape == (6, 2), f"expected (6, 2), got {tuple(out.shape)}"
assert torch.allclose(out[0], torch.tensor([0.2996, 0.8053]), atol=1e-4), out[0]
print("SelfAttention_v1 looks right:\\n", out)
""", points=1),
hidden_tests("self-attention-v1-hidden", """
from llmkit.grading.attention import check_self_attention_v1
check_self_attention_v1(SelfAttention_v1)
""", points=2),
md("""
## 2. The same with `nn.Linear`

`nn.Linear(d_in, d_out, bias=False)` computes `x @ W.T` with a better starting scale for `W`
than `torch.rand`, and can add a bias. Write `SelfAttention_v2(d_in, d_out, qkv_bias=False)` with
`W_query`, `W_key`, `W_value` as `nn.Linear` layers (in that order).
""", "ex2-text"),
solution("self-attention-v2", """
class SelfAttention_v2(nn.Module):
    \"\"\"The same computation with ``nn.Linear`` projections (better initialisation, optional bias).\"\"\"

    def __init__(self, d_in, d_out, qkv_bias=False):
        super().__init__()
        ### BEGIN SOLUTION
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)  # (T, d_out) each
        scores = queries @ keys.T  # (T, T)
        weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)
        return weights @ values
        ### END SOLUTION
"""),
tests("self-attention-v2-visible", """
# Checks: nn.Linear layers with the book's names, and the value the book prints for seed 789.
assert_defined_in_notebook(SelfAttention_v2)  # written here, not imported
torch.manual_seed(789)
sa_v2 = SelfAttention_v2(3, 2)
assert isinstance(sa_v2.W_query, nn.Linear) and sa_v2.W_query.bias is None
out = sa_v2(inputs)
assert torch.allclose(out[0], torch.tensor([-0.0739, 0.0713]), atol=1e-4), out[0]
print("SelfAttention_v2 looks right")
""", points=1),
hidden_tests("self-attention-v2-hidden", """
from llmkit.grading.attention import check_self_attention_v2
check_self_attention_v2(SelfAttention_v2)
""", points=2),
md("""
## 3. Causal attention

A language model predicts the next token, so position *t* must not peek at positions after *t*.
Set the scores above the diagonal to `-inf` **before** the softmax: `exp(-inf) = 0`, so those
weights vanish and each row still sums to 1. Keep the mask as a buffer (`register_buffer`) built
from `torch.triu(torch.ones(context_length, context_length), diagonal=1)` — a buffer moves to the
GPU with the model but is not trained — and slice it to the number of tokens actually given.
Dropout on the attention weights randomly silences some connections during training only.

Write `CausalAttention(d_in, d_out, context_length, dropout, qkv_bias=False)` for batched input
`(batch, num_tokens, d_in)`, with `W_query, W_key, W_value`, `dropout` and the buffer `mask`.
""", "ex3-text"),
solution("causal-attention", """
class CausalAttention(nn.Module):
    \"\"\"One causal head: future positions are masked to -inf before the softmax; dropout on weights.\"\"\"

    def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
        super().__init__()
        ### BEGIN SOLUTION
        self.d_out = d_out
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        # 1 above the diagonal marks a future token; a buffer moves with .to(device) but never trains.
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        num_tokens = x.shape[1]
        queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)  # (B, T, d_out)
        scores = queries @ keys.transpose(1, 2)  # (B, T, T)
        scores = scores.masked_fill(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)
        weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)
        weights = self.dropout(weights)
        return weights @ values  # (B, T, d_out)
        ### END SOLUTION
"""),
tests("causal-attention-visible", """
# Checks: batched shapes, the book's seed-123 value, and causality: changing the last token
# must not change any earlier output.
assert_defined_in_notebook(CausalAttention)  # written here, not imported
torch.manual_seed(123)
ca = CausalAttention(3, 2, context_length=6, dropout=0.0)
out = ca(batch)
assert out.shape == (2, 6, 2)
assert torch.allclose(out[0, 0], torch.tensor([-0.4519, 0.2216]), atol=1e-4), out[0, 0]
changed = batch.clone()
changed[:, -1] += 1.0
assert torch.allclose(ca(changed)[:, :-1], out[:, :-1]), "earlier tokens must not see the last one"
print("CausalAttention looks right")
"""
, points=1),
hidden_tests("causal-attention-hidden", """
from llmkit.grading.attention import check_causal_attention
check_causal_attention(CausalAttention)
""", points=2),
code("""
# Look at the weights: a causal head's weight matrix is lower-triangular, each row sums to 1.
import matplotlib.pyplot as plt

with torch.no_grad():
    q, k = ca.W_query(inputs), ca.W_key(inputs)
    scores = (q @ k.T).masked_fill(ca.mask.bool(), -torch.inf)
    weights = torch.softmax(scores / k.shape[-1] ** 0.5, dim=-1)
words = ["Your", "journey", "starts", "with", "one", "step"]
plt.imshow(weights, cmap="viridis")
plt.xticks(range(6), words, rotation=45)
plt.yticks(range(6), words)
plt.colorbar(label="attention weight")
plt.title("Causal attention weights")
plt.show()
"""),
md("""
## 4. Several heads, side by side

One head can only attend one way at a time. Several heads with their own projections can follow
different relations at once. The simplest multi-head attention runs `num_heads` independent
`CausalAttention` modules and concatenates their outputs along the last dimension.

Write `MultiHeadAttentionWrapper(d_in, d_out, context_length, dropout, num_heads, qkv_bias=False)`
holding the heads in an `nn.ModuleList` called `heads`; its output width is `num_heads * d_out`.
""", "ex4-text"),
solution("mha-wrapper", """
class MultiHeadAttentionWrapper(nn.Module):
    \"\"\"``num_heads`` independent ``CausalAttention`` heads, outputs concatenated (width num_heads*d_out).\"\"\"

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        ### BEGIN SOLUTION
        self.heads = nn.ModuleList(
            [CausalAttention(d_in, d_out, context_length, dropout, qkv_bias) for _ in range(num_heads)]
        )
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return torch.cat([head(x) for head in self.heads], dim=-1)
        ### END SOLUTION
"""),
tests("mha-wrapper-visible", """
# Checks: two heads of width 2 give width 4, and the output is the heads' outputs concatenated.
assert_defined_in_notebook(MultiHeadAttentionWrapper)  # written here, not imported
torch.manual_seed(123)
wrapper = MultiHeadAttentionWrapper(3, 2, 6, 0.0, num_heads=2)
out = wrapper(batch)
assert out.shape == (2, 6, 4), f"expected (2, 6, 4), got {tuple(out.shape)}"
assert torch.allclose(out, torch.cat([h(batch) for h in wrapper.heads], dim=-1))
print("MultiHeadAttentionWrapper looks right")
""", points=1),
hidden_tests("mha-wrapper-hidden", """
from llmkit.grading.attention import check_multi_head_attention_wrapper
check_multi_head_attention_wrapper(MultiHeadAttentionWrapper)
""", points=2),
md("""
## 5. Multi-head attention in one pass

The wrapper runs its heads one after another. GPT instead projects once to `d_out` and splits the
result into `num_heads` slices of `head_dim = d_out // num_heads`: reshape `(b, T, d_out)` to
`(b, T, num_heads, head_dim)` and move the head axis forward to `(b, num_heads, T, head_dim)`, so a
single batched matrix product computes every head's scores. Scale by `sqrt(head_dim)`, mask, softmax,
dropout, mix the values, move the axes back, merge the heads, and finish with `out_proj`, a linear
layer that lets the heads' results combine.

Write `MultiHeadAttention(d_in, d_out, context_length, dropout, num_heads, qkv_bias=False)` with
`W_query, W_key, W_value, out_proj, dropout` and the buffer `mask`. The given lines handle an
optional `kv_cache`, which lets generation reuse earlier keys and values (stage 5); you may ignore
them.
""", "ex5-text"),
solution("mha", """
class MultiHeadAttention(nn.Module):
    \"\"\"Causal multi-head attention with one projection per Q/K/V split into heads, and ``out_proj``.\"\"\"

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        check_attention_args(d_in, d_out, num_heads)
        ### BEGIN SOLUTION
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))
        ### END SOLUTION

    def split_heads(self, t, b, num_tokens):
        # (B, T, d_out) -> (B, heads, T, head_dim)
        return t.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x, kv_cache=None):
        b, num_tokens, _ = x.shape
        ### BEGIN SOLUTION
        queries = self.split_heads(self.W_query(x), b, num_tokens)
        keys = self.split_heads(self.W_key(x), b, num_tokens)
        values = self.split_heads(self.W_value(x), b, num_tokens)
        ### END SOLUTION

        start = 0
        if kv_cache is not None:
            start = kv_cache.length  # absolute position of the first new token
            keys, values = kv_cache.update(keys, values)  # (B, heads, start+T, head_dim)

        ### BEGIN SOLUTION
        scores = queries @ keys.transpose(2, 3)  # (B, heads, T, start+T)
        future = self.mask.bool()[start : start + num_tokens, : start + num_tokens]
        scores = scores.masked_fill(future, -torch.inf)
        weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)
        weights = self.dropout(weights)

        context = (weights @ values).transpose(1, 2)  # (B, T, heads, head_dim)
        context = context.contiguous().view(b, num_tokens, self.d_out)
        return self.out_proj(context)
        ### END SOLUTION
"""),
tests("mha-visible", """
# Checks: output shape, the book's seed-123 value for 2 heads, and causality.
assert_defined_in_notebook(MultiHeadAttention)  # written here, not imported
torch.manual_seed(123)
mha = MultiHeadAttention(3, 2, 6, 0.0, num_heads=2)
out = mha(batch)
assert out.shape == (2, 6, 2)
assert torch.allclose(out[0, 0], torch.tensor([0.3190, 0.4858]), atol=1e-4), out[0, 0]
changed = batch.clone()
changed[:, -1] += 1.0
assert torch.allclose(mha(changed)[:, :-1], out[:, :-1]), "earlier tokens must not see the last one"
print("MultiHeadAttention looks right")
""", points=1),
hidden_tests("mha-hidden", """
from llmkit.grading.attention import check_multi_head_attention
check_multi_head_attention(MultiHeadAttention)
""", points=3),
md("""
## Your attention inside a GPT

Register your class under a name, and the kit's pipeline can build a GPT with it: here a tiny GPT
is pretrained for a few seconds with your attention and with the reference, from the same seed.
If your attention is right, the two validation-loss curves lie on top of each other.
""", "pipeline-text"),
code("""
llmkit.register("attention", "student-mha")(MultiHeadAttention)

from llmkit.tryout import try_component
results = try_component("attention", "student-mha", reference="mha", steps=40)
"""),
]
nbformat.write(notebook(cells), "/work/main/course/source/04-attention/04-attention.ipynb")
print("written")

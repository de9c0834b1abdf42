"""Output head and cross-entropy in one step, a block of rows at a time.

The usual ``F.cross_entropy(out_head(x), targets)`` writes the full (N, vocab) logits, reads them for
the log-softmax, writes their gradient and reads it twice more for the two backward matmuls. For the
course's GPTs the head is half of all FLOPs and those logits are the largest tensor of the step
(1024 tokens x 50257 x 4 bytes = 206 MB for gpt-mini). Here each block of ``chunk_rows`` rows gets its
logits, its loss and, straight away, the gradient of the loss with respect to those logits; the
gradients for ``x`` and the weight are formed in the same pass and saved. Backward only scales them by
the incoming gradient (1.0 in training). The same three matmuls run, but no full-width logits exist,
in fp32 or any other dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

VOCAB_MULTIPLE = 64  # the head's GEMMs run over the vocabulary padded to this
IGNORE_INDEX = -100  # the book's custom_collate_fn marks padded targets with it, as F.cross_entropy does


class LinearCrossEntropy(torch.autograd.Function):
    """mean over kept rows of cross_entropy(x @ weight.T, targets); see ``linear_cross_entropy``."""

    @staticmethod
    def forward(ctx, x, weight, targets, chunk_rows, softmax_rows, ignore_index):
        # x (N, E) in the compute dtype, weight (V, E) as stored (fp32 under autocast), targets (N,) int64
        n_rows, vocab = x.shape[0], weight.shape[0]
        w = weight.to(x.dtype)  # (V, E) the matmuls' copy; a no-op in fp32
        # GEMMs over GPT-2's odd vocabulary (50257) ran the weight's gradient at 0.8x the rate they
        # reach over one padded to a multiple of 64 (50304). So the copy gets zero rows up to one, and
        # the padded columns a logit bias of -inf: below every real logit, their softmax is clamped
        # to e^-87 of the top one, nothing; their gradient meets zero rows in grad @ w and is cut
        # from the weight's.
        padded = -(-vocab // VOCAB_MULTIPLE) * VOCAB_MULTIPLE
        bias = None
        if padded != vocab:
            w = F.pad(w, (0, 0, 0, padded - vocab))  # (V', E)
            bias = F.pad(torch.zeros(vocab, dtype=x.dtype, device=x.device), (0, padded - vocab), value=float("-inf"))
        keep = targets != ignore_index  # (N,)
        n_kept = keep.sum().clamp(min=1).to(torch.float32)  # the mean's denominator, never 0
        want_x, want_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_x = torch.empty_like(x) if want_x else None
        grad_w = torch.zeros((padded, weight.shape[1]), dtype=torch.float32, device=x.device) if want_w else None
        total = torch.zeros((), dtype=torch.float32, device=x.device)
        for start in range(0, n_rows, chunk_rows):
            stop = min(start + chunk_rows, n_rows)
            x_c, keep_c = x[start:stop], keep[start:stop]  # (C, E), (C,)
            t_c = targets[start:stop].clamp(min=0).unsqueeze(1)  # (C, 1); ignored rows point at id 0
            # (C, V') in the compute dtype: only this chunk of rows
            logits = x_c @ w.t() if bias is None else torch.addmm(bias, x_c, w.t())
            # The softmax runs softmax_rows rows at a time in fp32: a block of 32 x 50257 floats (6 MB)
            # stays in cache through its ten elementwise passes, where the whole chunk (103 MB) would
            # go to memory and back each time. Each block's gradient overwrites its own logits.
            for s in range(0, stop - start, softmax_rows):
                e = min(s + softmax_rows, stop - start)
                block = logits[s:e].float()  # (r, V'): the logits themselves in fp32, a copy in bf16
                picked = block.gather(1, t_c[s:e])  # (r, 1) the target's logit
                top = block.amax(dim=1, keepdim=True)  # (r, 1)
                # exp(l - top) is a denormal below e^-87, and CPUs compute denormals about 100x slower;
                # with a wide spread of logits (a confident model, a tied head) that costs seconds per
                # step. Clamping changes probabilities below 1e-38 only.
                probs = block.sub_(top).clamp_(min=-87.0).exp_()  # (r, V') unnormalised softmax
                norm = probs.sum(dim=1, keepdim=True)  # (r, 1)
                lse = top + norm.log()  # (r, 1) log-sum-exp of the logits
                total = total + ((lse - picked).squeeze(1) * keep_c[s:e]).sum()
                if want_x or want_w:
                    # d loss / d logits = (softmax - onehot) / n_kept on kept rows, 0 on ignored ones
                    row_weight = keep_c[s:e].unsqueeze(1) / n_kept  # (r, 1)
                    probs.mul_(row_weight / norm).scatter_add_(1, t_c[s:e], -row_weight)
                    if probs.dtype != logits.dtype:
                        logits[s:e] = probs  # back to the compute dtype
            if want_x or want_w:
                grad = logits  # (C, V') d loss / d logits, in the compute dtype
                if want_x:
                    grad_x[start:stop] = grad @ w  # (C, E)
                if want_w:
                    # (V', E) += (V', C) @ (C, E). In bf16 the GEMM runs in bf16 (at twice the fp32
                    # rate where the CPU has it) and only each block's result is added in fp32.
                    if grad.dtype == torch.float32:
                        grad_w.addmm_(grad.t(), x_c)
                    else:
                        grad_w += grad.t() @ x_c
        # The weight's gradient stays fp32 for an fp32 weight: no round trip through bf16.
        ctx.save_for_backward(grad_x, grad_w[:vocab].to(weight.dtype) if grad_w is not None else None)
        return total / n_kept

    @staticmethod
    def backward(ctx, grad_loss):
        grad_x, grad_w = ctx.saved_tensors
        # grad_loss is a 0-d tensor (1.0 after loss.backward()); scaling is the only work left.
        return (None if grad_x is None else grad_x * grad_loss,
                None if grad_w is None else grad_w * grad_loss, None, None, None, None)


def linear_cross_entropy(x, weight, targets, chunk_rows=512, ignore_index=IGNORE_INDEX, softmax_rows=32):
    """Cross-entropy of ``x @ weight.T`` against ``targets`` without materialising the logits.

    x (N, E) hidden states after the final norm, weight (V, E) the output head, targets (N,) ids or
    ``ignore_index``. Returns the mean loss over the rows that are not ignored, equal to
    ``F.cross_entropy(x @ weight.T, targets, ignore_index=ignore_index)`` up to float rounding.
    Under autocast the matmuls run in the autocast dtype and the softmax in fp32, ``softmax_rows``
    rows at a time so that its passes over them stay in cache.
    """
    if torch.is_autocast_enabled(x.device.type):
        x = x.to(torch.get_autocast_dtype(x.device.type))  # the weight is cast inside, once per step
        with torch.autocast(x.device.type, enabled=False):
            return LinearCrossEntropy.apply(x, weight, targets, chunk_rows, softmax_rows, ignore_index)
    return LinearCrossEntropy.apply(x, weight, targets, chunk_rows, softmax_rows, ignore_index)


def reference_loss(logits, targets, ignore_index=IGNORE_INDEX):
    """The plain loss this module replaces (used when the head is not a bias-free ``nn.Linear``)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=ignore_index)

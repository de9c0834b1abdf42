"""A selective state-space mixer (Mamba-style), in plain PyTorch with a sequential scan.

Per channel d and state slot n, a linear recurrence whose step size and read/write vectors depend on
the input (that is what "selective" means; a plain SSM has them fixed):

    delta_t = softplus(dt_proj(x_t))                (B, D)      how far to move this step
    h_t     = exp(delta_t * A) * h_{t-1} + delta_t * B_t * x_t   (B, D, N)   A < 0: a decay per (d, n)
    y_t     = C_t . h_t + D_skip * x_t              (B, D)

around Mamba's block: in_proj to (x, z) of width D = expand * E, a short causal depthwise conv and
SiLU on x, the scan, a gate y * SiLU(z), and out_proj back to E. The scan is a Python loop over time
(T steps of (B, D, N) work): slow next to Mamba's fused kernel, plenty for the kit's 128-token context.
A ``state`` (conv tail, h) carries over between calls, which is how generation feeds one token a step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SelectiveSSM(nn.Module):
    """(B, T, E) -> (B, T, E); ``forward(x, state)`` returns (y, new_state)."""

    def __init__(self, emb_dim: int, state_dim: int = 16, expand: int = 2, conv_kernel: int = 4):
        super().__init__()
        d = self.inner = expand * emb_dim
        self.state_dim, self.kernel = state_dim, conv_kernel
        self.dt_rank = max(1, math.ceil(emb_dim / 16))
        self.in_proj = nn.Linear(emb_dim, 2 * d, bias=False)
        self.conv = nn.Conv1d(d, d, conv_kernel, groups=d)  # depthwise; causal by left-padding ourselves
        self.x_proj = nn.Linear(d, self.dt_rank + 2 * state_dim, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d)
        # A = -exp(A_log): slot n of every channel decays at rate n + 1 (Mamba's S4D-real start).
        self.A_log = nn.Parameter(torch.log(torch.arange(1, state_dim + 1, dtype=torch.float32)).repeat(d, 1))
        self.D_skip = nn.Parameter(torch.ones(d))
        self.out_proj = nn.Linear(d, emb_dim, bias=False)
        with torch.no_grad():  # step sizes start between 0.001 and 0.1, as Mamba's
            dt = torch.exp(torch.rand(d) * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)

    def forward(self, x, state=None):
        B, T, _ = x.shape
        xz = self.in_proj(x)  # (B, T, 2D)
        u, z = xz.chunk(2, dim=-1)  # (B, T, D) each
        u = u.transpose(1, 2)  # (B, D, T)
        tail = u.new_zeros(B, self.inner, self.kernel - 1) if state is None else state[0]
        u_padded = torch.cat([tail, u], dim=2)  # (B, D, K - 1 + T): the conv sees only the past
        u = F.silu(self.conv(u_padded)).transpose(1, 2)  # (B, T, D)
        delta, Bm, Cm = self.x_proj(u).split([self.dt_rank, self.state_dim, self.state_dim], dim=-1)
        delta = F.softplus(self.dt_proj(delta))  # (B, T, D)
        A = -torch.exp(self.A_log.float())  # (D, N)
        h = u.new_zeros(B, self.inner, self.state_dim) if state is None else state[1]  # (B, D, N)
        decay = torch.exp(delta.unsqueeze(-1) * A)  # (B, T, D, N)
        write = (delta * u).unsqueeze(-1) * Bm.unsqueeze(2)  # (B, T, D, N)
        ys = []
        # unbind once: indexing [:, t] in the loop would make backward add T full-size zero tensors
        for a_t, b_t, c_t in zip(decay.unbind(1), write.unbind(1), Cm.unbind(1)):  # the sequential scan
            h = a_t * h + b_t  # (B, D, N)
            ys.append((h * c_t.unsqueeze(1)).sum(-1))  # (B, D)
        y = torch.stack(ys, dim=1) + u * self.D_skip  # (B, T, D)
        y = y * F.silu(z)
        new_state = (u_padded[:, :, -(self.kernel - 1):].detach(), h.detach())
        return self.out_proj(y), new_state  # (B, T, E)

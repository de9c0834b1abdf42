"""Masked language modelling: BERT's 80/10/10 rule, batches that replay exactly, and the loss.

Of the tokens that are not special, about ``prob`` (15%) are chosen; the model must predict each
chosen token from its surroundings. The input at a chosen position becomes ``[MASK]`` 80% of the time,
a random ordinary token 10% of the time, and stays itself 10% of the time (so the model cannot
learn that only ``[MASK]`` positions matter). Targets hold the original id at chosen positions and
-100 elsewhere, which ``cross_entropy`` ignores: the kit's training loop trains MLM unchanged.

    inputs, targets = mask_tokens(ids, vocab_size, mask_id, special_ids, generator=g)
    batches = MLMBatches(token_ids, 16, 128, tokenizer, seed=123)   # what llmkit.training.train reads
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F

from llmkit.errors import LLMKitError

IGNORE_INDEX = -100


def mask_tokens(ids: torch.Tensor, vocab_size: int, mask_id: int, special_ids: Iterable[int] = (),
                prob: float = 0.15, generator: torch.Generator | None = None,
                split: tuple[float, float] = (0.8, 0.1)) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) ids -> (inputs, targets), both (B, T): BERT's masking, drawn from ``generator``."""
    if not 0.0 < prob < 1.0:
        raise LLMKitError(f"the masking probability must be in (0, 1), got {prob}; BERT uses 0.15.")
    special = torch.tensor(sorted(set(special_ids) | {mask_id}), dtype=torch.long)
    ordinary = torch.ones(vocab_size, dtype=torch.bool)
    ordinary[special[special < vocab_size]] = False
    replacements = ordinary.nonzero().squeeze(1)  # the ids a random replacement may take
    if len(replacements) == 0:
        raise LLMKitError("the vocabulary has no ordinary tokens to mask; check vocab_size and special_ids.")
    candidates = ~torch.isin(ids, special)  # (B, T): special tokens are never chosen
    chosen = (torch.rand(ids.shape, generator=generator) < prob) & candidates
    how = torch.rand(ids.shape, generator=generator)  # < 0.8: [MASK]; < 0.9: random; else: keep
    random_ids = replacements[torch.randint(len(replacements), ids.shape, generator=generator)]
    inputs = ids.clone()
    inputs[chosen & (how < split[0])] = mask_id
    use_random = chosen & (how >= split[0]) & (how < split[0] + split[1])
    inputs[use_random] = random_ids[use_random]
    targets = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
    return inputs, targets


def mlm_loss(model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy at the masked positions only (targets -100 elsewhere); the same as the kit's lm loss."""
    logits = model(inputs)  # (B, T, vocab)
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX)


class MLMBatches:
    """``len()`` batches of masked windows from a token stream: (inputs, targets), each (B, T).

    Each window is ``[CLS]`` then ``max_length - 1`` corpus tokens. Training (``shuffle=True``) draws
    window starts and masks from one ``generator``, seeded once, so the kit's trainer replays an epoch
    exactly on ``--resume`` by restoring it. Evaluation (``shuffle=False``) takes non-overlapping windows
    in order and reseeds at every pass: the same masks every time it is scored.
    """

    def __init__(self, token_ids, batch_size: int, max_length: int, tokenizer, seed: int = 123,
                 num_batches: int | None = None, shuffle: bool = True, prob: float = 0.15):
        self.data = torch.as_tensor(token_ids, dtype=torch.long)  # (N,)
        self.batch_size, self.max_length, self.shuffle, self.prob, self.seed = batch_size, max_length, shuffle, prob, seed
        self.mask_id, self.cls_id = tokenizer.special_id("mask"), tokenizer.special_id("cls")
        self.special_ids = sorted(tokenizer.special_ids)
        self.vocab_size = tokenizer.n_vocab
        span = max_length - 1
        if len(self.data) < span:
            raise LLMKitError(f"{len(self.data)} tokens are fewer than one window of {span}; "
                              "use a longer corpus or a shorter max_length.")
        self.starts = list(range(0, len(self.data) - span + 1, span))
        self.num_batches = num_batches or max(1, len(self.starts) // batch_size)
        if not shuffle:
            self.num_batches = min(self.num_batches, -(-len(self.starts) // batch_size))
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        if not self.shuffle:
            self.generator.manual_seed(self.seed)
        span = self.max_length - 1
        for b in range(self.num_batches):
            if self.shuffle:
                starts = torch.randint(0, len(self.data) - span + 1, (self.batch_size,), generator=self.generator)
            else:
                starts = torch.tensor(self.starts[b * self.batch_size:(b + 1) * self.batch_size])
            windows = torch.stack([self.data[s : s + span] for s in starts.tolist()])  # (B, T - 1)
            cls = torch.full((len(windows), 1), self.cls_id, dtype=torch.long)
            ids = torch.cat([cls, windows], dim=1)  # (B, T)
            yield mask_tokens(ids, self.vocab_size, self.mask_id, self.special_ids, self.prob, self.generator)


@torch.no_grad()
def fill_mask(model, tokenizer, text: str, top_k: int = 3) -> list[list[str]]:
    """For each ``[MASK]`` in ``text``, the ``top_k`` tokens the model puts there."""
    ids = [tokenizer.special_id("cls"), *tokenizer.encode(text)][: model.context_length]
    idx = torch.tensor([ids], device=next(model.parameters()).device)
    logits = model.eval()(idx)[0]  # (T, vocab)
    where = [i for i, t in enumerate(ids) if t == tokenizer.special_id("mask")]
    return [[tokenizer.decode([t]) for t in logits[i].topk(top_k).indices.tolist()] for i in where]

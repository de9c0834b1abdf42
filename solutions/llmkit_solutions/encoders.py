"""Reference solutions for stage 10: special tokens, the padding mask, MLM masking, pooling, feature extraction.

Each definition here is the twin of a graded definition in course/source/10-encoders-and-masked-lm (the
course's source test checks they stay equal).
"""

import torch
from torch import nn


def add_special_tokens(vocab, roles):
    """A copy of ``vocab`` (token -> id) holding every token of ``roles`` (role -> token), and the ids by role.

    A token the vocabulary already has keeps its id; each missing one gets the next free id, in the order
    of ``roles``. ``vocab`` itself is left unchanged.
    """
    extended = dict(vocab)  # a copy: the caller's vocabulary stays as it was
    ids = {}
    for role, token in roles.items():
        if token not in extended:
            extended[token] = len(extended)  # ids run 0 .. len - 1, so len is the next free one
        ids[role] = extended[token]
    return extended, ids



def encode_for_encoder(ids, special, max_length):
    """``[CLS] ids [SEP]`` then ``[PAD]`` up to ``max_length``: a list of exactly ``max_length`` ids.

    ``special`` maps roles to ids (``special["cls"]`` ...). Text too long to fit is cut at the end,
    and ``[SEP]`` is always kept.
    """
    body = list(ids)[: max_length - 2]  # room for [CLS] and [SEP]
    row = [special["cls"], *body, special["sep"]]
    return row + [special["pad"]] * (max_length - len(row))



def padding_mask(ids, pad_id):
    """(B, T) ids -> (B, T) bool: True where a real token is, False at padding."""
    return ids != pad_id



def bidirectional_attention(queries, keys, values, mask=None):
    """Scaled dot-product attention in which every query sees every real key; no causal mask.

    queries, keys, values: (B, H, T, D); mask: (B, T) bool, True for real tokens, or None.
    Returns (B, H, T, D).
    """
    scores = queries @ keys.transpose(-2, -1) / keys.shape[-1] ** 0.5  # (B, H, T, T)
    if mask is not None:
        hidden_keys = ~mask[:, None, None, :]  # (B, 1, 1, T): the same padded columns for every head and query
        scores = scores.masked_fill(hidden_keys, -torch.inf)
    weights = torch.softmax(scores, dim=-1)
    return weights @ values



def mask_tokens(ids, vocab_size, mask_id, special_ids, prob=0.15, generator=None):
    """BERT's masking of (B, T) ids -> (inputs, targets), both (B, T).

    About ``prob`` of the ordinary tokens are chosen. A chosen input becomes ``mask_id`` (80%), a random
    ordinary id (10%) or stays (10%); targets hold the original id where chosen and -100 elsewhere.
    """
    special = torch.tensor(sorted(set(special_ids) | {mask_id}))
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in set(special.tolist())])
    can_choose = ~torch.isin(ids, special)  # special tokens are never chosen
    chosen = (torch.rand(ids.shape, generator=generator) < prob) & can_choose
    how = torch.rand(ids.shape, generator=generator)  # < 0.8: [MASK]; < 0.9: a random id; else unchanged
    random_ids = ordinary[torch.randint(len(ordinary), ids.shape, generator=generator)]
    inputs = ids.clone()
    inputs[chosen & (how < 0.8)] = mask_id
    replace = chosen & (how >= 0.8) & (how < 0.9)
    inputs[replace] = random_ids[replace]
    targets = torch.where(chosen, ids, torch.full_like(ids, -100))  # -100: cross_entropy skips it
    return inputs, targets



def pool(hidden, mask=None, how="cls"):
    """(B, T, E) hidden states -> (B, E): the state of [CLS] (``how="cls"``) or the mean over real tokens
    (``how="mean"``; ``mask`` is (B, T) bool, True for real tokens, or None for no padding)."""
    if how not in ("cls", "mean"):
        raise ValueError(f"how must be 'cls' or 'mean', got {how!r}")
    if how == "cls":
        return hidden[:, 0]  # [CLS] is always the first token
    if mask is None:
        return hidden.mean(dim=1)
    keep = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1): 1 for real tokens, 0 for padding
    return (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)



class FeatureClassifier(nn.Module):
    """Feature extraction: a frozen encoder's pooled states read by one trained linear layer.

    ``encoder(ids)`` gives (B, T, emb_dim) hidden states; ``forward(ids)`` returns (B, num_classes) logits.
    """

    def __init__(self, encoder, emb_dim, num_classes, pad_id, how="cls"):
        super().__init__()
        self.encoder = encoder
        for param in self.encoder.parameters():
            param.requires_grad_(False)  # frozen: only the head learns
        self.head = nn.Linear(emb_dim, num_classes)
        self.pad_id, self.how = pad_id, how
        self.encoder.eval()

    def train(self, mode=True):
        super().train(mode)
        self.encoder.eval()  # a frozen encoder gives the same features every time: its dropout stays off
        return self

    def forward(self, ids):
        with torch.no_grad():  # no graph through the frozen encoder: faster, less memory
            hidden = self.encoder(ids)  # (B, T, E)
        features = pool(hidden, padding_mask(ids, self.pad_id), self.how)  # (B, E)
        return self.head(features)  # (B, num_classes)

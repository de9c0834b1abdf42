"""Stage 6: pretraining with the book's loop.

The loss is cross-entropy between the logits at every position and the next token. The book's
``train_model_simple`` evaluates every ``eval_freq`` steps and prints a sample after each epoch;
the kit's own trainer (``llmkit.training``) adds schedules, clipping, checkpoints and devices.
``softmax_with_temperature`` and ``top_k_filter`` are the two steps the book's ``generate`` adds to
greedy decoding (the kit's version is ``llmkit_solutions.gpt.next_token``).
"""

from __future__ import annotations

import torch

from .gpt import generate_text_simple, text_to_token_ids, token_ids_to_text


def calc_loss_batch(input_batch, target_batch, model, device):
    """Mean cross-entropy of one (B, T) batch against its (B, T) targets."""
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)  # (B, T, vocab)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Average batch loss over the first ``num_batches`` batches (all when None); nan if empty."""
    if len(data_loader) == 0:
        return float("nan")
    num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    total = 0.0
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i >= num_batches:
            break
        total += calc_loss_batch(input_batch, target_batch, model, device).item()
    return total / num_batches


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """Train and validation loss over ``eval_iter`` batches each, in eval mode, without gradients."""
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return train_loss, val_loss


def softmax_with_temperature(logits, temperature):
    """Probabilities from ``logits / temperature``: below 1 sharper, above 1 flatter (last dim)."""
    return torch.softmax(logits / temperature, dim=-1)


def top_k_filter(logits, top_k):
    """Keep the ``top_k`` largest logits of each row (last dim) and set the others to -inf."""
    top_logits, _ = torch.topk(logits, top_k, dim=-1)  # (..., k), largest first
    cutoff = top_logits[..., -1:]  # (..., 1): the k-th largest logit of each row
    return torch.where(logits < cutoff, torch.full_like(logits, -torch.inf), logits)


def generate_and_print_sample(model, tokenizer, device, start_context):
    """Print a 50-token greedy continuation of ``start_context`` on one line."""
    model.eval()
    context_size = model.pos_emb.weight.shape[0]
    encoded = text_to_token_ids(start_context, tokenizer).to(device)
    with torch.no_grad():
        token_ids = generate_text_simple(model, encoded, 50, context_size)
    print(token_ids_to_text(token_ids, tokenizer).replace("\n", " "))
    model.train()


def train_model_simple(model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq, eval_iter,
                       start_context, tokenizer):
    """The book's loop; returns ``(train_losses, val_losses, track_tokens_seen)``."""
    train_losses, val_losses, track_tokens_seen = [], [], []
    tokens_seen, global_step = 0, -1
    for epoch in range(num_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            optimizer.zero_grad()
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()
            tokens_seen += input_batch.numel()
            global_step += 1
            if global_step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                track_tokens_seen.append(tokens_seen)
                print(f"Ep {epoch + 1} (Step {global_step:06d}): Train loss {train_loss:.3f}, Val loss {val_loss:.3f}")
        generate_and_print_sample(model, tokenizer, device, start_context)
    return train_losses, val_losses, track_tokens_seen

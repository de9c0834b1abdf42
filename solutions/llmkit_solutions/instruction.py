"""Stage 9: instruction fine-tuning (supervised fine-tuning on instruction/response pairs).

Each example is an Alpaca-style prompt followed by the wanted response. Training is ordinary
next-token prediction on those texts; the collate function pads a batch, appends one end-of-text
token the model should learn to emit, and hides the rest of the padding from the loss with
``ignore_index`` (``cross_entropy`` skips targets equal to -100). With ``mask_prompt=True`` the
prompt tokens are hidden too, so the loss measures only the response.
"""

from __future__ import annotations

import string

import torch
from torch.utils.data import Dataset

from llmkit.data import load_instruction_json, shipped_instructions_path  # noqa: F401  (the kit reads the file)
from llmkit.errors import LLMKitError
from llmkit.tokenizers import encode_text

from .gpt import generate

PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)
RESPONSE_HEADER = "\n\n### Response:\n"


def format_input(entry):
    """The prompt for one entry: preamble, ``### Instruction:``, and ``### Input:`` when there is one."""
    text = f"{PREAMBLE}\n\n### Instruction:\n{entry['instruction']}"
    if entry.get("input"):
        text += f"\n\n### Input:\n{entry['input']}"
    return text


def format_response(entry):
    """The part the model learns to write: ``\\n\\n### Response:\\n`` + output."""
    return f"{RESPONSE_HEADER}{entry['output']}"


# --------------------------------------------------------------------------- splits


def split_instructions(data, train_frac=0.85, test_frac=0.1):
    """The book's split, in file order (no shuffle): (train, test, validation) = 85/10/5."""
    if train_frac < 0 or test_frac < 0 or train_frac + test_frac > 1:
        raise LLMKitError(f"train_frac={train_frac} and test_frac={test_frac} must be >= 0 and sum to <= 1.")
    train_end = int(len(data) * train_frac)
    test_end = train_end + int(len(data) * test_frac)
    return data[:train_end], data[train_end:test_end], data[test_end:]


# --------------------------------------------------------------------------- dataset and batches


def _prompt_length(tokenizer, prompt, full_ids):
    """How many leading ids of ``full_ids`` encode ``prompt`` (BPE could merge across the seam)."""
    prompt_ids = encode_text(tokenizer, prompt)
    n = 0
    while n < min(len(prompt_ids), len(full_ids)) and prompt_ids[n] == full_ids[n]:
        n += 1
    return n


class InstructionDataset(Dataset):
    """Pre-tokenised prompt + response texts; item ``i`` is a list of ids.

    With ``mask_prompt=True`` item ``i`` is ``(prompt_length, ids)`` instead, where the prompt
    includes the ``### Response:`` header; pass ``mask_prompt=True`` to ``custom_collate_fn`` too.
    """

    def __init__(self, data, tokenizer, mask_prompt=False):
        self.data = data
        self.mask_prompt = mask_prompt
        self.encoded_texts = []
        self.prompt_lengths = []
        for entry in data:
            prompt = format_input(entry)
            ids = encode_text(tokenizer, prompt + format_response(entry))
            self.encoded_texts.append(ids)
            if mask_prompt:
                self.prompt_lengths.append(_prompt_length(tokenizer, prompt + RESPONSE_HEADER, ids))

    def __getitem__(self, index):
        if self.mask_prompt:
            return self.prompt_lengths[index], self.encoded_texts[index]
        return self.encoded_texts[index]

    def __len__(self):
        return len(self.encoded_texts)


def custom_collate_fn(batch, pad_token_id=50256, ignore_index=-100, allowed_max_length=None, device="cpu",
                      mask_prompt=False):
    """List of id lists -> ``(inputs, targets)``, both (B, L), L = longest item (+1 end token, cut).

    Every item gets one ``pad_token_id`` (= ``<|endoftext|>``) appended and is padded to the longest
    length + 1; inputs drop the last id, targets the first. In the targets the appended end token
    stays (the model must learn to stop) and every later pad becomes ``ignore_index`` (chosen by
    position, so a ``pad_token_id`` inside a text is still learned). With
    ``mask_prompt=True`` items are ``(prompt_length, ids)`` and targets that predict prompt tokens
    become ``ignore_index`` as well. ``allowed_max_length`` cuts both tensors afterwards.
    """
    if mask_prompt:
        if not all(isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], int) for item in batch):
            raise LLMKitError("mask_prompt=True needs items (prompt_length, ids); "
                              "build the dataset with InstructionDataset(data, tokenizer, mask_prompt=True).")
        prompt_lengths = [item[0] for item in batch]
        batch = [item[1] for item in batch]
    elif batch and isinstance(batch[0], tuple):
        raise LLMKitError("items are (prompt_length, ids) pairs; pass mask_prompt=True to custom_collate_fn.")
    batch_max_length = max(len(item) + 1 for item in batch)  # +1 for the end token
    inputs_list, targets_list = [], []
    for item in batch:
        n = len(item)
        padded = list(item) + [pad_token_id] * (batch_max_length - n)  # (batch_max_length,)
        inputs = torch.tensor(padded[:-1])  # (L,)
        targets = torch.tensor(padded[1:])  # (L,): targets[i] is the id after inputs[i]
        # targets[n - 1] is the appended end token; positions after it are padding only.
        targets[n:] = ignore_index
        if allowed_max_length is not None:
            inputs, targets = inputs[:allowed_max_length], targets[:allowed_max_length]
        inputs_list.append(inputs)
        targets_list.append(targets)
    inputs, targets = torch.stack(inputs_list), torch.stack(targets_list)  # (B, L) each
    if mask_prompt:
        targets = mask_prompt_targets(targets, prompt_lengths, ignore_index)
    return inputs.to(device), targets.to(device)


def mask_prompt_targets(targets, prompt_lengths, ignore_index=-100):
    """A copy of ``targets`` (B, L) in which every target that predicts a prompt token is ``ignore_index``.

    ``targets[b, i]`` is token ``i + 1`` of item ``b`` (the one after ``inputs[b, i]``), so the first
    ``prompt_lengths[b] - 1`` targets of row ``b`` are prompt tokens; the target at
    ``prompt_lengths[b] - 1`` is the first token of the response and is kept.
    """
    masked = targets.clone()
    for row, prompt_length in enumerate(prompt_lengths):
        masked[row, : max(prompt_length - 1, 0)] = ignore_index
    return masked


# --------------------------------------------------------------------------- evaluation


def _context_length(model):
    pos_emb = getattr(model, "pos_emb", None)
    return pos_emb.weight.shape[0] if pos_emb is not None else None


def extract_response(generated_text):
    """Drop the ``### Response:`` header the model repeats and the surrounding whitespace."""
    return generated_text.replace("### Response:", "").strip()


def generate_responses(model, tokenizer, entries, device, max_new_tokens=256, context_size=None, eos_id=50256):
    """Greedy response text for each entry (the prompt and the ``### Response:`` header removed)."""
    context_size = context_size or _context_length(model)
    if context_size is None:
        raise LLMKitError(
            f"{type(model).__name__} has no pos_emb to read its context length from; pass context_size=..."
        )
    was_training = model.training
    model.eval()
    responses = []
    for entry in entries:
        prompt_ids = encode_text(tokenizer, format_input(entry))
        idx = torch.tensor(prompt_ids, device=device).unsqueeze(0)  # (1, T)
        out = generate(model, idx, max_new_tokens=max_new_tokens, context_size=context_size, eos_id=eos_id)
        # Decode only the new ids, so the prompt need not round-trip through the tokenizer.
        responses.append(extract_response(tokenizer.decode(out[0, len(prompt_ids):].tolist())))
    model.train(was_training)
    return responses


_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalise(text):
    """Lowercase, drop ASCII punctuation, squeeze whitespace: "The  Sun!" -> "the sun"."""
    return " ".join(text.lower().translate(_PUNCTUATION).split())


def score_responses(entries, responses):
    """Exact-match and normalised-match accuracy of ``responses`` against the entries' outputs."""
    if len(entries) != len(responses):
        raise LLMKitError(f"{len(entries)} entries but {len(responses)} responses; pass one response per entry.")
    if not entries:
        raise LLMKitError("no entries to score; pass at least one entry and its response.")
    exact = sum(entry["output"].strip() == response.strip() for entry, response in zip(entries, responses))
    loose = sum(normalise(entry["output"]) == normalise(response) for entry, response in zip(entries, responses))
    n = len(entries)
    return {"n": n, "exact_match": exact / n, "normalised_match": loose / n}

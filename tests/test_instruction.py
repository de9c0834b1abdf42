"""Stage 9: the Alpaca prompt, instruction batches (padding, masking), data files and scoring."""

import json

import pytest
import torch
from torch import nn

from llmkit.errors import LLMKitError
from llmkit.gpt2_bpe import gpt2_encoding
from llmkit_solutions.instruction import (
    InstructionDataset,
    custom_collate_fn,
    format_input,
    generate_responses,
    load_instruction_json,
    normalise,
    score_responses,
    shipped_instructions_path,
    split_instructions,
)

PREAMBLE = ("Below is an instruction that describes a task. "
            "Write a response that appropriately completes the request.")
WITH_INPUT = {"instruction": "Convert to passive voice.", "input": "The cat chased the mouse.",
              "output": "The mouse was chased by the cat."}
NO_INPUT = {"instruction": "Name the capital of France.", "input": "", "output": "Paris."}


@pytest.fixture(scope="module")
def tokenizer():
    return gpt2_encoding()


def test_format_input_exact_text():
    assert format_input(WITH_INPUT) == (
        PREAMBLE + "\n\n### Instruction:\nConvert to passive voice.\n\n### Input:\nThe cat chased the mouse."
    )
    assert format_input(NO_INPUT) == PREAMBLE + "\n\n### Instruction:\nName the capital of France."


def test_collate_on_the_book_example():
    batch = [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]]
    inputs, targets = custom_collate_fn(batch)
    assert inputs.tolist() == [[0, 1, 2, 3, 4], [5, 6, 50256, 50256, 50256], [7, 8, 9, 50256, 50256]]
    assert targets.tolist() == [[1, 2, 3, 4, 50256], [6, 50256, -100, -100, -100], [8, 9, 50256, -100, -100]]
    assert inputs.dtype == targets.dtype == torch.long
    assert batch == [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]]  # the items are not changed

    inputs, targets = custom_collate_fn(batch, pad_token_id=0, ignore_index=-1, allowed_max_length=3)
    assert inputs.tolist() == [[0, 1, 2], [5, 6, 0], [7, 8, 9]]
    assert targets.tolist() == [[1, 2, 3], [6, 0, -1], [8, 9, 0]]


def test_ignore_index_drops_padding_from_the_loss():
    _, targets = custom_collate_fn([[1, 2, 3], [4]])
    logits = torch.randn(2, 3, 50257)
    full = nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    kept = targets.flatten() != -100
    torch.testing.assert_close(full, nn.functional.cross_entropy(logits.flatten(0, 1)[kept], targets.flatten()[kept]))


def test_instruction_dataset_encodes_prompt_and_response(tokenizer):
    ds = InstructionDataset([WITH_INPUT, NO_INPUT], tokenizer)
    assert len(ds) == 2
    text = format_input(NO_INPUT) + "\n\n### Response:\nParis."
    assert ds[1] == tokenizer.encode(text)


def test_mask_prompt_hides_the_prompt_from_the_loss(tokenizer):
    data = [WITH_INPUT, NO_INPUT]
    plain = InstructionDataset(data, tokenizer)
    masked = InstructionDataset(data, tokenizer, mask_prompt=True)
    _, plain_targets = custom_collate_fn([plain[i] for i in range(2)])
    inputs, targets = custom_collate_fn([masked[i] for i in range(2)], mask_prompt=True)
    assert torch.equal(inputs, custom_collate_fn([plain[i] for i in range(2)])[0])
    for row, entry in enumerate(data):
        prompt_len, ids = masked[row]
        prompt = tokenizer.encode(format_input(entry) + "\n\n### Response:\n")
        assert prompt_len == len(prompt) and ids[:prompt_len] == prompt
        assert (targets[row, : prompt_len - 1] == -100).all()
        assert torch.equal(targets[row, prompt_len - 1:], plain_targets[row, prompt_len - 1:])
        kept = [t for t in targets[row].tolist() if t != -100]
        assert kept[-1] == 50256 and tokenizer.decode(kept[:-1]) == entry["output"]  # only the answer + end
    with pytest.raises(LLMKitError, match="mask_prompt=True"):
        custom_collate_fn([plain[0]], mask_prompt=True)
    with pytest.raises(LLMKitError, match="pass mask_prompt=True"):
        custom_collate_fn([masked[0]])


def test_load_instruction_json_checks_every_entry(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps([WITH_INPUT, {"instruction": "Say hi.", "output": "Hi."}]), encoding="utf-8")
    data = load_instruction_json(good)
    assert data[1]["input"] == "" and data[0] == WITH_INPUT

    bad = tmp_path / "bad.json"
    entries = [NO_INPUT] * 17 + [{"input": "", "output": "x"}]
    bad.write_text(json.dumps(entries), encoding="utf-8")
    with pytest.raises(LLMKitError) as err:
        load_instruction_json(bad)
    assert str(err.value) == (f"entry 17 in {bad} lacks 'instruction'; "
                              "every entry needs instruction, input (may be empty) and output")
    bad.write_text(json.dumps([{"instruction": "x", "input": ""}]), encoding="utf-8")
    with pytest.raises(LLMKitError, match="entry 0 .* lacks 'output'"):
        load_instruction_json(bad)
    bad.write_text('{"instruction": "x"}', encoding="utf-8")
    with pytest.raises(LLMKitError, match="not a list"):
        load_instruction_json(bad)
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(LLMKitError, match="not valid JSON"):
        load_instruction_json(bad)
    with pytest.raises(LLMKitError, match="does not exist"):
        load_instruction_json(tmp_path / "none.json")


def test_shipped_instructions_load_when_present():
    path = shipped_instructions_path()
    if not path.exists():
        pytest.skip("instructions.json is not shipped yet")
    data = load_instruction_json()
    assert len(data) > 10 and all(entry["instruction"] and entry["output"] for entry in data)


def test_split_is_the_books_85_10_5_in_file_order():
    data = list(range(1100))
    train, test, validation = split_instructions(data)
    assert (len(train), len(test), len(validation)) == (935, 110, 55)
    assert train + test + validation == data


class ScriptedModel(nn.Module):
    """Stub LM: after the prompt it 'writes' a fixed id sequence, whatever the prompt says."""

    def __init__(self, prompt_len, script, vocab=50257):
        super().__init__()
        self.prompt_len, self.script, self.vocab = prompt_len, script, vocab

    def forward(self, idx):
        logits = torch.zeros(idx.shape[0], idx.shape[1], self.vocab)
        step = idx.shape[1] - self.prompt_len
        logits[:, -1, self.script[min(step, len(self.script) - 1)]] = 1.0
        return logits


def test_generate_responses_strips_prompt_and_header(tokenizer):
    prompt_len = len(tokenizer.encode(format_input(NO_INPUT)))
    script = tokenizer.encode("\n\n### Response:\nParis.") + [50256, 11, 11]
    model = ScriptedModel(prompt_len, script)
    responses = generate_responses(model, tokenizer, [NO_INPUT], "cpu", max_new_tokens=30, context_size=1024)
    assert responses == ["Paris."]  # stopped at <|endoftext|>, header and whitespace removed
    with pytest.raises(LLMKitError, match="context_size"):
        generate_responses(model, tokenizer, [NO_INPUT], "cpu", max_new_tokens=1)


def test_score_responses_exact_and_normalised():
    entries = [NO_INPUT, WITH_INPUT, {"instruction": "a", "input": "", "output": "Blue"}]
    scores = score_responses(entries, ["Paris.", "the mouse was chased by the cat", "Red"])
    assert scores == {"n": 3, "exact_match": pytest.approx(1 / 3), "normalised_match": pytest.approx(2 / 3)}
    assert normalise("  The  Sun, rises! ") == "the sun rises"
    with pytest.raises(LLMKitError, match="one response per entry"):
        score_responses(entries, ["x"])

"""The stage-9 checks: correct solutions in other styles pass; realistic mistakes fail by name."""

import ast
import inspect
import re

import pytest

from llmkit_instructor.grading import GradingError
from llmkit_instructor.grading.instruction import (
    check_custom_collate_fn,
    check_format_input,
    check_instruction_dataset,
    check_mask_prompt_targets,
    check_score_responses,
    check_split_instructions,
)
from llmkit_solutions import instruction as ref
from tests.grading_helpers import mutate, notebook, reference_source, source_cells

CELLS = source_cells("09-instruction-finetuning")
IMPORTS = '''
import string
import torch
from torch.utils.data import Dataset
from llmkit.errors import LLMKitError
from llmkit.tokenizers import encode_text
'''
HEADER = IMPORTS + CELLS["helpers"] + "\n"
FORMAT = reference_source(ref.format_input) + "\n" + reference_source(ref.format_response)


def student(code, name):
    return notebook(HEADER + code)[name]


def src(obj):
    return reference_source(obj)


def test_the_notebook_helpers_are_the_references_own():
    tree = ast.parse(CELLS["helpers"])
    helpers = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    for fn in (ref.normalise, ref._prompt_length):
        assert ast.dump(helpers[fn.__name__]) == ast.dump(ast.parse(inspect.getsource(fn)).body[0]), fn.__name__
    ns = notebook(HEADER)
    assert (ns["PREAMBLE"], ns["RESPONSE_HEADER"]) == (ref.PREAMBLE, ref.RESPONSE_HEADER)


@pytest.mark.parametrize("check, code, name", [
    (check_format_input, FORMAT, "format_input"),
    (check_instruction_dataset, FORMAT + src(ref.InstructionDataset), "InstructionDataset"),
    (check_custom_collate_fn, src(ref.custom_collate_fn) + src(ref.mask_prompt_targets), "custom_collate_fn"),
    (check_mask_prompt_targets, src(ref.mask_prompt_targets), "mask_prompt_targets"),
    (check_split_instructions, src(ref.split_instructions), "split_instructions"),
    (check_score_responses, src(ref.score_responses), "score_responses"),
])
def test_the_reference_written_in_a_notebook_passes(check, code, name):
    check(student(code, name))


# --------------------------------------------------------------------------- other correct styles

BOOKISH = '''
def format_input(entry):
    instruction_text = (
        f"Below is an instruction that describes a task. "
        f"Write a response that appropriately completes the request."
        f"\\n\\n### Instruction:\\n{entry['instruction']}"
    )
    input_text = f"\\n\\n### Input:\\n{entry['input']}" if entry["input"] else ""
    return instruction_text + input_text

class InstructionDataset(Dataset):
    def __init__(self, data, tokenizer, mask_prompt=False):
        self.data = data
        self.mask_prompt = mask_prompt
        self.encoded_texts = []
        self.prompt_lengths = []
        for entry in data:
            prompt = format_input(entry)
            full_text = prompt + f"\\n\\n### Response:\\n{entry['output']}"
            ids = tokenizer.encode(full_text)
            self.encoded_texts.append(ids)
            if mask_prompt:
                self.prompt_lengths.append(_prompt_length(tokenizer, prompt + RESPONSE_HEADER, ids))

    def __getitem__(self, index):
        if self.mask_prompt:
            return self.prompt_lengths[index], self.encoded_texts[index]
        return self.encoded_texts[index]

    def __len__(self):
        return len(self.data)

def custom_collate_fn(batch, pad_token_id=50256, ignore_index=-100, allowed_max_length=None, device="cpu",
                      mask_prompt=False):
    batch_max_length = max(len(item) + 1 for item in batch)
    inputs_lst, targets_lst = [], []
    for item in batch:
        new_item = item.copy()
        new_item += [pad_token_id]
        padded = new_item + [pad_token_id] * (batch_max_length - len(new_item))
        inputs = torch.tensor(padded[:-1])
        targets = torch.tensor(padded[1:])
        mask = targets == pad_token_id
        indices = torch.nonzero(mask).squeeze()
        if indices.numel() > 1:
            targets[indices[1:]] = ignore_index
        if allowed_max_length is not None:
            inputs = inputs[:allowed_max_length]
            targets = targets[:allowed_max_length]
        inputs_lst.append(inputs)
        targets_lst.append(targets)
    return torch.stack(inputs_lst).to(device), torch.stack(targets_lst).to(device)

def mask_prompt_targets(targets, prompt_lengths, ignore_index=-100):
    for b, p in enumerate(prompt_lengths):
        if p > 1:
            targets[b, :p - 1] = ignore_index
    return targets

def split_instructions(data, train_frac=0.85, test_frac=0.1):
    train_portion = int(len(data) * train_frac)
    test_portion = int(len(data) * test_frac)
    train_data = data[:train_portion]
    test_data = data[train_portion:train_portion + test_portion]
    val_data = data[train_portion + test_portion:]
    return train_data, test_data, val_data

def score_responses(entries, responses):
    pairs = list(zip((e["output"] for e in entries), responses))
    return {"n": len(pairs),
            "exact_match": sum(a.strip() == b.strip() for a, b in pairs) / len(pairs),
            "normalised_match": sum(normalise(a) == normalise(b) for a, b in pairs) / len(pairs)}
'''


@pytest.mark.parametrize("check, name", [
    (check_format_input, "format_input"), (check_instruction_dataset, "InstructionDataset"),
    (check_custom_collate_fn, "custom_collate_fn"), (check_mask_prompt_targets, "mask_prompt_targets"),
    (check_split_instructions, "split_instructions"), (check_score_responses, "score_responses"),
])
def test_a_solution_written_differently_earns_full_marks(check, name):
    check(student(BOOKISH, name))


def test_a_wrong_format_input_is_not_charged_twice():
    code = mutate(FORMAT, '    if entry.get("input"):\n', "    if True:\n") + src(ref.InstructionDataset)
    with pytest.raises(GradingError):
        check_format_input(student(code, "format_input"))
    check_instruction_dataset(student(code, "InstructionDataset"))


# --------------------------------------------------------------------------- mistakes, named

COLLATE = src(ref.custom_collate_fn)

MISTAKES = [
    (FORMAT, "format_input", check_format_input, '    if entry.get("input"):\n', "    if True:\n",
     "although the input is empty"),
    (FORMAT, "format_input", check_format_input, '    if entry.get("input"):\n        text +=', "    text +=",
     "although the input is empty"),
    (FORMAT, "format_input", check_format_input, '"\\n\\n### Input:\\n', '"\\n### Input:\\n', "empty line"),
    (FORMAT, "format_input", check_format_input, "    return text\n", "    return text + RESPONSE_HEADER\n",
     "already holds '### Response:'"),
    (FORMAT + src(ref.InstructionDataset), "InstructionDataset", check_instruction_dataset,
     "prompt + format_response(entry))", "prompt + entry['output'])", "response header is missing"),
    (FORMAT + src(ref.InstructionDataset), "InstructionDataset", check_instruction_dataset,
     "prompt + format_response(entry))", "prompt)", "the output is missing"),
    (COLLATE, "custom_collate_fn", check_custom_collate_fn, "        targets[n:] = ignore_index\n", "",
     "the padding is not masked"),
    (COLLATE, "custom_collate_fn", check_custom_collate_fn, "targets[n:] = ignore_index",
     "targets[n - 1:] = ignore_index", "keep the first pad"),
    (COLLATE, "custom_collate_fn", check_custom_collate_fn,
     "            inputs, targets = inputs[:allowed_max_length], targets[:allowed_max_length]\n", "            pass\n",
     "no truncation to allowed_max_length"),
    (COLLATE, "custom_collate_fn", check_custom_collate_fn, "targets = torch.tensor(padded[1:])",
     "targets = torch.tensor(padded[:-1])", "not shifted"),
    (COLLATE, "custom_collate_fn", check_custom_collate_fn, "max(len(item) + 1 for item in batch)",
     "max(len(item) for item in batch)", "no end token is added"),
    (COLLATE, "custom_collate_fn", check_custom_collate_fn, "inputs = torch.tensor(padded[:-1])",
     "inputs = torch.tensor(padded[:-1]); inputs[n:] = ignore_index", "the inputs contain ignore_index"),
    (COLLATE, "custom_collate_fn", check_custom_collate_fn, "padded = list(item) + [pad_token_id]",
     "padded = item; padded += [pad_token_id]", "the items it is given are changed"),
    (src(ref.mask_prompt_targets), "mask_prompt_targets", check_mask_prompt_targets,
     "max(prompt_length - 1, 0)", "prompt_length", "the first response token is hidden too"),
    (src(ref.mask_prompt_targets), "mask_prompt_targets", check_mask_prompt_targets,
     "max(prompt_length - 1, 0)", "max(prompt_length - 2, 0)", "one prompt token too few"),
    (src(ref.mask_prompt_targets), "mask_prompt_targets", check_mask_prompt_targets,
     "= ignore_index", "= -100", "use ignore_index"),
    (src(ref.mask_prompt_targets), "mask_prompt_targets", check_mask_prompt_targets, "    return masked\n", "",
     "returned None"),
    (src(ref.split_instructions), "split_instructions", check_split_instructions,
     "return data[:train_end], data[train_end:test_end], data[test_end:]",
     "return data[:train_end], data[test_end:], data[train_end:test_end]", "come back as (train, validation, test)"),
    (src(ref.split_instructions), "split_instructions", check_split_instructions,
     "train_end = int(len(data) * train_frac)", "train_end = round(len(data) * train_frac)", "round the sizes down"),
    (src(ref.split_instructions), "split_instructions", check_split_instructions,
     "    train_end = int(", "    data = sorted(data, key=str)\n    train_end = int(", "without shuffling"),
    (src(ref.score_responses), "score_responses", check_score_responses,
     'entry["output"].strip() == response.strip()', 'entry["output"] == response', "strip surrounding whitespace"),
    (src(ref.score_responses), "score_responses", check_score_responses,
     "normalise(entry[\"output\"]) == normalise(response)", "entry[\"output\"].lower() == response.lower()",
     "compare normalise(output)"),
    (src(ref.score_responses), "score_responses", check_score_responses, '"exact_match": exact / n',
     '"exact_match": 100 * exact / n', "not a percentage"),
]


@pytest.mark.parametrize("code, name, check, old, new, hint", MISTAKES,
                         ids=[f"{m[1]}-{i}" for i, m in enumerate(MISTAKES)])
def test_mistakes_are_named(code, name, check, old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check(student(mutate(code, old, new), name))


def test_renaming_the_given_variables_is_explained():
    renamed = mutate(src(ref.InstructionDataset), "prompt = format_input(entry)", "p = format_input(entry)")
    code = FORMAT + mutate(renamed, "ids = encode_text(tokenizer, prompt + format_response(entry))",
                           "ids = encode_text(tokenizer, p + format_response(entry))")
    with pytest.raises(GradingError, match="name the prompt text `prompt`"):
        check_instruction_dataset(student(code, "InstructionDataset"))


def test_importing_or_wrapping_the_reference_earns_nothing():
    ns = notebook("from llmkit_solutions.instruction import custom_collate_fn")
    with pytest.raises(GradingError, match="imported from llmkit_solutions.instruction"):
        check_custom_collate_fn(ns["custom_collate_fn"])
    wrapped = notebook(HEADER + '''
import llmkit_solutions.instruction as kit
def format_input(entry):
    return kit.format_input(entry)
''')
    with pytest.raises(GradingError, match="calls the reference solution"):
        check_format_input(wrapped["format_input"])
    sub = notebook(HEADER + "import llmkit_solutions.instruction as kit\n"
                            "class InstructionDataset(kit.InstructionDataset):\n    pass\n")
    with pytest.raises(GradingError, match="subclasses InstructionDataset"):
        check_instruction_dataset(sub["InstructionDataset"])


def test_a_crashing_student_function_is_a_failed_check_not_a_crash():
    code = mutate(COLLATE, "torch.stack(inputs_list)", "torch.stack(inputs_list, dim=3)")
    with pytest.raises(GradingError, match="raised IndexError"):
        check_custom_collate_fn(student(code, "custom_collate_fn"))


# Hints the course's mistake table (course/mutants/09-instruction-finetuning.json) leaves to this unit test.
@pytest.mark.parametrize("old, new, key", [
    ("    if entry.get(\"input\"):\n        text += f\"\\n\\n### Input:\\n{entry['input']}\"\n", "", "input_missing"),
    ("\\n\\n### Instruction:\\n", "\\n### Instruction:\\n", "no_blank_line"),
    ("{PREAMBLE}\\n\\n### Instruction", "### Instruction", "no_preamble"),
])
def test_rarer_prompt_mistakes_are_named(old, new, key):
    from llmkit_instructor.grading.instruction import HINTS, check_format_input
    from llmkit_solutions import instruction as reference

    source = reference_source(reference.format_input)
    code = source.replace(old, new)
    assert code != source, old
    with pytest.raises(GradingError, match=re.escape(HINTS[key])):
        check_format_input(student(code, "format_input"))


def test_a_dataset_without_the_mask_prompt_option_earns_full_marks():
    """The book's InstructionDataset takes (data, tokenizer) only; exercise 4 grades the masking itself."""
    code = BOOKISH.split("class InstructionDataset")[0] + '''
class InstructionDataset(Dataset):
    def __init__(self, data, tokenizer):
        self.encoded_texts = [tokenizer.encode(format_input(e) + f"\\n\\n### Response:\\n{e['output']}") for e in data]

    def __getitem__(self, index):
        return self.encoded_texts[index]

    def __len__(self):
        return len(self.encoded_texts)
'''
    check_instruction_dataset(student(code, "InstructionDataset"))

"""The stage-2 checks: correct solutions in other styles pass; realistic mistakes fail by name."""

import re

import pytest

from llmkit_instructor.grading import GradingError
from llmkit_instructor.grading.sampling import (
    check_create_dataloader_v1,
    check_gpt_dataset_v1,
    check_input_target_pair,
    check_random_block_sampler,
)
from llmkit_solutions import data_sampling as ref
from tests.grading_helpers import mutate, notebook, reference_source

# What the notebook's setup cell provides: imports and the given check, written in the notebook.
HEADER = ("import torch\nfrom torch.utils.data import DataLoader, Dataset\n"
          "from llmkit.errors import LLMKitError\nfrom llmkit.gpt2_bpe import gpt2_encoding\n"
          "from llmkit.tokenizers import encode_text\n" + reference_source(ref.check_window))
PAIR = reference_source(ref.input_target_pair)
DATASET = reference_source(ref.GPTDatasetV1)
LOADER = reference_source(ref.create_dataloader_v1)
SAMPLER = reference_source(ref.RandomBlockSampler)


def run(code):
    return notebook(HEADER + code)


def test_the_reference_written_in_a_notebook_passes():
    ns = run(PAIR + DATASET + LOADER + SAMPLER)
    check_input_target_pair(ns["input_target_pair"])
    check_gpt_dataset_v1(ns["GPTDatasetV1"])
    check_create_dataloader_v1(ns["create_dataloader_v1"])
    check_random_block_sampler(ns["RandomBlockSampler"])


# The book's own style: tiktoken-style encode, torch.tensor per window, no helper function;
# nanoGPT's get_batch with torch.randint and its own generator.
BOOK_STYLE = '''
class GPTDatasetV1(Dataset):
    def __init__(self, txt, tokenizer, max_length, stride):
        self.input_ids = []
        self.target_ids = []
        token_ids = tokenizer.encode(txt, allowed_special={"<|endoftext|>"})
        for i in range(0, len(token_ids) - max_length, stride):
            input_chunk = token_ids[i:i + max_length]
            target_chunk = token_ids[i + 1: i + max_length + 1]
            self.input_ids.append(torch.tensor(input_chunk))
            self.target_ids.append(torch.tensor(target_chunk))

    def __len__(self):
        return len(self.input_ids)

    def __getitem__(self, idx):
        return self.input_ids[idx], self.target_ids[idx]


def create_dataloader_v1(txt, batch_size=4, max_length=256, stride=128, shuffle=True, drop_last=True,
                         num_workers=0):
    tokenizer = gpt2_encoding()
    dataset = GPTDatasetV1(txt, tokenizer, max_length, stride)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers)


def input_target_pair(token_ids, start, max_length):
    window = token_ids[start:start + max_length + 1]
    return window[:-1], window[1:]


class RandomBlockSampler:
    def __init__(self, token_ids, block_size, batch_size, num_batches=None, seed=123):
        self.data = torch.tensor(token_ids)
        self.block_size, self.batch_size = block_size, batch_size
        self.num_batches = num_batches or 1
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)

    def __len__(self):
        return self.num_batches

    def get_batch(self):
        ix = torch.randint(len(self.data) - self.block_size, (self.batch_size,), generator=self.generator)
        x = torch.stack([self.data[i:i + self.block_size] for i in ix])
        y = torch.stack([self.data[i + 1:i + 1 + self.block_size] for i in ix])
        return x, y

    def __iter__(self):
        for _ in range(self.num_batches):
            yield self.get_batch()
'''


def test_book_and_nanogpt_style_solutions_pass():
    ns = run(BOOK_STYLE)
    check_input_target_pair(ns["input_target_pair"])
    check_gpt_dataset_v1(ns["GPTDatasetV1"])
    check_create_dataloader_v1(ns["create_dataloader_v1"])
    check_random_block_sampler(ns["RandomBlockSampler"])


@pytest.mark.parametrize("old, new, hint", [
    ("target_ids = token_ids[start + 1 : start + max_length + 1]",
     "target_ids = token_ids[start : start + max_length]", "targets not shifted by one"),
    ("target_ids = token_ids[start + 1 : start + max_length + 1]",
     "target_ids = token_ids[start + 2 : start + max_length + 2]", "shifted by two"),
    ("input_ids = token_ids[start : start + max_length]",
     "input_ids = token_ids[start : start + max_length + 1]", "max_length + 1 ids"),
])
def test_input_target_pair_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_input_target_pair(run(mutate(PAIR, old, new))["input_target_pair"])


@pytest.mark.parametrize("old, new, hint", [
    ("input_ids, target_ids = input_target_pair(token_ids, start, max_length)",
     "input_ids = target_ids = token_ids[start : start + max_length]", "targets not shifted by one"),
    ("range(0, len(token_ids) - max_length, stride)", "range(0, len(token_ids) - max_length, 1)", "wrong stride"),
    ("range(0, len(token_ids) - max_length, stride)", "range(0, len(token_ids) - max_length, max_length)",
     "wrong stride"),
    ("range(0, len(token_ids) - max_length, stride)", "range(0, len(token_ids) - max_length - 1, stride)",
     "off-by-one window count"),
    ("range(0, len(token_ids) - max_length, stride)", "range(0, len(token_ids) - max_length + 1, stride)",
     "off-by-one window count"),
    ("encode_text(tokenizer, txt)", "tokenizer.encode(txt)", "allowed_special"),
    ("self.input_ids.append(input_ids)", "self.input_ids.append(input_ids.tolist())", "tensors of ids"),
])
def test_gpt_dataset_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_gpt_dataset_v1(run(PAIR + mutate(DATASET, old, new))["GPTDatasetV1"])


def test_a_wrong_helper_costs_points_once():
    """A mistake in input_target_pair fails its own check, not the dataset's or the sampler's."""
    broken = mutate(PAIR, "start + 1 : start + max_length + 1", "start : start + max_length")
    ns = run(broken + DATASET + LOADER + SAMPLER)
    with pytest.raises(GradingError):
        check_input_target_pair(ns["input_target_pair"])
    check_gpt_dataset_v1(ns["GPTDatasetV1"])
    check_create_dataloader_v1(ns["create_dataloader_v1"])
    check_random_block_sampler(ns["RandomBlockSampler"])
    assert ns["input_target_pair"].__module__ == "__main__"  # the student's helper is back in place


@pytest.mark.parametrize("old, new, hint", [
    ("shuffle=shuffle, drop_last", "shuffle=False, drop_last", "the loader never shuffles"),
    ("shuffle=shuffle, drop_last", "shuffle=True, drop_last", "shuffles the windows"),
    ("drop_last=drop_last,", "drop_last=False,", "drop_last"),
    # A forced drop_last is named as such, not as a stride or batch_size problem.
    ("drop_last=drop_last,", "drop_last=True,", "dropped although drop_last=False"),
    ("dataset = GPTDatasetV1(txt, tokenizer, max_length, stride)",
     "dataset = GPTDatasetV1(txt, tokenizer, max_length, max_length)", "pass stride on to GPTDatasetV1"),
    ("batch_size=batch_size,", "batch_size=4,", "pass batch_size on to the DataLoader"),
    ("stride=128", "stride=256", "book's signature"),
    ("dataset = GPTDatasetV1(txt, tokenizer, max_length, stride)",
     "dataset = GPTDatasetV1(txt, tokenizer, stride, max_length)", "pass max_length and stride"),
    ("tokenizer = gpt2_encoding()", "tokenizer = CharTokenizer()", "GPT-2's BPE"),
])
def test_create_dataloader_mistakes_are_named(old, new, hint):
    char = ("class CharTokenizer:\n    def encode(self, text, **kw):\n"
            "        return [ord(c) for c in text]\n")
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_create_dataloader_v1(run(char + PAIR + DATASET + mutate(LOADER, old, new))["create_dataloader_v1"])


def test_create_dataloader_refusing_endoftext_is_named():
    code = mutate(DATASET, "torch.as_tensor(encode_text(tokenizer, txt), dtype=torch.long)",
                  "torch.tensor(tokenizer.encode(txt))")
    code = code.replace("class GPTDatasetV1", "class MyDataset")
    loader = mutate(LOADER, "GPTDatasetV1(", "MyDataset(")
    with pytest.raises(GradingError, match="allowed_special"):
        check_create_dataloader_v1(run(PAIR + code + loader)["create_dataloader_v1"])


@pytest.mark.parametrize("old, new, hint", [
    ("generator=self.generator)", ")", "shuffle not seeded"),
    ("self.generator = torch.Generator().manual_seed(seed)", "self.generator = torch.Generator().manual_seed(123)",
     "different seeds draw the same batches"),
    ("torch.randint(len(self.data) - self.block_size,", "torch.randint(len(self.data) - self.block_size - 1,",
     "never drawn"),
    ("torch.randint(len(self.data) - self.block_size,", "torch.randint(len(self.data) - self.block_size + 1,",
     "one too far"),
    ("pairs = [input_target_pair(self.data, int(s), self.block_size) for s in starts]",
     "pairs = [(self.data[s : s + self.block_size],) * 2 for s in starts]", "targets not shifted by one"),
    ("        starts = torch.randint(", "        self.generator.manual_seed(0)\n        starts = torch.randint(",
     "draws the same batch"),
])
def test_random_block_sampler_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_random_block_sampler(run(PAIR + mutate(SAMPLER, old, new))["RandomBlockSampler"])


def test_importing_or_wrapping_the_reference_earns_nothing():
    ns = notebook("from llmkit_solutions.data_sampling import GPTDatasetV1, create_dataloader_v1")
    with pytest.raises(GradingError, match="imported from llmkit_solutions.data_sampling"):
        check_gpt_dataset_v1(ns["GPTDatasetV1"])
    with pytest.raises(GradingError, match="imported from llmkit_solutions.data_sampling"):
        check_create_dataloader_v1(ns["create_dataloader_v1"])
    sub = notebook("import llmkit_solutions.data_sampling as d\nclass RandomBlockSampler(d.RandomBlockSampler):\n"
                   "    pass")
    with pytest.raises(GradingError, match="subclasses RandomBlockSampler"):
        check_random_block_sampler(sub["RandomBlockSampler"])
    wrapped = run("from llmkit_solutions.data_sampling import create_dataloader_v1 as ref_loader\n"
                  "def create_dataloader_v1(txt, batch_size=4, max_length=256, stride=128, shuffle=True,\n"
                  "                         drop_last=True, num_workers=0):\n"
                  "    return ref_loader(txt, batch_size, max_length, stride, shuffle, drop_last, num_workers)\n")
    with pytest.raises(GradingError, match="calls the reference solution ref_loader"):
        check_create_dataloader_v1(wrapped["create_dataloader_v1"])


def test_a_crashing_student_class_is_a_failed_check_not_a_crash():
    code = mutate(SAMPLER, "x = torch.stack(", "x = torch.stackk(")
    with pytest.raises(GradingError, match="raised AttributeError"):
        check_random_block_sampler(run(PAIR + code)["RandomBlockSampler"])

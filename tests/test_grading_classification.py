"""The stage-8 checks: correct solutions in other styles pass; realistic mistakes fail by name."""

import ast
import inspect
import re

import pytest

from llmkit_instructor.grading import GradingError
from llmkit_instructor.grading.classification import (
    check_calc_accuracy_loader,
    check_calc_loss_batch,
    check_classify_review,
    check_create_balanced_dataset,
    check_prepare_for_classification,
    check_random_split,
    check_spam_dataset,
)
from llmkit_solutions import classification as ref
from tests.grading_helpers import mutate, notebook, reference_source, source_cells

CELLS = source_cells("08-classification-finetuning")
IMPORTS = '''
from pathlib import Path
import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset
from llmkit.errors import LLMKitError
from llmkit.tokenizers import encode_text
import llmkit_solutions.classification as kit_files
'''
HEADER = IMPORTS + CELLS["helpers"] + "\n"


def student(code, name):
    return notebook(HEADER + code)[name]


def src(obj):
    return reference_source(obj)


def test_the_notebook_helpers_are_the_references_own():
    helpers = {n.name: n for n in ast.parse(CELLS["helpers"]).body if isinstance(n, ast.FunctionDef)}
    for fn in (ref._label_id, ref.check_fits_context, ref._context_length):
        assert ast.dump(helpers[fn.__name__]) == ast.dump(ast.parse(inspect.getsource(fn)).body[0]), fn.__name__


@pytest.mark.parametrize("check, obj", [
    (check_create_balanced_dataset, ref.create_balanced_dataset), (check_random_split, ref.random_split),
    (check_spam_dataset, ref.SpamDataset), (check_prepare_for_classification, ref.prepare_for_classification),
    (check_calc_loss_batch, ref.calc_loss_batch), (check_calc_accuracy_loader, ref.calc_accuracy_loader),
    (check_classify_review, ref.classify_review),
])
def test_the_reference_written_in_a_notebook_passes(check, obj):
    check(student(src(obj), obj.__name__))


# --------------------------------------------------------------------------- other correct styles

BOOKISH = '''
import random

def create_balanced_dataset(rows, seed=123):
    spam = [r for r in rows if r[0] == "spam"]
    ham = [r for r in rows if r[0] == "ham"]
    if len(ham) < len(spam):
        raise ValueError("not enough ham")
    return random.Random(seed).sample(ham, len(spam)) + spam

def random_split(data, train_frac=0.7, validation_frac=0.1, seed=123):
    data = list(data)
    random.Random(seed).shuffle(data)
    a = int(len(data) * train_frac)
    b = a + int(len(data) * validation_frac)
    return data[:a], data[a:b], data[b:]

class SpamDataset(Dataset):
    def __init__(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
        self.labels = [LABELS[label] for label, _ in csv_file]
        self.encoded_texts = [tokenizer.encode(text) for _, text in csv_file]
        if max_length is None:
            max_length = max(len(t) for t in self.encoded_texts)
        self.max_length = max_length
        self.encoded_texts = [(t + [pad_token_id] * max_length)[:max_length] for t in self.encoded_texts]

    def __getitem__(self, i):
        return torch.tensor(self.encoded_texts[i]), torch.tensor(self.labels[i])

    def __len__(self):
        return len(self.encoded_texts)

def prepare_for_classification(model, num_classes=2, trainable_blocks=1):
    model.requires_grad_(False)
    model.out_head = torch.nn.Linear(model.out_head.in_features, num_classes)
    n = len(model.trf_blocks)
    for i in range(n - trainable_blocks, n):
        model.trf_blocks[i].requires_grad_(True)
    model.final_norm.requires_grad_(True)
    return model

def calc_loss_batch(input_batch, target_batch, model, device):
    logits = model(input_batch.to(device))
    return torch.nn.functional.cross_entropy(logits[:, -1], target_batch.to(device))

def calc_accuracy_loader(data_loader, model, device, num_batches=None):
    model.eval()
    correct = total = 0
    if num_batches is None:
        num_batches = len(data_loader)
    else:
        num_batches = min(num_batches, len(data_loader))
    for i, (x, y) in enumerate(data_loader):
        if i < num_batches:
            with torch.no_grad():
                logits = model(x.to(device))[:, -1, :]
            predicted = torch.argmax(logits, dim=-1)
            correct += (predicted == y.to(device)).sum().item()
            total += predicted.shape[0]
        else:
            break
    return correct / total

def classify_review(text, model, tokenizer, device, max_length=None, pad_token_id=50256):
    model.eval()
    input_ids = tokenizer.encode(text)
    supported_context_length = model.pos_emb.weight.shape[0]
    input_ids = input_ids[:min(max_length, supported_context_length)]
    input_ids += [pad_token_id] * (max_length - len(input_ids))
    input_tensor = torch.tensor(input_ids, device=device).unsqueeze(0)
    with torch.no_grad():
        logits = model(input_tensor)[:, -1, :]
    predicted_label = torch.argmax(logits, dim=-1).item()
    return "spam" if predicted_label == 1 else "not spam"
'''


@pytest.mark.parametrize("check, name", [
    (check_create_balanced_dataset, "create_balanced_dataset"), (check_random_split, "random_split"),
    (check_spam_dataset, "SpamDataset"), (check_prepare_for_classification, "prepare_for_classification"),
    (check_calc_loss_batch, "calc_loss_batch"), (check_calc_accuracy_loader, "calc_accuracy_loader"),
    (check_classify_review, "classify_review"),
])
def test_a_solution_written_differently_earns_full_marks(check, name):
    check(student(BOOKISH, name))


# --------------------------------------------------------------------------- mistakes, named

MISTAKES = [
    # create_balanced_dataset
    (ref.create_balanced_dataset, check_create_balanced_dataset, "size=len(spam), replace=False)",
     "size=len(spam), replace=True)", "drawn twice"),
    (ref.create_balanced_dataset, check_create_balanced_dataset, "return [ham[i] for i in picked] + spam",
     "return ham + spam", "ham is not undersampled"),
    (ref.create_balanced_dataset, check_create_balanced_dataset, "np.random.RandomState(seed)",
     "np.random.RandomState(123)", "seed argument makes no difference"),
    (ref.create_balanced_dataset, check_create_balanced_dataset, "np.random.RandomState(seed)", "np.random",
     "same seed give different rows"),
    # random_split
    (ref.random_split, check_random_split, "shuffled = [data[i] for i in order]", "shuffled = list(data)",
     "original order"),
    (ref.random_split, check_random_split, "train_end = int(len(shuffled) * train_frac)",
     "train_end = round(len(shuffled) * train_frac)", "round the sizes down"),
    (ref.random_split, check_random_split,
     "return shuffled[:train_end], shuffled[train_end:validation_end], shuffled[validation_end:]",
     "return shuffled[:train_end], shuffled[validation_end:], shuffled[train_end:validation_end]",
     "come back as (train, test, validation)"),
    # SpamDataset
    (ref.SpamDataset, check_spam_dataset, 'rows = [(_label_id(label, f"row {i}"), text)', "rows = [(label, text)",
     "labels are not mapped to 0/1"),
    (ref.SpamDataset, check_spam_dataset, "ids + [pad_token_id] * (self.max_length - len(ids))",
     "[pad_token_id] * (self.max_length - len(ids)) + ids", "padding is on the wrong side"),
    (ref.SpamDataset, check_spam_dataset, "ids + [pad_token_id] * (self.max_length - len(ids))",
     "ids + [0] * (self.max_length - len(ids))", "padded with 0 instead of pad_token_id"),
    (ref.SpamDataset, check_spam_dataset, "ids + [pad_token_id] * (self.max_length - len(ids))",
     "ids + [50256] * (self.max_length - len(ids))", "whatever pad_token_id says"),
    (ref.SpamDataset, check_spam_dataset,
     "            self.encoded_texts = [ids[:max_length] for ids in self.encoded_texts]\n", "",
     "not cut"),
    (ref.SpamDataset, check_spam_dataset, "dtype=torch.long)\n", "dtype=torch.float)\n", "0-d torch.long"),
    # prepare_for_classification
    (ref.prepare_for_classification, check_prepare_for_classification,
     "    model.out_head = nn.Linear(old.in_features, num_classes)", "    model.out_head = old  # nn.Linear(",
     "the head was not replaced"),
    (ref.prepare_for_classification, check_prepare_for_classification,
     "    for param in model.parameters():\n        param.requires_grad = False\n", "",
     "the layers are not frozen"),
    (ref.prepare_for_classification, check_prepare_for_classification,
     "    for param in model.final_norm.parameters():\n        param.requires_grad = True\n", "",
     "final_norm is frozen"),
    (ref.prepare_for_classification, check_prepare_for_classification,
     "list(model.trf_blocks)[len(model.trf_blocks) - trainable_blocks:]", "list(model.trf_blocks)[:trainable_blocks]",
     "the first block trains instead of the last"),
    (ref.prepare_for_classification, check_prepare_for_classification, "nn.Linear(old.in_features, num_classes)",
     "nn.Linear(old.in_features, num_classes, bias=False)", "the new head has no bias"),
    (ref.prepare_for_classification, check_prepare_for_classification,
     "    for param in model.parameters():\n        param.requires_grad = False\n",
     "    import copy\n    model = copy.deepcopy(model)\n    for param in model.parameters():\n        param.requires_grad = False\n",
     "the model it was given is left unchanged"),
    (ref.prepare_for_classification, check_prepare_for_classification,
     "list(model.trf_blocks)[len(model.trf_blocks) - trainable_blocks:]", "list(model.trf_blocks)[-trainable_blocks:]",
     "blocks[-0:] is the whole list"),
    (ref.prepare_for_classification, check_prepare_for_classification, "nn.Linear(old.in_features, num_classes)",
     "nn.Linear(old.in_features, 2)", "expected num_classes=3"),
    # calc_loss_batch
    (ref.calc_loss_batch, check_calc_loss_batch, "[:, -1, :]", "[:, 0, :]", "logits of the first token"),
    (ref.calc_loss_batch, check_calc_loss_batch, "[:, -1, :]", ".mean(dim=1)", "averaged over all tokens"),
    (ref.calc_loss_batch, check_calc_loss_batch, "return nn.functional.cross_entropy(logits, target_batch)",
     "return nn.functional.cross_entropy(logits, target_batch).item()", "not .item()"),
    # calc_accuracy_loader
    (ref.calc_accuracy_loader, check_calc_accuracy_loader, "model(input_batch)[:, -1, :]",
     "model(input_batch)[:, 0, :]", "logits of the first token"),
    (ref.calc_accuracy_loader, check_calc_accuracy_loader, "            if i >= num_batches:\n                break\n",
     "", "num_batches is ignored"),
    (ref.calc_accuracy_loader, check_calc_accuracy_loader, "    model.eval()  # no dropout while measuring\n", "",
     "train mode"),
    (ref.calc_accuracy_loader, check_calc_accuracy_loader, "return correct / seen if seen else",
     "return 100 * correct / seen if seen else", "not a percentage"),
    # classify_review
    (ref.classify_review, check_classify_review, "logits = model(input_tensor)[:, -1, :]",
     "logits = model(input_tensor)[:, 0, :]", "logits of the first token"),
    (ref.classify_review, check_classify_review, "input_ids + [pad_token_id] * (max_length - len(input_ids))",
     "[pad_token_id] * (max_length - len(input_ids)) + input_ids", "padding is on the wrong side"),
    (ref.classify_review, check_classify_review, "input_ids + [pad_token_id] * (max_length - len(input_ids))",
     "input_ids", "does not pad the text"),
    (ref.classify_review, check_classify_review, "        input_ids = input_ids[:limit]\n", "        pass\n",
     "not cut"),
    (ref.classify_review, check_classify_review,
     'return "spam" if torch.argmax(logits, dim=-1).item() == 1 else "not spam"',
     'return "not spam" if torch.argmax(logits, dim=-1).item() == 1 else "spam"', "swapped"),
]


@pytest.mark.parametrize("obj, check, old, new, hint", MISTAKES,
                         ids=[f"{m[0].__name__}-{i}" for i, m in enumerate(MISTAKES)])
def test_mistakes_are_named(obj, check, old, new, hint):
    code = mutate(src(obj), old, new)
    with pytest.raises(GradingError, match=re.escape(hint)):
        check(student(code, obj.__name__))


def test_a_dataset_without_max_length_is_named():
    code = mutate(BOOKISH, "        self.max_length = max_length\n", "")
    with pytest.raises(GradingError, match="no max_length attribute"):
        check_spam_dataset(student(code, "SpamDataset"))


def test_classify_review_returning_an_int_is_named():
    code = mutate(src(ref.classify_review), 'return "spam" if torch.argmax(logits, dim=-1).item() == 1 else "not spam"',
                  "return torch.argmax(logits, dim=-1).item()")
    with pytest.raises(GradingError, match="return the string 'spam' or 'not spam'"):
        check_classify_review(student(code, "classify_review"))


def test_head_created_before_the_freeze_is_named():
    code = mutate(src(ref.prepare_for_classification),
                  "    for param in model.parameters():\n        param.requires_grad = False\n"
                  "    old = model.out_head\n"
                  "    model.out_head = nn.Linear(old.in_features, num_classes).to(device=old.weight.device, "
                  "dtype=old.weight.dtype)\n",
                  "    old = model.out_head\n    model.out_head = nn.Linear(old.in_features, num_classes)\n"
                  "    for param in model.parameters():\n        param.requires_grad = False\n")
    with pytest.raises(GradingError, match="the new head is frozen"):
        check_prepare_for_classification(student(code, "prepare_for_classification"))


def test_importing_or_wrapping_the_reference_earns_nothing():
    ns = notebook("from llmkit_solutions.classification import SpamDataset")
    with pytest.raises(GradingError, match="imported from llmkit_solutions.classification"):
        check_spam_dataset(ns["SpamDataset"])
    wrapped = notebook(HEADER + '''
def classify_review(text, model, tokenizer, device, max_length=None, pad_token_id=50256):
    return kit_files.classify_review(text, model, tokenizer, device, max_length, pad_token_id)
''')
    with pytest.raises(GradingError, match="calls the reference solution"):
        check_classify_review(wrapped["classify_review"])
    sub = notebook(HEADER + "class SpamDataset(kit_files.SpamDataset):\n    pass\n")
    with pytest.raises(GradingError, match="subclasses SpamDataset"):
        check_spam_dataset(sub["SpamDataset"])


def test_a_crashing_student_function_is_a_failed_check_not_a_crash():
    code = mutate(src(ref.calc_loss_batch), "logits = model(input_batch)[:, -1, :]", "logits = model(input_batch)[-1]")
    with pytest.raises(GradingError, match="calc_loss_batch"):
        check_calc_loss_batch(student(code, "calc_loss_batch"))


# Hints the course's mistake table (course/mutants/08-classification-finetuning.json) leaves to this unit test.
RARER_MISTAKES = [
    (ref.SpamDataset, check_spam_dataset, "ids[:max_length] for ids", "ids[-max_length:] for ids", "cut_front"),
    (ref.SpamDataset, check_spam_dataset, 'rows = [(_label_id(label, f"row {i}"), text)',
     'rows = [(1 - _label_id(label, f"row {i}"), text)', "labels_swapped"),
    (ref.calc_loss_batch, check_calc_loss_batch,
     "    logits = model(input_batch)[:, -1, :]  # (B, T, C) -> (B, C)\n"
     "    return nn.functional.cross_entropy(logits, target_batch)",
     "    logits = model(input_batch)  # (B, T, C)\n"
     "    targets = target_batch.repeat_interleave(logits.shape[1])\n"
     "    return nn.functional.cross_entropy(logits.flatten(0, 1), targets)", "all_tokens"),
    (ref.classify_review, check_classify_review, 'return "spam" if', 'return "not spam" if', "swapped_names"),
    (ref.prepare_for_classification, check_prepare_for_classification,
     "    for block in list(model.trf_blocks)", "    model.out_head.requires_grad_(False)\n    for block in []:\n"
     "        pass\n    for block in list(model.trf_blocks)[:0]", "all_frozen"),
]


@pytest.mark.parametrize("obj, check, old, new, key", RARER_MISTAKES)
def test_rarer_mistakes_are_named(obj, check, old, new, key):
    from llmkit_instructor.grading.classification import HINTS

    code = mutate(src(obj), old, new)
    if key == "swapped_names":
        code = code.replace('else "not spam"', 'else "spam"')
    if key == "all_frozen":
        code = code.replace("    for param in model.final_norm.parameters():\n        param.requires_grad = True\n", "")
    with pytest.raises(GradingError, match=re.escape(HINTS[key])):
        check(student(code, obj.__name__))


# The book's interface: the path of a saved split, read with pandas (columns Label 0/1 and Text).
PANDAS_STYLE = '''
import pandas as pd

class SpamDataset(Dataset):
    def __init__(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
        self.data = pd.read_csv(csv_file)
        self.encoded_texts = [tokenizer.encode(t) for t in self.data["Text"]]
        self.max_length = max_length if max_length is not None else max(len(t) for t in self.encoded_texts)
        self.encoded_texts = [t[:self.max_length] + [pad_token_id] * (self.max_length - len(t[:self.max_length]))
                              for t in self.encoded_texts]

    def __getitem__(self, index):
        label = self.data.iloc[index]["Label"]
        return torch.tensor(self.encoded_texts[index], dtype=torch.long), torch.tensor(label, dtype=torch.long)

    def __len__(self):
        return len(self.data)
'''


def test_a_dataset_that_reads_only_csv_files_earns_full_marks():
    check_spam_dataset(student(PANDAS_STYLE, "SpamDataset"))


def test_a_dataset_wrong_on_files_fails_even_if_right_on_rows():
    code = mutate(src(ref.SpamDataset), "rows = read_labeled_file(csv_file)",
                  "rows = [(1 - label, text) for label, text in read_labeled_file(csv_file)]")
    with pytest.raises(GradingError, match="split0.csv"):
        check_spam_dataset(student(code, "SpamDataset"))


def test_a_dataset_that_accepts_nothing_says_both_ways():
    code = mutate(src(ref.SpamDataset), "        if not rows:\n", "        rows = None\n        if not rows:\n")
    with pytest.raises(GradingError, match="path of a saved split"):
        check_spam_dataset(student(code, "SpamDataset"))

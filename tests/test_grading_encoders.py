"""The stage-10 checks: the reference and correct rewrites pass; each table mutant and the hints no table
simulates fail by name."""

import json
import re
from pathlib import Path

import pytest

from llmkit_instructor.grading import GradingError
from llmkit_instructor.grading.encoders import (HINTS, check_feature_classifier, check_mask_tokens,
                                                  check_padding_attention, check_pool, check_special_tokens)
from tests.grading_helpers import mutate, notebook, source_cells

ASSIGNMENT = "10-encoders-and-masked-lm"
CELLS = source_cells(ASSIGNMENT)
TABLE = json.loads((Path(__file__).resolve().parent.parent / "course" / "mutants" / f"{ASSIGNMENT}.json").read_text())
HEADER = "import torch\nfrom torch import nn\n"
ORDER = ["special-tokens", "padding-attention", "mask-tokens", "pooling", "feature-classifier"]


def solved(**edits) -> dict:
    """The notebook's solution cells run in order, each one possibly edited: ``{grade_id: (old, new)}``."""
    code = HEADER
    for cell in ORDER:
        source = CELLS[cell]
        if cell in edits:
            source = mutate(source, *edits[cell])
        code += source + "\n\n"
    return notebook(code)


def run_checks(ns) -> dict:
    """grade_id of each hidden cell -> the GradingError message, or None when it passed."""
    checks = {
        "special-tokens-hidden": lambda: check_special_tokens(ns["add_special_tokens"], ns["encode_for_encoder"]),
        "padding-attention-hidden": lambda: check_padding_attention(ns["padding_mask"], ns["bidirectional_attention"]),
        "mask-tokens-hidden": lambda: check_mask_tokens(ns["mask_tokens"]),
        "pooling-hidden": lambda: check_pool(ns["pool"]),
        "feature-classifier-hidden": lambda: check_feature_classifier(ns["FeatureClassifier"]),
    }
    results = {}
    for grade_id, check in checks.items():
        try:
            check()
            results[grade_id] = None
        except GradingError as err:
            results[grade_id] = str(err)
    return results


def test_the_reference_passes_every_check():
    assert run_checks(solved()) == {k: None for k in run_checks(solved())}


@pytest.mark.parametrize("entry", [e for e in TABLE if "old" in e], ids=lambda e: e["student"])
def test_each_table_entry_fails_exactly_its_hidden_cells_with_its_hint(entry):
    results = run_checks(solved(**{entry["cell"]: (entry["old"], entry["new"])}))
    failed = {k for k, v in results.items() if v is not None}
    assert failed == {f for f in entry["fails"] if f.endswith("-hidden")}
    if entry["mistake"]:
        owner = f"{entry['cell']}-hidden"
        assert HINTS[entry["mistake"]] in results[owner]


def _hint_of(ns, check_id):
    message = run_checks(ns)[check_id]
    assert message is not None
    return message


def test_softmax_over_queries_is_named():
    ns = solved(**{"padding-attention": ("weights = torch.softmax(scores, dim=-1)",
                                         "weights = torch.softmax(scores, dim=-2)")})
    assert HINTS["softmax_dim"] in _hint_of(ns, "padding-attention-hidden")


def test_an_attention_mask_that_hides_the_real_tokens_is_named():
    ns = solved(**{"padding-attention": ("hidden_keys = ~mask[:, None, None, :]",
                                         "hidden_keys = mask[:, None, None, :]")})
    assert HINTS["mask_hides_real"] in _hint_of(ns, "padding-attention-hidden")


def test_choosing_above_one_minus_prob_is_named_by_its_share():
    ns = solved(**{"mask-tokens": ("< prob) & can_choose", "> prob) & can_choose")})
    assert HINTS["choose_share"] in _hint_of(ns, "mask-tokens-hidden")


def test_a_wrong_split_is_named():
    old = "inputs[chosen & (how < 0.8)] = mask_id\n    replace = chosen & (how >= 0.8) & (how < 0.9)"
    ns = solved(**{"mask-tokens": (old, old.replace("0.8", "0.5"))})
    assert HINTS["split_wrong"] in _hint_of(ns, "mask-tokens-hidden")


def test_draws_in_another_order_keep_the_invariants_but_miss_the_exact_result():
    ns = solved(**{"mask-tokens": (
        "    chosen = (torch.rand(ids.shape, generator=generator) < prob) & can_choose\n"
        "    how = torch.rand(ids.shape, generator=generator)  # < 0.8: [MASK]; < 0.9: a random id; else unchanged\n",
        "    how = torch.rand(ids.shape, generator=generator)\n"
        "    chosen = (torch.rand(ids.shape, generator=generator) < prob) & can_choose\n")})
    assert HINTS["draw_order"] in _hint_of(ns, "mask-tokens-hidden")


def test_an_unknown_pooling_must_raise_value_error():
    raising = '        raise ValueError(f"how must be \'cls\' or \'mean\', got {how!r}")\n'
    ns = solved(**{"pooling": (raising, "        pass\n")})
    assert HINTS["bad_how"] in _hint_of(ns, "pooling-hidden")


def test_the_rewrites_in_the_table_pass():
    for entry in (e for e in TABLE if e["student"].startswith("rewrite-")):
        results = run_checks(solved(**{entry["cell"]: (entry["old"], entry["new"])}))
        assert all(v is None for v in results.values()), (entry["student"], results)


def test_a_loop_written_vocabulary_earns_full_marks():
    loop = '''def add_special_tokens(vocab, roles):
    new_vocab = {token: i for token, i in vocab.items()}
    next_id = len(vocab)
    by_role = {}
    for role in roles:
        token = roles[role]
        if token in new_vocab:
            by_role[role] = new_vocab[token]
        else:
            new_vocab[token] = by_role[role] = next_id
            next_id += 1
    return new_vocab, by_role
'''
    ns = solved()
    ns.update(notebook(HEADER + loop))
    assert run_checks(ns)["special-tokens-hidden"] is None


def test_the_imported_reference_earns_nothing():
    ns = solved()
    ns.update(notebook("from llmkit_solutions.encoders import mask_tokens"))
    message = run_checks(ns)["mask-tokens-hidden"]
    assert message is not None and re.search("llmkit_solutions", message)

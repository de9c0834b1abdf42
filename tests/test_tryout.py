"""The closing cell of the course notebooks: ``try_component`` trains a tiny GPT with a component of each
family beside the kit's default. It must run for every family (a failure here fails every student)."""

from __future__ import annotations

import pytest

from llmkit.tryout import DEFAULT_REFERENCE, FAMILY_SETTING, try_component

# A component of each family other than the default, as a student's own would be registered.
OTHER = {"attention": "sdpa", "tokenizers": "char-book", "samplers": "sliding-window", "models": "gpt-book"}


def test_every_family_has_a_case():
    assert set(OTHER) == set(FAMILY_SETTING) == set(DEFAULT_REFERENCE)


@pytest.mark.parametrize("family", sorted(OTHER))
def test_try_component_runs_beside_the_default(family, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    results = try_component(family, OTHER[family], steps=2, plot=False)
    assert set(results) == {OTHER[family], DEFAULT_REFERENCE[family]}
    for run in results.values():
        assert run["val_losses"] and all(loss > 0 for _step, loss in run["val_losses"])


def test_a_students_attention_class_registered_by_name_runs(monkeypatch):
    """What 04's last cell does: the student's MultiHeadAttention, registered under a new name."""
    import llmkit
    from llmkit_solutions.attention import MultiHeadAttention

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    llmkit.register("attention", "student-mha-test")(MultiHeadAttention)
    results = try_component("attention", "student-mha-test", steps=2, plot=False)
    assert len(results["student-mha-test"]["val_losses"]) > 0

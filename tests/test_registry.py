"""The plugin registry: lookup, closest-match errors, notebook registration, the allow-list."""

import json
import os
import subprocess
import sys
import textwrap
import types

import pytest

import llmkit
from llmkit.errors import LLMKitError, UnknownComponentError
from llmkit.hookspecs import hookimpl
from llmkit.registry import Registry


def test_unknown_name_lists_known_names_and_the_closest_match():
    with pytest.raises(UnknownComponentError) as err:
        llmkit.get("attention", "sdpaa")
    message = str(err.value)
    assert "Did you mean 'sdpa'?" in message
    for name in ("mha", "sdpa", "gqa", "sliding-window"):
        assert name in message
    assert "\n" not in message


def test_unknown_family_suggests_the_family():
    with pytest.raises(UnknownComponentError, match="Did you mean 'tokenizers'"):
        llmkit.names("tokenisers")


def test_singular_family_names_are_accepted():
    assert llmkit.names("tokenizer") == llmkit.names("tokenizers")


def test_unknown_component_error_is_a_value_error_with_a_plain_message():
    err = UnknownComponentError("Unknown models 'gtp'.")
    assert isinstance(err, ValueError) and str(err) == "Unknown models 'gtp'."


def test_register_from_a_notebook_in_one_call_and_use_it_inside_gpt_model():
    from llmkit_solutions.attention import MultiHeadAttention
    from llmkit_solutions.gpt import GPTModel

    class StudentAttention(MultiHeadAttention):
        """A student's attention."""

    try:
        assert llmkit.register("attention", "student-mha")(StudentAttention) is StudentAttention
        component = llmkit.get("attention", "student-mha")
        assert component.doc == "A student's attention."
        assert component.provider == __name__
        cfg = dict(vocab_size=20, context_length=8, emb_dim=8, n_heads=2, n_layers=1, drop_rate=0.0,
                   qkv_bias=False, attention="student-mha")
        assert isinstance(GPTModel(cfg).trf_blocks[0].att, StudentAttention)
        # Re-running the cell with a new class replaces the old registration.
        llmkit.register("attention", "student-mha", MultiHeadAttention)
        assert llmkit.get("attention", "student-mha").factory is MultiHeadAttention
    finally:
        llmkit.registry().remove_provider(__name__)


def test_a_name_owned_by_a_plugin_needs_replace_true():
    with pytest.raises(LLMKitError, match="replace=True"):
        llmkit.register("models", "gpt-book", lambda cfg: None)


def test_add_plugin_registers_hookimpls_at_run_time():
    plugin = types.ModuleType("my_llmkit_plugin")

    def make_model(cfg):
        """A model that is only a name."""
        return "toy"

    @hookimpl
    def register_models(register):
        register("toy", make_model)

    plugin.register_models = register_models
    llmkit.add_plugin(plugin, name="toy-plugin")
    try:
        assert llmkit.create("models", "toy", {}) == "toy"
        assert llmkit.get("models", "toy").provider == "toy-plugin"
    finally:
        llmkit.plugins.pm.unregister(name="toy-plugin")
        llmkit.plugins.refresh()
    assert "toy" not in llmkit.names("models")


def test_registry_rejects_bad_entries():
    registry = Registry()
    with pytest.raises(LLMKitError, match="non-empty"):
        registry.add("models", "", object, provider="x")
    with pytest.raises(LLMKitError, match="class or function"):
        registry.add("models", "m", 42, provider="x")


def _names_in_subprocess(allow):
    env = {k: v for k, v in os.environ.items() if k != "LLMKIT_LOAD_PLUGINS"}
    if allow is not None:
        env["LLMKIT_LOAD_PLUGINS"] = allow
    code = textwrap.dedent("""
        import json, llmkit
        print(json.dumps({f: llmkit.names(f) for f in ("tokenizers", "attention")}))
    """)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_allow_list_controls_which_entry_point_plugins_load():
    everything = _names_in_subprocess(None)
    assert {"sdpa", "gqa", "sliding-window"} <= set(everything["attention"])
    assert "sentencepiece" in everything["tokenizers"]

    assert "mha" in everything["attention"] and "simple-v2" in everything["tokenizers"]  # the reference

    kits_own = _names_in_subprocess("")
    assert kits_own["attention"] == []
    assert kits_own["tokenizers"] == ["bpe", "char", "gpt2"]

    just_sdpa = _names_in_subprocess("sdpa")
    assert just_sdpa["attention"] == ["sdpa"]
    with_the_reference = _names_in_subprocess("sdpa,reference")
    assert with_the_reference["attention"] == ["mha", "sdpa"]


def test_an_unknown_name_says_which_plugins_are_not_loaded():
    env = {**os.environ, "LLMKIT_LOAD_PLUGINS": "sdpa"}
    code = "import llmkit; llmkit.get('attention', 'mha')"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("llmkit.errors.UnknownComponentError: Unknown attention 'mha'.")
    assert "Plugins not loaded here:" in last and "reference (left out by LLMKIT_LOAD_PLUGINS)" in last

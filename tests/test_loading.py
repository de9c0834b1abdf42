"""Tests for stage 6 loading (llmkit_solutions.loading): HF, OpenAI TF and our own checkpoints.

A tiny random Hugging Face GPT-2 is the ground truth: once loaded, our GPTModel must give the same
logits and the same greedy tokens. TensorFlow is never needed: a fake ``tensorflow`` module serves
OpenAI's variable names from a dict of numpy arrays.
"""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import torch

from llmkit.errors import LLMKitError
from llmkit_solutions.gpt import GPTModel, generate_text_simple
from llmkit_solutions.loading import (
    hf_config_to_cfg,
    load_gpt2_params_from_tf_ckpt,
    load_hf_gpt2,
    load_openai_gpt2,
    load_pretrained_gpt,
    load_state_dict_file,
    load_weights_into_gpt,
    save_gpt,
)

transformers = pytest.importorskip("transformers")

TINY = dict(n_layer=2, n_head=2, n_embd=32, vocab_size=100, n_positions=64)
TINY_CFG = {"vocab_size": 100, "context_length": 64, "emb_dim": 32, "n_heads": 2, "n_layers": 2,
            "drop_rate": 0.0, "qkv_bias": True}


def make_hf(seed=0, **overrides):
    """A tiny GPT2LMHeadModel with every weight random (LayerNorms and biases too), in eval mode."""
    config = transformers.GPT2Config(**{**TINY, **overrides}, bos_token_id=99, eos_token_id=99)
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, 0.2)
    return model


@pytest.fixture(scope="module")
def hf():
    return make_hf()


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, 100, (2, 12), generator=torch.Generator().manual_seed(1))


def hf_greedy(model, idx, n):
    for _ in range(n):
        with torch.no_grad():
            nxt = model(idx).logits[:, -1].argmax(-1, keepdim=True)
        idx = torch.cat([idx, nxt], dim=1)
    return idx


def assert_matches_hf(model, hf_model, ids):
    with torch.no_grad():
        ours, theirs = model(ids), hf_model(ids).logits
    assert ours.shape == theirs.shape == (2, 12, 100)
    assert (ours - theirs).abs().max().item() < 1e-4
    expected = hf_greedy(hf_model, ids, 8)
    assert torch.equal(generate_text_simple(model, ids, 8, context_size=64), expected)


def assert_one_line(err):
    assert "\n" not in str(err.value)


def hf_tensors(hf_model):
    return {k: v.detach().clone() for k, v in hf_model.state_dict().items()}


# --------------------------------------------------------------------------- Hugging Face layout

def test_hf_safetensors_folder_matches_hf_logits_and_greedy_tokens(hf, ids, tmp_path):
    hf.save_pretrained(tmp_path, safe_serialization=True)
    from safetensors.torch import load_file

    assert "lm_head.weight" not in load_file(tmp_path / "model.safetensors")  # the head is tied: not stored
    model, cfg = load_pretrained_gpt(tmp_path)
    assert cfg == {**TINY_CFG, "drop_rate": 0.1}  # resid_pdrop of the HF config
    assert not model.training
    assert_matches_hf(model, hf, ids)
    assert torch.equal(model.out_head.weight, model.tok_emb.weight)  # tied: a copy of wte
    assert model.out_head.weight.data_ptr() != model.tok_emb.weight.data_ptr()
    out = hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=8,
                      pad_token_id=0, eos_token_id=None)
    assert torch.equal(generate_text_simple(model, ids, 8, context_size=64), out)


def test_hf_pytorch_model_bin_folder(hf, ids, tmp_path):
    hf.save_pretrained(tmp_path, safe_serialization=False)
    if not (tmp_path / "pytorch_model.bin").exists():  # transformers >= 5 always writes safetensors
        (tmp_path / "model.safetensors").unlink()
        torch.save(hf_tensors(hf), tmp_path / "pytorch_model.bin")
    assert not (tmp_path / "model.safetensors").exists()
    model, _ = load_pretrained_gpt(tmp_path)
    assert_matches_hf(model, hf, ids)


def test_hf_untied_head_is_loaded_from_lm_head(ids, tmp_path):
    hf = make_hf(seed=3, tie_word_embeddings=False)
    assert not torch.equal(hf.lm_head.weight, hf.transformer.wte.weight)
    hf.save_pretrained(tmp_path)
    model, _ = load_pretrained_gpt(tmp_path)
    assert torch.equal(model.out_head.weight, hf.lm_head.weight)
    assert_matches_hf(model, hf, ids)


def test_hf_file_without_prefix_and_with_mask_buffers(hf, ids, tmp_path):
    # openai-community/gpt2's own file: no "transformer." prefix, no lm_head, attn.bias/masked_bias buffers.
    from safetensors.torch import save_file

    tensors = {k.removeprefix("transformer."): v.contiguous() for k, v in hf_tensors(hf).items()
               if k != "lm_head.weight"}
    for i in range(2):
        tensors[f"h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, 64, 64))
        tensors[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(tensors, tmp_path / "gpt2.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(hf.config.to_dict()))
    model, cfg = load_pretrained_gpt(tmp_path / "gpt2.safetensors", cfg_overrides={"drop_rate": 0.0})
    assert cfg == TINY_CFG
    assert_matches_hf(model, hf, ids)

    gpt = load_hf_gpt2(GPTModel(TINY_CFG).eval(), tmp_path / "gpt2.safetensors")
    assert_matches_hf(gpt, hf, ids)

    (tmp_path / "config.json").unlink()  # Hugging Face names need config.json for n_heads & co.
    with pytest.raises(LLMKitError, match=r"config\.json is missing; expected a Hugging Face GPT-2 folder"):
        load_pretrained_gpt(tmp_path / "gpt2.safetensors")


def test_hf_config_to_cfg():
    config = {"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768,
              "n_head": 12, "n_layer": 12}
    assert hf_config_to_cfg(config) == {"vocab_size": 50257, "context_length": 1024, "emb_dim": 768,
                                        "n_heads": 12, "n_layers": 12, "drop_rate": 0.0, "qkv_bias": True}
    with pytest.raises(LLMKitError, match="model_type 'llama'"):
        hf_config_to_cfg({**config, "model_type": "llama"})


# --------------------------------------------------------------------------- OpenAI's TF checkpoint

def openai_variables(hf_model):
    """The HF weights under OpenAI's TF names, Conv1D weights with their leading (1, in, out) dim."""
    out = {}
    for key, value in hf_tensors(hf_model).items():
        key = key.removeprefix("transformer.")
        if key == "lm_head.weight":
            continue
        array = value.numpy()
        parts = key.split(".")
        if parts[0] == "h":  # h.0.attn.c_attn.weight -> model/h0/attn/c_attn/w
            module, leaf = parts[2:-1], parts[-1]
            if leaf == "weight":
                leaf = "g" if module[0].startswith("ln") else "w"
                array = array[None] if leaf == "w" else array
            else:
                leaf = "b"
            out["/".join(["model", f"h{parts[1]}", *module, leaf])] = array
        else:
            name = {"wte.weight": "wte", "wpe.weight": "wpe", "ln_f.weight": "ln_f/g", "ln_f.bias": "ln_f/b"}[key]
            out[f"model/{name}"] = array
    return out


def fake_tensorflow(variables, seen_paths):
    tf = types.ModuleType("tensorflow")

    def list_variables(path):
        seen_paths.append(path)
        return [(name, list(a.shape)) for name, a in sorted(variables.items())]

    def load_variable(path, name):
        array = variables[name].copy()
        array.setflags(write=False)  # TF hands out read-only arrays
        return array

    tf.train = types.SimpleNamespace(list_variables=list_variables, load_variable=load_variable)
    return tf


def write_openai_folder(folder, hf_model):
    folder.mkdir(exist_ok=True)
    hparams = {"n_vocab": 100, "n_ctx": 64, "n_embd": 32, "n_head": 2, "n_layer": 2}
    (folder / "hparams.json").write_text(json.dumps(hparams))
    (folder / "checkpoint").write_text('model_checkpoint_path: "/somewhere/else/model.ckpt"\n'
                                       'all_model_checkpoint_paths: "/somewhere/else/model.ckpt"\n')
    (folder / "model.ckpt.index").write_bytes(b"")
    (folder / "model.ckpt.data-00000-of-00001").write_bytes(b"")
    (folder / "model.ckpt.meta").write_bytes(b"")
    return hparams


def test_openai_tf_checkpoint_name_mapping_with_fake_tensorflow(hf, ids, tmp_path, monkeypatch):
    variables, seen = openai_variables(hf), []
    assert variables["model/h0/attn/c_attn/w"].shape == (1, 32, 96)  # OpenAI's Conv1D layout
    monkeypatch.setitem(sys.modules, "tensorflow", fake_tensorflow(variables, seen))
    hparams = write_openai_folder(tmp_path / "124M", hf)

    settings, params = load_openai_gpt2(tmp_path / "124M")
    assert settings == hparams
    assert seen == [str(tmp_path / "124M" / "model.ckpt")]
    assert sorted(params) == ["b", "blocks", "g", "wpe", "wte"]
    assert len(params["blocks"]) == 2
    assert params["blocks"][1]["attn"]["c_attn"]["w"].shape == (32, 96)  # leading 1 dropped
    assert params["blocks"][1]["mlp"]["c_proj"]["w"].shape == (128, 32)
    assert params["blocks"][0]["ln_2"]["g"].shape == (32,)

    model, cfg = load_pretrained_gpt(tmp_path / "124M")
    assert cfg == TINY_CFG
    assert_matches_hf(model, hf, ids)


def test_load_weights_into_gpt_with_numpy_params(hf, ids, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorflow", fake_tensorflow(openai_variables(hf), []))
    params = load_gpt2_params_from_tf_ckpt("model.ckpt", {"n_layer": 2})
    assert isinstance(params["wte"], np.ndarray)
    gpt = GPTModel(TINY_CFG).eval()
    assert load_weights_into_gpt(gpt, params) is gpt
    assert_matches_hf(gpt, hf, ids)

    with pytest.raises(LLMKitError, match=r"shape mismatch for trf_blocks\.0\.att\.W_query\.bias: "
                                          r"checkpoint \(32,\) vs model none; build GPTModel with the "
                                          r"checkpoint's config \(e\.g\. GPT_CONFIG_124M with qkv_bias=True"):
        load_weights_into_gpt(GPTModel({**TINY_CFG, "qkv_bias": False}), params)
    with pytest.raises(LLMKitError, match=r"shape mismatch for tok_emb\.weight: checkpoint \(100, 32\) "
                                          r"vs model \(100, 64\)") as err:
        load_weights_into_gpt(GPTModel({**TINY_CFG, "emb_dim": 64}), params)
    assert_one_line(err)
    with pytest.raises(LLMKitError, match="2 transformer blocks but the model has 3; build GPTModel with n_layers=2"):
        load_weights_into_gpt(GPTModel({**TINY_CFG, "n_layers": 3}), params)
    del params["blocks"][1]["mlp"]["c_fc"]
    with pytest.raises(LLMKitError, match=r"no params\['blocks'\]\[1\]\['mlp'\]\['c_fc'\]"):
        load_weights_into_gpt(GPTModel(TINY_CFG), params)


def test_missing_tensorflow_says_how_to_install_it(hf, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` fail
    write_openai_folder(tmp_path, hf)
    expected = r"Reading OpenAI's TF checkpoint needs TensorFlow: pip install 'llmkit\[tf\]' — or convert it once"
    with pytest.raises(LLMKitError, match=expected) as err:
        load_pretrained_gpt(tmp_path)
    assert_one_line(err)


def test_openai_folder_without_checkpoint_files(hf, tmp_path):
    write_openai_folder(tmp_path, hf)
    (tmp_path / "model.ckpt.data-00000-of-00001").unlink()
    with pytest.raises(LLMKitError, match=r"model\.ckpt\.data-00000-of-00001 is missing; expected"):
        load_pretrained_gpt(tmp_path)
    (tmp_path / "model.ckpt.index").unlink()
    with pytest.raises(LLMKitError, match=r"model\.ckpt\.index is missing"):
        load_pretrained_gpt(tmp_path)


# --------------------------------------------------------------------------- error cases

def test_missing_folder(tmp_path):
    with pytest.raises(LLMKitError, match="does not exist; expected a Hugging Face GPT-2 folder") as err:
        load_pretrained_gpt(tmp_path / "nope")
    assert_one_line(err)


def test_empty_folder_names_config_json(tmp_path):
    with pytest.raises(LLMKitError, match=r"config\.json is missing; expected a Hugging Face GPT-2 folder "
                                          r"with config\.json and model\.safetensors, or OpenAI's folder"):
        load_pretrained_gpt(tmp_path)


def test_folder_without_weights_names_model_safetensors(hf, tmp_path):
    hf.config.save_pretrained(tmp_path)
    with pytest.raises(LLMKitError, match=r"model\.safetensors is missing; expected a Hugging Face") as err:
        load_pretrained_gpt(tmp_path)
    assert str(tmp_path / "model.safetensors") in str(err.value)
    with pytest.raises(LLMKitError, match=r"model\.safetensors is missing"):
        load_hf_gpt2(GPTModel(TINY_CFG), tmp_path)


def test_truncated_safetensors(hf, tmp_path):
    hf.save_pretrained(tmp_path)
    path = tmp_path / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LLMKitError, match="could not be read .*truncated or corrupt: download it again") as err:
        load_pretrained_gpt(tmp_path)
    assert_one_line(err)


def test_truncated_pytorch_model_bin(hf, tmp_path):
    hf.config.save_pretrained(tmp_path)
    torch.save(hf_tensors(hf), tmp_path / "pytorch_model.bin")
    data = (tmp_path / "pytorch_model.bin").read_bytes()
    (tmp_path / "pytorch_model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(LLMKitError, match="truncated or corrupt"):
        load_pretrained_gpt(tmp_path)


def test_checkpoint_shapes_that_do_not_match_the_cfg(hf, tmp_path):
    hf.save_pretrained(tmp_path)
    with pytest.raises(LLMKitError, match=r"shape mismatch for pos_emb\.weight: checkpoint \(64, 32\) vs "
                                          r"model \(32, 32\); build GPTModel with the checkpoint's config") as err:
        load_pretrained_gpt(tmp_path, cfg_overrides={"context_length": 32})
    assert_one_line(err)


def test_not_a_gpt2_checkpoint(tmp_path):
    torch.save({"encoder.weight": torch.zeros(2, 2)}, tmp_path / "x.pt")
    with pytest.raises(LLMKitError, match="neither GPT-2 nor GPTModel weights"):
        load_pretrained_gpt(tmp_path / "x.pt")


# --------------------------------------------------------------------------- our own state dicts

@pytest.fixture
def own():
    torch.manual_seed(5)
    cfg = {**TINY_CFG, "qkv_bias": False}
    return GPTModel(cfg).eval(), cfg


def test_own_state_dict_round_trip(own, ids, tmp_path):
    model, cfg = own
    torch.save(model.state_dict(), tmp_path / "model.pth")
    fresh = load_state_dict_file(GPTModel(cfg).eval(), tmp_path / "model.pth")
    with torch.no_grad():
        assert torch.equal(fresh(ids), model(ids))

    # without a saved cfg, the shapes give everything but n_heads
    loaded, got = load_pretrained_gpt(tmp_path / "model.pth", cfg_overrides={"n_heads": 2})
    assert got == cfg
    with torch.no_grad():
        assert torch.equal(loaded(ids), model(ids))
    with pytest.raises(LLMKitError, match=r"n_heads cannot be read off the weights"):
        load_pretrained_gpt(tmp_path / "model.pth")


@pytest.mark.parametrize("name", ["model.safetensors", "model.pt"])
def test_save_gpt_keeps_the_cfg(own, ids, tmp_path, name):
    model, cfg = own
    save_gpt(model, cfg, tmp_path / name)
    loaded, got = load_pretrained_gpt(tmp_path / name)
    assert got == cfg
    with torch.no_grad():
        assert torch.equal(loaded(ids), model(ids))
    fresh = load_state_dict_file(GPTModel(cfg).eval(), tmp_path / name)
    with torch.no_grad():
        assert torch.equal(fresh(ids), model(ids))


def test_own_state_dict_from_another_config(own, tmp_path):
    model, cfg = own
    torch.save(model.state_dict(), tmp_path / "model.pt")
    expected = r"does not fit this GPTModel \(missing trf_blocks\.2\..*another config"
    with pytest.raises(LLMKitError, match=expected) as err:
        load_state_dict_file(GPTModel({**cfg, "n_layers": 3}), tmp_path / "model.pt")
    assert_one_line(err)
    with pytest.raises(LLMKitError, match=r"missing trf_blocks\.0\.att\.W_query\.bias"):
        load_state_dict_file(GPTModel({**cfg, "qkv_bias": True}), tmp_path / "model.pt")
    with pytest.raises(LLMKitError, match=r"unexpected trf_blocks\.1\."):
        load_state_dict_file(GPTModel({**cfg, "n_layers": 1}), tmp_path / "model.pt")
    with pytest.raises(LLMKitError, match=r"shape mismatch for tok_emb\.weight: checkpoint \(100, 32\) vs model "
                                          r"\(100, 64\); build GPTModel with the config the file was saved with"):
        load_state_dict_file(GPTModel({**cfg, "emb_dim": 64}), tmp_path / "model.pt")


def test_hf_file_given_to_load_state_dict_file(hf, tmp_path):
    hf.save_pretrained(tmp_path)
    with pytest.raises(LLMKitError, match=r"is a Hugging Face GPT-2 checkpoint; load it with load_hf_gpt2"):
        load_state_dict_file(GPTModel(TINY_CFG), tmp_path / "model.safetensors")

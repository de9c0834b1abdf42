"""Stage 6: loading pretrained GPT-2 weights into ``GPTModel``.

The same numbers are stored under three naming schemes:

    OpenAI's TF checkpoint  model/h0/attn/c_attn/w           (1, E, 3E)  needs TensorFlow (extra "tf")
    Hugging Face            h.0.attn.c_attn.weight           (E, 3E)     model.safetensors / pytorch_model.bin
    our own GPTModel        trf_blocks.0.att.W_query.weight  (E, E)      a plain state dict

OpenAI and Hugging Face use Conv1D layers whose weights are (in, out); ``nn.Linear`` keeps (out, in),
so those are transposed, and the fused ``c_attn`` is cut into query, key and value. Both layouts
are turned into the book's ``params`` dict and loaded by ``load_weights_into_gpt``.
``load_pretrained_gpt(path)`` recognises the layout, builds the matching GPTModel and loads it.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import numpy as np
import torch

from llmkit.errors import LLMKitError

from .gpt import GPTModel

CONFIG_HINT = (
    "build GPTModel with the checkpoint's config (e.g. GPT_CONFIG_124M with qkv_bias=True, context_length=1024)"
)
OWN_HINT = "build GPTModel with the config the file was saved with"
FOLDER_HINT = (
    "expected a Hugging Face GPT-2 folder with config.json and model.safetensors, "
    "or OpenAI's folder with hparams.json and model.ckpt.*"
)
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


# --------------------------------------------------------------------------- the book's params dict

def _shape(t):
    return "none" if t is None else str(tuple(t.shape))


def _to_tensor(value):
    """numpy array or tensor -> tensor (numpy is copied: TF hands out read-only arrays)."""
    if value is None or isinstance(value, torch.Tensor):
        return value
    return torch.tensor(np.asarray(value))


def _copy_into(param, value, name, hint=CONFIG_HINT):
    """Copy ``value`` into ``param`` in place, after checking that the shapes agree."""
    value = _to_tensor(value)
    if param is None and value is None:  # e.g. qkv_bias=False and a checkpoint without q/k/v biases
        return
    if param is None or value is None or param.shape != value.shape:
        raise LLMKitError(
            f"shape mismatch for {name}: checkpoint {_shape(value)} vs model {_shape(param)}; {hint}."
        )
    with torch.no_grad():
        param.copy_(value)


def _get(tree, key, where):
    try:
        return tree[key]
    except (KeyError, IndexError, TypeError):
        raise LLMKitError(
            f"the checkpoint has no params{where}[{key!r}]; it is incomplete or not GPT-2: download it again."
        ) from None


def _linear(w):
    """Conv1D weight (in, out) -> nn.Linear weight (out, in)."""
    w = _to_tensor(w)
    return w.transpose(0, 1) if w.ndim == 2 else w


def load_weights_into_gpt(gpt, params):
    """Copy OpenAI's GPT-2 ``params`` (nested dict of arrays, TF layout) into ``gpt`` in place.

    The output head is tied to ``wte``: it receives a copy of the token-embedding values.
    """
    blocks = _get(params, "blocks", "")
    if len(blocks) != len(gpt.trf_blocks):
        raise LLMKitError(
            f"the checkpoint has {len(blocks)} transformer blocks but the model has {len(gpt.trf_blocks)}; "
            f"build GPTModel with n_layers={len(blocks)}."
        )
    _copy_into(gpt.tok_emb.weight, _get(params, "wte", ""), "tok_emb.weight")  # (vocab, E)
    _copy_into(gpt.pos_emb.weight, _get(params, "wpe", ""), "pos_emb.weight")  # (context, E)

    for i, (block, ckpt) in enumerate(zip(gpt.trf_blocks, blocks)):
        att, ff, at = block.att, block.ff, f"trf_blocks.{i}"
        if not all(hasattr(att, n) for n in ("W_query", "W_key", "W_value", "out_proj")):
            raise LLMKitError(
                f"{at}.att is {type(att).__name__}, which has no W_query/W_key/W_value/out_proj; "
                "build GPTModel without cfg['attention'] to load GPT-2 weights."
            )
        where = f"['blocks'][{i}]"
        attn, mlp = _get(ckpt, "attn", where), _get(ckpt, "mlp", where)
        # c_attn: w (E, 3E) and b (3E,) hold [query | key | value] side by side on the last axis.
        c_attn, inner = _get(attn, "c_attn", f"{where}['attn']"), f"{where}['attn']['c_attn']"
        qkv_w = torch.tensor_split(_to_tensor(_get(c_attn, "w", inner)), 3, dim=-1)  # 3 x (E, E)
        qkv_b = torch.tensor_split(_to_tensor(_get(c_attn, "b", inner)), 3, dim=-1)  # 3 x (E,)
        for n, w, b in zip(("W_query", "W_key", "W_value"), qkv_w, qkv_b):
            lin = getattr(att, n)
            _copy_into(lin.weight, _linear(w), f"{at}.att.{n}.weight")  # (E, E)
            _copy_into(lin.bias, b, f"{at}.att.{n}.bias")  # (E,) or none when qkv_bias=False

        pairs = (
            (att.out_proj, attn, "attn", "c_proj", "att.out_proj"),  # (E, E)
            (ff.layers[0], mlp, "mlp", "c_fc", "ff.layers.0"),  # (4E, E)
            (ff.layers[2], mlp, "mlp", "c_proj", "ff.layers.2"),  # (E, 4E)
        )
        for lin, parent, group, key, n in pairs:
            conv, inner = _get(parent, key, f"{where}['{group}']"), f"{where}['{group}']['{key}']"
            _copy_into(lin.weight, _linear(_get(conv, "w", inner)), f"{at}.{n}.weight")
            _copy_into(lin.bias, _get(conv, "b", inner), f"{at}.{n}.bias")

        for norm, key, n in ((block.norm1, "ln_1", "norm1"), (block.norm2, "ln_2", "norm2")):
            ln, inner = _get(ckpt, key, where), f"{where}['{key}']"
            _copy_into(norm.scale, _get(ln, "g", inner), f"{at}.{n}.scale")  # (E,)
            _copy_into(norm.shift, _get(ln, "b", inner), f"{at}.{n}.shift")  # (E,)

    _copy_into(gpt.final_norm.scale, _get(params, "g", ""), "final_norm.scale")  # (E,)
    _copy_into(gpt.final_norm.shift, _get(params, "b", ""), "final_norm.shift")  # (E,)
    _copy_into(gpt.out_head.weight, params["wte"], "out_head.weight")  # (vocab, E), tied to wte
    return gpt


# --------------------------------------------------------------------------- OpenAI's TF checkpoint

def _read_json(path):
    if not path.is_file():
        raise LLMKitError(f"{path} is missing; {FOLDER_HINT}.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise LLMKitError(f"{path} is not valid JSON ({_one_line(err)}); download it again.") from None


def _one_line(err):
    return " ".join(str(err).split())[:200]


def _import_tensorflow():
    try:
        return importlib.import_module("tensorflow")
    except ImportError:
        raise LLMKitError(
            "Reading OpenAI's TF checkpoint needs TensorFlow: pip install 'llmkit[tf]' — or convert it once "
            "to safetensors where TensorFlow is installed: "
            "save_gpt(*load_pretrained_gpt(folder), 'gpt2.safetensors')."
        ) from None


def openai_hparams_to_cfg(settings):
    """OpenAI's hparams.json -> the book's cfg dict."""
    keys = ("n_vocab", "n_ctx", "n_embd", "n_head", "n_layer")
    missing = [k for k in keys if k not in settings]
    if missing:
        raise LLMKitError(f"hparams.json has no {', '.join(missing)}; use the one that came with the checkpoint.")
    return {"vocab_size": settings["n_vocab"], "context_length": settings["n_ctx"], "emb_dim": settings["n_embd"],
            "n_heads": settings["n_head"], "n_layers": settings["n_layer"], "drop_rate": 0.0, "qkv_bias": True}


def _tf_checkpoint_prefix(folder):
    """The ``model.ckpt`` prefix named by the folder's ``checkpoint`` file (or its only ``*.index``)."""
    prefix = None
    state = folder / "checkpoint"
    if state.is_file():
        found = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', state.read_text(encoding="utf-8"), re.M)
        if found:  # the path may be absolute on the machine that wrote it: keep only the name
            prefix = folder / Path(found.group(1)).name
    if prefix is None:
        indexes = sorted(folder.glob("*.index"))
        prefix = indexes[0].with_suffix("") if indexes else folder / "model.ckpt"
    if not prefix.with_name(prefix.name + ".index").is_file():
        raise LLMKitError(f"{prefix}.index is missing; {FOLDER_HINT}.")
    if not list(folder.glob(prefix.name + ".data-*")):
        raise LLMKitError(f"{prefix}.data-00000-of-00001 is missing; {FOLDER_HINT}.")
    return prefix


_TF_NAME = re.compile(r"model/(?:h(\d+)/)?(.+)")


def load_gpt2_params_from_tf_ckpt(ckpt_path, settings):
    """Read OpenAI's TF checkpoint into the book's nested ``params`` dict of numpy arrays."""
    tf = _import_tensorflow()
    n_layer = settings["n_layer"]
    params = {"blocks": [{} for _ in range(n_layer)]}
    for name, _ in tf.train.list_variables(str(ckpt_path)):
        match = _TF_NAME.fullmatch(name)
        if match is None:  # not a model weight
            continue
        layer, rest = match.groups()
        array = np.asarray(tf.train.load_variable(str(ckpt_path), name))
        if array.ndim == 3 and array.shape[0] == 1:  # Conv1D weights are (1, in, out)
            array = array[0]
        node = params
        if layer is None:  # model/wte, model/wpe; the final norm model/ln_f/g -> params["g"]
            rest = rest.removeprefix("ln_f/")
        elif int(layer) < n_layer:
            node = params["blocks"][int(layer)]
        else:
            raise LLMKitError(f"{name} is past n_layer={n_layer}; use the hparams.json of this checkpoint.")
        *path, leaf = rest.split("/")  # "attn/c_attn/w" -> node["attn"]["c_attn"]["w"]
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = array
    return params


def load_openai_gpt2(folder):
    """OpenAI's GPT-2 folder (hparams.json, checkpoint, model.ckpt.*) -> (settings, params)."""
    folder = Path(folder)
    settings = _read_json(folder / "hparams.json")
    openai_hparams_to_cfg(settings)  # checks the keys
    return settings, load_gpt2_params_from_tf_ckpt(_tf_checkpoint_prefix(folder), settings)


# --------------------------------------------------------------------------- Hugging Face layout

_HF_BLOCK = re.compile(r"h\.(\d+)\.(ln_1|ln_2|attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.(weight|bias)")
_HF_BUFFER = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")  # causal-mask buffers, not weights
_HF_TOP = {"wte.weight": "wte", "wpe.weight": "wpe", "ln_f.weight": "g", "ln_f.bias": "b"}


def hf_config_to_cfg(config):
    """Hugging Face GPT-2 config.json (a dict) -> the book's cfg dict."""
    if config.get("model_type", "gpt2") != "gpt2":
        raise LLMKitError(f"config.json is for model_type {config['model_type']!r}; llmkit loads GPT-2 only.")
    try:
        cfg = {"vocab_size": config["vocab_size"], "context_length": config.get("n_positions", config.get("n_ctx")),
               "emb_dim": config["n_embd"], "n_heads": config["n_head"], "n_layers": config["n_layer"],
               "drop_rate": float(config.get("resid_pdrop", 0.0)), "qkv_bias": True}
    except KeyError as err:
        raise LLMKitError(f"config.json has no {err.args[0]!r}; use the one that came with the weights.") from None
    if config.get("n_inner") not in (None, 4 * cfg["emb_dim"]):
        raise LLMKitError(f"config.json has n_inner={config['n_inner']}, but GPTModel's FeedForward is 4*emb_dim.")
    return cfg


def _is_hf(state_dict):
    return any(k.removeprefix("transformer.") == "wte.weight" for k in state_dict)


def hf_state_dict_to_params(state_dict):
    """Hugging Face GPT-2 tensors -> (the book's params dict, lm_head weight or None when tied)."""
    params, blocks, head = {}, {}, None
    for key, tensor in state_dict.items():
        key = key.removeprefix("transformer.")
        if key == "lm_head.weight":
            head = tensor  # (vocab, E): already nn.Linear's layout
        elif key in _HF_TOP:
            params[_HF_TOP[key]] = tensor
        elif not _HF_BUFFER.fullmatch(key):
            match = _HF_BLOCK.fullmatch(key)
            if match is None:
                raise LLMKitError(f"unexpected tensor {key!r} in a GPT-2 checkpoint; "
                                  "load a GPT2LMHeadModel or GPT2Model checkpoint.")
            layer, module, kind = match.groups()
            node = blocks.setdefault(int(layer), {})
            for part in module.split("."):  # "attn.c_attn" -> node["attn"]["c_attn"]
                node = node.setdefault(part, {})
            node[("g" if module.startswith("ln") else "w") if kind == "weight" else "b"] = tensor
    params["blocks"] = [blocks.get(i, {}) for i in range(max(blocks, default=-1) + 1)]
    return params, head


def _unreadable(path, err):
    reason = _one_line(err)
    return LLMKitError(f"{path} could not be read ({reason}); it is truncated or corrupt: download it again.")


def _read_tensors(path):
    """One weights file -> (state dict, the cfg saved with it or None)."""
    if not path.is_file():
        raise LLMKitError(f"{path} is missing; {FOLDER_HINT}.")
    if path.suffix == ".safetensors":
        from safetensors import safe_open
        from safetensors.torch import load_file

        try:
            state_dict = load_file(str(path))
            with safe_open(str(path), framework="pt") as f:
                saved = (f.metadata() or {}).get("llmkit_cfg")  # written by save_gpt
        except Exception as err:  # SafetensorError, OSError: truncated, corrupt or not safetensors
            raise _unreadable(path, err) from None
        return state_dict, json.loads(saved) if saved else None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zip/pickle errors on a truncated file, objects weights_only refuses
        raise _unreadable(path, err) from None
    if isinstance(obj, dict) and isinstance(obj.get("model_state_dict"), dict):  # the book's checkpoint dict
        return obj["model_state_dict"], obj.get("cfg")
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise LLMKitError(f"{path} holds a {type(obj).__name__}, not a state dict; save model.state_dict().")
    return obj, None


def _read_weights(path):
    """A folder (model.safetensors, else pytorch_model.bin) or a file -> (state dict, saved cfg or None)."""
    if path.is_dir():
        found = [path / n for n in HF_WEIGHT_FILES if (path / n).is_file()]
        if not found:
            raise LLMKitError(f"{path / HF_WEIGHT_FILES[0]} is missing; {FOLDER_HINT}.")
        path = found[0]
    return _read_tensors(path)


def _load_hf_state_dict(gpt, state_dict):
    params, head = hf_state_dict_to_params(state_dict)
    load_weights_into_gpt(gpt, params)  # ties out_head to wte ...
    if head is not None:  # ... unless the file has its own head
        _copy_into(gpt.out_head.weight, head, "out_head.weight")
    return gpt


def load_hf_gpt2(gpt, path):
    """Load a Hugging Face GPT-2 checkpoint (folder, .safetensors or .bin file) into ``gpt`` in place."""
    return _load_hf_state_dict(gpt, _read_weights(Path(path))[0])


# --------------------------------------------------------------------------- our own state dicts

def _own_names(state_dict):
    """Drop the prefixes torch.compile ("_orig_mod.") and DistributedDataParallel ("module.") add."""
    return {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in state_dict.items()}


def _first(keys, n=3):
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def _load_own(gpt, state_dict, source):
    state_dict = _own_names(state_dict)
    if _is_hf(state_dict):
        raise LLMKitError(f"{source} is a Hugging Face GPT-2 checkpoint; "
                          "load it with load_hf_gpt2(gpt, path) or load_pretrained_gpt(path).")
    model = gpt.state_dict(keep_vars=True)  # the live parameters and buffers
    missing = [k for k in model if k not in state_dict and not k.endswith(".mask")]
    unexpected = [k for k in state_dict if k not in model and not k.endswith(".mask")]
    if missing or unexpected:
        found = [f"{what} {_first(keys)}" for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise LLMKitError(
            f"{source} does not fit this GPTModel ({'; '.join(found)}); it was probably saved from a model with "
            "another config (n_layers, qkv_bias or attention): build GPTModel with that config."
        )
    for key, tensor in state_dict.items():
        if not key.endswith(".mask"):  # the causal mask is rebuilt from context_length
            _copy_into(model[key], tensor, key, OWN_HINT)
    return gpt


def load_state_dict_file(gpt, path):
    """Load a state dict of our own ``GPTModel`` (.pt/.pth, or .safetensors with our names) into ``gpt``."""
    return _load_own(gpt, _read_tensors(Path(path))[0], path)


def save_gpt(model, cfg, path):
    """Save ``model`` with its cfg: in the metadata of a .safetensors, else as the book's checkpoint dict."""
    path, seen, state = Path(path), set(), {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        state[key] = tensor.clone() if tensor.data_ptr() in seen else tensor.contiguous()  # tied weights
        seen.add(tensor.data_ptr())
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path), metadata={"llmkit_cfg": json.dumps(dict(cfg))})
    else:
        torch.save({"model_state_dict": state, "cfg": dict(cfg)}, path)
    return path


def _own_cfg_from_shapes(state_dict, n_heads, source):
    """Our state dict without a saved cfg: the shapes give everything but n_heads."""
    if n_heads is None:
        raise LLMKitError(f"n_heads cannot be read off the weights in {source}; "
                          "pass cfg_overrides={'n_heads': 12} or save with save_gpt(model, cfg, path).")
    vocab, emb = state_dict["tok_emb.weight"].shape  # (vocab, E)
    n_layers = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("trf_blocks."))
    return {"vocab_size": vocab, "context_length": state_dict["pos_emb.weight"].shape[0], "emb_dim": emb,
            "n_heads": n_heads, "n_layers": n_layers, "drop_rate": 0.0,
            "qkv_bias": "trf_blocks.0.att.W_query.bias" in state_dict}


# --------------------------------------------------------------------------- one entry point

def load_pretrained_gpt(path, cfg_overrides=None):
    """Detect the checkpoint's layout, build the matching ``GPTModel``, load it -> (model in eval mode, cfg).

    A folder with hparams.json is OpenAI's TF checkpoint; a folder (or file) with Hugging Face names
    needs config.json beside the weights; a file with our own names carries its cfg (``save_gpt``)
    or takes n_heads from ``cfg_overrides``. ``cfg_overrides`` is applied last (e.g. drop_rate).
    """
    path, overrides = Path(path), dict(cfg_overrides or {})
    if not path.exists():
        raise LLMKitError(f"{path} does not exist; {FOLDER_HINT}, or a .safetensors/.pt file.")
    if path.is_dir() and (path / "hparams.json").is_file():  # OpenAI's TF checkpoint
        settings, params = load_openai_gpt2(path)
        cfg = {**openai_hparams_to_cfg(settings), **overrides}
        return load_weights_into_gpt(GPTModel(cfg), params).eval(), cfg

    config_path = (path if path.is_dir() else path.parent) / "config.json"
    if path.is_dir() and not config_path.is_file():
        raise LLMKitError(f"{config_path} is missing; {FOLDER_HINT}.")
    state_dict, saved_cfg = _read_weights(path)
    state_dict = _own_names(state_dict)

    if _is_hf(state_dict):
        cfg = {**hf_config_to_cfg(_read_json(config_path)), **overrides}
        return _load_hf_state_dict(GPTModel(cfg), state_dict).eval(), cfg
    if "tok_emb.weight" not in state_dict:
        first = _first(list(state_dict))
        raise LLMKitError(f"{path} holds neither GPT-2 nor GPTModel weights (first keys: {first}); {FOLDER_HINT}.")
    if saved_cfg is None:
        saved_cfg = _own_cfg_from_shapes(state_dict, overrides.get("n_heads"), path)
    cfg = {**saved_cfg, **overrides}
    return _load_own(GPTModel(cfg), state_dict, path).eval(), cfg

"""The run configuration: dataclasses read from TOML and overridden with ``--set section.key=value``.

Every component is named here (tokenizer, sampler, model, attention, device, decoder, fine-tuning
strategies), so a whole run is described by one file; ``llmkit run`` writes the config it used into
the run folder. A component's own options live with the component, not here: ``[finetune.lora]
rank = 4`` (or ``--set finetune.lora.rank=4``) is handed to the ``lora`` strategy, which rejects a key
it does not know with the closest match, as an attention does with ``model.attention_options``.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LLMKitError
from .registry import closest
from .training import TrainConfig


@dataclass
class DataConfig:
    corpus: str = "builtin"  # builtin | builtin-shift | builtin-story | a .txt file, folder or glob
    val_fraction: float = 0.1
    split_seed: int = 123


@dataclass
class TokenizerConfig:
    name: str = "bpe"
    vocab_size: int = 1024  # for tokenizers that learn their vocabulary


@dataclass
class SamplerConfig:
    name: str = "random-block"
    batch_size: int = 16
    max_length: int = 0  # 0: the model's context_length
    stride: int = 0  # sliding-window only; 0: max_length (no overlap)
    batches_per_epoch: int = 50  # random-block only; 0: about one pass over the tokens


@dataclass
class ModelConfig:
    name: str = "gpt"
    context_length: int = 128
    emb_dim: int = 192
    n_heads: int = 6
    n_layers: int = 4
    drop_rate: float = 0.1
    qkv_bias: bool = False
    attention: str = "mha"
    attention_options: dict = field(default_factory=dict)


@dataclass
class DeviceConfig:
    name: str = "auto"
    precision: str = "auto"  # auto | fp32 | bf16 | fp16; auto: measured once per machine (llmkit.autotune)
    compile: str = "auto"  # auto | on | off: torch.compile the training step; auto: when measured to pay here


@dataclass
class RunSettings:
    seed: int = 123
    threads: int = 0  # 0: torch's default
    stages: list = field(default_factory=lambda: ["pretrain", "classify", "instruct"])


@dataclass
class FinetuneConfig:
    """The ``classify`` and ``instruct`` stages (``llmkit.run.stages``), sized for 2 CPU cores.

    The optimizer, schedule, weight decay and clipping are ``[train]``'s; ``options`` maps a strategy
    name to its own options, written as ``[finetune.<strategy>]`` sections.
    """

    strategies: list = field(default_factory=lambda: ["classification", "lora", "feature-extraction", "adapter"])
    classify_epochs: int = 2
    classify_lr: float = 1e-3
    batch_size: int = 16
    max_length: int = 0  # classification: pad/cut messages to this; 0: enough for 90% of training messages (<= context)
    patience: int = 2  # epochs without a better validation loss before stopping; 0: never stop early
    max_train_examples: int = 0  # > 0: train on the first N training examples only
    max_eval_examples: int = 0  # > 0: score instruction tuning on the first N held-out entries only
    spam_path: str = ""  # "": the kit's messages.tsv; else SMSSpamCollection, its zip, or a label<TAB>text file
    instructions_path: str = ""  # "": the kit's instructions.json; else an Alpaca-style JSON list
    options: dict = field(default_factory=dict)  # strategy -> its options: [finetune.lora] rank = 4
    instruct_strategy: str = "full"
    instruct_epochs: int = 4  # measured: 2 epochs answer "2" to almost everything, 4 give task-shaped answers
    instruct_lr: float = 2e-3
    mask_prompt: bool = True  # the loss sees only the response tokens (False: the book's whole text)
    max_new_tokens: int = 32
    samples: int = 5  # sample responses shown in the report


@dataclass
class GenerateConfig:
    decoder: str = "kv-cache"  # the decoders family: samples, instruction answers, llmkit generate and chat


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    run: RunSettings = field(default_factory=RunSettings)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _sections() -> dict[str, type]:
    return {f.name: typing.get_type_hints(RunConfig)[f.name] for f in dataclasses.fields(RunConfig)}


def _coerce(where: str, value: Any, kind: Any) -> Any:
    """Check ``value`` against a field type, accepting ints for floats; one-line error otherwise."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    origin = typing.get_origin(kind) or kind
    ok = isinstance(value, origin) and not (origin is int and isinstance(value, bool))
    if not ok:
        expected = getattr(origin, "__name__", str(origin))
        raise LLMKitError(f"{where} must be {expected}, got {value!r} ({type(value).__name__}).")
    return value


def _apply(config: RunConfig, section: str, key: str, value: Any, where: str) -> None:
    sections = _sections()
    if section not in sections:
        hint = closest(section, list(sections))
        raise LLMKitError(f"Unknown config section '{section}' in {where}."
                          + (f" Did you mean '{hint}'?" if hint else "")
                          + f" Sections: {', '.join(sections)}.")
    cls = sections[section]
    hints = typing.get_type_hints(cls)
    if section == "finetune" and key not in hints and (isinstance(value, dict) or "." in key):
        _apply_strategy_options(config, key, value)
        return
    if key not in hints:
        hint = closest(key, list(hints))
        components = (" A strategy's options go in its own section, e.g. --set finetune.lora.rank=8 "
                      "([finetune.lora] rank = 8).") if section == "finetune" else ""
        raise LLMKitError(f"Unknown key '{section}.{key}' in {where}."
                          + (f" Did you mean '{section}.{hint}'?" if hint else "")
                          + f" Keys: {', '.join(hints)}." + components)
    setattr(getattr(config, section), key, _coerce(f"{section}.{key}", value, hints[key]))


def _apply_strategy_options(config: RunConfig, key: str, value: Any) -> None:
    """``[finetune.lora] rank = 8`` (a table) or ``--set finetune.lora.rank=8`` (a dotted key).

    The names and values are the strategy's to check: the fine-tuning stages hand them over when
    they build it, before pretraining starts, and a typo fails there with the closest match.
    """
    strategy, _, option = key.partition(".")
    table = value if not option else {option: value}
    config.finetune.options[strategy] = {**config.finetune.options.get(strategy, {}), **table}


def parse_value(text: str) -> Any:
    """A TOML literal (3, 0.1, true, "x", [..], {..}); anything else is a plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def load_run_config(path: str | Path | None = None, overrides: list[str] = ()) -> RunConfig:
    config = RunConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise LLMKitError(f"No config file at {path}; write a TOML file, e.g. [train] epochs = 3.")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise LLMKitError(f"{path} is not valid TOML ({exc}).") from None
        for section, table in data.items():
            if not isinstance(table, dict):
                raise LLMKitError(f"{path}: '{section}' must be a [section] table, e.g. [train] epochs = 3.")
            for key, value in table.items():
                _apply(config, section, key, value, str(path))
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise LLMKitError(f"--set takes section.key=value, e.g. --set train.epochs=3; got '{item}'.")
        dotted, raw = item.split("=", 1)
        section, key = dotted.strip().split(".", 1)
        _apply(config, section, key, parse_value(raw.strip()), f"--set {item}")
    return config


def to_toml(config: RunConfig) -> str:
    """Serialise a RunConfig as TOML (flat sections; inline tables for dict values)."""

    def literal(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return repr(value)
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        if isinstance(value, list):
            return "[" + ", ".join(literal(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k} = {literal(v)}" for k, v in value.items()) + "}"
        raise TypeError(type(value))

    lines = []
    for section, table in config.to_dict().items():
        nested = table.pop("options", {}) if section == "finetune" else {}
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {literal(value)}" for key, value in table.items())
        lines.append("")
        for name, options in nested.items():  # [finetune.lora] rank = 8
            lines.append(f"[{section}.{name}]")
            lines.extend(f"{key} = {literal(value)}" for key, value in options.items())
            lines.append("")
    return "\n".join(lines)


def run_config_from_dict(data: dict, where: str = "a checkpoint") -> RunConfig:
    """Rebuild a RunConfig from ``RunConfig.to_dict()`` output (as stored in checkpoints).

    Keys an older kit wrote and this one no longer has are skipped: only the run's corpus, tokenizer
    and model are read back from a checkpoint, and those keep their names.
    """
    config = RunConfig()
    sections = _sections()
    for section, table in data.items():
        if section not in sections:
            continue
        hints = typing.get_type_hints(sections[section])
        for key, value in table.items():
            if key in hints or (section == "finetune" and key == "options"):
                _apply(config, section, key, value, where)
    return config

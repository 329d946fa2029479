"""Typed run configuration: dataclasses with one docstring-like ``help`` per field.

A run is described by :class:`TrainConfig` (``model``, ``data``, ``optim``, ``run``
sections). ``model`` and ``data`` are task-specific dataclasses, registered per task in
:data:`TASK_SECTIONS`; ``optim`` and ``run`` are shared by every task. Values come, in increasing priority, from the dataclass defaults, a YAML file
(``--config``; same nesting as the dataclasses) and command-line flags; the CLI flags are
generated from the ``flag``/``help`` metadata below, so ``--help`` documents every field.
Each section validates itself in ``__post_init__``; the whole config is saved with every
checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Optional

from ..errors import ConfigError

ENCODER_NAMES = ("lstm", "gru", "rnn", "rnn-relu", "hand-lstm", "hand-gru", "hand-rnn", "hand-rnn-relu")


def opt(default, flag: Optional[str], help: str, **kw):
    """A config field with its CLI flag and help text (``flag=None``: YAML only)."""
    return field(default=default, metadata={"flag": flag, "help": help, **kw})


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


@dataclass
class CharLMModelConfig:
    """Model of the ``charlm`` task: embedding -> encoder -> next-character head."""

    encoder: str = opt("lstm", "--encoder", "sequence encoder", choices=ENCODER_NAMES)
    hidden_size: int = opt(512, "--hidden", "hidden units per layer and direction")
    num_layers: int = opt(2, "--layers", "stacked recurrent layers")
    dropout: float = opt(0.1, "--dropout", "dropout between layers and before the output head")
    embedding_dim: int = opt(64, "--embedding-dim", "size of the token embedding")
    tie_weights: bool = opt(False, "--tie-weights", "share embedding and output weights (needs --embedding-dim equal to --hidden)")

    def __post_init__(self) -> None:
        _require(self.encoder in ENCODER_NAMES, f"--encoder must be one of {', '.join(ENCODER_NAMES)}, got {self.encoder!r}")
        _require(self.hidden_size >= 1, f"--hidden must be >= 1, got {self.hidden_size}")
        _require(self.num_layers >= 1, f"--layers must be >= 1, got {self.num_layers}")
        _require(0 <= self.dropout < 1, f"--dropout must lie in [0, 1), got {self.dropout}")
        _require(self.embedding_dim >= 1, f"--embedding-dim must be >= 1, got {self.embedding_dim}")
        _require(not self.tie_weights or self.embedding_dim == self.hidden_size,
                 f"--tie-weights needs --embedding-dim ({self.embedding_dim}) == --hidden ({self.hidden_size})")


@dataclass
class CharLMDataConfig:
    """Data of the ``charlm`` task: a corpus cut into contiguous BPTT streams."""

    data: str = opt("shakespeare", "--data", "corpus: shakespeare, tinyshakespeare, or a text file/folder")
    seq_len: int = opt(128, "--seq-len", "BPTT window: time steps per batch (state carries across windows)")
    batch_size: int = opt(64, "--batch-size", "parallel streams per batch (per process)")
    val_fraction: float = opt(0.1, "--val-fraction", "last fraction of the corpus held out for validation")

    def __post_init__(self) -> None:
        _require(self.seq_len >= 1, f"--seq-len must be >= 1, got {self.seq_len}")
        _require(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")
        _require(0 < self.val_fraction < 1, f"--val-fraction must lie in (0, 1), got {self.val_fraction}")


@dataclass
class OptimConfig:
    """Optimisation, shared by every task: AdamW, warm-up + cosine schedule, clipping."""

    lr: float = opt(2e-3, "--lr", "peak learning rate (AdamW)")
    weight_decay: float = opt(0.01, "--weight-decay", "AdamW weight decay (not applied to biases)")
    beta2: float = opt(0.99, "--beta2", "AdamW beta2")
    warmup_steps: int = opt(100, "--warmup-steps", "linear warm-up steps")
    schedule: str = opt("cosine", "--schedule", "learning-rate schedule after warm-up", choices=("cosine", "constant"))
    min_lr_ratio: float = opt(0.05, "--min-lr-ratio", "final learning rate as a fraction of --lr (cosine)")
    clip_norm: Optional[float] = opt(5.0, "--clip-norm", "clip the global gradient norm to this value (0 disables)")
    clip_value: Optional[float] = opt(None, "--clip-value", "clip each gradient element to [-v, v] (char-rnn's 5); replaces --clip-norm")

    def __post_init__(self) -> None:
        _require(self.lr > 0 and math.isfinite(self.lr), f"--lr must be > 0, got {self.lr}")
        _require(self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}")
        _require(0 <= self.beta2 < 1, f"--beta2 must lie in [0, 1), got {self.beta2}")
        _require(self.warmup_steps >= 0, f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        _require(self.schedule in ("cosine", "constant"), f"--schedule must be cosine or constant, got {self.schedule!r}")
        _require(0 <= self.min_lr_ratio <= 1, f"--min-lr-ratio must lie in [0, 1], got {self.min_lr_ratio}")
        if self.clip_norm is not None:
            _require(self.clip_norm >= 0, f"--clip-norm must be >= 0, got {self.clip_norm}")
            if self.clip_norm == 0:
                self.clip_norm = None
        if self.clip_value is not None:
            _require(self.clip_value > 0, f"--clip-value must be > 0, got {self.clip_value}")


@dataclass
class RunConfig:
    """Budgets, checkpoints, logging and hardware, shared by every task."""

    out: Optional[str] = opt(None, "--out", "checkpoint directory (required)")
    max_steps: Optional[int] = opt(None, "--max-steps", "stop after this many global steps (counts across resumes)")
    max_time: Optional[float] = opt(None, "--max-time", "stop after this many minutes of training")
    seed: int = opt(0, "--seed", "random seed (same seed on CPU: same losses)")
    threads: Optional[int] = opt(None, "--threads", "torch CPU threads (default: torch's choice)")
    checkpoint_every: int = opt(100, "--checkpoint-every", "write a checkpoint every N steps (and at the end)")
    keep_checkpoints: int = opt(2, "--keep-checkpoints", "periodic checkpoints kept in OUT/checkpoints/")
    val_every: int = opt(200, "--val-every", "validate every N steps (and at the end)")
    val_batches: Optional[int] = opt(None, "--val-batches", "limit validation to N batches (default: the whole split)")
    logger: str = opt("csv", "--logger", "metrics log written under OUT/logs", choices=("csv", "tensorboard", "none"))
    progress: bool = opt(True, None, "show a progress bar")
    accelerator: str = opt("auto", "--accelerator", "Lightning accelerator: auto, cpu, gpu")
    devices: str = opt("1", "--devices", "Lightning devices (number of processes/GPUs, or 'auto')")
    strategy: str = opt("auto", "--strategy", "Lightning strategy: auto, ddp, ddp_spawn")
    num_nodes: int = opt(1, "--num-nodes", "machines for multi-node DDP")

    def __post_init__(self) -> None:
        if self.max_steps is not None:
            _require(self.max_steps >= 1, f"--max-steps must be >= 1, got {self.max_steps}")
        if self.max_time is not None:
            _require(self.max_time > 0, f"--max-time must be > 0 minutes, got {self.max_time}")
        if self.threads is not None:
            _require(self.threads >= 1, f"--threads must be >= 1, got {self.threads}")
        _require(self.checkpoint_every >= 1, f"--checkpoint-every must be >= 1, got {self.checkpoint_every}")
        _require(self.keep_checkpoints >= 1, f"--keep-checkpoints must be >= 1, got {self.keep_checkpoints}")
        _require(self.val_every >= 1, f"--val-every must be >= 1, got {self.val_every}")
        if self.val_batches is not None:
            _require(self.val_batches >= 1, f"--val-batches must be >= 1, got {self.val_batches}")
        _require(self.num_nodes >= 1, f"--num-nodes must be >= 1, got {self.num_nodes}")


# task -> its model and data sections; a new task registers its dataclasses here
TASK_SECTIONS: Dict[str, Dict[str, type]] = {
    "charlm": {"model": CharLMModelConfig, "data": CharLMDataConfig},
}
SHARED_SECTIONS: Dict[str, type] = {"optim": OptimConfig, "run": RunConfig}


def sections_for(task: str) -> Dict[str, type]:
    """The four section classes of ``task`` (model, data, optim, run)."""
    if task not in TASK_SECTIONS:
        raise ConfigError(f"unknown task {task!r}; trainable tasks: {', '.join(TASK_SECTIONS)}")
    return {**TASK_SECTIONS[task], **SHARED_SECTIONS}


@dataclass
class TrainConfig:
    """Everything a training run needs; saved with every checkpoint."""

    task: str = "charlm"
    model: Any = field(default_factory=CharLMModelConfig)
    data: Any = field(default_factory=CharLMDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _coerce(section: type, name: str, value: Any, where: str) -> Any:
    f = {f.name: f for f in fields(section)}[name]
    default = f.default
    typ = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if value is None:
        return None
    try:
        if "bool" in typ:
            if isinstance(value, bool):
                return value
            raise ValueError
        if "int" in typ and "float" not in typ:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if "float" in typ:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if "str" in typ:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name} must be {typ.replace('Optional[', '').rstrip(']')}, got {value!r}") from None
    return value if default is dataclasses.MISSING else value


def load_yaml(path: Path, task: Optional[str] = None) -> Dict[str, Any]:
    """Read a YAML run config into {section: {field: value}}, rejecting unknown keys.

    ``task`` (the CLI's) must agree with the file's ``task:`` when both are given.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (UnicodeDecodeError, IsADirectoryError, PermissionError) as e:
        raise ConfigError(f"{path}: cannot read config ({e.__class__.__name__})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise ConfigError(f"{path}: invalid YAML" + (f" at line {line + 1}" if line is not None else "")) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (task, model, data, optim, run)")
    file_task = raw.get("task")
    if file_task is not None and task is not None and file_task != task:
        raise ConfigError(f"{path}: is a {file_task!r} config, but the command trains {task!r}")
    task = task or file_task or "charlm"
    if task not in TASK_SECTIONS:
        raise ConfigError(f"{path}: unknown task {task!r} (trainable: {', '.join(TASK_SECTIONS)})")
    sections = sections_for(task)
    out: Dict[str, Any] = {"task": task}
    for key, value in raw.items():
        if key == "task":
            continue
        if key not in sections:
            raise ConfigError(f"{path}: unknown section {key!r} (expected task, {', '.join(sections)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: section {key!r} must be a mapping")
        names = {f.name for f in fields(sections[key])}
        for k in value:
            if k not in names:
                raise ConfigError(f"{path}: unknown key {key}.{k} (known: {', '.join(sorted(names))})")
        out[key] = {k: _coerce(sections[key], k, v, f"{path}") for k, v in value.items()}
    return out


def build_config(yaml_values: Dict[str, Any], overrides: Dict[str, Dict[str, Any]],
                 task: Optional[str] = None) -> TrainConfig:
    """Defaults < YAML < overrides (CLI flags that were given)."""
    task = task or yaml_values.get("task") or "charlm"
    built = {}
    for name, cls in sections_for(task).items():
        merged = dict(yaml_values.get(name, {}))
        merged.update(overrides.get(name, {}))
        built[name] = cls(**merged)
    return TrainConfig(task=task, **built)


def config_from_dict(d: Dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from its saved dict (checkpoint ``config.json``)."""
    task = d.get("task", "charlm")
    return TrainConfig(task=task, **{name: cls(**d.get(name, {})) for name, cls in sections_for(task).items()})

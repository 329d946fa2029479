"""What every predictor shares: its config, its network, where it came from, and how it is made.

A predictor is ``Cls(config, net, path=None)``: the checkpoint's ``config.json`` (a dict) and a
network of the task's protocol (:mod:`.nets`), torch modules or ONNX graphs. Build one with
:func:`rnnkit.load` (a directory), :meth:`Predictor.from_checkpoint`, or
:meth:`Predictor.from_modules` (an in-memory ``encoder`` and ``task``, e.g. right after
training in a notebook).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Dict, Optional, Sequence, Union

from ..errors import InputError

PathLike = Union[str, Path]


class Predictor(ABC):
    """Base class: ``task``, ``config``, ``path``, :meth:`info`, :meth:`evaluate`."""

    task: ClassVar[str] = ""
    #: the key of ``evaluate()``'s result a listing shows first (lower is better unless said)
    headline: ClassVar[str] = ""

    def __init__(self, config: Dict[str, Any], net: Any, path: Optional[PathLike] = None) -> None:
        if config.get("task") != self.task:
            raise InputError(f"{path or 'config'}: a {config.get('task')!r} model cannot be used as a {self.task!r} predictor")
        self.config = config
        self.net = net
        self.path = Path(path) if path is not None else None
        self.parameters: Optional[int] = None  # weights counted when built from a checkpoint or modules

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: PathLike, device: str = "cpu") -> "Predictor":
        from .. import checkpoint as ckpt_io

        ckpt = ckpt_io.load_checkpoint(Path(path), expect_task=[cls.task])
        try:
            pred = cls(ckpt.config, cls.torch_net(ckpt.config, ckpt.weights, device, str(path)), path=path)
            pred.parameters = parameter_count(pred.net, ckpt.config, ckpt.weights)
            return pred
        except (KeyError, TypeError, AttributeError) as e:  # a config.json without what its task writes
            raise ckpt_io.config_error(str(path), ckpt.config, e) from None

    @classmethod
    def from_modules(cls, config: Dict[str, Any], encoder: Any, task: Any) -> "Predictor":
        """A predictor over modules in memory (``config`` as a checkpoint's ``config.json`` holds it)."""
        weights = {f"encoder.{k}": v.detach().cpu().numpy() for k, v in encoder.state_dict().items()}
        weights.update({f"task.{k}": v.detach().cpu().numpy() for k, v in task.state_dict().items()})
        pred = cls(config, cls.torch_net(config, weights, "cpu", "modules"))
        pred.parameters = parameter_count(pred.net, config, weights)
        return pred

    @classmethod
    def torch_net(cls, config: Dict[str, Any], weights: Dict[str, Any], device: str, where: str) -> Any:
        from .torch_nets import make_net

        return make_net(config, weights, device, where)

    # -- what it is ------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return "onnxruntime" if type(self.net).__module__.startswith("rnnkit.export") else "torch"

    def info(self) -> Dict[str, Any]:
        """A summary for listings: task, encoder, size, training data, validation metrics."""
        model = self.config.get("model", {})
        data = self.config.get("data", {})
        source = data.get("data") or data.get("corpus") or (data.get("spec") or {}).get("data")
        return {"name": self.path.name if self.path else None, "task": self.task, "backend": self.backend,
                "encoder": model.get("encoder"), "hidden_size": model.get("hidden_size"),
                "num_layers": model.get("num_layers"), "parameters": self.parameters,
                "data": source, "global_step": self.config.get("global_step"),
                "metrics": self.config.get("metrics", {})}

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return f"<{type(self).__name__} {self.config.get('model', {}).get('encoder', '?')}{where}>"

    @abstractmethod
    def evaluate(self, **kwargs: Any) -> Dict[str, Any]:
        """The task's metrics on data: the dict ``rnnkit evaluate --json`` prints."""

    @staticmethod
    def summary(metrics: Dict[str, float]) -> str:
        """The validation metrics of ``rnnkit train``'s last line, in the task's words."""
        return ""

    def describe(self, result: Dict[str, Any]) -> str:
        """``evaluate()``'s result as the lines ``rnnkit evaluate`` prints."""
        return str(result)


def parameter_count(net: Any, config: Dict[str, Any], weights: Dict[str, Any]) -> int:
    """Trainable numbers of a model, each shared (tied) tensor once: from the net's modules when
    it holds them, else from the weights (a tied output layer counted once)."""
    modules = [getattr(net, "encoder", None), getattr(net, "task", None)]
    if all(m is not None for m in modules):
        return int(sum({id(p): p.numel() for m in modules for p in m.parameters()}.values()))
    total = sum(int(v.size) for v in weights.values())
    if config.get("model", {}).get("tie_weights") and "task.head.weight" in weights:
        total -= int(weights["task.head.weight"].size)
    return total


def set_threads(threads: Optional[int]) -> None:
    """torch's CPU threads (``--threads``); imports torch only when asked to set them."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))


# ---------------------------------------------------------------------------------------
# argument checks shared by the predictors


def as_texts(texts: Any, what: str = "texts", allow_empty_text: bool = False) -> list:
    """``texts`` (a string or a sequence of strings) as a non-empty list of strings."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or isinstance(texts, (bytes, bytearray)):
        raise InputError(f"{what} must be a string or a list of strings, got {type(texts).__name__}")
    texts = list(texts)
    if not texts:
        raise InputError(f"{what}: the list is empty")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InputError(f"{what}[{i}] must be a string, got {type(t).__name__}")
        if not allow_empty_text and not t.strip():
            raise InputError(f"{what}[{i}] is empty")
    return texts


def check_int(name: str, value: Any, low: int, high: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be an integer, got {value!r}"[:200])
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise InputError(f"{name} must be {bounds}, got {value}")
    return value


def check_float(name: str, value: Any, low: float, high: Optional[float] = None, low_open: bool = False) -> float:
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}"[:200])
    if (value <= low if low_open else value < low) or (high is not None and value > high):
        raise InputError(f"{name} must be {'>' if low_open else '>='} {low:g}"
                         + (f" and <= {high:g}" if high is not None else "") + f", got {value}")
    return float(value)

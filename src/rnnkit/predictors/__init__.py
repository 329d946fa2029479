"""What ``rnnkit.load(path)`` returns: one predictor class per task.

============  ==========================  =====================================================
task          class                       methods
============  ==========================  =====================================================
charlm        :class:`CharLMPredictor`    ``sample``, ``stream``, ``score``, ``evaluate``
sentiment     :class:`SentimentPredictor` ``predict``, ``evaluate``
forecast      :class:`ForecastPredictor`  ``forecast``, ``backtest``, ``plot``, ``evaluate``
asr           :class:`AsrPredictor`       ``transcribe``, ``evaluate``
seq2seq       :class:`Seq2SeqPredictor`   ``translate``, ``evaluate``
============  ==========================  =====================================================

The predictors never import Lightning and read no pickle; each runs a network of the
protocols in :mod:`.nets` (the checkpoint's torch modules, or an ONNX export's graphs), so
the CLI, the HTTP server and the benchmarks share one inference path per task.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from .base import Predictor

if TYPE_CHECKING:  # pragma: no cover
    from .asr import AsrPredictor
    from .charlm import CharLMPredictor
    from .forecast import ForecastPredictor
    from .sentiment import SentimentPredictor
    from .seq2seq import Seq2SeqPredictor

CLASSES = {"charlm": ("charlm", "CharLMPredictor"), "sentiment": ("sentiment", "SentimentPredictor"),
           "forecast": ("forecast", "ForecastPredictor"), "asr": ("asr", "AsrPredictor"),
           "seq2seq": ("seq2seq", "Seq2SeqPredictor")}


def predictor_class(task: str) -> type:
    module, name = CLASSES[task]
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def load(path: Union[str, Path], *, device: str = "cpu", expect: Optional[Sequence[str]] = None) -> Predictor:
    """The predictor of the checkpoint (or ONNX export) directory ``path``.

    ``path`` may be a run's ``--out``, one of its ``checkpoints/step-N/`` or
    ``checkpoints/best/``, or the ``--out`` of ``rnnkit export``. ``expect`` names the tasks a
    caller accepts (others raise :class:`~rnnkit.errors.CheckpointError` naming both).
    """
    from .. import checkpoint as ckpt_io

    p = Path(path).expanduser()
    config = ckpt_io.read_config(p, expect_task=list(expect) if expect else None)
    if "export" in config:
        from ..export.onnx_runtime import load_net

        config, net = load_net(p)  # files verified against their sha256s; graphs in onnxruntime
        return predictor_class(config["task"])(config, net, path=p)
    return predictor_class(config["task"]).from_checkpoint(p, device=device)


__all__ = ["load", "Predictor", "predictor_class", "CharLMPredictor", "SentimentPredictor", "ForecastPredictor",
           "AsrPredictor", "Seq2SeqPredictor"]


def __getattr__(name: str) -> Any:
    for task, (_, cls) in CLASSES.items():
        if cls == name:
            return predictor_class(task)
    raise AttributeError(name)

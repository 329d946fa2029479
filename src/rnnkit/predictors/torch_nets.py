"""The torch side of the predictors: a checkpoint's modules behind the protocols of :mod:`.nets`.

(charlm's net lives in :mod:`.charlm`: it generates through the NumPy runtime and imports
torch only to score or to step a non-recurrent encoder.)

:func:`load_modules` is the one place that turns a checkpoint's config and weights into the
task's ``(encoder, task)`` modules (every verb, the diagnostics and the predictors use it).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..checkpoint import config_error
from ..errors import CheckpointError


# ---------------------------------------------------------------------------------------
# one helper builds a checkpoint's modules


def _charlm(config: Dict[str, Any]):
    from ..tasks import charlm

    return charlm.build(config["model"], len(config["data"]["vocab"]))


def _sentiment(config: Dict[str, Any]):
    from ..tasks import sentiment

    d = config["data"]
    return sentiment.build(config["model"], len(d["vocab"]["tokens"]), len(d["classes"]))


def _forecast(config: Dict[str, Any]):
    from ..tasks import forecast

    d = config["data"]
    spec = d["spec"]
    event = bool(spec.get("event"))
    k = 0 if event else len(d["target_names"])
    skip = list(range(k)) if spec.get("transform", "levels") == "levels" and not event else []
    return forecast.build(config["model"], int(d["n_features"]), k, int(spec["horizon"]), event, skip)


def _asr(config: Dict[str, Any]):
    from ..data.speech import Units
    from ..tasks import asr

    return asr.build(config["model"], len(Units.from_json(config["data"]["units"])))


def _seq2seq(config: Dict[str, Any]):
    from ..data.parallel import SubwordVocab
    from ..tasks import seq2seq

    d = config["data"]
    src = SubwordVocab.from_json(d["src_vocab"])
    tgt = src if d.get("shared_vocab") else SubwordVocab.from_json(d["tgt_vocab"])
    return seq2seq.build(config["model"], len(src), len(tgt), shared_vocab=bool(d.get("shared_vocab")))


BUILDERS: Dict[str, Callable[[Dict[str, Any]], Tuple[nn.Module, nn.Module]]] = {
    "charlm": _charlm, "sentiment": _sentiment, "forecast": _forecast, "asr": _asr, "seq2seq": _seq2seq}


def load_modules(config: Dict[str, Any], weights: Dict[str, np.ndarray], device: str = "cpu",
                 where: str = "checkpoint") -> Tuple[nn.Module, nn.Module]:
    """``(encoder, task)`` of a checkpoint's task with its weights, in eval mode on ``device``."""
    try:
        encoder, task = BUILDERS[config["task"]](config)
    except (KeyError, TypeError, ValueError) as e:
        raise config_error(where, config, e) from None
    module = nn.ModuleDict({"encoder": encoder, "task": task})
    try:
        module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if "\n" in str(e) else str(e)
        raise CheckpointError(f"{where}: weights do not match config.json ({first[:200]})") from None
    module.to(device)
    return encoder.eval(), task.eval()


# ---------------------------------------------------------------------------------------
# nets


class TorchSentiment:
    def __init__(self, encoder: nn.Module, task: nn.Module) -> None:
        self.encoder, self.task = encoder, task

    def proba(self, ids: Sequence[np.ndarray]) -> np.ndarray:
        from ..tasks.sentiment import predict_proba

        return predict_proba(self.encoder, self.task, ids)


class TorchForecast:
    def __init__(self, encoder: nn.Module, task: nn.Module) -> None:
        from ..tasks.forecast_baselines import interval_levels

        self.encoder, self.task = encoder, task
        self.autoregressive = bool(getattr(task, "autoregressive", False))
        self.levels = tuple(interval_levels(task))

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        y, _ = self.encoder(xt)
        return self.task.predict(y, xt, self.levels)

    @torch.no_grad()
    def rollout(self, x: np.ndarray, data, windows: np.ndarray) -> Dict[str, np.ndarray]:
        from ..tasks.forecast import rollout

        return rollout(self.encoder, self.task, torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                       data, windows)

    def run_windows(self, data, split: str) -> Dict[str, np.ndarray]:
        from ..tasks.forecast import run_windows

        return run_windows(self.encoder, self.task, data, split, levels=self.levels)


class TorchAsr:
    def __init__(self, encoder: nn.Module, task: nn.Module) -> None:
        self.encoder, self.task = encoder, task

    def posteriors(self, feats: Sequence[np.ndarray]) -> List[np.ndarray]:
        from ..tasks.asr import posteriors

        return posteriors(self.encoder, self.task, feats)


class TorchSeq2Seq:
    def __init__(self, encoder: nn.Module, task: nn.Module) -> None:
        self.encoder, self.task = encoder, task

    @torch.no_grad()
    def translate_ids(self, src_ids: Sequence[Sequence[int]], beam: int, alpha: float,
                      max_len: Optional[int], batch_size: int = 64, no_repeat_ngram: int = 0) -> List[Any]:
        from ..tasks.seq2seq import translate_ids

        return translate_ids(self.encoder, self.task, src_ids, beam=beam, alpha=alpha, batch_size=batch_size,
                             max_len=max_len, no_repeat_ngram=no_repeat_ngram)


def make_net(config: Dict[str, Any], weights: Dict[str, np.ndarray], device: str = "cpu", where: str = "checkpoint"):
    """The torch net of a checkpoint's task (see :mod:`.nets` for the protocols)."""
    task = config["task"]
    encoder, head = load_modules(config, weights, device, where)
    return {"sentiment": TorchSentiment, "forecast": TorchForecast, "asr": TorchAsr,
            "seq2seq": TorchSeq2Seq}[task](encoder, head)

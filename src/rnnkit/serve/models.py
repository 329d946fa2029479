"""The served models: each a name, a directory, its predictor (loaded in the background at
start-up) and a micro-batcher over the predictor's batched method.

Everything done with a model goes through the predictor API (:func:`rnnkit.predictors.load`
and its methods); nothing here knows how a network runs. The batched call of each task:

=========  ==========================================  ==================================
task       one batched call                            requests share a call when equal
=========  ==========================================  ==================================
sentiment  ``predict(texts)``                          always
seq2seq    ``translate(texts, beam, max_len)``         ``beam``, ``max_len``
asr        ``transcribe([(samples, rate), ...])``      ``beam``, ``timestamps``
forecast   ``forecast(data, series)`` per distinct ask  equal asks of the training data
charlm     ``sample``/``stream`` per request           (not batched: one stream each)
=========  ==========================================  ==================================
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Hashable, List, Optional, Sequence

from .batcher import MicroBatcher
from .config import ServeConfig

log = logging.getLogger("rnnkit.serve")


def _sentiment(pred: Any, key: Hashable, texts: List[str]) -> Sequence[Any]:
    return pred.predict(texts)


def _seq2seq(pred: Any, key: Hashable, texts: List[str]) -> Sequence[Any]:
    beam, max_len = key  # type: ignore[misc]
    return pred.translate(texts, beam=beam, max_len=max_len)


def _asr(pred: Any, key: Hashable, clips: List[Any]) -> Sequence[Any]:
    beam, timestamps = key  # type: ignore[misc]
    out = pred.transcribe(list(clips), beam=beam, timestamps=timestamps)
    return out if isinstance(out, list) else [out]


def _forecast(pred: Any, key: Hashable, asks: List[Any]) -> Sequence[Any]:
    """One ``forecast`` call per distinct request of the batch (requests without a history ask
    the same question of the training data: one call answers all of them)."""
    done: Dict[Any, Any] = {}
    out = []
    for data, series in asks:
        k = ("training data" if data is None else id(data), series)
        if k not in done:
            done[k] = pred.forecast(data=data, series=series)
        out.append(done[k])
    return out


BATCHED = {"sentiment": _sentiment, "seq2seq": _seq2seq, "asr": _asr, "forecast": _forecast}


@dataclass
class Served:
    """One model behind the server."""

    name: str
    path: str
    task: str
    predictor: Any = None
    error: Optional[str] = None
    batcher: Optional[MicroBatcher] = None
    load_seconds: Optional[float] = None

    @property
    def ready(self) -> bool:
        return self.predictor is not None

    def listing(self) -> Dict[str, Any]:
        """``/v1/models``' entry: name, task, encoder, size, training data, validation metrics."""
        out: Dict[str, Any] = {"name": self.name, "task": self.task, "ready": self.ready}
        if self.predictor is not None:
            info = dict(self.predictor.info())
            info.pop("name", None)
            if info.get("parameters") is None:
                info["parameters"] = count_weights(Path(self.path))
            out.update(info)
            out["load_seconds"] = self.load_seconds
        if self.error:
            out["error"] = self.error
        if self.batcher is not None:
            out["served"] = self.batcher.stats.as_dict()
        return out


def count_weights(path: Path) -> Optional[int]:
    """Numbers stored in ``path/model.safetensors`` (read from its header; no tensor is
    loaded), or None without one (e.g. an ONNX export)."""
    from math import prod

    f = path / "model.safetensors"
    if not f.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(f), framework="numpy") as st:
            return int(sum(prod(st.get_slice(k).get_shape()) for k in st.keys()))
    except Exception:  # noqa: BLE001 - a listing never fails over a size
        return None


class Registry:
    """The models of one server process, by name (a dictionary lookup: names never reach the
    file system)."""

    def __init__(self, config: ServeConfig) -> None:
        from ..checkpoint import read_config

        self.config = config
        self.models: Dict[str, Served] = {}
        for name, path in config.models.items():
            self.models[name] = Served(name, path, str(read_config(Path(path)).get("task", "unknown")))

    def get(self, name: str) -> Optional[Served]:
        return self.models.get(name)

    @property
    def ready(self) -> bool:
        return all(m.ready for m in self.models.values())

    def load_all(self) -> None:
        """Load every model (in a background thread at start-up); failures are kept per model."""
        from .. import predictors

        for m in self.models.values():
            t0 = time.perf_counter()
            try:
                m.predictor = predictors.load(m.path)
            except Exception as e:  # noqa: BLE001 - reported by /ready and the model's endpoints
                m.error = f"{type(e).__name__}: {e}".splitlines()[0][:300]
                log.error("model %s (%s) failed to load: %s", m.name, m.path, m.error)
                continue
            m.load_seconds = round(time.perf_counter() - t0, 3)
            m.task = m.predictor.task
            if m.task in BATCHED:
                fn = BATCHED[m.task]
                pred = m.predictor
                m.batcher = MicroBatcher(lambda key, items, fn=fn, pred=pred: fn(pred, key, items),
                                         max_batch=self.config.max_batch, wait_ms=self.config.batch_wait_ms)
            log.info("model %s ready (%s, %.2f s)", m.name, m.task, m.load_seconds)

    async def close(self) -> None:
        for m in self.models.values():
            if m.batcher is not None:
                await m.batcher.close()


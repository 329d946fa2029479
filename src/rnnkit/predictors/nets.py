"""What a predictor asks of the network it runs: NumPy in, NumPy out, one protocol per task.

A predictor (:mod:`rnnkit.predictors`) does the task's pre- and post-processing (tokens,
windows, features, labels, decoding) in NumPy and hands the network arrays. The network is
either the torch modules of a checkpoint (``rnnkit.predictors.torch_nets``) or ONNX graphs run
by onnxruntime (``rnnkit.export``), so the same predictor serves both, and the torch-free
ones (charlm, sentiment, forecast) never import torch unless their network does.

Shapes use the ``(B, T, C)`` vocabulary; every array is float32 unless said otherwise.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple

import numpy as np


class CharStepper(Protocol):
    """Batch-1 generation: one token in, next-token logits out, the state carried."""

    def step(self, token: int, state: Any = None) -> Tuple[np.ndarray, Any]:
        """``token`` -> ``(logits (V,) float64, state)``; ``state=None`` starts a sequence."""
        ...


class CharLMNet(Protocol):
    def stepper(self) -> CharStepper:
        """A fresh stepper (generation)."""
        ...

    def score(self, ids: np.ndarray) -> Tuple[float, int]:
        """Mean next-character loss in nats over int64 ``ids`` (T,), and how many were predicted."""
        ...


class SentimentNet(Protocol):
    def proba(self, ids: Sequence[np.ndarray]) -> np.ndarray:
        """Token-id arrays (int64, each (T_i,) with T_i >= 1) -> class probabilities (N, C) float64.
        Batching (by length) is the net's business; rows come back in input order."""
        ...


class ForecastNet(Protocol):
    autoregressive: bool
    levels: Tuple[float, float, float]

    def predict(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """Windows ``x`` (B, L, C) float32 -> the dict of ``ForecastTask.predict``: ``mean``
        (B, H, K) and ``q`` (B, H, K, 3) in scaled units, or ``prob`` (B,) for an event."""
        ...


class AsrNet(Protocol):
    def posteriors(self, feats: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Normalised log-mel features, each (T_i, F) -> CTC log-probabilities (T'_i, U) float32."""
        ...


class Seq2SeqNet(Protocol):
    def translate_ids(self, src_ids: Sequence[Sequence[int]], beam: int, alpha: float,
                      max_len: Optional[int], batch_size: int = 64, no_repeat_ngram: int = 0) -> List[Any]:
        """Source subword ids -> one hypothesis per sentence with ``.tokens`` (list of target
        ids, no BOS/EOS), ``.score`` and ``.attention`` ((T_out, T_src) array, or None).
        ``max_len`` (or 2 x each source length + 10) caps each sentence's tokens, EOS included;
        ``no_repeat_ngram`` > 0 forbids repeating any n-gram of that size."""
        ...

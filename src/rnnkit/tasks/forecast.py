"""Forecasting heads: direct multi-step point / Gaussian / quantile forecasts, and event probability.

A window of ``L`` past rows ``x: (B, L, C)`` goes through any encoder; the head reads the
last output ``h = y[:, -1]: (B, E)`` and predicts all ``H`` steps at once (direct
multi-step, no error feedback through a rollout):

    point:     mu = skip + W h                      (B, H, K)   loss MSE or MAE
    gaussian:  mu = skip + W_mu h, sigma = softplus(W_s h) + 1e-3
               NLL = log sigma + (z - mu)^2 / (2 sigma^2)       (+ const)
    quantile:  q_j = skip + W_j h for levels tau_j  pinball loss sum_j max(tau_j e, (tau_j - 1) e)
    event:     p = sigmoid(w h + b)                 (B,)        binary cross-entropy

``skip`` is the last observed (scaled) target level when the targets are levels, and 0 for
differences / log-returns (whose outputs are cumulative changes): a zero head is then the
naive last-value forecast, so the network learns a correction to the naive baseline.
With ``--linear-skip`` a linear map of the newest input row is added to every output (wide &
deep), so a linear model on the last observation is a special case of the network.
Outputs live in the scaled, transformed space; :meth:`rnnkit.data.timeseries.TSData.to_units`
maps them (and interval bounds, monotonically) back to the original units.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import Encoder, build_encoder
from .forecast_metrics import (direction_accuracy, event_metrics, interval_metrics,  # noqa: F401
                               point_metrics, reliability)  # torch-free home, re-exported

HEADS = ("point", "gaussian", "quantile")


class ForecastTask(nn.Module):
    name = "forecast"
    stream = False  # independent windows: never carry state between batches
    rate_unit = "windows"  # training speed is reported in loss()'s "windows" per second

    def __init__(self, input_size: int, encoder_size: int, horizon: int, n_targets: int, head: str = "point",
                 loss: str = "mse", quantiles: Sequence[float] = (0.1, 0.5, 0.9), skip_index: Sequence[int] = (),
                 event: bool = False, dropout: float = 0.0, autoregressive: bool = False,
                 linear_skip: bool = False) -> None:
        super().__init__()
        self.input_size = input_size
        self.autoregressive = autoregressive
        self.rollout_horizon = max(horizon, 1)
        self.horizon, self.n_targets = (1 if autoregressive else max(horizon, 1)), n_targets
        self.kind = "event" if event else head
        self.loss_name = loss
        self.quantiles = list(quantiles)
        self.skip_index = list(skip_index)
        self.dropout = nn.Dropout(dropout)
        per = {"event": 1, "point": 1, "gaussian": 2, "quantile": len(self.quantiles)}[self.kind]
        n_out = 1 if event else self.horizon * n_targets * per
        self.head = nn.Linear(encoder_size, n_out)
        # wide & deep: a linear map of the newest input row added to the head's output, so a
        # linear model on the last observation (e.g. logistic regression) is a special case
        self.linear = nn.Linear(input_size, n_out, bias=False) if linear_skip else None
        if self.linear is not None:
            nn.init.zeros_(self.linear.weight)
        self.per = per

    def inputs(self, batch: Dict[str, Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        return batch["x"], None  # (B, L, C), fixed-length windows

    def raw(self, y: Tensor, x: Tensor) -> Tensor:
        """Head outputs: (B,) logits for events, else (B, H, K, per) with the skip added."""
        out = self.head(self.dropout(y[:, -1]))  # (B, E) -> (B, n_out)
        if self.linear is not None:
            out = out + self.linear(x[:, -1])  # (B, C) -> (B, n_out)
        if self.kind == "event":
            return out[:, 0]
        out = out.view(out.shape[0], self.horizon, self.n_targets, self.per)  # (B, H, K, per)
        if self.skip_index:
            skip = x[:, -1, self.skip_index]  # (B, K) last observed scaled level
            if self.kind == "gaussian":
                out = torch.cat([out[..., :1] + skip[:, None, :, None], out[..., 1:]], dim=-1)
            else:
                out = out + skip[:, None, :, None]
        return out

    def loss(self, y: Tensor, batch: Dict[str, Tensor]) -> Tuple[Tensor, Dict[str, float]]:
        out = self.raw(y, batch["x"])
        if self.kind == "event":
            target = batch["event"]
            return F.binary_cross_entropy_with_logits(out, target), {"tokens": float(target.numel()),
                                                                     "windows": float(y.shape[0])}
        target = batch["y"]  # (B, H, K)
        if self.autoregressive:
            target = target[:, :1]  # a one-step model; rolled out at prediction time
        if self.kind == "point":
            mu = out[..., 0]
            loss = F.l1_loss(mu, target) if self.loss_name == "mae" else F.mse_loss(mu, target)
        elif self.kind == "gaussian":
            mu, sigma = out[..., 0], F.softplus(out[..., 1]) + 1e-3
            loss = (torch.log(sigma) + 0.5 * ((target - mu) / sigma) ** 2).mean() + 0.5 * math.log(2 * math.pi)
        else:
            taus = torch.tensor(self.quantiles, dtype=out.dtype, device=out.device)
            e = target[..., None] - out  # (B, H, K, Q)
            loss = torch.maximum(taus * e, (taus - 1) * e).mean()
        return loss, {"tokens": float(target.numel()), "windows": float(y.shape[0])}

    @torch.no_grad()
    def predict(self, y: Tensor, x: Tensor, levels: Sequence[float] = (0.1, 0.5, 0.9)) -> Dict[str, np.ndarray]:
        """``{"mean": (B,H,K)}`` plus ``{"q": (B,H,K,len(levels))}`` in scaled space, or ``{"prob": (B,)}``."""
        out = self.raw(y, x)
        if self.kind == "event":
            return {"prob": torch.sigmoid(out).double().cpu().numpy()}
        res: Dict[str, np.ndarray] = {}
        if self.kind == "point":
            res["mean"] = out[..., 0].double().cpu().numpy()
        elif self.kind == "gaussian":
            from scipy.stats import norm

            mu = out[..., 0].double().cpu().numpy()
            sigma = (F.softplus(out[..., 1]) + 1e-3).double().cpu().numpy()
            res["mean"] = mu
            res["sigma"] = sigma
            res["q"] = mu[..., None] + sigma[..., None] * norm.ppf(np.asarray(levels))
        else:
            q = out.double().cpu().numpy()  # (B, H, K, Q)
            q = np.sort(q, axis=-1)  # no crossing quantiles
            taus = np.asarray(self.quantiles)
            res["mean"] = np.stack([np.apply_along_axis(lambda r: np.interp(0.5, taus, r), -1, q)], 0)[0]
            res["q"] = np.apply_along_axis(lambda r: np.interp(levels, taus, r), -1, q)
        return res


def build(model_cfg: dict, n_features: int, n_targets: int, horizon: int, event: bool,
          skip_index: Sequence[int]) -> Tuple[Encoder, ForecastTask]:
    encoder = build_encoder(model_cfg["encoder"], n_features, model_cfg["hidden_size"],
                            num_layers=model_cfg["num_layers"], dropout=model_cfg["dropout"])
    quantiles = [float(q) for q in str(model_cfg.get("quantiles", "0.1,0.5,0.9")).split(",")]
    task = ForecastTask(n_features, encoder.output_size, horizon, n_targets, head=model_cfg["head"],
                        loss=model_cfg["loss"], quantiles=quantiles, skip_index=skip_index, event=event,
                        dropout=model_cfg["dropout"], autoregressive=model_cfg.get("multistep") == "autoregressive",
                        linear_skip=bool(model_cfg.get("linear_skip", False)))
    return encoder, task


def build_for(model_cfg: dict, data) -> Tuple[Encoder, ForecastTask]:
    """Encoder + head for a prepared :class:`~rnnkit.data.timeseries.TSData`."""
    from ..errors import ConfigError

    spec = data.spec
    if model_cfg.get("multistep") == "autoregressive":
        if spec.event or spec.covariates or model_cfg["head"] != "point":
            raise ConfigError("--multistep autoregressive rolls out the targets themselves: it needs --head point, "
                              "no --covariates (their future is unknown) and no --event")
    skip = data.target_index if (spec.transform == "levels" and not spec.event) else []
    return build(model_cfg, len(data.feature_names), len(data.target_index), spec.horizon, bool(spec.event), skip)


@torch.no_grad()
def run_windows(encoder: Encoder, task: ForecastTask, data, split: str, batch_size: int = 256,
                levels: Sequence[float] = (0.1, 0.5, 0.9)) -> Dict[str, np.ndarray]:
    """Predictions for every window of ``split``, concatenated (scaled space)."""
    was = encoder.training, task.training
    encoder.eval(), task.eval()
    n = len(data.windows[split])
    parts: List[Dict[str, np.ndarray]] = []
    for i in range(0, n, batch_size):
        idx = np.arange(i, min(n, i + batch_size))
        x = torch.from_numpy(data.batch(idx, split)["x"])
        if task.autoregressive:
            parts.append(rollout(encoder, task, x, data, data.windows[split][idx]))
        else:
            y, _ = encoder(x)
            parts.append(task.predict(y, x, levels))
    encoder.train(was[0]), task.train(was[1])
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@torch.no_grad()
def rollout(encoder: Encoder, task: ForecastTask, x: Tensor, data, windows: np.ndarray) -> Dict[str, np.ndarray]:
    """Autoregressive rollout of a one-step model: predict, append the prediction (and the
    calendar features of its timestamp) as the newest input row, drop the oldest, repeat.

    Outputs are in the direct heads' space: scaled levels, or cumulative changes / scale.
    """
    from ..data import timeseries as ts

    H, K = task.rollout_horizon, task.n_targets
    transform = data.spec.transform
    cal, offset = ts.rollout_inputs(data, windows, H, K)
    cal_t = torch.as_tensor(cal, dtype=x.dtype)  # (B, H, F)
    off = torch.as_tensor(offset, dtype=x.dtype)  # (B, K)
    cur, outs, total = x, [], torch.zeros(x.shape[0], K, dtype=x.dtype)
    for k in range(H):
        y, _ = encoder(cur)
        o = task.raw(y, cur)[:, 0, :, 0]  # (B, K) one step
        total = o if transform == "levels" else total + o
        outs.append(total)
        row = torch.cat([o - off, cal_t[:, k]], dim=1)[:, None]  # (B, 1, K + F)
        cur = torch.cat([cur[:, 1:], row], dim=1)  # (B, L, C)
    return {"mean": torch.stack(outs, 1).double().numpy()}  # (B, H, K)

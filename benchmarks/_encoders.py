"""The machinery of benchmarks/encoders.py: sweeps over T and positions, the adding problem,
and quality at equal training time through the real pipeline (char-LM, forecasting, SST-2).

The measurements themselves (correctness checks, interleaved training tokens/s, batch-1
generation, parameter matching) are the library's :mod:`rnnkit.diagnostics.speed`, the same
code ``rnnkit bench encoders`` runs; this module arranges them into the full benchmark.
Imports torch: benchmarks/encoders.py imports it after setting the thread count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.diagnostics.speed import Runner, correctness, generation, interleaved, make, matched_hidden, n_params

ENCODERS = ("rnn", "lstm", "gru", "mingru", "mingru-chunked", "mingru-log", "minlstm", "tcn", "transformer")
QUALITY_ENCODERS = ("rnn", "lstm", "gru", "mingru", "minlstm", "tcn", "transformer")
T_LIST = (128, 512, 2048, 4096, 8192)
POSITIONS = (1, 64, 512, 2048, 8192)


# ---------------------------------------------------------------------------------------------
# training throughput against T


def train_sweep(names: Sequence[str], hiddens: Dict[str, int], T_list: Sequence[int], B: int,
                input_size: int, reps: int = 3, cell_budget_s: float = 20.0,
                log: Optional[Callable[[str], None]] = None) -> Dict[str, Dict[str, Optional[float]]]:
    """tokens/s[name][T]. At each T all encoders run interleaved, round by round (one warm-up
    each, then up to ``reps`` rounds while the rounds so far took under ``cell_budget_s``), so
    a change of machine load hits all of them alike. An encoder whose predicted time for one
    warm-up plus one timed run (from its previous T, linear in T, quadratic for a Transformer
    past T = 1024) exceeds ``cell_budget_s`` is skipped (None) from there on."""
    res: Dict[str, Dict[str, Optional[float]]] = {n: {} for n in names}
    last: Dict[str, tuple] = {}  # name -> (T, seconds per run)
    dropped: set = set()
    for T in T_list:
        active = []
        for name in names:
            if name in last and name not in dropped:
                T0, s0 = last[name]
                one = s0 * (T / T0) ** (2 if name == "transformer" and T0 >= 1024 else 1)
                if 2 * one > cell_budget_s:
                    dropped.add(name)
                    if log:
                        log(f"train {name} T={T}: skipped (predicted {2 * one:.0f} s > {cell_budget_s:.0f} s)")
            if name in dropped:
                res[name][str(T)] = None
            else:
                active.append(name)
        if not active:
            continue
        runners = {n: Runner(n, hiddens[n], T, B, input_size) for n in active}
        tps = interleaved(runners, reps, cell_budget_s)
        for n in active:
            res[n][str(T)] = tps[n]
            last[n] = (T, runners[n].tokens / tps[n])
            if log:
                log(f"train {n:15s} H={hiddens[n]:4d} T={T:5d}: {tps[n]:10.0f} tokens/s")
        del runners
    return res


def mingru_vs_gru(T: int = 4096, B: int = 16, H: int = 256, reps: int = 3, budget_s: float = 30.0,
                  methods: Sequence[str] = ("fused",)) -> Dict[str, float]:
    """The headline ratio, interleaved in one process: minGRU tokens/s / nn.GRU tokens/s."""
    runners = {"gru": Runner("gru", H, T, B, H)}
    for m in methods:
        runners[f"mingru-{m}"] = Runner(f"mingru-{m}", H, T, B, H)
    tps = interleaved(runners, reps, budget_s)
    out = {f"{k}_tokens_per_s": v for k, v in tps.items()}
    for m in methods:
        out[f"mingru_{m}_vs_gru"] = tps[f"mingru-{m}"] / tps["gru"]
    return out



# ---------------------------------------------------------------------------------------------
# quality at equal CPU time: the adding problem


class _Regressor(nn.Module):
    def __init__(self, name: str, hidden: int) -> None:
        super().__init__()
        # one layer each; the TCN gets 6 blocks so its receptive field (253) covers T = 100
        self.encoder = make(name, 2, hidden, num_layers=6 if name == "tcn" else 1)
        self.head = nn.Linear(self.encoder.output_size, 1)

    def forward(self, x):
        y, _ = self.encoder(x)  # (B, T, H)
        return self.head(y[:, -1]).squeeze(-1)  # (B,)


def adding(name: str, hidden: int, T: int, seconds: float, batch: int = 64, lr: float = 2e-3,
           seed: int = 0) -> Dict[str, float]:
    """Train for ``seconds`` of CPU time (wall clock of the optimisation steps); test MSE."""
    from rnnkit.data.memory_tasks import ADDING_BASELINE, adding_problem

    torch.manual_seed(seed)
    model = _Regressor(name, hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    xt, yt = adding_problem(1000, T, np.random.default_rng(20_000 + seed))
    xt, yt = torch.from_numpy(xt), torch.from_numpy(yt)
    spent, steps = 0.0, 0
    while spent < seconds:
        x, y = adding_problem(batch, T, rng)
        t0 = time.perf_counter()
        loss = F.mse_loss(model(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        spent += time.perf_counter() - t0
        steps += 1
    model.eval()
    with torch.no_grad():
        mse = F.mse_loss(model(xt), yt).item()
    return {"test_mse": mse, "baseline_mse": ADDING_BASELINE, "steps": steps, "seconds": spent,
            "hidden": hidden, "params": n_params(model)}


def _matched_regressor_hidden(name: str, target: int) -> int:
    """Hidden size of the adding-problem regressor whose parameter count is closest to ``target``."""
    def count(h: int) -> int:
        with torch.device("meta"):
            return n_params(_Regressor(name, h))

    a, b = 1, 4096
    while a < b:  # bisect on the growing parameter count
        m = (a + b) // 2
        if count(m) < target:
            a = m + 1
        else:
            b = m
    return min((max(1, a - 1), a), key=lambda h: abs(count(h) - target))



# ---------------------------------------------------------------------------------------------
# the whole run


SECTIONS = ("headline", "generate", "train", "adding", "charlm", "forecast", "sst2")
# the sections that train models for minutes; ``quick`` never runs them
QUALITY_SECTIONS = ("adding", "charlm", "forecast", "sst2")


def run(quick: bool = False, threads: int = 1, B: int = 16, H: int = 256,
        T_list: Sequence[int] = T_LIST, positions: Sequence[int] = POSITIONS,
        adding_seconds: float = 20.0, adding_T: int = 100, cell_budget_s: float = 20.0,
        headline_T: int = 4096, sections: Sequence[str] = SECTIONS, charlm_minutes: float = 1.5,
        forecast_minutes: float = 1.0, sst2_minutes: float = 1.0,
        log: Optional[Callable[[str], None]] = None) -> Dict[str, object]:
    """The whole benchmark; ``quick`` keeps it under a minute (headline and generation only,
    whatever ``sections`` says). Correctness always runs first; ``sections`` picks the rest."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    torch.set_num_threads(threads)
    t_start = time.perf_counter()
    payload: Dict[str, object] = {"settings": {"quick": quick, "threads": threads, "B": B, "H": H,
                                               "headline_T": headline_T, "cell_budget_s": cell_budget_s,
                                               "adding_seconds": adding_seconds, "charlm_minutes": charlm_minutes,
                                               "forecast_minutes": forecast_minutes, "sst2_minutes": sst2_minutes,
                                               "sections": list(sections)}}
    payload["correctness"] = correctness()
    if log:
        log("correctness: every check within 1e-10")
    if "headline" in sections:
        headline = mingru_vs_gru(T=headline_T, B=B, H=H, reps=2 if quick else 3,
                                 methods=("fused",) if quick else ("fused", "chunked"))
        payload["headline"] = headline
        if log:
            log("T=%d B=%d H=%d: " % (headline_T, B, H) + ", ".join(f"{k} {v:.3g}" for k, v in headline.items()))
    if "generate" in sections:
        gen_names = (("gru", "mingru", "transformer") if quick
                     else ("lstm", "gru", "mingru", "minlstm", "tcn", "transformer"))
        gen_pos = ((1, 1024) if tuple(positions) == POSITIONS else tuple(positions)) if quick else tuple(positions)
        payload["generate"] = {n: generation(n, H, gen_pos, H, steps=20 if quick else 40) for n in gen_names}
        if log:
            for n, d in payload["generate"].items():
                log(f"generate {n:12s} " + "  ".join(f"pos {p}: {v['us_per_token']:.0f} us, {v['state_bytes']} B"
                                                       for p, v in d.items()))
    if not quick and "train" in sections:
        ref_params = n_params(make("gru", H, H))
        equal = {n: H for n in ENCODERS}
        matched = {n: (H if n == "gru" else matched_hidden(n, ref_params, H)) for n in ENCODERS}
        payload["params"] = {"equal": {n: n_params(make(n, H, equal[n])) for n in ENCODERS},
                             "matched": {n: n_params(make(n, H, matched[n])) for n in ENCODERS},
                             "matched_hidden": matched, "reference_params": ref_params}
        payload["train_equal_hidden"] = train_sweep(ENCODERS, equal, T_list, B, H, cell_budget_s=cell_budget_s, log=log)
        payload["train_matched_params"] = train_sweep(ENCODERS, matched, T_list, B, H, cell_budget_s=cell_budget_s,
                                                      log=log)
    if not quick and "adding" in sections:
        ref_add = n_params(_Regressor("gru", 64))
        add = {}
        for n in QUALITY_ENCODERS:
            h = 64 if n == "gru" else _matched_regressor_hidden(n, ref_add)
            add[n] = adding(n, h, adding_T, adding_seconds)
            if log:
                log(f"adding T={adding_T} {n:12s} H={h:4d}: test MSE {add[n]['test_mse']:.4f} "
                    f"after {add[n]['steps']} steps")
        payload["adding"] = {"T": adding_T, "seconds": adding_seconds, "results": add}
    for key, minutes in (("charlm", charlm_minutes), ("forecast", forecast_minutes), ("sst2", sst2_minutes)):
        if not quick and key in sections:
            t0 = time.perf_counter()
            payload[key] = quality(QUALITY[key], minutes, threads, log=log)
            payload[key]["wall_seconds"] = time.perf_counter() - t0  # start-ups and evaluations included
    payload["seconds"] = time.perf_counter() - t_start
    return payload


# ---------------------------------------------------------------------------------------------
# quality at equal CPU time through the real pipeline: char-LM, forecasting, SST-2
#
# Each run is a separate ``rnnkit`` process (the CLI's parsing, the task's recipe, Lightning's
# loop, the checkpoint writer): what is measured is what a user gets, and the import and
# start-up time stays outside the ``--max-time`` budget. Periodic validation and checkpoints
# are switched off so the whole budget goes to optimisation steps; the recipe's final
# evaluation runs after the budget.

_QUIET = ("--checkpoint-every", "1000000", "--val-every", "1000000", "--logger", "none", "--no-progress",
          "--seed", "0", "--overwrite")


def _rnnkit(args: Sequence[str], threads: int, what: str) -> str:
    """Run ``python -m rnnkit.cli.main ARGS`` at ``threads`` threads; its stdout (RuntimeError on failure)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, "-m", "rnnkit.cli.main", *args], capture_output=True, text=True,
                          env=env, cwd=os.getcwd())
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout


def _saved(out: str) -> dict:
    """config.json of the checkpoint a training run wrote to ``out`` (metrics, global step, data)."""
    return json.loads((Path(out) / "config.json").read_text(encoding="utf-8"))


def matched_plan(target: int, input_size: int, layers: Dict[str, int], reference: str = "gru",
                 reference_hidden: int = 0, bidirectional: bool = False,
                 tol: float = 0.10) -> Dict[str, Dict[str, int]]:
    """``{encoder: {hidden, layers, encoder_params}}`` with every parameter count within ``tol``
    of ``target`` (the reference keeps ``reference_hidden``).

    Hidden sizes are multiples of 8 where that lands within ``tol``; with few input features a
    Transformer's or TCN's count jumps by more than 10% between multiples of 8, so finer steps
    (4, 2, 1) are tried before giving up.
    """
    plan: Dict[str, Dict[str, int]] = {}
    for name, L in layers.items():
        candidates = ([reference_hidden] if name == reference and reference_hidden else
                      [matched_hidden(name, target, input_size, num_layers=L, lo=step, step=step,
                                      bidirectional=bidirectional) for step in (8, 4, 2, 1)])
        for h in candidates:
            got = n_params(make(name, input_size, h, L, bidirectional))
            if abs(got - target) <= tol * target:
                plan[name] = {"hidden": h, "layers": L, "encoder_params": got}
                break
        else:
            raise ValueError(f"{name}: no hidden size puts {L} layer(s) within {tol:.0%} of {target:,} parameters")
    return plan

Metrics = Callable[[dict, dict], Dict[str, Any]]  # (saved config.json, scoring report) -> numbers


@dataclass(frozen=True)
class Quality:
    """One quality section: ``rnnkit train TASK FLAGS`` per encoder for the same minutes, at
    encoder parameters matched within 10% to the reference GRU's, then scored."""

    name: str  # the section (and JSON key)
    task: str  # rnnkit train TASK
    flags: Tuple[str, ...]  # data and training flags shared by every encoder
    input_size: Callable[[], int]  # the encoder's input size (what the recipe will build)
    reference_hidden: int  # the GRU every parameter count is matched to
    layers: Dict[str, int]  # layers per encoder (the reference GRU's are layers["gru"])
    metrics: Metrics  # per-encoder numbers
    headline: Tuple[str, str]  # (metrics key, label) for the log line
    bidirectional: bool = False
    score: Tuple[str, ...] = ()  # the scoring verb and its flags, run on the checkpoint with --json
    extras: Callable[[int, dict, dict], Dict[str, Any]] = field(default=lambda n, cfg, report: {})


def quality_plan(q: Quality) -> Tuple[int, int, Dict[str, Dict[str, int]]]:
    """(encoder input size, target encoder parameters, matched plan) of a section."""
    n_in = q.input_size()
    target = n_params(make("gru", n_in, q.reference_hidden, q.layers["gru"], q.bidirectional))
    return n_in, target, matched_plan(target, n_in, q.layers, reference_hidden=q.reference_hidden,
                                      bidirectional=q.bidirectional)


def quality(q: Quality, minutes: float, threads: int = 1, log: Optional[Callable[[str], None]] = None) -> dict:
    """Train every encoder of ``q``'s plan for ``minutes`` (one process each), score it; the
    section's JSON: minutes, target parameters, ``q.extras`` (from the last run) and results."""
    n_in, target, plan = quality_plan(q)
    results: Dict[str, Dict[str, Any]] = {}
    cfg: dict = {}
    report: dict = {}
    for name, p in plan.items():
        with tempfile.TemporaryDirectory() as tmp:
            _rnnkit(["train", q.task, *q.flags, "--out", tmp, "--encoder", name, "--hidden", str(p["hidden"]),
                     "--layers", str(p["layers"]), "--max-time", str(minutes), "--threads", str(threads), *_QUIET],
                    threads, f"{q.name} {name}")
            cfg = _saved(tmp)
            if q.score:
                out = _rnnkit([q.score[0], tmp, *q.score[1:], "--json", "--threads", str(threads)], threads,
                              f"{q.name} {name} {q.score[0]}")
                report = json.loads(out.strip().splitlines()[-1])
        results[name] = {**p, "steps": cfg.get("global_step"), **q.metrics(cfg, report)}
        if log:
            key, label = q.headline
            v = results[name][key]
            log(f"{q.name} {name:12s} H={p['hidden']:4d} L={p['layers']}: {results[name]['steps']} steps, "
                f"{label} {float('nan') if v is None else v:.4f}")
    return {"minutes": minutes, "target_encoder_params": target, **q.extras(n_in, cfg, report), "results": results}


# configs/forecast-seattle.yaml: seattle-weather, temp_max one day ahead from 28 days of the
# target, its covariates (precipitation, temp_min, wind, weather one-hot) and calendar
# features; a 1-layer GRU with hidden 64, warm-up 20 steps (the forecasting benchmark's setup)
FORECAST_DATA = {"data": "seattle-weather", "target": "temp_max", "covariates": "precipitation,temp_min,wind,weather",
                 "lookback": 28, "horizon": 1}


def _forecast_features() -> int:
    """Input features of the forecasting section, read off the data (target + covariates
    one-hot + calendar), so the parameter counts are those of the encoders the recipe builds."""
    from rnnkit.data import timeseries as ts

    spec = ts.resolve_spec(dict(FORECAST_DATA))
    return ts.fit(ts.read_table(spec), spec)["n_features"]


def _model_scores(cfg: dict, report: dict) -> Dict[str, Any]:
    m = report["models"]["model"]
    return {"test_mase": m["mase"], "test_mae": m["mae"], "test_rmse": m["rmse"]}


def _naive(n_in: int, cfg: dict, report: dict) -> Dict[str, Any]:
    naive = report["models"]["naive"]  # the same test origins for every encoder
    return {"data": dict(FORECAST_DATA), "input_features": n_in, "origins": report["origins"],
            "test_from": report["from"],
            "naive": {"test_mase": naive["mase"], "test_mae": naive["mae"], "test_rmse": naive["rmse"]}}


QUALITY: Dict[str, Quality] = {q.name: q for q in (
    # tinyshakespeare, same data and optimiser for every encoder; matched to a 2-layer GRU with
    # hidden 128; the TCN gets 6 blocks (receptive field 253 >= the 128-character window).
    # Scored by the recipe's final validation: nats/char.
    Quality("charlm", "charlm",
            ("--data", "tinyshakespeare", "--embedding-dim", "64", "--dropout", "0.0", "--seq-len", "128",
             "--batch-size", "32", "--lr", "3e-3", "--warmup-steps", "20", "--val-batches", "30"),
            input_size=lambda: 64, reference_hidden=128,
            layers={n: (6 if n == "tcn" else 2) for n in QUALITY_ENCODERS},
            metrics=lambda cfg, report: {"val_nats_per_char": cfg.get("metrics", {}).get("val_loss"),
                                         "val_bits_per_char": cfg.get("metrics", {}).get("val_bpc")},
            headline=("val_nats_per_char", "val nats/char")),
    # seattle-weather temp_max one day ahead, scored by ``rnnkit backtest`` on every origin of the
    # chronological test period: MASE (m = 1, scaled by the naive forecast's in-sample MAE, as in
    # benchmarks/forecasting.py) and MAE in °C, next to the naive forecast on the same origins.
    # The TCN gets 3 blocks: receptive field 1 + 4 (2^3 - 1) = 29 >= the 28-day window.
    Quality("forecast", "forecast",
            ("--data", FORECAST_DATA["data"], "--target", FORECAST_DATA["target"],
             "--covariates", FORECAST_DATA["covariates"], "--lookback", str(FORECAST_DATA["lookback"]),
             "--horizon", str(FORECAST_DATA["horizon"]), "--warmup-steps", "20"),
            input_size=_forecast_features, reference_hidden=64,
            layers={n: (3 if n == "tcn" else 1) for n in QUALITY_ENCODERS},
            metrics=_model_scores, headline=("test_mase", "test MASE"),
            score=("backtest", "--arima", "none"), extras=_naive),
    # SST-2 as the sentiment task builds it: bidirectional (two directions for the recurrent
    # encoders, a centred TCN with 6 blocks: +-126 tokens, the longest sentence has 56; an
    # unmasked Transformer), embedding 128, matched to a bidirectional 1-layer GRU with
    # hidden 128; task defaults otherwise (max pooling, batch 64, dropout 0.3). Scored on GLUE's
    # dev set (``rnnkit evaluate``): the recipe's validation split is 10% of train.tsv's
    # *phrases*, most of them pieces of training sentences (about 88% occur word for word
    # inside a training phrase), so validation accuracy rewards memorising. Nothing is chosen
    # on the dev set; validation accuracy is kept for reference.
    Quality("sst2", "sentiment", ("--data", "sst2", "--bidirectional", "--embedding-dim", "128"),
            input_size=lambda: 128, reference_hidden=128, bidirectional=True,
            layers={n: (6 if n == "tcn" else 1) for n in QUALITY_ENCODERS},
            metrics=lambda cfg, report: {"dev_accuracy": report["accuracy"], "dev_macro_f1": report["macro_f1"],
                                         "dev_roc_auc": report.get("roc_auc"),
                                         "val_accuracy": cfg.get("metrics", {}).get("val_accuracy")},
            headline=("dev_accuracy", "dev accuracy"), score=("evaluate",),
            extras=lambda n, cfg, report: {"embedding_dim": n,
                                           "val_phrases": cfg.get("data", {}).get("sizes", {}).get("val"),
                                           "dev_sentences": report["examples"]}),
)}

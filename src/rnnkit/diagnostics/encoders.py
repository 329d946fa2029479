"""Side-by-side measurements of every encoder under the one contract (``rnnkit bench encoders``).

All numbers of one run come from the same process on the same machine, interleaved round by
round where two encoders are compared, so ratios are meaningful even on a loaded machine:

* ``correctness``: float64 checks before any timing (every minGRU scan route == the step
  loop, values and gradients; step() == forward for every encoder), tolerance 1e-10;
* ``train``: training throughput (tokens/s, forward + backward of a fixed random linear
  loss) against T at batch B, input size = hidden, one layer, at equal hidden size and at
  parameter counts matched (within 10%) to the GRU's; at each T the encoders run
  interleaved round by round;
* ``generate``: batch-1 ``step()`` µs/token and state bytes at positions 1 … 8192 (the state
  is pre-filled by one forward of ``position - 1`` steps, then single steps are timed);
* ``adding``: the adding problem (Hochreiter & Schmidhuber 1997) trained for an equal CPU
  time per encoder at matched parameter counts, test MSE (predicting 1 scores 1/6);
* ``charlm``, ``forecast``, ``sst2``: quality at an equal training-time budget through the real
  pipeline, one ``rnnkit train TASK --max-time`` process per encoder at encoder parameters
  matched within 10%: validation nats/char on tinyshakespeare; test MASE (m = 1) and MAE of
  seattle-weather temp_max one day ahead (``rnnkit backtest``), next to the naive forecast;
  accuracy on SST-2's GLUE dev set (the validation phrases held out of train.tsv overlap the
  training phrases; nothing is chosen on the dev set here).

:func:`plot` draws the curves (tokens/s against T; µs/token and state bytes against
position) as PNGs next to the JSON.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..layers import build_encoder
from ..layers.mingru import METHODS, MinGRU

ENCODERS = ("rnn", "lstm", "gru", "mingru", "mingru-chunked", "mingru-log", "minlstm", "tcn", "transformer")
QUALITY_ENCODERS = ("rnn", "lstm", "gru", "mingru", "minlstm", "tcn", "transformer")
T_LIST = (128, 512, 2048, 4096, 8192)
POSITIONS = (1, 64, 512, 2048, 8192)


def make(name: str, input_size: int, hidden: int, num_layers: int = 1, bidirectional: bool = False) -> nn.Module:
    """``mingru-<method>`` selects a minGRU scan route; other names go to ``build_encoder``."""
    if name.startswith("mingru-"):
        method = name.split("-", 1)[1]
        if method not in METHODS:
            raise ValueError(f"unknown minGRU scan route {method!r}")
        return MinGRU(input_size, hidden, num_layers=num_layers, method=method, bidirectional=bidirectional)
    return build_encoder(name, input_size, hidden, num_layers=num_layers, bidirectional=bidirectional)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def matched_hidden(name: str, target: int, input_size: int, num_layers: int = 1,
                   lo: int = 8, hi: int = 4096, step: int = 8, bidirectional: bool = False) -> int:
    """Hidden size (a multiple of ``step``) whose parameter count is closest to ``target``."""
    def count(h: int) -> int:
        with torch.device("meta"):
            return n_params(make(name, input_size if input_size else h, h, num_layers, bidirectional))

    best, best_err = lo, math.inf
    a, b = lo // step, hi // step
    while a < b:  # parameter counts grow with h: bisect, then look at the neighbours
        m = (a + b) // 2
        if count(m * step) < target:
            a = m + 1
        else:
            b = m
    for k in (a - 1, a, a + 1):
        h = max(lo, k * step)
        err = abs(count(h) - target)
        if err < best_err:
            best, best_err = h, err
    return best


# ---------------------------------------------------------------------------------------------
# correctness first


def correctness(tol: float = 1e-10) -> Dict[str, float]:
    """Max |difference| of every equivalence the timings rely on (float64); raises if > tol."""
    B, T, C, H = 3, 17, 4, 6
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, C, dtype=torch.float64, generator=g)
    lengths = torch.tensor([T, 1, 9])
    out: Dict[str, float] = {}
    for kind in ("mingru", "minlstm"):
        torch.manual_seed(0)
        enc = build_encoder(kind, C, H, num_layers=2).double()
        ref = None
        for method in ("loop",) + tuple(m for m in METHODS if m != "loop"):
            enc.method = method
            enc.zero_grad(set_to_none=True)
            xx = x.clone().requires_grad_(True)
            y, h = enc(xx, None, lengths)
            w = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(1))
            ((y * w).sum() + h.sum()).backward()
            vals = [y.detach(), h.detach(), xx.grad] + [p.grad for p in enc.parameters()]
            if ref is None:
                ref = vals
            else:
                out[f"{kind}_{method}_vs_loop"] = max((a - b).abs().max().item() for a, b in zip(vals, ref))
    for kind in ("rnn", "lstm", "gru", "mingru", "minlstm", "tcn", "transformer"):
        torch.manual_seed(0)
        enc = build_encoder(kind, C, H, num_layers=2).double().eval()
        with torch.no_grad():
            y, _ = enc(x)
            state, ys = None, []
            for t in range(T):
                y_t, state = enc.step(x[:, t], state)
                ys.append(y_t)
        out[f"{kind}_step_vs_forward"] = (torch.stack(ys, 1) - y).abs().max().item()
    bad = {k: v for k, v in out.items() if not v <= tol}
    if bad:
        raise AssertionError(f"equivalence checks failed (tol {tol}): {bad}")
    return out


# ---------------------------------------------------------------------------------------------
# training throughput


class _Runner:
    """One encoder at one shape: forward + backward of sum(y * w) with a fixed random w."""

    def __init__(self, name: str, hidden: int, T: int, B: int, input_size: int, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.enc = make(name, input_size, hidden)
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(B, T, input_size, generator=g)
        self.w = torch.randn(B, T, self.enc.output_size, generator=g)
        self.tokens = B * T

    def __call__(self) -> float:
        t0 = time.perf_counter()
        self.enc.zero_grad(set_to_none=True)
        y, _ = self.enc(self.x)
        y.backward(self.w)
        return time.perf_counter() - t0


def interleaved(runners: Dict[str, _Runner], reps: int, budget_s: float) -> Dict[str, float]:
    """Median tokens/s of each runner; one warm-up each, then rounds in turn until ``reps``
    rounds or ``budget_s`` seconds (at least one timed round)."""
    times: Dict[str, List[float]] = {k: [] for k in runners}
    for r in runners.values():
        r()  # warm-up: allocations, oneDNN primitives
    start = time.perf_counter()
    for i in range(reps):
        for k, r in runners.items():
            times[k].append(r())
        if time.perf_counter() - start > budget_s:
            break
    return {k: runners[k].tokens / statistics.median(v) for k, v in times.items()}


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
        runners = {n: _Runner(n, hiddens[n], T, B, input_size) for n in active}
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
    runners = {"gru": _Runner("gru", H, T, B, H)}
    for m in methods:
        runners[f"mingru-{m}"] = _Runner(f"mingru-{m}", H, T, B, H)
    tps = interleaved(runners, reps, budget_s)
    out = {f"{k}_tokens_per_s": v for k, v in tps.items()}
    for m in methods:
        out[f"mingru_{m}_vs_gru"] = tps[f"mingru-{m}"] / tps["gru"]
    return out


# ---------------------------------------------------------------------------------------------
# generation


def state_bytes(state) -> int:
    if state is None:
        return 0
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    return sum(state_bytes(s) for s in state)


@torch.inference_mode()
def generation(name: str, hidden: int, positions: Sequence[int], input_size: int, num_layers: int = 2,
               steps: int = 30, seed: int = 0) -> Dict[str, Dict[str, float]]:
    """µs/token of batch-1 ``step()`` and the state's bytes, at each position."""
    torch.manual_seed(seed)
    enc = make(name, input_size, hidden, num_layers).eval()
    g = torch.Generator().manual_seed(seed)
    out: Dict[str, Dict[str, float]] = {}
    for P in positions:
        x = torch.randn(1, P + steps + 2, input_size, generator=g)
        state = enc(x[:, :P - 1])[1] if P > 1 else None  # pre-fill the first P-1 positions
        _, state = enc.step(x[:, P - 1], state)  # warm-up step (position P)
        times = []
        for t in range(steps):
            t0 = time.perf_counter()
            _, state = enc.step(x[:, P + t], state)
            times.append(time.perf_counter() - t0)
        out[str(P)] = {"us_per_token": 1e6 * statistics.median(times), "state_bytes": state_bytes(state)}
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
    from ..data.memory_tasks import ADDING_BASELINE, adding_problem

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
    for key, quality, minutes in (("charlm", charlm_quality, charlm_minutes),
                                  ("forecast", forecast_quality, forecast_minutes),
                                  ("sst2", sst2_quality, sst2_minutes)):
        if not quick and key in sections:
            t0 = time.perf_counter()
            payload[key] = quality(minutes, threads, log=log)
            payload[key]["wall_seconds"] = time.perf_counter() - t0  # start-ups and evaluations included
    payload["seconds"] = time.perf_counter() - t_start
    return payload


# ---------------------------------------------------------------------------------------------
# quality at equal CPU time through the real pipeline: char-LM, forecasting, SST-2
#
# Each run is a separate ``rnnkit`` process (the CLI's parsing, the task's recipe, Lightning's
# loop, the checkpoint writer): what is measured is what a user gets, the import and start-up
# time stays outside the ``--max-time`` budget, and this module never imports training/ or
# cli/ (the layering rule). Periodic validation and checkpoints are switched off so the whole
# budget goes to optimisation steps; the recipe's final evaluation runs after the budget.

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


def charlm_quality(minutes: float, threads: int = 1, log: Optional[Callable[[str], None]] = None) -> dict:
    """Each encoder trained for ``minutes`` of training time on tinyshakespeare, same data,
    same optimiser; encoder parameters matched to a 2-layer GRU with hidden 128
    (``rnnkit train charlm --max-time``, one process each)."""
    E = 64
    target = n_params(make("gru", E, 128, num_layers=2))
    layers = {n: (6 if n == "tcn" else 2) for n in QUALITY_ENCODERS}  # TCN: receptive field 253 >= 128
    results = {}
    for name in QUALITY_ENCODERS:
        L = layers[name]
        hidden = 128 if name == "gru" else matched_hidden(name, target, E, num_layers=L)
        with tempfile.TemporaryDirectory() as tmp:
            _rnnkit(["train", "charlm", "--data", "tinyshakespeare", "--out", tmp, "--encoder", name,
                     "--hidden", str(hidden), "--layers", str(L), "--embedding-dim", str(E), "--dropout", "0.0",
                     "--seq-len", "128", "--batch-size", "32", "--lr", "3e-3", "--warmup-steps", "20",
                     "--max-time", str(minutes), "--val-batches", "30", "--threads", str(threads), *_QUIET],
                    threads, f"charlm {name}")
            cfg = _saved(tmp)
            ev = json.loads(_rnnkit(["evaluate", tmp, "--json", "--threads", str(threads)], threads,
                                    f"sst2 {name} evaluate").strip().splitlines()[-1])
        m = cfg.get("metrics", {})
        results[name] = {"hidden": hidden, "layers": L, "encoder_params": n_params(make(name, E, hidden, L)),
                         "steps": cfg.get("global_step"), "val_nats_per_char": m.get("val_loss"),
                         "val_bits_per_char": m.get("val_bpc")}
        if log:
            log(f"charlm {name:12s} H={hidden:4d} L={L}: {results[name]['steps']} steps, "
                f"val {m.get('val_loss', float('nan')):.4f} nats/char")
    return {"minutes": minutes, "target_encoder_params": target, "results": results}


# configs/forecast-seattle.yaml: seattle-weather, temp_max one day ahead from 28 days of the
# target, its covariates (precipitation, temp_min, wind, weather one-hot) and calendar
# features; a 1-layer GRU with hidden 64, warm-up 20 steps (the forecasting benchmark's setup)
FORECAST_DATA = {"data": "seattle-weather", "target": "temp_max", "covariates": "precipitation,temp_min,wind,weather",
                 "lookback": 28, "horizon": 1}
FORECAST_REFERENCE_HIDDEN = 64
FORECAST_TCN_BLOCKS = 3  # receptive field 1 + 4 (2^3 - 1) = 29 >= the 28-day window


def forecast_plan() -> Tuple[int, int, Dict[str, Dict[str, int]]]:
    """(input features, target encoder parameters, matched plan) of the forecasting section.

    The input size is read off the data itself (target + covariates one-hot + calendar), so
    the parameter counts are those of the encoders the recipe will build."""
    from ..data import timeseries as ts

    n_features = len(ts.build(ts.resolve_spec(dict(FORECAST_DATA))).feature_names)
    target = n_params(make("gru", n_features, FORECAST_REFERENCE_HIDDEN))
    layers = {n: (FORECAST_TCN_BLOCKS if n == "tcn" else 1) for n in QUALITY_ENCODERS}
    return n_features, target, matched_plan(target, n_features, layers, reference_hidden=FORECAST_REFERENCE_HIDDEN)


def forecast_quality(minutes: float, threads: int = 1, log: Optional[Callable[[str], None]] = None) -> dict:
    """seattle-weather temp_max one day ahead: each encoder trained for ``minutes`` through
    ``rnnkit train forecast --max-time`` at matched encoder parameters, then scored by
    ``rnnkit backtest`` on every origin of the chronological test period: MASE (m = 1, scaled
    by the naive forecast's in-sample MAE, as in benchmarks/forecasting.py) and MAE in °C.

    The naive last-value forecast on the same origins is the reference row (MASE 1 would be
    "no better than tomorrow = today" on the training part's scale)."""
    n_features, target, plan = forecast_plan()
    data_flags = ["--data", FORECAST_DATA["data"], "--target", FORECAST_DATA["target"],
                  "--covariates", FORECAST_DATA["covariates"], "--lookback", str(FORECAST_DATA["lookback"]),
                  "--horizon", str(FORECAST_DATA["horizon"])]
    results, report = {}, {}
    for name, p in plan.items():
        with tempfile.TemporaryDirectory() as tmp:
            _rnnkit(["train", "forecast", *data_flags, "--out", tmp, "--encoder", name, "--hidden", str(p["hidden"]),
                     "--layers", str(p["layers"]), "--warmup-steps", "20", "--max-time", str(minutes),
                     "--threads", str(threads), *_QUIET], threads, f"forecast {name}")
            steps = _saved(tmp).get("global_step")
            out = _rnnkit(["backtest", tmp, "--json", "--arima", "none", "--threads", str(threads)], threads,
                          f"backtest {name}")
        report = json.loads(out.strip().splitlines()[-1])
        model = report["models"]["model"]
        results[name] = {**p, "steps": steps, "test_mase": model["mase"], "test_mae": model["mae"],
                         "test_rmse": model["rmse"]}
        if log:
            log(f"forecast {name:12s} H={p['hidden']:4d} L={p['layers']}: {steps} steps, "
                f"test MASE {model['mase']:.4f}, MAE {model['mae']:.3f}")
    naive = report["models"]["naive"]  # the same test origins for every encoder
    return {"minutes": minutes, "data": dict(FORECAST_DATA), "input_features": n_features,
            "target_encoder_params": target, "origins": report["origins"], "test_from": report["from"],
            "naive": {"test_mase": naive["mase"], "test_mae": naive["mae"], "test_rmse": naive["rmse"]},
            "results": results}


SST2_EMBEDDING = 128  # the sentiment task's defaults: embedding 128, hidden 128 per direction
SST2_REFERENCE_HIDDEN = 128
SST2_TCN_BLOCKS = 6  # centred receptive field 253: +-126 tokens, the longest sentence has 56


def sst2_plan() -> Tuple[int, Dict[str, Dict[str, int]]]:
    """(target encoder parameters, matched plan) of the SST-2 section: every encoder built
    ``bidirectional`` as the sentiment task builds it (two directions for the recurrent
    ones, a centred TCN and an unmasked Transformer, one output per step), matched to a
    bidirectional 1-layer GRU with hidden 128."""
    target = n_params(make("gru", SST2_EMBEDDING, SST2_REFERENCE_HIDDEN, bidirectional=True))
    layers = {n: (SST2_TCN_BLOCKS if n == "tcn" else 1) for n in QUALITY_ENCODERS}
    return target, matched_plan(target, SST2_EMBEDDING, layers, reference_hidden=SST2_REFERENCE_HIDDEN,
                                bidirectional=True)


def sst2_quality(minutes: float, threads: int = 1, log: Optional[Callable[[str], None]] = None) -> dict:
    """SST-2: each encoder trained for ``minutes`` through ``rnnkit train sentiment --data sst2
    --bidirectional --max-time`` (task defaults otherwise: max pooling, batch 64, dropout 0.3)
    at matched encoder parameters; accuracy on GLUE's dev set (``rnnkit evaluate --json``).

    The dev set is scored because the recipe's validation split is 10% of train.tsv's
    *phrases*, most of them pieces of training sentences (about 88% occur word for word inside
    a training phrase), so validation accuracy rewards memorising. Nothing is chosen on the
    dev set here: every encoder runs with the task defaults. Validation accuracy is kept in
    the JSON for reference."""
    target, plan = sst2_plan()
    results, val_size = {}, None
    for name, p in plan.items():
        with tempfile.TemporaryDirectory() as tmp:
            _rnnkit(["train", "sentiment", "--data", "sst2", "--out", tmp, "--encoder", name,
                     "--hidden", str(p["hidden"]), "--layers", str(p["layers"]), "--bidirectional",
                     "--embedding-dim", str(SST2_EMBEDDING), "--max-time", str(minutes), "--threads", str(threads),
                     *_QUIET], threads, f"sst2 {name}")
            cfg = _saved(tmp)
            ev = json.loads(_rnnkit(["evaluate", tmp, "--json", "--threads", str(threads)], threads,
                                    f"sst2 {name} evaluate").strip().splitlines()[-1])
        m = cfg.get("metrics", {})
        val_size = cfg.get("data", {}).get("sizes", {}).get("val", val_size)
        results[name] = {**p, "steps": cfg.get("global_step"), "dev_accuracy": ev["accuracy"],
                         "dev_macro_f1": ev["macro_f1"], "dev_roc_auc": ev.get("roc_auc"),
                         "val_accuracy": m.get("val_accuracy")}
        if log:
            log(f"sst2 {name:12s} H={p['hidden']:4d} L={p['layers']}: {results[name]['steps']} steps, "
                f"dev accuracy {ev['accuracy']:.4f}")
    return {"minutes": minutes, "target_encoder_params": target, "embedding_dim": SST2_EMBEDDING,
            "val_phrases": val_size, "dev_sentences": ev["examples"], "results": results}


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


def summary(payload: Dict[str, object]) -> Dict[str, object]:
    """The one-line JSON: the headline ratio first."""
    out: Dict[str, object] = {"benchmark": "encoders"}
    h = payload.get("headline")
    if h:
        out["mingru_vs_gru_train"] = round(h["mingru_fused_vs_gru"], 3)
        if "mingru_chunked_vs_gru" in h:
            out["mingru_chunked_vs_gru_train"] = round(h["mingru_chunked_vs_gru"], 3)
        out["gru_tokens_per_s"] = round(h["gru_tokens_per_s"])
        out["mingru_tokens_per_s"] = round(h["mingru-fused_tokens_per_s"])
    gen = payload.get("generate")
    if gen:
        pos = sorted(gen["gru"], key=int)
        out["gen_us_per_token_gru"] = round(gen["gru"][pos[-1]]["us_per_token"], 1)
        out["gen_us_per_token_mingru"] = round(gen["mingru"][pos[-1]]["us_per_token"], 1)
        out["mingru_vs_gru_generate"] = round(gen["gru"][pos[-1]]["us_per_token"]
                                              / gen["mingru"][pos[-1]]["us_per_token"], 3)
        out["gen_position"] = int(pos[-1])
    if "adding" in payload:
        out["adding_test_mse"] = {n: round(r["test_mse"], 4) for n, r in payload["adding"]["results"].items()}
    if "charlm" in payload:
        out["charlm_val_nats"] = {n: round(r["val_nats_per_char"], 4) for n, r in payload["charlm"]["results"].items()}
    if "forecast" in payload:
        out["forecast_test_mase"] = {n: round(r["test_mase"], 4) for n, r in payload["forecast"]["results"].items()}
        out["forecast_naive_mase"] = round(payload["forecast"]["naive"]["test_mase"], 4)
    if "sst2" in payload:
        out["sst2_dev_accuracy"] = {n: round(r["dev_accuracy"], 4) for n, r in payload["sst2"]["results"].items()}
    out["correct"] = True
    out["seconds"] = round(payload["seconds"], 1)
    return out


def _md_table(lines: List[str], title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Append a titled Markdown table (first column left-aligned, the others right-aligned)."""
    lines.append(f"\n{title}:\n")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| --- | " + " | ".join("---:" for _ in header[1:]) + " |")
    lines.extend("| " + " | ".join(str(v) for v in row) + " |" for row in rows)


def table(payload: Dict[str, object]) -> str:
    """Markdown tables of the run (for docs/benchmarks.md)."""
    lines = []
    for key, title in (("train_equal_hidden", "equal hidden size"), ("train_matched_params", "matched parameters")):
        if key not in payload:
            continue
        res = payload[key]
        Ts = list(next(iter(res.values())).keys())
        hid = payload["params"]["matched_hidden"] if key == "train_matched_params" else None
        pk = "matched" if hid else "equal"
        lines.append(f"\nTraining tokens/s (forward + backward), {title}, B={payload['settings']['B']}:\n")
        lines.append("| encoder | hidden | params | " + " | ".join(f"T={t}" for t in Ts) + " |")
        lines.append("| --- | ---: | ---: | " + " | ".join("---:" for _ in Ts) + " |")
        for n, row in res.items():
            h = hid[n] if hid else payload["settings"]["H"]
            cells = ["skipped" if v is None else f"{v:,.0f}" for v in row.values()]
            lines.append(f"| {n} | {h} | {payload['params'][pk][n]:,} | " + " | ".join(cells) + " |")
    gen = payload.get("generate", {})
    if gen:
        pos = list(next(iter(gen.values())).keys())
        lines.append("\nBatch-1 generation, µs/token (state KiB), 2 layers:\n")
        lines.append("| encoder | " + " | ".join(f"pos {p}" for p in pos) + " |")
        lines.append("| --- | " + " | ".join("---:" for _ in pos) + " |")
        for n, d in gen.items():
            lines.append(f"| {n} | " + " | ".join(f"{d[p]['us_per_token']:.0f} ({d[p]['state_bytes'] / 1024:.0f})"
                                                 for p in pos) + " |")
    if "adding" in payload:
        a = payload["adding"]
        lines.append(f"\nAdding problem, T={a['T']}, {a['seconds']:.0f} s of training each, matched parameters "
                     f"(predicting 1 scores {1 / 6:.4f}):\n")
        lines.append("| encoder | hidden | params | steps | test MSE |")
        lines.append("| --- | ---: | ---: | ---: | ---: |")
        for n, r in a["results"].items():
            lines.append(f"| {n} | {r['hidden']} | {r['params']:,} | {r['steps']} | {r['test_mse']:.4f} |")
    if "charlm" in payload:
        c = payload["charlm"]
        _md_table(lines, f"Char-LM on tinyshakespeare, {c['minutes']:g} min of training each, encoder parameters "
                  f"matched to {c['target_encoder_params']:,}",
                  ["encoder", "hidden", "layers", "encoder params", "steps", "val nats/char"],
                  [[n, r["hidden"], r["layers"], f"{r['encoder_params']:,}", r["steps"], f"{r['val_nats_per_char']:.4f}"]
                   for n, r in c["results"].items()])
    if "forecast" in payload:
        f = payload["forecast"]
        rows = [[n, r["hidden"], r["layers"], f"{r['encoder_params']:,}", r["steps"], f"{r['test_mase']:.4f}",
                 f"{r['test_mae']:.3f}"] for n, r in f["results"].items()]
        rows.append(["naive (tomorrow = today)", "–", "–", "–", "–", f"{f['naive']['test_mase']:.4f}",
                     f"{f['naive']['test_mae']:.3f}"])
        _md_table(lines, f"seattle-weather temp_max one day ahead, {f['minutes']:g} min of training each, encoder "
                  f"parameters matched to {f['target_encoder_params']:,}; {f['origins']} test origins from "
                  f"{f['test_from']}",
                  ["encoder", "hidden", "layers", "encoder params", "steps", "test MASE", "test MAE"], rows)
    if "sst2" in payload:
        c = payload["sst2"]
        _md_table(lines, f"SST-2, {c['minutes']:g} min of training each, bidirectional, encoder parameters matched to "
                  f"{c['target_encoder_params']:,}; accuracy on the {c['dev_sentences']:,} GLUE dev sentences",
                  ["encoder", "hidden", "layers", "encoder params", "steps", "dev accuracy", "macro-F1"],
                  [[n, r["hidden"], r["layers"], f"{r['encoder_params']:,}", r["steps"], f"{r['dev_accuracy']:.4f}",
                    f"{r['dev_macro_f1']:.4f}"] for n, r in c["results"].items()])
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# plots


def _save(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` through :func:`rnnkit.fileio.savefig` (no half-written PNG;
    only a regular file is replaced)."""
    from ..fileio import savefig

    savefig(fig, path, dpi=110)


def plot(payload: Dict[str, object], out_dir, stem: str = "encoders") -> List[str]:
    """PNGs of the run's curves in ``out_dir``, each only when the run measured it:

    * ``STEM-throughput.png``: training tokens/s against T, log-log, one line per encoder;
      panels: equal hidden size, matched parameters (skipped cells are left out);
    * ``STEM-generation.png``: batch-1 µs/token and state bytes against position, log-log.

    Returns the paths written. matplotlib runs headless (Agg) and is imported here only.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: List[str] = []
    panels = [(k, t) for k, t in (("train_equal_hidden", "equal hidden size"),
                                  ("train_matched_params", "matched parameters")) if k in payload]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.4), squeeze=False)
        for ax, (key, title) in zip(axes[0], panels):
            hidden = (payload["params"]["matched_hidden"] if key == "train_matched_params"
                      else {n: payload["settings"]["H"] for n in payload[key]})
            for n, row in payload[key].items():
                pts = [(int(t), v) for t, v in row.items() if v is not None]
                if pts:
                    ax.plot(*zip(*pts), marker="o", ms=3, label=f"{n} (H={hidden[n]})")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("sequence length T")
            ax.set_ylabel("training tokens/s (forward + backward)")
            ax.set_title(f"{title}, B={payload['settings']['B']}, one layer", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))  # below: lines cross
        path = out_dir / f"{stem}-throughput.png"
        _save(fig, path)
        plt.close(fig)
        paths.append(str(path))
    gen = payload.get("generate")
    if gen:
        fig, (a_us, a_b) = plt.subplots(1, 2, figsize=(12.4, 4.4))
        for n, d in gen.items():
            pos = sorted(d, key=int)
            a_us.plot([int(p) for p in pos], [d[p]["us_per_token"] for p in pos], marker="o", ms=3, label=n)
            a_b.plot([int(p) for p in pos], [d[p]["state_bytes"] for p in pos], marker="o", ms=3, label=n)
        for ax, ylabel in ((a_us, "µs/token (batch-1 step)"), (a_b, "state bytes")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("position")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        a_us.set_title(f"generation time per token, H={payload['settings']['H']}, 2 layers", fontsize=10)
        a_b.set_title("state carried to the next token", fontsize=10)
        path = out_dir / f"{stem}-generation.png"
        _save(fig, path)
        plt.close(fig)
        paths.append(str(path))
    return paths

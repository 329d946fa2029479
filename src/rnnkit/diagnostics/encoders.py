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
  time per encoder at matched parameter counts, test MSE (predicting 1 scores 1/6).

Character-LM quality at equal CPU time goes through the real training pipeline in
``benchmarks/encoders.py`` (``rnnkit train charlm --max-time``).
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

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


def make(name: str, input_size: int, hidden: int, num_layers: int = 1) -> nn.Module:
    """``mingru-<method>`` selects a minGRU scan route; other names go to ``build_encoder``."""
    if name.startswith("mingru-"):
        method = name.split("-", 1)[1]
        if method not in METHODS:
            raise ValueError(f"unknown minGRU scan route {method!r}")
        return MinGRU(input_size, hidden, num_layers=num_layers, method=method)
    return build_encoder(name, input_size, hidden, num_layers=num_layers)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def matched_hidden(name: str, target: int, input_size: int, num_layers: int = 1,
                   lo: int = 8, hi: int = 4096, step: int = 8) -> int:
    """Hidden size (a multiple of ``step``) whose parameter count is closest to ``target``."""
    def count(h: int) -> int:
        with torch.device("meta"):
            return n_params(make(name, input_size if input_size else h, h, num_layers))

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


SECTIONS = ("headline", "generate", "train", "adding")


def run(quick: bool = False, threads: int = 1, B: int = 16, H: int = 256,
        T_list: Sequence[int] = T_LIST, positions: Sequence[int] = POSITIONS,
        adding_seconds: float = 20.0, adding_T: int = 100, cell_budget_s: float = 20.0,
        headline_T: int = 4096, sections: Sequence[str] = SECTIONS,
        log: Optional[Callable[[str], None]] = None) -> Dict[str, object]:
    """The benchmark minus char-LM quality; ``quick`` keeps it under a minute (headline and
    generation only). Correctness always runs first; ``sections`` picks the rest."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    torch.set_num_threads(threads)
    t_start = time.perf_counter()
    payload: Dict[str, object] = {"settings": {"quick": quick, "threads": threads, "B": B, "H": H,
                                               "headline_T": headline_T, "cell_budget_s": cell_budget_s,
                                               "adding_seconds": adding_seconds, "sections": list(sections)}}
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
    payload["seconds"] = time.perf_counter() - t_start
    return payload


def charlm_quality(minutes: float, threads: int = 1, log: Optional[Callable[[str], None]] = None) -> dict:
    """Each encoder trained for ``minutes`` of training time on tinyshakespeare, same data,
    same optimiser; encoder parameters matched to a 2-layer GRU with hidden 128.

    Each run is a separate ``rnnkit train charlm --max-time`` process (the real pipeline; the
    import and start-up time is outside the budget), so this module never imports training.
    """
    import json
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    E = 64
    target = n_params(make("gru", E, 128, num_layers=2))
    layers = {n: (6 if n == "tcn" else 2) for n in QUALITY_ENCODERS}  # TCN: receptive field 253 >= 128
    results = {}
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    for name in QUALITY_ENCODERS:
        L = layers[name]
        hidden = 128 if name == "gru" else matched_hidden(name, target, E, num_layers=L)
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "rnnkit.cli.main", "train", "charlm", "--data", "tinyshakespeare",
                   "--out", tmp, "--encoder", name, "--hidden", str(hidden), "--layers", str(L),
                   "--embedding-dim", str(E), "--dropout", "0.0", "--seq-len", "128", "--batch-size", "32",
                   "--lr", "3e-3", "--warmup-steps", "20", "--max-time", str(minutes), "--val-every", "1000000",
                   "--val-batches", "30", "--checkpoint-every", "1000000", "--logger", "none", "--no-progress",
                   "--threads", str(threads), "--seed", "0", "--overwrite"]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=os.getcwd())
            if proc.returncode != 0:
                raise RuntimeError(f"charlm {name} failed:\n{proc.stderr[-2000:]}")
            cfg = json.loads((Path(tmp) / "config.json").read_text())
        m = cfg.get("metrics", {})
        results[name] = {"hidden": hidden, "layers": L, "encoder_params": n_params(make(name, E, hidden, L)),
                         "steps": cfg.get("global_step"), "val_nats_per_char": m.get("val_loss"),
                         "val_bits_per_char": m.get("val_bpc")}
        if log:
            log(f"charlm {name:12s} H={hidden:4d} L={L}: {results[name]['steps']} steps, "
                f"val {m.get('val_loss', float('nan')):.4f} nats/char")
    return {"minutes": minutes, "target_encoder_params": target, "results": results}


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
    out["correct"] = True
    out["seconds"] = round(payload["seconds"], 1)
    return out


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
        lines.append(f"\nChar-LM on tinyshakespeare, {c['minutes']:g} min of training each, encoder parameters "
                     f"matched to {c['target_encoder_params']:,}:\n")
        lines.append("| encoder | hidden | layers | encoder params | steps | val nats/char |")
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
        for n, r in c["results"].items():
            lines.append(f"| {n} | {r['hidden']} | {r['layers']} | {r['encoder_params']:,} | {r['steps']} | "
                         f"{r['val_nats_per_char']:.4f} |")
    return "\n".join(lines)

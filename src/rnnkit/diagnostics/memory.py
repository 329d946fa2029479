"""Long-range memory benchmark: RNN vs LSTM vs GRU at matched parameter counts and budgets.

Tasks (data in :mod:`rnnkit.data.memory_tasks`):

=============  =====================================  ========  ==========================
key            input -> output                        metric    solved when (validation)
=============  =====================================  ========  ==========================
adding_T{T}    (u_t, marker_t) -> u_a + u_b at T      MSE       MSE < 0.01 (baseline 0.167)
copy_T{T}      one-hot symbols -> symbols at the end   CE/step   CE < 10% of memoryless
digits         8x8 digit pixel by pixel -> class      accuracy  accuracy >= 0.90
pdigits        the same, pixels permuted              accuracy  accuracy >= 0.90
=============  =====================================  ========  ==========================

Every cell gets the same number of steps, batch size, optimiser (Adam, constant learning
rate, global-norm clipping) and a hidden size chosen so that its parameter count (encoder +
head) is the one of the reference LSTM to within 10% (:func:`matched_hidden`). The
validation metric is recorded every ``eval_every`` steps (the learning curve); the final
metric is measured on a separate test set (fresh synthetic sequences; the digits' test
split), never used for any choice. Throughput is training tokens (batch x steps per
sequence) per second of training time, evaluation excluded.

One torch thread is used unless the caller says otherwise (``threads``).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import memory_tasks as mt
from ..layers import build_encoder

CELLS = ("rnn", "lstm", "gru")  # the default table; any name in rnnkit.layers.ENCODERS may join


# ---------------------------------------------------------------------------------------
# tasks


@dataclass
class Task:
    """A memory task: sampling, loss, metric and the thresholds that define "solved"."""

    key: str
    family: str  # adding, copy, digits, pdigits
    T: int
    input_size: int
    output_size: int
    per_step: bool  # head on every step (copy) or on the last step only
    metric: str  # mse, ce, acc
    baseline: float  # trivial predictor's metric
    solve: float  # threshold on the validation metric
    higher_better: bool
    sample: Callable[[np.random.Generator, int], Tuple[Tensor, Tensor]]
    val: Tuple[Tensor, Tensor]
    test: Tuple[Tensor, Tensor]

    def solved(self, value: float) -> bool:
        return value >= self.solve if self.higher_better else value < self.solve


def _as_input(family: str, x: np.ndarray) -> Tensor:
    t = torch.from_numpy(x)
    return F.one_hot(t, mt.COPY_VOCAB).float() if family == "copy" else t  # (B, T, C)


def make_task(family: str, T: Optional[int] = None, seed: int = 0, n_eval: int = 1000) -> Task:
    """Build a task; synthetic validation/test sets are drawn from seeds of their own."""
    val_rng, test_rng = np.random.default_rng(10_000 + seed), np.random.default_rng(20_000 + seed)
    if family == "adding":
        def sample(rng, n):
            x, y = mt.adding_problem(n, T, rng)
            return torch.from_numpy(x), torch.from_numpy(y)
        return Task(f"adding_T{T}", family, T, 2, 1, False, "mse", mt.ADDING_BASELINE, 0.01, False,
                    sample, sample(val_rng, n_eval), sample(test_rng, n_eval))
    if family == "copy":
        def sample(rng, n):
            x, y = mt.copy_memory(n, T, rng)
            return _as_input("copy", x), torch.from_numpy(y)
        base = mt.copy_baseline(T)
        return Task(f"copy_T{T}", family, T + 20, mt.COPY_VOCAB, mt.COPY_VOCAB, True, "ce", base,
                    0.1 * base, False, sample, sample(val_rng, n_eval), sample(test_rng, n_eval))
    if family in ("digits", "pdigits"):
        d = mt.sequential_digits(permuted=family == "pdigits", seed=seed)
        xtr, ytr = torch.from_numpy(d.x_train), torch.from_numpy(d.y_train)

        def sample(rng, n):
            idx = torch.from_numpy(rng.integers(0, len(ytr), n))
            return xtr[idx], ytr[idx]
        base = float(np.bincount(d.y_train).max() / len(d.y_train))  # majority class
        return Task(family, family, 64, 1, 10, False, "acc", base, 0.9, True, sample,
                    (torch.from_numpy(d.x_val), torch.from_numpy(d.y_val)),
                    (torch.from_numpy(d.x_test), torch.from_numpy(d.y_test)))
    raise ValueError(f"unknown memory task {family!r} (adding, copy, digits, pdigits)")


# ---------------------------------------------------------------------------------------
# model


class MemoryModel(nn.Module):
    """One recurrent layer and a linear head (on the last step, or on every step)."""

    def __init__(self, cell: str, input_size: int, hidden: int, output_size: int, per_step: bool) -> None:
        super().__init__()
        self.encoder = build_encoder(cell, input_size, hidden)
        self.head = nn.Linear(self.encoder.output_size, output_size)
        self.per_step = per_step

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.encoder(x)  # (B, T, H)
        return self.head(y if self.per_step else y[:, -1])  # (B, T, O) or (B, O)


def count_params(cell: str, input_size: int, hidden: int, output_size: int) -> int:
    """Parameters of :class:`MemoryModel` for any registered encoder (built and counted).

    For the recurrent cells this is G (H C + H^2 + 2 H) + H O + O, with G = 1, 4, 3 gate
    blocks for rnn, lstm, gru (PyTorch keeps two bias vectors per layer).
    """
    model = MemoryModel(cell, input_size, hidden, output_size, per_step=False)
    return sum(p.numel() for p in model.parameters())


def matched_hidden(cell: str, target: int, input_size: int, output_size: int, max_hidden: int = 4096) -> int:
    """The hidden size whose parameter count is closest to ``target`` (bisection; counts grow with H)."""
    hi = 1
    while hi < max_hidden and count_params(cell, input_size, hi, output_size) < target:
        hi *= 2  # never build a model much larger than the target
    lo, hi = max(1, hi // 2), min(hi, max_hidden)
    while lo < hi:
        mid = (lo + hi) // 2
        if count_params(cell, input_size, mid, output_size) < target:
            lo = mid + 1
        else:
            hi = mid
    cands = [h for h in (lo - 1, lo) if h >= 1]
    return min(cands, key=lambda h: abs(count_params(cell, input_size, h, output_size) - target))


# ---------------------------------------------------------------------------------------
# training


def _loss(task: Task, out: Tensor, y: Tensor) -> Tensor:
    if task.metric == "mse":
        return F.mse_loss(out.squeeze(-1), y)
    if task.per_step:
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    return F.cross_entropy(out, y)


@torch.no_grad()
def evaluate(model: MemoryModel, task: Task, data: Tuple[Tensor, Tensor], batch: int = 500) -> float:
    """The task's metric on ``data`` (MSE, cross-entropy per step, or accuracy)."""
    model.eval()
    x, y = data
    total, n = 0.0, 0
    for i in range(0, len(y), batch):
        out = model(x[i:i + batch])
        yb = y[i:i + batch]
        if task.metric == "acc":
            total += float((out.argmax(-1) == yb).sum())
            n += len(yb)
        else:
            k = yb.numel()
            total += float(_loss(task, out, yb)) * k
            n += k
    model.train()
    return total / n


@dataclass
class RunResult:
    task: str
    cell: str
    hidden: int
    params: int
    steps: int
    final: float  # test metric at the end
    final_val: float
    baseline: float
    metric: str
    steps_to_solve: Optional[int]
    tokens_per_s: float
    train_seconds: float
    curve: List[Tuple[int, float]] = field(default_factory=list)  # (step, validation metric)
    train_loss: List[Tuple[int, float]] = field(default_factory=list)
    diverged: bool = False


def train_cell(task: Task, cell: str, hidden: int, steps: int, batch_size: int = 64, lr: float = 2e-3,
               clip_norm: Optional[float] = 1.0, eval_every: int = 50, seed: int = 0,
               log: Optional[Callable[[str], None]] = None) -> RunResult:
    """Train one cell on one task with Adam; returns the curve and the final test metric."""
    torch.manual_seed(seed)
    model = MemoryModel(cell, task.input_size, hidden, task.output_size, task.per_step)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    curve: List[Tuple[int, float]] = []
    losses: List[Tuple[int, float]] = []
    solved_at: Optional[int] = None
    train_time, running, diverged = 0.0, [], False
    for step in range(1, steps + 1):
        x, y = task.sample(rng, batch_size)
        t0 = time.perf_counter()
        loss = _loss(task, model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        opt.step()
        train_time += time.perf_counter() - t0
        running.append(loss.item())
        if not math.isfinite(running[-1]):
            diverged = True
            break
        if step % eval_every == 0 or step == steps:
            val = evaluate(model, task, task.val)
            curve.append((step, val))
            losses.append((step, float(np.mean(running))))
            running = []
            if solved_at is None and task.solved(val):
                solved_at = step
            if log:
                log(f"{task.key} {cell} step {step}: train {losses[-1][1]:.4f} val {task.metric} {val:.4f}")
    final = evaluate(model, task, task.test) if not diverged else float("nan")
    n_params = sum(p.numel() for p in model.parameters())
    return RunResult(task.key, cell, hidden, n_params, step, final, curve[-1][1] if curve else float("nan"),
                     task.baseline, task.metric, solved_at, batch_size * task.T * step / max(train_time, 1e-9),
                     train_time, curve, losses, diverged)


# ---------------------------------------------------------------------------------------
# the benchmark


@dataclass(frozen=True)
class TaskBudget:
    family: str
    T: Optional[int]
    steps: int
    lr: float = 2e-3


QUICK: Tuple[TaskBudget, ...] = (
    TaskBudget("adding", 30, 250, 3e-3), TaskBudget("copy", 10, 250, 3e-3),
    TaskBudget("digits", None, 150, 3e-3), TaskBudget("pdigits", None, 150, 3e-3),
)
# Per-step training cost differs a lot between torch's CPU kernels (T = 400, batch 32, one
# thread, matched parameters: LSTM 35 ms, RNN 144 ms, GRU 213 ms; the LSTM goes through oneDNN),
# so the shared budget is what the slow cells can afford within ~30 minutes on 2 cores.
FULL: Tuple[TaskBudget, ...] = (
    TaskBudget("adding", 100, 3000, 3e-3), TaskBudget("adding", 200, 3000, 3e-3), TaskBudget("adding", 400, 1500, 3e-3),
    TaskBudget("copy", 50, 1500), TaskBudget("copy", 100, 1500), TaskBudget("copy", 200, 1000),
    TaskBudget("digits", None, 1500), TaskBudget("pdigits", None, 1500),
)

# With the standard initialisation (forget bias 1) a 64-unit LSTM sits on the adding problem's
# 0.167 plateau for ~6,000 steps at T = 200 (batch 32, Adam 3e-3; measured MSE 0.0041 at step
# 6,000), longer than the shared budget. The full run therefore also trains the LSTM alone for
# longer (it is the cheap cell), reported beside the table, not in it.
EXTENDED: Tuple[Tuple[TaskBudget, str], ...] = ((TaskBudget("adding", 200, 8000, 3e-3), "lstm"),)


def select_extended(budgets: Sequence[TaskBudget], cells: Sequence[str], steps_scale: float = 1.0
                    ) -> Tuple[Tuple[TaskBudget, str], ...]:
    """The :data:`EXTENDED` runs whose task and cell are part of this (full) run, steps scaled."""
    keys = {(b.family, b.T) for b in budgets}
    return tuple((TaskBudget(b.family, b.T, max(1, int(round(b.steps * steps_scale))), b.lr), cell)
                 for b, cell in EXTENDED if (b.family, b.T) in keys and cell in cells)


def default_batch(quick: bool) -> int:
    """64 for the quick run; 32 for the full one."""
    return 64 if quick else 32


def select_budgets(quick: bool = False, families: Optional[str] = None, steps_scale: float = 1.0
                   ) -> Tuple[TaskBudget, ...]:
    """QUICK or FULL, optionally only some task families, with every step budget scaled."""
    from ..errors import ConfigError

    budgets = QUICK if quick else FULL
    if families:  # families (adding) or single tasks (adding_T200)
        wanted = [f.strip() for f in families.split(",") if f.strip()]
        keys = {b: (b.family if b.T is None else f"{b.family}_T{b.T}") for b in budgets}
        known = sorted({b.family for b in budgets}) + [k for k in keys.values() if "_T" in k]
        bad = [f for f in wanted if f not in known]
        if bad or not wanted:
            raise ConfigError(f"--tasks takes a comma-separated list of {', '.join(known)}; got {families!r}")
        budgets = tuple(b for b in budgets if b.family in wanted or keys[b] in wanted)
    return tuple(TaskBudget(b.family, b.T, max(1, int(round(b.steps * steps_scale))), b.lr) for b in budgets)


def eval_interval(eval_every: int, steps: int, points: int = 10) -> int:
    """Validate every ``eval_every`` steps, but often enough that a short run (``--steps-scale
    0.2``, ``--quick``) still draws a curve of about ``points`` points, not a lone dot."""
    return max(1, min(eval_every, -(-steps // points)))


def _train_job(job: Tuple[TaskBudget, str, int, int, int, int, Optional[float], int],
               log: Optional[Callable[[str], None]] = None) -> RunResult:
    """One task x cell run; top-level so that a process pool can send it to a worker."""
    b, cell, reference_hidden, batch_size, eval_every, seed, clip_norm, threads = job
    torch.set_num_threads(threads)
    task = make_task(b.family, b.T, seed=seed)
    target = count_params("lstm", task.input_size, reference_hidden, task.output_size)
    hidden = matched_hidden(cell, target, task.input_size, task.output_size)
    return train_cell(task, cell, hidden, b.steps, batch_size, b.lr, clip_norm, eval_interval(eval_every, b.steps),
                      seed, log)


def run_benchmark(budgets: Sequence[TaskBudget], cells: Sequence[str] = CELLS, reference_hidden: int = 64,
                  batch_size: int = 64, eval_every: int = 50, seed: int = 0, clip_norm: Optional[float] = 1.0,
                  log: Optional[Callable[[str], None]] = None, jobs: int = 1,
                  extended: Sequence[Tuple[TaskBudget, str]] = ()) -> Dict[str, object]:
    """Every task x cell; hidden sizes matched to an LSTM of ``reference_hidden`` units.

    ``jobs > 1`` trains that many runs at once in worker processes of one torch thread each
    (runs are independent and seeded, so the metrics equal those of one-thread ``jobs=1``
    runs; the tokens/s of concurrent runs share the machine, so compare speeds with :func:`throughput`, which
    interleaves the cells in one process). Workers print their progress lines themselves;
    a ``log`` callback only says whether they do. ``extended`` runs (budget, cell) pairs outside
    the shared budget; they are reported under ``"extended"``, never in the table.
    """
    from ..errors import ConfigError

    for b in budgets:
        task = make_task(b.family, b.T, seed=seed, n_eval=1)
        target = count_params("lstm", task.input_size, reference_hidden, task.output_size)
        for cell in cells:
            n = count_params(cell, task.input_size, matched_hidden(cell, target, task.input_size, task.output_size),
                             task.output_size)
            if abs(n - target) > 0.1 * target:
                raise ConfigError(f"--cells {cell}: cannot match {target:,} parameters within 10% on {task.key} "
                                  f"(closest {n:,})")
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    threads = torch.get_num_threads()
    pairs = [(b, cell) for b in budgets for cell in cells] + list(extended)
    work = [(b, cell, reference_hidden, batch_size, eval_every, seed, clip_norm, 1 if jobs > 1 else threads)
            for b, cell in pairs]
    if jobs == 1:
        results = [_train_job(job, log) for job in work]
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # longest runs first, so the pool does not end on one long straggler (a scheduling guess:
        # per-step cost relative to the LSTM, measured at T = 400 on one CPU thread)
        weight = {"lstm": 1.0, "rnn": 4.0, "gru": 6.0}
        order = sorted(range(len(work)),
                       key=lambda i: -work[i][0].steps * (work[i][0].T or 64) * weight.get(work[i][1], 2.0))
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
            say = functools.partial(print, flush=True) if log else None
            futures = {i: pool.submit(_train_job, work[i], say) for i in order}
            try:
                results = [futures[i].result() for i in range(len(work))]  # table order: task, then cell
            except BaseException:
                for f in futures.values():  # fail now, not after every queued run has finished
                    f.cancel()
                raise
    results, extra = results[:len(pairs) - len(extended)], results[len(pairs) - len(extended):]
    return {
        "settings": {"budgets": [asdict(b) for b in budgets], "cells": list(cells),
                     "reference_hidden": reference_hidden, "batch_size": batch_size,
                     "eval_every": eval_every, "seed": seed, "clip_norm": clip_norm,
                     "optimizer": "Adam, constant lr", "threads": 1 if jobs > 1 else threads, "jobs": jobs},
        "runs": [asdict(r) for r in results],
        "extended": [asdict(r) for r in extra],
        "summary": {f"{r.task}/{r.cell}": r.final for r in results},
    }


def table(payload: Dict[str, object]) -> str:
    """A Markdown table of the runs: final test metric vs baseline, steps to solve, size, speed."""
    lines = ["| task | cell | hidden | params | metric | baseline | final (test) | steps to solve | tokens/s |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in payload["runs"]:
        solve = "-" if r["steps_to_solve"] is None else str(r["steps_to_solve"])
        final = "diverged" if r["diverged"] else f"{r['final']:.4f}"
        lines.append(f"| {r['task']} | {r['cell']} | {r['hidden']} | {r['params']:,} | {r['metric']} | "
                     f"{r['baseline']:.4f} | {final} | {solve} | {r['tokens_per_s']:,.0f} |")
    return "\n".join(lines)


def plot_curves(payload: Dict[str, object], out_dir) -> List[str]:
    """One PNG per task: validation metric against step for every cell, baseline dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pathlib import Path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_task: Dict[str, List[dict]] = {}
    for r in payload["runs"]:
        by_task.setdefault(r["task"], []).append(r)
    paths = []
    for key, runs in by_task.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in runs:
            if r["curve"]:
                s, v = zip(*r["curve"])
                ax.plot(s, v, marker="o", ms=2.5, label=f"{r['cell']} (H={r['hidden']}, {r['params']:,} params)")
        for r in payload.get("extended", []):
            if r["task"] == key and r["curve"]:
                s, v = zip(*r["curve"])
                ax.plot(s, v, ls=":", marker="o", ms=2.5, label=f"{r['cell']} alone, extended to {r['steps']:,} steps")
        ax.axhline(runs[0]["baseline"], color="k", ls="--", lw=1, label="trivial baseline")
        ax.set_xlabel("training step")
        ax.set_ylabel(f"validation {runs[0]['metric']}")
        if runs[0]["metric"] in ("mse", "ce"):
            ax.set_yscale("log")
        ax.set_title(f"{key}: same steps, parameters within 10%")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"memory-{key}.png"
        tmp = path.with_name(path.stem + ".tmp.png")
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        tmp.replace(path)
        paths.append(str(path))
    return paths


def throughput(cells: Sequence[str] = CELLS, T: int = 100, batch_size: int = 64, reference_hidden: int = 64,
               rounds: int = 7, seed: int = 0) -> Dict[str, Dict[str, float]]:
    """Training tokens/s (forward + backward) per cell, interleaved round by round, medians.

    Two settings on the adding problem's input (2 features): ``matched`` (hidden sizes at the
    reference LSTM's parameter count, as in the benchmark) and ``equal_hidden`` (every cell
    with ``reference_hidden`` units, where a GRU holds 3/4 of an LSTM's weights).
    Interleaving makes the ratios robust to a machine whose load changes over time.
    """
    x, y = (torch.from_numpy(a) for a in mt.adding_problem(batch_size, T, np.random.default_rng(seed)))
    target = count_params("lstm", 2, reference_hidden, 1)
    models = {}
    for setting in ("matched", "equal_hidden"):
        for cell in cells:
            h = matched_hidden(cell, target, 2, 1) if setting == "matched" else reference_hidden
            torch.manual_seed(seed)
            models[(setting, cell)] = MemoryModel(cell, 2, h, 1, per_step=False)
    times: Dict[Tuple[str, str], List[float]] = {k: [] for k in models}
    for r in range(rounds + 1):  # round 0 warms up
        for key, model in models.items():
            t0 = time.perf_counter()
            loss = F.mse_loss(model(x).squeeze(-1), y)
            model.zero_grad(set_to_none=True)
            loss.backward()
            if r:
                times[key].append(time.perf_counter() - t0)
    out: Dict[str, Dict[str, float]] = {}
    for (setting, cell), ts in times.items():
        m = models[(setting, cell)]
        out.setdefault(setting, {})[cell] = {
            "hidden": m.encoder.hidden_size if hasattr(m.encoder, "hidden_size") else None,
            "params": sum(p.numel() for p in m.parameters()),
            "tokens_per_s": batch_size * T / float(np.median(ts))}
    return out

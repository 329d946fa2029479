"""How fast each encoder trains and generates, under the one contract (``rnnkit bench encoders``).

* :func:`correctness`: float64 checks run before any timing (every minGRU/minLSTM scan
  route == the step loop, values and gradients; ``step()`` == ``forward`` for every
  encoder), tolerance 1e-10;
* :class:`Runner` / :func:`interleaved`: training tokens/s (forward + backward of a fixed
  random linear loss), several encoders timed round by round in one process, so a change
  of machine load hits all of them alike and their ratios stay meaningful;
* :func:`generation`: batch-1 ``step()`` µs/token and the state's bytes at a position (the
  state is pre-filled by one forward of ``position - 1`` steps, then single steps are timed);
* :func:`matched_hidden`: the hidden size whose parameter count matches a target;
* :func:`measure`: all of that for a list of encoders at one size: the ``rnnkit bench
  encoders`` measurement. The benchmark harness (sweeps over T and positions, quality at
  equal training time through the real pipeline, plots) is ``benchmarks/encoders.py``.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

from ..layers import ENCODERS, build_encoder
from ..layers.mingru import METHODS, MinGRU

# every name :func:`make` builds: the registry, plus ``mingru-<route>`` for each minGRU scan route
NAMES = tuple(ENCODERS) + tuple(f"mingru-{m}" for m in METHODS)


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
    """Hidden size (a multiple of ``step``) whose parameter count is closest to ``target``
    (``input_size`` 0: the input size follows the hidden size)."""
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


class Runner:
    """One encoder at one shape: forward + backward of sum(y * w) with a fixed random w."""

    def __init__(self, name: str, hidden: int, T: int, B: int, input_size: int, seed: int = 0,
                 num_layers: int = 1) -> None:
        torch.manual_seed(seed)
        self.enc = make(name, input_size, hidden, num_layers)
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


def interleaved(runners: Dict[str, Runner], reps: int, budget_s: float) -> Dict[str, float]:
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
# the `rnnkit bench encoders` measurement


def measure(names: Sequence[str], hidden: int = 256, seq_len: int = 1024, batch: int = 16, layers: int = 1,
            position: int = 1024, match_params: bool = False, rounds: int = 3, budget_s: float = 20.0,
            gen_steps: int = 20, log: Optional[Callable[[str], None]] = None) -> Dict[str, object]:
    """Correctness, then for each encoder at input size = ``hidden``: training tokens/s at
    (``batch``, ``seq_len``), all encoders interleaved round by round, and batch-1 generation
    µs/token and state bytes at ``position``. ``match_params``: each encoder's hidden size
    is chosen so its parameter count is closest to a GRU's of size ``hidden``."""
    checks = correctness()
    if log:
        log(f"correctness: {len(checks)} checks within 1e-10")
    target = n_params(make("gru", hidden, hidden, layers))
    sizes = {n: (matched_hidden(n, target, hidden, num_layers=layers) if match_params and n != "gru" else hidden)
             for n in names}
    tps = interleaved({n: Runner(n, sizes[n], seq_len, batch, hidden, num_layers=layers) for n in names},
                      rounds, budget_s)
    results: Dict[str, Dict[str, object]] = {}
    for n in names:
        gen = generation(n, sizes[n], (position,), hidden, num_layers=layers, steps=gen_steps)[str(position)]
        results[n] = {"hidden": sizes[n], "params": n_params(make(n, hidden, sizes[n], layers)),
                      "train_tokens_per_s": tps[n], "generate_us_per_token": gen["us_per_token"],
                      "state_bytes": gen["state_bytes"]}
        if log:
            log(f"{n:15s} H={sizes[n]:4d}: {tps[n]:10.0f} train tokens/s, {gen['us_per_token']:8.1f} us/token")
    return {"settings": {"hidden": hidden, "seq_len": seq_len, "batch": batch, "layers": layers, "position": position,
                         "match_params": match_params, "rounds": rounds, "threads": torch.get_num_threads()},
            "correctness": checks, "results": results}


def table(payload: Dict[str, object]) -> str:
    """A Markdown table of :func:`measure`'s results; ratios are to the first encoder."""
    s, res = payload["settings"], payload["results"]
    first = next(iter(res.values()))
    lines = [f"Training: B={s['batch']}, T={s['seq_len']}, {s['layers']} layer(s), input size {s['hidden']}; "
             f"generation: batch 1 at position {s['position']}", "",
             "| encoder | hidden | params | train tokens/s | vs first | µs/token | vs first | state bytes |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n, r in res.items():
        lines.append(f"| {n} | {r['hidden']} | {r['params']:,} | {r['train_tokens_per_s']:,.0f} | "
                     f"{r['train_tokens_per_s'] / first['train_tokens_per_s']:.2f}x | "
                     f"{r['generate_us_per_token']:.1f} | "
                     f"{r['generate_us_per_token'] / first['generate_us_per_token']:.2f}x | {r['state_bytes']:,} |")
    return "\n".join(lines)


def summary(payload: Dict[str, object]) -> Dict[str, object]:
    """The one-line JSON of :func:`measure`."""
    res = payload["results"]
    return {"benchmark": "encoders", **{k: payload["settings"][k] for k in ("hidden", "seq_len", "batch", "position")},
            "train_tokens_per_s": {n: round(r["train_tokens_per_s"]) for n, r in res.items()},
            "generate_us_per_token": {n: round(r["generate_us_per_token"], 1) for n, r in res.items()},
            "correct": True}

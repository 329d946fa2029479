"""Benchmark the NumPy reference engine against torch, after checking they agree.

1. BPTT step (forward + backward of embedding -> stacked LSTM -> linear -> cross-entropy) of
   ``rnnkit.reference.charlm.loss_and_grads`` vs torch autograd on the same model and batch,
   float32. Reported, no target: the engine is written to be read, not to be fast.
2. Batch-1 generation, µs/token, 2-layer LSTM at hidden 256 and 512 (``bench_generation``):
   the NumPy runtime (``rnnkit.reference.runtime``) vs the fastest torch-only stepping (an
   ``nn.LSTMCell`` loop or a hand-written torch matvec) and naive ``nn.LSTM`` stepping.
   ``numpy_vs_best_torch`` is the ratio of µs/token at hidden 512 (below 1: NumPy faster).

Every comparison first checks that both sides compute the same numbers, warms up, then times
the variants interleaved (medians of repeats). torch and the BLAS behind NumPy use the same
number of threads, ``--threads`` (default 2, a quiet 2-core machine; use 1 when anything
else runs: two OpenMP threads on a busy machine are 15-40x slower). The last line printed
is the JSON result, also written to ``--out``.

    python benchmarks/reference.py --quick          # <= 60 s
"""

from __future__ import annotations

import os
import sys

_THREADS = "2"
for _i, _a in enumerate(sys.argv):
    if _a == "--threads" and _i + 1 < len(sys.argv):
        _THREADS = sys.argv[_i + 1]
    elif _a.startswith("--threads="):
        _THREADS = _a.split("=", 1)[1]
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _THREADS  # before numpy/torch load their thread pools

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from rnnkit.reference import charlm, relative_error  # noqa: E402


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "blas_threads_env": {v: os.environ.get(v) for v in
                             ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }


def interleaved(fns: dict, repeats: int, warmup: int = 1) -> dict:
    """Median seconds per call of each function, the variants alternating within each repeat."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


# ---------------------------------------------------------------------------------------------
# 1. BPTT step


def torch_charlm(params: dict, dtype):
    """Embedding, LSTM, Linear holding ``params`` (checkpoint layout)."""
    V, E = params[charlm.EMBEDDING].shape
    H = params["encoder.weight_hh_l0"].shape[1]
    L = sum(n.startswith("encoder.weight_ih_l") for n in params)
    modules = {"task.embedding.": torch.nn.Embedding(V, E), "encoder.": torch.nn.LSTM(E, H, L, batch_first=True),
               "task.head.": torch.nn.Linear(H, V)}
    named = {}
    for prefix, m in modules.items():
        m.to(dtype)
        m.load_state_dict({n[len(prefix):]: torch.from_numpy(np.array(p)) for n, p in params.items()
                           if n.startswith(prefix)})
        named.update({prefix + n: p for n, p in m.named_parameters()})
    emb, lstm, head = modules.values()

    def loss_and_backward(ids, targets):
        for p in named.values():
            p.grad = None
        logits = head(lstm(emb(ids))[0])
        loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
        loss.backward()
        return loss

    return loss_and_backward, named


def bench_bptt(V: int, E: int, H: int, L: int, B: int, T: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B, T))
    tids, ttargets = torch.from_numpy(ids), torch.from_numpy(targets)

    # correctness first, in float64
    p64 = charlm.init_charlm(V, "lstm", E, H, L, rng=np.random.default_rng(1), dtype=np.float64)
    loss, grads, _ = charlm.loss_and_grads(p64, "lstm", ids, targets)
    step64, named64 = torch_charlm(p64, torch.float64)
    tloss = float(step64(tids, ttargets).detach())
    worst = max(relative_error(grads[n], p.grad.numpy()) for n, p in named64.items())
    if abs(loss - tloss) > 1e-10 * abs(tloss) or worst > 1e-10:
        raise SystemExit(f"NumPy and torch disagree: loss {loss} vs {tloss}, grad error {worst:.3g}")

    p32 = {n: p.astype(np.float32) for n, p in p64.items()}
    step32, _ = torch_charlm(p32, torch.float32)
    secs = interleaved({
        "numpy": lambda: charlm.loss_and_grads(p32, "lstm", ids, targets),
        "torch": lambda: step32(tids, ttargets),
    }, repeats)
    return {
        "model": f"embedding {V}x{E} -> LSTM {L}x{H} -> linear {H}x{V}, cross-entropy",
        "batch": B, "seq_len": T, "dtype": "float32",
        "check_float64": {"loss_abs_diff": abs(loss - tloss), "max_grad_rel_error": worst},
        "numpy_ms": secs["numpy"] * 1e3, "torch_ms": secs["torch"] * 1e3,
        "numpy_tokens_per_s": B * T / secs["numpy"], "torch_tokens_per_s": B * T / secs["torch"],
        "numpy_vs_torch": secs["numpy"] / secs["torch"],
    }


# ---------------------------------------------------------------------------------------------
# 2. batch-1 generation


def bench_generation(H: int, L: int = 2, V: int = 65, E: int = 64, tokens: int = 200,
                     repeats: int = 5) -> dict:
    """µs/token of batch-1 stepping, NumPy runtime vs torch-only variants, 2-layer LSTM."""
    from rnnkit.reference.runtime import RecurrentLMRuntime

    torch.manual_seed(0)
    emb, lstm, head = torch.nn.Embedding(V, E), torch.nn.LSTM(E, H, L), torch.nn.Linear(H, V)
    weights = {"task.embedding.weight": emb.weight}
    weights.update({f"encoder.{n}": p for n, p in lstm.named_parameters()})
    weights.update({"task.head.weight": head.weight, "task.head.bias": head.bias})
    weights = {n: p.detach().numpy().copy() for n, p in weights.items()}
    runtime = RecurrentLMRuntime(weights, "lstm", L)
    seq = np.random.default_rng(0).integers(0, V, tokens).tolist()

    cells = []
    for k in range(L):
        cell = torch.nn.LSTMCell(E if k == 0 else H, H)
        cell.load_state_dict({n: getattr(lstm, f"{n}_l{k}").detach() for n in
                              ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
        cells.append(cell)
    # hand-written torch matvec: layer 0's input projection of every token precomputed
    with torch.no_grad():
        table = emb.weight @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + lstm.bias_hh_l0  # (V, 4H)
        mats = [(torch.cat([getattr(lstm, f"weight_ih_l{k}"), getattr(lstm, f"weight_hh_l{k}")], 1),
                 getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")) for k in range(1, L)]
        w_hh0 = lstm.weight_hh_l0.detach().clone()
    hw, hb = head.weight.detach(), head.bias.detach()

    @torch.no_grad()
    def run_nn_lstm(n=tokens, keep=False):
        state, out = None, []
        for tok in seq[:n]:
            y, state = lstm(emb.weight[tok].view(1, 1, E), state)
            logits = head(y[0, 0])
            if keep:
                out.append(logits.numpy().copy())
        return out

    @torch.no_grad()
    def run_lstm_cell(n=tokens, keep=False):
        states, out = [None] * L, []
        for tok in seq[:n]:
            x = emb.weight[tok].view(1, E)
            for k, cell in enumerate(cells):
                states[k] = cell(x, states[k])
                x = states[k][0]
            logits = F.linear(x[0], hw, hb)
            if keep:
                out.append(logits.numpy().copy())
        return out

    @torch.no_grad()
    def run_torch_matvec(n=tokens, keep=False):
        hs = [torch.zeros(H) for _ in range(L)]
        cs = [torch.zeros(H) for _ in range(L)]
        out = []
        for tok in seq[:n]:
            for k in range(L):
                if k == 0:
                    g = torch.addmv(table[tok], w_hh0, hs[0])
                else:
                    w, b = mats[k - 1]
                    g = torch.addmv(b, w, torch.cat([hs[k - 1], hs[k]]))
                i, f, gg, o = g.chunk(4)
                cs[k] = torch.sigmoid(f) * cs[k] + torch.sigmoid(i) * torch.tanh(gg)
                hs[k] = torch.sigmoid(o) * torch.tanh(cs[k])
            logits = torch.addmv(hb, hw, hs[-1])
            if keep:
                out.append(logits.numpy().copy())
        return out

    def run_numpy(n=tokens, keep=False):
        state, out = None, []
        for tok in seq[:n]:
            logits, state = runtime.step(tok, state)
            if keep:
                out.append(logits)
        return out

    variants = {"numpy_runtime": run_numpy, "torch_lstm_cell": run_lstm_cell,
                "torch_matvec": run_torch_matvec, "torch_nn_lstm_step": run_nn_lstm}
    reference = np.stack(run_nn_lstm(20, keep=True))
    errors = {name: relative_error(np.stack(fn(20, keep=True)), reference) for name, fn in variants.items()}
    if max(errors.values()) > 1e-4:
        raise SystemExit(f"generation variants disagree with nn.LSTM: {errors}")
    secs = interleaved(variants, repeats)
    us = {name: s / tokens * 1e6 for name, s in secs.items()}
    best = min(("torch_lstm_cell", "torch_matvec"), key=us.get)
    return {"hidden": H, "layers": L, "vocab": V, "embedding": E, "tokens": tokens,
            "max_logit_rel_error_vs_nn_lstm": max(errors.values()), "us_per_token": us,
            "best_torch": best, "numpy_vs_best_torch": us["numpy_runtime"] / us[best]}


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, <= 60 s")
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results" / "reference.json"),
                    help="JSON result path")
    ap.add_argument("--threads", type=int, default=int(_THREADS), help="threads for torch and NumPy's BLAS")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    if args.quick:
        bptt_cfgs = [dict(V=65, E=32, H=128, L=2, B=16, T=32, repeats=5)]
        gen_kw = dict(tokens=200, repeats=5)
    else:
        bptt_cfgs = [dict(V=65, E=32, H=128, L=2, B=16, T=32, repeats=10),
                     dict(V=65, E=64, H=256, L=2, B=32, T=64, repeats=5)]
        gen_kw = dict(tokens=500, repeats=7)
    result = {"benchmark": "reference", "quick": args.quick, "machine": machine_info()}
    result["bptt"] = [bench_bptt(**cfg) for cfg in bptt_cfgs]
    print("BPTT step (float32, fwd+bwd)       numpy ms   torch ms   numpy/torch")
    for r in result["bptt"]:
        print(f"  LSTM B={r['batch']:<3} T={r['seq_len']:<3} {r['model'].split('->')[1].strip():<14}"
              f"{r['numpy_ms']:9.2f}  {r['torch_ms']:9.2f}  {r['numpy_vs_torch']:10.2f}")

    runtime_file = pathlib.Path(__file__).resolve().parents[1] / "src/rnnkit/reference/runtime.py"
    try:
        import rnnkit.reference.runtime  # noqa: F401
    except ImportError:
        print(f"batch-1 generation skipped: {runtime_file} is not importable")
    else:
        result["generation"] = [bench_generation(H, **gen_kw) for H in (256, 512)]
        print("batch-1 generation, 2-layer LSTM, µs/token:")
        for g in result["generation"]:
            cols = "  ".join(f"{k} {v:7.1f}" for k, v in g["us_per_token"].items())
            print(f"  H={g['hidden']:<4} {cols}   numpy/best torch {g['numpy_vs_best_torch']:.2f}")
        result["numpy_vs_best_torch"] = result["generation"][-1]["numpy_vs_best_torch"]
    result["seconds"] = time.perf_counter() - start

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)

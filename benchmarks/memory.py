"""Long-range memory benchmark: RNN vs LSTM vs GRU at matched parameter counts.

    python benchmarks/memory.py --quick                     # <= 60 s; the last line is JSON
    python benchmarks/memory.py --jobs 2                    # full: adding T=100/200/400, copy T=50/100/200,
                                                            # sequential + permuted digits, the LSTM's extended
                                                            # adding T=200 run; two runs at a time
    python benchmarks/memory.py --tasks adding --steps-scale 0.5   # a subset

Same code as ``rnnkit bench memory`` (:mod:`rnnkit.diagnostics.memory`). Correctness first:
before any timing, every cell's parameter count is checked to lie within 10% of the
reference LSTM's, the trivial baselines are recomputed from data (predict-the-mean MSE of the
adding problem, the memoryless copy cross-entropy), and the unrolled torch gradient flow is
checked against the NumPy engine's BPTT on a small LSTM. Then every task x cell is trained
under the same budget; the JSON (with the machine description) goes to
``benchmarks/results/memory[-quick].json`` and the learning curves to
``benchmarks/results/memory[-quick]-<task>.png``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, emit, machine, write_json  # noqa: E402


def checks(budgets, reference_hidden: int) -> dict:
    import torch

    from rnnkit.data import memory_tasks as mt
    from rnnkit.diagnostics import gradient_flow, numpy_gradient_flow, output_gradient, to_numpy
    from rnnkit.diagnostics import memory
    from rnnkit.layers import build_encoder

    out = {}
    for b in budgets:
        task = memory.make_task(b.family, b.T, n_eval=10)
        target = memory.count_params("lstm", task.input_size, reference_hidden, task.output_size)
        for cell in memory.CELLS:
            h = memory.matched_hidden(cell, target, task.input_size, task.output_size)
            n = memory.count_params(cell, task.input_size, h, task.output_size)
            assert abs(n - target) <= 0.1 * target, (task.key, cell, n, target)
    rng = np.random.default_rng(0)
    _, y = mt.adding_problem(20000, 50, rng)
    out["adding_baseline_measured"] = float(np.mean((y - 1.0) ** 2))
    assert abs(out["adding_baseline_measured"] - mt.ADDING_BASELINE) < 0.01
    torch.manual_seed(0)
    enc = build_encoder("lstm", 3, 8, num_layers=2).double()
    x = torch.randn(4, 30, 3, dtype=torch.float64)

    def loss_fn(y):
        return (y[:, -1] ** 2).sum()

    flow = gradient_flow(enc, x, loss_fn)
    spec, params = to_numpy(enc)
    ref = numpy_gradient_flow(spec, params, x.numpy(), output_gradient(enc, x, loss_fn))
    out["flow_torch_vs_numpy_max_rel"] = float(np.max(np.abs(flow.norms - ref.norms) / ref.norms.max()))
    assert out["flow_torch_vs_numpy_max_rel"] < 1e-10
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tasks", default=None, help="adding,copy,digits,pdigits (default: all)")
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--steps-scale", type=float, default=1.0)
    ap.add_argument("--reference-hidden", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=None, help="default 64 with --quick, 32 for the full run")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (with --jobs 1)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="train this many task x cell runs at once, one thread each (2 on a quiet 2-core machine)")
    ap.add_argument("--name", default=None, help="result name (default memory or memory-quick)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from rnnkit.diagnostics import memory

    budgets = memory.select_budgets(args.quick, args.tasks, args.steps_scale)
    args.batch_size = args.batch_size or memory.default_batch(args.quick)
    t0 = time.time()
    check = checks(budgets, args.reference_hidden)
    payload = memory.run_benchmark(budgets, cells=args.cells.split(","), reference_hidden=args.reference_hidden,
                                   batch_size=args.batch_size, jobs=args.jobs,
                                   extended=() if args.quick else memory.select_extended(
                                       budgets, args.cells.split(","), args.steps_scale),
                                   log=None if args.quick else (lambda s: print(s, flush=True)))
    payload["speed"] = memory.throughput(args.cells.split(","), T=100, batch_size=args.batch_size,
                                         reference_hidden=args.reference_hidden, rounds=5 if args.quick else 15)
    name = args.name or ("memory-quick" if args.quick else "memory")
    payload.update(machine=machine(), checks=check, seconds=time.time() - t0, quick=args.quick,
                   command="python benchmarks/memory.py " + " ".join(sys.argv[1:]))
    path = write_json(name, _finite(payload))
    pngs = memory.plot_curves(payload, RESULTS)
    for p in pngs:  # memory-<task>.png -> <name>-<task>.png
        q = Path(p)
        q.replace(q.with_name(q.name.replace("memory-", f"{name}-", 1)))
    print(memory.table(payload))
    for r in payload["extended"]:
        solved = f"solved at step {r['steps_to_solve']}" if r["steps_to_solve"] else "not solved"
        print(f"extended: {r['task']} {r['cell']} alone for {r['steps']} steps: test {r['metric']} {r['final']:.4f}, {solved}")
    for setting, cells in payload["speed"].items():
        print(f"training tokens/s at T=100 ({setting}, interleaved medians): "
              + ", ".join(f"{c} H={v['hidden']} {v['params']:,} params {v['tokens_per_s']:,.0f}" for c, v in cells.items()))
    print(f"{time.time() - t0:.1f} s; wrote {path}")
    emit(_finite(payload["summary"]))


def _finite(obj):
    from rnnkit.diagnostics.report import finite_json

    return finite_json(obj)


if __name__ == "__main__":
    main()

"""``rnnkit bench NAME``: benchmarks that ship with the package.

    rnnkit bench memory --quick          # <= 60 s; the last line is JSON
    rnnkit bench memory --threads 2 --out DIR   # the full long-range memory benchmark (~20 min estimated, 2 quiet cores)
    rnnkit bench encoders --hidden 256 --seq-len 1024   # tokens/s and µs/token of each encoder (~20 s of CPU)

``memory``: RNN vs LSTM vs GRU on the adding problem, copy memory and sequential / permuted
8x8 digits at matched parameter counts (:mod:`rnnkit.diagnostics.memory`).
``encoders``: training tokens/s and batch-1 generation µs/token of each encoder at one size,
correctness checked first (:mod:`rnnkit.diagnostics.speed`; ``rnnkit bench encoders --seq-len
4096 --encoders gru,mingru``). The full side-by-side benchmark (throughput against T,
generation against position, quality at equal training time, plots) is a script of the
source tree: ``python benchmarks/encoders.py``.
"""

from __future__ import annotations

import json

from ..diagnostics.report import finite_json, out_dir as _out_dir, write_json as _write_json
from .common import Parser, name_list, positive_int

DEFAULT_ENCODERS = ("rnn", "lstm", "gru", "mingru", "minlstm", "tcn", "transformer")


def _registered():
    from ..layers import ENCODERS

    return tuple(ENCODERS)


def _speed_names():
    from ..diagnostics.speed import NAMES

    return NAMES


def register(sub) -> None:
    p = sub.add_parser("bench", help="run a bundled benchmark", description="Run a bundled benchmark.")
    names = p.add_subparsers(dest="bench", metavar="NAME", parser_class=Parser, required=True)
    m = names.add_parser("memory", help="long-range memory: adding, copy, sequential digits; rnn vs lstm vs gru",
                         description="Adding problem (T=100,200,400), copy memory (T=50,100,200), sequential and "
                                     "permuted 8x8 digits; cells at matched parameter counts and equal steps.")
    m.add_argument("--quick", action="store_true", help="small T and few steps (<= 60 s); the last line is JSON")
    m.add_argument("--cells", type=name_list("--cells", _registered), default=["rnn", "lstm", "gru"],
                   help="comma-separated encoders (default rnn,lstm,gru; any registered encoder may join)")
    m.add_argument("--tasks", default=None, help="only these task families: adding,copy,digits,pdigits")
    m.add_argument("--reference-hidden", type=positive_int("--reference-hidden"), default=64,
                   help="hidden size of the LSTM every cell's parameter count is matched to (default 64)")
    m.add_argument("--batch-size", type=positive_int("--batch-size"), default=None,
                   help="batch size (default 64 with --quick, 32 for the full run)")
    m.add_argument("--steps-scale", type=float, default=1.0, help="multiply every task's step budget (default 1)")
    m.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    m.add_argument("--out", default="runs/bench-memory", help="directory for memory.json and the learning-curve PNGs")
    m.add_argument("--threads", type=positive_int("--threads"), default=1, help="torch CPU threads (default 1)")
    m.add_argument("--jobs", type=positive_int("--jobs"), default=1,
                   help="train this many task x cell runs at once in worker processes of one thread each (default 1)")
    m.set_defaults(func=cmd_memory)
    e = names.add_parser("encoders", help="training tokens/s and generation µs/token of each encoder at one size",
                         description="Correctness checks (float64), then for each encoder at input size = --hidden: "
                                     "training tokens/s (forward + backward, all encoders timed round by round in one "
                                     "process) and batch-1 generation µs/token at --position. The full side-by-side "
                                     "benchmark (sweeps, quality at equal training time, plots) is "
                                     "benchmarks/encoders.py in the source tree.")
    e.add_argument("--encoders", type=name_list("--encoders", _speed_names), default=list(DEFAULT_ENCODERS),
                   help=f"comma-separated encoders, the first is the reference of the ratios "
                        f"(default {','.join(DEFAULT_ENCODERS)}; mingru-fused/chunked/log/loop pick a scan route)")
    e.add_argument("--hidden", type=positive_int("--hidden"), default=256, help="hidden size and input size (default 256)")
    e.add_argument("--seq-len", type=positive_int("--seq-len"), default=1024, help="training sequence length T (default 1024)")
    e.add_argument("--batch-size", type=positive_int("--batch-size"), default=16, help="training batch B (default 16)")
    e.add_argument("--layers", type=positive_int("--layers"), default=1, help="layers (default 1)")
    e.add_argument("--position", type=positive_int("--position"), default=1024,
                   help="generation is timed after this many tokens of context (default 1024)")
    e.add_argument("--match-params", action="store_true",
                   help="size each encoder to the parameter count of a GRU with --hidden (default: equal hidden size)")
    e.add_argument("--rounds", type=positive_int("--rounds"), default=3, help="timed training rounds (default 3; median)")
    e.add_argument("--out", default=None, help="also write DIR/encoders.json")
    e.add_argument("--threads", type=positive_int("--threads"), default=1, help="torch CPU threads (default 1)")
    e.set_defaults(func=cmd_encoders)


def cmd_memory(args) -> int:
    from ..errors import ConfigError

    if not args.steps_scale > 0:
        raise ConfigError(f"--steps-scale must be > 0, got {args.steps_scale}")
    out = _out_dir(args.out)
    import torch

    torch.set_num_threads(args.threads)
    from ..diagnostics import memory

    budgets = memory.select_budgets(args.quick, args.tasks, args.steps_scale)
    payload = memory.run_benchmark(budgets, cells=args.cells, reference_hidden=args.reference_hidden,
                                   batch_size=args.batch_size or memory.default_batch(args.quick), seed=args.seed,
                                   jobs=args.jobs,
                                   extended=() if args.quick else memory.select_extended(budgets, args.cells,
                                                                                         args.steps_scale),
                                   log=None if args.quick else (lambda s: print(s, flush=True)))
    payload["settings"]["quick"] = bool(args.quick)
    _write_json(out / "memory.json", payload)
    pngs = memory.plot_curves(payload, out)
    print(memory.table(payload))
    print(f"wrote {out / 'memory.json'} and {len(pngs)} learning-curve plots")
    print(json.dumps(finite_json(payload["summary"])), flush=True)
    return 0


def cmd_encoders(args) -> int:
    out = _out_dir(args.out) if args.out else None
    import torch

    torch.set_num_threads(args.threads)
    from ..diagnostics import speed

    payload = speed.measure(args.encoders, hidden=args.hidden, seq_len=args.seq_len, batch=args.batch_size,
                            layers=args.layers, position=args.position, match_params=args.match_params,
                            rounds=args.rounds, log=lambda s: print(s, flush=True))
    print(speed.table(payload))
    if out is not None:
        _write_json(out / "encoders.json", payload)
        print(f"wrote {out / 'encoders.json'}")
    print(json.dumps(finite_json(speed.summary(payload))), flush=True)
    return 0

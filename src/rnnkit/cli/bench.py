"""``rnnkit bench NAME``: benchmarks that ship with the package.

    rnnkit bench memory --quick          # <= 60 s; the last line is JSON
    rnnkit bench memory --threads 2 --out DIR   # the full long-range memory benchmark (~20 min estimated, 2 quiet cores)

``memory``: RNN vs LSTM vs GRU on the adding problem, copy memory and sequential / permuted
8x8 digits at matched parameter counts (:mod:`rnnkit.diagnostics.memory`).
``encoders``: every encoder side by side: training tokens/s vs T, generation vs position,
quality at equal CPU time (adding problem, char-LM, seattle-weather forecasting, SST-2), with
PNG plots next to the JSON (:mod:`rnnkit.diagnostics.encoders`; ``rnnkit bench encoders --quick``,
``rnnkit bench encoders --sections forecast,sst2``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import Parser, limited
from .diagnose import _any_encoders, _out_dir, _write_json, finite_json


def register(sub) -> None:
    p = sub.add_parser("bench", help="run a bundled benchmark", description="Run a bundled benchmark.")
    names = p.add_subparsers(dest="bench", metavar="NAME", parser_class=Parser, required=True)
    m = names.add_parser("memory", help="long-range memory: adding, copy, sequential digits; rnn vs lstm vs gru",
                         description="Adding problem (T=100,200,400), copy memory (T=50,100,200), sequential and "
                                     "permuted 8x8 digits; cells at matched parameter counts and equal steps.")
    m.add_argument("--quick", action="store_true", help="small T and few steps (<= 60 s); the last line is JSON")
    m.add_argument("--cells", type=_any_encoders, default=["rnn", "lstm", "gru"],
                   help="comma-separated encoders (default rnn,lstm,gru; any registered encoder may join)")
    m.add_argument("--tasks", default=None, help="only these task families: adding,copy,digits,pdigits")
    m.add_argument("--reference-hidden", type=limited("--reference-hidden", "hidden"), default=64,
                   help="hidden size of the LSTM every cell's parameter count is matched to (default 64)")
    m.add_argument("--batch-size", type=limited("--batch-size", "batch_size"), default=None,
                   help="batch size (default 64 with --quick, 32 for the full run)")
    m.add_argument("--steps-scale", type=limited("--steps-scale", "steps_scale"), default=1.0, help="multiply every task's step budget (default 1)")
    m.add_argument("--seed", type=limited("--seed", "seed"), default=0, help="random seed (default 0)")
    m.add_argument("--out", default="runs/bench-memory", help="directory for memory.json and the learning-curve PNGs")
    m.add_argument("--threads", type=limited("--threads", "threads"), default=1, help="torch CPU threads (default 1)")
    m.add_argument("--jobs", type=limited("--jobs", "threads"), default=1,
                   help="train this many task x cell runs at once in worker processes of one thread each (default 1)")
    m.set_defaults(func=cmd_memory)
    e = names.add_parser("encoders", help="rnn/lstm/gru/mingru/minlstm/tcn/transformer side by side",
                         description="Training tokens/s vs T, batch-1 generation vs position, and quality at equal "
                                     "CPU time (adding problem, char-LM, seattle-weather forecasting, SST-2) for every "
                                     "encoder at matched parameter counts; correctness first; plots next to the JSON.")
    e.add_argument("--quick", action="store_true", help="correctness, the T=4096 minGRU/GRU ratio and generation "
                                                        "(<= 60 s); the last line is JSON")
    e.add_argument("--sections", type=_encoder_sections, default=None,
                   help="comma-separated: headline, generate, train, adding, charlm, forecast, sst2 "
                        "(default: all; correctness always runs; --quick runs headline and generate only)")
    e.add_argument("--charlm-minutes", type=limited("--charlm-minutes", "minutes"), default=1.5, help="char-LM training minutes per encoder (default 1.5)")
    e.add_argument("--forecast-minutes", type=limited("--forecast-minutes", "minutes"), default=1.0,
                   help="seattle-weather forecasting training minutes per encoder (default 1)")
    e.add_argument("--sst2-minutes", type=limited("--sst2-minutes", "minutes"), default=1.0, help="SST-2 training minutes per encoder (default 1)")
    e.add_argument("--adding-seconds", type=limited("--adding-seconds", "seconds"), default=20.0, help="adding-problem training seconds per encoder (default 20)")
    e.add_argument("--no-charlm", action="store_true", help="drop the charlm section")
    e.add_argument("--out", default="runs/bench-encoders",
                   help="directory for encoders.json and the plots encoders-throughput.png, encoders-generation.png")
    e.add_argument("--threads", type=limited("--threads", "threads"), default=1, help="torch CPU threads (default 1)")
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


def _encoder_sections(text: str) -> list:
    """``--sections`` of ``bench encoders``: names of :data:`rnnkit.diagnostics.encoders.SECTIONS`."""
    from ..diagnostics.encoders import SECTIONS

    sections = [s.strip() for s in text.split(",") if s.strip()]
    if not sections or set(sections) - set(SECTIONS):
        raise argparse.ArgumentTypeError(f"--sections takes a comma-separated list of {', '.join(SECTIONS)}; "
                                         f"got {text!r}")
    return sections


def cmd_encoders(args) -> int:
    from ..errors import ConfigError

    if not min(args.charlm_minutes, args.forecast_minutes, args.sst2_minutes, args.adding_seconds) > 0:
        raise ConfigError("--charlm-minutes, --forecast-minutes, --sst2-minutes and --adding-seconds must be > 0")
    out = _out_dir(args.out)
    from ..diagnostics import encoders

    sections = [s for s in (args.sections or encoders.SECTIONS) if not (args.no_charlm and s == "charlm")]

    log = lambda s: print(s, flush=True)  # noqa: E731
    payload = encoders.run(quick=args.quick, threads=args.threads, adding_seconds=args.adding_seconds,
                           sections=sections, charlm_minutes=args.charlm_minutes,
                           forecast_minutes=args.forecast_minutes, sst2_minutes=args.sst2_minutes, log=log)
    payload["plots"] = [Path(p).name for p in encoders.plot(payload, out, "encoders")]
    _write_json(out / "encoders.json", payload)
    print(encoders.table(payload))
    print(f"wrote {out / 'encoders.json'}" + "".join(f", {p}" for p in payload["plots"]))
    print(json.dumps(finite_json(encoders.summary(payload))), flush=True)
    return 0

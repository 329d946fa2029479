"""Encoders side by side: RNN, LSTM, GRU, minGRU, minLSTM, TCN, Transformer (issue #8).

    python benchmarks/encoders.py --quick      # <= 60 s: correctness, the T=4096 ratio, generation
    python benchmarks/encoders.py              # + throughput vs T, adding problem, char-LM quality
    rnnkit bench encoders [--quick]            # the same run from the CLI

Correctness first (float64, 1e-10: every minGRU scan route == the step loop, values and
gradients; step() == forward for every encoder), then timing (:mod:`rnnkit.diagnostics.encoders`):

* training tokens/s (forward + backward) vs T = 128 … 8192, B = 16, at equal hidden size 256
  and at parameter counts matched to the 1-layer GRU's; the headline ``mingru_vs_gru_train``
  is minGRU / nn.GRU at T = 4096, measured interleaved in one process;
* batch-1 generation µs/token and state bytes at positions 1 … 8192;
* quality at equal CPU time: the adding problem (T = 100), and (full run only) the char-LM on
  tinyshakespeare through ``rnnkit train charlm --max-time`` at matched encoder parameters,
  validation nats/char.

JSON goes to benchmarks/results/encoders[-quick].json; the last line printed is JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, write_json  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="<= 60 s: correctness, headline ratio, generation")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    ap.add_argument("--charlm-minutes", type=float, default=1.5, help="training minutes per encoder (full run)")
    ap.add_argument("--adding-seconds", type=float, default=20.0, help="training seconds per encoder (full run)")
    ap.add_argument("--no-charlm", action="store_true", help="skip the char-LM quality runs")
    ap.add_argument("--sections", default="headline,generate,train,adding",
                    help="comma-separated: headline, generate, train, adding (correctness always runs)")
    ap.add_argument("--cell-budget", type=float, default=20.0,
                    help="seconds per throughput cell; longer cells are skipped (default 20)")
    ap.add_argument("--name", default=None, help="results/NAME.json (default encoders or encoders-quick)")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from rnnkit.diagnostics import encoders as E

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    payload = E.run(quick=args.quick, threads=args.threads, adding_seconds=args.adding_seconds,
                    cell_budget_s=args.cell_budget, sections=sections, log=lambda s: print(s, flush=True))
    if not args.quick and not args.no_charlm:
        payload["charlm"] = E.charlm_quality(args.charlm_minutes, args.threads, log=lambda s: print(s, flush=True))
    payload["machine"] = machine()
    path = write_json(args.name or ("encoders-quick" if args.quick else "encoders"), payload)
    print(E.table(payload))
    print(f"wrote {path}")
    emit(E.summary(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())

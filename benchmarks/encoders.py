"""Encoders side by side: RNN, LSTM, GRU, minGRU, minLSTM, TCN, Transformer (issue #8).

    python benchmarks/encoders.py --quick      # <= 60 s: correctness, the T=4096 ratio, generation
    python benchmarks/encoders.py              # + throughput vs T, adding, char-LM, forecasting, SST-2
    python benchmarks/encoders.py --sections forecast,sst2 --name encoders-quality   # some sections only

Correctness first (float64, 1e-10: every minGRU scan route == the step loop, values and
gradients; step() == forward for every encoder), then timing. The measurements are the
library's (:mod:`rnnkit.diagnostics.speed`, also behind ``rnnkit bench encoders``, which
times each encoder at one size); this script arranges them (``_encoders.py``) and reports
them (``_encoders_report.py``):

* training tokens/s (forward + backward) vs T = 128 … 8192, B = 16, at equal hidden size 256
  and at parameter counts matched to the 1-layer GRU's; the headline ``mingru_vs_gru_train``
  is minGRU / nn.GRU at T = 4096, measured interleaved in one process;
* batch-1 generation µs/token and state bytes at positions 1 … 8192;
* quality at an equal training-time budget (full run only), encoder parameters matched
  within 10%: the adding problem (T = 100); through the real pipeline, one
  ``rnnkit train TASK --max-time`` process per encoder: the char-LM on tinyshakespeare
  (validation nats/char), seattle-weather temp_max one day ahead (test MASE and MAE, next to
  the naive forecast) and SST-2 (accuracy on the GLUE dev set: the validation phrases held
  out of train.tsv overlap the training phrases).

JSON goes to benchmarks/results/NAME.json (NAME: encoders or encoders-quick by default), with
the plots next to it: NAME-throughput.png (tokens/s vs T) and NAME-generation.png (µs/token
and state bytes vs position), each when the run measured it. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, emit, machine, write_json  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="<= 60 s: correctness, headline ratio, generation")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    ap.add_argument("--charlm-minutes", type=float, default=1.5, help="char-LM training minutes per encoder")
    ap.add_argument("--forecast-minutes", type=float, default=1.0, help="forecasting training minutes per encoder")
    ap.add_argument("--sst2-minutes", type=float, default=1.0, help="SST-2 training minutes per encoder")
    ap.add_argument("--adding-seconds", type=float, default=20.0, help="training seconds per encoder (full run)")
    ap.add_argument("--no-charlm", action="store_true", help="drop the charlm section from --sections")
    ap.add_argument("--sections", default=None,
                    help="comma-separated: headline, generate, train, adding, charlm, forecast, sst2 "
                         "(default: all; correctness always runs)")
    ap.add_argument("--cell-budget", type=float, default=20.0,
                    help="seconds per throughput cell; longer cells are skipped (default 20)")
    ap.add_argument("--name", default=None, help="results/NAME.json (default encoders or encoders-quick)")
    args = ap.parse_args(argv)
    if not min(args.charlm_minutes, args.forecast_minutes, args.sst2_minutes, args.adding_seconds) > 0:
        ap.error("--charlm-minutes, --forecast-minutes, --sst2-minutes and --adding-seconds must be > 0")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))  # before torch is imported
    import _encoders as E
    import _encoders_report as R

    sections = [s.strip() for s in (args.sections or ",".join(E.SECTIONS)).split(",") if s.strip()]
    unknown = sorted(set(sections) - set(E.SECTIONS))
    if unknown:
        ap.error(f"unknown --sections {', '.join(unknown)}; choose from {', '.join(E.SECTIONS)}")
    if args.no_charlm:
        sections = [s for s in sections if s != "charlm"]
    payload = E.run(quick=args.quick, threads=args.threads, adding_seconds=args.adding_seconds,
                    cell_budget_s=args.cell_budget, sections=sections, charlm_minutes=args.charlm_minutes,
                    forecast_minutes=args.forecast_minutes, sst2_minutes=args.sst2_minutes,
                    log=lambda s: print(s, flush=True))
    payload["machine"] = machine()
    name = args.name or ("encoders-quick" if args.quick else "encoders")
    payload["plots"] = [Path(p).name for p in R.plot(payload, RESULTS, name)]
    path = write_json(name, payload)
    print(R.table(payload))
    print(f"wrote {path}" + "".join(f", {p}" for p in payload["plots"]))
    emit(R.summary(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())

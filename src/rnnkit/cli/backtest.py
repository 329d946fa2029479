"""``rnnkit backtest CKPT``: rolling-origin backtest of a forecast checkpoint, side by side with
the naive, seasonal-naive, drift and ARIMA baselines (or climatology and logistic regression
for an event), on every origin of the test period (or ``--split val``); ``ForecastPredictor.backtest``."""

from __future__ import annotations

import json
import sys

from . import io
from .common import positive_int


def register(sub) -> None:
    p = sub.add_parser("backtest", help="rolling-origin backtest of a forecast checkpoint against baselines",
                       description="Rolling-origin backtest over the test period: the model next to naive, "
                                   "seasonal naive, drift and ARIMA (or climatology and logistic regression for events).")
    p.add_argument("checkpoint", metavar="CKPT", help="forecast checkpoint directory")
    p.add_argument("--data", "--input", dest="data", default=None, metavar="FILE",
                   help="CSV with the training columns ('-' = standard input), or a named data set; "
                        "default: the training data")
    p.add_argument("--sep", default=None, metavar="CHAR", help="delimiter of a --data file (default: sniffed)")
    p.add_argument("--split", choices=("test", "val"), default="test", help="period whose origins are scored (default: test)")
    p.add_argument("--season", type=positive_int("--season"), default=None, help="season length m for the seasonal naive baseline")
    p.add_argument("--arima", default="auto", help="ARIMA order p,d,q (each 0-5), auto (AIC on the training part) or none")
    p.add_argument("--plot", metavar="FILE.png", default=None, help="reliability diagram (events) or forecast-vs-actual plot")
    p.add_argument("--output", metavar="FILE", default=None,
                   help="write per-origin predictions of the model and every baseline "
                        f"(format from the extension: {', '.join(io.OUTPUT_FORMATS)})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--threads", type=positive_int("--threads"), default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_backtest)


def cmd_backtest(args) -> int:
    from ..fileio import check_output, savefig
    from ..predictors import load
    from ..predictors.base import set_threads
    from ..predictors.forecast import arima_order, clean_report
    from ..predictors.forecast_plots import backtest_frame, plot_backtest
    from .forecast import read_frame

    fmt = io.output_format(args.output)
    if args.plot:
        check_output(args.plot)
    arima_order(args.arima)  # a bad order is refused before any work
    model = load(args.checkpoint, expect=["forecast"])
    set_threads(args.threads)
    report, tsdata = model.backtest_report(read_frame(args.data, args.sep), args.split, args.season, args.arima)
    if fmt:
        io.write_frame(backtest_frame(report, tsdata), args.output, fmt)
        print(f"wrote per-origin predictions to {args.output}", file=sys.stderr)
    if args.plot:
        import matplotlib.pyplot as plt

        fig = plot_backtest(report, tsdata)
        savefig(fig, args.plot)
        plt.close(fig)
        print(f"wrote plot {args.plot}", file=sys.stderr)
    report = clean_report(report)
    print(json.dumps(report) if args.json else model.describe(report))
    return 0

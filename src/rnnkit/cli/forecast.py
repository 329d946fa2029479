"""``rnnkit forecast CKPT``: the next ``horizon`` steps of every series from its last ``lookback``
rows (``ForecastPredictor.forecast``); a table (CSV to stdout, or ``--output``/``--json``) and
optionally a plot of history, forecast and interval."""

from __future__ import annotations

import sys

from . import io
from .common import positive_int


def register(sub) -> None:
    p = sub.add_parser("forecast", help="forecast the next steps of every series (forecast checkpoints)",
                       description="Forecast the next --horizon steps after the end of each series; print or write "
                                   "a table and optionally plot history, forecast and prediction interval.")
    p.add_argument("checkpoint", metavar="CKPT", help="forecast checkpoint directory")
    p.add_argument("--data", "--input", dest="data", default=None, metavar="FILE",
                   help="CSV with the training columns ('-' = standard input), or a named data set; "
                        "default: the training data")
    p.add_argument("--sep", default=None, metavar="CHAR", help="delimiter of a --data file (default: sniffed)")
    io.add_output_flags(p)
    p.add_argument("--plot", metavar="FILE.png", default=None, help="plot history, forecast and interval (matplotlib)")
    p.add_argument("--series", default=None, help="only this series (default: all)")
    p.add_argument("--horizon", type=positive_int("--horizon"), default=None,
                   help="steps to forecast, at most the trained horizon (default: the trained horizon)")
    p.add_argument("--history", type=positive_int("--history"), default=None,
                   help="history rows shown in the plot (default: 4 x lookback, at least 60)")
    p.add_argument("--threads", type=positive_int("--threads"), default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_forecast)


def read_frame(data, sep):
    """``--data``: a frame read from a file or stdin (delimiter sniffed), or a named set as is."""
    from pathlib import Path

    if data is None or (data != "-" and not Path(data).exists()):
        return data  # the training data, or a named set (the predictor says when it is neither)
    import io as stdio

    import pandas as pd

    from ..errors import DataError

    text = io.read_input_text(data)
    sep = sep or io.sniff_sep(text, data if data != "-" else "stdin.csv") or ","
    try:
        return pd.read_csv(stdio.StringIO(text), sep=sep)
    except (pd.errors.ParserError, ValueError) as e:
        shown = {"\t": "TAB"}.get(sep, sep)
        raise DataError(f"{data}: cannot parse as {shown!r}-separated text ({str(e)[:150]}); "
                        "give the delimiter with --sep") from None


def cmd_forecast(args) -> int:
    from ..fileio import check_output, savefig
    from ..predictors import load
    from ..predictors.base import set_threads

    fmt = io.output_format(args.output)
    if args.plot:
        check_output(args.plot)
    model = load(args.checkpoint, expect=["forecast"])
    set_threads(args.threads)
    data = read_frame(args.data, args.sep)
    rows, tsdata, plots = model.forecast_rows(data, args.series, args.horizon)
    import pandas as pd

    df = pd.DataFrame(rows)
    if fmt:
        io.write_frame(df, args.output, fmt)
        print(f"wrote {len(rows)} forecast rows to {args.output}", file=sys.stderr)
    elif args.json:
        io.print_jsonl(io.records(df))
    else:
        sys.stdout.write(df.to_csv(index=False, lineterminator="\n"))
        sys.stdout.flush()
    if args.plot:
        import matplotlib.pyplot as plt

        from ..predictors.forecast_plots import plot_forecasts

        fig = plot_forecasts(tsdata, plots, args.history, model.net.levels)
        savefig(fig, args.plot)
        plt.close(fig)
        print(f"wrote plot {args.plot}", file=sys.stderr)
    return 0

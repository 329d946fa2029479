"""Regenerate the frozen forecast checkpoint and golden numbers in this folder.

The committed files were written on 2026-12-03 with the code before issue #18.3
(``timeseries.build`` fitting and transforming in one function; the first version of this
script, commit 7ebfa55); ``tests/forecast/test_saved.py`` checks that checkpoints written
then stay loadable and forecast the same numbers. This version goes through the CLI and the
fit/transform API and regenerates the same files. Only rerun it here on purpose (it would
freeze today's behaviour instead); to compare, write elsewhere:

    PYTHONPATH=src python tests/data/forecast_golden/make_golden.py [OUT_DIR]
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(sys.argv[1]).resolve() if __name__ == "__main__" and len(sys.argv) > 1 else Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root, for tests.fixtures.forecast

from tests.fixtures.forecast import daily_frame, write  # noqa: E402

# data-config variants whose fitted state is frozen too (event labels, wide tables, levels, global scaler)
STATE_SPECS = {
    "event": {"time": "date", "event": "precip>0", "covariates": "temp,humidity,wind", "lookback": 5},
    "wide": {"time": "date", "target": "temp,humidity", "wide": True, "lookback": 5, "transform": "logret",
             "scaler": "global", "calendar": False},
    "levels": {"time": "date", "target": "temp", "group": "site", "covariates": "humidity,wind",
               "lookback": 5, "missing": "interpolate"},
}


def digest(a) -> str:
    """sha256 of an array's dtype, shape and bytes: equal digests mean bit-identical arrays."""
    import hashlib

    import numpy as np

    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype}{a.shape}".encode() + a.tobytes()).hexdigest()


def _number(v: str):
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def main() -> None:
    import numpy as np

    from rnnkit.cli.main import main as cli
    from rnnkit.data import timeseries as ts

    csv_path = write(daily_frame(n=90, groups=("A", "B")), HERE / "series.csv")
    ck = HERE / "checkpoint"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ck"
        code = cli(["train", "forecast", "--data", str(csv_path), "--time", "date", "--target", "temp",
                    "--group", "site", "--covariates", "humidity,wind", "--transform", "diff", "--horizon", "3",
                    "--head", "gaussian", "--hidden", "8", "--lookback", "6", "--batch-size", "16",
                    "--max-steps", "4", "--val-every", "4", "--checkpoint-every", "4", "--warmup-steps", "1",
                    "--no-progress", "--logger", "none", "--threads", "1", "--seed", "3", "--out", str(out)])
        assert code == 0
        shutil.rmtree(ck, ignore_errors=True)
        ck.mkdir()
        shutil.copyfile(out / "model.safetensors", ck / "model.safetensors")  # no train state: never resumed
        config = json.loads((out / "config.json").read_text())
        # not this machine's path (weights_sha256 covers the weights only)
        config["data"]["spec"]["data"] = config["train"]["data"]["data"] = "series.csv"
        (ck / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    state = json.loads((ck / "config.json").read_text())["data"]
    spec = ts.Spec(**{**state["spec"], "data": str(csv_path)})
    data = ts.transform(ts.read_table(spec), spec, state)
    with tempfile.TemporaryDirectory() as tmp:
        assert cli(["forecast", str(ck), "--data", str(csv_path), "--output", f"{tmp}/f.csv", "--threads", "1"]) == 0
        with open(f"{tmp}/f.csv", newline="") as f:
            rows = [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(f)]

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli(["backtest", str(ck), "--data", str(csv_path), "--json", "--arima", "none", "--threads", "1"]) == 0
    backtest = json.loads(buf.getvalue().strip().splitlines()[-1])
    for key in ("checkpoint", "data"):  # this machine's paths
        backtest.pop(key)
    gaps = daily_frame(n=90, groups=("A", "B"), seed=1)
    gaps.loc[[5, 40, 100], "humidity"] = np.nan
    gaps_path = write(gaps, HERE / "series_gaps.csv")
    one_path = write(daily_frame(n=90, seed=2), HERE / "series_one.csv")
    states = {}
    for name, d in STATE_SPECS.items():
        src = gaps_path if name == "levels" else one_path
        built = ts.build(ts.resolve_spec({"data": str(src), **d}))
        built.state["spec"]["data"] = src.name
        states[name] = {"state": built.state, "windows": {k: digest(v) for k, v in built.windows.items()},
                        "feats": [digest(s.feats) for s in built.series]}
    golden = {"forecast_rows": rows, "backtest": backtest, "feats": [digest(s.feats) for s in data.series], "states": states}
    (HERE / "golden.json").write_text(json.dumps(golden, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()

"""The Python API's overheads (issue #15): cold start of `rnnkit.load` + a first prediction,
and the throughput of `predict` against the same modules called directly.

1. Correctness: `SentimentPredictor.predict` equals the modules' `predict_proba` on the same ids.
2. Cold start, fresh processes, one thread, medians of --repeats runs: each process times
   `import torch`, then `import rnnkit; m = rnnkit.load(ck); m.predict([...])` (target: the
   second part at most 0.5 s); Lightning must not be in `sys.modules` afterwards. The wall
   time of the whole process is reported too.
3. Throughput on N texts of SST-2 dev: `m.predict(texts)` vs encoding + `predict_proba` in
   batches of 512 (target: >= 0.9x), interleaved rounds, median ratio.

The model is the SST-2 recipe's architecture (configs/sentiment-sst2.yaml, a 1x128 biLSTM)
trained for a few steps: speed does not depend on the weights. `--checkpoint` uses yours.

    python benchmarks/api.py [--quick] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def train(out: Path, steps: int) -> Path:
    from rnnkit.cli.main import main

    rc = main(["train", "sentiment", "--config", str(ROOT / "configs" / "sentiment-sst2.yaml"), "--out", str(out),
               "--max-steps", str(steps), "--val-every", str(steps), "--checkpoint-every", str(steps),
               "--no-progress", "--logger", "none", "--threads", "1", "--overwrite"])
    assert rc == 0
    return out


def fresh(code: str, *args: str):
    """Wall time of a fresh process running ``code``, and what it printed (a JSON object)."""
    import json

    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, *args], env=ENV, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(f"cold-start run failed: {r.stderr[-500:]}")
    return took, (json.loads(r.stdout) if r.stdout.strip() else {})


# One fresh process times `import torch` and then `rnnkit.load` + the first prediction, so
# both parts see the same machine load; the target is on the second part.
COLD = ("import json, sys, time\n"
        "t0 = time.perf_counter(); import torch; t1 = time.perf_counter()\n"
        "import rnnkit\n"
        "m = rnnkit.load(sys.argv[1]); m.predict(['a gorgeous, witty film']); t2 = time.perf_counter()\n"
        "assert not [k for k in sys.modules if k.split('.')[0] == 'lightning'], 'Lightning was imported'\n"
        "print(json.dumps({'torch': t1 - t0, 'rest': t2 - t1}))\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and texts (smoke test)")
    ap.add_argument("--checkpoint", default=None, help="a sentiment checkpoint (default: train one briefly)")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import rnnkit
    from rnnkit.data import sentiment as sd
    from rnnkit.tasks.sentiment import predict_proba

    repeats = args.repeats or (3 if args.quick else 7)
    tmp = Path(tempfile.mkdtemp(prefix="rnnkit-api-"))
    ck = Path(args.checkpoint) if args.checkpoint else train(tmp / "sst2", 5 if args.quick else 20)
    m = rnnkit.load(ck)
    texts = sd.load_splits_for(m.config["data"]).test.texts
    n = 200 if args.quick else 1000
    texts = (list(texts) * (n // len(texts) + 1))[:n]

    # 1. correctness
    ids, _ = m.encode(texts)
    direct = predict_proba(m.net.encoder, m.net.task, ids)
    api = np.array([[r["probabilities"][lab] for lab in m.labels] for r in m.predict(texts)])
    np.testing.assert_allclose(api, direct, atol=1e-9)

    # 2. cold start
    runs = [fresh(COLD, str(ck)) for _ in range(repeats)]
    load_s = [wall for wall, _ in runs]
    torch_s = [parts["torch"] for _, parts in runs]
    rest_s = [parts["rest"] for _, parts in runs]
    python_s = [fresh("pass")[0] for _ in range(repeats)]

    # 3. throughput, interleaved
    def via_api():
        m.predict(texts)

    def via_modules():
        for i in range(0, len(texts), 512):
            ids_b, _ = m.encode(texts[i:i + 512])
            predict_proba(m.net.encoder, m.net.task, ids_b)

    ratios, api_t, mod_t = [], [], []
    via_api(), via_modules()  # warm up
    for _ in range(repeats):
        t0 = time.perf_counter(); via_api(); a = time.perf_counter() - t0  # noqa: E702
        t0 = time.perf_counter(); via_modules(); b = time.perf_counter() - t0  # noqa: E702
        api_t.append(a), mod_t.append(b), ratios.append(b / a)
    res = {
        "machine": machine(), "quick": args.quick, "checkpoint": str(ck), "texts": n, "repeats": repeats,
        "correct": True,
        "python_startup_seconds": round(statistics.median(python_s), 3),
        "import_torch_seconds": round(statistics.median(torch_s), 3),
        "cold_start_seconds": round(statistics.median(load_s), 3),
        "cold_start_over_torch_seconds": round(statistics.median(rest_s), 3),
        "api_texts_per_second": round(n / statistics.median(api_t), 1),
        "modules_texts_per_second": round(n / statistics.median(mod_t), 1),
        "api_vs_modules_throughput": round(statistics.median(ratios), 3),
    }
    res["targets_met"] = {"cold_start": res["cold_start_over_torch_seconds"] <= 0.5,
                          "throughput": res["api_vs_modules_throughput"] >= 0.9}
    path = write_json("api_quick" if args.quick else "api", res)
    for k, v in res.items():
        if k != "machine":
            print(f"{k}: {v}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

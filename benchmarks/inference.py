"""Inference benchmark: the torch path vs the ONNX (onnxruntime) path of every task.

    python benchmarks/inference.py --quick     # < 60 s; JSON in benchmarks/results/inference-quick.json
    python benchmarks/inference.py             # more repetitions; results/inference.json

Models (random weights at the sizes of the project's presets, :data:`SIZES`, with the data
side of a tiny model trained one step on synthetic data): charlm 2x512 LSTM; sentiment
1x128 biLSTM (max pooling, ~2.8k-word vocabulary); forecast 1x64 GRU, lookback 28,
horizon 7; asr 2x128 biLSTM over 2 conv layers (16 channels, 40 mels); seq2seq 1x256
biLSTM encoder, 512 LSTM decoder with additive attention, 2k BPE vocabulary. Each is exported with `rnnkit export` (self-check included) before timing.

Measured, both paths at the same thread count (--threads, default 1: the machine is shared):

* cold start: a fresh process that loads the model and makes its first prediction
  (``rnnkit.load`` when the package has it, else the network alone), median of runs;
* warm throughput at batch 1 and at a realistic batch (64 texts, 64 windows, 16
  utterances, 64 sentences), items per second, median of repetitions, after a warm-up;
* charlm batch-1 generation, µs per token: ONNX step vs the NumPy runtime vs torch.

Before timing, each pair of paths is checked to agree (max abs diff <= 1e-4).
"""

from __future__ import annotations

import os
import sys

_THREADS = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "--threads"), "1")
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _THREADS

import argparse  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Dict, List  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, median, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BATCH = {"charlm": 1, "sentiment": 64, "forecast": 64, "asr": 16, "seq2seq": 64}
Q = ["--no-progress", "--logger", "none", "--max-steps", "1", "--warmup-steps", "1"]


# ---------------------------------------------------------------------------------------
# models


def _words(rng: random.Random, n: int) -> List[str]:
    return ["".join(rng.choice("aeioubdgklmnprstvz") for _ in range(rng.randint(2, 8))) for _ in range(n)]


# the presets' sizes (configs/*.yaml, `rnnkit train` defaults); charlm at 2x512 as the issue asks
SIZES = {
    "charlm": dict(encoder="lstm", hidden_size=512, num_layers=2, embedding_dim=64),
    "sentiment": dict(encoder="lstm", hidden_size=128, num_layers=1, bidirectional=True, embedding_dim=128),
    "forecast": dict(encoder="gru", hidden_size=64, num_layers=1),
    "asr": dict(encoder="lstm", hidden_size=128, num_layers=2, bidirectional=True, conv_channels=16),
    "seq2seq": dict(encoder="lstm", hidden_size=256, decoder="lstm", decoder_hidden=512, embedding_dim=256,
                    attention_size=256),
}


def make_models(root: Path, threads: int) -> Dict[str, Path]:
    """One checkpoint per task: a tiny model trained one step on synthetic data (its config
    carries the data side: vocabulary, scalers, units, subwords), then random weights at
    the sizes of :data:`SIZES`."""
    from rnnkit.cli.main import main
    from rnnkit.data.audio import write_wav
    from rnnkit.export.onnx_export import random_variant

    rng = random.Random(0)
    lex = _words(rng, 3000)
    q = [*Q, "--threads", str(threads), "--hidden", "8"]
    tiny = {t: root / f"{t}-tiny" for t in BATCH}
    text = "\n".join(" ".join(rng.choice(lex) for _ in range(rng.randint(4, 12))) for _ in range(300))
    (root / "corpus.txt").write_text(text)
    assert main(["train", "charlm", "--data", str(root / "corpus.txt"), "--out", str(tiny["charlm"]),
                 "--seq-len", "32", "--batch-size", "8", *q]) == 0
    rows = [(" ".join(rng.choice(lex) for _ in range(rng.randint(5, 60))), i % 2) for i in range(500)]
    (root / "reviews.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    assert main(["train", "sentiment", "--data", str(root / "reviews.csv"), "--out", str(tiny["sentiment"]),
                 "--min-freq", "1", "--batch-size", "16", *q]) == 0
    days = np.arange(np.datetime64("2015-01-01"), np.datetime64("2018-01-01"))
    temp = 10 + 8 * np.sin(np.arange(len(days)) * 2 * np.pi / 365) + np.random.default_rng(0).normal(0, 1, len(days))
    (root / "series.csv").write_text("date,temp\n" + "".join(f"{d},{v:.2f}\n" for d, v in zip(days, temp)))
    assert main(["train", "forecast", "--data", str(root / "series.csv"), "--time", "date", "--target", "temp",
                 "--horizon", "7", "--batch-size", "16", "--out", str(tiny["forecast"]), *q]) == 0
    d = root / "digits"
    d.mkdir()
    gen = np.random.default_rng(0)
    for spk in ("anna", "bob"):
        for digit in range(10):
            n = int(8000 * (0.4 + 0.04 * digit))
            tone = 0.3 * np.sin(2 * np.pi * (200 + 60 * digit) * np.arange(n) / 8000) + 0.01 * gen.standard_normal(n)
            write_wav(d / f"{digit}_{spk}_0.wav", tone.astype(np.float32), 8000)
    assert main(["train", "asr", "--data", str(d), "--out", str(tiny["asr"]), "--layers", "1",
                 "--conv-channels", "2", "--n-mels", "40", "--batch-size", "8", *q]) == 0
    src = [" ".join(rng.choice(lex) for _ in range(rng.randint(4, 20))) for _ in range(1000)]
    (root / "src.txt").write_text("\n".join(src) + "\n")
    (root / "tgt.txt").write_text("\n".join(" ".join(reversed(x.split())) for x in src) + "\n")
    assert main(["train", "seq2seq", "--data", f"{root / 'src.txt'}:{root / 'tgt.txt'}", "--out", str(tiny["seq2seq"]),
                 "--vocab-size", "2000", "--batch-size", "16", "--val-fraction", "0.01", "--decoder-hidden", "8",
                 "--embedding-dim", "8", "--attention-size", "8", *q]) == 0
    return {t: random_variant(tiny[t], root / t, 0, **SIZES[t]) for t in BATCH}


# ---------------------------------------------------------------------------------------
# inputs and the two paths per task


def inputs(task: str, cfg: Dict[str, Any], n: int, rng: np.random.Generator):
    if task == "sentiment":
        V = len(cfg["data"]["vocab"]["tokens"])
        return [rng.integers(2, V, size=int(k)) for k in rng.integers(5, 60, size=n)]
    if task == "forecast":
        return rng.standard_normal((n, int(cfg["data"]["spec"]["lookback"]), int(cfg["data"]["n_features"]))).astype(np.float32)
    if task == "asr":
        return [rng.standard_normal((int(k), int(cfg["model"]["n_mels"]))).astype(np.float32)
                for k in rng.integers(60, 160, size=n)]
    V = int(cfg["data"]["vocab_sizes"][0])
    return [list(rng.integers(4, V, size=int(k))) for k in rng.integers(4, 20, size=n)]


def runners(task: str, ck: Path, ex: Path, max_len: int) -> Dict[str, Callable]:
    """path -> f(batch): the networks ``rnnkit.load`` gives the predictors (NumPy in, NumPy out)."""
    import rnnkit

    nets = {"torch": rnnkit.load(ck).net, "onnx": rnnkit.load(ex).net}
    if task == "sentiment":
        return {p: n.proba for p, n in nets.items()}
    if task == "forecast":
        return {p: (lambda n: lambda x: n.predict(x)["mean"])(n) for p, n in nets.items()}
    if task == "asr":
        return {p: (lambda n: lambda b: np.concatenate(n.posteriors(b)))(n) for p, n in nets.items()}
    return {p: (lambda n: lambda b: [h.tokens for h in n.translate_ids(b, 1, 0.6, max_len)])(n) for p, n in nets.items()}


def _same(a, b) -> bool:
    if isinstance(a, list):
        return a == b
    return float(np.abs(np.asarray(a) - np.asarray(b)).max()) <= 1e-4


def warm(task: str, ck: Path, ex: Path, cfg: Dict[str, Any], reps: int, max_len: int) -> Dict[str, Any]:
    rng = np.random.default_rng(0)
    run = runners(task, ck, ex, max_len)
    out: Dict[str, Any] = {}
    for n in (1, BATCH[task]):
        batch = inputs(task, cfg, n, rng)
        results = {p: f(batch) for p, f in run.items()}  # warm-up and the agreement check
        if not _same(results["torch"], results["onnx"]):
            raise SystemExit(f"{task}: torch and onnx disagree at batch {n}")
        for p, f in run.items():
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                f(batch)
                times.append(time.perf_counter() - t0)
            out[f"{p}_items_per_s_b{n}"] = n / median(times)
    out["onnx_vs_torch"] = out[f"onnx_items_per_s_b{BATCH[task]}"] / out[f"torch_items_per_s_b{BATCH[task]}"]
    return out


def charlm_tokens(ck: Path, ex: Path, tokens: int) -> Dict[str, float]:
    """Batch-1 generation µs/token (greedy; the sampler is the same for all and not timed)."""
    import rnnkit

    torch_net = rnnkit.load(ck).net
    steppers = {"numpy": torch_net.stepper("numpy"), "onnx": rnnkit.load(ex).net.stepper(),
                "torch": torch_net.stepper("torch")}
    ref = None
    for name, st in steppers.items():
        state, tok, logits_seq = None, 1, []
        for _ in range(20):  # warm-up, and the agreement check on the first steps
            logits, state = st.step(tok, state)
            logits_seq.append(np.asarray(logits, np.float64))
            tok = int(np.argmax(logits))
        if ref is None:
            ref = logits_seq
        elif max(np.abs(a - b).max() for a, b in zip(ref, logits_seq)) > 1e-4:
            raise SystemExit(f"charlm: {name} stepper disagrees with numpy")
    # interleaved rounds of 50 tokens: a busy machine slows all three alike
    times: Dict[str, List[float]] = {name: [] for name in steppers}
    states: Dict[str, Any] = {name: None for name in steppers}
    for _ in range(max(1, tokens // 50)):
        for name, st in steppers.items():
            state, tok = states[name], 1
            t0 = time.perf_counter()
            for _ in range(50):
                logits, state = st.step(tok, state)
                tok = int(np.argmax(logits))
            times[name].append(1e6 * (time.perf_counter() - t0) / 50)
            states[name] = state
    return {name: median(t) for name, t in times.items()}


# ---------------------------------------------------------------------------------------
# cold start: a fresh process


COLD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
task, path, kind = sys.argv[1], sys.argv[2], sys.argv[3]
import rnnkit
via = "rnnkit.load" if hasattr(rnnkit, "load") else "net"
if via == "rnnkit.load":
    m = rnnkit.load(path)
    t1 = time.perf_counter()
    first = {"charlm": lambda: m.sample(prime="a", length=20, seed=0),
             "sentiment": lambda: m.predict(["a short text to classify"]),
             "forecast": lambda: m.forecast(),
             "asr": lambda: m.transcribe((np.zeros(8000, np.float32), 8000)),
             "seq2seq": lambda: m.translate(["a short sentence"], beam=1)}[task]
    first()
elif kind == "onnx":
    from rnnkit.export.onnx_runtime import load_net
    cfg, net = load_net(path)
    t1 = time.perf_counter()
    if task == "charlm": net.stepper().step(1)
    elif task == "sentiment": net.proba([np.array([2, 3, 4])])
    elif task == "forecast": net.predict(np.zeros((1, cfg["data"]["spec"]["lookback"], cfg["data"]["n_features"]), np.float32))
    elif task == "asr": net.posteriors([np.zeros((98, cfg["model"]["n_mels"]), np.float32)])
    else: net.translate_ids([[5, 6, 7]], 1, 0.6, 10)
else:
    import torch
    from rnnkit import checkpoint as C
    from rnnkit.export.onnx_export import build_modules
    c = C.load_checkpoint(path)
    encoder, mod = build_modules(c.config, c.weights)
    t1 = time.perf_counter()
    if task == "charlm":
        from rnnkit.tasks.charlm import make_stepper
        make_stepper(c.weights, c.config["model"], "torch")[0].step(1)
    elif task == "sentiment":
        from rnnkit.tasks.sentiment import predict_proba
        predict_proba(encoder, mod, [np.array([2, 3, 4])])
    elif task == "forecast":
        with torch.no_grad():
            x = torch.zeros(1, c.config["data"]["spec"]["lookback"], c.config["data"]["n_features"])
            mod.predict(encoder.outputs(x), x)
    elif task == "asr":
        from rnnkit.tasks.asr import posteriors
        posteriors(encoder, mod, [np.zeros((98, c.config["model"]["n_mels"]), np.float32)])
    else:
        from rnnkit.tasks.seq2seq import translate_ids
        translate_ids(encoder, mod, [[5, 6, 7]], beam=1, max_len=10)
t2 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "total": t2 - t0, "via": via, "torch_imported": "torch" in sys.modules}))
"""


def cold(task: str, path: Path, kind: str, runs: int) -> Dict[str, Any]:
    import json

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    res = []
    for _ in range(runs):
        p = subprocess.run([sys.executable, "-c", COLD, task, str(path), kind], capture_output=True, text=True,
                           env=env, timeout=300)
        if p.returncode != 0:
            raise SystemExit(f"cold start {task}/{kind} failed: {p.stderr.strip().splitlines()[-1:]}")
        res.append(json.loads(p.stdout.strip().splitlines()[-1]))
    return {"load_seconds": median([r["load"] for r in res]), "cold_start_seconds": median([r["total"] for r in res]),
            "via": res[0]["via"], "torch_imported": res[0]["torch_imported"]}


# ---------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (< 60 s)")
    ap.add_argument("--threads", type=int, default=1, help="threads for torch and onnxruntime alike (default: 1)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from rnnkit.cli.main import main as rnnkit_main
    from rnnkit.export.onnx_runtime import read_export_config

    reps, runs, tokens = (2, 1, 200) if args.quick else (15, 3, 2000)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ck = make_models(root, args.threads)
        print(f"models trained in {time.perf_counter() - t_start:.1f} s", file=sys.stderr)
        ex = {t: root / f"{t}-onnx" for t in ck}
        for t in ck:
            with contextlib.redirect_stdout(io.StringIO()):
                assert rnnkit_main(["export", str(ck[t]), "--out", str(ex[t])]) == 0
        print(f"exported at {time.perf_counter() - t_start:.1f} s", file=sys.stderr)
        tasks: Dict[str, Any] = {}
        for t in ck:
            cfg = read_export_config(ex[t])
            entry: Dict[str, Any] = {"batch": BATCH[t]}
            if t != "charlm":
                entry.update(warm(t, ck[t], ex[t], cfg, reps, 20 if args.quick else 40))
            entry["torch"] = cold(t, ck[t], "torch", runs)
            entry["onnx"] = cold(t, ex[t], "onnx", runs)
            tasks[t] = entry
            print(f"{t} done at {time.perf_counter() - t_start:.1f} s", file=sys.stderr)
        gen = charlm_tokens(ck["charlm"], ex["charlm"], tokens)
        tasks["charlm"]["us_per_token"] = gen
    summary = {
        "onnx_vs_torch_sentiment": tasks["sentiment"]["onnx_vs_torch"],
        "charlm_onnx_us_per_token": gen["onnx"], "charlm_numpy_us_per_token": gen["numpy"],
        "charlm_torch_us_per_token": gen["torch"],
        "charlm_onnx_vs_numpy": gen["onnx"] / gen["numpy"],
        "load_seconds": {t: {"torch": e["torch"]["load_seconds"], "onnx": e["onnx"]["load_seconds"]}
                         for t, e in tasks.items()},
        "cold_start_seconds": {t: {"torch": e["torch"]["cold_start_seconds"], "onnx": e["onnx"]["cold_start_seconds"]}
                               for t, e in tasks.items()},
        "threads": args.threads, "quick": args.quick, "seconds": time.perf_counter() - t_start,
    }
    path = write_json("inference-quick" if args.quick else "inference",
                      {"summary": summary, "tasks": tasks, "machine": machine()})
    for t, e in tasks.items():
        line = f"{t:9s} cold torch {e['torch']['cold_start_seconds']:.2f} s onnx {e['onnx']['cold_start_seconds']:.2f} s"
        if "onnx_vs_torch" in e:
            b = e["batch"]
            line += (f" | b1 torch {e['torch_items_per_s_b1']:.0f}/s onnx {e['onnx_items_per_s_b1']:.0f}/s"
                     f" | b{b} torch {e[f'torch_items_per_s_b{b}']:.0f}/s onnx {e[f'onnx_items_per_s_b{b}']:.0f}/s"
                     f" ({e['onnx_vs_torch']:.2f}x)")
        print(line)
    print(f"charlm µs/token: onnx {gen['onnx']:.0f}, numpy {gen['numpy']:.0f}, torch {gen['torch']:.0f}; wrote {path}")
    emit(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

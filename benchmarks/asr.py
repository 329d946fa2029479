"""ASR benchmark: CTC correctness first, then train + score on FSDD (single and connected digits).

    python benchmarks/asr.py --quick            # <= 60 s: checks + a tiny connected-digit run
    python benchmarks/asr.py --minutes 20       # full: single digits, connected (standard split),
                                                # connected leave-one-speaker-out for each speaker
    python benchmarks/asr.py --minutes 20 --only connected
    python benchmarks/asr.py --only single --steps 4000 --extra "--config configs/asr-fsdd-single.yaml"

Correctness checks (before any timing): prefix beam search == brute-force most probable
labelling on tiny random posteriors; a padded batch gives each utterance exactly its
unpadded outputs; torch's CTC loss agrees with a NumPy forward-algorithm reference.

Each training run goes through the same code path as ``rnnkit train asr`` / ``rnnkit evaluate``
(the library functions they call), single-threaded unless ``--threads`` says otherwise.
Scores are on the test split (recordings 0-4 of each speaker and digit, or the left-out
speaker), decoded greedily and with a 8-wide prefix beam restricted to the ten digit words.
The last line printed is one JSON object with ``wer`` and ``cer`` (of the connected-digit
standard-split run, or the quick run).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402

from _common import emit, machine, write_json  # noqa: E402


def check_correctness() -> dict:
    import torch
    import torch.nn.functional as F

    from rnnkit.tasks import asr

    rng = np.random.default_rng(0)
    # 1. prefix beam search finds the most probable labelling (sum over all paths)
    for _ in range(5):
        lp = np.log(rng.dirichlet(np.ones(3) * 0.7, size=5))
        scores = {}
        for path in itertools.product(range(3), repeat=5):
            lab = tuple(k for k, _ in itertools.groupby(path) if k != 0)
            scores[lab] = np.logaddexp(scores.get(lab, -np.inf), sum(lp[t, s] for t, s in enumerate(path)))
        best = list(max(scores.items(), key=lambda kv: kv[1])[0])
        assert asr.beam_decode(lp, 64, prune=-1e9) == best, "beam search != brute force"
    # 2. padding never leaks
    torch.manual_seed(0)
    enc, task = asr.build(dict(encoder="lstm", hidden_size=16, num_layers=2, bidirectional=True, dropout=0.0,
                               conv_channels=4, subsample=4, n_mels=16), 8)
    feats = [rng.normal(size=(n, 16)).astype(np.float32) for n in (41, 17, 30)]
    batched = asr.posteriors(enc, task, feats)
    gap = max(float(np.abs(b - asr.posteriors(enc, task, [f])[0]).max()) for f, b in zip(feats, batched))
    assert gap < 1e-5, f"padded batch differs from single utterances by {gap}"
    # 3. torch CTC == NumPy forward algorithm
    lp = np.log(rng.dirichlet(np.ones(5), size=12))
    lab = [1, 3, 3, 2]
    ext = [0]
    for u in lab:
        ext += [u, 0]
    alpha = np.full(len(ext), -np.inf)
    alpha[0], alpha[1] = lp[0, 0], lp[0, ext[1]]
    for t in range(1, len(lp)):
        new = np.full(len(ext), -np.inf)
        for s in range(len(ext)):
            a = alpha[s]
            if s >= 1:
                a = np.logaddexp(a, alpha[s - 1])
            if s >= 2 and ext[s] != 0 and ext[s] != ext[s - 2]:
                a = np.logaddexp(a, alpha[s - 2])
            new[s] = a + lp[t, ext[s]]
        alpha = new
    ref = -np.logaddexp(alpha[-1], alpha[-2])
    got = F.ctc_loss(torch.tensor(lp)[:, None], torch.tensor(lab), torch.tensor([12]), torch.tensor([4]),
                     blank=0, reduction="sum").item()
    assert abs(got - ref) < 1e-9, (got, ref)
    return {"beam_vs_bruteforce": "ok", "padding_max_abs_diff": gap, "ctc_vs_numpy_abs_diff": abs(got - ref)}


def run(name: str, flags: list, minutes: float, threads: int, steps: int = None) -> dict:
    """Train with the library's training entry point, then score the test split."""
    from rnnkit.cli.common import Parser
    from rnnkit.cli import train as train_cli
    from rnnkit.training.config import build_config
    from rnnkit.training.run import train

    out = Path(tempfile.mkdtemp(prefix=f"asr-bench-{name}-"))
    p = Parser(prog="bench")
    sub = p.add_subparsers(dest="verb")
    train_cli.register(sub)
    budget = ["--max-steps", str(steps)] if steps else ["--max-time", str(minutes)]
    args = p.parse_args(["train", "asr", "--out", str(out), *budget, "--threads", str(threads), "--no-progress",
                         "--logger", "csv", *flags])
    from rnnkit.cli.common import overrides_from
    from rnnkit.training.config import load_yaml

    overrides = overrides_from(args)
    overrides.setdefault("run", {})["progress"] = False
    cfg = build_config(load_yaml(Path(args.config), "asr") if args.config else {}, overrides, task="asr")
    t0, c0 = time.perf_counter(), time.process_time()
    summary = train(cfg)
    train_min = (time.perf_counter() - t0) / 60
    cpu_min = (time.process_time() - c0) / 60  # this process's own CPU time (a loaded machine)
    res = {"name": name, "flags": flags, "config": settings(json.loads((out / "config.json").read_text())),
           "steps": summary["global_step"], "train_minutes": round(train_min, 2),
           "train_cpu_minutes": round(cpu_min, 2),
           "val": {k: v for k, v in summary["metrics"].items() if k.startswith("val_")}}
    res.update(score_all(out, threads))
    single = f"; single recordings acc {res['single_greedy']['accuracy']:.4f}" if "single_greedy" in res else ""
    print(f"{name}: {res['steps']} steps in {train_min:.1f} min; test greedy WER {res['greedy']['wer']:.4f} "
          f"CER {res['greedy']['cer']:.4f} acc {res['greedy']['accuracy']:.4f}; beam+digits WER "
          f"{res['beam8_digits']['wer']:.4f}{single}", flush=True)
    return res


def settings(config: dict) -> dict:
    """A checkpoint's model, data and optimiser settings, without the unit table and word list."""
    train = config.get("train", {})
    return {"seed": config["data"].get("seed"), "model": train.get("model", config["model"]),
            "optim": train.get("optim", {}),
            "data": {k: v for k, v in train.get("data", config["data"]).items() if k not in ("units", "words")}}


def single_digit_model(data: dict) -> bool:
    """Trained for single digits: on single recordings, or on one-digit compositions."""
    return data["fsdd_mode"] == "single" or data["max_digits"] == 1


def names_config(flags: list) -> bool:
    return any(f.split("=")[0] == "--config" for f in flags)


def _run_one_thread(job: tuple) -> dict:
    """A LOSO run in a worker process of its own (``--jobs``): one torch thread."""
    import torch

    torch.set_num_threads(1)
    name, flags, minutes, _, steps = job
    return run(name, flags, minutes, 1, steps)


def score_all(out: Path, threads: int) -> dict:
    """Greedy and beam+digits scores of a checkpoint on its test split; a connected-digit model
    is also scored on the single recordings, as recorded, a single-digit one on its validation split."""
    res = {"greedy": score(out, 1, None, threads), "beam8_digits": score(out, 8, "train", threads)}
    data = json.loads((out / "config.json").read_text())["data"]
    if data["fsdd_mode"] == "connected":
        res["single_greedy"] = score(out, 1, None, threads, fsdd_mode="single")
        res["single_beam8_digits"] = score(out, 8, "train", threads, fsdd_mode="single")
    # a single-digit model: what selection sees, the single validation recordings, greedy and
    # with the digit beam
    if data["val_recordings"] and single_digit_model(data):
        res["val_greedy"] = score(out, 1, None, threads, fsdd_mode="single", split="val")
        res["val_beam8_digits"] = score(out, 8, "train", threads, fsdd_mode="single", split="val")
    return res


def score(out: Path, beam: int, words, threads: int, fsdd_mode: str = None, split: str = "test") -> dict:
    import rnnkit
    from rnnkit.data import speech_sets as sets
    from rnnkit.predictors.base import set_threads
    from rnnkit.tasks.asr_decode import score_posteriors

    set_threads(threads)
    rec = rnnkit.load(out)
    decoder, constraint = rec.decoding(beam, words)
    data = {**rec.data_cfg, "fsdd_mode": fsdd_mode or rec.data_cfg["fsdd_mode"]}
    source, _, val_items, test_items = sets.fsdd_sets(data, rec.sample_rate)
    items = val_items if split == "val" else test_items
    feats = sets.featurise(source, items, rec.fe)
    t0 = time.perf_counter()
    m, _ = score_posteriors(rec.net.posteriors(feats), rec.units, [source.text(i) for i in items],
                            decoder, beam, constraint)
    m["decode_seconds"] = round(time.perf_counter() - t0, 2)
    return m


def validation_from(first: int) -> None:
    """Standard split with validation on recordings ``first``..``first + 4`` of every speaker and
    digit instead of 5-9 (a second validation fold); training keeps the rest of 5-49, test 0-4."""
    from rnnkit.data import speech as sp

    if not 10 <= first <= 45:
        raise SystemExit(f"--val-from must lie in [10, 45], got {first}")
    standard = sp.fsdd_split

    def split(clips, test_speaker=None, val_recordings=5):
        if test_speaker is not None:
            return standard(clips, test_speaker, val_recordings)
        if val_recordings != 5:
            raise SystemExit(f"--val-from needs --val-recordings 5 (the run asks for {val_recordings})")
        train, val, test = [], [], []
        for i, c in enumerate(clips):
            (test if c.index < 5 else val if first <= c.index < first + 5 else train).append(i)
        return train, val, test

    sp.fsdd_split = split  # the recipe looks it up at call time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="checks + a tiny run, <= 60 s")
    ap.add_argument("--minutes", type=float, default=20.0, help="training minutes per run (full mode)")
    ap.add_argument("--steps", type=int, default=None,
                    help="training steps per run instead of --minutes (reproducible on a loaded machine)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="leave-one-speaker-out runs trained at once, in worker processes (one thread each)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", choices=("single", "connected", "loso"), action="append",
                    help="run only these parts (repeatable; default: all)")
    ap.add_argument("--speakers", default=None, help="comma-separated speakers for the LOSO part (default: all five)")
    ap.add_argument("--extra", default="", help="extra training flags, e.g. '--hidden 128'")
    ap.add_argument("--val-from", type=int, default=None,
                    help="standard split: validate on recordings N..N+4 instead of 5-9 (a second fold for selection)")
    ap.add_argument("--name", default=None, help="results file name (default: asr, or asr-quick)")
    ap.add_argument("--score", nargs="+", metavar="CKPT", default=None,
                    help="only score these trained checkpoints (greedy, beam+digits, single recordings) "
                         "on their test split, e.g. after the evaluation sets changed")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from rnnkit.data.speech import FSDD_SPEAKERS

    if args.val_from is not None:
        validation_from(args.val_from)
    t0 = time.perf_counter()
    checks = check_correctness()
    print(f"correctness: {checks}", flush=True)
    extra = args.extra.split()
    if names_config(extra) and args.only != ["single"]:
        raise SystemExit("--extra '--config FILE' is for the single-digit model: add --only single")
    payload = {"machine": machine(), "checks": checks, "runs": [],
               "validation_recordings": f"{args.val_from}-{args.val_from + 4}" if args.val_from else "5-9"}
    if args.score:
        for ckpt in args.score:
            cfg = json.loads((Path(ckpt) / "config.json").read_text())
            who = cfg["data"].get("test_speaker")
            standard = "single-standard" if single_digit_model(cfg["data"]) else "connected-standard"
            r = {"name": f"connected-loso-{who}" if who else standard,
                 "checkpoint": str(ckpt), "steps": cfg.get("global_step"), "config": settings(cfg),
                 **score_all(Path(ckpt), args.threads)}
            print(f"{r['name']}: test greedy WER {r['greedy']['wer']:.4f}, beam+digits WER "
                  f"{r['beam8_digits']['wer']:.4f}", flush=True)
            payload["runs"].append(r)
        loso = [r for r in payload["runs"] if "loso" in r["name"]]
        if loso:
            payload["loso_mean_wer"] = float(np.mean([r["greedy"]["wer"] for r in loso]))
            payload["loso_mean_wer_beam_digits"] = float(np.mean([r["beam8_digits"]["wer"] for r in loso]))
        head = payload["runs"][0]
        name = args.name or "asr-scored"
    elif args.quick:
        r = run("quick-connected", ["--hidden", "64", "--layers", "1", "--conv-channels", "8", "--batch-size", "16",
                                    "--eval-passes", "1", "--val-every", "1000", "--warmup-steps", "10",
                                    "--lr", "3e-3", *extra], 0.4, args.threads, steps=None)
        payload["runs"].append(r)
        head = r
        name = "asr-quick"
    else:
        parts = args.only or ["single", "connected", "loso"]
        head = None
        if "single" in parts:
            # the single-digit model: --fsdd-mode single, or what --extra "--config FILE" says
            flags = extra if names_config(extra) else ["--fsdd-mode", "single", *extra]
            r = run("single-standard", flags, args.minutes, args.threads, args.steps)
            payload["runs"].append(r)
        if "connected" in parts:
            head = run("connected-standard", list(extra), args.minutes, args.threads, args.steps)
            payload["runs"].append(head)
        if "loso" in parts:
            speakers = args.speakers.split(",") if args.speakers else list(FSDD_SPEAKERS)
            jobs = [(f"connected-loso-{s}", ["--test-speaker", s, *extra], args.minutes, args.threads, args.steps)
                    for s in speakers]
            if args.jobs > 1:
                import multiprocessing as mp
                from concurrent.futures import ProcessPoolExecutor

                with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
                    loso = list(pool.map(_run_one_thread, jobs))
            else:
                loso = [run(*job) for job in jobs]
            payload["runs"].extend(loso)
            payload["loso_mean_wer"] = float(np.mean([r["greedy"]["wer"] for r in loso]))
            payload["loso_mean_wer_beam_digits"] = float(np.mean([r["beam8_digits"]["wer"] for r in loso]))
        head = head or payload["runs"][0]
        name = args.name or "asr"
    for r in payload["runs"]:
        none = r["config"]["data"]["val_recordings"] == 0 and not r["config"]["data"].get("test_speaker")
        r["validation_recordings"] = "none (trained on 5-49)" if none else payload["validation_recordings"]
    payload["seconds"] = round(time.perf_counter() - t0, 1)
    path = write_json(name, payload)
    print(f"wrote {path}")
    summary = {"wer": head["greedy"]["wer"], "cer": head["greedy"]["cer"], "run": head["name"],
               "steps": head["steps"], "beam_digits_wer": head["beam8_digits"]["wer"], "seconds": payload["seconds"]}
    if "loso_mean_wer" in payload:
        summary["loso_mean_wer"] = payload["loso_mean_wer"]
    emit(summary)


if __name__ == "__main__":
    main()

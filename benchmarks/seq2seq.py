"""Seq2seq benchmark: Multi30k English->German BLEU next to trivial baselines.

    python benchmarks/seq2seq.py --quick                  # <= 60 s; last line is JSON
    python benchmarks/seq2seq.py --minutes 50             # train on all of multi30k, score test2016
    python benchmarks/seq2seq.py --checkpoint DIR         # score an existing run on test2016

1. Correctness first (tiny random model): beam search's carried-state scores equal the
   teacher-forced log-probability recomputed from scratch, and the fused decoder equals the
   step loop.
2. Baselines on test2016: copy the source (identity), and word-by-word translation with a
   dictionary learned from the training pairs (Dice co-occurrence). ``bleu_baseline`` is the
   better of the two.
3. The model: ``--quick`` trains a small model for ~15 s on a subset (a pipeline check, not a
   quality figure); otherwise the full recipe (or ``--checkpoint``) is scored on test2016 with
   greedy decoding and beam search (width 5, length penalty 0.6). ``bleu`` is the beam figure.
BLEU and chrF come from sacrebleu (13a tokenisation) on detokenised output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, write_json  # noqa: E402


def check_correctness() -> dict:
    import torch
    import torch.nn.functional as F

    from rnnkit.data.parallel import PAD
    from rnnkit.tasks import seq2seq as s2s
    from rnnkit.training.recipes.seq2seq import collate

    torch.manual_seed(0)
    cfg = dict(encoder="lstm", hidden_size=8, num_layers=1, bidirectional=True, decoder="lstm", decoder_hidden=8,
               decoder_layers=1, attention="additive", attention_size=8, input_feeding=False, embedding_dim=8,
               dropout=0.0, tie_weights=True, label_smoothing=0.0, teacher_forcing=1.0)
    enc, task = s2s.build(cfg, 30, 30, shared_vocab=True)
    enc, task = enc.double().eval(), task.double().eval()
    srcs = [[5, 6, 7, 8], [9, 10]]
    src, src_len = s2s.pad_batch(srcs)
    worst = 0.0
    with torch.no_grad():
        hyps = s2s.beam_search(enc, task, src, src_len, beam=4, alpha=0.0, max_len=8)
    for h, s in zip(hyps, srcs):
        b = collate([s], [h.tokens])
        with torch.no_grad():
            x, lengths = task.inputs(b)
            y, _ = enc(x, None, lengths)
            logits, _ = task.forward_train(y, b["src_len"], b["tgt_in"], b["tgt_len"])
            slow, _ = task.forward_train(y, b["src_len"], b["tgt_in"], b["tgt_len"], 1.0 - 1e-12)
        if len(h.tokens) < 8:
            ref = float(F.log_softmax(logits, -1)[0].gather(1, b["tgt_out"][0][:, None]).sum())
            worst = max(worst, abs(ref - h.score))
        worst = max(worst, float((logits - slow)[b["tgt_out"] != PAD].abs().max()))
    assert worst < 1e-6, f"decoding disagrees with recomputation by {worst}"
    return {"max_abs_diff": worst}


def baselines(train, test) -> dict:
    from rnnkit.tasks.seq2seq import DictionaryBaseline, bleu_chrf

    t0 = time.perf_counter()
    dic = DictionaryBaseline(train.src, train.tgt)
    out = {"copy_source": bleu_chrf(test.src, test.tgt),
           "dictionary": bleu_chrf(dic.translate(test.src), test.tgt),
           "dictionary_seconds": round(time.perf_counter() - t0, 1)}
    return out


def score_checkpoint(path: Path, test, beam: int) -> dict:
    import rnnkit
    from rnnkit.tasks.seq2seq_metrics import bleu_chrf

    tr = rnnkit.load(path)
    res = {}
    for name, k in (("greedy", 1), (f"beam{beam}", beam)):
        t0 = time.perf_counter()
        hyps = tr.translate(test.src, beam=k, length_penalty=0.6)
        res[name] = {**bleu_chrf(hyps, test.tgt), "seconds": round(time.perf_counter() - t0, 1)}
    res["examples"] = [{"src": s, "ref": r, "greedy": h} for s, r, h in
                       zip(test.src[:3], test.tgt[:3], tr.translate(test.src[:3], beam=1))]
    return res


def train_minutes(out: Path) -> float:
    """Training wall-clock minutes from the Lightning CSV log's first and last rows."""
    log = out / "logs" / "metrics.csv"
    if not log.is_file():
        return float("nan")
    return round((log.stat().st_mtime - (out / "logs").stat().st_ctime) / 60.0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="<= 60 s: correctness, baselines, a 15 s model")
    ap.add_argument("--minutes", type=float, default=50.0, help="training budget of the full run (minutes)")
    ap.add_argument("--checkpoint", type=Path, help="score this run instead of training one")
    ap.add_argument("--out", type=Path, help="where the full run writes its checkpoint")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from rnnkit.data.parallel import multi30k

    t_start = time.perf_counter()
    result = {"machine": machine(), "threads": args.threads, "correctness": check_correctness()}
    train, test = multi30k("train"), multi30k("test")
    result["baselines"] = baselines(train, test)
    bleu_baseline = max(result["baselines"]["copy_source"]["bleu"], result["baselines"]["dictionary"]["bleu"])

    if args.quick:
        from rnnkit.training.config import build_config
        from rnnkit.training.run import train as run_train

        tmp = Path(tempfile.mkdtemp(prefix="s2s-quick-"))
        cfg = build_config({}, {
            "model": {"hidden_size": 64, "decoder_hidden": 96, "embedding_dim": 64, "attention_size": 64,
                      "dropout": 0.1},
            "data": {"limit": 4000, "vocab_size": 2000, "batch_size": 32, "bleu_sentences": 16},
            "optim": {"lr": 3e-3, "warmup_steps": 20},
            "run": {"out": str(tmp / "run"), "max_time": 15 / 60, "val_every": 10_000, "progress": False,
                    "logger": "none", "threads": args.threads, "checkpoint_every": 10_000},
        }, task="seq2seq")
        summary = run_train(cfg)
        sub = test.take(range(100), "multi30k:test[:100]")
        scored = score_checkpoint(tmp / "run", sub, 2)
        result.update(mode="quick", steps=summary["global_step"], test=scored,
                      note="15 s of training on 4,000 pairs: a pipeline check, not a quality figure")
        bleu, greedy = scored["beam2"]["bleu"], scored["greedy"]["bleu"]
    else:
        path = args.checkpoint
        if path is None:
            from rnnkit.training.config import build_config
            from rnnkit.training.run import train as run_train

            path = args.out or Path(tempfile.mkdtemp(prefix="s2s-full-")) / "run"
            cfg = build_config({}, {"run": {"out": str(path), "max_time": args.minutes, "progress": False,
                                            "threads": args.threads, "val_every": 300, "val_batches": 4,
                                            "checkpoint_every": 300},
                                    "optim": {"warmup_steps": 200}}, task="seq2seq")
            run_train(cfg)
        config = json.loads((Path(path) / "config.json").read_text())
        scored = score_checkpoint(Path(path), test, args.beam)
        result.update(mode="full", checkpoint=str(path), steps=config.get("global_step"),
                      val_metrics=config.get("metrics"), train_minutes=train_minutes(Path(path)),
                      model=config["model"], test=scored)
        bleu, greedy = scored[f"beam{args.beam}"]["bleu"], scored["greedy"]["bleu"]
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    write_json("seq2seq-quick" if args.quick else "seq2seq", result)
    emit({"bleu": round(bleu, 2), "bleu_greedy": round(greedy, 2), "bleu_baseline": round(bleu_baseline, 2),
          "bleu_dictionary": round(result["baselines"]["dictionary"]["bleu"], 2),
          "bleu_copy": round(result["baselines"]["copy_source"]["bleu"], 2), "steps": result["steps"],
          "seconds": result["seconds"]})


if __name__ == "__main__":
    main()

"""``rnnkit evaluate CKPT``: score any task's checkpoint on data (dispatch on its task)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError
from .common import limited


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score a checkpoint on data",
                       description="Loss (nats/char) and bits/char of a charlm checkpoint.")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory")
    p.add_argument("--data", default=None,
                   help="named corpus (scores its validation split) or a text file/folder (scored whole); "
                        "default: the corpus the model was trained on")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--threads", type=limited("--threads", "threads"), default=None, help="torch CPU threads")
    sent = p.add_argument_group("sentiment checkpoints")  # --data: a named set or a CSV/TSV/*.pos+*.neg
    sent.add_argument("--split", choices=("train", "val", "test", "all"), default=None,
                      help="split to score (default: test of the training data or a named set; all of another file)")
    sent.add_argument("--baseline", action="store_true", help="also fit TF-IDF + logistic regression on the same training split")
    sent.add_argument("--text-col", default=None, help="text column of --data (default: the training one)")
    sent.add_argument("--label-col", default=None, help="label column of --data (default: the training one)")
    from .translate import add_decoding_flags  # seq2seq: --data multi30k|SRC:TGT|FILE.tsv, --split val/test

    add_decoding_flags(p.add_argument_group("seq2seq checkpoints"))
    from .transcribe import add_asr_decoding_flags  # asr: --data fsdd|MANIFEST, --split val/test, --beam N

    asr = p.add_argument_group("asr checkpoints")
    add_asr_decoding_flags(asr, beam=False)
    asr.add_argument("--fsdd-mode", choices=("connected", "single"), default=None,
                     help="score fsdd as connected-digit utterances or single recordings (default: as trained; "
                          "a model trained on connected digits also reads single ones)")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from .. import checkpoint as ckpt_io

    config = ckpt_io.read_config(Path(args.checkpoint), expect_task=list(EVALUATORS))
    try:
        return EVALUATORS[config["task"]](args)
    except KeyError as e:  # a config.json without what its task writes: mislabelled or hand-edited
        raise ckpt_io.CheckpointError(f"{args.checkpoint}: config.json lacks {e} that a {config['task']!r} "
                                      f"checkpoint holds (corrupt or not written by rnnkit)") from None


def evaluate_charlm(args) -> int:
    from .. import checkpoint as ckpt_io

    ckpt = ckpt_io.load_checkpoint(Path(args.checkpoint), expect_task=["charlm"])
    from .sample import check_charlm_checkpoint

    check_charlm_checkpoint(ckpt)
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ..data.datasets import CORPORA, corpus_path
    from ..data.text import CharVocab, count_unknown, encode_corpus
    from ..tasks import charlm

    vocab = CharVocab.from_json(ckpt.config["data"]["vocab"])
    data = args.data or ckpt.config["data"].get("corpus")
    train_cfg = ckpt.config.get("train", {}).get("data", {})
    if data in CORPORA:
        corpus = encode_corpus(corpus_path(data), name=data)
        _, ids = corpus.split(train_cfg.get("val_fraction", 0.1))
        chars = corpus.vocab.chars
        unknown_counts = {}
        if set(chars) - set(vocab.chars):
            text = corpus.vocab.decode(ids)
            unknown_counts = {c: text.count(c) for c in set(chars) - set(vocab.chars)}
            ids = np.array([vocab.index[c] for c in text if c in vocab.index], dtype=np.int64)
        else:
            remap = np.array([vocab.index[c] for c in chars], dtype=np.int64)
            ids = remap[np.asarray(ids)]
        scope = f"{data} validation split (last {train_cfg.get('val_fraction', 0.1):g})"
    else:
        ids, unknown_counts = count_unknown(corpus_path(data), vocab)
        scope = f"{data} (whole file)"
    if len(ids) < 2:
        raise ConfigError(f"{data}: fewer than 2 in-vocabulary characters to score")
    weights = {k: torch.from_numpy(np.array(v)) for k, v in ckpt.weights.items()}
    encoder, task = charlm.build(ckpt.config["model"], len(vocab))
    torch.nn.ModuleDict({"encoder": encoder, "task": task}).load_state_dict(weights)
    # fixed-window encoders (Transformer, TCN) are scored on the windows they were trained on
    window = 256 if encoder.carries_state else int(train_cfg.get("seq_len", 256))
    loss, n = charlm.score_ids(encoder, task, ids, n_streams=8, seq_len=window)
    result = {"checkpoint": str(args.checkpoint), "data": scope, "loss": loss, "bits_per_char": loss / np.log(2),
              "characters": n, "unknown_characters": int(sum(unknown_counts.values())),
              "unknown": "".join(sorted(unknown_counts))}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{scope}: {loss:.4f} nats/char, {result['bits_per_char']:.4f} bits/char over {n} characters"
              + (f"; {result['unknown_characters']} characters outside the vocabulary skipped ({result['unknown']!r})"
                 if unknown_counts else ""))
    return 0



# task -> function(args) -> exit code; a new task adds its evaluator here
def evaluate_sentiment(args) -> int:
    from .sentiment import evaluate_sentiment as run

    return run(args)


def evaluate_forecast(args) -> int:
    from .backtest import evaluate_forecast as run

    return run(args)


def evaluate_seq2seq(args) -> int:
    from .translate import evaluate_seq2seq as run

    return run(args)


def evaluate_asr(args) -> int:
    from .transcribe import evaluate_asr as run

    return run(args)


EVALUATORS = {"charlm": evaluate_charlm, "sentiment": evaluate_sentiment, "forecast": evaluate_forecast,
              "seq2seq": evaluate_seq2seq, "asr": evaluate_asr}

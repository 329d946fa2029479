"""``rnnkit evaluate CKPT``: score any task's checkpoint on data, through its predictor's ``evaluate()``.

Each option maps to a keyword of the predictor's ``evaluate``; an option the checkpoint's
task does not take is an error naming the task (never silently ignored).
"""

from __future__ import annotations

import inspect
import json
import sys

from ..errors import ConfigError
from . import io
from .common import positive_int

DESCRIPTION = """\
Score a checkpoint of any task on data; the task is read from the checkpoint:
  charlm     loss (nats/char) and bits/char on the validation split of its corpus, or a whole text file
  sentiment  accuracy, macro-F1, ROC-AUC, confusion matrix on its test split, a named set or a labelled file;
             --baseline fits TF-IDF + logistic regression on the same training split
  forecast   rolling-origin backtest over the test period next to naive, drift and ARIMA
             (climatology and logistic regression for events); same as `rnnkit backtest`
  asr        WER, CER (PER for phonemes) and utterance accuracy on FSDD or a manifest
  seq2seq    BLEU and chrF (sacrebleu) on Multi30k or parallel files
"""

# CLI option -> the predictor's evaluate() keyword
KEYWORDS = {"data": "data", "split": "split", "baseline": "baseline", "text_col": "text_col",
            "label_col": "label_col", "no_header": "header", "beam": "beam", "length_penalty": "length_penalty",
            "batch_size": "batch_size", "max_len": "max_len", "no_repeat_ngram": "no_repeat_ngram", "words": "words", "fsdd_mode": "fsdd_mode",
            "season": "season", "arima": "arima"}


def register(sub) -> None:
    import argparse

    p = sub.add_parser("evaluate", help="score a checkpoint of any task on data",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory")
    p.add_argument("--data", default=None,
                   help="what to score (default: what the model was trained on): a named corpus or data set, "
                        "or a file (text, CSV/TSV, manifest, parallel text)")
    p.add_argument("--split", choices=("train", "val", "test", "all"), default=None,
                   help="split to score (sentiment: default test; asr and seq2seq: val or test; forecast: test or val)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--output", metavar="FILE.json", default=None, help="also write the JSON result to FILE")
    p.add_argument("--threads", type=positive_int("--threads"), default=None, help="torch CPU threads")
    sent = p.add_argument_group("sentiment checkpoints")
    sent.add_argument("--baseline", action="store_true", default=None,
                      help="also fit TF-IDF + logistic regression on the same training split")
    sent.add_argument("--text-col", default=None, help="text column of --data (default: the training one)")
    sent.add_argument("--label-col", default=None, help="label column of --data (default: the training one)")
    sent.add_argument("--no-header", action="store_const", const=False, default=None, help="--data has no header line")
    dec = p.add_argument_group("asr and seq2seq checkpoints")
    dec.add_argument("--beam", type=positive_int("--beam"), default=None, help="beam width; 1 = greedy (default: 1)")
    s2s = p.add_argument_group("seq2seq checkpoints")
    s2s.add_argument("--length-penalty", type=float, default=None, help="GNMT length penalty alpha (default: 0.6)")
    s2s.add_argument("--batch-size", type=positive_int("--batch-size"), default=None,
                     help="sentences decoded together (default: 64)")
    s2s.add_argument("--max-len", type=positive_int("--max-len"), default=None,
                     help="longest translation in subwords (default: 2 x source + 10)")
    s2s.add_argument("--no-repeat-ngram", type=positive_int("--no-repeat-ngram"), default=None, metavar="N",
                     help="never repeat an n-gram of N subwords (default: off)")
    asr = p.add_argument_group("asr checkpoints")
    asr.add_argument("--words", default=None, metavar="train|FILE",
                     help="the beam may only spell these words: 'train' or a file of words")
    asr.add_argument("--fsdd-mode", choices=("connected", "single"), default=None,
                     help="score fsdd as connected-digit utterances or single recordings (default: as trained)")
    fc = p.add_argument_group("forecast checkpoints")
    fc.add_argument("--season", type=positive_int("--season"), default=None,
                    help="season length m for the seasonal naive baseline")
    fc.add_argument("--arima", default=None, help="ARIMA order p,d,q, auto (default) or none")
    p.set_defaults(func=cmd_evaluate)


def task_kwargs(args, model) -> dict:
    """The options given, as ``model.evaluate`` keywords; one that it does not take is an error."""
    accepted = set(inspect.signature(model.evaluate).parameters)
    kwargs, refused = {}, []
    for opt, key in KEYWORDS.items():
        value = getattr(args, opt, None)
        if value is None:
            continue
        if key in accepted:
            kwargs[key] = value
        else:
            refused.append("--" + opt.replace("_", "-"))
    if refused:
        takes = sorted("--" + o.replace("_", "-") for o, k in KEYWORDS.items() if k in accepted)
        raise ConfigError(f"{', '.join(refused)} {'does' if len(refused) == 1 else 'do'} not apply to a "
                          f"{model.task!r} checkpoint (it takes {', '.join(takes) or 'no task options'})")
    return kwargs


def cmd_evaluate(args) -> int:
    if args.output:
        io.output_format(args.output)
    from ..predictors import load
    from ..predictors.base import set_threads

    model = load(args.checkpoint)
    set_threads(args.threads)
    result = model.evaluate(**task_kwargs(args, model))
    if args.output:
        io.write_json(result, args.output)
    if args.json:
        print(json.dumps(result))
    else:
        print(model.describe(result))
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0

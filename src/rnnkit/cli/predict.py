"""``rnnkit predict CKPT "text" ...``: label and probability per text from a sentiment checkpoint.

Texts come from the arguments and/or ``--input FILE`` (``-`` = stdin; see :mod:`.io`). Output:
one line per text (``label<TAB>probability<TAB>text``), JSON lines with ``--json``, or
``--output FILE`` (.csv/.tsv/.jsonl/.json) holding the input's columns plus ``label``,
``probability`` and one ``p_<label>`` column per class.
"""

from __future__ import annotations

import sys

from ..errors import ConfigError, DataError
from . import io
from .common import limited

BATCH = 512  # texts per predictor call (the predictor batches by length inside)


def register(sub) -> None:
    p = sub.add_parser("predict", help="classify texts with a sentiment checkpoint",
                       description="Label and probability for each text (sentiment checkpoints).")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory (an --out of rnnkit train sentiment)")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    io.add_input_flags(p, "texts")
    io.add_output_flags(p)
    p.add_argument("--threads", type=limited("--threads", "threads"), default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_predict)


def _rows(args, model):
    """The input rows as a DataFrame and the name of their text column."""
    import pandas as pd

    frames = []
    if args.texts:
        for i, t in enumerate(args.texts):
            if not t.strip():
                raise DataError(f"TEXT argument {i + 1} is empty")
        frames.append(pd.DataFrame({"text": args.texts}))
    col = "text"
    if args.input:
        dc = model.config["data"]
        wanted = args.text_col or ("0" if args.no_header else dc.get("text_col", "text"))
        df, col = io.read_table(args.input, wanted, args.sep, not args.no_header, args.on_error)
        name = "standard input" if args.input == "-" else args.input
        df = io.clean_texts(df, col, name, args.on_error)
        if frames:
            df = df.rename(columns={col: "text"})
            col = "text"
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0], col


def cmd_predict(args) -> int:
    if not args.texts and not args.input:
        raise ConfigError("give texts to classify, or --input FILE ('-' for standard input)")
    fmt = io.output_format(args.output)
    from ..predictors import load
    from ..predictors.base import set_threads

    model = load(args.checkpoint, expect=["sentiment"])
    set_threads(args.threads)
    df, col = _rows(args, model)
    if len(df) == 0:
        raise DataError(f"{'standard input' if args.input == '-' else args.input}: no texts to classify")
    texts = df[col].tolist()
    labels, best, probs = [], [], {n: [] for n in model.labels}

    def work(idx):
        for r in model.predict([texts[i] for i in idx]):
            labels.append(r["label"])
            best.append(r["probability"])
            for n, v in r["probabilities"].items():
                probs[n].append(v)

    def save(done):
        out = df.iloc[:done].copy()
        out["label"], out["probability"] = labels[:done], best[:done]
        for n in model.labels:
            out[f"p_{n}"] = probs[n][:done]
        if fmt:
            io.write_frame(out, args.output, fmt)
        return out

    def partial(done):
        if fmt:
            save(done)
            print(f"rnnkit: {done} of {len(texts)} predictions written to {args.output} before the stop",
                  file=sys.stderr)

    io.run_rows(len(texts), BATCH, work, partial)
    save(len(texts))
    if fmt:
        print(f"wrote {len(texts)} predictions to {args.output}", file=sys.stderr)
    elif args.json:
        extra = [c for c in df.columns if c != col and not str(c).startswith("__")]
        io.print_jsonl({**{c: row[c] for c in extra}, "text": t, "label": lab, "probability": p,
                        "probabilities": {n: probs[n][i] for n in model.labels}}
                       for i, (row, t, lab, p) in enumerate(zip(df.to_dict(orient="records"), texts, labels, best)))
    else:
        for t, lab, p in zip(texts, labels, best):
            print(f"{lab}\t{p:.4f}\t{t}")
    return 0

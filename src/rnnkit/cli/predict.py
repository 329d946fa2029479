"""``rnnkit predict CKPT "text" ...``: label and probability per text from a sentiment checkpoint.

Texts come from the command line and/or ``--input FILE`` (a CSV/TSV with a text column, or a
plain file with one text per line). Output: one line per text (``label<TAB>probability<TAB>text``),
JSON lines with ``--json``, or a CSV with ``--output preds.csv`` (``text, label, probability``
and one ``p_<class>`` column per class), written to a temporary file and renamed into place.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import List

from ..errors import ConfigError, DataError
from .common import limited


def register(sub) -> None:
    p = sub.add_parser("predict", help="classify texts with a sentiment checkpoint",
                       description="Label and probability for each text (sentiment checkpoints).")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory (an --out of rnnkit train sentiment)")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    p.add_argument("--input", metavar="FILE", help="CSV/TSV with a text column, or a .txt file with one text per line")
    p.add_argument("--text-col", default=None, help="text column of --input (default: the training one, else 'text')")
    p.add_argument("--no-header", action="store_true", help="--input has no header line (--text-col is then a 0-based number)")
    p.add_argument("--output", metavar="FILE.csv", help="write predictions to this CSV instead of stdout")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--threads", type=limited("--threads", "threads"), default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_predict)


def read_inputs(path: Path, text_col: str, header: bool) -> List[str]:
    from ..data import sentiment as sd

    if path.suffix.lower() in (".csv", ".tsv", ".tab"):
        table = sd.read_table(path, text_col, None, header, require_labels=False)
        return table.texts
    lines = sd.read_text_file(path).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    empty = [i for i, ln in enumerate(lines) if not ln.strip()]
    if empty:
        raise DataError(f"{path}: {len(empty)} empty line(s) (first at line {empty[0] + 1}); one text per line")
    if not lines:
        raise DataError(f"{path}: no texts")
    return [ln.strip() for ln in lines]


def cmd_predict(args) -> int:
    from .. import checkpoint as ckpt_io

    if not args.texts and not args.input:
        raise ConfigError("give texts to classify, or --input FILE")
    for i, t in enumerate(args.texts):
        if not t.strip():
            raise DataError(f"TEXT argument {i + 1} is empty")
    ckpt = ckpt_io.load_checkpoint(Path(args.checkpoint), expect_task=["sentiment"])
    dc = ckpt.config["data"]
    texts = list(args.texts)
    if args.input:
        text_col = args.text_col or ("0" if args.no_header else dc.get("text_col", "text"))
        texts += read_inputs(Path(args.input), text_col, not args.no_header)
    if args.output:
        out = Path(args.output)
        if out.is_dir():
            raise ConfigError(f"{out}: --output is a directory")
        if not out.parent.exists():
            raise ConfigError(f"{out.parent}: --output's folder does not exist")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ..data import sentiment as sd
    from ..tasks import sentiment as st

    vocab = sd.Vocab.from_json(dc["vocab"])
    ids, _ = sd.encode_texts(vocab, texts, dc["max_tokens"], dc["truncate"])
    encoder, task = st.load_model(ckpt)
    probs = st.predict_proba(encoder, task, ids)
    classes = dc["classes"]
    names = [dc.get("label_names", {}).get(c, c) for c in classes]
    best = probs.argmax(1)
    if args.output:
        import pandas as pd

        df = pd.DataFrame({"text": texts, "label": [names[b] for b in best],
                           "probability": probs[range(len(texts)), best]})
        for j, n in enumerate(names):
            df[f"p_{n}"] = probs[:, j]
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                df.to_csv(f, index=False)
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        print(f"wrote {len(texts)} predictions to {out}", file=sys.stderr)
        return 0
    for t, p, b in zip(texts, probs, best):
        if args.json:
            print(json.dumps({"text": t, "label": names[b], "probability": float(p[b]),
                              "probabilities": {n: float(v) for n, v in zip(names, p)}}))
        else:
            print(f"{names[b]}\t{p[b]:.4f}\t{t}")
    return 0

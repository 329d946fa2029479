"""``rnnkit translate CKPT "a sentence" ...``: translate with a seq2seq checkpoint (``Seq2SeqPredictor``).

Sentences come from the arguments or ``--input FILE`` (one per line, .gz ok, a CSV/TSV with a
``text`` column, or ``-`` for stdin). Output: one translation per line, ``--json`` lines, or
``--output`` (.txt: one per line; .csv/.tsv/.jsonl/.json with the input's columns kept).
"""

from __future__ import annotations

import sys

from ..errors import ConfigError, DataError
from . import io
from .common import bounded, positive_int

BATCH = 256  # sentences per predictor call (it batches by length inside)


def register(sub) -> None:
    p = sub.add_parser("translate", help="translate sentences with a seq2seq checkpoint",
                       description="Translate sentences (arguments, or --input FILE one per line) with a seq2seq "
                                   "checkpoint: greedy, or beam search with --beam K.")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory (an --out of `rnnkit train seq2seq`)")
    p.add_argument("sentences", nargs="*", metavar="SENTENCE", help="sentences to translate")
    io.add_input_flags(p, "sentences")
    io.add_output_flags(p, txt=True)
    add_decoding_flags(p)
    p.add_argument("--attention-plot", metavar="OUT.png", help="draw the attention matrix of the first sentence")
    p.add_argument("--threads", type=positive_int("--threads"), default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_translate)


def add_decoding_flags(p) -> None:
    p.add_argument("--beam", type=positive_int("--beam"), default=1, help="beam width; 1 = greedy (default: 1)")
    p.add_argument("--length-penalty", type=bounded("--length-penalty", float, 0), default=0.6,
                   help="GNMT length penalty alpha of beam search; 0 = raw log-probability (default: 0.6)")
    p.add_argument("--max-len", type=positive_int("--max-len"), default=None,
                   help="longest translation in subwords (default: 2 x the source length + 10)")
    p.add_argument("--no-repeat-ngram", type=bounded("--no-repeat-ngram", int, 0), default=0, metavar="N",
                   help="never repeat an n-gram of N subwords (stops loops like 'Zwei Zwei Zwei'); 0 = off (default)")
    p.add_argument("--batch-size", type=positive_int("--batch-size"), default=64,
                   help="sentences decoded together (default: 64)")


def _rows(args):
    import pandas as pd

    if args.input and args.sentences:
        raise ConfigError("give sentences as arguments or --input FILE, not both")
    if not args.input and not args.sentences:
        raise ConfigError("nothing to translate: give a sentence or --input FILE ('-' for standard input)")
    if args.sentences:
        if any(not t.strip() for t in args.sentences):
            raise ConfigError("empty sentence: every SENTENCE argument must hold some text")
        return pd.DataFrame({"text": args.sentences}), "text"
    df, col = io.read_table(args.input, args.text_col or ("0" if args.no_header else "text"), args.sep,
                            not args.no_header, args.on_error, keep_empty=True)
    df[col] = df[col].fillna("")
    return df, col  # an empty line translates to an empty line: the output stays line-aligned


def cmd_translate(args) -> int:
    from ..fileio import check_output, savefig
    from ..predictors import load
    from ..predictors.base import set_threads

    fmt = io.output_format(args.output, txt=True)
    if args.attention_plot:
        check_output(args.attention_plot)
    df, col = _rows(args)
    if not any(str(t).strip() for t in df[col]):
        raise DataError(f"{args.input}: no text to translate")
    model = load(args.checkpoint, expect=["seq2seq"])
    set_threads(args.threads)
    texts = df[col].tolist()
    out: list = []
    kw = dict(beam=args.beam, max_len=args.max_len, length_penalty=args.length_penalty, batch_size=args.batch_size,
              no_repeat_ngram=args.no_repeat_ngram)

    def work(idx):
        done = model.translate([texts[i] for i in idx], **kw)
        out.extend(done)
        if not fmt:
            if args.json:
                io.print_jsonl({"text": t, "translation": o} for t, o in zip([texts[i] for i in idx], done))
            else:
                sys.stdout.write("".join(o + "\n" for o in done))
                sys.stdout.flush()

    def save(n):
        res = df.iloc[:n].copy()
        res["translation"] = out[:n]
        io.write_frame(res, args.output, fmt, text_col="translation")

    io.run_rows(len(texts), BATCH, work, lambda n: save(n) if fmt else None)
    if fmt:
        save(len(texts))
        print(f"wrote {len(texts)} translations to {args.output}", file=sys.stderr)
    if args.attention_plot:
        import matplotlib.pyplot as plt

        fig = model.plot_attention(texts[0], args.beam, args.max_len, args.length_penalty)
        savefig(fig, args.attention_plot, dpi=120)
        plt.close(fig)
        print(f"attention of sentence 1 drawn to {args.attention_plot}", file=sys.stderr)
    return 0

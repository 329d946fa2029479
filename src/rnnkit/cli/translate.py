"""``rnnkit translate CKPT "a sentence" ...``: translate with a seq2seq checkpoint.

Also holds the seq2seq evaluator of ``rnnkit evaluate`` (BLEU and chrF with sacrebleu).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from ..errors import ConfigError, DataError
from .common import limited


def register(sub) -> None:
    p = sub.add_parser("translate", help="translate sentences with a seq2seq checkpoint",
                       description="Translate sentences (arguments, or --input FILE one per line) with a seq2seq "
                                   "checkpoint: greedy, or beam search with --beam K.")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory (an --out of `rnnkit train seq2seq`)")
    p.add_argument("sentences", nargs="*", metavar="SENTENCE", help="sentences to translate")
    p.add_argument("--input", metavar="FILE", help="translate FILE, one sentence per line (.gz ok; '-' = stdin)")
    p.add_argument("--output", metavar="FILE", help="write translations here, one per line (default: stdout)")
    add_decoding_flags(p)
    p.add_argument("--attention-plot", metavar="OUT.png", help="draw the attention matrix of the first sentence")
    p.add_argument("--threads", type=limited("--threads", "threads"), default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_translate)


def add_decoding_flags(p) -> None:
    p.add_argument("--beam", type=limited("--beam", "translate.beam"), default=1, help="beam width; 1 = greedy (default: 1)")
    p.add_argument("--length-penalty", type=limited("--length-penalty", "length_penalty"), default=0.6,
                   help="GNMT length penalty alpha of beam search; 0 = raw log-probability (default: 0.6)")
    p.add_argument("--batch-size", type=limited("--batch-size", "decode.batch_size"), default=64,
                   help="sentences decoded together (default: 64)")


def _read_input(path: str) -> list:
    from ..data.parallel import read_lines

    if path == "-":
        return [line.strip() for line in sys.stdin.read().splitlines()]
    return read_lines(Path(path))


def cmd_translate(args) -> int:
    if args.input and args.sentences:
        raise ConfigError("give sentences as arguments or --input FILE, not both")
    if not args.input and not args.sentences:
        raise ConfigError("nothing to translate: give a sentence or --input FILE")
    texts = _read_input(args.input) if args.input else list(args.sentences)
    if not args.input and any(not t.strip() for t in texts):
        raise ConfigError("empty sentence: every SENTENCE argument must hold some text")
    if not any(t.strip() for t in texts):
        raise DataError(f"{args.input}: no text to translate")
    from .. import checkpoint as ckpt_io

    ckpt = ckpt_io.load_checkpoint(Path(args.checkpoint), expect_task=["seq2seq"])
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ..tasks.seq2seq import Translator, plot_attention

    tr = Translator(ckpt.config, ckpt.weights)
    out, hyps = tr.translate(texts, beam=args.beam, alpha=args.length_penalty, batch_size=args.batch_size)
    body = "".join(o + "\n" for o in out)
    if args.output:
        dest = Path(args.output)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        except OSError as e:
            raise ConfigError(f"{dest}: --output cannot be written ({e.strerror or e})") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(body)
            os.replace(tmp, dest)  # never a half-written output
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    else:
        sys.stdout.write(body)
        sys.stdout.flush()
    if args.attention_plot:
        first = next(i for i, t in enumerate(texts) if t.strip())
        plot_attention(hyps[first].attention, tr.source_pieces(texts[first]), tr.target_pieces(hyps[first]),
                       args.attention_plot)
        print(f"attention of sentence {first + 1} drawn to {args.attention_plot}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------
# rnnkit evaluate CKPT (seq2seq)


def evaluate_seq2seq(args) -> int:
    """BLEU / chrF (sacrebleu, detokenised) of a checkpoint on parallel data."""
    from .. import checkpoint as ckpt_io
    from ..data import parallel as pd

    ckpt = ckpt_io.load_checkpoint(Path(args.checkpoint), expect_task=["seq2seq"])
    data = args.data or ckpt.config["data"].get("data") or "multi30k"
    split = getattr(args, "split", None)
    if split == "all":
        raise ConfigError("--split all is not available for seq2seq; use train, val or test")
    if data == "multi30k":
        pairs = pd.multi30k(split or "test")
    elif data.startswith("multi30k:"):
        pairs = pd.load_pairs(data)
    else:
        if split not in (None, "test"):
            raise ConfigError(f"--split {split} applies to multi30k; {data} is scored whole")
        pairs = pd.load_pairs(data)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ..tasks.seq2seq import Translator, bleu_chrf

    beam = getattr(args, "beam", 1) or 1
    alpha = getattr(args, "length_penalty", 0.6)
    tr = Translator(ckpt.config, ckpt.weights)
    hyps, _ = tr.translate(pairs.src, beam=beam, alpha=alpha, batch_size=getattr(args, "batch_size", 64) or 64)
    scores = bleu_chrf(hyps, pairs.tgt)
    result = {"checkpoint": str(args.checkpoint), "data": pairs.origin, "decoding": "greedy" if beam == 1 else f"beam {beam}",
              "length_penalty": alpha if beam > 1 else None, **scores}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{pairs.origin}: BLEU {scores['bleu']:.2f}, chrF {scores['chrf']:.2f} over {scores['sentences']} "
              f"sentences ({result['decoding']})")
    return 0

"""``rnnkit sample``: stream text from a charlm checkpoint (torch-free for recurrent encoders).

One prime (``--prime``), or one per line of ``--input FILE`` / ``--input -``; ``--num-samples N``
texts per prime (seeds ``seed``, ``seed + 1``, ...). Plain output streams to stdout as it is
generated; ``--json`` prints ``{"prime", "sample", "text", "seed"}`` per text, ``--output FILE``
writes them (.jsonl/.json/.csv/.tsv, or .txt: the texts one after another).
"""

from __future__ import annotations

import sys

from ..errors import ConfigError
from . import io
from .common import positive_int


def register(sub) -> None:
    p = sub.add_parser("sample", help="generate text from a charlm checkpoint",
                       description="Stream generated text from a charlm checkpoint, carrying the state.")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory (an --out of train)")
    p.add_argument("--prime", default="\n", help="text to start from (default: a newline)")
    p.add_argument("--length", type=int, default=500, help="characters to generate (default: 500)")
    p.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 = greedy (default: 0.8)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the K most likely characters")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling: smallest set with probability >= P, P in (0, 1]")
    p.add_argument("--seed", type=int, default=None, help="random seed (same seed: same text)")
    p.add_argument("--num-samples", type=positive_int("--num-samples"), default=1,
                   help="texts to generate per prime (seeds SEED, SEED+1, ...; default: 1)")
    p.add_argument("--drop-unknown", action="store_true",
                   help="drop characters of the prime that the model does not know (default: refuse them)")
    p.add_argument("--engine", choices=["auto", "numpy", "torch"], default="auto",
                   help="generation engine; auto = NumPy runtime for recurrent encoders (fastest)")
    io.add_input_flags(p, "primes (one per line)", column=False)
    io.add_output_flags(p, txt=True)
    p.add_argument("--threads", type=positive_int("--threads"), default=None, help="torch CPU threads (--engine torch)")
    p.set_defaults(func=cmd_sample)


def _primes(args) -> list:
    if args.input is None:
        return [args.prime]
    df, col = io.read_table(args.input, None, None, on_error=args.on_error)
    return df[col].tolist()


def cmd_sample(args) -> int:
    from ..predictors import load
    from ..errors import InputError
    from ..predictors.base import set_threads

    if args.length <= 0:
        raise ConfigError(f"--length must be > 0, got {args.length}")
    if args.seed is not None and args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    fmt = io.output_format(args.output, txt=True)
    model = load(args.checkpoint, expect=["charlm"])
    set_threads(args.threads)
    primes = _primes(args)
    kw = dict(length=args.length, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
              unknown="drop" if args.drop_unknown else "error", engine=args.engine)
    try:
        for p in primes:
            model.check_prime(p, kw["unknown"])
            if not p and not args.drop_unknown:
                raise ConfigError("--prime must hold at least one character")
        seeds = [None if args.seed is None else args.seed + i for i in range(args.num_samples)]
        if not fmt and not args.json:  # stream as generated
            out = sys.stdout
            for p in primes:
                for seed in seeds:
                    for chunk in model.stream(p, seed=seed, **kw):
                        out.write(chunk)
                        if chunk == "\n":
                            out.flush()
                    out.write("\n")
                    out.flush()
            return 0
        rows = [{"prime": p, "sample": i + 1, "seed": seed, "text": model.sample(p, seed=seed, **kw)}
                for p in primes for i, seed in enumerate(seeds)]
    except InputError as e:  # name the flag: "top_k must be ..." -> "--top-k must be ..."
        first, _, rest = str(e).partition(" ")
        raise ConfigError(f"--{first.replace('_', '-')} {rest}") from None
    if args.json:
        io.print_jsonl(rows)
    if fmt:
        import pandas as pd

        io.write_frame(pd.DataFrame(rows), args.output, fmt, text_col="text")
        print(f"wrote {len(rows)} samples to {args.output}", file=sys.stderr)
    return 0

"""``rnnkit <verb>``: parses options into config dataclasses and calls library code.

Each verb lives in its own module with a ``register(subparsers)`` function, listed in
:data:`VERBS`. torch and Lightning are imported inside the verbs, so ``rnnkit --help``
answers at once. Every user error is one line on stderr, ``rnnkit: error: ...``, with exit
code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

from ..errors import UserError, one_line
from .common import Parser

VERBS = ("rnnkit.cli.train", "rnnkit.cli.sample", "rnnkit.cli.evaluate",
         "rnnkit.cli.predict", "rnnkit.cli.forecast", "rnnkit.cli.backtest",
         "rnnkit.cli.diagnose", "rnnkit.cli.bench", "rnnkit.cli.translate",
         "rnnkit.cli.transcribe", "rnnkit.cli.serve", "rnnkit.cli.export")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = Parser(prog="rnnkit", description="Recurrent sequence models: train, sample, evaluate.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    for name in VERBS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "verb", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"rnnkit: error: {one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except BaseException as e:  # a second Ctrl-C while `train` starts up (training.signals.StopNow)
        if type(e).__name__ != "StopNow":
            raise
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `rnnkit sample ... | head`: the reader went away; not an error
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())

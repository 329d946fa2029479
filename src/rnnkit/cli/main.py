"""``rnnkit <verb>``: parses options into config dataclasses and calls library code.

torch and Lightning are imported inside the verbs, so ``rnnkit --help`` answers at once.
Every user error is one line on stderr, ``rnnkit: error: ...``, with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..errors import ConfigError, UserError


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage dumps."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(name: str):
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {v}")
        return v
    return parse


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    from ..training.config import SECTIONS

    for section, cls in SECTIONS.items():
        group = p.add_argument_group(f"{section} options")
        for f in fields(cls):
            flag = f.metadata.get("flag")
            if not flag:
                continue
            default = f.default
            typ = f.type if isinstance(f.type, str) else str(f.type)
            help_text = f.metadata["help"] + ("" if default is None else f" (default: {default})")
            kwargs: Dict[str, Any] = {"dest": f"{section}.{f.name}", "default": argparse.SUPPRESS, "help": help_text}
            if "bool" in typ:
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                kwargs["type"] = int if ("int" in typ and "float" not in typ) else float if "float" in typ else str
                kwargs["metavar"] = "N" if kwargs["type"] is int else "X" if kwargs["type"] is float else f.name.upper()
                if "choices" in f.metadata:
                    kwargs["choices"] = f.metadata["choices"]
                    kwargs.pop("metavar")
            group.add_argument(flag, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = Parser(prog="rnnkit", description="Recurrent sequence models: train, sample, evaluate.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)

    p = sub.add_parser("train", help="train a model for a task", description="Train a model. Flags override --config.")
    p.add_argument("task", choices=["charlm"], help="task to train (charlm: character-level language model)")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML with model/data/optim/run sections")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR exactly where it stopped")
    p.add_argument("--overwrite", action="store_true", help="replace a checkpoint already in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="generate text from a charlm checkpoint",
                       description="Stream generated text from a charlm checkpoint, carrying the state.")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory (an --out of train)")
    p.add_argument("--prime", default="\n", help="text to start from (default: a newline)")
    p.add_argument("--length", type=int, default=500, help="characters to generate (default: 500)")
    p.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 = greedy (default: 0.8)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the K most likely characters")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling: smallest set with probability >= P, P in (0, 1]")
    p.add_argument("--seed", type=int, default=None, help="random seed (same seed: same text)")
    p.add_argument("--engine", choices=["auto", "numpy", "torch"], default="auto",
                   help="generation engine; auto = NumPy runtime for recurrent encoders (fastest)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("evaluate", help="score a checkpoint on data",
                       description="Loss (nats/char) and bits/char of a charlm checkpoint.")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory")
    p.add_argument("--data", default=None,
                   help="named corpus (scores its validation split) or a text file/folder (scored whole); "
                        "default: the corpus the model was trained on")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--threads", type=_positive_int("--threads"), default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_evaluate)
    return parser


# ---------------------------------------------------------------------------------------


def _overrides(args: argparse.Namespace) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for key, value in vars(args).items():
        if "." in key:
            section, name = key.split(".", 1)
            out.setdefault(section, {})[name] = value
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from ..training.config import build_config, load_yaml

    yaml_values = load_yaml(Path(args.config)) if args.config else {}
    overrides = _overrides(args)
    if args.no_progress:
        overrides.setdefault("run", {})["progress"] = False
    cfg = build_config(yaml_values, overrides)
    if args.resume:
        given = {s: v for s, v in overrides.items() if s in ("model", "data", "optim")}
        if given:
            flags = ", ".join(f"{s}.{k}" for s, d in given.items() for k in d)
            print(f"rnnkit: note: --resume uses the checkpoint's model/data/optim settings; ignoring {flags}",
                  file=sys.stderr)
    from ..training.run import train

    summary = train(cfg, resume=args.resume, overwrite=args.overwrite)
    m = summary.get("metrics", {})
    line = f"done: step {summary['global_step']}, checkpoint {summary['out']}"
    if m.get("val_loss") is not None:
        line += f", val loss {m['val_loss']:.4f} nats/char ({m['val_bpc']:.4f} bits/char)"
    print(line)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .. import checkpoint as ckpt_io
    from ..reference.sampling import SamplingParams

    if args.length <= 0:
        raise ConfigError(f"--length must be > 0, got {args.length}")
    try:
        params = SamplingParams(args.temperature, args.top_k, args.top_p)
    except ValueError as e:
        flag = str(e).split()[0].replace("_", "-")
        raise ConfigError(f"--{flag}{str(e)[len(flag):]}") from None
    ckpt = ckpt_io.load_checkpoint(Path(args.checkpoint), expect_task=["charlm"])
    vocab = ckpt.config["data"]["vocab"]
    unknown = sorted({c for c in args.prime if c not in vocab})
    if unknown:
        raise ConfigError(f"--prime has characters outside the model's vocabulary: {''.join(unknown)!r}")
    if not args.prime:
        raise ConfigError("--prime must hold at least one character")
    from ..reference.generate import generate
    from ..reference.runtime import numpy_stepper, resolve_engine

    try:
        engine = resolve_engine(ckpt.config["model"], args.engine)
    except ValueError as e:
        raise ConfigError(f"--engine: {e}") from None
    if engine == "numpy":
        stepper = numpy_stepper(ckpt.weights, ckpt.config["model"])  # torch is never imported
    else:
        from ..tasks.charlm import make_stepper

        stepper, _ = make_stepper(ckpt.weights, ckpt.config["model"], "torch")
    out = sys.stdout
    out.write(args.prime)
    for ch in generate(stepper, vocab, args.prime, args.length, params, seed=args.seed):
        out.write(ch)
        if ch == "\n":
            out.flush()
    out.write("\n")
    out.flush()
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .. import checkpoint as ckpt_io

    ckpt = ckpt_io.load_checkpoint(Path(args.checkpoint), expect_task=["charlm"])
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
    loss, n = charlm.score_ids(encoder, task, ids, n_streams=8, seq_len=256)
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "verb", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
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

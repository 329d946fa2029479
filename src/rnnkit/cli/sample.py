"""``rnnkit sample``: stream text from a charlm checkpoint (torch-free by default)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ConfigError
from .common import limited


def register(sub) -> None:
    p = sub.add_parser("sample", help="generate text from a charlm checkpoint",
                       description="Stream generated text from a charlm checkpoint, carrying the state.")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint directory (an --out of train)")
    p.add_argument("--prime", default="\n", help="text to start from (default: a newline)")
    p.add_argument("--length", type=limited("--length", "length"), default=500, help="characters to generate (default: 500)")
    p.add_argument("--temperature", type=limited("--temperature", "temperature"), default=0.8, help="softmax temperature; 0 = greedy (default: 0.8)")
    p.add_argument("--top-k", type=limited("--top-k", "top_k"), default=None, help="sample among the K most likely characters")
    p.add_argument("--top-p", type=limited("--top-p", "top_p"), default=None, help="nucleus sampling: smallest set with probability >= P, P in (0, 1]")
    p.add_argument("--seed", type=limited("--seed", "seed"), default=None, help="random seed (same seed: same text)")
    p.add_argument("--engine", choices=["auto", "numpy", "torch"], default="auto",
                   help="generation engine; auto = NumPy runtime for recurrent encoders (fastest)")
    p.set_defaults(func=cmd_sample)



def cmd_sample(args) -> int:
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
    check_charlm_checkpoint(ckpt)
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




def check_charlm_checkpoint(ckpt) -> None:
    """A charlm checkpoint's config and weights agree (the sha256 covers the weights only, so a
    hand-edited config.json could otherwise fail deep inside the model code)."""
    from ..errors import CheckpointError

    where = f"{ckpt.path}/config.json"
    try:
        model, vocab = ckpt.config["model"], ckpt.config["data"]["vocab"]
        kind = str(model["encoder"]).removeprefix("hand-")
        layers, emb_dim = int(model["num_layers"]), int(model["embedding_dim"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: no valid {e} entry for a charlm checkpoint") from None
    if not (isinstance(vocab, list) and vocab and all(isinstance(c, str) and len(c) == 1 for c in vocab)):
        raise CheckpointError(f"{where}: data.vocab must be a list of single characters")
    emb = ckpt.weights.get("task.embedding.weight")
    if emb is None or tuple(emb.shape) != (len(vocab), emb_dim) or "task.head.weight" not in ckpt.weights:
        raise CheckpointError(f"{ckpt.path}: weights do not match config.json (vocabulary of {len(vocab)}, "
                              f"embedding {emb_dim})")
    if kind in ("lstm", "gru", "rnn", "rnn-relu"):
        if f"encoder.weight_hh_l{layers - 1}" not in ckpt.weights or f"encoder.weight_hh_l{layers}" in ckpt.weights:
            raise CheckpointError(f"{ckpt.path}: weights do not hold the {layers} {kind} layers config.json names")

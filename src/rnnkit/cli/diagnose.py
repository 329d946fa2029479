"""``rnnkit diagnose gradients|exploding``: vanishing and exploding gradients, measured and plotted.

    rnnkit diagnose gradients --cells rnn,lstm,gru --seq-len 200 --out DIR
    rnnkit diagnose gradients CKPT --data tinyshakespeare --out DIR
    rnnkit diagnose exploding --out DIR

Each writes a PNG and the numbers as JSON into ``--out`` (see docs/diagnostics.md).
"""

from __future__ import annotations

from ..diagnostics.report import out_dir as _out_dir, write_json as _write_json
from ..errors import ConfigError
from .common import Parser, bounded, name_list, positive_int

CELL_CHOICES = ("rnn", "rnn-relu", "lstm", "gru", "hand-rnn", "hand-rnn-relu", "hand-lstm", "hand-gru")


def _positive_float(name: str):
    return bounded(name, float, 0, inclusive=False)


def _cells(s: str):
    """Recurrent cells (gradient flow needs hidden states h_t)."""
    return name_list("--cells", CELL_CHOICES)(s)


def register(sub) -> None:
    p = sub.add_parser("diagnose", help="gradient flow through time, exploding gradients and clipping",
                       description="Measure and plot vanishing/exploding gradients (PNG + JSON in --out).")
    verbs = p.add_subparsers(dest="what", metavar="WHAT", parser_class=Parser, required=True)

    g = verbs.add_parser("gradients", help="||dL/dh_t|| against t per cell, or for a trained checkpoint",
                         description="Without CKPT: each cell on the adding problem with the loss on the last step, "
                                     "at initialisation and after short training. With CKPT: the trained model on --data.")
    g.add_argument("checkpoint", nargs="?", metavar="CKPT",
                   help="a trained checkpoint of any task with a recurrent encoder (rnn/lstm/gru) to diagnose instead: "
                        "charlm on --data windows of --seq-len characters, the other tasks on their validation split "
                        "with their training loss")
    g.add_argument("--data", default=None, help="with a charlm CKPT: corpus name (its validation split) or a text file; "
                                                "default: the corpus it was trained on")
    g.add_argument("--loss", choices=("last", "all"), default="last",
                   help="with a charlm CKPT: cross-entropy on the last step only (default) or on every step")
    g.add_argument("--cells", type=_cells, default=["rnn", "lstm", "gru"], help="comma-separated cells (default rnn,lstm,gru)")
    g.add_argument("--seq-len", type=positive_int("--seq-len"), default=200, help="time steps T (default 200)")
    g.add_argument("--hidden", type=positive_int("--hidden"), default=64, help="hidden units H (default 64)")
    g.add_argument("--batch-size", type=positive_int("--batch-size"), default=32, help="probe and training batch (default 32)")
    g.add_argument("--train-steps", type=int, default=300, help="short training before the second measurement (0: skip; default 300)")
    g.add_argument("--lr", type=_positive_float("--lr"), default=3e-3, help="Adam learning rate of the short training (default 3e-3)")
    g.add_argument("--lag", type=positive_int("--lag"), default=None,
                   help="report ||dL/dh|| this many steps back (default: 60, or 30%% of --seq-len when that is fewer)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--out", required=True, help="directory for gradients.png and gradients.json")
    g.add_argument("--threads", type=positive_int("--threads"), default=None, help="torch CPU threads")
    g.set_defaults(func=cmd_gradients)

    e = verbs.add_parser("exploding", help="spectral radius > 1 trained with and without clipping",
                         description="A tanh RNN with W_hh scaled to spectral radius --radius, trained with plain SGD "
                                     "without clipping, with norm clipping and with value clipping. With CKPT: the "
                                     "trained model continues on --data the same three ways.")
    e.add_argument("checkpoint", nargs="?", metavar="CKPT",
                   help="a trained checkpoint of any task with a recurrent encoder to use instead (charlm: --data "
                        "windows; other tasks: their validation batches)")
    e.add_argument("--data", default=None, help="with a charlm CKPT: corpus name (its validation split) or a text file")
    e.add_argument("--cell", choices=CELL_CHOICES, default="rnn", help="cell (default rnn, tanh)")
    e.add_argument("--radius", type=_positive_float("--radius"), default=None,
                   help="spectral radius of every W_h* block (default 2.0; with CKPT: unchanged unless given)")
    e.add_argument("--seq-len", type=positive_int("--seq-len"), default=50, help="time steps (default 50)")
    e.add_argument("--hidden", type=positive_int("--hidden"), default=64, help="hidden units (default 64)")
    e.add_argument("--batch-size", type=positive_int("--batch-size"), default=32, help="batch size (default 32)")
    e.add_argument("--steps", type=positive_int("--steps"), default=200, help="SGD steps per run (default 200)")
    e.add_argument("--lr", type=_positive_float("--lr"), default=0.05, help="SGD learning rate (default 0.05)")
    e.add_argument("--clip-norm", type=_positive_float("--clip-norm"), default=1.0, help="global-norm clip (default 1.0)")
    e.add_argument("--clip-value", type=_positive_float("--clip-value"), default=0.05, help="per-element clip (default 0.05)")
    e.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    e.add_argument("--out", required=True, help="directory for exploding.png and exploding.json")
    e.add_argument("--threads", type=positive_int("--threads"), default=None, help="torch CPU threads")
    e.set_defaults(func=cmd_exploding)


def default_lag(seq_len: int) -> int:
    """60 steps back (T = 200, the default), or 30% of a shorter sequence (at least 1, less than T)."""
    return max(1, min(60, int(0.3 * seq_len), seq_len - 1))


def _threads(n) -> None:
    import torch

    torch.set_num_threads(n) if n else None


def cmd_gradients(args) -> int:
    out = _out_dir(args.out)
    if args.train_steps < 0:
        raise ConfigError(f"--train-steps must be >= 0, got {args.train_steps}")
    if args.seq_len < 2:
        raise ConfigError(f"--seq-len must be >= 2 (the gradient is followed back through time), got {args.seq_len}")
    if args.lag is None:
        args.lag = default_lag(args.seq_len)
    elif args.lag >= args.seq_len:
        raise ConfigError(f"--lag ({args.lag}) must be smaller than --seq-len ({args.seq_len})")
    _threads(args.threads)
    from ..diagnostics import experiments as ex

    if args.checkpoint:
        from ..training.probe import load_probe

        result = ex.checkpoint_flow(args.checkpoint, args.data, args.seq_len, args.batch_size, args.loss, args.lag,
                                    load_probe=load_probe)
        png = ex.plot_checkpoint(result, out / "gradients.png")
        _write_json(out / "gradients.json", result)
        for name, rec in result["layers"].items():
            print(f"layer {name[1:]}: ||dL/dh|| at the last step {rec['last']:.3g}, "
                  f"{result['setup']['lag']} steps back {rec['lag']:.3g}")
    else:
        if args.data:
            raise ConfigError("--data needs a checkpoint: rnnkit diagnose gradients CKPT --data ...")
        result = ex.gradients_experiment(args.cells, args.seq_len, args.hidden, args.batch_size, args.train_steps,
                                         args.lr, args.lag, args.seed, log=print)
        png = ex.plot_gradients(result, out / "gradients.png")
        _write_json(out / "gradients.json", result)
        if "lstm_over_rnn_at_lag_init" in result:
            print(f"at initialisation, LSTM / tanh RNN gradient {args.lag} steps back: "
                  f"{result['lstm_over_rnn_at_lag_init']:.3g}x")
    print(f"wrote {png} and {out / 'gradients.json'}")
    return 0


def cmd_exploding(args) -> int:
    out = _out_dir(args.out)
    _threads(args.threads)
    from ..diagnostics import experiments as ex

    if args.checkpoint:
        from ..training.probe import load_probe

        result = ex.exploding_checkpoint(args.checkpoint, args.data, args.radius, args.seq_len, args.batch_size,
                                         args.steps, args.lr, args.clip_norm, args.clip_value, args.seed,
                                         load_probe=load_probe)
    else:
        if args.data:
            raise ConfigError("--data needs a checkpoint: rnnkit diagnose exploding CKPT --data ...")
        result = ex.exploding_experiment(args.cell.replace("hand-", ""), 2.0 if args.radius is None else args.radius,
                                         args.seq_len, args.hidden, args.batch_size, args.steps, args.lr,
                                         args.clip_norm, args.clip_value, args.seed)
    png = ex.plot_exploding(result, out / "exploding.png")
    _write_json(out / "exploding.json", result)
    for mode, r in result["runs"].items():
        state = "DIVERGED" if r["diverged"] else "stable"
        print(f"{mode:>5}: {state} after {r['steps_run']} steps; final loss {r['final_loss']:.4g}, "
              f"max gradient norm {r['max_grad_norm']:.3g}, clipping fired on {100 * r['clip_fraction']:.0f}% of steps")
    print(f"wrote {png} and {out / 'exploding.json'}")
    return 0

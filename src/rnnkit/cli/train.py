"""``rnnkit train TASK``: flags generated from the task's config dataclasses, then training."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

from ..errors import ConfigError, Interrupted
from .common import Parser, add_config_flags, overrides_from

TASK_HELP = {
    "charlm": "character-level language model",
    "sentiment": "text classifier (sentiment) from a CSV/TSV or a named review set",
    "seq2seq": "translation: attentional encoder-decoder RNN (multi30k en->de or parallel files)",
    "asr": "speech recognition with CTC (FSDD digits, a CSV manifest or LibriSpeech-style folder)",
    "forecast": "time-series forecasting: multi-step values, intervals or event probability from a CSV",
}


def register(sub) -> None:
    from ..training.config import TASK_SECTIONS

    p = sub.add_parser("train", help="train a model for a task", description="Train a model for a task.")
    tasks = p.add_subparsers(dest="task", metavar="TASK", parser_class=Parser, required=True)
    for task in TASK_SECTIONS:
        tp = tasks.add_parser(task, help=TASK_HELP.get(task, task),
                              description=f"Train a {task} model ({TASK_HELP.get(task, task)}). Flags override --config.")
        tp.add_argument("--config", metavar="FILE.yaml", help="YAML with task/model/data/optim/run sections")
        tp.add_argument("--resume", metavar="DIR", help="continue the run in DIR exactly where it stopped")
        tp.add_argument("--overwrite", action="store_true", help="replace a checkpoint already in --out")
        tp.add_argument("--no-progress", action="store_true",
                        help="no progress bar: one log line every --log-every steps instead (also when stderr is not a terminal)")
        tp.add_argument("--print-config", action="store_true",
                        help="print the merged configuration (defaults < --config < flags) as YAML and exit without training")
        add_config_flags(tp, task)
        tp.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from ..training.config import build_config, load_yaml

    yaml_values = load_yaml(Path(args.config), args.task) if args.config else {}
    overrides = overrides_from(args)
    if args.no_progress:
        overrides.setdefault("run", {})["progress"] = False
    cfg = build_config(yaml_values, overrides, task=args.task)
    if args.resume:
        given = {sec: {**yaml_values.get(sec, {}), **overrides.get(sec, {})} for sec in ("model", "data", "optim")}
        _refuse_contradictions(args.resume, given)
    if args.print_config:
        import yaml

        if args.resume:
            _adopt_checkpoint_sections(cfg, args.resume)
        sys.stdout.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True))
        return 0
    from ..training.signals import defer_interrupts, end_deferral

    defer_interrupts()  # a Ctrl-C while torch and Lightning import is not lost (training/signals.py)
    try:
        if cfg.run.engine == "numpy":
            from ..training.numpy_engine import train_numpy as train  # never imports torch
        else:
            from ..training.run import train
        summary = train(cfg, resume=args.resume, overwrite=args.overwrite)
    except Interrupted as e:
        if not getattr(e, "resumable", True):
            raise
        raise Interrupted(f"{e}; continue with: {resume_command(args, cfg, cfg.run.out or args.resume)}") from None
    finally:
        end_deferral()
    if summary.get("interrupted"):
        print(f"stopped by {summary['interrupted']} at step {summary['global_step']}; checkpoint saved in "
              f"{summary['out']}; continue with: {resume_command(args, cfg, summary['out'])}")
        return 0
    m = summary.get("metrics", {})
    if summary.get("stopped_early"):
        best = Path(summary["out"]) / "checkpoints" / "best"
        print(f"rnnkit: {summary['stopped_early']}; "
              + (f"the best weights are in {best}" if cfg.run.keep_best else
                 "the checkpoint holds the last weights (--keep-best also keeps the best ones)"),
              file=sys.stderr, flush=True)
    # the result goes to stdout (the progress and notes above went to stderr)
    stopped = " (stopped early)" if summary.get("stopped_early") else ""
    line = f"done: step {summary['global_step']}{stopped}, checkpoint {summary['out']}"
    from ..predictors import predictor_class

    told = predictor_class(cfg.task).summary(m)  # each task words its own metrics (torch-free)
    print(line + (f", {told}" if told else ""))
    return 0


def resume_command(args, cfg, out) -> str:
    """A command that continues the run in ``out``: the same --config, budget and engine
    (the model, data and optimizer settings come from the checkpoint)."""
    import shlex

    words = ["rnnkit", "train", cfg.task, "--resume", str(out)]
    if args.config:
        words += ["--config", args.config]
    if cfg.run.max_steps is not None:
        words += ["--max-steps", str(cfg.run.max_steps)]
    if cfg.run.max_time is not None:
        words += ["--max-time", f"{cfg.run.max_time:g}"]
    if cfg.run.engine != "torch":
        words += ["--engine", cfg.run.engine]
    return shlex.join(words)


def _refuse_contradictions(resume: str, overrides) -> None:
    """On --resume the checkpoint's model/data/optim settings rule; a flag that says otherwise
    is a mistake worth stopping for (a repeated, equal value is fine)."""
    from .. import checkpoint as ckpt_io
    from ..training.config import sections_for

    try:
        config = ckpt_io.read_config(Path(resume))
    except ckpt_io.CheckpointError:
        return  # find_resumable reports the real problem (or falls back to a periodic one)
    saved, task = config.get("train", {}), config["task"]
    flags = {s: {f.name: f.metadata.get("flag") for f in fields(c)}
             for s, c in sections_for(task).items()}
    for section in ("model", "data", "optim"):
        for name, value in overrides.get(section, {}).items():
            old = saved.get(section, {}).get(name)
            if old is not None and value != old and not (isinstance(old, float) and value == float(old)):
                raise ConfigError(f"{resume}: {flags[section][name]} {value} contradicts the checkpoint "
                                  f"({old}); drop the flag to resume, or start a new run")


def _adopt_checkpoint_sections(cfg, resume: str) -> None:
    """On --resume the checkpoint's model/data/optim sections rule (as training would use them)."""
    from .. import checkpoint as ckpt_io

    saved = ckpt_io.read_config(Path(resume)).get("train", {})
    for section in ("model", "data", "optim"):
        if section in saved:
            setattr(cfg, section, type(getattr(cfg, section))(**saved[section]))

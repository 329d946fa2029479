"""Run a training job from a :class:`TrainConfig`: data, model, Lightning trainer, checkpoints."""

from __future__ import annotations

import datetime
import logging
import os
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional

from .. import __version__
from .. import checkpoint as ckpt_io
from ..errors import ConfigError
from .config import TrainConfig


def prepare_out_dir(out: Optional[str], resume: bool, overwrite: bool) -> Path:
    """Validate ``--out`` without touching it (the data is checked before anything is written)."""
    if not out:
        raise ConfigError("--out DIR is required (where checkpoints are written)")
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path}: --out exists and is not a directory")
    if not resume and ckpt_io.has_checkpoint(path) and not overwrite:
        raise ConfigError(f"{path}: already holds a checkpoint; pass --resume {path} to continue or --overwrite to replace it")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{path}: --out is not writable ({ancestor} is not a writable directory)")
    return path


def claim_out_dir(path: Path, resume: bool, overwrite: bool) -> Optional[Path]:
    """Create ``--out`` just before training. With --overwrite, the checkpoint it held is
    moved aside (returned), deleted once the new run has written its first checkpoint and
    put back if the new run fails before that."""
    stash = None
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        if not resume and overwrite and ckpt_io.has_checkpoint(path):
            stash = path / f".overwritten-{os.getpid()}"
            stash.mkdir()
            for name in ckpt_io.CHECKPOINT_ENTRIES:
                if (path / name).exists():
                    os.replace(path / name, stash / name)
    except OSError as e:
        raise ConfigError(f"{path}: --out is not writable ({e.strerror or e})") from None
    ckpt_io.remove_stale_temporaries(path)
    return stash


def restore_stash(path: Path, stash: Optional[Path]) -> None:
    """Put an --overwrite'd checkpoint back when the new run wrote none."""
    if stash is None or not stash.exists():
        return
    import shutil

    if not ckpt_io.has_checkpoint(path):
        fresh = path / "checkpoints"
        if fresh.is_dir() and not ckpt_io.list_step_dirs(path):  # only the failed run's --keep-best weights
            shutil.rmtree(fresh, ignore_errors=True)
        for entry in stash.iterdir():
            os.replace(entry, path / entry.name)
    shutil.rmtree(stash, ignore_errors=True)


def quiet_lightning() -> None:
    """Silence Lightning's tips and the warnings that do not apply to stream training."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.seed", "lightning.pytorch.utilities.seed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*IterableDataset.*__len__.*")
    warnings.filterwarnings("ignore", message=".*LitLogger.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")
    warnings.filterwarnings("ignore", message=".*tensorboardX.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # Lightning vs torch 2.13 pytree API
    warnings.filterwarnings("ignore", message=".*Total length of .* across ranks is zero.*")  # no validation split


def train(cfg: TrainConfig, resume: Optional[str] = None, overwrite: bool = False,
          callbacks: Optional[list] = None) -> Dict[str, Any]:
    """Train (or resume) a model for ``cfg.task``; returns a summary (steps, metrics, out dir)."""
    if cfg.run.engine == "numpy":
        from .numpy_engine import train_numpy

        return train_numpy(cfg, resume=resume, overwrite=overwrite)
    from .recipes import get_recipe

    recipe = get_recipe(cfg.task)
    if cfg.run.max_steps is None and cfg.run.max_time is None:
        raise ConfigError("give a budget: --max-steps N and/or --max-time MINUTES")
    if cfg.run.logger == "tensorboard":
        import importlib.util

        if not (importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")):
            raise ConfigError("--logger tensorboard needs the tensorboard extra: pip install 'rnnkit[tensorboard]'; "
                              "or use --logger csv")
    in_place = resume is not None and (cfg.run.out is None or Path(cfg.run.out).resolve() == Path(resume).resolve())
    out = prepare_out_dir(cfg.run.out or resume, in_place, overwrite)
    resumed = None
    if resume is not None:
        resumed = ckpt_io.find_resumable(Path(resume), expect_task=[cfg.task])
        saved = resumed.config
        for section in ("model", "data", "optim"):
            setattr(cfg, section, type(getattr(cfg, section))(**saved["train"][section]))

    import lightning as L
    import numpy as np
    import torch

    quiet_lightning()
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    L.seed_everything(cfg.run.seed, workers=True, verbose=False)

    from .callbacks import GracefulStop, RnnkitCheckpoint, TimeBudgetHorizon
    from .feedback import feedback_callbacks
    from .progress import note
    from .module import SequenceModule

    start = tuple(resumed.train_meta["data_position"]) if resumed else None
    prep = recipe.prepare(cfg, resumed.config["data"] if resumed else None, start)
    module = SequenceModule(prep.encoder, prep.task, cfg.optim, schedule_horizon=cfg.run.max_steps,
                            max_bad_steps=cfg.run.max_bad_steps, seed=cfg.run.seed)
    if resumed:
        module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in resumed.weights.items()})
        meta = resumed.train_meta
        module.step_offset = int(meta["global_step"])
        module.data_position = start
        # the schedule spans --max-steps global steps when given (the same command after a
        # crash resumes the same plan; a larger --max-steps extends it), else the saved plan
        module.schedule_horizon = cfg.run.max_steps or meta.get("schedule_horizon")
        note(f"resumed from step {module.step_offset}")

    def make_config(mod) -> Dict[str, Any]:
        return {
            "task": cfg.task,
            "rnnkit_version": __version__,
            "model": asdict(cfg.model),
            "data": prep.data_config,
            "train": {"model": asdict(cfg.model), "data": asdict(cfg.data), "optim": asdict(cfg.optim)},
        }

    remaining = None
    if cfg.run.max_steps is not None:
        remaining = cfg.run.max_steps - module.step_offset
        if remaining <= 0:
            print(f"already at step {module.step_offset} >= --max-steps {cfg.run.max_steps}; nothing to do")
            return {"global_step": module.step_offset, "out": str(out), "metrics": {}}

    ckpt_cb = RnnkitCheckpoint(out, cfg.run.checkpoint_every, cfg.run.keep_checkpoints, make_config, resumed,
                               keep_best=cfg.run.keep_best)
    graceful = GracefulStop()
    ckpt_cb.graceful = graceful
    cbs = [graceful, ckpt_cb] + list(callbacks or [])
    if cfg.run.max_time is not None and cfg.run.max_steps is None:
        cbs.append(TimeBudgetHorizon(cfg.run.max_time))
    if getattr(cfg.run, "diagnostics_every", 0):
        from .diagnostics import GradientDiagnostics

        cbs.append(GradientDiagnostics(cfg.run.diagnostics_every, cfg.optim.clip_norm, cfg.optim.clip_value))
    shown, use_bar, patience = feedback_callbacks(cfg.run, cfg.optim.warmup_steps, resumed.train_meta if resumed else None)
    cbs += shown
    if patience is not None:
        ckpt_cb.extra_state["early_stopping"] = patience.state
    logger: Any = False
    # a resumed run logs beside the earlier ones (Lightning would delete an existing metrics.csv)
    log_version = f"resumed-{module.step_offset:07d}" if resumed else ""
    if cfg.run.logger == "csv":
        from lightning.pytorch.loggers import CSVLogger

        logger = CSVLogger(str(out), name="logs", version=log_version)
    elif cfg.run.logger == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        logger = TensorBoardLogger(str(out), name="logs", version=log_version)

    clip_val, clip_alg = None, None
    if cfg.optim.clip_value is not None:
        clip_val, clip_alg = cfg.optim.clip_value, "value"
    elif cfg.optim.clip_norm is not None:
        clip_val, clip_alg = cfg.optim.clip_norm, "norm"
    devices: Any = cfg.run.devices
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        trainer = L.Trainer(
            max_steps=-1 if remaining is None else remaining,
            max_time=None if cfg.run.max_time is None else datetime.timedelta(minutes=cfg.run.max_time),
            accelerator=cfg.run.accelerator, devices=devices, strategy=cfg.run.strategy,
            num_nodes=cfg.run.num_nodes, precision=cfg.run.precision,
            gradient_clip_val=clip_val, gradient_clip_algorithm=clip_alg,
            val_check_interval=cfg.run.val_every, check_val_every_n_epoch=None,
            limit_val_batches=cfg.run.val_batches if cfg.run.val_batches else 1.0,
            num_sanity_val_steps=0, enable_checkpointing=False, enable_model_summary=False,
            enable_progress_bar=use_bar, logger=logger, callbacks=cbs,
            use_distributed_sampler=False, log_every_n_steps=10, default_root_dir=str(out),
        )
    except (ValueError, TypeError, RuntimeError, MisconfigurationException) as e:
        detail = " ".join(str(e).split())
        raise ConfigError(f"Lightning refused --accelerator {cfg.run.accelerator} --devices {cfg.run.devices} "
                          f"--strategy {cfg.run.strategy} --precision {cfg.run.precision}: {detail}") from None
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    ckpt_cb.stash = claim_out_dir(out, in_place, overwrite)
    graceful.install()
    try:
        trainer.fit(module, datamodule=prep.datamodule)
    except SIGTERMException:
        # Lightning stops on SIGTERM in places our per-step save does not reach (validation,
        # the start of a DDP step): the weights sit between steps there, so save them now
        graceful.signal = graceful.signal or 15
        if ckpt_cb.last_saved != module.total_steps:
            ckpt_cb.save(trainer, module)
    finally:
        graceful.restore()
        restore_stash(out, ckpt_cb.stash)
    if graceful.signal is not None:
        return {"global_step": module.total_steps, "out": str(out), "metrics": dict(ckpt_cb.metrics),
                "interrupted": graceful.name}
    # score the final weights, so the checkpoint reports where training ended
    if prep.final_eval is not None and trainer.global_rank == 0:
        metrics = prep.final_eval(module)
        if metrics:
            ckpt_cb.metrics.update(metrics)
            ckpt_cb.save(trainer, module)
    summary = {"global_step": module.total_steps, "out": str(out), "metrics": dict(ckpt_cb.metrics)}
    if patience is not None and patience.stopped_step is not None:
        summary["stopped_early"] = patience.reason()
    return summary

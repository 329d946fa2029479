"""Run a training job from a :class:`TrainConfig`: data, model, Lightning trainer, checkpoints."""

from __future__ import annotations

import datetime
import logging
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional

from .. import __version__
from .. import checkpoint as ckpt_io
from ..errors import ConfigError, Interrupted
from .config import TrainConfig
from .rundir import RunDir, is_rank_zero
from .signals import StopNow, refuse_if_pending


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
    run = RunDir(cfg.run.out, resume, overwrite, keep=cfg.run.keep_checkpoints)
    out = run.path
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

    from .callbacks import GracefulStop, RnnkitCheckpoint
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

    ckpt_cb = RnnkitCheckpoint(run, cfg.run.checkpoint_every, make_config, resumed, keep_best=cfg.run.keep_best)
    graceful = GracefulStop()
    ckpt_cb.graceful = graceful
    from .feedback import feedback_callbacks

    cbs = make_callbacks(cfg, [graceful, ckpt_cb] + list(callbacks or []))
    shown, use_bar, patience = feedback_callbacks(cfg.run, cfg.optim.warmup_steps, resumed.train_meta if resumed else None)
    cbs += shown
    if patience is not None:
        ckpt_cb.extra_state["early_stopping"] = patience.state
    # a resumed run logs beside the earlier ones (Lightning would delete an existing metrics.csv)
    logger = make_logger(cfg, out, f"resumed-{module.step_offset:07d}" if resumed else "")
    trainer = make_trainer(cfg, out, remaining, logger, cbs, use_bar)
    fit(run, trainer, module, prep, ckpt_cb, graceful)
    summary = {"global_step": module.total_steps, "out": str(out), "metrics": dict(ckpt_cb.metrics)}
    if graceful.signal is not None:
        summary["interrupted"] = graceful.name
    if patience is not None and patience.stopped_step is not None:
        summary["stopped_early"] = patience.reason()
    return summary


def make_callbacks(cfg: TrainConfig, cbs: list) -> list:
    """``cbs`` plus the callbacks the run's options ask for."""
    from .callbacks import TimeBudgetHorizon

    if cfg.run.max_time is not None and cfg.run.max_steps is None:
        cbs.append(TimeBudgetHorizon(cfg.run.max_time))
    if getattr(cfg.run, "diagnostics_every", 0):
        from .diagnostics import GradientDiagnostics

        cbs.append(GradientDiagnostics(cfg.run.diagnostics_every, cfg.optim.clip_norm, cfg.optim.clip_value))
    return cbs


def make_logger(cfg: TrainConfig, out: Path, version: str) -> Any:
    if cfg.run.logger == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(str(out), name="logs", version=version)
    if cfg.run.logger == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(str(out), name="logs", version=version)
    return False


def make_trainer(cfg: TrainConfig, out: Path, remaining: Optional[int], logger: Any, cbs: list, use_bar: bool):
    """The Lightning Trainer for the run (a bad accelerator/devices/strategy is one line)."""
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    clip_val, clip_alg = None, None
    if cfg.optim.clip_value is not None:
        clip_val, clip_alg = cfg.optim.clip_value, "value"
    elif cfg.optim.clip_norm is not None:
        clip_val, clip_alg = cfg.optim.clip_norm, "norm"
    devices: Any = cfg.run.devices
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    try:
        return L.Trainer(
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


def fit(run: RunDir, trainer, module, prep, ckpt_cb, graceful) -> None:
    """Train inside the claimed run directory, then score and save the final weights."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    primary = trainer.global_rank == 0 and is_rank_zero()
    refuse_if_pending()
    try:
        with run.claim(primary=primary):
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
            if graceful.signal is None and prep.final_eval is not None and primary:
                # score the final weights, so the checkpoint reports where training ended
                metrics = prep.final_eval(module)
                if metrics:
                    ckpt_cb.metrics.update(metrics)
                    ckpt_cb.save(trainer, module)
            run.require_saved(module.total_steps)
    except StopNow:
        raise Interrupted(f"stopped at once by a second interrupt, without saving step {module.total_steps}; "
                          f"{run.saved_description()}") from None

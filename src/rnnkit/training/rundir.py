"""The run directory (``--out``): one owner for its whole life, shared by both engines.

A run goes through the same stages whichever engine trains it::

    RunDir(out, resume, overwrite)   validate --out; touches nothing (the data is read next)
    with run.claim():                create --out, take its lock, move an --overwrite'd
                                     checkpoint aside, delete temporaries a killed run left
        run.save(step, ...)          a checkpoint (temp dir + rename, top level, pruning)
        run.save_best(...)           --keep-best's weights
    (leaving claim)                  put the --overwrite'd checkpoint back if this run saved
                                     none, remove a --out this run created and left without
                                     a checkpoint, release the lock

**One writer.** ``claim`` holds an exclusive ``fcntl.flock`` on ``OUT/.rnnkit.lock`` for the
whole run; the kernel drops it when the process ends, however it ends. A second writer is
refused (one line naming the PID that holds it, exit 2); a lock file left by a killed run is
taken over with a note. Stale temporaries are removed only while the lock is held, so a
starting run never deletes the temp dir of a live one. Readers (``sample``, ``evaluate``,
``serve``) never take the lock: every checkpoint appears by rename, and a torn top level is
caught by the weights' sha256. Under DDP only rank 0 claims the directory and writes.

**Nothing half-done.** Non-finite weights are never written; :meth:`RunDir.require_saved`
turns "training ended but its weights could not be saved" into an error; a full disk is one
line naming the directory and the space needed, and the previous checkpoint stays intact.

torch-free: the NumPy engine uses it without importing torch.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

from .. import checkpoint as ckpt_io
from ..errors import ConfigError, TrainingDiverged, UserError

LOCK_FILE = ".rnnkit.lock"
STASH_PREFIX = ".overwritten-"
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def is_rank_zero() -> bool:
    """False in the processes DDP launches for ranks >= 1 (they re-run the same command)."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "0").strip() or "0"
        if value != "0":
            return False
    return True


def nonfinite(weights: Dict[str, np.ndarray]) -> List[str]:
    """Names of floating-point arrays holding NaN or infinity."""
    return [k for k, v in weights.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]


class RunLock:
    """An exclusive OS lock on ``DIR/.rnnkit.lock``, holding the owner's PID."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self.fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise ConfigError(f"{self.directory}: --out is not writable ({e.strerror or e})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _read_pid(fd)
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise ConfigError(f"{self.directory}: cannot lock --out ({e.strerror or e})") from None
                who = f"PID {holder}" if holder else "another process"
                raise ConfigError(f"{self.directory}: another rnnkit run ({who}) is writing to this --out; "
                                  f"wait for it to end, or choose another --out") from None
            # the holder may have released and unlinked the file between our open and flock
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_pid(fd)
        if previous and previous != os.getpid():
            print(f"rnnkit: note: {self.directory}: the run with PID {previous} ended without releasing its "
                  f"lock (killed?); taking it over", file=sys.stderr, flush=True)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # unlinked while still held (see acquire)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def _read_pid(fd: int) -> Optional[int]:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class RunDir:
    """``--out`` of one training run: validation, claim/release, checkpoints, best weights."""

    def __init__(self, out: Optional[str], resume: Optional[str] = None, overwrite: bool = False,
                 keep: int = 2) -> None:
        if not (out or resume):
            raise ConfigError("--out DIR is required (where checkpoints are written)")
        self.path = Path(out or resume).expanduser()
        self.in_place = resume is not None and (not out or self.path.resolve() == Path(resume).expanduser().resolve())
        self.overwrite, self.keep = overwrite, keep
        self._validate()
        self.primary = True
        self.last_saved: Optional[int] = None  # the last step this run saved
        self.refused: Optional[tuple] = None  # (step, tensor name) of the last save refused as non-finite
        self.stash: Optional[Path] = None
        self._lock: Optional[RunLock] = None
        self._created: List[Path] = []

    def _validate(self) -> None:
        """Check ``--out`` without touching it (the data is read before anything is written)."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{path}: --out exists and is not a directory")
        if not self.in_place and ckpt_io.has_checkpoint(path) and not self.overwrite:
            raise ConfigError(f"{path}: already holds a checkpoint; pass --resume {path} to continue "
                              f"or --overwrite to replace it")
        ancestor = path
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
            raise ConfigError(f"{path}: --out is not writable ({ancestor} is not a writable directory)")

    # -- claim / release ------------------------------------------------------------------
    @contextmanager
    def claim(self, primary: bool = True) -> Iterator["RunDir"]:
        """Hold ``--out`` for the run (see the module docstring); ``primary=False`` (DDP ranks
        >= 1) claims nothing and writes nothing."""
        self.primary = primary
        if not primary:
            yield self
            return
        self._create()
        self._lock = RunLock(self.path).acquire()  # refused: the directory is the other run's, untouched
        try:
            self._settle_leftovers()
            if not self.in_place and self.overwrite and ckpt_io.has_checkpoint(self.path):
                self._stash_checkpoint()
            yield self
        finally:
            try:
                self._restore_stash()
                self._remove_if_empty()
            finally:
                self._lock.release()
                self._lock = None

    def _create(self) -> None:
        """Create --out and missing parents, remembering only the folders this run made."""
        missing, p = [], self.path
        while not p.exists():
            missing.append(p)
            p = p.parent
        created = []
        for folder in reversed(missing):  # outermost first
            try:
                folder.mkdir()
                created.append(folder)
            except FileExistsError:  # another run made it meanwhile: not ours to remove
                continue
            except OSError as e:
                raise ConfigError(f"{self.path}: --out is not writable ({e.strerror or e})") from None
        if not self.path.is_dir():
            raise ConfigError(f"{self.path}: --out exists and is not a directory")
        self._created = created[::-1] if created and created[-1] == self.path else []  # deepest first

    def _stash_checkpoint(self) -> None:
        """Move the checkpoint an --overwrite replaces aside until this run saves its first."""
        stash = self.path / f"{STASH_PREFIX}{os.getpid()}"
        try:
            stash.mkdir()
            for name in ckpt_io.CHECKPOINT_ENTRIES:
                if (self.path / name).exists():
                    os.replace(self.path / name, stash / name)
        except OSError as e:
            raise ConfigError(f"{self.path}: --out is not writable ({e.strerror or e})") from None
        self.stash = stash

    def _settle_leftovers(self) -> None:
        """Under the lock: temporaries and --overwrite stashes of runs that were killed."""
        ckpt_io.remove_stale_temporaries(self.path)
        restored = False
        for stash in self.path.glob(f"{STASH_PREFIX}*"):
            if stash.is_dir():
                restored = self._put_back(stash) or restored
        if restored and not (self.in_place or self.overwrite):
            raise ConfigError(f"{self.path}: already holds a checkpoint (put back from an --overwrite run that "
                              f"was killed); pass --resume {self.path} to continue or --overwrite to replace it")

    def _restore_stash(self) -> None:
        if self.stash is not None:
            self._put_back(self.stash)
            self.stash = None

    def _put_back(self, stash: Path) -> bool:
        """Restore an --overwrite'd checkpoint when no newer one took its place (True); drop it otherwise."""
        restored = stash.exists() and not ckpt_io.has_checkpoint(self.path)
        if restored:
            fresh = self.path / "checkpoints"
            if fresh.is_dir() and not ckpt_io.list_step_dirs(self.path):  # only a failed run's best/
                shutil.rmtree(fresh, ignore_errors=True)
            for entry in stash.iterdir():
                os.replace(entry, self.path / entry.name)
        shutil.rmtree(stash, ignore_errors=True)
        return restored

    def _remove_if_empty(self) -> None:
        """A --out this run created and left without a checkpoint goes (logs and lock with it)."""
        if not self._created or ckpt_io.has_checkpoint(self.path):
            return
        if self._lock is not None:
            self._lock.release()
        shutil.rmtree(self.path, ignore_errors=True)
        for parent in self._created[1:]:
            try:
                parent.rmdir()
            except OSError:
                break
        self._created = []

    # -- checkpoints ----------------------------------------------------------------------
    def save(self, step: int, weights: Dict[str, np.ndarray], config: Dict[str, Any],
             train_tensors: Dict[str, np.ndarray], train_meta: Dict[str, Any]) -> bool:
        """Write the checkpoint of ``step`` (periodic dir, then the top level; older ones
        pruned). Returns False, with a note, when the weights are not finite."""
        if not self.primary:
            return False
        bad = nonfinite(weights)
        if bad:
            if self.refused is not None and self.refused[0] == step:
                return False  # said already (the final evaluation saves the same step again)
            self.refused = (step, bad[0])
            print(f"rnnkit: step {step}: weights are not finite ({bad[0]}); checkpoint not written",
                  file=sys.stderr, flush=True)
            return False
        config = {**config, "global_step": step}
        target = self.path / "checkpoints" / ckpt_io.step_dir_name(step)
        with self._disk_full(step, weights, train_tensors):
            ckpt_io.write_checkpoint_dir(target, weights, config, train_tensors, train_meta)
            ckpt_io.publish_top_level(target, self.path)
        ckpt_io.prune_step_dirs(self.path, self.keep, protect=[target])
        self.last_saved, self.refused = step, None
        if self.stash is not None:
            shutil.rmtree(self.stash, ignore_errors=True)
            self.stash = None
        return True

    def best_dir(self) -> Path:
        return self.path / "checkpoints" / "best"

    def best_loss(self) -> float:
        """The validation loss of the best weights saved so far (inf when none)."""
        try:
            config = json.loads((self.best_dir() / ckpt_io.CONFIG_FILE).read_text(encoding="utf-8"))
            return float(config["metrics"]["val_loss"])
        except (OSError, ValueError, KeyError, TypeError):
            return float("inf")

    def save_best(self, step: int, weights: Dict[str, np.ndarray], config: Dict[str, Any]) -> bool:
        """Weights and config only (``best_of``): evaluated or sampled, never resumed."""
        if not self.primary or nonfinite(weights):
            return False
        config = {**config, "global_step": step, "best_of": "val_loss"}
        with self._disk_full(step, weights, {}):
            ckpt_io.write_checkpoint_dir(self.best_dir(), weights, config)
        return True

    def require_saved(self, step: int) -> None:
        """Training ended at ``step``: fail unless its weights were saved (non-finite ones never are)."""
        if not self.primary or self.last_saved == step:
            return
        name = self.refused[1] if self.refused else "?"
        raise TrainingDiverged(f"training ended at step {step} with weights that are not finite ({name}); no "
                               f"checkpoint was written for it ({self.saved_description()}); lower the learning "
                               f"rate (--lr) or the weight decay")

    def saved_step(self) -> Optional[int]:
        """The step of the checkpoint at the top level of --out, if there is one."""
        try:
            step = ckpt_io.read_config(self.path).get("global_step")
        except UserError:
            return None
        return step if isinstance(step, int) else None

    def saved_description(self) -> str:
        step = self.saved_step()
        if step is None:
            return f"nothing is saved in {self.path}"
        return f"the last checkpoint in {self.path} is step {step}"

    @contextmanager
    def _disk_full(self, step: int, weights: Dict[str, np.ndarray], tensors: Dict[str, np.ndarray]):
        """ENOSPC / EDQUOT while writing -> one line naming the directory and the space needed
        (the checkpoint was written to a temp dir first: the previous one is untouched)."""
        try:
            yield
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            need = sum(a.nbytes for a in weights.values()) + sum(a.nbytes for a in tensors.values()) + (1 << 16)
            try:
                free = f", {shutil.disk_usage(self.path).free / 1e6:.1f} MB free"
            except OSError:
                free = ""
            last = self.last_saved if self.last_saved is not None else self.saved_step()
            previous = ("nothing was saved before" if last is None
                        else f"the previous checkpoint (step {last}) is intact")
            raise UserError(f"{self.path}: disk full while writing the checkpoint of step {step}: it needs about "
                            f"{need / 1e6:.1f} MB{free}; {previous}; free some space and resume "
                            f"(--resume {self.path})") from None

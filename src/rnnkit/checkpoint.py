"""The rnnkit checkpoint format (torch-free: NumPy + safetensors + JSON only).

A checkpoint is a directory, the same layout for every task::

    model.safetensors        the weights
    config.json              format_version, task, model config, data config, weights_sha256
    train_state.safetensors  optimizer/scheduler tensors, carried RNN state, torch RNG state
    train_state.json         global step, data position, scalar optimizer state, RNG states

``--out DIR`` holds the latest checkpoint at its top level; periodic ones live in
``DIR/checkpoints/step-NNNNNNN/``. Every checkpoint is first written whole into a temporary
directory and renamed into place (atomic on POSIX), then hard-linked to the top level with
``config.json`` replaced last; a reader verifies the weights' sha256, so a torn top level is
detected and :func:`find_resumable` falls back to the newest complete periodic checkpoint.
This module is the format (write one directory, read and verify one); the life of a run
directory around it (lock, --overwrite, pruning, clean-up) is ``training/rundir.py``'s.

No pickle is ever read: files named like pickles, or starting with a pickle/zip header, are
refused before anything else looks at them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from .checkpoint_schema import check_config, check_weights
from .fileio import replace_dir
from .errors import CheckpointError, UserError, shown
from .fileio import check_input, read_bytes_capped


class RefusedCheckpoint(CheckpointError):
    """A checkpoint that must not be used at all (pickle, other task, newer format)."""

FORMAT_VERSION = 1
TASKS = ("charlm", "sentiment", "forecast", "asr", "seq2seq")
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAIN_TENSORS_FILE = "train_state.safetensors"
TRAIN_META_FILE = "train_state.json"
CHECKPOINT_ENTRIES = ("model.safetensors", "config.json", "train_state.safetensors", "train_state.json", "checkpoints")
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")
_STEP_DIR = re.compile(r"^step-(\d{7,})$")


@dataclass
class Checkpoint:
    """A loaded checkpoint: weights as NumPy arrays plus its JSON config (and train state)."""

    path: Path
    config: Dict[str, Any]
    weights: Dict[str, np.ndarray]
    train_meta: Optional[Dict[str, Any]] = None
    train_tensors: Dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.config["task"]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _save_tensors(path: Path, tensors: Dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save

    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    _write_bytes(path, save(arrays))


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8")


def write_checkpoint_dir(
    target: Path,
    weights: Dict[str, np.ndarray],
    config: Dict[str, Any],
    train_tensors: Optional[Dict[str, np.ndarray]] = None,
    train_meta: Optional[Dict[str, Any]] = None,
) -> Path:
    """Write a complete checkpoint directory at ``target`` atomically (temp dir + rename)."""
    for name, arr in weights.items():
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            raise CheckpointError(f"{target}: refusing to write non-finite weights ({name})")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        os.chmod(tmp, 0o755)
        _save_tensors(tmp / MODEL_FILE, weights)
        config = dict(config)
        config["format_version"] = FORMAT_VERSION
        config["weights_sha256"] = sha256_file(tmp / MODEL_FILE)
        if train_meta is not None:
            _save_tensors(tmp / TRAIN_TENSORS_FILE, train_tensors or {})
            train_meta = dict(train_meta)
            train_meta["tensors_sha256"] = sha256_file(tmp / TRAIN_TENSORS_FILE)
            train_meta["weights_sha256"] = config["weights_sha256"]
            _write_bytes(tmp / TRAIN_META_FILE, _json_bytes(train_meta))
        _write_bytes(tmp / CONFIG_FILE, _json_bytes(config))
        _fsync_dir(tmp)
        replace_dir(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def publish_top_level(step_dir: Path, out: Path) -> None:
    """Make ``out``'s top level point at the files of ``step_dir`` (config.json last)."""
    order = [TRAIN_TENSORS_FILE, TRAIN_META_FILE, MODEL_FILE, CONFIG_FILE]
    for name in order:
        src = step_dir / name
        if not src.exists():
            (out / name).unlink(missing_ok=True)
            continue
        tmp = out / f".{name}.tmp-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)
        except OSError:  # filesystems without hard links
            shutil.copyfile(src, tmp)
        os.replace(tmp, out / name)
    _fsync_dir(out)


def remove_stale_temporaries(out: Path) -> None:
    """Delete temp files/dirs a killed writer left behind (never a complete checkpoint).

    Call it only while holding the run directory's lock (``training.rundir.RunDir.claim``):
    a live writer's temporaries look the same as a dead one's."""
    out = Path(out)
    for root in (out, out / "checkpoints"):
        if not root.is_dir():
            continue
        for p in root.iterdir():
            if p.name.startswith(".tmp-") and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.name.startswith(".old-") and p.is_dir():
                # left between the two renames of write_checkpoint_dir: the only complete copy
                # unless its step directory was put in place
                target = root / p.name[len(".old-"):].rsplit("-", 1)[0]
                if target.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    os.replace(p, target)
            elif p.name.startswith(".") and ".tmp-" in p.name and p.is_file():
                p.unlink(missing_ok=True)


def step_dir_name(step: int) -> str:
    return f"step-{step:07d}"


def list_step_dirs(out: Path) -> Sequence[Path]:
    root = Path(out) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def prune_step_dirs(out: Path, keep: int, protect: Sequence[Path] = ()) -> None:
    protect = {Path(p) for p in protect}
    dirs = [d for d in list_step_dirs(out) if d not in protect]
    for d in dirs[: max(0, len(dirs) - max(0, keep - len(protect)))]:
        shutil.rmtree(d, ignore_errors=True)


def has_checkpoint(out: Path) -> bool:
    out = Path(out)
    return (out / CONFIG_FILE).exists() or (out / MODEL_FILE).exists() or bool(list_step_dirs(out))


def _refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise RefusedCheckpoint(
            f"{path}: pickle-based checkpoint ({path.suffix}) refused; rnnkit loads only "
            f"safetensors + JSON checkpoint directories and never unpickles files"
        )
    if path.is_file() and not _looks_like_safetensors(path):
        with open(path, "rb") as f:
            head = f.read(4)
        if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05") or head == b"PK\x03\x04":
            raise RefusedCheckpoint(
                f"{path}: this looks like a pickle/torch.save file; rnnkit never unpickles files"
            )


def _looks_like_safetensors(path: Path) -> bool:
    """safetensors: an 8-byte little-endian header size, then a JSON object."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 8 + n <= size


def _regular(path: Path, what: str) -> Path:
    """``path`` if it is a regular file (a fifo, a device or a directory is refused before
    anything opens it, so nothing hangs or reads /dev/zero); a CheckpointError otherwise."""
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"{path}: missing")
    try:
        return check_input(path, what)
    except UserError as e:
        raise CheckpointError(str(e)) from None


def _load_json(path: Path) -> Dict[str, Any]:
    try:
        obj = json.loads(read_bytes_capped(_regular(path, "checkpoint JSON"), "checkpoint JSON").decode("utf-8"))
    except CheckpointError:
        raise
    except UserError as e:  # larger than the cap for metadata
        raise CheckpointError(str(e)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt JSON ({e.__class__.__name__})") from None
    except RecursionError:
        raise CheckpointError(f"{path}: corrupt JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return obj


def _load_tensors(path: Path) -> Dict[str, np.ndarray]:
    from safetensors.numpy import load

    _refuse_pickle(path)
    _regular(path, "checkpoint tensors")
    try:
        with open(path, "rb") as f:
            return dict(load(f.read()))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except Exception as e:  # safetensors raises its own error types on corrupt headers
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({e})") from None


def read_config(path: Path, expect_task: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Read and validate ``config.json`` of the checkpoint at ``path`` (no weights)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    if path.is_file():
        _refuse_pickle(path)
        raise CheckpointError(f"{path}: a checkpoint is a directory holding {MODEL_FILE} and {CONFIG_FILE}")
    if not path.is_dir():  # a fifo, a device, a socket
        raise CheckpointError(f"{path}: not a directory; a checkpoint is a directory holding {MODEL_FILE} and {CONFIG_FILE}")
    for p in path.iterdir():
        if p.suffix.lower() in PICKLE_SUFFIXES and p.name.split(".")[0] == "model":
            _refuse_pickle(p)
    if not (path / MODEL_FILE).exists() and not (path / CONFIG_FILE).exists():
        raise CheckpointError(f"{path}: not an rnnkit checkpoint (no {MODEL_FILE} / {CONFIG_FILE})")
    config = _load_json(path / CONFIG_FILE)
    version = config.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{path / CONFIG_FILE}: no integer format_version")
    if version > FORMAT_VERSION:
        raise RefusedCheckpoint(
            f"{path}: checkpoint format_version {version} is newer than this rnnkit supports "
            f"({FORMAT_VERSION}); upgrade rnnkit"
        )
    task = config.get("task")
    if task not in TASKS:
        raise CheckpointError(f"{path / CONFIG_FILE}: unknown task {shown(task)}")
    if expect_task is not None and task not in expect_task:
        raise RefusedCheckpoint(
            f"{path}: this is a {task!r} checkpoint; expected {' or '.join(map(repr, expect_task))}"
        )
    check_config(config, str(path / CONFIG_FILE))
    return config


def load_checkpoint(path: Path, expect_task: Optional[Sequence[str]] = None,
                    with_train_state: bool = False) -> Checkpoint:
    """Load a checkpoint directory, verifying the weights' sha256 and the task."""
    path = Path(path)
    config = read_config(path, expect_task)
    model_path = _regular(path / MODEL_FILE, "checkpoint weights")
    digest = sha256_file(model_path)
    if digest != config.get("weights_sha256"):
        raise CheckpointError(
            f"{model_path}: sha256 does not match config.json (corrupt, truncated or mixed checkpoint)"
        )
    ckpt = Checkpoint(path=path, config=config, weights=_load_tensors(model_path))
    check_weights(config, ckpt.weights, str(model_path))  # before anything is built from them
    if with_train_state:
        meta_path = path / TRAIN_META_FILE
        if not meta_path.exists():
            raise CheckpointError(f"{path}: no {TRAIN_META_FILE}; this checkpoint cannot be resumed")
        meta = _load_json(meta_path)
        if meta.get("weights_sha256") != digest:
            raise CheckpointError(f"{meta_path}: belongs to other weights (torn checkpoint)")
        tpath = path / TRAIN_TENSORS_FILE
        if not tpath.exists() or sha256_file(_regular(tpath, "train state")) != meta.get("tensors_sha256"):
            raise CheckpointError(f"{tpath}: missing or does not match {TRAIN_META_FILE}")
        ckpt.train_meta = meta
        ckpt.train_tensors = _load_tensors(tpath)
    return ckpt


def find_resumable(out: Path, expect_task: Optional[Sequence[str]] = None) -> Checkpoint:
    """The newest complete checkpoint under ``out``: its top level, else a periodic one."""
    out = Path(out)
    candidates = [out] + list(reversed(list_step_dirs(out)))
    errors = []
    for cand in candidates:
        try:
            return load_checkpoint(cand, expect_task, with_train_state=True)
        except RefusedCheckpoint:
            raise
        except CheckpointError as e:
            errors.append(str(e))
    raise CheckpointError(f"{out}: no resumable checkpoint ({errors[0] if errors else 'empty'})")


def config_error(where: str, config: Dict[str, Any], e: Exception) -> CheckpointError:
    """The one-line error for a config.json that lacks or garbles what its task writes."""
    if isinstance(e, KeyError):
        return CheckpointError(f"{where}: config.json lacks {str(e)[:100]} that a {config.get('task')!r} checkpoint "
                               "holds (corrupt or not written by rnnkit)")
    return CheckpointError(f"{where}: config.json does not describe a {config.get('task')!r} model "
                           f"({e.__class__.__name__}: {str(e)[:200]})")

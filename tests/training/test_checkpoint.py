from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from rnnkit import checkpoint as C
from rnnkit.errors import CheckpointError
from tests.util import tiny_charlm_parts


def _write(path, task="charlm", meta=True):
    w, config = tiny_charlm_parts()  # a config and weights that agree (rnnkit.checkpoint_schema)
    w["task.head.bias"] = np.arange(3, dtype=np.float32)
    return C.write_checkpoint_dir(path, w, {**config, "task": task}, {"t": np.zeros(3)} if meta else None,
                                  {"global_step": 1} if meta else None)


def test_roundtrip_and_sha(tmp_path):
    d = _write(tmp_path / "ck")
    ck = C.load_checkpoint(d, expect_task=["charlm"], with_train_state=True)
    assert ck.config["format_version"] == C.FORMAT_VERSION
    assert ck.config["weights_sha256"] == C.sha256_file(d / C.MODEL_FILE)
    assert np.array_equal(ck.weights["task.head.bias"], np.arange(3))
    assert ck.train_meta["global_step"] == 1 and "t" in ck.train_tensors
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")], "temp dir removed"


def test_non_finite_weights_are_never_written(tmp_path):
    with pytest.raises(CheckpointError, match="non-finite"):
        C.write_checkpoint_dir(tmp_path / "ck", {"w": np.array([1.0, np.nan], np.float32)}, {"task": "charlm"})
    assert not (tmp_path / "ck").exists()


def test_truncated_weights_are_detected(tmp_path):
    d = _write(tmp_path / "ck")
    data = (d / C.MODEL_FILE).read_bytes()
    (d / C.MODEL_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="sha256 does not match"):
        C.load_checkpoint(d)


def test_corrupt_config_json(tmp_path):
    d = _write(tmp_path / "ck")
    (d / C.CONFIG_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt JSON"):
        C.load_checkpoint(d)


def test_other_task_and_newer_format_are_refused_by_name(tmp_path):
    d = _write(tmp_path / "ck", task="sentiment")
    with pytest.raises(C.RefusedCheckpoint, match="'sentiment' checkpoint; expected 'charlm'"):
        C.load_checkpoint(d, expect_task=["charlm"])
    cfg = json.loads((d / C.CONFIG_FILE).read_text())
    cfg["format_version"] = C.FORMAT_VERSION + 1
    (d / C.CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(C.RefusedCheckpoint, match="newer"):
        C.load_checkpoint(d)


def test_pickles_are_refused_by_name_and_by_content(tmp_path):
    pt = tmp_path / "model.pt"
    pt.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(C.RefusedCheckpoint, match="pickle"):
        C.load_checkpoint(pt)
    d = _write(tmp_path / "ck")
    (d / C.MODEL_FILE).write_bytes(pickle.dumps({"x": 1}, protocol=4))
    with pytest.raises(CheckpointError):
        C.load_checkpoint(d)  # sha mismatch first; content never unpickled
    d2 = tmp_path / "ck2"
    d2.mkdir()
    (d2 / "model.pt").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(C.RefusedCheckpoint, match="pickle"):
        C.load_checkpoint(d2)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        C.load_checkpoint(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not an rnnkit checkpoint"):
        C.load_checkpoint(tmp_path / "empty")


def test_find_resumable_falls_back_to_newest_complete_periodic(tmp_path):
    out = tmp_path / "run"
    s1 = _write(out / "checkpoints" / C.step_dir_name(1))
    C.publish_top_level(s1, out)
    s2 = _write(out / "checkpoints" / C.step_dir_name(2))
    # a crash between replacing model.safetensors and config.json: torn top level
    (out / C.MODEL_FILE).unlink()
    (out / C.MODEL_FILE).write_bytes((s2 / C.MODEL_FILE).read_bytes()[:-3])
    ck = C.find_resumable(out)
    assert ck.path == s2


def test_prune_keeps_the_newest(tmp_path):
    out = tmp_path / "run"
    dirs = [_write(out / "checkpoints" / C.step_dir_name(i), meta=False) for i in range(1, 5)]
    C.prune_step_dirs(out, keep=2, protect=[dirs[-1]])
    assert [d.name for d in C.list_step_dirs(out)] == [C.step_dir_name(3), C.step_dir_name(4)]

"""A checkpoint's config.json is checked against a schema, and its weights against the config,
before anything is built (rnnkit.checkpoint_schema): every task, each field tampered with,
wrong tensors, NaN and integer weights, deep JSON, special files in place of checkpoint files.

Each bad checkpoint is refused with one CheckpointError line naming the key or the tensor,
fast (a config claiming hidden 1e9 never allocates)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest

from rnnkit import checkpoint as C
from rnnkit.errors import CheckpointError
from tests.robustness.conftest import CHECKED

TASKS = ("charlm", "sentiment", "seq2seq", "asr", "forecast")


def _parts(task: str) -> Tuple[Dict[str, np.ndarray], dict]:
    """Weights of a tiny real model of ``task`` (built by the task's own ``build``) and its config."""
    from rnnkit.tasks import asr, charlm, forecast, sentiment, seq2seq
    from rnnkit.training import config as T

    if task == "charlm":
        m = asdict(T.CharLMModelConfig(encoder="lstm", hidden_size=6, num_layers=2, embedding_dim=4))
        enc, head = charlm.build(m, 5)
        data = {"vocab": list("abcde")}
    elif task == "sentiment":
        m = asdict(T.SentimentModelConfig(encoder="gru", hidden_size=6, num_layers=1, embedding_dim=4))
        enc, head = sentiment.build(m, 7, 2)
        data = {"vocab": {"tokens": ["<pad>", "<unk>", "a", "b", "c", "d", "e"]}, "classes": ["neg", "pos"]}
    elif task == "seq2seq":
        m = asdict(T.Seq2SeqModelConfig(hidden_size=6, embedding_dim=4, decoder_hidden=5, attention_size=4))
        enc, head = seq2seq.build(m, 20, 20, True)
        data = {"vocab_sizes": [20, 20], "src_vocab": "AAAA", "tgt_vocab": None}
    elif task == "asr":
        m = asdict(T.ASRModelConfig(encoder="mingru", hidden_size=6, num_layers=2, conv_channels=2, n_mels=8))
        enc, head = asr.build(m, 4)
        data = {"units": {"kind": "chars", "tokens": ["_", "a", "b", " "]}}
    else:
        m = asdict(T.ForecastModelConfig(encoder="transformer", hidden_size=8, num_layers=2))
        enc, head = forecast.build(m, 3, 1, 2, False, [0])
        data = {"target": ["y"]}
    weights = {f"encoder.{k}": v.detach().numpy().copy() for k, v in enc.state_dict().items()}
    weights.update({f"task.{k}": v.detach().numpy().copy() for k, v in head.state_dict().items()})
    return weights, {"task": task, "model": m, "data": data}


@pytest.fixture(scope="module")
def parts():
    return {t: _parts(t) for t in TASKS}


def _save(root: Path, weights, config) -> Path:
    """A checkpoint of exactly these weights (NaN too: written past the writer's finite check,
    with a matching sha256, as a hostile or corrupted file would be)."""
    from safetensors.numpy import save

    d = C.write_checkpoint_dir(root / "ck", {"w": np.zeros(1, np.float32)}, config)
    (d / C.MODEL_FILE).write_bytes(save({k: np.ascontiguousarray(v) for k, v in weights.items()}))
    cfg = json.loads((d / C.CONFIG_FILE).read_text())
    cfg["weights_sha256"] = C.sha256_file(d / C.MODEL_FILE)
    (d / C.CONFIG_FILE).write_text(json.dumps(cfg))
    return d


@pytest.mark.parametrize("task", TASKS)
def test_every_task_loads_its_real_weights(parts, tmp_path, task):
    weights, config = parts[task]
    ck = C.load_checkpoint(_save(tmp_path, weights, config), expect_task=[task])
    assert set(ck.weights) == set(weights) and ck.config["model"] == config["model"]


def _model(**kw):
    def edit(w, c):
        c["model"].update(kw)
    return edit


def _drop_model_key(key):
    def edit(w, c):
        c["model"].pop(key)
    return edit


def _first(prefix):
    return lambda w: sorted(k for k in w if k.startswith(prefix))[0]


def _tensor(edit_array, pick=_first("encoder.")):
    def edit(w, c):
        name = pick(w)
        w[name] = edit_array(w[name])
    return edit


def _nan(a):
    a = a.copy()
    a.flat[0] = np.nan
    return a


CONFIG_CASES = [
    ("hidden doubled", lambda t: _model(hidden_size={"forecast": 16}.get(t, 12)), "hidden_size"),
    ("hidden 1e9", lambda t: _model(hidden_size=10 ** 9), "tensor encoder."),
    ("layers as text", lambda t: _model(num_layers="1"), "model.num_layers (--layers) must be int"),
    ("layers a bool", lambda t: _model(num_layers=True), "model.num_layers"),
    ("layers 0", lambda t: _model(num_layers=0), "model.num_layers (--layers) must be >= 1"),
    ("one layer more", lambda t: _model(num_layers=3), "num_layers 3"),
    ("unknown encoder", lambda t: _model(encoder="lstm-xl"), "model.encoder (--encoder) must be one of"),
    ("other encoder family", lambda t: _model(encoder={"charlm": "gru", "sentiment": "lstm"}.get(t, "rnn")), "tensor encoder."),
    ("dropout out of range", lambda t: _model(dropout=1.5), "model.dropout"),
    ("dropout NaN", lambda t: _model(dropout=float("nan")), "model.dropout"),
    ("unknown model key", lambda t: _model(hiddden=3), "unknown key model.hiddden"),
    ("missing hidden_size", lambda t: _drop_model_key("hidden_size"), "missing key model.hidden_size"),
    ("model not a mapping", lambda t: (lambda w, c: c.update(model=[1])), "model must be dict"),
    ("data missing", lambda t: (lambda w, c: c.pop("data")), "missing key 'data'"),
    ("bad sha256 text", lambda t: (lambda w, c: None), None),  # placeholder replaced below
]
CONFIG_CASES.pop()
TENSOR_CASES = [
    ("a tensor missing", lambda t: (lambda w, c: w.pop(_first("encoder.")(w))), "missing tensor encoder."),
    ("an extra encoder tensor", lambda t: (lambda w, c: w.update({"encoder.weight_hh_l9": np.zeros((2, 2), np.float32)})),
     "encoder"),
    ("a tensor outside encoder/task", lambda t: (lambda w, c: w.update({"\x80\x04pickle.weight": np.zeros(1, np.float32)})),
     "unexpected tensor"),
    ("NaN weight", lambda t: _tensor(_nan), "NaN or infinite"),
    ("infinite weight", lambda t: _tensor(lambda a: np.full_like(a, np.inf)), "NaN or infinite"),
    ("int32 weights", lambda t: _tensor(lambda a: a.astype(np.int32)), "dtype int32"),
    ("float16 weights", lambda t: _tensor(lambda a: a.astype(np.float16)), "dtype float16"),
    ("mis-shaped task head", lambda t: _tensor(lambda a: np.zeros((a.shape[0] + 1, a.shape[1] + 1), np.float32),
                                             pick=lambda w: "task.head.weight"), "task.head.weight"),
    ("transposed encoder weight", lambda t: _tensor(lambda a: np.ascontiguousarray(a.T) if a.ndim == 2 else a[:-1],
                                                    pick=_first("encoder.")), "tensor encoder."),
]


def _check_refused(parts, tmp_path, task, make, needle):
    import copy

    weights, config = copy.deepcopy(parts[task])
    make(task)(weights, config)
    d = _save(tmp_path, weights, config)
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError) as e:
        C.load_checkpoint(d, expect_task=[task])
    CHECKED["n"] += 1
    msg = str(e.value)
    assert time.perf_counter() - t0 < 5
    assert "\n" not in msg and len(msg) < 600, msg
    assert str(d) in msg and needle in msg, msg


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name,make,needle", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_tampered_config_is_refused_naming_the_key(parts, tmp_path, task, name, make, needle):
    _check_refused(parts, tmp_path, task, make, needle)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name,make,needle", TENSOR_CASES, ids=[c[0] for c in TENSOR_CASES])
def test_wrong_weights_are_refused_naming_the_tensor(parts, tmp_path, task, name, make, needle):
    _check_refused(parts, tmp_path, task, make, needle)


@pytest.mark.parametrize("task,edit,needle", [
    ("charlm", lambda c: c["data"].update(vocab=["ab", "c"]), "data.vocab"),
    ("charlm", lambda c: c["data"].update(vocab=list("abcdef")), "task.embedding.weight"),
    ("sentiment", lambda c: c["data"].update(classes=["pos"]), "data.classes"),
    ("sentiment", lambda c: c["data"].update(classes=["a", "b", "c"]), "task.head.weight"),
    ("seq2seq", lambda c: c["data"].update(vocab_sizes=[20, "20"]), "data.vocab_sizes"),
    ("seq2seq", lambda c: c["model"].update(decoder_layers=2), "missing tensor task.decoder."),
    ("seq2seq", lambda c: c["model"].update(decoder="gru"), "task.decoder."),
    ("asr", lambda c: c["data"].update(units={"tokens": []}), "data.units"),
    ("asr", lambda c: c["model"].update(bidirectional=False), "cell_reverse"),
    ("sentiment", lambda c: c["model"].update(bidirectional=False), "_reverse"),
    ("forecast", lambda c: c.update(global_step="7"), "global_step must be int"),
    ("forecast", lambda c: c["model"].update(head="median"), "model.head (--head) must be one of"),
])
def test_task_specific_config_checks(parts, tmp_path, task, edit, needle):
    import copy

    weights, config = copy.deepcopy(parts[task])
    edit(config)
    _check_refused(parts | {task: (weights, config)}, tmp_path, task, lambda t: (lambda w, c: None), needle)


# ---- the files themselves --------------------------------------------------------------------


def _replace(d: Path, name: str, how: str) -> None:
    p = d / name
    p.unlink()
    if how == "fifo":
        os.mkfifo(p)
    elif how == "directory":
        p.mkdir()
    elif how == "/dev/zero":
        p.symlink_to("/dev/zero")
    elif how == "deep JSON":
        p.write_text("[" * 100_000 + "]" * 100_000)
    elif how == "deep JSON object":
        p.write_text('{"a":' * 100_000 + "1" + "}" * 100_000)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", [C.CONFIG_FILE, C.MODEL_FILE])
@pytest.mark.parametrize("how", ["fifo", "directory", "/dev/zero", "deep JSON", "deep JSON object"])
def test_special_files_in_a_checkpoint_are_refused_fast(parts, tmp_path, name, how):
    d = _save(tmp_path, *parts["charlm"])
    _replace(d, name, how)
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError) as e:
        C.load_checkpoint(d)
    CHECKED["n"] += 1
    assert time.perf_counter() - t0 < 10 and "\n" not in str(e.value)
    assert name in str(e.value), e.value


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["fifo", "directory", "/dev/zero"])
def test_special_train_state_files_are_refused(parts, tmp_path, how):
    weights, config = parts["charlm"]
    d = C.write_checkpoint_dir(tmp_path / "ck", weights, config, {"t": np.zeros(2)}, {"global_step": 1})
    _replace(d, C.TRAIN_TENSORS_FILE, how)
    with pytest.raises(CheckpointError, match=C.TRAIN_TENSORS_FILE):
        C.load_checkpoint(d, with_train_state=True)
    CHECKED["n"] += 1


def test_symlinked_checkpoint_files_to_regular_files_load(parts, tmp_path):
    d = _save(tmp_path, *parts["charlm"])
    real = tmp_path / "elsewhere"
    real.mkdir()
    for name in (C.CONFIG_FILE, C.MODEL_FILE):
        os.replace(d / name, real / name)
        (d / name).symlink_to(real / name)
    assert set(C.load_checkpoint(d).weights) == set(parts["charlm"][0])


def test_a_fifo_as_the_checkpoint_itself(tmp_path):
    os.mkfifo(tmp_path / "ck")
    with pytest.raises(CheckpointError, match="not a directory"):
        C.load_checkpoint(tmp_path / "ck")
    CHECKED["n"] += 1


def _model_fields():
    from dataclasses import fields

    from rnnkit.training.config import TASK_SECTIONS

    return [(t, f.name) for t in TASKS for f in fields(TASK_SECTIONS[t]["model"])]


@pytest.mark.parametrize("task,key", _model_fields(), ids=[f"{t}.{k}" for t, k in _model_fields()])
def test_every_model_field_of_every_task_is_type_checked(parts, tmp_path, task, key):
    """Each model key of config.json set to a value of no field's type: refused, naming it."""
    _check_refused(parts, tmp_path, task, lambda t: _model(**{key: {"nested": [1]}}), f"model.{key}")

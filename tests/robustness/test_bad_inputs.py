"""The bad-input suite: every malformed input gets one line naming it and the problem,
exit code 2, no traceback, and no new or partial output file.

Each case builds its input in a fresh directory, runs the CLI in-process and checks all four
properties, not only the exit code. Cases for task loaders (CSV/TSV, audio) live beside
their tasks' tests and use :func:`check_bad_input` from here.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Callable, List, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit import checkpoint as C
from rnnkit.cli.main import main
from tests.robustness.conftest import CHECKED
from tests.util import make_text, tiny_train_args


def _files(root: Path) -> set:
    return {p.relative_to(root) for p in root.rglob("*")}


def check_bad_input(capsys, root: Path, argv: Sequence[str], names: Sequence[str], needle: str = "") -> str:
    """Run ``rnnkit argv``; assert exit 2, one stderr line naming ``names``, no traceback,
    and no file created under ``root``. Returns the message."""
    before = _files(root)
    capsys.readouterr()
    try:
        rc = main(list(argv))
    except SystemExit as e:  # argparse errors
        rc = e.code
    err = capsys.readouterr().err.strip()
    CHECKED["n"] += 1
    assert rc == 2, f"exit {rc}: {err}"
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for n in names:
        assert n in err, f"{n!r} not named in: {err}"
    assert needle.lower() in err.lower(), f"{needle!r} not in: {err}"
    created = _files(root) - before
    assert not created, f"left behind: {sorted(map(str, created))}"
    return err


# ---- a trained checkpoint to corrupt -------------------------------------------------------


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    d = tmp_path_factory.mktemp("good")
    corpus = d / "corpus.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    assert main(tiny_train_args(corpus, d / "ckpt", "--max-steps", "4")) == 0
    return corpus, d / "ckpt"


def _copy_ckpt(good_ckpt: Path, dst: Path) -> Path:
    shutil.copytree(good_ckpt, dst, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    return dst


# ---- corpora (text) --------------------------------------------------------------------------

TEXT_CASES: List[Tuple[str, Callable[[Path], Path], str]] = [
    ("missing file", lambda d: d / "absent.txt", "no such file"),
    ("empty file", lambda d: _w(d / "e.txt", b""), "empty corpus"),
    ("NUL bytes", lambda d: _w(d / "n.txt", b"hello\x00world" * 20), "binary"),
    ("random binary", lambda d: _w(d / "r.bin", bytes(range(256)) * 8), "binary"),
    ("latin-1 text", lambda d: _w(d / "l.txt", "Je suis d\u00e9j\u00e0 l\u00e0. ".encode("latin-1") * 30), "not UTF-8"),
    ("UTF-16 with BOM", lambda d: _w(d / "u16.txt", ("To be or not to be. " * 20).encode("utf-16")), "binary"),
    ("mixed encodings", lambda d: _w(d / "m.txt", "caf\u00e9 ".encode() * 40 + "caf\u00e9".encode("cp1252")), "not UTF-8"),
    ("truncated multibyte at EOF", lambda d: _w(d / "t.txt", "na\u00efve ".encode() * 40 + "\u2603".encode()[:2]), "not UTF-8"),
    ("shorter than one BPTT window", lambda d: _w(d / "s.txt", b"To be, or not to be"), "too short"),
    ("BOM only", lambda d: _w(d / "b.txt", b"\xef\xbb\xbf"), "empty corpus"),
    ("folder without text files", lambda d: _mkdir(d / "nofiles"), "no text files"),
    ("folder with a binary .txt", lambda d: _w(_mkdir(d / "bad") / "x.txt", b"\x00\x01\x02" * 50).parent, "binary"),
    ("device instead of a file", lambda d: Path("/dev/null"), "not a regular file"),
]


def _w(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize("name,make,needle", TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
def test_bad_corpus(tmp_path, capsys, name, make, needle):
    src = make(tmp_path)
    check_bad_input(capsys, tmp_path, tiny_train_args(src, tmp_path / "out", "--max-steps", "2"), [str(src)], needle)


@pytest.mark.parametrize("name,make,needle", TEXT_CASES[:8], ids=[c[0] for c in TEXT_CASES[:8]])
def test_bad_evaluation_text(good, tmp_path, capsys, name, make, needle):
    _, ckpt = good
    src = make(tmp_path)
    check_bad_input(capsys, tmp_path, ["evaluate", str(ckpt), "--data", str(src)], [str(src)],
                    needle if needle != "binary" else "")


# ---- checkpoints -----------------------------------------------------------------------------


def _ckpt_case(mutate: Callable[[Path], Path]):
    return mutate


def _cfg_edit(edit):
    def mutate(d: Path) -> Path:
        cfg = json.loads((d / C.CONFIG_FILE).read_text())
        edit(cfg)
        (d / C.CONFIG_FILE).write_text(json.dumps(cfg))
        return d
    return mutate


CKPT_CASES = [
    ("missing", lambda d: d / "nothing", "no such checkpoint"),
    ("empty directory", lambda d: d.joinpath("emptyckpt").mkdir() or d / "emptyckpt", "not an rnnkit checkpoint"),
    ("config not JSON", lambda d: _w(d / C.CONFIG_FILE, b"{oops").parent, "corrupt JSON"),
    ("config binary", lambda d: _w(d / C.CONFIG_FILE, b"\xff\xfe\x00").parent, "corrupt JSON"),
    ("config a list", lambda d: _w(d / C.CONFIG_FILE, b"[1, 2]").parent, "JSON object"),
    ("config without format_version", _cfg_edit(lambda c: c.pop("format_version")), "format_version"),
    ("newer format", _cfg_edit(lambda c: c.update(format_version=99)), "newer"),
    ("other task", _cfg_edit(lambda c: c.update(task="forecast")), "expected 'charlm'"),
    ("unknown task", _cfg_edit(lambda c: c.update(task="poetry")), "unknown task"),
    ("weights truncated", lambda d: _truncate(d / C.MODEL_FILE) or d, "sha256"),
    ("weights replaced by random bytes", lambda d: _w(d / C.MODEL_FILE, os.urandom(300)).parent, "sha256"),
    ("weights file missing", lambda d: (d / C.MODEL_FILE).unlink() or d, "missing"),
    ("pickle instead of safetensors", lambda d: _pickle_in(d), "pickle"),
    ("a .pt file", lambda d: _w(d / "model.pt", pickle.dumps({"w": [1.0]})), "pickle"),
    ("a .ckpt file", lambda d: _w(d / "last.ckpt", pickle.dumps({"state_dict": {}})), "pickle"),
    ("a plain file", lambda d: _w(d / "weights.safetensors", b"12345678{}"), "directory"),
    ("config without data", _cfg_edit(lambda c: c.pop("data")), "data"),
    ("config layers disagree with weights", _cfg_edit(lambda c: c["model"].update(num_layers=3)), "layers"),
    ("vocabulary not characters", _cfg_edit(lambda c: c["data"].update(vocab=[1, 2])), "vocab"),
    ("hostile safetensors with a matching sha", lambda d: _hostile(d), "safetensors"),
]


def _hostile(d: Path) -> Path:
    """Bytes that pass the sha check but are not a valid safetensors file."""
    data = (8).to_bytes(8, "little") + b'{"a":{"dtype":"F32","shape":[99999999],"data_offsets":[0,4]}}'
    (d / C.MODEL_FILE).write_bytes(data)
    cfg = json.loads((d / C.CONFIG_FILE).read_text())
    cfg["weights_sha256"] = C.sha256_file(d / C.MODEL_FILE)
    (d / C.CONFIG_FILE).write_text(json.dumps(cfg))
    return d


def _truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])


def _pickle_in(d: Path) -> Path:
    (d / C.MODEL_FILE).unlink()
    (d / "model.pt").write_bytes(pickle.dumps({"w": 1}))
    (d / C.CONFIG_FILE).unlink()
    return d


@pytest.mark.parametrize("name,mutate,needle", CKPT_CASES, ids=[c[0] for c in CKPT_CASES])
@pytest.mark.parametrize("verb", ["sample", "evaluate"])
def test_bad_checkpoint(good, tmp_path, capsys, name, mutate, needle, verb):
    _, ckpt = good
    target = mutate(_copy_ckpt(ckpt, tmp_path / "ck"))
    if verb == "evaluate" and name == "other task":
        needle = "unknown key model."  # evaluate takes any task: a mislabelled charlm checkpoint has no forecast model
    check_bad_input(capsys, tmp_path, [verb, str(target)], [str(target)], needle)


def test_resume_from_a_checkpoint_without_train_state(good, tmp_path, capsys):
    corpus, ckpt = good
    d = _copy_ckpt(ckpt, tmp_path / "ck")
    (d / C.TRAIN_META_FILE).unlink()
    check_bad_input(capsys, tmp_path, tiny_train_args(corpus, d, "--max-steps", "6", "--resume", str(d)),
                    [str(d)], "no resumable checkpoint")


def test_resume_with_contradicting_flags(good, tmp_path, capsys):
    corpus, ckpt = good
    d = _copy_ckpt(ckpt, tmp_path / "ck")
    argv = tiny_train_args(corpus, d, "--max-steps", "6", "--resume", str(d))
    argv[argv.index("--hidden") + 1] = "24"
    check_bad_input(capsys, tmp_path, argv, [str(d), "--hidden 24"], "contradicts")


# ---- configs ---------------------------------------------------------------------------------

CONFIG_CASES = [
    ("unknown section", "modle:\n  hidden_size: 8\n", "unknown section"),
    ("unknown key", "model:\n  hiden_size: 8\n", "unknown key"),
    ("wrong type", "model:\n  hidden_size: big\n", "must be int"),
    ("float for int", "model:\n  num_layers: 1.5\n", "must be int"),
    ("negative size", "model:\n  hidden_size: -4\n", "--hidden must be >= 1"),
    ("zero batch", "data:\n  batch_size: 0\n", "--batch-size must be >= 1"),
    ("bad YAML", "model: {hidden_size: 8\n", "invalid YAML"),
    ("not a mapping", "- model\n- data\n", "expected a mapping"),
    ("section not a mapping", "model: 5\n", "must be a mapping"),
    ("other task", "task: forecast\n", "trains 'charlm'"),
    ("binary file", None, "cannot read config"),
]


@pytest.mark.parametrize("name,text,needle", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config(tiny_corpus, tmp_path, capsys, name, text, needle):
    cfg = tmp_path / "run.yaml"
    if text is None:
        cfg.write_bytes(b"\xff\xfe\xfa\x00\x01")
    else:
        cfg.write_text(text)
    argv = ["train", "charlm", "--config", str(cfg), "--data", str(tiny_corpus), "--out", str(tmp_path / "out"),
            "--max-steps", "2", "--no-progress"]
    check_bad_input(capsys, tmp_path, argv, [str(cfg)], needle)


def test_missing_config_file(tiny_corpus, tmp_path, capsys):
    cfg = tmp_path / "absent.yaml"
    check_bad_input(capsys, tmp_path, tiny_train_args(tiny_corpus, tmp_path / "out", "--config", str(cfg)),
                    [str(cfg)], "no such config")


# ---- command-line arguments ------------------------------------------------------------------

TRAIN_FLAG_CASES = [
    ("--hidden", "0"), ("--layers", "-1"), ("--dropout", "1.0"), ("--lr", "0"), ("--seq-len", "0"),
    ("--batch-size", "-3"), ("--val-fraction", "1.5"), ("--max-time", "-1"), ("--max-steps", "0"),
    ("--threads", "0"), ("--embedding-dim", "0"), ("--warmup-steps", "-1"), ("--clip-norm", "-2"),
    ("--clip-value", "0"), ("--checkpoint-every", "0"), ("--encoder", "transformer-xl"),
    ("--hidden", "seven"), ("--lr", "fast"), ("--devices", "abc"), ("--strategy", "foo"),
    ("--accelerator", "quantum"), ("--max-time", "inf"), ("--max-time", "nan"), ("--precision", "8-bit"),
    ("--weight-decay", "-1"), ("--max-bad-steps", "0"), ("--num-nodes", "0"),
]


@pytest.mark.parametrize("flag,value", TRAIN_FLAG_CASES, ids=[f"{f}={v}" for f, v in TRAIN_FLAG_CASES])
def test_bad_train_flag(tiny_corpus, tmp_path, capsys, flag, value):
    argv = tiny_train_args(tiny_corpus, tmp_path / "out", "--max-steps", "2", flag, value)
    check_bad_input(capsys, tmp_path, argv, [flag])


SAMPLE_FLAG_CASES = [("--length", "0"), ("--length", "-1"), ("--temperature", "-0.5"), ("--top-k", "0"),
                     ("--top-p", "0"), ("--top-p", "1.5"), ("--prime", "KING\u2603"), ("--engine", "jax")]


@pytest.mark.parametrize("flag,value", SAMPLE_FLAG_CASES, ids=[f"{f}={v}" for f, v in SAMPLE_FLAG_CASES])
def test_bad_sample_flag(good, tmp_path, capsys, flag, value):
    _, ckpt = good
    check_bad_input(capsys, tmp_path, ["sample", str(ckpt), flag, value], [flag])


def test_out_is_a_file_and_out_under_a_file(tiny_corpus, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    check_bad_input(capsys, tmp_path, tiny_train_args(tiny_corpus, f, "--max-steps", "2"), [str(f)], "not a directory")
    check_bad_input(capsys, tmp_path, tiny_train_args(tiny_corpus, f / "sub", "--max-steps", "2"),
                    [str(f / "sub")], "not writable")


def test_out_holding_a_checkpoint(good, tmp_path, capsys):
    corpus, ckpt = good
    d = _copy_ckpt(ckpt, tmp_path / "ck")
    check_bad_input(capsys, tmp_path, tiny_train_args(corpus, d, "--max-steps", "2"), [str(d)], "--overwrite")


def test_overwrite_keeps_the_old_checkpoint_when_the_data_is_bad(good, tmp_path, capsys):
    _, ckpt = good
    d = _copy_ckpt(ckpt, tmp_path / "ck")
    before = (d / C.MODEL_FILE).read_bytes()
    bad = _w(tmp_path / "bad.txt", b"\x00" * 100)
    check_bad_input(capsys, tmp_path, tiny_train_args(bad, d, "--max-steps", "2", "--overwrite"), [str(bad)], "binary")
    assert (d / C.MODEL_FILE).read_bytes() == before


# ---- generated inputs ------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=60).map(lambda t: t.encode("utf-8"))))
def test_random_bytes_as_a_corpus(tmp_path_factory, capsys, data):
    """Whatever the bytes: a model trains on them, or one clean line says why not."""
    root = tmp_path_factory.mktemp("rand")
    src = _w(root / "random.txt", data)
    argv = ["train", "charlm", "--data", str(src), "--out", str(root / "out"), "--hidden", "4", "--layers", "1",
            "--embedding-dim", "4", "--batch-size", "1", "--seq-len", "2", "--val-fraction", "0.2",
            "--max-steps", "1", "--no-progress", "--logger", "none", "--warmup-steps", "0"]
    before = _files(root)
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    CHECKED["n"] += 1
    if rc == 0:
        assert C.load_checkpoint(root / "out").config["task"] == "charlm"
    else:
        assert rc == 2 and len(err.splitlines()) == 1 and str(src) in err and "Traceback" not in err, err
        assert _files(root) == before


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_random_yaml_is_accepted_or_refused_cleanly(tmp_path_factory, text):
    from rnnkit.errors import ConfigError
    from rnnkit.training.config import build_config, load_yaml

    root = tmp_path_factory.mktemp("yaml")
    cfg = root / "c.yaml"
    cfg.write_text(text, encoding="utf-8")
    try:
        build_config(load_yaml(cfg, "charlm"), {}, task="charlm")
    except ConfigError as e:
        assert "\n" not in str(e) and str(cfg) in str(e) or str(e).startswith("--")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=400))
def test_random_bytes_as_checkpoint_files(good, tmp_path_factory, capsys, data):
    _, ckpt = good
    root = tmp_path_factory.mktemp("ck")
    d = _copy_ckpt(ckpt, root / "ck")
    (d / C.MODEL_FILE).write_bytes(data)
    check_bad_input(capsys, root, ["sample", str(d)], [str(d)])

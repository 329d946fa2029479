"""Bad exports and unexportable checkpoints: one line, exit 2 (CheckpointError in Python),
nothing written. The corrupt directories are copies of a good export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rnnkit import checkpoint as C
from rnnkit.errors import CheckpointError, ExportError
from rnnkit.export.onnx_runtime import load_net
from tests.export.conftest import variant
from tests.robustness.test_bad_inputs import check_bad_input


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _reseal(d: Path, name: str) -> None:
    """Make config.json list the current sha256 of ``name`` (a consistent but altered export)."""
    cfg = json.loads((d / "config.json").read_text())
    cfg["export"]["files"][name] = C.sha256_file(d / name)
    (d / "config.json").write_text(json.dumps(cfg))


def _one_line(excinfo, *needles: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    return msg


def test_corrupt_onnx_is_one_line(exported, tmp_path):
    d = _copy(exported["sentiment"], tmp_path / "e")
    (d / "model.onnx").write_bytes(b"\x08\x07garbage, not a protobuf graph" * 10)
    _reseal(d, "model.onnx")
    with pytest.raises(CheckpointError) as e:
        load_net(d)
    _one_line(e, "model.onnx", "not a loadable ONNX graph")


def test_sha256_mismatch_is_refused_before_loading(exported, tmp_path):
    d = _copy(exported["charlm"], tmp_path / "e")
    with open(d / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(CheckpointError) as e:
        load_net(d)
    _one_line(e, "model.onnx", "sha256 does not match")


def test_missing_graph_file(exported, tmp_path):
    d = _copy(exported["seq2seq"], tmp_path / "e")
    (d / "decoder_step.onnx").unlink()
    with pytest.raises(CheckpointError) as e:
        load_net(d)
    _one_line(e, "decoder_step.onnx", "missing")


def test_graph_of_another_task_is_refused(exported, tmp_path):
    d = _copy(exported["charlm"], tmp_path / "e")
    shutil.copyfile(exported["sentiment"] / "model.onnx", d / "model.onnx")
    _reseal(d, "model.onnx")
    with pytest.raises(CheckpointError) as e:
        load_net(d)
    _one_line(e, "model.onnx", "do not match", "['ids', 'lengths']")


def test_export_of_another_task_than_expected(exported):
    with pytest.raises(CheckpointError) as e:
        load_net(exported["sentiment"], expect_task=["charlm"])
    _one_line(e, "'sentiment'", "'charlm'")


def test_a_checkpoint_is_not_an_export(trained):
    with pytest.raises(CheckpointError) as e:
        load_net(trained["forecast"])
    _one_line(e, "not an ONNX export")


def test_export_section_listing_other_graphs(exported, tmp_path):
    d = _copy(exported["asr"], tmp_path / "e")
    cfg = json.loads((d / "config.json").read_text())
    cfg["task"] = "seq2seq"  # an asr export relabelled
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as e:
        load_net(d)
    msg = _one_line(e, "seq2seq")  # refused by the config schema (an asr model section) or by the missing graphs
    assert "encoder.onnx" in msg or "unknown key model." in msg, msg


@pytest.mark.parametrize("task,encoder,needle", [
    ("sentiment", "mingru", "logcumsumexp"),
    ("forecast", "minlstm", "logcumsumexp"),
    ("charlm", "transformer", "recurrent state"),
    ("charlm", "tcn", "recurrent state"),
])
def test_unexportable_encoder_exit_2_nothing_written(trained, tmp_path, capsys, task, encoder, needle):
    extra = {"num_layers": 1} if encoder in ("transformer", "tcn") else {}
    ck = variant(trained[task], tmp_path / "ck", encoder=encoder, **extra)
    err = check_bad_input(capsys, tmp_path, ["export", str(ck), "--out", str(tmp_path / "out")],
                          [str(ck), repr(encoder)], needle)
    assert err.startswith("rnnkit: error: ")


def test_exporting_an_export_or_over_a_checkpoint(trained, exported, tmp_path, capsys):
    check_bad_input(capsys, tmp_path, ["export", str(exported["charlm"]), "--out", str(tmp_path / "o")],
                    [str(exported["charlm"])], "already an ONNX export")
    ck = _copy(trained["charlm"], tmp_path / "ck")
    before = C.sha256_file(ck / "model.safetensors")
    check_bad_input(capsys, tmp_path, ["export", str(trained["sentiment"]), "--out", str(ck), "--overwrite"],
                    [str(ck)], "not an ONNX export")
    assert C.sha256_file(ck / "model.safetensors") == before


def test_export_over_an_export_needs_overwrite(trained, tmp_path, capsys):
    from rnnkit.cli.main import main

    out = tmp_path / "out"
    assert main(["export", str(trained["forecast"]), "--out", str(out), "--no-check"]) == 0
    check_bad_input(capsys, tmp_path, ["export", str(trained["forecast"]), "--out", str(out)], [str(out)], "--overwrite")
    assert main(["export", str(trained["forecast"]), "--out", str(out), "--overwrite"]) == 0
    assert "self_check" in json.loads((out / "config.json").read_text())["export"]


def test_failed_self_check_writes_nothing(trained, tmp_path, monkeypatch):
    from rnnkit.export import selfcheck
    from rnnkit.export.onnx_export import export_onnx

    monkeypatch.setattr(selfcheck, "TOLERANCE", -1.0)  # nothing can pass
    with pytest.raises(ExportError) as e:
        export_onnx(trained["sentiment"], tmp_path / "out")
    _one_line(e, "self-check", "nothing was written")
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_export_without_the_extra_is_one_line(trained, tmp_path, capsys, monkeypatch, missing):
    import sys

    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` raises ImportError
    check_bad_input(capsys, tmp_path, ["export", str(trained["charlm"]), "--out", str(tmp_path / "o")],
                    [missing, "rnnkit[export]"])


def test_loading_an_export_without_onnxruntime_is_one_line(exported, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    check_bad_input(capsys, tmp_path, ["predict", str(exported["sentiment"]), "fine"],
                    [str(exported["sentiment"]), "onnxruntime", "rnnkit[export]"])

"""The inference verbs' one input/output convention (cli/io.py) on tiny real checkpoints."""

from __future__ import annotations

import io
import json
import shutil
import sys

import pandas as pd
import pytest

from rnnkit.cli.main import main


def run(capsys, argv, stdin: str = None):
    capsys.readouterr()
    old = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        rc = main(argv)
    finally:
        sys.stdin = old
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def test_delimiters_are_sniffed_or_given(tiny, capsys, tmp_path):
    ck = str(tiny["sentiment"])
    for sep, name in ((";", "semi.csv"), ("|", "pipe.csv"), ("\t", "tab.tsv")):
        p = tmp_path / name
        p.write_text(f"id{sep}text\n1{sep}superb fun\n2{sep}dull and tedious\n", encoding="utf-8")
        rc, out, _ = run(capsys, ["predict", ck, "--input", str(p), "--json"])
        assert rc == 0 and [json.loads(x)["id"] for x in out.splitlines()] == ["1", "2"]
    odd = tmp_path / "odd.csv"
    odd.write_text("id#text\n1#superb fun\n", encoding="utf-8")
    rc, out, _ = run(capsys, ["predict", ck, "--input", str(odd), "--sep", "#", "--json"])
    assert rc == 0 and json.loads(out)["text"] == "superb fun"


def test_bad_rows_stop_with_file_and_line_or_are_skipped(tiny, capsys, tmp_path):
    ck = str(tiny["sentiment"])
    p = tmp_path / "rows.csv"
    p.write_text("id,text\n1,superb fun\n2,\n3,dull\n4,a,b,c\n", encoding="utf-8")
    rc, _, err = run(capsys, ["predict", ck, "--input", str(p)])
    assert rc == 2 and "rows.csv, line 5" in err and "--on-error skip" in err
    rc, out, err = run(capsys, ["predict", ck, "--input", str(p), "--on-error", "skip", "--json"])
    assert rc == 0 and [json.loads(x)["id"] for x in out.splitlines()] == ["1", "3"]
    assert "line 3" in err and "line 5" in err and "skipped" in err
    jl = tmp_path / "in.jsonl"
    jl.write_text('{"text": "superb fun", "k": 1}\nnot json\n', encoding="utf-8")
    rc, _, err = run(capsys, ["predict", ck, "--input", str(jl)])
    assert rc == 2 and "in.jsonl, line 2: not a JSON object" in err
    rc, out, _ = run(capsys, ["predict", ck, "--input", str(jl), "--on-error", "skip", "--json"])
    assert rc == 0 and json.loads(out)["k"] == 1
    empty = tmp_path / "empty.csv"
    empty.write_text("\n", encoding="utf-8")
    rc, _, err = run(capsys, ["predict", ck, "--input", str(empty)])
    assert rc == 2 and "empty.csv: empty (nothing to read)" in err
    bom = tmp_path / "bom.csv"  # a BOM, CRLF line ends, quoted separators and newlines
    bom.write_bytes(b'\xef\xbb\xbfid,text\r\n1,"superb, fun"\r\n2,"dull\nand tedious"\r\n')
    rc, out, _ = run(capsys, ["predict", ck, "--input", str(bom), "--json"])
    rows = [json.loads(x) for x in out.splitlines()]
    assert rc == 0 and [r["id"] for r in rows] == ["1", "2"] and rows[1]["text"] == "dull\nand tedious"


@pytest.mark.parametrize("verb_args", [
    ["predict", "sentiment", "fun"], ["sample", "charlm"], ["translate", "seq2seq", "a dog ."],
    ["forecast", "forecast"], ["backtest", "forecast"]])
def test_unknown_output_extension_is_refused_before_any_work(tiny, capsys, tmp_path, verb_args):
    verb, task, *rest = verb_args
    dest = tmp_path / "out.xlsx"
    rc, _, err = run(capsys, [verb, str(tiny[task]), *rest, "--output", str(dest)])
    assert rc == 2 and "--output format unknown" in err and "'.xlsx'" in err and not dest.exists()


def test_stdin_and_device_outputs(tiny, capsys, tmp_path):
    rc, out, _ = run(capsys, ["translate", str(tiny["seq2seq"]), "--input", "-"], stdin="the red dog runs .\n\na cat .\n")
    assert rc == 0 and out.split("\n")[1] == "" and len(out.split("\n")) == 4  # line-aligned
    rc, _, err = run(capsys, ["predict", str(tiny["sentiment"]), "fun", "--output", "/dev/full"])
    assert rc == 2 and "/dev/full" in err and "space" in err
    (tmp_path / "d.csv").mkdir()
    rc, _, err = run(capsys, ["predict", str(tiny["sentiment"]), "fun", "--output", str(tmp_path / "d.csv")])
    assert rc == 2 and "is a directory" in err


def test_transcribe_writes_the_rows_done_before_a_stop(tiny, capsys, tmp_path):
    wavs = sorted((tiny["asr"].parent / "digits").glob("*.wav"))
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(17):  # more than one batch of 16 before the bad file
        shutil.copy(wavs[i % len(wavs)], folder / f"a{i:02d}.wav")
    (folder / "z.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    dest = tmp_path / "t.csv"
    rc, _, err = run(capsys, ["transcribe", str(tiny["asr"]), str(folder), "--output", str(dest), "--on-error", "stop"])
    assert rc == 2 and "z.wav" in err
    assert len(pd.read_csv(dest)) == 16  # the first batch was finished and kept
    rc, _, err = run(capsys, ["transcribe", str(tiny["asr"]), str(folder), "--output", str(dest)])
    assert rc == 2 and "1 of 18 files could not be transcribed" in err
    got = pd.read_csv(dest)
    assert len(got) == 17 and "transcript" in got.columns
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"path": [str(folder / "a00.wav")], "speaker": ["anna"]}).to_csv(manifest, index=False)
    rc, out, _ = run(capsys, ["transcribe", str(tiny["asr"]), "--input", str(manifest), "--json"])
    assert rc == 0 and json.loads(out)["file"].endswith("a00.wav")


def test_stdin_must_be_utf8_and_empty_stdin_is_named(tiny):
    import os
    import subprocess
    import sys as _sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [_sys.executable, "-m", "rnnkit.cli.main", "predict", str(tiny["sentiment"]), "--input", "-"]
    bad = subprocess.run(cmd, input=b"\xff\xfe bad\n", capture_output=True, timeout=120, env=env)
    assert bad.returncode == 2 and bad.stderr.decode().strip() == "rnnkit: error: standard input is not UTF-8 text (byte 0)"
    empty = subprocess.run(cmd, input=b"", capture_output=True, timeout=120, env=env)
    assert empty.returncode == 2 and b"standard input: empty (nothing to read)" in empty.stderr

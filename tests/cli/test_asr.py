"""`rnnkit train asr`, `rnnkit evaluate` and `rnnkit transcribe` end to end on tiny synthetic data."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from rnnkit.cli.main import main
from tests.fixtures.asr import tone, write_digits

TINY = ["--hidden", "8", "--layers", "1", "--conv-channels", "2", "--n-mels", "16", "--batch-size", "4",
        "--val-every", "2", "--checkpoint-every", "2", "--no-progress", "--logger", "none", "--threads", "1",
        "--warmup-steps", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("asr")
    d = write_digits(root / "digits")
    out = root / "ckpt"
    assert main(["train", "asr", "--data", str(d), "--out", str(out), "--max-steps", "3", *TINY]) == 0
    return root, d, out


def test_train_writes_an_asr_checkpoint(trained):
    _, _, out = trained
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["task"] == "asr" and cfg["global_step"] == 3
    assert cfg["data"]["units"]["tokens"][0] == "<b>"
    assert set(cfg["data"]["words"]) == {"one", "two", "three"}
    assert {"val_wer", "val_cer", "val_loss"} <= set(cfg["metrics"])


def test_evaluate_json(trained, capsys):
    root, d, out = trained
    assert main(["evaluate", str(out), "--data", str(d), "--json", "--threads", "1"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["utterances"] == 18 and res["words"] == 18
    assert 0 <= res["cer"] and 0 <= res["wer"] and res["decoder"] == "greedy"


def test_transcribe_goes_on_past_bad_files(trained, capsys, tmp_path):
    _, d, out = trained
    good = d / "1_anna_0.wav"
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    empty = tmp_path / "empty.wav"
    sf.write(empty, tone(1, 0.0), 8000)
    rc = main(["transcribe", str(out), str(bad), str(good), str(empty), "--timestamps", "--json", "--threads", "1"])
    cap = capsys.readouterr()
    assert rc == 2
    lines = [json.loads(line) for line in cap.out.strip().splitlines()]
    assert [x["file"] for x in lines] == [str(good)] and "words" in lines[0]
    errs = cap.err.strip().splitlines()
    assert any(str(bad) in e and "not an audio file" in e for e in errs)
    assert any(str(empty) in e and "zero-length" in e for e in errs)
    assert "2 of 3 files" in errs[-1] and "Traceback" not in cap.err


def test_transcribe_beam_with_training_words(trained, capsys):
    _, d, out = trained
    assert main(["transcribe", str(out), str(d / "2_bob_1.wav"), "--beam", "4", "--words", "train", "--threads", "1"]) == 0
    path, text = capsys.readouterr().out.rstrip("\n").split("\t")
    assert path.endswith("2_bob_1.wav")
    assert all(w in {"one", "two", "three"} for w in text.split())  # whole training words only


def test_refuses_other_task_and_bad_flags(trained, capsys):
    _, d, out = trained
    assert main(["transcribe", str(out), str(d / "2_bob_1.wav"), "--words", "train"]) == 2
    assert "--beam" in capsys.readouterr().err


def test_transcript_outside_alphabet_is_refused(tmp_path, capsys):
    sf.write(tmp_path / "a.wav", tone(400, 0.3), 8000)
    sf.write(tmp_path / "b.wav", tone(500, 0.3), 8000)
    (tmp_path / "manifest.csv").write_text("path,text\na.wav,hello\nb.wav,caf\u00e9\n")
    rc = main(["train", "asr", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--max-steps", "1", *TINY])
    err = capsys.readouterr().err
    assert rc == 2 and "b.wav" in err and "outside the model's alphabet" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_manifest_with_missing_file_is_refused(tmp_path, capsys):
    (tmp_path / "m.csv").write_text("path,text\nclips/gone.wav,hello\n")
    rc = main(["train", "asr", "--data", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"), "--max-steps", "1", *TINY])
    err = capsys.readouterr().err
    assert rc == 2 and "gone.wav" in err and "does not exist" in err


def test_phoneme_units_train_and_evaluate(trained, tmp_path, capsys):
    _, d, _ = trained
    out = tmp_path / "ph"
    assert main(["train", "asr", "--data", str(d), "--out", str(out), "--max-steps", "1", "--units", "phonemes",
                 *TINY]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["units"]["kind"] == "phonemes" and "|" in cfg["data"]["units"]["tokens"]
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(d), "--json", "--threads", "1"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["units"] == "phonemes" and res["utterances"] == 18
    # every hypothesis word is a lexicon word, whatever the phonemes were
    assert main(["transcribe", str(out), str(d / "3_bob_0.wav"), "--threads", "1"]) == 0
    text = capsys.readouterr().out.split("\t")[1].split()
    from rnnkit.data.speech import DIGIT_LEXICON

    assert all(w in DIGIT_LEXICON for w in text)


@pytest.mark.slow
def test_resume_is_exact(trained, tmp_path):
    """3 steps + resume to 6 == 6 steps straight (weights bit for bit)."""
    import numpy as np
    from safetensors.numpy import load_file

    _, d, _ = trained
    flags = ["--data", str(d), "--speed-perturb", "0.1", "--noise-snr", "10", "--schedule", "constant", *TINY]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", "asr", "--out", str(a), "--max-steps", "6", *flags]) == 0
    assert main(["train", "asr", "--out", str(b), "--max-steps", "3", *flags]) == 0
    assert main(["train", "asr", "--resume", str(b), "--max-steps", "6", "--no-progress", "--logger", "none",
                 "--threads", "1"]) == 0
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)


def test_connected_model_scored_on_single_fsdd_recordings(tmp_path, monkeypatch, capsys):
    """`evaluate --fsdd-mode single` reads each test recording alone, whatever the training mode."""
    from rnnkit.data.audio import write_wav

    rec = tmp_path / "data" / "fsdd" / "recordings"
    rec.mkdir(parents=True)
    for spk in ("anna", "bob"):
        for digit in (1, 2):
            for idx in range(12):  # 0-4 test, 5-9 validation, 10-11 training
                write_wav(rec / f"{digit}_{spk}_{idx}.wav", tone(300 + 200 * digit, 0.25 + 0.01 * idx), 8000)
    monkeypatch.setenv("RNNKIT_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "ckpt"
    assert main(["train", "asr", "--data", "fsdd", "--fsdd-mode", "connected", "--max-digits", "2", "--out", str(out),
                 "--max-steps", "2", *TINY]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--fsdd-mode", "single", "--json", "--threads", "1"]) == 0
    single = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert single["utterances"] == 2 * 2 * 5 and single["words"] == 20  # one recording, one word
    assert "single" in single["data"]
    assert main(["evaluate", str(out), "--json", "--threads", "1"]) == 0
    connected = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "connected" in connected["data"] and connected["utterances"] < connected["words"]
    capsys.readouterr()
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,text\n{rec / '1_anna_0.wav'},one\n")
    assert main(["evaluate", str(out), "--data", str(manifest), "--fsdd-mode", "single", "--threads", "1"]) == 2
    assert "--fsdd-mode applies to --data fsdd only" in capsys.readouterr().err


def test_recordings_too_short_for_ctc_are_reported(tmp_path, capsys):
    # 0.1 s is 11 feature frames, 3 output frames after --subsample 4: too few for "three" (6)
    from rnnkit.data.audio import write_wav

    d = tmp_path / "digits"
    d.mkdir()
    for digit, seconds in ((3, 0.1), (3, 0.6), (1, 0.6), (1, 0.5)):
        for idx in range(2):
            write_wav(d / f"{digit}_anna_{idx}{int(seconds * 10)}.wav", tone(300 + 100 * digit, seconds), 8000)
    assert main(["train", "asr", "--data", str(d), "--out", str(tmp_path / "o"), "--max-steps", "1",
                 "--val-fraction", "0.1", "--seed", "3", "--speed-perturb", "0", *TINY]) == 0
    err = capsys.readouterr().err
    assert "2 of 7 training recordings are too short for their transcripts after --subsample 4" in err
    assert "--subsample 2" in err
    assert main(["train", "asr", "--data", str(d), "--out", str(tmp_path / "o2"), "--max-steps", "1",
                 "--val-fraction", "0.1", "--seed", "3", "--subsample", "2", "--speed-perturb", "0", *TINY]) == 0
    assert "too short" not in capsys.readouterr().err


def test_training_without_a_validation_split(tmp_path, capsys, monkeypatch):
    """--val-recordings 0 (a final run on the whole training set): no validation metrics, and
    evaluate still scores the test split."""
    from tests.fixtures.asr import SHARED_FSDD

    if not SHARED_FSDD.is_dir():
        pytest.skip("../shared/datasets/fsdd is absent")
    out = tmp_path / "o"
    assert main(["train", "asr", "--data", "fsdd", "--fsdd-mode", "single", "--val-recordings", "0",
                 "--out", str(out), "--max-steps", "1", *TINY]) == 0
    cap = capsys.readouterr()
    assert "val WER" not in cap.out and "Traceback" not in cap.err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["val_recordings"] == 0 and not any(k.startswith("val_") for k in cfg["metrics"])
    assert main(["evaluate", str(out), "--json", "--threads", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["utterances"] == 250
    assert main(["evaluate", str(out), "--split", "val", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert "no validation split" in err and "Traceback" not in err


def test_diagnose_gradients_of_a_asr_checkpoint(trained, tmp_path):
    _, _, out = trained
    assert main(["diagnose", "gradients", str(out), "--out", str(tmp_path / "g"), "--threads", "1"]) == 0
    res = json.loads((tmp_path / "g" / "gradients.json").read_text())
    assert res["setup"]["task"] == "asr" and res["setup"]["loss"] == "the asr task's training loss"
    assert res["layers"] and all(len(r["norms"]) == res["setup"]["seq_len"] for r in res["layers"].values())


def test_first_hour_rough_edges(tmp_path, capsys):
    """#19.9: a manifest header other than path,text is named with the columns found; a corrupt
    MP3 is one line without decoder noise; punctuation in transcripts is normalised."""
    import soundfile as sf

    from rnnkit.data.speech import Units, read_manifest

    sf.write(tmp_path / "a.wav", tone(400, 0.3), 8000)
    (tmp_path / "man.csv").write_text("file,transcript\na.wav,one\n")
    with pytest.raises(Exception, match=r"man.csv:1: the header must be 'path,text' \(found columns: file, transcript\)"):
        read_manifest(tmp_path / "man.csv")
    (tmp_path / "ok.csv").write_text("path,text\na.wav,Three!\n")
    assert Units("chars").encode(read_manifest(tmp_path / "ok.csv")[0].text) == Units("chars").encode("three")
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 12)
    import subprocess
    import sys as _sys
    r = subprocess.run([_sys.executable, "-c", "from rnnkit.data.audio import load_audio; import sys\n"
                        "try:\n load_audio(sys.argv[1], 8000)\nexcept Exception as e: print(e)", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert "bad.mp3" in r.stdout and "pipe" not in r.stdout and r.stderr.strip() == ""

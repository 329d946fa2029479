"""Units, manifests (CSV, LibriSpeech, FSDD naming), FSDD splits and connected-digit composition."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from rnnkit.data import speech as sp
from rnnkit.errors import DataError
from tests.fixtures.asr import needs_fsdd, tone


def test_char_units_roundtrip_and_blank():
    u = sp.Units("chars")
    assert u.tokens[0] == sp.BLANK and len(u) == 29
    ids = u.encode("  Don't   STOP ")
    assert 0 not in ids and u.words(ids) == "don't stop" == u.reference("Don't stop")


def test_char_units_reject_outside_alphabet():
    with pytest.raises(DataError) as e:
        sp.Units("chars").encode("caf\u00e9 42", "a.csv:3")
    msg = str(e.value)
    assert msg.startswith("a.csv:3:") and "outside the model's alphabet" in msg and "2" in msg and "\u00e9" in msg


def test_phoneme_units_via_lexicon():
    u = sp.Units("phonemes")
    ids = u.encode("three one")
    assert [u.tokens[i] for i in ids] == ["TH", "R", "IY", "|", "W", "AH", "N"]
    assert u.words(ids) == "three one"
    # a misrecognised phoneme still maps to the nearest lexicon word
    noisy = [u.index[p] for p in ("S", "EH", "V", "N")] + [u.space] + [u.index[p] for p in ("N", "AY")]
    assert u.words(noisy) == "seven nine"
    with pytest.raises(DataError, match="not in the pronunciation lexicon"):
        u.encode("eleven")
    assert sp.Units.from_json(u.to_json()).encode("two") == u.encode("two")


def test_read_lexicon(tmp_path):
    p = tmp_path / "lex.txt"
    p.write_text(";;; comment\nHELLO  HH AH0 L OW1\nHELLO(2)  HH EH0 L OW1\nWORLD W ER1 L D\n")
    lex = sp.read_lexicon(p)
    assert lex == {"hello": ("HH", "AH", "L", "OW"), "world": ("W", "ER", "L", "D")}
    p.write_text("HELLO HH XX\n")
    with pytest.raises(DataError, match="lex.txt:1: unknown ARPAbet phoneme 'XX'"):
        sp.read_lexicon(p)


def _wav(path, seconds=0.2):
    sf.write(path, tone(440, seconds), 8000)


def test_csv_manifest_relative_paths_and_header(tmp_path):
    (tmp_path / "audio").mkdir()
    _wav(tmp_path / "audio" / "a.wav")
    _wav(tmp_path / "b.wav")
    m = tmp_path / "manifest.csv"
    m.write_text('path,text\naudio/a.wav,hello world\n' + f'{tmp_path / "b.wav"},"one, two"\n')
    utts = sp.read_manifest(tmp_path)
    assert [u.text for u in utts] == ["hello world", "one, two"]
    assert utts[0].path == str(tmp_path / "audio" / "a.wav")


def test_manifest_naming_missing_file(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("path,text\nmissing.wav,hello\n")
    with pytest.raises(DataError) as e:
        sp.read_manifest(m)
    assert "m.csv:2" in str(e.value) and "missing.wav" in str(e.value) and "does not exist" in str(e.value)


def test_librispeech_tree(tmp_path):
    d = tmp_path / "19" / "198"
    d.mkdir(parents=True)
    sf.write(d / "19-198-0000.flac", tone(300, 0.2), 16000)
    sf.write(d / "19-198-0001.flac", tone(300, 0.2), 16000)
    (d / "19-198.trans.txt").write_text("19-198-0000 NORTHANGER ABBEY\n19-198-0001 CHAPTER ONE\n")
    utts = sp.read_manifest(tmp_path)
    assert [(u.uid, u.text, u.speaker) for u in utts] == [
        ("19-198-0000", "NORTHANGER ABBEY", "19"), ("19-198-0001", "CHAPTER ONE", "19")]
    (d / "19-198.trans.txt").write_text("19-198-0002 MISSING\n")
    with pytest.raises(DataError, match="19-198.flac|19-198-0002.flac"):
        sp.read_manifest(tmp_path)


def test_fsdd_naming(digit_folder):
    utts = sp.read_manifest(digit_folder)
    assert len(utts) == 18
    assert {u.text for u in utts} == {"one", "two", "three"}
    assert {u.speaker for u in utts} == {"anna", "bob"}


def test_no_transcripts(tmp_path):
    _wav(tmp_path / "x.wav")
    with pytest.raises(DataError, match="found no transcripts"):
        sp.read_manifest(tmp_path)


def _fake_clips():
    return [sp.Clip(d, s, i, np.full(800 + 10 * d, 0.1 * (d + 1), np.float32))
            for s in ("a", "b") for d in range(10) for i in range(12)]


def test_fsdd_split_standard_and_leave_one_out():
    clips = _fake_clips()
    tr, va, te = sp.fsdd_split(clips, None, val_recordings=3)
    assert {clips[i].index for i in te} == {0, 1, 2, 3, 4}
    assert {clips[i].index for i in va} == {5, 6, 7}
    assert not set(tr) & set(va) and not set(tr) & set(te) and len(tr) + len(va) + len(te) == len(clips)
    tr, va, te = sp.fsdd_split(clips, "b", val_recordings=2)
    assert {clips[i].speaker for i in te} == {"b"} and len(te) == 120
    assert {clips[i].speaker for i in tr + va} == {"a"}
    with pytest.raises(DataError, match="not an FSDD speaker"):
        sp.fsdd_split(clips, "zed")
    # --val-recordings 0: the whole standard training set (5..), no validation
    tr, va, te = sp.fsdd_split(clips, None, val_recordings=0)
    assert va == [] and {clips[i].index for i in tr} == set(range(5, 12)) and len(tr) + len(te) == len(clips)


def test_connected_composition_uses_each_clip_once_with_true_transcripts():
    clips = _fake_clips()
    pool = list(range(len(clips)))
    plan = sp.compose_plan(clips, pool, np.random.default_rng(0), 1, 7)
    used = [c for p in plan for c in p.clips]
    assert sorted(used) == pool
    for p in plan:
        assert 1 <= len(p.clips) <= 7 and len({clips[c].speaker for c in p.clips}) == 1
        assert p.text == " ".join(sp.DIGIT_WORDS[clips[c].digit] for c in p.clips)
        assert len(p.gaps) == len(p.clips) + 1
        wave = sp.render(p, clips)
        assert len(wave) == sum(len(clips[c].samples) for c in p.clips) + sum(p.gaps)
    again = sp.compose_plan(clips, pool, np.random.default_rng(0), 1, 7)
    assert [p.clips for p in again] == [p.clips for p in plan]



@needs_fsdd
def test_real_fsdd_standard_split_sizes():
    clips = sp.load_fsdd(8000)
    assert len(clips) == 2500 and {c.speaker for c in clips} == set(sp.FSDD_SPEAKERS)
    tr, va, te = sp.fsdd_split(clips)
    assert (len(tr), len(va), len(te)) == (2000, 250, 250)


def test_connected_training_epochs_add_single_clips_as_recorded():
    """--single-fraction: every pool clip once in a composition, plus that fraction alone (no
    gaps, no added noise); the plan is a function of (seed, epoch)."""
    from types import SimpleNamespace

    from rnnkit.data.speech_sets import FsddSource
    from rnnkit.training.recipes.asr import SpeechDataModule

    clips = _fake_clips()
    pool = list(range(len(clips)))
    fe = SimpleNamespace(cfg=SimpleNamespace(sample_rate=8000))
    data = {"fsdd_mode": "connected", "min_digits": 1, "max_digits": 7, "single_fraction": 0.25}
    dm = SpeechDataModule(FsddSource(clips), None, fe, data, seed=3, train_pool=pool)
    items = dm.epoch_items(0)
    alone = [it for it in items if it.snr_db == float("inf")]
    composed = [it for it in items if it.snr_db != float("inf")]
    assert sorted(c for it in composed for c in it.clips) == pool
    assert len(alone) == round(0.25 * len(pool)) and all(len(it.clips) == 1 and it.gaps == (0, 0) for it in alone)
    assert [it.clips for it in dm.epoch_items(0)] == [it.clips for it in items]
    assert [it.clips for it in dm.epoch_items(1)] != [it.clips for it in items]
    none = SpeechDataModule(FsddSource(clips), None, fe, {**data, "single_fraction": 0.0}, seed=3, train_pool=pool)
    assert all(it.snr_db != float("inf") for it in none.epoch_items(0))


def test_vtlp_augmentation_is_seeded_and_off_by_default():
    """--vtlp draws one warp per utterance from its (seed, epoch, batch, position) generator;
    without it the random stream (speed, noise, SpecAugment) is what it always was."""
    from rnnkit.data.audio import FeatureConfig, LogMel
    from rnnkit.data.speech import Units
    from rnnkit.data.speech_sets import FsddSource
    from rnnkit.training.recipes.asr import SpeechDataModule

    clips = _fake_clips()
    data = {"fsdd_mode": "single", "speed_perturb": 0.1, "noise_snr": 15.0, "spec_augment": True, "freq_masks": 2,
            "freq_width": 6, "time_masks": 2, "time_width": 8}
    fe = LogMel(FeatureConfig(8000, 16))

    def module(**extra):
        return SpeechDataModule(FsddSource(clips), Units("chars"), fe, {**data, **extra}, seed=3, train_pool=[0])

    key = (3, 0, 0, 0)
    it = module().epoch_items(0)[0]
    plain, _ = module().augmented(it, key)  # a checkpoint from before --vtlp existed
    np.testing.assert_array_equal(module(vtlp=0.0).augmented(it, key)[0], plain)
    warped, _ = module(vtlp=0.1).augmented(it, key)
    np.testing.assert_array_equal(module(vtlp=0.1).augmented(it, key)[0], warped)
    assert not np.array_equal(warped, plain)

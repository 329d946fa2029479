"""Audio reading, resampling, features and augmentation; every bad file gives a one-line DataError."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf

from rnnkit.data import audio
from rnnkit.errors import DataError
from tests.fixtures.asr import tone


def test_load_resamples_and_downmixes(tmp_path):
    sr = 16000
    left = tone(1000, 1.0, sr)
    stereo = np.stack([left, left], axis=1)
    p = tmp_path / "s.flac"
    sf.write(p, stereo, sr)
    x = audio.load_audio(p, 8000)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - 8000) <= 1  # 1 s at 8 kHz
    spec = np.abs(np.fft.rfft(x))
    peak_hz = np.argmax(spec) * 8000 / len(x)
    assert abs(peak_hz - 1000) < 5
    assert np.max(np.abs(x)) == pytest.approx(0.3, abs=0.02)  # mean of two equal channels keeps the level


def test_opposite_channels_cancel_in_the_downmix(tmp_path):
    x = tone(500, 0.2)
    p = tmp_path / "anti.wav"
    sf.write(p, np.stack([x, -x], axis=1), 8000, subtype="FLOAT")
    assert np.max(np.abs(audio.load_audio(p, 8000))) < 1e-6


def test_block_reading_equals_one_read(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, size=(10007, 2)).astype(np.float32)
    p = tmp_path / "long.wav"
    sf.write(p, x, 8000, subtype="FLOAT")
    whole = audio.load_audio(p, 8000)
    monkeypatch.setattr(audio, "BLOCK_FRAMES", 1000)
    np.testing.assert_array_equal(audio.load_audio(p, 8000), whole)
    np.testing.assert_allclose(whole, x.mean(axis=1), atol=1e-7)


def _wav_bytes(tag: int, bits: int, data: bytes = b"\x00" * 100, declared: int = None) -> bytes:
    fmt = struct.pack("<HHIIHH", tag, 1, 8000, 8000 * bits // 8, max(1, bits // 8), bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + \
        struct.pack("<I", len(data) if declared is None else declared) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"this is text, not sound", "not an audio file"),
    (_wav_bytes(1, 16, b""), "zero-length audio"),
    (_wav_bytes(1, 16, b"\x01\x00" * 100, declared=4000), "truncated WAV"),
    (_wav_bytes(0x1234, 16), "unsupported audio sample format"),
    (_wav_bytes(1, 12), "unsupported audio sample format"),
    (b"RIFF\x10\x00\x00\x00WAVEfmt ", "wav"),
])
def test_bad_files_are_one_line_errors(tmp_path, content, message):
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(DataError) as e:
        audio.load_audio(p, 8000)
    text = str(e.value)
    assert "\n" not in text and str(p) in text
    assert message.lower() in text.lower()


def test_missing_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such audio file"):
        audio.load_audio(tmp_path / "nope.wav", 8000)
    with pytest.raises(DataError, match="is a directory"):
        audio.load_audio(tmp_path, 8000)


def test_real_truncated_fsdd_file(tmp_path):
    from tests.fixtures.asr import SHARED_FSDD

    src = SHARED_FSDD / "0_george_0.wav"
    if not src.exists():
        pytest.skip("fsdd absent")
    b = src.read_bytes()
    (tmp_path / "t.wav").write_bytes(b[: len(b) // 2])
    with pytest.raises(DataError, match="truncated"):
        audio.load_audio(tmp_path / "t.wav", 8000)
    assert len(audio.load_audio(src, 8000)) == sf.info(str(src)).frames


def test_mel_matrix_shape_and_peaks():
    m = audio.mel_matrix(8000, 256, 40)
    assert m.shape == (40, 129)
    assert np.all(m >= 0) and np.all(m <= 1)
    assert np.all(m.max(axis=1) > 0.5)  # no empty or starved filter at 31 Hz resolution
    centres = m.argmax(axis=1)
    assert np.all(np.diff(centres) >= 0)  # filters ordered by frequency


def test_logmel_frames_and_tone_channel():
    cfg = audio.FeatureConfig(8000, 40, 25, 10)
    fe = audio.LogMel(cfg)
    low, high = fe(tone(300, 0.5)), fe(tone(2500, 0.5))
    assert low.shape == (fe.frames(4000), 40) == (51, 40)
    assert low.mean(axis=0).argmax() < high.mean(axis=0).argmax()
    z = audio.normalise(low)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-4)
    assert np.all(np.abs(z.std(axis=0) - 1) < 1e-2 + (low.std(axis=0) < 1e-3))


@pytest.mark.parametrize("alpha", [0.9, 0.95, 1.05, 1.1])
def test_vtlp_warp_is_piecewise_linear_and_keeps_the_band(alpha):
    f = np.linspace(0, 4000, 129)
    g = audio.vtlp_frequencies(f, alpha, 4000.0)
    assert g[0] == 0 and g[-1] == pytest.approx(4000) and np.all(np.diff(g) > 0)
    knee = 0.8 * 4000 * min(alpha, 1) / alpha
    np.testing.assert_allclose(g[f <= knee], alpha * f[f <= knee])


def test_vtlp_moves_a_tone_up_or_down_the_mel_channels():
    fe = audio.LogMel(audio.FeatureConfig(8000, 40, 25, 10))
    x = tone(1000, 0.5)
    peak = {w: fe(x, w).mean(axis=0).argmax() for w in (0.9, 1.0, 1.1)}
    assert peak[0.9] < peak[1.0] < peak[1.1]
    np.testing.assert_array_equal(fe(x, 1.0), fe(x))
    assert fe.mel_for(1.1002) is fe.mel_for(1.1)  # warps share a cached matrix per 0.005


def test_speed_perturb_and_noise():
    x = tone(400, 1.0)
    assert len(audio.speed_perturb(x, 1.1)) == pytest.approx(8000 / 1.1, abs=2)
    assert len(audio.speed_perturb(x, 0.9)) == pytest.approx(8000 / 0.9, abs=2)
    y = audio.add_noise(x, 20.0, np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(x ** 2) / np.mean((y - x) ** 2))
    assert snr == pytest.approx(20.0, abs=0.3)


def test_spec_augment_is_seeded_and_bounded():
    f = np.random.default_rng(0).normal(size=(100, 40)).astype(np.float32)
    a = audio.spec_augment(f, np.random.default_rng(1), 2, 8, 2, 10)
    b = audio.spec_augment(f, np.random.default_rng(1), 2, 8, 2, 10)
    np.testing.assert_array_equal(a, b)
    zero_rows = np.all(a == 0, axis=1).sum()
    zero_cols = np.all(a == 0, axis=0).sum()
    assert zero_rows <= 20 and zero_cols <= 16 and (zero_rows + zero_cols) > 0
    for seed in range(20):
        short = audio.spec_augment(f[:10], np.random.default_rng(seed), 0, 0, 2, 10)
        assert short.any(axis=1).sum() >= 6  # 20% of 10 frames: at most 2 per mask

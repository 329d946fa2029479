"""Audio in, log-mel features out: reading, resampling, augmentation and filterbanks.

* :func:`load_audio` reads any file libsndfile knows (WAV, FLAC, OGG, ...) with soundfile,
  block by block (long files never sit in memory as multi-channel float64), downmixes to
  mono and resamples to the model's rate with a polyphase filter
  (``scipy.signal.resample_poly``). Every way a file can be unusable (not audio, empty,
  truncated, an unsupported sample format) is a one-line :class:`~rnnkit.errors.DataError`.
* :class:`LogMel` computes log-mel filterbank features with ``torch.stft`` and a matrix of
  triangular mel filters (HTK mel scale, each filter peaking at 1):

      S_t(f)   = |STFT(x)_t(f)|^2                           (T, n_fft/2 + 1)
      M_t(m)   = sum_f W(m, f) S_t(f)                       (T, n_mels)
      X_t(m)   = log(M_t(m) + 1e-6)

  then :func:`normalise` subtracts each utterance's per-channel mean and divides by its
  standard deviation (per-utterance CMVN), which removes gain and channel differences.
* Augmentation (training only, driven by an explicit ``numpy.random.Generator``, never a
  global RNG): speed perturbation (resampling by a factor, which also shifts pitch, as in
  Ko et al. 2015), additive Gaussian noise at a random SNR, and SpecAugment time/frequency
  masks (Park et al. 2019) on the normalised features.

No librosa, no torchaudio (see ENVIRONMENT.md): torch core, NumPy, SciPy and soundfile.
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..errors import DataError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".w64", ".rf64", ".opus", ".mp3")
BLOCK_FRAMES = 1 << 18  # frames read per block (~5 s of 48 kHz audio)


# ---------------------------------------------------------------------------------------
# reading


# WAVE format tags libsndfile decodes, and the sample sizes it accepts for each
WAV_FORMATS = {0x0001: ("PCM", (8, 16, 24, 32)), 0x0003: ("IEEE float", (32, 64)), 0x0006: ("A-law", (8,)),
               0x0007: ("mu-law", (8,)), 0x0002: ("MS ADPCM", (4,)), 0x0011: ("IMA ADPCM", (4,)),
               0x0031: ("GSM 6.10", (0,)), 0x0055: ("MPEG layer III", (0,)), 0xFFFE: ("extensible", None)}


def _check_wav_header(path: Path) -> None:
    """Check a RIFF/WAVE header before libsndfile sees it: an unsupported sample format gets a
    clear message (libsndfile says "malformed fmt chunk"), and a truncated file, which
    libsndfile silently reads as a shorter one, is refused."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return  # not a plain RIFF/WAVE file: let libsndfile judge it
            size = path.stat().st_size
            end = "<" if head[:4] == b"RIFF" else ">"
            pos = 12
            while pos + 8 <= size:
                f.seek(pos)
                cid, clen = f.read(4), struct.unpack(end + "I", f.read(4))[0]
                if cid == b"fmt " and clen >= 16:
                    tag, channels, rate, _, _, bits = struct.unpack(end + "HHIIHH", f.read(16))
                    known = WAV_FORMATS.get(tag)
                    if known is None:
                        raise DataError(f"{path}: unsupported audio sample format (WAVE format tag 0x{tag:04x}); "
                                        "use PCM 8/16/24/32-bit or float 32/64-bit")
                    if known[1] is not None and bits not in known[1] and 0 not in known[1]:
                        raise DataError(f"{path}: unsupported audio sample format ({bits}-bit {known[0]}); "
                                        "use PCM 8/16/24/32-bit or float 32/64-bit")
                    if channels == 0 or rate == 0:
                        raise DataError(f"{path}: invalid WAV header ({channels} channels, {rate} Hz)")
                elif cid == b"data":
                    if clen != 0xFFFFFFFF and pos + 8 + clen > size:
                        have = size - pos - 8
                        raise DataError(f"{path}: truncated WAV file: the header announces {clen} bytes of "
                                        f"audio but only {have} are present")
                    return
                pos += 8 + clen + (clen & 1)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    except struct.error:
        raise DataError(f"{path}: truncated WAV header") from None


@contextlib.contextmanager
def quiet_decoder():
    """Silence what the C decoders (libsndfile's mpg123, vorbis) print to file descriptor 2
    while they read: a corrupt MP3 should give rnnkit's one line, not a page of decoder notes.
    (Python's own ``sys.stderr`` is untouched; only the process-level fd is redirected.)"""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _libsndfile_reason(msg: str) -> str:
    """libsndfile's message, minus its misleading guess about pipes for an undecodable file."""
    if "possibly a pipe" in msg or "does not exist or is not a regular file" in msg.lower():
        return "corrupt or not in a format soundfile can decode"
    return msg


def audio_info(path: Path):
    """soundfile's info for ``path``, or a one-line DataError."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such audio file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    _check_wav_header(path)
    try:
        with quiet_decoder():
            info = sf.info(str(path))
    except sf.LibsndfileError as e:
        msg = _libsndfile_reason(str(e.error_string if hasattr(e, "error_string") else e).strip().rstrip("."))
        low = msg.lower()
        if "format not recognised" in low or "unknown format" in low:
            raise DataError(f"{path}: not an audio file soundfile can read ({msg})") from None
        if "not supported" in low or "unsupported" in low or "codec" in low or "sub" in low:
            raise DataError(f"{path}: unsupported audio sample format ({msg})") from None
        raise DataError(f"{path}: unreadable audio file ({msg})") from None
    except (RuntimeError, TypeError, OSError) as e:
        raise DataError(f"{path}: unreadable audio file ({e})") from None
    if info.frames == 0 or info.duration == 0:
        raise DataError(f"{path}: zero-length audio (no samples)")
    return info


def load_audio(path, sample_rate: int, max_seconds: Optional[float] = None) -> np.ndarray:
    """Mono float32 samples of ``path`` at ``sample_rate`` Hz, in [-1, 1].

    Read in blocks of :data:`BLOCK_FRAMES` frames (each downmixed at once, so a long
    multi-channel file costs one mono copy), then resampled with a polyphase filter.
    ``max_seconds`` refuses longer files (protects training from a stray hour-long file).
    """
    import soundfile as sf

    path = Path(path)
    info = audio_info(path)
    if info.frames == 0 or info.duration == 0:
        raise DataError(f"{path}: zero-length audio (no samples)")
    if info.samplerate <= 0 or info.channels <= 0:
        raise DataError(f"{path}: invalid header ({info.samplerate} Hz, {info.channels} channels)")
    if max_seconds is not None and info.duration > max_seconds:
        raise DataError(f"{path}: {info.duration:.1f} s of audio is longer than the {max_seconds:g} s allowed")
    parts = []
    try:
        with quiet_decoder(), sf.SoundFile(str(path)) as f:
            while True:
                block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)  # (n, channels)
                if not len(block):
                    break
                parts.append(block.mean(axis=1) if block.shape[1] > 1 else block[:, 0])
    except sf.LibsndfileError as e:
        raise DataError(f"{path}: unreadable audio data ({_libsndfile_reason(str(e).strip())})") from None
    except (RuntimeError, ValueError) as e:
        raise DataError(f"{path}: unreadable audio data ({e})") from None
    x = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if x.size == 0:
        raise DataError(f"{path}: zero-length audio (no samples could be read)")
    if not np.isfinite(x).all():
        raise DataError(f"{path}: audio contains NaN or infinite samples")
    return resample(x, info.samplerate, sample_rate)


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling of a mono signal (exact rational ratio, Kaiser-windowed FIR)."""
    if orig_sr == target_sr:
        return np.ascontiguousarray(x, dtype=np.float32)
    from scipy.signal import resample_poly

    r = Fraction(int(target_sr), int(orig_sr)).limit_denominator(1000)
    return resample_poly(x, r.numerator, r.denominator).astype(np.float32)


# ---------------------------------------------------------------------------------------
# augmentation (waveform)


def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``x`` ``factor`` times faster (tempo and pitch change together, Ko et al. 2015)."""
    if abs(factor - 1.0) < 1e-6:
        return x
    from scipy.signal import resample_poly

    r = Fraction(factor).limit_denominator(20)  # 0.9 -> 9/10: resample 10 -> 9 samples
    return resample_poly(x, r.denominator, r.numerator).astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise at ``snr_db`` dB below the signal's power."""
    power = float(np.mean(x.astype(np.float64) ** 2)) + 1e-12
    sigma = math.sqrt(power / (10.0 ** (snr_db / 10.0)))
    return (x + rng.normal(0.0, sigma, size=x.shape)).astype(np.float32)


# ---------------------------------------------------------------------------------------
# features


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def vtlp_frequencies(freqs: np.ndarray, alpha: float, nyquist: float, boundary: float = 0.8) -> np.ndarray:
    """Vocal-tract length perturbation (Jaitly & Hinton 2013), Kaldi's piecewise-linear warp:
    ``f -> alpha f`` up to ``boundary * nyquist * min(alpha, 1) / alpha``, then a straight line
    that keeps the Nyquist frequency in place, so no energy leaves the band."""
    knee = boundary * nyquist * min(alpha, 1.0) / alpha
    top = (nyquist - alpha * knee) / (nyquist - knee)
    return np.where(freqs <= knee, alpha * freqs, nyquist - top * (nyquist - freqs))


def mel_matrix(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 20.0,
               f_max: Optional[float] = None, warp: float = 1.0) -> np.ndarray:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)`` on the HTK mel scale, peak 1.
    ``warp`` != 1 reads each FFT bin at its VTLP-warped frequency (:func:`vtlp_frequencies`):
    above 1 the spectrum moves up, as from a shorter vocal tract."""
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate/2, got {f_min}, {f_max}, {sample_rate}")
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    if warp != 1.0:
        freqs = vtlp_frequencies(freqs, warp, sample_rate / 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / np.maximum(mid - lo, 1e-9)
    down = (hi - freqs[None]) / np.maximum(hi - mid, 1e-9)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel front end: 25 ms windows every 10 ms by default."""

    sample_rate: int = 8000
    n_mels: int = 40
    win_ms: float = 25.0
    hop_ms: float = 10.0

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def n_fft(self) -> int:
        return 1 << max(0, (self.win_length - 1).bit_length())


class LogMel:
    """Log-mel filterbank features of mono signals, ``torch.stft`` + a mel matrix.

    ``frames(n_samples)`` is the number of feature frames (centred STFT: ``1 + n // hop``).
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        import torch

        self.cfg = cfg
        self.window = torch.hann_window(cfg.win_length)
        self.mel = torch.from_numpy(mel_matrix(cfg.sample_rate, cfg.n_fft, cfg.n_mels))  # (M, F)
        self._warped: Dict[float, Any] = {1.0: self.mel}

    def mel_for(self, warp: float):
        """The mel matrix for a VTLP warp factor (rounded to 0.005; cached)."""
        import torch

        key = round(round(warp / 0.005) * 0.005, 3)
        if key not in self._warped:
            self._warped[key] = torch.from_numpy(mel_matrix(self.cfg.sample_rate, self.cfg.n_fft, self.cfg.n_mels,
                                                            warp=key))
        return self._warped[key]

    def frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.cfg.hop_length

    def __call__(self, x: np.ndarray, warp: float = 1.0) -> np.ndarray:
        """``(N,)`` samples -> ``(T, n_mels)`` float32 log-mel features (``warp``: VTLP factor)."""
        import torch

        cfg = self.cfg
        wav = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if wav.numel() < 2:
            wav = torch.nn.functional.pad(wav, (0, 2 - wav.numel()))
        pad_mode = "reflect" if wav.numel() > cfg.n_fft // 2 else "constant"
        spec = torch.stft(wav, cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                          window=self.window, center=True, pad_mode=pad_mode, return_complex=True)
        power = spec.real ** 2 + spec.imag ** 2  # (F, T)
        mel = (self.mel if warp == 1.0 else self.mel_for(warp)) @ power  # (M, T)
        return torch.log(mel + 1e-6).T.contiguous().numpy()  # (T, M)


def normalise(feats: np.ndarray) -> np.ndarray:
    """Per-utterance mean and variance normalisation of each feature channel."""
    mu = feats.mean(axis=0, keepdims=True)
    sd = feats.std(axis=0, keepdims=True)
    return ((feats - mu) / (sd + 1e-5)).astype(np.float32)


def spec_augment(feats: np.ndarray, rng: np.random.Generator, freq_masks: int = 2, freq_width: int = 8,
                 time_masks: int = 2, time_width: int = 10, max_time_ratio: float = 0.2) -> np.ndarray:
    """SpecAugment masks (Park et al. 2019) on normalised features: masked cells become 0 (the mean).

    Each time mask is at most ``time_width`` frames and at most ``max_time_ratio`` of the
    utterance, so short utterances are not erased.
    """
    out = feats.copy()
    T, F = out.shape
    for _ in range(freq_masks):
        w = int(rng.integers(0, freq_width + 1))
        if 0 < w < F:
            f0 = int(rng.integers(0, F - w + 1))
            out[:, f0:f0 + w] = 0.0
    cap = min(time_width, int(max_time_ratio * T))
    for _ in range(time_masks):
        w = int(rng.integers(0, cap + 1)) if cap > 0 else 0
        if 0 < w < T:
            t0 = int(rng.integers(0, T - w + 1))
            out[t0:t0 + w] = 0.0
    return out


def write_wav(path, x: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples as 16-bit PCM (temp file + rename)."""
    import os
    import tempfile

    import soundfile as sf

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".wav", dir=path.parent)
    os.close(fd)
    try:
        sf.write(tmp, np.clip(x, -1, 1), sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def duration_of(path) -> Tuple[float, int]:
    info = audio_info(Path(path))
    return info.duration, info.samplerate

"""Fixtures for the asr tests: one torch thread, tiny synthetic recordings, FSDD when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_FSDD = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "fsdd" / "recordings"



def tone(freq: float, seconds: float, sr: int = 8000, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def digit_folder(tmp_path) -> Path:
    """Six FSDD-named synthetic recordings (a tone per digit) for two speakers."""
    from rnnkit.data.audio import write_wav

    d = tmp_path / "digits"
    d.mkdir()
    for spk in ("anna", "bob"):
        for digit in (1, 2, 3):
            for idx in (0, 1, 2):
                write_wav(d / f"{digit}_{spk}_{idx}.wav", tone(300 + 200 * digit, 0.3 + 0.05 * idx), 8000)
    return d


needs_fsdd = pytest.mark.skipif(not SHARED_FSDD.is_dir(), reason="../shared/datasets/fsdd is absent")

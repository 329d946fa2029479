"""Bad arguments to the Python API (`rnnkit.load(...)` predictors): each raises one documented
exception type from rnnkit.errors (InputError for arguments, CheckpointError for checkpoints,
DataError for data) with a one-line message naming the problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import rnnkit
from rnnkit.errors import CheckpointError, InputError, UserError

from .conftest import CHECKED


@pytest.mark.parametrize("call, kind, pattern", [
    (lambda m: m["sentiment"].predict(3), InputError, "string or a list of strings"),
    (lambda m: m["sentiment"].predict([]), InputError, "empty"),
    (lambda m: m["sentiment"].predict(["ok", 5]), InputError, r"texts\[1\] must be a string"),
    (lambda m: m["sentiment"].predict(["ok", "  "]), InputError, r"texts\[1\] is empty"),
    (lambda m: m["charlm"].sample("KING", length=-1), InputError, "length must be in"),
    (lambda m: m["charlm"].sample("KING", temperature=float("nan")), InputError, "temperature must be a finite"),
    (lambda m: m["charlm"].score(b"KING"), InputError, "text must be a string"),
    (lambda m: m["seq2seq"].translate(["a"], beam=0), InputError, "beam must be in"),
    (lambda m: m["seq2seq"].translate(None), InputError, "string or a list"),
    (lambda m: m["asr"].transcribe(42), InputError, "file path or a .samples, sample_rate. tuple"),
    (lambda m: m["asr"].transcribe((np.array(["a"]), 8000)), InputError, "numeric array"),
    (lambda m: m["asr"].transcribe((np.zeros(100), 8000.5)), InputError, "sample rate must be an integer"),
    (lambda m: m["asr"].transcribe((np.full(800, np.nan), 8000)), InputError, "NaN"),
    (lambda m: m["asr"].transcribe([]), InputError, "empty"),
    (lambda m: m["forecast"].forecast(data=3), InputError, "DataFrame"),
    (lambda m: m["forecast"].forecast(series="nope"), InputError, "no such series"),
    (lambda m: m["forecast"].forecast(pd.DataFrame()), InputError, "no rows"),
])
def test_bad_arguments_raise_one_documented_type(tiny, call, kind, pattern):
    models = {t: rnnkit.load(p) for t, p in tiny.items()}
    with pytest.raises(kind, match=pattern) as e:
        call(models)
    assert isinstance(e.value, UserError) and len(str(e.value).splitlines()) == 1
    CHECKED["n"] += 1


def test_nan_rows_and_wrong_audio_are_named(tiny, tmp_path):
    m = rnnkit.load(tiny["forecast"])
    frame = pd.read_csv(m.config["data"]["spec"]["data"])
    frame.loc[len(frame) - 2, "temp"] = np.nan
    with pytest.raises(UserError, match="temp"):
        m.forecast(frame)
    bad = tmp_path / "fake.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(UserError, match="fake.wav"):
        rnnkit.load(tiny["asr"]).transcribe(str(bad))


def test_bad_checkpoints_raise_checkpoint_error(tiny, tmp_path):
    from rnnkit.predictors import CharLMPredictor

    with pytest.raises(CheckpointError, match="not an rnnkit checkpoint"):
        rnnkit.load(tmp_path)
    with pytest.raises(CheckpointError, match="'sentiment' checkpoint; expected 'charlm'"):
        CharLMPredictor.from_checkpoint(tiny["sentiment"])

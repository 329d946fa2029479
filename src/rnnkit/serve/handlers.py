"""One handler per task: a validated request (:mod:`.schemas`) in, a JSON-ready dict (or an
event stream) out, through the model's predictor and micro-batcher.

Limits that depend on the server's options are checked here and raised as :class:`Refused`
(status, message, the option's name); the predictor's own argument errors
(:class:`rnnkit.errors.UserError`, e.g. a history without the model's columns) become 422s
in :mod:`.app`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

from .config import ServeConfig
from .models import Served
from .schemas import AsrRequest, CharLMRequest, ForecastRequest, Seq2SeqRequest, SentimentRequest


class Refused(Exception):
    """A request the server will not run: HTTP ``status``, one-line ``message``, the ``limit`` it broke."""

    def __init__(self, status: int, message: str, limit: Optional[str] = None) -> None:
        super().__init__(message)
        self.status, self.message, self.limit = status, message, limit


def _num(v: float) -> str:
    """A number for a message (a 400-digit integer from a request stays one short line)."""
    if isinstance(v, int):
        if abs(v) < 10**20:
            return str(v)
        return f"about 10^{v.bit_length() * 0.30103:.0f}"
    return f"{v:g}"


def _cap(what: str, value: float, cap: float, option: str, unit: str = "") -> None:
    if value > cap:
        raise Refused(422, f"{what} is {_num(value)}{unit}, over the limit of {_num(cap)}{unit} "
                      f"(--{option.replace('_', '-')})", limit=option)


def check_texts(texts: List[str], cfg: ServeConfig) -> None:
    _cap("the number of texts", len(texts), cfg.max_texts, "max_texts")
    for i, t in enumerate(texts):
        if not t.strip():
            raise Refused(422, f"texts[{i}] is empty")
        _cap(f"texts[{i}]'s length", len(t), cfg.max_text_chars, "max_text_chars", " characters")


async def sentiment(m: Served, req: SentimentRequest, cfg: ServeConfig) -> Dict[str, Any]:
    check_texts(req.texts, cfg)
    assert m.batcher is not None
    return {"model": m.name, "predictions": await m.batcher.submit(req.texts)}


async def seq2seq(m: Served, req: Seq2SeqRequest, cfg: ServeConfig) -> Dict[str, Any]:
    check_texts(req.texts, cfg)
    _cap("beam", req.beam, cfg.max_beam, "max_beam")
    if req.max_len is not None:
        _cap("max_len", req.max_len, cfg.max_length, "max_length")
    assert m.batcher is not None
    return {"model": m.name, "translations": await m.batcher.submit(req.texts, key=(req.beam, req.max_len))}


# -- charlm -------------------------------------------------------------------------------------

def _sample_args(req: CharLMRequest, cfg: ServeConfig) -> Dict[str, Any]:
    _cap("length", req.length, cfg.max_length, "max_length", " characters")
    _cap("the prime's length", len(req.prime), cfg.max_text_chars, "max_text_chars", " characters")
    return {"prime": req.prime, "length": req.length, "temperature": float(req.temperature), "top_k": req.top_k,
            "top_p": None if req.top_p is None else float(req.top_p), "seed": req.seed}


async def charlm(m: Served, req: CharLMRequest, cfg: ServeConfig) -> Dict[str, Any]:
    text = await asyncio.to_thread(lambda: m.predictor.sample(**_sample_args(req, cfg)))
    return {"model": m.name, "text": text}


def sse(data: Dict[str, Any], event: Optional[str] = None) -> bytes:
    """One Server-Sent Event (JSON data, so newlines in the text never break the framing)."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


_END = object()


async def charlm_stream(m: Served, req: CharLMRequest, cfg: ServeConfig) -> AsyncIterator[bytes]:
    """The events of a streamed sample. The first chunk is computed before this returns, so a
    bad argument is still an ordinary 422, not an error inside a started stream."""
    gen = m.predictor.stream(**_sample_args(req, cfg))
    first = await asyncio.to_thread(next, gen, _END)

    async def events() -> AsyncIterator[bytes]:
        n, chunk = 0, first
        try:
            while chunk is not _END:
                n += len(chunk)
                yield sse({"text": chunk})
                chunk = await asyncio.to_thread(next, gen, _END)
            yield sse({"characters": n}, event="done")
        except Exception as e:  # noqa: BLE001 - the status line has gone out; say it in the stream
            yield sse({"error": f"{type(e).__name__}: {e}".splitlines()[0][:300]}, event="error")
        finally:
            try:
                gen.close()
            except ValueError:  # still running in its thread (client went away): it ends by itself
                pass
    return events()


# -- forecast -----------------------------------------------------------------------------------

async def forecast(m: Served, req: ForecastRequest, cfg: ServeConfig) -> Dict[str, Any]:
    import pandas as pd

    data = None
    if req.history is not None:
        _cap("the number of history rows", len(req.history), cfg.max_history_rows, "max_history_rows")
        data = pd.DataFrame(req.history)
    assert m.batcher is not None
    (frame,) = await m.batcher.submit([(data, req.series)])
    if req.horizon is not None:
        if "step" not in frame.columns:
            raise Refused(422, "horizon: this model forecasts an event, not steps")
        most = int(frame["step"].max())
        if req.horizon > most:
            raise Refused(422, f"horizon is {_num(req.horizon)}, over the model's horizon of {most} steps", limit="horizon")
        frame = frame[frame["step"] <= req.horizon]
    rows = json.loads(frame.to_json(orient="records", date_format="iso"))
    return {"model": m.name, "columns": [str(c) for c in frame.columns], "rows": rows}


# -- asr ----------------------------------------------------------------------------------------

def decode_audio(data: bytes, cfg: ServeConfig) -> Tuple[Any, int]:
    """(mono float32 samples, sample rate) of a WAV/FLAC/OGG file's bytes; the duration cap is
    checked from the header, before decoding."""
    import soundfile as sf

    if not data:
        raise Refused(422, "audio: the file is empty")
    try:
        info = sf.info(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - libsndfile says "format not recognised" in many ways
        raise Refused(422, "audio: not a WAV, FLAC or OGG file libsndfile can read") from None
    if info.samplerate <= 0 or info.frames <= 0:
        raise Refused(422, "audio: the file holds no samples")
    _cap("the audio's duration", round(info.frames / info.samplerate, 3), cfg.max_audio_seconds,
         "max_audio_seconds", " s")
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception:  # noqa: BLE001
        raise Refused(422, "audio: the file is damaged (libsndfile could not decode it)") from None
    return samples.mean(axis=1), int(rate)


def audio_from_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(422, "audio_base64: not valid base64") from None


async def asr(m: Served, req: AsrRequest, cfg: ServeConfig, raw: Optional[bytes] = None) -> Dict[str, Any]:
    _cap("beam", req.beam, cfg.max_beam, "max_beam")
    data = raw if raw is not None else audio_from_base64(req.audio_base64)
    samples, rate = await asyncio.to_thread(decode_audio, data, cfg)
    assert m.batcher is not None
    (out,) = await m.batcher.submit([(samples, rate)], key=(req.beam, req.timestamps))
    result = {"model": m.name, "text": out["text"], "duration_seconds": round(len(samples) / rate, 3)}
    if req.timestamps:
        result["words"] = out.get("words", [])
    return result


HANDLERS = {"sentiment": sentiment, "seq2seq": seq2seq, "charlm": charlm, "forecast": forecast, "asr": asr}

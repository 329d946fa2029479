"""Request and response bodies of ``POST /v1/models/{name}/predict``, one schema per task.

They mirror the Python API (:mod:`rnnkit.predictors`): the same argument names and meanings.
Types are strict (``"3"`` is not a number, ``1`` is not ``true``), unknown fields are refused
(a typo never goes unnoticed), and NaN/Infinity are refused everywhere. Size limits that
depend on the server's options (number of texts, ``length``, beam, audio duration) are checked
in :mod:`.app`, so the error names the option.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

Number = Union[StrictInt, StrictFloat]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# -- requests ---------------------------------------------------------------------------------

class SentimentRequest(_Body):
    """Classify texts."""

    texts: List[StrictStr] = Field(min_length=1, description="texts to classify", examples=[["a gorgeous, witty film"]])


class CharLMRequest(_Body):
    """Generate text; ``stream: true`` answers with Server-Sent Events, one per chunk."""

    prime: StrictStr = Field("", description="text to start from")
    length: StrictInt = Field(500, ge=1, description="characters to generate")
    temperature: Number = Field(1.0, ge=0, description="softmax temperature; 0 = greedy")
    top_k: Optional[StrictInt] = Field(None, ge=1, le=1_000_000, description="sample among the K most likely characters")
    top_p: Optional[Number] = Field(None, gt=0, le=1, description="nucleus sampling threshold")
    seed: Optional[StrictInt] = Field(None, ge=0, le=2**32 - 1, description="same seed, same text")
    stream: StrictBool = Field(False, description="answer with text/event-stream, one event per chunk")


class ForecastRequest(_Body):
    """Forecast from the given history rows (the training CSV's columns), or from the end of
    the training data when ``history`` is omitted."""

    history: Optional[List[Dict[str, Union[StrictStr, Number, StrictBool, None]]]] = Field(
        None, min_length=1, description="rows with the training data's columns (time, target, covariates, group)")
    horizon: Optional[StrictInt] = Field(None, ge=1, le=1_000_000, description="steps to return (at most the model's horizon)")
    series: Optional[StrictStr] = Field(None, description="only this series (default: all)")


class AsrRequest(_Body):
    """Transcribe audio given as base64 (or upload a file as multipart/form-data field ``audio``)."""

    audio_base64: StrictStr = Field(description="a WAV/FLAC/OGG file, base64-encoded")
    beam: StrictInt = Field(1, ge=1, description="CTC beam width; 1 = greedy")
    timestamps: StrictBool = Field(True, description="per-word start/end times and confidences")


class Seq2SeqRequest(_Body):
    """Translate sentences."""

    texts: List[StrictStr] = Field(min_length=1, description="sentences to translate", examples=[["a dog runs ."]])
    beam: StrictInt = Field(5, ge=1, description="beam width; 1 = greedy")
    max_len: Optional[StrictInt] = Field(None, ge=1, description="longest translation in tokens (default: the model's)")


# -- responses --------------------------------------------------------------------------------

class SentimentPrediction(BaseModel):
    label: str
    probability: float
    probabilities: Dict[str, float]


class SentimentResponse(BaseModel):
    model: str
    predictions: List[SentimentPrediction]


class CharLMResponse(BaseModel):
    model: str
    text: str


class ForecastResponse(BaseModel):
    model: str
    columns: List[str]
    rows: List[Dict[str, Union[str, float, int, None]]]


class Word(BaseModel):
    word: str
    start: float
    end: float
    confidence: float


class AsrResponse(BaseModel):
    model: str
    text: str
    words: Optional[List[Word]] = None
    duration_seconds: float


class Seq2SeqResponse(BaseModel):
    model: str
    translations: List[str]


class ErrorResponse(BaseModel):
    error: str
    status: int
    limit: Optional[str] = None


REQUESTS = {"sentiment": SentimentRequest, "charlm": CharLMRequest, "forecast": ForecastRequest,
            "asr": AsrRequest, "seq2seq": Seq2SeqRequest}
RESPONSES = {"sentiment": SentimentResponse, "charlm": CharLMResponse, "forecast": ForecastResponse,
             "asr": AsrResponse, "seq2seq": Seq2SeqResponse}

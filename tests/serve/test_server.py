"""Every endpoint for every task, against the real server in a subprocess on tiny checkpoints;
answers compared with the Python API (rnnkit.predictors.load) on the same directories."""

from __future__ import annotations

import asyncio
import base64
import io
import json

import httpx
import numpy as np
import pytest

from safetensors.numpy import load_file

from rnnkit.predictors import load
from tests.fixtures.asr import tone


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def wav_bytes(samples: np.ndarray, rate: int = 8000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV")
    return buf.getvalue()


def test_health_ready_and_the_model_listing(client, tiny_runs):
    assert client.get("health").json() == {"status": "ok"}
    ready = client.get("ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["models"] == 5
    listing = {m["name"]: m for m in client.get("v1/models").json()["models"]}
    assert sorted(listing) == sorted(tiny_runs)
    for task, path in tiny_runs.items():
        m = listing[task]
        cfg = json.loads((path / "config.json").read_text())
        assert m["task"] == task and m["ready"] is True
        assert m["encoder"] == cfg["model"].get("encoder") and m["metrics"] == cfg.get("metrics", {})
        assert m["global_step"] == cfg.get("global_step")
        weights = load_file(str(path / "model.safetensors"))
        assert 0 < m["parameters"] <= sum(v.size for v in weights.values())  # the size, from the predictor or the weights
        assert "path" not in m  # the file system stays private
    assert client.get("v1/models/sentiment").json()["task"] == "sentiment"


def test_sentiment_answers_as_the_python_api(client, tiny_runs):
    texts = ["a wonderful and moving film", "boring , dull and tedious", "the plot"]
    got = client.post("v1/models/sentiment/predict", json={"texts": texts})
    assert got.status_code == 200
    want = load(tiny_runs["sentiment"]).predict(texts)
    preds = got.json()["predictions"]
    assert [p["label"] for p in preds] == [w["label"] for w in want]
    for p, w in zip(preds, want):
        assert p["probabilities"] == pytest.approx(w["probabilities"], abs=1e-6)


def test_concurrent_sentiment_requests_are_batched_and_equal_unbatched_answers(client, server):
    texts = [f"the film was {w} and {v}" for w in ("great", "dull", "fun", "awful") for v in ("moving", "bad", "superb")]
    alone = [client.post("v1/models/sentiment/predict", json={"texts": [t]}).json()["predictions"][0] for t in texts]
    before = client.get("v1/models/sentiment").json()["served"]

    async def together():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as ac:
            rs = await asyncio.gather(*(ac.post("v1/models/sentiment/predict", json={"texts": [t]}) for t in texts))
        return [r.json()["predictions"][0] for r in rs]

    batched = asyncio.run(together())
    after = client.get("v1/models/sentiment").json()["served"]
    assert after["requests"] - before["requests"] == len(texts)
    assert after["batches"] - before["batches"] < len(texts)  # some requests shared a call
    assert after["largest_batch"] > 1
    for a, b in zip(alone, batched):
        assert a["label"] == b["label"]
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)


def test_charlm_sample_and_stream_match_the_python_api(client, tiny_runs):
    ask = {"prime": "KING:", "length": 60, "temperature": 0.8, "seed": 3}
    text = client.post("v1/models/charlm/predict", json=ask).json()["text"]
    assert text == load(tiny_runs["charlm"]).sample(**ask)
    events = []
    with client.stream("POST", "v1/models/charlm/predict", json={**ask, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        block: dict = {}
        for line in r.iter_lines():
            if not line:
                events.append(block)
                block = {}
            elif line.startswith("event: "):
                block["event"] = line[7:]
            elif line.startswith("data: "):
                block["data"] = json.loads(line[6:])
    chunks = [e["data"]["text"] for e in events if "event" not in e]
    assert len(chunks) > 1 and events[-1] == {"event": "done", "data": {"characters": len("".join(chunks))}}
    assert "".join(chunks) == text  # the prime, then the generated characters


def test_forecast_from_training_data_and_from_history(client, tiny_runs):
    r = client.post("v1/models/forecast/predict", json={})
    assert r.status_code == 200
    body = r.json()
    assert {"series", "step", "target", "forecast"} <= set(body["columns"])
    assert sorted({row["step"] for row in body["rows"]}) == [1, 2, 3]
    want = load(tiny_runs["forecast"]).forecast()
    assert [row["forecast"] for row in body["rows"]] == pytest.approx(list(want["forecast"]), rel=1e-6)
    short = client.post("v1/models/forecast/predict", json={"horizon": 2, "series": "A"}).json()
    assert {row["step"] for row in short["rows"]} == {1, 2} and {row["series"] for row in short["rows"]} == {"A"}
    import pandas as pd

    hist = pd.read_csv(tiny_runs["forecast"].parent / "daily.csv")
    rows = hist[hist["site"] == "A"].iloc[:60][["date", "site", "temp", "humidity"]].to_dict(orient="records")
    r = client.post("v1/models/forecast/predict", json={"history": rows})
    assert r.status_code == 200, r.text
    origin = {row["origin"] for row in r.json()["rows"]}
    assert origin == {str(rows[-1]["date"])[:10]} or all(o.startswith(str(rows[-1]["date"])[:10]) for o in origin)
    over = client.post("v1/models/forecast/predict", json={"horizon": 4})
    assert over.status_code == 422 and over.json()["limit"] == "horizon"


def test_asr_upload_and_base64_give_the_python_api_transcript(client, tiny_runs):
    clip = tone(700, 0.4)
    data = wav_bytes(clip)
    up = client.post("v1/models/asr/predict", files={"audio": ("a.wav", data, "audio/wav")}, data={"beam": "1"})
    assert up.status_code == 200, up.text
    b64 = client.post("v1/models/asr/predict", json={"audio_base64": base64.b64encode(data).decode(), "beam": 1})
    assert b64.status_code == 200 and b64.json()["text"] == up.json()["text"]
    want = load(tiny_runs["asr"]).transcribe((clip, 8000), beam=1, timestamps=True)
    want = want[0] if isinstance(want, list) else want
    assert up.json()["text"] == want["text"] and up.json()["duration_seconds"] == pytest.approx(0.4)
    assert isinstance(up.json()["words"], list)


def test_seq2seq_translates_as_the_python_api(client, tiny_runs):
    texts = ["the red dog runs .", "a small cat sleeps ."]
    r = client.post("v1/models/seq2seq/predict", json={"texts": texts, "beam": 2})
    assert r.status_code == 200
    assert r.json()["translations"] == load(tiny_runs["seq2seq"]).translate(texts, beam=2)


def test_openapi_docs_and_page(client):
    spec = client.get("openapi.json").json()
    assert "/v1/models/{name}/predict" in spec["paths"]
    schemas = spec["components"]["schemas"]
    for name in ("SentimentRequest", "CharLMRequest", "ForecastRequest", "AsrRequest", "Seq2SeqRequest", "ErrorResponse"):
        assert name in schemas
    assert schemas["CharLMRequest"]["properties"]["stream"]["type"] == "boolean"
    docs = client.get("docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    page = client.get("")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1/models" in page.text


# -- malformed requests: each a 4xx JSON error, and the server carries on ---------------------

SENT, LM, FC, ASR, S2S = ("v1/models/" + t + "/predict" for t in ("sentiment", "charlm", "forecast", "asr", "seq2seq"))
J = {"content-type": "application/json"}
MALFORMED = [
    ("bad JSON", SENT, {"content": b'{"texts": [', "headers": J}, 422, None),
    ("not JSON at all", SENT, {"content": b"\xff\xfe\x00garbage", "headers": J}, 422, None),
    ("JSON array, not object", SENT, {"json": ["a"]}, 422, None),
    ("texts not a list", SENT, {"json": {"texts": "abc"}}, 422, "texts"),
    ("texts of numbers", SENT, {"json": {"texts": [1, 2]}}, 422, "texts.0"),
    ("missing texts", SENT, {"json": {}}, 422, "texts"),
    ("empty list", SENT, {"json": {"texts": []}}, 422, "texts"),
    ("blank text", SENT, {"json": {"texts": ["  "]}}, 422, "empty"),
    ("too many texts", SENT, {"json": {"texts": ["good"] * 9}}, 422, "--max-texts"),
    ("unknown field", SENT, {"json": {"texts": ["good"], "foo": 1}}, 422, "foo"),
    ("wrong content type", SENT, {"content": b"texts=good", "headers": {"content-type": "text/plain"}}, 415, "application/json"),
    ("negative length", LM, {"json": {"length": -5}}, 422, "length"),
    ("length over the cap", LM, {"json": {"length": 401}}, 422, "--max-length"),
    ("length as a string", LM, {"json": {"length": "10"}}, 422, "length"),
    ("negative temperature", LM, {"json": {"temperature": -1}}, 422, "temperature"),
    ("top_p over 1", LM, {"json": {"top_p": 1.5}}, 422, "top_p"),
    ("stream not a bool", LM, {"json": {"stream": "yes"}}, 422, "stream"),
    ("NaN temperature", LM, {"content": b'{"temperature": NaN}', "headers": J}, 422, None),
    ("NaN in history", FC, {"content": b'{"history": [{"date": "2020-01-01", "site": "A", "temp": NaN}]}', "headers": J}, 422, None),
    ("history not rows", FC, {"json": {"history": [1, 2]}}, 422, "history"),
    ("history without the columns", FC, {"json": {"history": [{"x": 1}]}}, 422, None),
    ("horizon zero", FC, {"json": {"horizon": 0}}, 422, "horizon"),
    ("unknown series", FC, {"json": {"series": "nowhere"}}, 422, "nowhere"),
    ("non-audio upload", ASR, {"files": {"audio": ("a.wav", b"this is not audio", "audio/wav")}}, 422, "audio"),
    ("empty upload", ASR, {"files": {"audio": ("a.wav", b"", "audio/wav")}}, 422, "empty"),
    ("upload without the audio field", ASR, {"files": {"sound": ("a.wav", b"RIFF", "audio/wav")}}, 422, "sound"),
    ("bad base64", ASR, {"json": {"audio_base64": "%%%not base64%%%"}}, 422, "base64"),
    ("audio over the duration cap", ASR, {"files": {"audio": ("a.wav", wav_bytes(tone(500, 2.5)), "audio/wav")}}, 422,
     "--max-audio-seconds"),
    ("beam zero", S2S, {"json": {"texts": ["a dog"], "beam": 0}}, 422, "beam"),
    ("beam over the cap", S2S, {"json": {"texts": ["a dog"], "beam": 1000}}, 422, "--max-beam"),
    ("body over --max-body-mb", SENT, {"content": b"[" + b" " * (1024 * 1024 + 10) + b"]", "headers": J}, 413,
     "--max-body-mb"),
    ("deeply nested JSON", SENT, {"content": b'{"texts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "headers": J},
     422, None),
    ("a number too large", LM, {"content": b'{"length": 1' + b"0" * 400 + b"}", "headers": J}, 422, "length"),
    ("a 5000-digit number", LM, {"content": b'{"length": 1' + b"0" * 5000 + b"}", "headers": J}, 422, "out of range"),
    ("a 400-digit top_k", LM, {"content": b'{"top_k": 1' + b"0" * 400 + b"}", "headers": J}, 422, "top_k"),
    ("lone surrogate in a prime", LM, {"content": b'{"prime": "\\ud800", "length": 5}', "headers": J}, 422, None),
    ("unknown model", "v1/models/nobody/predict", {"json": {"texts": ["a"]}}, 404, "nobody"),
    ("GET on predict", SENT, {"method": "GET"}, 405, None),
    ("no such endpoint", "v2/whatever", {"json": {}}, 404, None),
]


@pytest.mark.parametrize("what,path,kwargs,status,needle", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_requests_are_4xx_json_errors(client, what, path, kwargs, status, needle):
    kwargs = dict(kwargs)
    method = kwargs.pop("method", "POST")
    r = client.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status and isinstance(body["error"], str) and "\n" not in body["error"]
    assert "Traceback" not in r.text and "File \"" not in r.text
    if needle:
        assert needle in body["error"]
    if needle and needle.startswith("--"):
        assert body["limit"] == needle[2:].replace("-", "_")


def test_the_server_is_healthy_after_the_malformed_requests(client):
    assert len(MALFORMED) >= 20
    for what, path, kwargs, _, _ in MALFORMED:  # once more, all of them, then real work
        kwargs = dict(kwargs)
        client.request(kwargs.pop("method", "POST"), path, **kwargs)
    assert client.get("health").status_code == 200 and client.get("ready").status_code == 200
    r = client.post(SENT, json={"texts": ["a great film"]})
    assert r.status_code == 200 and r.json()["predictions"][0]["label"]


@pytest.mark.parametrize("raw,name", [(b"/v1/models/%2E%2E/predict", ".."), (b"/v1/models/sentiment..x/predict",
                                                                              "sentiment..x"),
                                      (b"/v1/models/..%5Csentiment/predict", "..\\sentiment"), (b"/v1/models/~/predict", "~")])
def test_unknown_names_including_dotdot_are_404_naming_the_model(server, raw, name):
    with httpx.Client(timeout=30) as c:
        url = httpx.URL(server.url).copy_with(raw_path=raw)
        r = c.post(url, json={"texts": ["a"]})
    assert r.status_code == 404 and r.json() == {"error": f"no model named {name!r} (GET /v1/models lists them)",
                                                 "status": 404}


def test_path_traversal_never_reaches_a_model(server):
    with httpx.Client(timeout=30) as c:
        url = httpx.URL(server.url).copy_with(raw_path=b"/v1/models/..%2F..%2Fsentiment/predict")
        r = c.post(url, json={"texts": ["a"]})
    assert r.status_code == 404 and "predictions" not in r.text


def test_a_chunked_body_over_the_cap_is_refused_while_it_arrives(client):
    sent = []

    def chunks():
        for _ in range(64):  # 4 MB announced by nobody: no Content-Length, chunked encoding
            sent.append(1)
            yield b" " * 65536

    r = client.post(SENT, content=chunks(), headers=J)
    assert r.status_code == 413 and r.json()["limit"] == "max_body_mb"
    assert client.get("health").status_code == 200


def test_concurrent_requests_of_every_task_equal_their_answers_alone(client, server):
    """Batched (sentiment, seq2seq, asr, forecast) or side by side in threads (charlm): the
    same answers as one request at a time."""
    clip = base64.b64encode(wav_bytes(tone(500, 0.35))).decode()
    asks = [("charlm", {"prime": "KING:", "length": 40, "temperature": 0.9, "seed": s}) for s in range(4)]
    asks += [("seq2seq", {"texts": [t], "beam": 2}) for t in ("the red dog runs .", "a cat sleeps .", "the old man eats .")]
    asks += [("asr", {"audio_base64": clip, "beam": 1})] * 2
    asks += [("forecast", {"series": s}) for s in ("A", "B", "A")]
    asks += [("sentiment", {"texts": [t]}) for t in ("great fun", "dull", "the plot was superb")]
    alone = [client.post(f"v1/models/{m}/predict", json=b).json() for m, b in asks]

    async def together():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as ac:
            rs = await asyncio.gather(*(ac.post(f"v1/models/{m}/predict", json=b) for m, b in asks))
        return [r.json() for r in rs]

    for (m, _), a, b in zip(asks, alone, asyncio.run(together())):
        if m == "sentiment":
            assert a["predictions"][0]["probabilities"] == pytest.approx(b["predictions"][0]["probabilities"], abs=1e-6)
        elif m == "forecast":
            assert [r["forecast"] for r in a["rows"]] == pytest.approx([r["forecast"] for r in b["rows"]], rel=1e-6)
        elif m == "asr":
            assert a["text"] == b["text"] and [w["word"] for w in a["words"]] == [w["word"] for w in b["words"]]
            for wa, wb in zip(a["words"], b["words"]):
                assert (wa["start"], wa["end"], wa["confidence"]) == pytest.approx(
                    (wb["start"], wb["end"], wb["confidence"]), abs=1e-5)
        else:
            assert a == b, m

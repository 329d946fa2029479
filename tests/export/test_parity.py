"""ONNX exports against the torch model on real inputs from each task's data: probabilities,
forecasts, log-probs and logits within 1e-4 (batch > 1, mixed lengths), identical greedy
decodes (charlm, asr, seq2seq). The exports come from `rnnkit export` (conftest)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnkit import checkpoint as C
from rnnkit.export.onnx_export import build_modules
from rnnkit.export.onnx_runtime import load_net

TOL = 1e-4


def _modules(ck):
    c = C.load_checkpoint(ck)
    return build_modules(c.config, c.weights)


def test_export_directory_layout_and_self_check(exported, trained):
    for task, d in exported.items():
        cfg = json.loads((d / "config.json").read_text())
        sec = cfg["export"]
        assert cfg["task"] == task and sec["format"] == "onnx" and sec["opset"] == 17
        assert sorted(p.name for p in d.iterdir()) == sorted(["config.json", *sec["files"]])
        for name, digest in sec["files"].items():
            assert C.sha256_file(d / name) == digest
        src = json.loads((trained[task] / "config.json").read_text())
        assert cfg["model"] == src["model"] and cfg["data"] == src["data"]  # vocabulary, scalers, units, subwords
        assert sec["source"]["weights_sha256"] == src["weights_sha256"]
        assert sec["self_check"]["max_abs_diff"] <= TOL
        assert sec["self_check"].get("greedy_identical", True) is True


def test_charlm_parity_on_the_corpus(trained, exported):
    from rnnkit.data.text import CharVocab
    from rnnkit.tasks import charlm

    encoder, task = _modules(trained["charlm"])
    cfg, net = load_net(exported["charlm"])
    ids = CharVocab.from_json(cfg["data"]["vocab"]).encode((trained["charlm"].parent / "tiny.txt").read_text()[:3000])
    nats, n = net.score(ids)
    t_nats, t_n = charlm.score_ids(encoder, task, ids, n_streams=8, seq_len=256)  # the torch predictor's layout
    assert n == t_n and abs(nats - t_nats) <= TOL
    x = np.stack([ids[:40], ids[100:140], ids[900:940]])  # batch 3 of real text, state carried from zero
    logits, state = net.run(x)
    with torch.no_grad():
        y, t_state = encoder(task.embedding(torch.from_numpy(x)))
        assert np.abs(logits - task.head(y).numpy()).max() <= TOL
        assert max(np.abs(a - b.numpy()).max() for a, b in zip(state, t_state)) <= TOL
    ours, theirs = net.stepper(), charlm.TorchStepper(encoder, task)
    a = b = None
    seq_a, seq_b, tok_a, tok_b = [], [], int(ids[0]), int(ids[0])
    for t in range(60):
        la, a = ours.step(tok_a, a)
        lb, b = theirs.step(tok_b, b)
        assert la.dtype == np.float64 and np.abs(la - lb).max() <= TOL
        tok_a, tok_b = (int(ids[t + 1]), int(ids[t + 1])) if t < 20 else (int(la.argmax()), int(lb.argmax()))
        seq_a.append(tok_a)
        seq_b.append(tok_b)
    assert seq_a == seq_b


def test_sentiment_parity_on_reviews(trained, exported):
    from rnnkit.data.sentiment import Vocab, encode_texts
    from rnnkit.tasks import sentiment
    from tests.fixtures.sentiment import synthetic_reviews

    encoder, task = _modules(trained["sentiment"])
    cfg, net = load_net(exported["sentiment"])
    texts = [t for t, _ in synthetic_reviews(40, seed=7)] + ["great", "dull"]
    ids, _ = encode_texts(Vocab.from_json(cfg["data"]["vocab"]), texts, 400, "head+tail")
    assert len({len(i) for i in ids}) > 5  # mixed lengths
    probs = net.proba(ids)
    assert probs.shape == (len(texts), 2) and probs.dtype == np.float64
    assert np.abs(probs - sentiment.predict_proba(encoder, task, ids)).max() <= TOL
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-9)


def test_forecast_parity_on_windows(trained, exported):
    from rnnkit.data import timeseries as ts

    encoder, task = _modules(trained["forecast"])
    cfg, net = load_net(exported["forecast"])
    data = ts.build(ts.Spec(**cfg["data"]["spec"]), saved=cfg["data"])
    n = len(data.windows["test"])
    x = data.batch(np.arange(min(n, 16)), "test")["x"]
    assert x.shape[0] > 1
    ours = net.predict(x)
    with torch.no_grad():
        xt = torch.from_numpy(x)
        theirs = task.predict(encoder(xt)[0], xt, net.levels)
    assert set(ours) == set(theirs) == {"mean"}
    assert np.abs(ours["mean"] - theirs["mean"]).max() <= TOL
    assert net.autoregressive is False and net.levels == (0.1, 0.5, 0.9)


def test_asr_parity_on_recordings(trained, exported):
    from rnnkit.data.audio import LogMel, load_audio, normalise
    from rnnkit.tasks import asr
    from rnnkit.training.recipes.asr import feature_config

    encoder, task = _modules(trained["asr"])
    cfg, net = load_net(exported["asr"])
    fe = LogMel(feature_config(cfg["model"]))
    wavs = sorted((trained["asr"].parent / "digits").glob("*.wav"))
    feats = [normalise(fe(load_audio(p, cfg["model"]["sample_rate"]))) for p in wavs]
    assert len({len(f) for f in feats}) >= 3
    ours, theirs = net.posteriors(feats), asr.posteriors(encoder, task, feats)
    assert [a.shape for a in ours] == [b.shape for b in theirs]
    assert max(np.abs(a - b).max() for a, b in zip(ours, theirs)) <= TOL
    assert [asr.greedy_decode(a) for a in ours] == [asr.greedy_decode(b) for b in theirs]


@pytest.mark.parametrize("beam,ngram", [(1, 0), (3, 0), (1, 2), (4, 2)])
def test_seq2seq_decodes_match_torch(trained, exported, beam, ngram):
    from rnnkit.data.parallel import SubwordVocab
    from rnnkit.tasks import seq2seq
    from tests.fixtures.seq2seq import toy_pairs

    encoder, task = _modules(trained["seq2seq"])
    cfg, net = load_net(exported["seq2seq"])
    src, _ = toy_pairs(12, seed=5)
    ids = SubwordVocab.from_json(cfg["data"]["src_vocab"]).encode(src + ["the dog .", "a big old red cat sings ."])
    ours = net.translate_ids(ids, beam, 0.6, None, 64, ngram)
    theirs = seq2seq.translate_ids(encoder, task, ids, beam=beam, alpha=0.6, no_repeat_ngram=ngram)
    assert [h.tokens for h in ours] == [h.tokens for h in theirs]
    assert max(abs(a.score - b.score) for a, b in zip(ours, theirs)) <= TOL
    assert max(np.abs(a.attention - b.attention.numpy()).max() for a, b in zip(ours, theirs)) <= TOL

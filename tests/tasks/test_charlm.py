"""Char-LM task: scoring, fast generation path == torch, carried state == recomputation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnnkit.reference.generate import generate
from rnnkit.reference.runtime import RecurrentLMRuntime
from rnnkit.reference.sampling import SamplingParams, next_token
from rnnkit.tasks import charlm

KINDS = ["lstm", "gru", "rnn", "rnn-relu"]


def _model(kind, V=11, E=6, H=8, L=2, seed=0):
    torch.manual_seed(seed)
    cfg = {"encoder": kind, "embedding_dim": E, "hidden_size": H, "num_layers": L, "dropout": 0.0}
    enc, task = charlm.build(cfg, V)
    # larger weights than the default init, so the test sees saturating gates
    with torch.no_grad():
        for p in list(enc.parameters()) + list(task.parameters()):
            p.mul_(2.0)
    weights = {f"encoder.{k}": v.numpy().copy() for k, v in enc.state_dict().items()}
    weights.update({f"task.{k}": v.numpy().copy() for k, v in task.state_dict().items()})
    return cfg, enc.eval(), task.eval(), weights


@pytest.mark.parametrize("kind", KINDS)
def test_numpy_runtime_equals_torch_forward(kind):
    cfg, enc, task, weights = _model(kind)
    toks = torch.randint(0, 11, (1, 40))
    with torch.no_grad():
        y, _ = enc(task.embedding(toks))
        ref = task.head(y)[0].numpy()  # (T, V)
    rt = RecurrentLMRuntime(weights, kind, cfg["num_layers"])
    state, out = None, []
    for t in toks[0].tolist():
        logits, state = rt.step(t, state)
        out.append(logits)
    np.testing.assert_allclose(np.stack(out), ref, rtol=0, atol=2e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_generation_with_carried_state_equals_recomputing_from_the_prefix(kind):
    cfg, enc, task, weights = _model(kind)
    vocab = [chr(ord("a") + i) for i in range(11)]
    params = SamplingParams(temperature=1.0)
    for name, stepper in [("numpy", RecurrentLMRuntime(weights, kind, 2)), ("torch", charlm.TorchStepper(enc, task))]:
        text = "".join(generate(stepper, vocab, "abc", 30, params, seed=7))
        # recompute: at every position, run the whole prefix from scratch and draw with the same RNG
        rng = np.random.default_rng(7)
        prefix = "abc"
        for ch in text:
            ids = torch.tensor([[vocab.index(c) for c in prefix]])
            with torch.no_grad():
                y, _ = enc(task.embedding(ids))
                logits = task.head(y)[0, -1].double().numpy()
            tok = next_token(logits, rng, params)
            assert vocab[tok] == ch, f"{name}: carried-state generation diverged at {len(prefix)}"
            prefix += ch


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_text_is_identical_across_engines(kind):
    cfg, enc, task, weights = _model(kind, seed=3)
    vocab = [chr(ord("a") + i) for i in range(11)]
    params = SamplingParams(temperature=0)
    a = "".join(generate(RecurrentLMRuntime(weights, kind, 2), vocab, "ab", 50, params))
    b = "".join(generate(charlm.TorchStepper(enc, task), vocab, "ab", 50, params))
    assert a == b


def test_sampler_semantics():
    rng = np.random.default_rng(0)
    logits = np.array([1.0, 3.0, 3.0, -2.0])
    assert next_token(logits, rng, SamplingParams(temperature=0)) == 1  # ties -> lower index
    draws = [next_token(logits, rng, SamplingParams(1.0, top_k=2)) for _ in range(300)]
    assert set(draws) == {1, 2}
    draws = [next_token(np.log([0.5, 0.3, 0.15, 0.05]), rng, SamplingParams(1.0, top_p=0.7)) for _ in range(300)]
    assert set(draws) == {0, 1}
    draws = [next_token(np.log([0.5, 0.3, 0.15, 0.05]), rng, SamplingParams(1.0)) for _ in range(4000)]
    freq = np.bincount(draws, minlength=4) / 4000
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.03)
    cold = [next_token(np.log([0.5, 0.3, 0.15, 0.05]), rng, SamplingParams(0.2)) for _ in range(500)]
    assert np.mean(np.array(cold) == 0) > 0.9
    assert next_token(logits, rng, SamplingParams(1e-310)) == 1  # overflowing temperature: greedy, not garbage
    a = [next_token(logits, np.random.default_rng(5), SamplingParams(0.9)) for _ in range(5)]
    b = [next_token(logits, np.random.default_rng(5), SamplingParams(0.9)) for _ in range(5)]
    assert a == b
    for bad in [dict(temperature=-1), dict(top_k=0), dict(top_p=0), dict(top_p=1.5)]:
        with pytest.raises(ValueError):
            SamplingParams(**bad)


def test_score_ids_equals_full_sequence_cross_entropy():
    cfg, enc, task, _ = _model("lstm")
    ids = np.random.default_rng(0).integers(0, 11, size=301)
    loss, n = charlm.score_ids(enc, task, ids, n_streams=1, seq_len=37)
    with torch.no_grad():
        x = torch.from_numpy(ids[:-1])[None]
        y, _ = enc(task.embedding(x))
        ref = torch.nn.functional.cross_entropy(task.head(y)[0], torch.from_numpy(ids[1:])).item()
    assert n == 300 and math.isclose(loss, ref, rel_tol=1e-6)


def test_weight_tying_shares_the_matrix():
    enc, task = charlm.build({"encoder": "lstm", "embedding_dim": 8, "hidden_size": 8, "num_layers": 1,
                              "dropout": 0.0, "tie_weights": True}, 5)
    assert task.head.weight is task.embedding.weight

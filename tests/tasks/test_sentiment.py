"""The sentiment head: masked pooling (padding never leaks), bidirectional last state, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.tasks import sentiment as st


def _model(pooling, bidirectional, encoder="lstm", layers=1):
    torch.manual_seed(0)
    cfg = {"encoder": encoder, "embedding_dim": 6, "hidden_size": 5, "num_layers": layers, "dropout": 0.0,
           "bidirectional": bidirectional, "pooling": pooling}
    return st.build(cfg, vocab_size=20, n_classes=3)


@pytest.mark.parametrize("pooling", st.POOLINGS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("encoder", ["lstm", "hand-gru"])
def test_padded_batch_equals_each_text_alone(pooling, bidirectional, encoder):
    encoder_, task = _model(pooling, bidirectional, encoder, layers=2)
    encoder_.eval(), task.eval()
    rng = np.random.default_rng(0)
    ids = [rng.integers(2, 20, size=n) for n in (7, 1, 4, 9)]
    batched = st.predict_proba(encoder_, task, ids)
    for i, a in enumerate(ids):
        alone = st.predict_proba(encoder_, task, [a])
        np.testing.assert_allclose(batched[i], alone[0], atol=1e-6)
    # padding content is irrelevant: garbage ids past the length change nothing
    batch = st.collate(ids)
    garbage = batch["x"].clone()
    garbage[garbage == 0] = 13
    with torch.no_grad():
        outs = []
        for x in (batch["x"], garbage):
            e, lens = task.inputs({"x": x, "lengths": batch["lengths"]})
            y, _ = encoder_(e, None, lens)
            outs.append(task.logits(y, lens))
    torch.testing.assert_close(outs[0], outs[1])


def test_bidirectional_last_is_each_directions_final_state():
    encoder, task = _model("last", True)
    x = torch.randn(3, 6, 6)
    lengths = torch.tensor([6, 2, 4])
    with torch.no_grad():
        y, (h, _) = encoder(x, None, lengths)
        pooled = task.pool(y, lengths)
    torch.testing.assert_close(pooled, torch.cat([h[-2], h[-1]], dim=-1))


def test_pooling_by_hand():
    _, task = _model("mean", False)
    y = torch.tensor([[[1.0], [3.0], [100.0]], [[-2.0], [4.0], [-6.0]]])
    lengths = torch.tensor([2, 3])
    assert task.pool(y, lengths).flatten().tolist() == pytest.approx([2.0, -4 / 3])
    task.pooling = "max"
    assert task.pool(y, lengths).flatten().tolist() == [3.0, 4.0]
    task.pooling = "last"
    assert task.pool(y, lengths).flatten().tolist() == [3.0, -6.0]


def test_loss_and_collate():
    encoder, task = _model("attention", True)
    batch = st.collate([np.array([3, 4, 5]), np.array([6])], np.array([2, 0]))
    assert batch["x"].tolist() == [[3, 4, 5], [6, 0, 0]] and batch["lengths"].tolist() == [3, 1]
    x, lens = task.inputs(batch)
    y, _ = encoder(x, None, lens)
    loss, m = task.loss(y, batch)
    expected = torch.nn.functional.cross_entropy(task.logits(y, lens), batch["y"])
    torch.testing.assert_close(loss, expected)
    assert m["tokens"] == 2.0 and 0 <= m["correct"] <= 2
    assert m[task.rate_unit] == 2.0  # training speed counts texts
    loss.backward()
    assert task.attention[0].weight.grad.abs().sum() > 0


def test_eval_batches_cover_every_index_once_within_budget():
    lengths = np.array([5, 300, 2, 40, 40, 7, 1000, 3])
    batches = st.eval_batches(lengths, max_tokens=400)
    assert sorted(np.concatenate(batches).tolist()) == list(range(8))
    for b in batches:
        assert len(b) == 1 or lengths[b].max() * len(b) <= 400


def test_metrics_match_hand_counts():
    y = np.array([0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9]])
    m = st.metrics(y, probs, ["neg", "pos"])
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion_matrix"] == [[1, 1], [1, 2]]
    # F1(neg) = 2*1/(2*1+1+1) = 0.5; F1(pos) = 2*2/(2*2+1+1) = 2/3
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    # (pos, neg) pairs ranked correctly: pos {0.8, 0.3, 0.9} vs neg {0.1, 0.6} -> 5 of 6
    assert m["roc_auc"] == pytest.approx(5 / 6)
    three = st.metrics(np.array([0, 2]), np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]]), ["a", "b", "c"])
    assert "roc_auc" not in three and three["confusion_matrix"][1] == [0, 0, 0]


@pytest.mark.parametrize("name", ["tcn", "transformer"])
def test_non_recurrent_bidirectional_encoders_pool_one_vector_per_step(name):
    encoder, task = _model("last", True, name)
    assert not task.bidirectional  # one non-causal output per step, no [forward | backward] halves
    encoder.eval(), task.eval()
    ids = [np.array([3, 4, 5, 6]), np.array([7, 8])]
    batched = st.predict_proba(encoder, task, ids)
    for i, a in enumerate(ids):
        np.testing.assert_allclose(batched[i], st.predict_proba(encoder, task, [a])[0], atol=1e-5)

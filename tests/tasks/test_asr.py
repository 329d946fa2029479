"""The asr model (padding never leaks, true lengths reach CTC) and the decoders."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.tasks import asr

MODEL = dict(encoder="lstm", hidden_size=12, num_layers=2, bidirectional=True, dropout=0.0, conv_channels=4,
             subsample=4, n_mels=16)


def _tiny(seed=0, **kw):
    torch.manual_seed(seed)
    return asr.build({**MODEL, **kw}, 6)


@pytest.mark.parametrize("subsample", [1, 2, 4])
def test_padded_batch_equals_single_utterances(subsample):
    enc, task = _tiny(subsample=subsample)
    enc.eval(), task.eval()
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(n, 16)).astype(np.float32) for n in (37, 20, 9)]
    batched = asr.posteriors(enc, task, feats)
    for f, b in zip(feats, batched):
        alone = asr.posteriors(enc, task, [f])[0]
        assert alone.shape == b.shape
        assert alone.shape[0] == math.ceil(len(f) / subsample)
        np.testing.assert_allclose(b, alone, atol=1e-5)


def test_ctc_loss_uses_true_lengths():
    enc, task = _tiny()
    enc.eval(), task.eval()
    rng = np.random.default_rng(1)
    feats = [rng.normal(size=(n, 16)).astype(np.float32) for n in (40, 24)]
    labels = [[1, 2, 3], [4]]
    batch = {**asr.pad_features(feats), **asr.pad_labels(labels)}
    x, lengths = task.inputs(batch)
    y, _ = enc(x, None, lengths)
    loss, m = task.loss(y, batch)
    assert m["tokens"] == 4
    assert m[task.rate_unit] == 2  # training speed counts utterances
    # garbage in the label padding changes nothing
    batch2 = {**batch, "labels": batch["labels"].clone()}
    batch2["labels"][1, 1:] = 5
    x2, l2 = task.inputs(batch2)
    loss2, _ = task.loss(enc(x2, None, l2)[0], batch2)
    assert loss2.item() == pytest.approx(loss.item(), abs=1e-6)
    # equals torch's CTC on each utterance alone, summed over labels
    total = 0.0
    for f, lab in zip(feats, labels):
        b = {**asr.pad_features([f]), **asr.pad_labels([lab])}
        xi, li = task.inputs(b)
        lp = task.log_probs(enc(xi, None, li)[0])
        total += F.ctc_loss(lp.transpose(0, 1), torch.tensor(lab), li, torch.tensor([len(lab)]), blank=0,
                            reduction="sum").item()
    assert loss.item() == pytest.approx(total / 4, rel=1e-5)


@pytest.mark.parametrize("subsample", [1, 2, 4])
def test_out_frames_matches_the_front_end(subsample):
    front = asr.ConvSubsampling(16, 2, subsample)
    n = torch.arange(1, 60)
    assert front.out_lengths(n).tolist() == [asr.out_frames(int(k), subsample) for k in n]
    y, lengths = front(torch.zeros(1, 23, 16), torch.tensor([23]))
    assert y.shape[1] == lengths[0] == asr.out_frames(23, subsample)


@pytest.mark.parametrize("labels", [[1, 2, 3], [1, 1], [2, 3, 3, 3, 1], [4, 4, 4]])
def test_ctc_min_frames_is_where_the_loss_becomes_finite(labels):
    need = asr.ctc_min_frames(labels)
    assert need == len(labels) + sum(a == b for a, b in zip(labels, labels[1:]))
    lp = torch.log_softmax(torch.randn(need, 1, 6, dtype=torch.float64), -1)
    for t, finite in ((need - 1, False), (need, True)):
        loss = F.ctc_loss(lp[:t], torch.tensor(labels), torch.tensor([t]), torch.tensor([len(labels)]), blank=0)
        assert math.isfinite(loss.item()) is finite


def test_model_overfits_a_batch_and_greedy_decodes_it():
    enc, task = _tiny(subsample=2)
    rng = np.random.default_rng(2)
    feats = [rng.normal(size=(n, 16)).astype(np.float32) for n in (30, 26, 34, 22)]
    labels = [[1, 2, 3], [3, 3, 1], [5, 4], [2]]
    batch = {**asr.pad_features(feats), **asr.pad_labels(labels)}
    opt = torch.optim.Adam(list(enc.parameters()) + list(task.parameters()), lr=0.03)
    for _ in range(200):
        x, lengths = task.inputs(batch)
        loss, _ = task.loss(enc(x, None, lengths)[0], batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5
    decoded = [asr.greedy_decode(lp) for lp in asr.posteriors(enc, task, feats)]
    assert decoded == labels  # including the repeated unit of [3, 3, 1]


def test_greedy_merges_repeats_and_drops_blanks():
    path = [0, 1, 1, 0, 1, 2, 2, 0, 0, 3]
    lp = np.log(np.eye(4)[path] * 0.97 + 0.01)
    assert asr.greedy_decode(lp) == [1, 1, 2, 3]


def _brute_force_best(lp: np.ndarray):
    """The most probable labelling, summing over every path (tiny T and V only)."""
    T, V = lp.shape
    scores = {}
    for path in itertools.product(range(V), repeat=T):
        lab = tuple(k for k, _ in itertools.groupby(path) if k != 0)
        scores[lab] = np.logaddexp(scores.get(lab, -np.inf), sum(lp[t, s] for t, s in enumerate(path)))
    return max(scores.items(), key=lambda kv: kv[1])[0]


@pytest.mark.parametrize("seed", range(6))
def test_beam_search_finds_the_most_probable_labelling(seed):
    rng = np.random.default_rng(seed)
    lp = np.log(rng.dirichlet(np.ones(3) * 0.7, size=5))
    best = list(_brute_force_best(lp))
    assert asr.beam_decode(lp, beam_size=64, prune=-1e9) == best


def test_beam_beats_greedy_on_the_classic_case():
    # greedy picks blank at both frames (0.6 each -> "" with 0.36); "a" has 1 - 0.36 = 0.64
    lp = np.log(np.array([[0.6, 0.4], [0.6, 0.4]]))
    assert asr.greedy_decode(lp) == []
    assert asr.beam_decode(lp, beam_size=4) == [1]


def test_word_constraint_keeps_only_vocabulary_words():
    # units: 1 = space, 2 = a, 3 = b; allowed words: "ab", "b"
    c = asr.WordConstraint.from_words([[2, 3], [3]], space=1)
    # frames favour "a a" (not a word) but allow "ab b"
    probs = np.array([[0.1, 0.05, 0.8, 0.05], [0.1, 0.05, 0.45, 0.4], [0.1, 0.8, 0.05, 0.05],
                      [0.1, 0.05, 0.45, 0.4]])
    lp = np.log(probs)
    free = asr.beam_decode(lp, 8)
    constrained = asr.beam_decode(lp, 8, c)
    assert free != constrained
    words = [tuple(g) for k, g in itertools.groupby(constrained, lambda u: u == 1) if not k]
    assert words and all(w in {(2, 3), (3,)} for w in words)


def test_word_constraint_never_returns_an_unfinished_word():
    # units: 1 = space, 2 = a, 3 = b; allowed words: "ab", "b"; the frames spell "b a" and stop
    c = asr.WordConstraint.from_words([[2, 3], [3]], space=1)
    lp = np.log(np.array([[0.02, 0.02, 0.02, 0.94], [0.02, 0.94, 0.02, 0.02], [0.02, 0.02, 0.94, 0.02]]))
    assert asr.beam_decode(lp, 1, c) == [3]
    assert asr.beam_decode(lp[2:], 1, c) == []
    assert asr.beam_decode(lp, 1) == [3, 1, 2]


def test_forced_alignment_and_word_times():
    # frames: a a _ b _ _ space c c
    path = [2, 2, 0, 3, 0, 0, 1, 4, 4]
    lp = np.log(np.eye(5)[path] * 0.95 + 0.01)
    assert asr.ctc_align(lp, [2, 3, 1, 4]) == [(0, 1), (3, 3), (6, 6), (7, 8)]
    assert asr.word_times(lp, [2, 3, 1, 4], space=1, frame_seconds=0.04) == [(0, 4), (7, 9)]


def test_error_rates():
    m = asr.error_rates(["one two three", "four"], ["one two", "four"], ["one two three", "four"],
                        ["one two", "four"])
    assert m["wer"] == pytest.approx(1 / 4) and m["accuracy"] == 0.5 and m["words"] == 4
    assert m["cer"] == pytest.approx(6 / 17)

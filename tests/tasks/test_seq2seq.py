"""The attentional encoder-decoder: equivalent routes, masks, loss, schedule, decoding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rnnkit.data.parallel import BOS, EOS, PAD
from rnnkit.tasks import seq2seq as s2s
from rnnkit.training.recipes.seq2seq import collate

V = 23


def make(attention="additive", decoder="lstm", input_feeding=False, encoder="gru", **kw):
    torch.manual_seed(0)
    cfg = dict(encoder=encoder, hidden_size=6, num_layers=1, bidirectional=True, decoder=decoder,
               decoder_hidden=7, decoder_layers=2, attention=attention, attention_size=8,
               input_feeding=input_feeding, embedding_dim=8, dropout=0.0, tie_weights=True,
               label_smoothing=0.0, teacher_forcing=1.0, teacher_forcing_end=None, teacher_forcing_steps=0)
    cfg.update(kw)
    enc, task = s2s.build(cfg, V, V, shared_vocab=True)
    return enc.double().eval(), task.double().eval()


def batch_of(src, tgt):
    return collate(src, tgt)


SRC = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
TGT = [[15, 16, 17], [18, 19, 20, 21, 22], [4]]


def run(enc, task, b, tf=1.0):
    x, lengths = task.inputs(b)
    y, _ = enc(x.double(), None, lengths)
    return task.forward_train(y, b["src_len"], b["tgt_in"], b["tgt_len"], tf)


@pytest.mark.parametrize("attention", s2s.ATTENTIONS)
@pytest.mark.parametrize("decoder", ["lstm", "gru"])
def test_parallel_decoder_equals_step_loop(attention, decoder):
    enc, task = make(attention, decoder)
    b = batch_of(SRC, TGT)
    fast, w_fast = run(enc, task, b)  # fused decoder over the whole target
    # the step loop: the path taken by scheduled sampling, input feeding and decoding
    x, lengths = task.inputs(b)
    y, _ = enc(x, None, lengths)
    mem = task.memory(y, b["src_len"])
    state, prev, slow = task.initial_state(mem), None, []
    for t in range(b["tgt_in"].shape[1]):
        lg, state, prev, _ = task.step(b["tgt_in"][:, t], state, prev, mem)
        slow.append(lg)
    slow = torch.stack(slow, 1)
    valid = b["tgt_out"] != PAD
    torch.testing.assert_close(fast[valid], slow[valid], rtol=1e-10, atol=1e-10)
    # and forward_train's own loop (teacher forcing just below 1 but never sampling)
    loop, w_loop = task.forward_train(y, b["src_len"], b["tgt_in"], b["tgt_len"], 1.0 - 1e-12)
    torch.testing.assert_close(fast[valid], loop[valid], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(w_fast[valid], w_loop[valid], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("input_feeding", [False, True])
def test_padded_batch_equals_one_sentence_at_a_time(input_feeding):
    enc, task = make("multiplicative", input_feeding=input_feeding)
    b = batch_of(SRC, TGT)
    logits, w = run(enc, task, b)
    for i, (s, t) in enumerate(zip(SRC, TGT)):
        one, w1 = run(enc, task, batch_of([s], [t]))
        n = len(t) + 1
        torch.testing.assert_close(logits[i, :n], one[0, :n], rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(w[i, :n, :len(s)], w1[0, :n, :len(s)], rtol=1e-9, atol=1e-10)


def test_attention_never_looks_at_source_padding():
    enc, task = make("additive")
    b = batch_of(SRC, TGT)
    _, w = run(enc, task, b)  # (B, T, S)
    for i, s in enumerate(SRC):
        assert torch.all(w[i, :, len(s):] == 0)
        torch.testing.assert_close(w[i].sum(-1), torch.ones(w.shape[1], dtype=w.dtype))


def test_loss_counts_true_tokens_and_applies_label_smoothing():
    enc, task = make(label_smoothing=0.2)
    b = batch_of(SRC, TGT)
    x, lengths = task.inputs(b)
    y, _ = enc(x, None, lengths)
    loss, m = task.loss(y, b)
    assert m["tokens"] == sum(len(t) + 1 for t in TGT)
    assert m[task.rate_unit] == len(SRC)  # training speed counts sentence pairs
    logits, _ = task.forward_train(y, b["src_len"], b["tgt_in"], b["tgt_len"])
    logp = F.log_softmax(logits, -1)[b["tgt_out"] != PAD]  # (N, V)
    gold = b["tgt_out"][b["tgt_out"] != PAD]
    nll = -logp.gather(1, gold[:, None]).mean()
    smooth = -logp.mean()
    torch.testing.assert_close(loss, 0.8 * nll + 0.2 * smooth)


def test_tied_weights_and_shared_embeddings():
    _, task = make()
    assert task.head.weight is task.tgt_embedding.weight is task.src_embedding.weight
    with pytest.raises(ValueError, match="attention_size == embedding_dim"):
        make(attention_size=9)


def test_teacher_forcing_schedule_and_counter():
    enc, task = make(teacher_forcing=1.0, teacher_forcing_end=0.5, teacher_forcing_steps=10)
    assert [task.teacher_forcing_ratio(s) for s in (0, 5, 10, 20)] == [1.0, 0.75, 0.5, 0.5]
    b = batch_of(SRC, TGT)
    enc.train(), task.train()
    for _ in range(3):
        x, lengths = task.inputs(b)
        y, _ = enc(x, None, lengths)
        loss, m = task.loss(y, b)
        loss.backward()
    assert int(task.tf_step) == 3 and m["teacher_forcing"] == pytest.approx(0.9)
    assert "task.tf_step" in {f"task.{k}" for k in task.state_dict()}  # saved with the weights: exact resume
    task.eval()
    x, lengths = task.inputs(b)
    task.loss(enc(x, None, lengths)[0], b)
    assert int(task.tf_step) == 3  # validation does not advance the schedule


def test_scheduled_sampling_feeds_predictions():
    enc, task = make()
    b = batch_of(SRC, TGT)
    torch.manual_seed(1)
    gold, _ = run(enc, task, b, tf=1.0)
    sampled, _ = run(enc, task, b, tf=0.0)  # always the model's own previous argmax
    valid = b["tgt_out"] != PAD
    torch.testing.assert_close(gold[:, 0], sampled[:, 0])  # step 0 always reads BOS
    assert not torch.allclose(gold[valid], sampled[valid])


def teacher_forced_logp(enc, task, src, tokens):
    b = batch_of([src], [tokens])
    logits, _ = run(enc, task, b)
    logp = F.log_softmax(logits.double(), -1)[0]
    gold = b["tgt_out"][0]
    return float(logp.gather(1, gold[:, None]).sum())


@pytest.mark.parametrize("input_feeding", [False, True])
def test_decoding_scores_equal_recomputed_log_probabilities(input_feeding):
    """Greedy and beam search carry the decoder state; their scores must equal the
    teacher-forced log-probability of the output recomputed from scratch."""
    enc, task = make("additive", decoder="lstm", input_feeding=input_feeding, encoder="lstm")
    src, src_len = s2s.pad_batch(SRC)
    for hyps in (s2s.greedy(enc, task, src, src_len, max_len=6),
                 s2s.beam_search(enc, task, src, src_len, beam=4, alpha=0.0, max_len=6)):
        for s, h in zip(SRC, hyps):
            if len(h.tokens) < 6:  # finished with EOS
                assert h.score == pytest.approx(teacher_forced_logp(enc, task, s, h.tokens), abs=1e-8)
            assert h.attention.shape[1] == len(s)


def test_beam_search_is_exact_when_the_beam_holds_every_prefix_and_batch_independent():
    """With K = every emittable token and two steps, beam search must return the best of
    all sequences of at most two tokens (brute force); decoding alone or batched agrees."""
    enc, task = make("multiplicative", encoder="lstm")
    src, src_len = s2s.pad_batch(SRC)
    allowed = [t for t in range(V) if t not in (PAD, BOS)]
    bs = s2s.beam_search(enc, task, src, src_len, beam=len(allowed), alpha=0.0, max_len=2)
    for i, s in enumerate(SRC):
        one_src, one_len = s2s.pad_batch([s])
        mem = s2s._encode(enc, task, one_src, one_len)
        with torch.no_grad():
            lg1, st, a, _ = task.step(torch.tensor([BOS]), task.initial_state(mem), None, mem)
            lp1 = F.log_softmax(lg1, -1)[0]
            firsts = torch.tensor([t for t in allowed if t != EOS])
            n = len(firsts)
            st = tuple(x.repeat(1, n, 1) for x in st)
            lg2, _, _, _ = task.step(firsts, st, a.repeat(n, 1), mem.select(torch.zeros(n, dtype=torch.long)))
            lp2 = F.log_softmax(lg2, -1)
        best = (float(lp1[EOS]), [])
        for j, t in enumerate(firsts.tolist()):
            for x in allowed:
                sc = float(lp1[t] + lp2[j, x])
                if sc > best[0]:
                    best = (sc, [t] if x == EOS else [t, x])
        assert bs[i].tokens == best[1] and bs[i].score == pytest.approx(best[0], abs=1e-6)
        alone = s2s.beam_search(enc, task, one_src, one_len, beam=len(allowed), alpha=0.0, max_len=2)[0]
        assert alone.tokens == bs[i].tokens and alone.score == pytest.approx(bs[i].score, abs=1e-9)


def test_length_penalty_prefers_longer_finished_hypotheses():
    lp = s2s.length_penalty(torch.tensor([1, 10]), 1.0)
    assert math.isclose(float(lp[0]), 1.0) and math.isclose(float(lp[1]), 2.5)
    assert torch.all(s2s.length_penalty(torch.tensor([3, 7]), 0.0) == 1)


def test_translate_ids_keeps_input_order():
    enc, task = make()
    hyps = s2s.translate_ids(enc, task, SRC, beam=1, batch_size=2, max_len=5)
    src, src_len = s2s.pad_batch(SRC)
    direct = s2s.greedy(enc, task, src, src_len, max_len=5)
    assert [h.tokens for h in hyps] == [h.tokens for h in direct]


def test_bleu_chrf_from_sacrebleu():
    s = s2s.bleu_chrf(["ein hund rennt ."], ["ein hund rennt ."])
    assert s["bleu"] == pytest.approx(100.0) and s["sentences"] == 1
    assert s2s.bleu_chrf(["xyz"], ["ein hund rennt ."])["bleu"] < 1


@pytest.mark.parametrize("encoder", ["lstm", "hand-gru", "mingru", "transformer"])
def test_any_encoder_under_the_contract_trains(encoder):
    enc, task = make(encoder=encoder)
    enc.train(), task.train()
    b = batch_of(SRC, TGT)
    x, lengths = task.inputs(b)
    y, _ = enc(x, None, lengths)
    loss, m = task.loss(y, b)
    loss.backward()
    assert torch.isfinite(loss) and m["tokens"] == 12
    assert all(p.grad is not None for p in enc.parameters() if p.requires_grad)

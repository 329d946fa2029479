"""Greedy and beam search for an attentional decoder stepped in NumPy (torch-free).

The same algorithms as :func:`rnnkit.tasks.seq2seq.greedy` and
:func:`rnnkit.tasks.seq2seq.beam_search`, step for step, over a decoder given as two
functions (the ONNX encoder and decoder-step graphs in :mod:`rnnkit.export.onnx_runtime`):

    encode(src (B, S) int64, src_len (B,)) -> memory (B, S, He), keys (B, S, A), state [(L, B, Hd)]
    step(tokens (N,), state, prev_a (N, A), memory, keys, src_len) -> logits (N, V), state, a, weights (N, S)

PAD and BOS are never emitted; hypotheses are ranked by log p / lp(len), with the GNMT
length penalty lp = ((5 + len) / 6) ** alpha (Wu et al. 2016). The state is carried and
reordered by the chosen parents, never recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

PAD, UNK, BOS, EOS = 0, 1, 2, 3  # as rnnkit.data.parallel

Encode = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray, List[np.ndarray]]]
Step = Callable[..., Tuple[np.ndarray, List[np.ndarray], np.ndarray, np.ndarray]]


@dataclass
class Hypothesis:
    tokens: List[int]  # without BOS and EOS
    score: float  # sum of log-probabilities (EOS included)
    attention: np.ndarray  # (len(tokens) + 1, S_true): one row per emitted token, EOS last


def log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def never_special(logp: np.ndarray) -> np.ndarray:
    logp = logp.copy()
    logp[:, PAD] = -np.inf
    logp[:, BOS] = -np.inf
    return logp


def length_limits(src_len: np.ndarray, max_len: Optional[int]) -> np.ndarray:
    """Most target tokens (EOS included) per sentence: ``max_len``, or 2 x its own source
    length + 10 (as :func:`rnnkit.tasks.seq2seq.length_limits`)."""
    return np.full_like(src_len, max_len) if max_len else src_len * 2 + 10


def ban_repeats(logp: np.ndarray, hist: np.ndarray, n: int) -> np.ndarray:
    """Forbid every token that would repeat an n-gram already in a row's history ``hist:
    (N, t)`` (as :func:`rnnkit.tasks.seq2seq.ban_repeats`, the fairseq / Hugging Face rule)."""
    if n <= 0 or hist.shape[1] < n - 1:
        return logp
    logp = logp.copy()
    for r, h in enumerate(hist.tolist()):
        prefix = tuple(h[len(h) - n + 1:]) if n > 1 else ()
        banned = {h[i + n - 1] for i in range(len(h) - n + 1) if tuple(h[i:i + n - 1]) == prefix}
        if banned:
            logp[r, list(banned)] = -np.inf
    return logp


def _cut(seq: List[int]) -> int:
    """Length of a hypothesis: up to its EOS, or the PAD that fills a row stopped at its limit."""
    for i, t in enumerate(seq):
        if t in (EOS, PAD):
            return i
    return len(seq)


def length_penalty(length: np.ndarray, alpha: float) -> np.ndarray:
    return ((5.0 + length.astype(np.float32)) / 6.0) ** alpha


def pad_batch(seqs: Sequence[Sequence[int]]) -> Tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    out = np.full((len(seqs), max(1, int(lengths.max()))), PAD, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out, lengths


def _finish(T: np.ndarray, W: np.ndarray, scores: np.ndarray, src_len: np.ndarray) -> List[Hypothesis]:
    out = []
    for b in range(len(T)):
        seq = [int(t) for t in T[b]]
        n = _cut(seq)
        out.append(Hypothesis(seq[:n], float(scores[b]), W[b, :n + 1, :int(src_len[b])]))
    return out


def greedy(encode: Encode, step: Step, attn_size: int, src: np.ndarray, src_len: np.ndarray,
           max_len: Optional[int] = None, no_repeat_ngram: int = 0) -> List[Hypothesis]:
    """Batched greedy decoding, carrying the decoder state."""
    memory, keys, state = encode(src, src_len)
    B = src.shape[0]
    prev_a = np.zeros((B, attn_size), np.float32)
    tok = np.full(B, BOS, np.int64)
    done = np.zeros(B, bool)
    limit = length_limits(src_len, max_len)
    scores = np.zeros(B, np.float32)
    toks, weights = [], []
    for t in range(int(limit.max())):
        logits, state, prev_a, w = step(tok, state, prev_a, memory, keys, src_len)
        logp = never_special(log_softmax(logits))
        if no_repeat_ngram and toks:
            logp = ban_repeats(logp, np.stack(toks, 1), no_repeat_ngram)
        tok = logp.argmax(-1)
        scores += np.where(done, 0.0, logp[np.arange(B), tok]).astype(np.float32)
        tok = np.where(done, PAD, tok)
        toks.append(tok)
        weights.append(w)
        done |= (tok == EOS) | (t + 1 >= limit)
        if done.all():
            break
    return _finish(np.stack(toks, 1), np.stack(weights, 1), scores, src_len)


def beam_search(encode: Encode, step: Step, attn_size: int, src: np.ndarray, src_len: np.ndarray,
                beam: int = 5, alpha: float = 0.6, max_len: Optional[int] = None,
                no_repeat_ngram: int = 0) -> List[Hypothesis]:
    """Batched beam search: B sentences x K hypotheses decoded together as N = B*K rows."""
    if beam == 1:
        return greedy(encode, step, attn_size, src, src_len, max_len, no_repeat_ngram)
    B, K = src.shape[0], beam
    memory, keys, state = encode(src, src_len)
    rows = np.repeat(np.arange(B), K)  # (N,)
    memory, keys, mem_len = memory[rows], keys[rows], src_len[rows]
    state = [s[:, rows] for s in state]
    N = B * K
    prev_a = np.zeros((N, attn_size), np.float32)
    tok = np.full(N, BOS, np.int64)
    score = np.zeros((B, K), np.float32)
    score[:, 1:] = -np.inf  # all beams start identical: keep one
    length = np.zeros(N, np.int64)  # tokens emitted, EOS included
    finished = np.zeros(N, bool)
    hist = np.zeros((N, 0), np.int64)
    att = np.zeros((N, 0, src.shape[1]), np.float32)
    limit = length_limits(src_len, max_len)[rows]  # (N,)
    for _ in range(int(limit.max())):
        logits, state, prev_a, w = step(tok, state, prev_a, memory, keys, mem_len)
        logp = never_special(log_softmax(logits))  # (N, V)
        if no_repeat_ngram:
            logp = ban_repeats(logp, hist, no_repeat_ngram)
        V = logp.shape[1]
        fin_row = np.full(V, -np.inf, np.float32)
        fin_row[PAD] = 0.0  # a finished hypothesis "continues" with PAD at no cost
        logp = np.where(finished[:, None], fin_row[None, :], logp)
        new_len = np.where(finished, length, length + 1)
        cand = score.reshape(N, 1) + logp  # (N, V) raw log p
        ranked = (cand / length_penalty(new_len, alpha)[:, None]).reshape(B, K * V)
        idx = np.argsort(-ranked, axis=1, kind="stable")[:, :K]  # (B, K)
        parent = (idx // V + np.arange(B)[:, None] * K).reshape(N)
        tok = (idx % V).reshape(N)
        score = np.take_along_axis(cand.reshape(B, K * V), idx, 1)
        length = new_len[parent]
        finished = finished[parent] | (tok == EOS) | (length >= limit)
        state = [s[:, parent] for s in state]
        prev_a = prev_a[parent]
        hist = np.concatenate([hist[parent], tok[:, None]], 1)
        att = np.concatenate([att[parent], w[parent][:, None, :]], 1)
        if finished.all():
            break
    final = score.reshape(N) / length_penalty(length, alpha)
    best = final.reshape(B, K).argmax(-1)
    pick = np.arange(B) * K + best
    return _finish(hist[pick], att[pick], score.reshape(N)[pick], src_len)

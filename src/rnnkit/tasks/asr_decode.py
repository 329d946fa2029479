"""CTC decoding, alignment and error rates in NumPy (torch-free; the ASR predictor and the
training recipe share them): greedy best path, prefix beam search optionally restricted to
known words, forced alignment for word times, WER/CER with jiwer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..data.speech import Units, normalise_text


# ---------------------------------------------------------------------------------------
# decoding


def greedy_decode(lp: np.ndarray) -> List[int]:
    """Best path: argmax per frame, repeats merged, blanks (0) dropped."""
    best = lp.argmax(axis=1)
    keep = np.ones(len(best), bool)
    keep[1:] = best[1:] != best[:-1]
    return [int(t) for t in best[keep] if t != 0]


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


@dataclass
class WordConstraint:
    """Words a beam may complete: every prefix of an allowed word, in unit ids."""

    space: int
    prefixes: frozenset
    words: frozenset

    @classmethod
    def from_words(cls, words: Iterable[Sequence[int]], space: int) -> "WordConstraint":
        ws = {tuple(w) for w in words if len(w)}
        return cls(space, frozenset(w[:k] for w in ws for k in range(len(w) + 1)), frozenset(ws))

    def last_word(self, prefix: Tuple[int, ...]) -> Tuple[int, ...]:
        try:
            k = len(prefix) - 1 - prefix[::-1].index(self.space)
        except ValueError:
            k = -1
        return prefix[k + 1:]

    def allows(self, prefix: Tuple[int, ...], unit: int) -> bool:
        word = self.last_word(prefix)
        if unit == self.space:
            return len(word) > 0 and word in self.words
        return word + (unit,) in self.prefixes

    def complete(self, prefix: Tuple[int, ...]) -> bool:
        w = self.last_word(prefix)
        return not w or w in self.words


def beam_decode(lp: np.ndarray, beam_size: int = 8, constraint: Optional[WordConstraint] = None,
                prune: float = -12.0) -> List[int]:
    """CTC prefix beam search (Hannun et al. 2014) over ``lp: (T, V)`` log-probabilities.

    Each prefix keeps the log-probability of ending in blank (``pb``) and in its last unit
    (``pnb``); units below ``prune`` (log) at a frame are skipped. With ``constraint``, a
    prefix may only spell words of the vocabulary (and must end on a complete word).
    """
    beams: Dict[Tuple[int, ...], Tuple[float, float]] = {(): (0.0, -math.inf)}
    V = lp.shape[1]
    for t in range(lp.shape[0]):
        row = lp[t]
        cand = [v for v in range(1, V) if row[v] > prune]
        nxt: Dict[Tuple[int, ...], List[float]] = {}

        def add(p, b, nb):
            cur = nxt.setdefault(p, [-math.inf, -math.inf])
            cur[0] = _logsumexp(cur[0], b)
            cur[1] = _logsumexp(cur[1], nb)

        for prefix, (pb, pnb) in beams.items():
            total = _logsumexp(pb, pnb)
            add(prefix, total + row[0], -math.inf)  # blank
            last = prefix[-1] if prefix else None
            if last is not None:
                add(prefix, -math.inf, pnb + row[last])  # repeat merged
            for v in cand:
                if constraint is not None and not constraint.allows(prefix, v):
                    continue
                new = prefix + (v,)
                if v == last:
                    add(new, -math.inf, pb + row[v])  # a repeat needs a blank between
                else:
                    add(new, -math.inf, total + row[v])
        beams = dict(sorted(((p, (b, nb)) for p, (b, nb) in nxt.items()),
                            key=lambda kv: -_logsumexp(*kv[1]))[:beam_size])
    ranked = sorted(beams.items(), key=lambda kv: -_logsumexp(*kv[1]))
    if constraint is not None:
        for p, _ in ranked:
            if constraint.complete(p):
                return list(p)
        # no beam ends on a word: drop the unfinished last word of the best (and its space)
        best = ranked[0][0]
        cut = len(best) - len(constraint.last_word(best))
        return list(best[:max(cut - 1, 0)])
    return list(ranked[0][0])


def ctc_align(lp: np.ndarray, ids: Sequence[int]) -> List[Tuple[int, int]]:
    """Viterbi forced alignment: ``(first_frame, last_frame)`` of each unit of ``ids``."""
    L = len(ids)
    if L == 0:
        return []
    T = lp.shape[0]
    ext = [0] * (2 * L + 1)
    ext[1::2] = list(ids)
    S = len(ext)
    score = np.full(S, -np.inf)
    back = np.zeros((T, S), np.int32)
    score[0] = lp[0, 0]
    score[1] = lp[0, ext[1]]
    for t in range(1, T):
        new = np.full(S, -np.inf)
        for s in range(S):
            best, arg = score[s], s
            if s >= 1 and score[s - 1] > best:
                best, arg = score[s - 1], s - 1
            if s >= 2 and ext[s] != 0 and ext[s] != ext[s - 2] and score[s - 2] > best:
                best, arg = score[s - 2], s - 2
            new[s] = best + lp[t, ext[s]]
            back[t, s] = arg
        score = new
    s = S - 1 if S < 2 or score[S - 1] >= score[S - 2] else S - 2
    if not np.isfinite(score[s]):  # too few frames for the units: no valid path
        return [(0, 0)] * L
    path = [s]
    for t in range(T - 1, 0, -1):
        s = back[t, s]
        path.append(s)
    path.reverse()
    spans: List[List[int]] = [[-1, -1] for _ in range(L)]
    for t, s in enumerate(path):
        if s % 2 == 1:
            k = s // 2
            if spans[k][0] < 0:
                spans[k][0] = t
            spans[k][1] = t
    return [(a, b) for a, b in spans]


def word_times(lp: np.ndarray, ids: Sequence[int], space: int, frame_seconds: float) -> List[Tuple[int, int]]:
    """Frame spans ``(start, end_exclusive)`` of each word in ``ids`` (units between spaces)."""
    spans = ctc_align(lp, ids)
    words, cur = [], None
    for u, (a, b) in zip(ids, spans):
        if u == space:
            if cur:
                words.append(tuple(cur))
            cur = None
        elif cur is None:
            cur = [a, b + 1]
        else:
            cur[1] = b + 1
    if cur:
        words.append(tuple(cur))
    return words


def decode(lp: np.ndarray, method: str = "greedy", beam_size: int = 8,
           constraint: Optional[WordConstraint] = None) -> List[int]:
    if method == "greedy":
        return greedy_decode(lp)
    if method == "beam":
        return beam_decode(lp, beam_size, constraint)
    raise ValueError(f"unknown decoder {method!r} (greedy, beam)")


# ---------------------------------------------------------------------------------------
# metrics


def error_rates(refs: Sequence[str], hyps: Sequence[str], ref_units: Sequence[str],
                hyp_units: Sequence[str], phonemes: bool = False) -> Dict[str, float]:
    """Corpus-level error rates with jiwer (total edits / total reference length).

    ``wer`` on words; ``cer`` on units: characters, or, with ``phonemes``, space-separated
    phonemes (a phoneme error rate). ``accuracy`` is the fraction of exact utterance matches.
    """
    import jiwer

    wer = jiwer.wer(list(refs), list(hyps))
    cer = jiwer.wer(list(ref_units), list(hyp_units)) if phonemes else jiwer.cer(list(ref_units), list(hyp_units))
    acc = float(np.mean([r == h for r, h in zip(refs, hyps)])) if refs else 0.0
    return {"wer": float(wer), "cer": float(cer), "accuracy": acc, "utterances": len(refs),
            "words": int(sum(len(r.split()) for r in refs))}


def score_posteriors(lps: Sequence[np.ndarray], units: Units, texts: Sequence[str], decoder: str = "greedy",
                     beam_size: int = 8, constraint=None) -> Tuple[Dict[str, float], List[str]]:
    """Decode CTC log-probabilities ``lps`` and compare with ``texts`` (see :func:`score`)."""
    ids = [decode(lp, decoder, beam_size, constraint) for lp in lps]
    hyps = [units.words(i) for i in ids]
    refs = [normalise_text(t) for t in texts]
    m = error_rates(refs, hyps, [units.reference(t) for t in texts], [units.unit_string(i) for i in ids],
                      phonemes=units.kind == "phonemes")
    return m, hyps


def word_constraint(units: Units, words: Sequence[str]):
    return WordConstraint.from_words([units.encode(w) for w in words], units.space)

"""Speech recognition with CTC: audio frames -> characters (or phonemes), DeepSpeech2-style.

    X                      (B, T, M)      normalised log-mel features (data/audio.py)
    Z = ConvSub(X)         (B, T/s, C F/4) two 3x3 convolutions, stride 2 in frequency and
                                          s in time (s = 1, 2 or 4), ReLU
    Y = encoder.outputs(Z) (B, T/s, H)    any encoder of layers/, normally bidirectional
    P = log_softmax(W Y + b)              (B, T/s, V), V = units incl. blank 0
    loss = CTC(P, labels, true input lengths, true label lengths) / label length

(Graves et al. 2006 for CTC; Amodei et al. 2016, DeepSpeech2, for the conv + BiRNN shape.)
Padding never leaks: features past an utterance's length are zero, every convolution's
output is re-masked to its true length, and the encoder packs. A padded batch therefore
gives each utterance exactly the outputs it gets alone.

Decoding: greedy (best path, repeats merged, blanks dropped) and CTC prefix beam search
(Hannun et al. 2014) with an optional word constraint (only words of a given vocabulary
may be completed). Word timestamps come from a Viterbi forced alignment of the decoded
units against the frame posteriors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import Encoder, build_encoder

TIME_STRIDES = {1: (1, 1), 2: (2, 1), 4: (2, 2)}


def _conv_len(lengths: Tensor, stride: int) -> Tensor:
    # kernel 3, padding 1: floor((L + 2 - 3) / s) + 1
    return torch.div(lengths - 1, stride, rounding_mode="floor") + 1


def _mask_time(x: Tensor, lengths: Tensor) -> Tensor:
    """Zero ``x: (B, C, T, F)`` beyond each sequence's length."""
    t = torch.arange(x.shape[2], device=x.device)
    return x * (t[None, :] < lengths[:, None]).to(x.dtype)[:, None, :, None]


def out_frames(n: int, subsample: int) -> int:
    """Output frames of the front end for an ``n``-frame input (as :meth:`ConvSubsampling.out_lengths`)."""
    for s in TIME_STRIDES[subsample]:
        n = (n - 1) // s + 1
    return n


class ConvSubsampling(nn.Module):
    """Two 3x3 convolutions, stride 2 in frequency and ``subsample`` in time overall."""

    def __init__(self, n_mels: int, channels: int, subsample: int = 4) -> None:
        super().__init__()
        if subsample not in TIME_STRIDES:
            raise ValueError(f"subsample must be one of {sorted(TIME_STRIDES)}, got {subsample}")
        self.strides = TIME_STRIDES[subsample]
        self.conv1 = nn.Conv2d(1, channels, 3, stride=(self.strides[0], 2), padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=(self.strides[1], 2), padding=1)
        f = (n_mels - 1) // 2 + 1
        f = (f - 1) // 2 + 1
        self.output_size = channels * f

    def out_lengths(self, lengths: Tensor) -> Tensor:
        for s in self.strides:
            lengths = _conv_len(lengths, s)
        return lengths

    def forward(self, x: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
        h = _mask_time(x.unsqueeze(1), lengths)  # (B, 1, T, M)
        for conv, s in ((self.conv1, self.strides[0]), (self.conv2, self.strides[1])):
            lengths = _conv_len(lengths, s)
            h = _mask_time(F.relu(conv(h)), lengths)  # (B, C, T', F')
        B, C, T, Fr = h.shape
        return h.permute(0, 2, 1, 3).reshape(B, T, C * Fr), lengths  # (B, T', C F')


class ASRTask(nn.Module):
    """Conv front end in, per-frame unit log-probabilities out, CTC loss."""

    name = "asr"
    stream = False  # utterances are independent
    rate_unit = "utterances"  # training speed is reported in loss()'s "utterances" per second

    def __init__(self, n_mels: int, n_units: int, encoder_size: int, channels: int = 32,
                 subsample: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_units = n_units
        self.frontend = ConvSubsampling(n_mels, channels, subsample)
        self.input_size = self.frontend.output_size
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder_size, n_units)

    def inputs(self, batch: Dict[str, Tensor]) -> Tuple[Tensor, Tensor]:
        x, lengths = self.frontend(batch["feats"], batch["feat_lengths"])
        batch["out_lengths"] = lengths
        return x, lengths

    def log_probs(self, y: Tensor) -> Tensor:
        return F.log_softmax(self.head(self.dropout(y)).float(), dim=-1)  # (B, T, V)

    def loss(self, y: Tensor, batch: Dict[str, Tensor]) -> Tuple[Tensor, Dict[str, float]]:
        lp = self.log_probs(y)
        lengths = batch["out_lengths"]
        labels, label_lengths = batch["labels"], batch["label_lengths"]
        targets = torch.cat([labels[i, :n] for i, n in enumerate(label_lengths.tolist())])
        loss = F.ctc_loss(lp.transpose(0, 1), targets, lengths, label_lengths, blank=0,
                          reduction="sum", zero_infinity=True)
        n = int(label_lengths.sum())
        return loss / max(n, 1), {"tokens": float(n), "utterances": float(y.shape[0])}


def ctc_min_frames(ids: Sequence[int]) -> int:
    """Fewest output frames CTC needs to emit ``ids``: one per unit, plus a blank between
    two equal neighbours ("three" needs 6). With fewer, the utterance has no valid path:
    its loss is infinite (zeroed in training) and it can never be transcribed in full."""
    return len(ids) + sum(a == b for a, b in zip(ids, ids[1:]))


def build(model_cfg: dict, n_units: int) -> Tuple[Encoder, ASRTask]:
    """Encoder + task from a model config dict (ASRModelConfig fields)."""
    front = ConvSubsampling(model_cfg["n_mels"], model_cfg["conv_channels"], model_cfg["subsample"])
    encoder = build_encoder(model_cfg["encoder"], front.output_size, model_cfg["hidden_size"],
                            num_layers=model_cfg["num_layers"], dropout=model_cfg["dropout"],
                            bidirectional=model_cfg["bidirectional"])
    task = ASRTask(model_cfg["n_mels"], n_units, encoder.output_size, model_cfg["conv_channels"],
                   model_cfg["subsample"], model_cfg["dropout"])
    return encoder, task


@torch.no_grad()
def posteriors(encoder: Encoder, task: ASRTask, feats: Sequence[np.ndarray],
               batch_size: int = 32) -> List[np.ndarray]:
    """Per-utterance ``(T', V)`` log-probabilities, batched by similar length."""
    was = encoder.training, task.training
    encoder.eval(), task.eval()
    device = next(task.parameters()).device
    out: List[Optional[np.ndarray]] = [None] * len(feats)
    order = np.argsort([len(f) for f in feats], kind="stable")
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        batch = pad_features([feats[i] for i in idx])
        batch = {k: v.to(device) for k, v in batch.items()}
        x, lengths = task.inputs(batch)
        y = encoder.outputs(x, lengths)
        lp = task.log_probs(y).cpu().numpy()
        for j, i in enumerate(idx):
            out[i] = lp[j, :int(lengths[j])]
    encoder.train(was[0]), task.train(was[1])
    return out  # type: ignore[return-value]


def pad_features(feats: Sequence[np.ndarray]) -> Dict[str, Tensor]:
    """Zero-padded ``feats: (B, T, M)`` and true ``feat_lengths: (B,)``."""
    lengths = [len(f) for f in feats]
    out = np.zeros((len(feats), max(lengths), feats[0].shape[1]), np.float32)
    for i, f in enumerate(feats):
        out[i, :len(f)] = f
    return {"feats": torch.from_numpy(out), "feat_lengths": torch.tensor(lengths, dtype=torch.long)}


def pad_labels(labels: Sequence[Sequence[int]]) -> Dict[str, Tensor]:
    lengths = [len(l) for l in labels]
    out = np.zeros((len(labels), max(lengths)), np.int64)
    for i, l in enumerate(labels):
        out[i, :len(l)] = l
    return {"labels": torch.from_numpy(out), "label_lengths": torch.tensor(lengths, dtype=torch.long)}


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

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

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.speech import Units
from ..layers import Encoder, build_encoder
from .asr_decode import (WordConstraint, beam_decode, ctc_align, decode, error_rates,  # noqa: F401
                         greedy_decode, score_posteriors, word_constraint, word_times)  # re-exported

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
# scoring (decoding and metrics are NumPy: tasks/asr_decode.py)


def score(encoder, task, units: Units, feats: Sequence[np.ndarray], texts: Sequence[str],
          decoder: str = "greedy", beam_size: int = 8, constraint=None) -> Tuple[Dict[str, float], List[str]]:
    """Decode ``feats`` and compare with ``texts``: WER, CER (PER for phonemes), accuracy."""
    return score_posteriors(posteriors(encoder, task, feats), units, texts, decoder, beam_size, constraint)


def summary(m: Dict[str, float]) -> str:
    """The validation metrics of ``rnnkit train``'s last line."""
    if m.get("val_wer") is None:
        return ""
    return f"val WER {m['val_wer']:.4f}, CER {m['val_cer']:.4f}" + (f", CTC loss {m['val_loss']:.4f}" if "val_loss" in m else "")

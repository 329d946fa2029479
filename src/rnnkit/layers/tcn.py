"""Temporal convolutional network (Bai, Kolter & Koltun 2018, "An Empirical Evaluation of
Generic Convolutional and Recurrent Networks for Sequence Modeling").

A stack of residual blocks; block ``k`` holds two dilated 1-D convolutions with dilation
``d = 2^k`` and kernel size ``K``::

    u = dropout(relu(conv_d(x)))            (B, H, T)   causal: output t reads x_{t-(K-1)d .. t}
    u = dropout(relu(conv_d(u)))
    y = relu(u + x')                        x' = x, or a 1x1 convolution when C != H

    receptive field = 1 + 2 (K - 1) (2^L - 1)  time steps (L blocks), see ``receptive_field``

Causal (the default) pads each convolution on the left, so no output reads the future;
``bidirectional=True`` makes every convolution centred (non-causal, for classification /
CTC) and then there is no ``step()``. Bai et al. also use weight normalisation; it is left
out here (AdamW + clipping train these depths without it), which keeps parameter names
plain (``blocks.{k}.conv1.weight`` ...).

State is the rolling input buffer of every convolution: a tuple of ``2L`` tensors
``(B, C_in, (K-1) d)`` holding each convolution's last ``(K-1) d`` inputs. ``forward`` with a
state prepends those buffers instead of zero padding, so two chunks with the carried state
equal one whole sequence and ``step()`` is one convolution over ``buffer + x_t``. Training
never carries it across batches (``carries_state = False``): a TCN sees a fixed window.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Encoder, check_input, check_step_input, length_mask
from .recurrent import _check_sizes


class _Block(nn.Module):
    def __init__(self, in_size: int, hidden_size: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv1 = nn.Conv1d(in_size, hidden_size, kernel_size, dilation=dilation)
        self.conv2 = nn.Conv1d(hidden_size, hidden_size, kernel_size, dilation=dilation)
        self.downsample = nn.Conv1d(in_size, hidden_size, 1) if in_size != hidden_size else None


class TCN(Encoder):
    """Dilated causal (or centred) residual convolutions under the encoder contract."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 4, dropout: float = 0.0,
                 bidirectional: bool = False, kernel_size: int = 3) -> None:
        _check_sizes(input_size, hidden_size, num_layers, dropout)
        if kernel_size < 2:
            raise ValueError(f"kernel_size must be >= 2, got {kernel_size}")
        if bidirectional and kernel_size % 2 == 0:
            raise ValueError("a centred (bidirectional) TCN needs an odd kernel_size")
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.kernel_size, self.dropout, self.bidirectional = kernel_size, float(dropout), bidirectional
        self.output_size = hidden_size
        self.carries_state = False
        self.blocks = nn.ModuleList(
            _Block(input_size if k == 0 else hidden_size, hidden_size, kernel_size, 2 ** k)
            for k in range(num_layers))

    @property
    def receptive_field(self) -> int:
        """Time steps one output sees: 1 + 2 (K-1) (2^L - 1); centred: half on each side."""
        return 1 + 2 * (self.kernel_size - 1) * (2 ** self.num_layers - 1)

    def _convs(self):
        for block in self.blocks:
            yield block.conv1
            yield block.conv2

    def initial_state(self, batch_size: int, device=None, dtype=None) -> Tuple[Tensor, ...]:
        w = self.blocks[0].conv1.weight
        return tuple(w.new_zeros((batch_size, c.in_channels, (self.kernel_size - 1) * c.dilation[0]),
                                 device=device, dtype=dtype) for c in self._convs())

    def _check_state(self, state, batch: int) -> Tuple[Tensor, ...]:
        want = [(batch, c.in_channels, (self.kernel_size - 1) * c.dilation[0]) for c in self._convs()]
        if (not isinstance(state, (tuple, list)) or len(state) != len(want)
                or any(not isinstance(s, Tensor) or tuple(s.shape) != w for s, w in zip(state, want))):
            raise TypeError(f"tcn state must be a tuple of {len(want)} input buffers of shapes {want}")
        return tuple(state)

    def _conv(self, conv: nn.Conv1d, u: Tensor, buf: Optional[Tensor], ends: Optional[Tensor],
              mask: Optional[Tensor], new_state: List[Tensor]) -> Tensor:
        """u (B, C, T) -> (B, H, T); causal: left context ``buf`` (or zeros); centred: zeros."""
        pad = (self.kernel_size - 1) * conv.dilation[0]
        if self.bidirectional:
            if mask is not None:  # padding must read as the zeros an unpadded row sees
                u = u.masked_fill(~mask[:, None, :], 0.0)
            return conv(F.pad(u, (pad // 2, pad // 2)))
        full = torch.cat([buf, u], -1) if buf is not None else F.pad(u, (pad, 0))  # (B, C, P+T)
        T = u.shape[-1]
        if ends is None:
            new_state.append(full[:, :, T:])  # the last P inputs
        else:  # each row's last P real inputs: full[:, :, len : len + P]
            idx = ends[:, None, None] + torch.arange(pad, device=u.device)[None, None, :]
            new_state.append(full.gather(2, idx.expand(-1, full.shape[1], -1)))
        return conv(full)

    def forward(self, x: Tensor, state=None, lengths: Optional[Tensor] = None):
        check_input(x, self.input_size, lengths)
        B, T, _ = x.shape
        if state is not None:
            if self.bidirectional:
                raise ValueError("a centred (bidirectional) TCN reads the future: it takes no state")
            state = self._check_state(state, B)
        mask = ends = None
        if lengths is not None:
            lengths = lengths.to(x.device, torch.long)
            mask = length_mask(lengths, T)  # (B, T)
            ends = lengths
            x = x.masked_fill(~mask[:, :, None], 0.0)  # padding reads as zeros, whatever it holds
        bufs = iter(state) if state is not None else None
        new_state: List[Tensor] = []
        u = x.transpose(1, 2)  # (B, C, T)
        for block in self.blocks:
            res = u if block.downsample is None else block.downsample(u)
            v = F.relu(self._conv(block.conv1, u, next(bufs) if bufs else None, ends, mask, new_state))
            v = F.dropout(v, self.dropout, self.training)
            v = F.relu(self._conv(block.conv2, v, next(bufs) if bufs else None, ends, mask, new_state))
            v = F.dropout(v, self.dropout, self.training)
            u = F.relu(v + res)  # (B, H, T)
        y = u.transpose(1, 2)  # (B, T, H)
        if mask is not None:
            y = y.masked_fill(~mask[:, :, None], 0.0)
        return y, (None if self.bidirectional else tuple(new_state))

    def step(self, x_t: Tensor, state=None):
        """One step: x_t (B, C) -> y_t (B, H); the state is each convolution's input buffer."""
        check_step_input(self, x_t, causal=not self.bidirectional)
        if state is None:
            state = self.initial_state(x_t.shape[0], x_t.device, x_t.dtype)
        y, state = self.forward(x_t[:, None, :], state)  # one column: K taps per convolution
        return y[:, 0], state

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"kernel_size={self.kernel_size}, dropout={self.dropout}, "
                f"bidirectional={self.bidirectional}, receptive_field={self.receptive_field}")

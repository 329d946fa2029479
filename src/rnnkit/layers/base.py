"""The encoder contract shared by every sequence encoder in rnnkit.

Every encoder (RNN, LSTM, GRU, stacked, bidirectional, and later minGRU, TCN, Transformer)
takes batch-first input and returns ``(y, state)``::

    y, state = encoder(x, state=None, lengths=None)   # x: (B, T, C) -> y: (B, T, H)
    y_t, state = encoder.step(x_t, state)             # x_t: (B, C)  -> y_t: (B, H)
    y = encoder.outputs(x, lengths)                   # y alone, when no state is needed

* ``lengths`` (B,) holds the true length of every row; positions ``t >= lengths[b]`` of ``y``
  are zero and never influence the returned state (the state is the one after each row's
  last real step).
* ``state`` is whatever the encoder needs to continue a sequence. For the recurrent cells it
  follows PyTorch: ``h`` of shape (num_layers * num_directions, B, H) for RNN/GRU and the
  tuple ``(h, c)`` for LSTM.
* ``carries_state`` says whether training may carry the final state of one batch into the
  next (truncated BPTT). The training loop asks this attribute; it never checks types.

Tasks only ever see this interface, so any encoder can be swapped for any other.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple, Union

import torch
from torch import Tensor, nn

State = Union[None, Tensor, Tuple[Tensor, ...]]


def map_state(fn: Callable[[Tensor], Tensor], state: Any) -> Any:
    """Apply ``fn`` to every tensor of a (possibly nested) state; ``None`` stays ``None``."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, (tuple, list)):
        return type(state)(map_state(fn, s) for s in state)
    if isinstance(state, dict):
        return {k: map_state(fn, v) for k, v in state.items()}
    raise TypeError(f"unsupported state type {type(state).__name__}")


def detach_state(state: Any) -> Any:
    """Cut the autograd graph behind a carried state (truncated BPTT)."""
    return map_state(lambda t: t.detach(), state)


def state_batch_select(state: Any, index: Tensor) -> Any:
    """Select rows of the batch dimension (dim 1 for recurrent states) of a state."""
    return map_state(lambda t: t.index_select(1, index), state)


class Encoder(nn.Module):
    """Base class: documents the contract and holds the attributes tasks rely on.

    Subclasses set ``input_size``, ``output_size`` (feature size of ``y``) and
    ``carries_state``, and implement ``forward`` and ``step``.

    Signatures::

        forward(x: (B, T, C), state=None, lengths: (B,) | None = None) -> (y: (B, T, H), state)
        step(x_t: (B, C), state=None) -> (y_t: (B, H), state)
    """

    input_size: int
    output_size: int
    carries_state: bool = True

    def outputs(self, x: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """``y`` of ``forward(x, None, lengths)``, for callers that never read the final state.

        An encoder may compute it by a faster route: the fused RNN/LSTM/GRU skip packing,
        which costs ~10x on CPU. ``y`` is the same (zeros past each row's length).
        """
        return self(x, None, lengths)[0]


def check_input(x: Tensor, input_size: int, lengths: Optional[Tensor]) -> None:
    """Validate the encoder contract's input shapes with a clear message."""
    if x.dim() != 3:
        raise ValueError(f"expected x of shape (B, T, C), got {tuple(x.shape)}")
    if x.shape[-1] != input_size:
        raise ValueError(f"expected {input_size} input features, got {x.shape[-1]}")
    if lengths is not None:
        if lengths.dim() != 1 or lengths.shape[0] != x.shape[0]:
            raise ValueError(f"lengths must have shape ({x.shape[0]},), got {tuple(lengths.shape)}")
        if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]):
            raise ValueError(f"lengths must lie in [1, {x.shape[1]}]")


def check_step_input(encoder: "Encoder", x_t: Tensor, causal: bool) -> None:
    """Validate ``step()``'s input: a causal encoder and x_t of shape (B, C)."""
    if not causal:
        raise ValueError(f"step() needs a causal encoder; a bidirectional {type(encoder).__name__} reads the future")
    if x_t.dim() != 2 or x_t.shape[-1] != encoder.input_size:
        raise ValueError(f"expected x_t of shape (B, {encoder.input_size}), got {tuple(x_t.shape)}")


def length_mask(lengths: Tensor, T: int) -> Tensor:
    """(B,) lengths -> (B, T) bool mask, True on real steps."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths.to(torch.long)[:, None]

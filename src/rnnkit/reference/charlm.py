"""A minibatch character language model trained with the NumPy engine alone.

min-char-rnn (Karpathy 2015) grown up: an embedding, a stacked RNN/LSTM/GRU, a linear head
and softmax cross-entropy, trained with Adam, gradient clipping and truncated BPTT with the
state carried across consecutive windows::

    e_t = E[x_t]                      (B, T, E)
    h_t = encoder(e_t, h_{t-1})       (B, T, H)
    z_t = W h_t + b                   (B, T, V)
    L   = mean_t -log softmax(z_t)[x_{t+1}]

The token stream is cut into ``batch_size`` contiguous streams (``streams.StreamLayout``, the
one layout of every engine); step s reads window s of every stream, so row b of one batch continues row b of the previous one and the final state
is carried over (truncated BPTT: the gradient stops at the window boundary). After the last
full window the streams start again from the beginning with a zero state.

Parameters are returned in rnnkit's checkpoint layout (the torch path writes the same)::

    task.embedding.weight (V, E)
    encoder.weight_ih_l{k}, encoder.weight_hh_l{k}, encoder.bias_ih_l{k}, encoder.bias_hh_l{k}
    task.head.weight (V, H), task.head.bias (V,)
"""

from __future__ import annotations

import math
import time
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from .base import Params
from .ops import (cross_entropy_backward, cross_entropy_forward, embedding_backward,
                  embedding_forward, linear_backward, linear_forward)
from .optim import Adam, Optimizer, clip_grad_norm, clip_grad_value
from .sequence import (RecurrentSpec, State, init_params, recurrent_backward, recurrent_forward,
                       spec_from_params)
from .streams import StreamLayout

EMBEDDING = "task.embedding.weight"
HEAD_WEIGHT = "task.head.weight"
HEAD_BIAS = "task.head.bias"
ENCODER_PREFIX = "encoder."
WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


# ---------------------------------------------------------------------------------------------
# parameters in checkpoint layout


def _cell(name: str) -> str:
    """rnnkit encoder name -> engine cell: ``hand-lstm`` (same weights) is ``lstm`` here."""
    return name.removeprefix("hand-")


def init_charlm(vocab_size: int, cell: str = "lstm", embedding_dim: int = 64, hidden_size: int = 256,
                num_layers: int = 2, rng: Optional[np.random.Generator] = None, dtype=np.float32,
                forget_bias: Optional[float] = 1.0) -> Params:
    """Fresh parameters, initialised as the torch modules are.

    Embedding ~ N(0, 1) (``nn.Embedding``); encoder and head ~ U(-1/√H, 1/√H) (``nn.LSTM``,
    ``nn.Linear``); for the LSTM the forget-gate bias b_ih + b_hh starts at ``forget_bias``
    (as ``rnnkit.layers.LSTM``).
    """
    rng = np.random.default_rng() if rng is None else rng
    cell = _cell(cell)
    spec = RecurrentSpec(cell, embedding_dim, hidden_size, num_layers)
    enc = init_params(spec, rng, np.float64)
    if cell == "lstm" and forget_bias is not None:
        H = hidden_size
        for k in range(num_layers):
            enc[f"bias_ih_l{k}"][H:2 * H] = forget_bias
            enc[f"bias_hh_l{k}"][H:2 * H] = 0.0
    bound = 1.0 / math.sqrt(hidden_size)
    params = {EMBEDDING: rng.standard_normal((vocab_size, embedding_dim))}
    params.update({ENCODER_PREFIX + n: p for n, p in enc.items()})
    params[HEAD_WEIGHT] = rng.uniform(-bound, bound, (vocab_size, hidden_size))
    params[HEAD_BIAS] = rng.uniform(-bound, bound, (vocab_size,))
    return {n: np.ascontiguousarray(p, dtype=dtype) for n, p in params.items()}


def encoder_params(params: Params) -> Params:
    """The encoder's part of a checkpoint dict, with the ``encoder.`` prefix removed."""
    return {n[len(ENCODER_PREFIX):]: p for n, p in params.items() if n.startswith(ENCODER_PREFIX)}


# ---------------------------------------------------------------------------------------------
# one forward/backward pass, one training step


def _layer_state(state: Optional[State], k: int) -> Optional[State]:
    """Layer k's part of a stacked (L, B, H) state (a tuple (h, c) for the LSTM)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return (state[0][k:k + 1], state[1][k:k + 1])
    return state[k:k + 1]


def loss_and_grads(params: Params, cell: str, ids: np.ndarray, targets: np.ndarray,
                   state: Optional[State] = None, need_grads: bool = True, *, dropout: float = 0.0,
                   rng: Optional[np.random.Generator] = None) -> Tuple[float, Optional[Params], State]:
    """ids, targets (B, T) int -> (mean cross-entropy in nats, grads keyed like params, final state).

    The layers run one at a time so that, with ``rng`` given and ``dropout`` > 0, inverted
    dropout falls after every layer (between layers and before the head), as the torch model
    applies it in training. The final state has the (L, B, H) layout of ``torch.nn.LSTM``.
    """
    enc = encoder_params(params)
    spec = spec_from_params(_cell(cell), enc)
    x, emb_cache = embedding_forward(ids, params[EMBEDDING])  # (B, T, E)
    caches, finals = [], []
    for k in range(spec.num_layers):
        layer = {f"{n}_l0": enc[f"{n}_l{k}"] for n in WEIGHT_NAMES}
        layer_spec = RecurrentSpec(spec.cell, x.shape[-1], spec.hidden_size, 1)
        y, final, cache = recurrent_forward(layer_spec, layer, x, _layer_state(state, k))  # (B, T, H)
        mask = None
        if rng is not None and dropout > 0:
            keep = 1.0 - dropout
            mask = ((rng.random(y.shape) < keep) / keep).astype(y.dtype)  # inverted dropout
            y = y * mask
        caches.append((cache, mask))
        finals.append(final)
        x = y
    logits, lin_cache = linear_forward(x, params[HEAD_WEIGHT], params[HEAD_BIAS])  # (B, T, V)
    loss, ce_cache = cross_entropy_forward(logits, targets)
    if isinstance(finals[0], tuple):
        new_state: State = tuple(np.concatenate([f[i] for f in finals], 0) for i in range(2))  # (L, B, H)
    else:
        new_state = np.concatenate(finals, 0)  # (L, B, H)
    if not need_grads:
        return loss, None, new_state
    dy, dW, db = linear_backward(cross_entropy_backward(1.0, ce_cache), lin_cache)  # (B, T, H)
    grads = {HEAD_WEIGHT: dW, HEAD_BIAS: db}
    for k in reversed(range(spec.num_layers)):
        cache, mask = caches[k]
        if mask is not None:
            dy = dy * mask
        dy, _, g, _ = recurrent_backward(dy, None, cache)  # truncated BPTT: no dL/d(initial state)
        grads.update({f"{ENCODER_PREFIX}{n}_l{k}": g[f"{n}_l0"] for n in WEIGHT_NAMES})
    grads[EMBEDDING] = embedding_backward(dy, emb_cache)  # (B, T, E) -> (V, E)
    order = [EMBEDDING] + [f"{ENCODER_PREFIX}{n}_l{k}" for k in range(spec.num_layers) for n in WEIGHT_NAMES]
    return loss, {n: grads[n] for n in order + [HEAD_WEIGHT, HEAD_BIAS]}, new_state  # init_charlm's order


def train_step(params: Params, cell: str, optimizer: Optimizer, ids: np.ndarray, targets: np.ndarray,
               state: Optional[State] = None, *, clip_norm: Optional[float] = None,
               clip_value: Optional[float] = None, dropout: float = 0.0,
               rng: Optional[np.random.Generator] = None) -> Tuple[float, Optional[State], bool]:
    """Forward, backward, clip, update: one optimizer step on one window (B, T).

    Returns (loss, state to carry, finite). A non-finite loss or gradient skips the update
    and returns no state to carry (the next window starts from zeros) and ``finite`` False.
    Clipping by value, then by norm, whichever is given; ``optimizer.lr`` is used as set.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite values are caught just below
        loss, grads, new_state = loss_and_grads(params, cell, ids, targets, state, dropout=dropout, rng=rng)
    if not (math.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())):
        return loss, None, False
    if clip_value is not None:
        clip_grad_value(grads, clip_value)
    if clip_norm is not None:
        clip_grad_norm(grads, clip_norm)
    optimizer.step(grads)
    return loss, new_state, True


def unigram_entropy(tokens: np.ndarray, vocab_size: Optional[int] = None) -> float:
    """Entropy (nats) of the token frequencies: the loss of the best context-free model."""
    counts = np.bincount(np.asarray(tokens), minlength=vocab_size or 0).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def evaluate(params: Params, cell: str, tokens: np.ndarray, batch_size: int = 16, seq_len: int = 64,
             drop_last: bool = True, max_windows: Optional[int] = None) -> float:
    """Mean cross-entropy (nats per token) over the windows of ``batch_size`` streams, carrying
    the state; ``drop_last=False`` also scores the short last window (as ``rnnkit evaluate``)."""
    layout = StreamLayout(len(tokens), batch_size, seq_len, drop_last=drop_last)
    windows = layout.n_windows if max_windows is None else min(max_windows, layout.n_windows)
    state, total, count = None, 0.0, 0
    for w in range(windows):
        ids, targets = layout.window(tokens, w)
        loss, _, state = loss_and_grads(params, cell, ids, targets, state, need_grads=False)
        total += loss * targets.size
        count += targets.size
    return total / max(count, 1)


# ---------------------------------------------------------------------------------------------
# training


class CharLMTrainer:
    """Holds everything a run needs to continue: parameters, Adam, data position, carried state.

    ``step()`` trains on the next window (:func:`train_step`); ``state_dict()``/
    ``load_state_dict()`` give the flat arrays (optimizer buffers under ``optim.``, carried
    state under ``carry.``, ``window``) of an exact resume. The windows are those of
    :class:`~rnnkit.reference.streams.StreamLayout` (full windows only), taken in a loop.
    """

    def __init__(self, tokens: np.ndarray, vocab_size: int, *, cell: str = "lstm",
                 embedding_dim: int = 64, hidden_size: int = 256, num_layers: int = 2,
                 batch_size: int = 32, seq_len: int = 64, lr: float = 2e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0,
                 clip_norm: Optional[float] = 1.0, clip_value: Optional[float] = None,
                 seed: int = 0, dtype=np.float32, params: Optional[Params] = None) -> None:
        tokens = tokens if isinstance(tokens, np.ndarray) else np.asarray(tokens)
        if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError("tokens must be a 1-D integer array of token ids")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
            raise ValueError(f"token ids must lie in [0, {vocab_size})")
        self.layout = StreamLayout(len(tokens), batch_size, seq_len)
        if self.layout.n_windows < 1:
            raise ValueError(f"{len(tokens)} tokens are too few for batch_size={batch_size} x "
                             f"seq_len={seq_len} (need more than {batch_size * seq_len})")
        self.tokens, self.cell, self.clip_norm, self.clip_value = tokens, cell, clip_norm, clip_value
        if params is None:
            params = init_charlm(vocab_size, cell, embedding_dim, hidden_size, num_layers,
                                 np.random.default_rng(seed), dtype)
        else:
            params = {n: np.array(p, dtype=dtype) for n, p in params.items()}
        self.params = params
        self.optimizer = Adam(self.params, lr=lr, betas=betas, weight_decay=weight_decay)
        self.window = 0  # windows consumed so far
        self.carry: Optional[State] = None

    def step(self) -> float:
        """One Adam step on the next window of every stream; returns its mean loss (nats)."""
        index = self.window % self.layout.n_windows
        if index == 0:
            self.carry = None  # a new pass over the streams starts from a zero state
        ids, targets = self.layout.window(self.tokens, index)
        loss, self.carry, _ = train_step(self.params, self.cell, self.optimizer, ids, targets, self.carry,
                                         clip_norm=self.clip_norm, clip_value=self.clip_value)
        self.window += 1
        return loss

    def state_dict(self) -> Dict[str, np.ndarray]:
        out = {f"optim.{k}": v for k, v in self.optimizer.state_dict().items()}
        out["window"] = np.array(self.window, dtype=np.int64)
        if self.carry is not None:
            parts = self.carry if isinstance(self.carry, tuple) else (self.carry,)
            out.update({f"carry.{i}": p for i, p in enumerate(parts)})
        return out

    def load_state_dict(self, state: Dict[str, np.ndarray]) -> None:
        self.optimizer.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("optim.")})
        self.window = int(state["window"])
        parts = [state[f"carry.{i}"] for i in range(2) if f"carry.{i}" in state]
        self.carry = None if not parts else (parts[0] if len(parts) == 1 else tuple(parts))


def train(tokens: np.ndarray, vocab_size: int, *, cell: str = "lstm", embedding_dim: int = 64,
          hidden_size: int = 256, num_layers: int = 2, batch_size: int = 32, seq_len: int = 64,
          steps: int = 1000, lr: float = 2e-3, clip_norm: Optional[float] = 1.0,
          clip_value: Optional[float] = None, weight_decay: float = 0.0, seed: int = 0,
          dtype=np.float32, params: Optional[Params] = None, max_seconds: Optional[float] = None,
          callback: Optional[Callable[[int, float], None]] = None) -> Params:
    """Train a char-LM on ``tokens`` (1-D int ids < vocab_size) and return its parameters.

    Runs ``steps`` Adam steps (or until ``max_seconds`` have passed), calling
    ``callback(step, loss)`` after each (step counts from 1, loss in nats per token).
    ``params`` (checkpoint layout) continues from given weights instead of a fresh init.
    For an exact resume with optimizer state use :class:`CharLMTrainer` directly.
    """
    trainer = CharLMTrainer(tokens, vocab_size, cell=cell, embedding_dim=embedding_dim,
                            hidden_size=hidden_size, num_layers=num_layers, batch_size=batch_size,
                            seq_len=seq_len, lr=lr, weight_decay=weight_decay, clip_norm=clip_norm,
                            clip_value=clip_value, seed=seed, dtype=dtype, params=params)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        loss = trainer.step()
        if callback is not None:
            callback(step, loss)
        if max_seconds is not None and time.perf_counter() - start >= max_seconds:
            break
    return trainer.params


# ---------------------------------------------------------------------------------------------
# python -m rnnkit.reference.charlm TEXT_FILE: a torch-free training run that prints its curve


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Train a char-LM on a text file with the NumPy engine "
                                             "alone; print the loss curve (nats/char).")
    ap.add_argument("text", help="UTF-8 text file; the last 10%% is held out")
    ap.add_argument("--cell", default="lstm")
    ap.add_argument("--embedding-dim", type=int, default=32)
    ap.add_argument("--hidden-size", type=int, default=128)
    ap.add_argument("--num-layers", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--minutes", type=float, default=None, help="stop after this much wall time")
    ap.add_argument("--every", type=int, default=100, help="evaluate every N steps")
    ap.add_argument("--val-chars", type=int, default=20000, help="held-out chars evaluated")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    ids = np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
    split = int(0.9 * len(ids))
    train_ids, val_ids = ids[:split], ids[split:split + args.val_chars]
    V = len(chars)
    print(f"# {len(ids)} chars, vocabulary {V}, unigram entropy {unigram_entropy(train_ids, V):.3f} nats, "
          f"uniform {math.log(V):.3f}")
    print(f"# {args.cell} {args.num_layers}x{args.hidden_size}, embedding {args.embedding_dim}, "
          f"batch {args.batch_size}x{args.seq_len}, Adam lr {args.lr}, clip 1.0, float32")
    print("step  seconds  train_loss  val_loss")
    trainer = CharLMTrainer(train_ids, V, cell=args.cell, embedding_dim=args.embedding_dim,
                            hidden_size=args.hidden_size, num_layers=args.num_layers,
                            batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr, seed=args.seed)
    start, recent = time.perf_counter(), []
    for step in range(1, args.steps + 1):
        recent.append(trainer.step())
        elapsed = time.perf_counter() - start
        done = step == args.steps or (args.minutes is not None and elapsed >= 60 * args.minutes)
        if step % args.every == 0 or step == 1 or done:
            val = evaluate(trainer.params, args.cell, val_ids, batch_size=16, seq_len=args.seq_len)
            print(f"{step:5d}  {elapsed:7.1f}  {np.mean(recent):10.3f}  {val:8.3f}", flush=True)
            recent = []
        if done:
            break


if __name__ == "__main__":
    main()

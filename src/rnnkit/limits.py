"""Documented bounds of rnnkit's numeric options, in one table.

Training options declare theirs on the config dataclasses (``training/config.py``: ``ge``,
``le``, ``cap``...); the sizes here are the caps those declarations share. The inference
verbs' own flags (beam widths, seasons, ARIMA orders, chunk lengths...) are listed in
:data:`FLAGS` and parsed by :func:`rnnkit.cli.common.limited`, so a value outside its range
is refused before any work starts, with one line naming the flag and the range.

The upper bounds keep every command's time and memory finite: ``transcribe --beam 1000000``
or ``backtest --arima 99,99,99`` would otherwise run for hours; none of them binds a
realistic use (the reason is given next to each).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Optional

CPU_COUNT = os.cpu_count() or 1
MAX_SEED = 2 ** 32 - 1          # NumPy's and Lightning's seed range
# sizes above these need --allow-large (train): a 1-layer LSTM of width 8192 already holds
# 537M weights (2 GB, 8 GB with AdamW's moments and gradients)
MAX_WIDTH = 8192
MAX_LAYERS = 64
MAX_BATCH = 65536
MAX_SEQ_LEN = 1 << 20
MAX_VOCAB = 1 << 20
MAX_CHANNELS = 1024


@dataclass(frozen=True)
class Limit:
    """An option's type and inclusive range (``low_open``: ``low`` itself is excluded)."""

    kind: type
    low: float
    high: Optional[float]
    why: str = ""
    low_open: bool = False


FLAGS: Dict[str, Limit] = {
    # decoding
    "translate.beam": Limit(int, 1, 64, "beam search cost grows with the width; BLEU stops improving near 10"),
    "transcribe.beam": Limit(int, 1, 256, "CTC prefix beam search cost grows with the width times the units"),
    "length_penalty": Limit(float, 0, 10, "GNMT's alpha; useful values lie in [0, 2]"),
    "decode.batch_size": Limit(int, 1, 4096, "sentences or files decoded together"),
    "chunk_seconds": Limit(float, 1, 3600, "a chunk needs room for the quietest 10 ms near its end"),
    "max_len": Limit(int, 1, 1024, "subwords per translation"),
    "no_repeat_ngram": Limit(int, 1, 16, "n-gram size never repeated in a translation"),
    "no_repeat_ngram_off": Limit(int, 0, 16, "n-gram size never repeated in a translation; 0 = off"),
    # generation
    "num_samples": Limit(int, 1, 10_000, "texts generated per prime"),
    "length": Limit(int, 1, 10_000_000, "characters generated"),
    "temperature": Limit(float, 0, 100),
    "top_k": Limit(int, 1, None),
    "top_p": Limit(float, 0, 1, low_open=True),
    "seed": Limit(int, 0, MAX_SEED, "NumPy's seed range"),
    # forecasting
    "season": Limit(int, 1, 10_000, "a seasonal-naive period longer than 10,000 rows needs more history than any "
                    "table rnnkit reads"),
    "arima.p": Limit(int, 0, 10, "ARIMA fits grow quickly with the order; AIC rarely picks beyond 5"),
    "arima.d": Limit(int, 0, 2, "differencing more than twice over-differences"),
    "arima.q": Limit(int, 0, 10, "as p"),
    "history": Limit(int, 1, 1_000_000, "rows drawn in the plot"),
    "horizon": Limit(int, 1, 100_000, "steps forecast (at most the trained horizon, checked on load)"),
    # shared
    "threads": Limit(int, 1, CPU_COUNT, "the CPU count of this machine"),
    "hidden": Limit(int, 1, MAX_WIDTH, "as train --hidden"),
    "layers": Limit(int, 1, MAX_LAYERS, "as train --layers"),
    "rounds": Limit(int, 1, 1000, "timed rounds"),
    "seq_len": Limit(int, 1, 100_000),
    "batch_size": Limit(int, 1, MAX_BATCH),
    "steps": Limit(int, 1, 10_000_000),
    "train_steps": Limit(int, 0, 10_000_000),
    "steps_scale": Limit(float, 0, 100, low_open=True),
    "minutes": Limit(float, 0, 10_000, low_open=True),
    "seconds": Limit(float, 0, 100_000, low_open=True),
    "positive": Limit(float, 0, 1e6, low_open=True),
}


def num(x: float) -> str:
    """A bound as messages write it: integers in full (4294967295), other numbers short (0.5)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def describe(limit: Limit) -> str:
    """``[1, 64]``, ``(0, 1]`` or ``>= 1``: the range as the docs and messages write it."""
    lo = f"{'(' if limit.low_open else '['}{num(limit.low)}"
    return f"{lo}, {num(limit.high)}]" if limit.high is not None else f"{'>' if limit.low_open else '>='} {num(limit.low)}"

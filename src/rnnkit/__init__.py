"""rnnkit: recurrent sequence models you can read, trust and train.

``rnnkit.load(path)`` returns a trained model's predictor (see :mod:`rnnkit.predictors`);
importing ``rnnkit`` itself stays light: torch is imported only by what needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from .predictors import Predictor


def load(path: Any, *, device: str = "cpu") -> "Predictor":
    """The predictor of a checkpoint or export directory: ``rnnkit.load("runs/s").predict(["great"])``.

    See :func:`rnnkit.predictors.load`.
    """
    from .predictors import load as _load

    return _load(path, device=device)


__all__ = ["load", "__version__"]

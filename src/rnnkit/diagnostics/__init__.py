"""Diagnostics: gradient flow through time, gate saturation, spectra, clipping, memory tasks.

See docs/diagnostics.md. ``flow`` measures ||dL/dh_t|| for any rnnkit recurrent encoder
(torch autograd on the hidden states) and for the NumPy engine (its BPTT), on the same
weights; ``experiments`` holds the ``rnnkit diagnose`` experiments; ``memory`` the
long-range memory benchmark (``rnnkit bench memory``); ``speed`` the encoders' training
and generation speed (``rnnkit bench encoders``); ``report`` the ``--out`` directory and
JSON files of all of them.

``flow``'s names are importable from here (``from rnnkit.diagnostics import gradient_flow``);
they load on first use, so ``rnnkit.diagnostics.report`` (torch-free) is cheap for the CLI.
"""

from __future__ import annotations

__all__ = [
    "ClipResult", "Flow", "Trace", "cell_name", "clip_and_measure", "direction_names",
    "gate_stats", "grad_norms", "gradient_flow", "numpy_gradient_flow", "output_gradient",
    "scale_spectral_radius", "spectral_radius", "to_numpy", "total_norm", "unroll",
]


def __getattr__(name: str):
    if name in __all__:
        from . import flow

        return getattr(flow, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

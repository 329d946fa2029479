"""Diagnostics: gradient flow through time, gate saturation, spectra, clipping, memory tasks.

See docs/diagnostics.md. ``flow`` measures ||dL/dh_t|| for any rnnkit recurrent encoder
(torch autograd on the hidden states) and for the NumPy engine (its BPTT), on the same
weights; ``experiments`` holds the ``rnnkit diagnose`` experiments; ``memory`` the
long-range memory benchmark (``rnnkit bench memory``).
"""

from .flow import (ClipResult, Flow, Trace, cell_name, clip_and_measure, direction_names,
                   gate_stats, grad_norms, gradient_flow, numpy_gradient_flow, output_gradient,
                   scale_spectral_radius, spectral_radius, to_numpy, total_norm, unroll)

__all__ = [
    "ClipResult", "Flow", "Trace", "cell_name", "clip_and_measure", "direction_names",
    "gate_stats", "grad_norms", "gradient_flow", "numpy_gradient_flow", "output_gradient",
    "scale_spectral_radius", "spectral_radius", "to_numpy", "total_norm", "unroll",
]

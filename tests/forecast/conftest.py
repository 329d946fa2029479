"""Forecast tests: one torch thread (shared 2-core machine), tiny synthetic CSVs."""

from __future__ import annotations

import os


os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")



"""Fixtures for the layer tests: one CPU thread (the machine is shared), float64 helpers."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny shapes gain nothing from threads; keep the shared cores free."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

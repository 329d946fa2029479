"""Tiny real checkpoints of every task, trained once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    from tests.tiny import train_all

    return train_all(tmp_path_factory.mktemp("tiny"))

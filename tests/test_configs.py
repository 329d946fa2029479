"""Every YAML in configs/ loads into a valid TrainConfig; flags override YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit.errors import ConfigError
from rnnkit.layers import ENCODERS
from rnnkit.training.config import TASK_SECTIONS, build_config, load_yaml

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_loads_and_names_resolve(path):
    cfg = build_config(load_yaml(path), {})
    assert cfg.task in TASK_SECTIONS
    assert cfg.model.encoder in ENCODERS


def test_flags_override_yaml(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("model:\n  hidden_size: 64\n  num_layers: 3\nrun:\n  max_steps: 7\n")
    cfg = build_config(load_yaml(y), {"model": {"hidden_size": 32}})
    assert (cfg.model.hidden_size, cfg.model.num_layers, cfg.run.max_steps) == (32, 3, 7)


@pytest.mark.parametrize("text,needle", [
    ("model: [1, 2]\n", "must be a mapping"),
    ("modle:\n  x: 1\n", "unknown section"),
    ("model:\n  hidden_size: lots\n", "hidden_size must be int"),
    ("model:\n  hidden_size: 0\n", "--hidden must be >= 1"),
    ("optim:\n  lr: -1\n", "--lr must be > 0"),
    ("model: {\n", "invalid YAML"),
    ("- 1\n- 2\n", "expected a mapping"),
    ("task: nonsense\n", "unknown task"),
])
def test_bad_yaml(tmp_path, text, needle):
    y = tmp_path / "bad.yaml"
    y.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        build_config(load_yaml(y), {})

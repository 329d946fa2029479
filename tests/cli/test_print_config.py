"""YAML keys by the flag's name (``hidden`` for ``hidden_size``) and ``train --print-config``."""

from __future__ import annotations

import pytest
import yaml

from rnnkit.cli.main import main
from rnnkit.errors import ConfigError
from rnnkit.training.config import build_config, load_yaml


def test_a_flags_name_is_a_yaml_key(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  hidden: 24\n  layers: 1\n  embedding-dim: 8\n"
                 "optim:\n  warmup-steps: 3\nrun:\n  max_steps: 7\n  val-every: 2\n")
    cfg = build_config(load_yaml(f, "charlm"), {}, task="charlm")
    assert (cfg.model.hidden_size, cfg.model.num_layers, cfg.model.embedding_dim) == (24, 1, 8)
    assert (cfg.optim.warmup_steps, cfg.run.max_steps, cfg.run.val_every) == (3, 7, 2)


def test_two_keys_for_one_option_are_refused(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  hidden: 24\n  hidden_size: 32\n")
    with pytest.raises(ConfigError, match=r"model.hidden and model.hidden_size set the same option \(hidden_size\)"):
        load_yaml(f, "charlm")


def test_an_unknown_key_still_names_the_known_ones(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  hiden: 24\n")
    with pytest.raises(ConfigError, match=r"unknown key model.hiden \(known: .*hidden_size.*'hidden'"):
        load_yaml(f, "charlm")


def test_print_config_prints_the_merged_yaml_and_trains_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  hidden: 24\n  layers: 1\ndata:\n  seq_len: 16\n")
    rc = main(["train", "charlm", "--config", str(f), "--hidden", "40", "--max-steps", "5", "--print-config"])
    cap = capsys.readouterr()
    assert rc == 0 and cap.err == ""
    printed = yaml.safe_load(cap.out)
    assert printed["task"] == "charlm" and set(printed) == {"task", "model", "data", "optim", "run"}
    assert printed["model"]["hidden_size"] == 40  # the flag over the file
    assert printed["model"]["num_layers"] == 1 and printed["data"]["seq_len"] == 16  # the file over the defaults
    assert printed["optim"]["warmup_steps"] == 100 and printed["run"]["max_steps"] == 5 and printed["run"]["out"] is None
    assert list(tmp_path.iterdir()) == [f]  # no --out needed, nothing written
    # what it prints is a config file that gives the same run
    again = tmp_path / "again.yaml"
    again.write_text(cap.out)
    assert build_config(load_yaml(again, "charlm"), {}, task="charlm").to_dict() == printed


def test_print_config_checks_the_values(capsys):
    rc = main(["train", "charlm", "--hidden", "0", "--print-config"])
    err = capsys.readouterr().err
    assert rc == 2 and "--hidden must be >= 1" in err and len(err.strip().splitlines()) == 1

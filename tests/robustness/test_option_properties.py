"""Property tests: random values for every numeric option of every verb.

Whatever the value (huge, negative, non-finite, 1e309, text), rnnkit either accepts it (exit 0)
or refuses it with one line naming the option (exit 2): never a traceback, never minutes of
work. The options are found by walking the argparse tree, so a flag added later is covered
without editing this file.

* every numeric option of every verb is parsed (the documented bounds are checked there or in
  the config dataclasses, before any work);
* every numeric ``train`` option of every task goes through config validation (the training
  itself is replaced by a stub: the property is about values, not about training);
* ``sample`` runs for real on a tiny checkpoint with random sampling options.
"""

from __future__ import annotations

import argparse
import time
from typing import Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.cli.main import build_parser, main
from tests.robustness.conftest import CHECKED

VALUES = st.one_of(
    st.integers(-10 ** 30, 10 ** 30).map(str),
    st.integers(-3, 70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(-2, 2).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e309", "-0", "0x10", "1_000", "", " ", "1e-400", "\u0663", "2" * 5000]),
    st.text(max_size=12),
)


def _is_numeric(action: argparse.Action) -> bool:
    if action.type is None or not action.option_strings:
        return False
    for probe in ("1", "0.5"):
        try:
            if isinstance(action.type(probe), (int, float)):
                return True
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            continue
    return False


def _walk(parser: argparse.ArgumentParser, path: Tuple[str, ...] = ()) -> Dict[Tuple[str, ...], argparse.ArgumentParser]:
    out = {path: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.update(_walk(sub, path + (name,)))
    return out


def _positionals(parser: argparse.ArgumentParser) -> List[str]:
    return ["CK" if a.dest == "checkpoint" else "x" for a in parser._actions
            if not a.option_strings and not isinstance(a, argparse._SubParsersAction) and a.nargs not in ("?", "*")]


PARSERS = _walk(build_parser())
OPTIONS = sorted((path, a.option_strings[-1]) for path, p in PARSERS.items() for a in p._actions if _is_numeric(a))
TRAIN_OPTIONS = [(path[1], flag) for path, flag in OPTIONS if path[:1] == ("train",)]


def test_the_walk_finds_the_options_of_every_verb():
    verbs = {path[0] for path, _ in OPTIONS}
    assert verbs >= {"train", "sample", "translate", "transcribe", "backtest", "forecast", "diagnose", "bench"}
    assert {t for t, _ in TRAIN_OPTIONS} == {"charlm", "sentiment", "seq2seq", "asr", "forecast"}
    assert len(OPTIONS) > 150


def _run(argv) -> Tuple[int, str]:
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's refusals
        rc = e.code
    return rc, argv


def _check(capsys, argv, seconds: float):
    capsys.readouterr()
    t0 = time.perf_counter()
    rc, _ = _run(argv)
    took = time.perf_counter() - t0
    err = capsys.readouterr().err.strip()
    CHECKED["n"] += rc == 2
    assert rc in (0, 2), f"exit {rc} for {argv}: {err[-2000:]}"
    assert "Traceback" not in err and len(err.splitlines()) <= 1, err[-2000:]
    assert len(err) < 2100, err[:300]
    assert took < seconds, f"{argv} took {took:.1f} s"
    return rc, err


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_values_for_every_verb_option_are_parsed_or_refused(capsys, data):
    path, flag = data.draw(st.sampled_from(OPTIONS), label="option")
    value = data.draw(VALUES, label="value")
    argv = list(path) + _positionals(PARSERS[path]) + [f"{flag}={value}"]
    capsys.readouterr()
    try:
        PARSERS[()].parse_args(argv)
        rc = 0
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err.strip()
    CHECKED["n"] += rc == 2
    assert rc in (0, 2) and "Traceback" not in err and len(err.splitlines()) <= 1, err
    if rc == 2:
        assert flag.split("=")[0] in err or "argument" in err, err


@pytest.fixture
def no_training(monkeypatch):
    """The property is about option values: training itself is replaced by a stub."""
    import rnnkit.training.numpy_engine as numpy_engine
    import rnnkit.training.run as run

    def stub(cfg, resume=None, overwrite=False):
        return {"global_step": 0, "out": cfg.run.out, "metrics": {}}

    monkeypatch.setattr(run, "train", stub)
    monkeypatch.setattr(numpy_engine, "train_numpy", stub)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_values_for_every_training_option_are_validated(no_training, capsys, tmp_path, data):
    task, flag = data.draw(st.sampled_from(TRAIN_OPTIONS), label="option")
    value = data.draw(VALUES, label="value")
    argv = ["train", task, "--out", str(tmp_path / "out"), "--no-progress", f"{flag}={value}"]
    rc, err = _check(capsys, argv, seconds=10)
    if rc == 2 and "--tie-weights" not in err and "--val-fraction +" not in err:
        assert flag in err or "argument" in err, err


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    from tests.util import make_text, tiny_train_args

    d = tmp_path_factory.mktemp("lm")
    corpus = d / "corpus.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    assert main(tiny_train_args(corpus, d / "ck", "--max-steps", "2", "--engine", "numpy")) == 0
    return d / "ck"


SAMPLE_VALID = {"--length": st.integers(1, 300), "--temperature": st.floats(0, 3), "--top-k": st.integers(1, 50),
                "--top-p": st.floats(0.01, 1), "--seed": st.integers(0, 2 ** 32 - 1)}
RAN = {"ok": 0, "refused": 0}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_sample_runs_or_refuses_with_random_options(lm, capsys, data):
    """Real generation (NumPy engine): one option takes any value, the others a useful one or none
    (a --length in range above 300 is replaced only to bound the time)."""
    wild = data.draw(st.sampled_from(sorted(SAMPLE_VALID)), label="wild option")
    opts = {k: data.draw(st.one_of(st.none(), v.map(str)), label=k) for k, v in SAMPLE_VALID.items() if k != wild}
    value = data.draw(VALUES, label=wild)
    if wild == "--length" and value.strip().isdigit() and 300 < int(value) <= 10 ** 7:
        value = "300"
    opts[wild] = value
    argv = ["sample", str(lm), "--engine", "numpy"] + [f"{k}={v}" for k, v in opts.items() if v is not None]
    rc, _ = _check(capsys, argv, seconds=20)
    RAN["ok" if rc == 0 else "refused"] += 1


def test_the_sampling_property_both_ran_and_refused():
    if not any(RAN.values()):
        pytest.skip("the sampling property did not run in this session")
    assert RAN["ok"] >= 5 and RAN["refused"] >= 5, RAN


def test_docs_list_every_limit_with_its_range():
    """docs/reliability.md's table of limits is rnnkit.limits.FLAGS, key by key."""
    from pathlib import Path

    from rnnkit import limits

    doc = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line.split("|")[3].strip() for line in doc.splitlines()
            if line.startswith("| `") and line.count("|") == 5}
    for key, lim in limits.FLAGS.items():
        want = limits.describe(lim) if key != "threads" else "[1, CPU count]"
        assert rows.get(key) == want, (key, rows.get(key), want)


YAML_SCALARS = st.one_of(
    st.integers(-10 ** 400, 10 ** 400).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from([".inf", "-.inf", ".nan", "true", "no", "null", "~", "''", '"32"', "2020-01-01", "[1, 2]",
                     "{a: 1}", "0x1F", "0o17", "1_000", "+12", "1e-3", "!!binary aGk=", "&a 1", "*a", "|\n    text"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=15).map(lambda t: repr(t)),
)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_yaml_values_for_every_field_are_typed_or_refused(tmp_path_factory, data):
    """Any YAML scalar for any field of any section: a config, or one ConfigError line naming the file."""
    from dataclasses import fields

    from rnnkit.errors import ConfigError
    from rnnkit.training.config import build_config, load_yaml, sections_for

    task = data.draw(st.sampled_from(["charlm", "sentiment", "seq2seq", "asr", "forecast"]), label="task")
    section, cls = data.draw(st.sampled_from(sorted(sections_for(task).items())), label="section")
    key = data.draw(st.sampled_from([f.name for f in fields(cls)]), label="key")
    value = data.draw(YAML_SCALARS, label="value")
    cfg = tmp_path_factory.mktemp("y") / "run.yaml"
    cfg.write_text(f"{section}:\n  {key}: {value}\n", encoding="utf-8")
    try:
        build_config(load_yaml(cfg, task), {}, task=task)
    except ConfigError as e:
        msg = str(e)
        assert "\n" not in msg and len(msg) < 2100, msg[:300]
        assert str(cfg) in msg or msg.startswith("--") or "must" in msg, msg

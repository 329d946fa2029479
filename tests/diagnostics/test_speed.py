"""The encoders' speed measurement of the library (``rnnkit.diagnostics.speed``, ``rnnkit bench
encoders``) at tiny sizes; the full benchmark built on it is tested in tests/encoders/test_bench.py."""

from __future__ import annotations

import json

import pytest

from rnnkit.cli.main import main
from rnnkit.diagnostics import speed


def test_correctness_checks_cover_every_encoder_and_route():
    checks = speed.correctness()
    for kind in ("rnn", "lstm", "gru", "mingru", "minlstm", "tcn", "transformer"):
        assert checks[f"{kind}_step_vs_forward"] <= 1e-10
    for route in ("fused", "chunked", "log"):
        assert checks[f"mingru_{route}_vs_loop"] <= 1e-10 and checks[f"minlstm_{route}_vs_loop"] <= 1e-10


@pytest.mark.parametrize("name", ("rnn", "lstm", "gru", "mingru", "mingru-chunked", "mingru-log", "minlstm", "tcn",
                                  "transformer"))
def test_matched_hidden_is_within_ten_percent(name):
    target = speed.n_params(speed.make("gru", 256, 256))
    h = speed.matched_hidden(name, target, 256)
    got = speed.n_params(speed.make(name, 256, h))
    assert abs(got - target) / target < 0.10, (name, h, got, target)
    assert h % 8 == 0


def test_generation_state_is_flat_for_rnns_and_grows_for_the_transformer():
    rnn = speed.generation("mingru", 8, (1, 40), 8, steps=3)
    att = speed.generation("transformer", 8, (1, 40), 8, steps=3)
    assert rnn["1"]["state_bytes"] == rnn["40"]["state_bytes"] > 0
    assert att["40"]["state_bytes"] > 10 * att["1"]["state_bytes"]
    assert all(v["us_per_token"] > 0 for d in (rnn, att) for v in d.values())


def test_measure_reports_every_encoder_at_its_size():
    payload = speed.measure(["gru", "lstm", "mingru"], hidden=8, seq_len=12, batch=2, position=5, rounds=1,
                            gen_steps=2, match_params=True)
    res = payload["results"]
    assert list(res) == ["gru", "lstm", "mingru"] and res["gru"]["hidden"] == 8
    assert res["gru"]["params"] == speed.n_params(speed.make("gru", 8, 8))
    for n, r in res.items():
        assert r["params"] == speed.n_params(speed.make(n, 8, r["hidden"]))
        assert r["train_tokens_per_s"] > 0 and r["generate_us_per_token"] > 0
    assert res["gru"]["state_bytes"] == 8 * 4  # one layer, batch 1, H = 8 float32
    assert payload["correctness"]["gru_step_vs_forward"] <= 1e-10
    table = speed.table(payload).splitlines()
    assert table[4].startswith("| gru | 8 |") and "| 1.00x |" in table[4] and len(table) == 7
    s = speed.summary(payload)
    assert set(s["train_tokens_per_s"]) == {"gru", "lstm", "mingru"} and s["correct"] is True


def test_bench_encoders_cli_prints_json_last(tmp_path, capsys):
    rc = main(["bench", "encoders", "--encoders", "gru,mingru-fused", "--hidden", "8", "--seq-len", "16",
               "--batch-size", "2", "--position", "4", "--rounds", "1", "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert list(summary["train_tokens_per_s"]) == ["gru", "mingru-fused"] and summary["seq_len"] == 16
    saved = json.loads((tmp_path / "encoders.json").read_text())
    assert saved["results"]["mingru-fused"]["hidden"] == 8 and saved["settings"]["position"] == 4
    assert any(line.startswith("| mingru-fused | 8 |") for line in out)


@pytest.mark.parametrize("argv,needle", [
    (["--encoders", "gru,nope"], "--encoders takes a comma-separated list of rnn, "),
    (["--encoders", ""], "--encoders takes"),
    (["--hidden", "0"], "--hidden must be >= 1"),
])
def test_bench_encoders_bad_input_is_one_line(capsys, argv, needle):
    try:
        rc = main(["bench", "encoders", *argv])
    except SystemExit as e:  # argparse's own errors (one line, see cli/common.Parser)
        rc = e.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and needle in err and len(err.splitlines()) == 1, err

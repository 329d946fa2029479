"""Special files for every file-taking option, numeric options at and past their bounds, YAML
that would expand or hide values, and error lines that stay short whatever the input.

Each case goes through the CLI (rnnkit.cli.main) and check_bad_input: exit 2, one line naming
the input, no traceback, nothing written. Reads that could hang (fifos) run under a timeout,
so a regression fails instead of hanging the suite."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from rnnkit.cli.main import main
from tests.robustness.conftest import CHECKED
from tests.robustness.test_bad_inputs import check_bad_input
from tests.util import make_text, tiny_train_args


def _special(tmp_path: Path, kind: str, name: str) -> Path:
    p = tmp_path / name
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "/dev/zero":
        p.symlink_to("/dev/zero")
    else:
        p.mkdir()
    return p


TRAIN_DATA = [  # (task, file name, extra flags) for train TASK --data SPECIAL
    ("charlm", "corpus.txt", ["--hidden", "8", "--layers", "1", "--embedding-dim", "4", "--seq-len", "4", "--batch-size", "2"]),
    ("sentiment", "reviews.csv", ["--hidden", "8"]),
    ("forecast", "series.csv", ["--hidden", "8"]),
    ("asr", "manifest.csv", ["--hidden", "8"]),
    ("seq2seq", "pairs.tsv", ["--hidden", "8"]),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
@pytest.mark.parametrize("task,name,extra", TRAIN_DATA, ids=[t[0] for t in TRAIN_DATA])
def test_train_data_that_is_a_special_file(tmp_path, capsys, kind, task, name, extra):
    src = _special(tmp_path, kind, name)
    argv = ["train", task, "--data", str(src), "--out", str(tmp_path / "out"), "--max-steps", "1",
            "--no-progress", "--logger", "none", *extra]
    check_bad_input(capsys, tmp_path, argv, [str(src)])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "directory"])
def test_config_that_is_a_special_file(tiny_corpus, tmp_path, capsys, kind):
    cfg = _special(tmp_path, kind, "run.yaml")
    check_bad_input(capsys, tmp_path, tiny_train_args(tiny_corpus, tmp_path / "out", "--config", str(cfg)), [str(cfg)])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_embeddings_that_are_a_special_file(tmp_path, capsys, kind):
    from tests.fixtures.sentiment import synthetic_reviews, write_csv

    data = write_csv(tmp_path / "r.csv", synthetic_reviews(60))
    vec = _special(tmp_path, kind, "vectors.txt")
    argv = ["train", "sentiment", "--data", str(data), "--embeddings", str(vec), "--out", str(tmp_path / "out"),
            "--max-steps", "1", "--no-progress", "--logger", "none", "--hidden", "8"]
    check_bad_input(capsys, tmp_path, argv, [str(vec)])


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_lexicon_manifest_and_transcripts_that_are_special_files(tmp_path, kind):
    from rnnkit.data.speech import read_csv_manifest, read_lexicon, read_librispeech, read_word_list
    from rnnkit.errors import UserError

    for read, name in ((read_lexicon, "lex.txt"), (read_csv_manifest, "m.csv"), (read_word_list, "words.txt")):
        p = _special(tmp_path, kind, name)
        with pytest.raises(UserError, match="must be a regular file"):
            read(p)
        CHECKED["n"] += 1
    tree = tmp_path / "libri"
    tree.mkdir()
    _special(tree, kind, "1-2.trans.txt")
    with pytest.raises(UserError, match="must be a regular file"):
        read_librispeech(tree)
    CHECKED["n"] += 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["fifo", "/dev/null"])
def test_out_that_is_a_device_or_fifo(tiny_corpus, tmp_path, capsys, kind):
    out = _special(tmp_path, "fifo", "out") if kind == "fifo" else Path("/dev/null")
    check_bad_input(capsys, tmp_path, tiny_train_args(tiny_corpus, out, "--max-steps", "1"), [str(out)],
                    "not a directory")
    check_bad_input(capsys, tmp_path, ["diagnose", "gradients", "--cells", "rnn", "--seq-len", "4", "--out", str(out)],
                    [str(out)], "not a directory")


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    corpus = d / "corpus.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    assert main(tiny_train_args(corpus, d / "ck", "--max-steps", "2")) == 0
    return d / "ck"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "directory"])
def test_evaluation_data_that_is_a_special_file(lm, tmp_path, capsys, kind):
    src = _special(tmp_path, kind, "held-out.txt")
    check_bad_input(capsys, tmp_path, ["evaluate", str(lm), "--data", str(src)], [str(src)])


# ---- numeric options -------------------------------------------------------------------------

TRAIN_BOUNDS = [
    (["--seed", "-1"], "--seed must lie in [0, 4294967295]"),
    (["--seed", str(2 ** 32)], "--seed"),
    (["--hidden", "1000000000"], "--allow-large"),
    (["--layers", "65"], "--allow-large"),
    (["--batch-size", "100000"], "--allow-large"),
    (["--hidden", "1e9"], "--hidden"),
    (["--weight-decay", "inf"], "--weight-decay must be a finite number"),
    (["--lr", "nan"], "--lr must be a finite number"),
    (["--lr", "-inf"], "--lr"),
    (["--dropout", "nan"], "--dropout"),
    (["--threads", "1000000"], "--threads must lie in [1, "),
    (["--val-fraction", "inf"], "--val-fraction"),
    (["--min-lr-ratio", "1.5"], "--min-lr-ratio must lie in [0, 1]"),
    (["--beta2", "1"], "--beta2 must lie in [0, 1)"),
    (["--max-time", "1e300"], "--max-time"),
    (["--diagnostics-every", "-1"], "--diagnostics-every must be >= 0"),
]


@pytest.mark.parametrize("flags,needle", TRAIN_BOUNDS, ids=[" ".join(f) for f, _ in TRAIN_BOUNDS])
def test_training_options_outside_their_bounds(tiny_corpus, tmp_path, capsys, flags, needle):
    argv = tiny_train_args(tiny_corpus, tmp_path / "out", "--max-steps", "1", *flags)
    check_bad_input(capsys, tmp_path, argv, [flags[0]], needle)


def test_allow_large_lifts_only_the_size_caps(tiny_corpus, tmp_path):
    from rnnkit.errors import ConfigError
    from rnnkit.training.config import build_config

    cfg = build_config({}, {"model": {"hidden_size": 9000}, "run": {"allow_large": True}}, task="charlm")
    assert cfg.model.hidden_size == 9000
    with pytest.raises(ConfigError, match="--hidden 9000 is above 8192"):
        build_config({}, {"model": {"hidden_size": 9000}}, task="charlm")
    with pytest.raises(ConfigError, match="--hidden must be >= 1"):
        build_config({}, {"model": {"hidden_size": 0}, "run": {"allow_large": True}}, task="charlm")


VERB_BOUNDS = [  # parsed before the checkpoint is opened: CKPT need not exist
    (["transcribe", "CK", "a.wav", "--beam", "1000000"], "--beam must be <= 256"),
    (["transcribe", "CK", "a.wav", "--chunk-seconds", "0.01"], "--chunk-seconds must be >= 1"),
    (["transcribe", "CK", "a.wav", "--chunk-seconds", "nan"], "--chunk-seconds must be a finite number"),
    (["translate", "CK", "x", "--beam", str(10 ** 20)], "--beam must be <= 64"),
    (["translate", "CK", "x", "--length-penalty", "inf"], "--length-penalty"),
    (["translate", "CK", "x", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["backtest", "CK", "--season", str(10 ** 20)], "--season must be <= 10000"),
    (["backtest", "CK", "--arima", "99,99,99"], "--arima p must be <= 10"),
    (["backtest", "CK", "--arima", "1,3,1"], "--arima d must be <= 2"),
    (["backtest", "CK", "--arima", "1,-1,1"], "--arima d must be >= 0"),
    (["backtest", "CK", "--arima", "1,1"], "--arima must be auto, none or p,d,q"),
    (["sample", "CK", "--length", str(10 ** 12)], "--length must be <= 10000000"),
    (["sample", "CK", "--temperature", "inf"], "--temperature"),
    (["sample", "CK", "--seed", "-3"], "--seed must be >= 0"),
    (["sample", "CK", "--top-p", "nan"], "--top-p"),
    (["forecast", "CK", "--history", "0"], "--history must be >= 1"),
    (["predict", "CK", "x", "--threads", "100000"], "--threads must be <="),
    (["evaluate", "CK", "--threads", "0"], "--threads must be >= 1"),
    (["diagnose", "gradients", "--out", "o", "--hidden", "100000"], "--hidden must be <= 8192"),
    (["diagnose", "gradients", "--out", "o", "--lr", "inf"], "--lr must be a finite number"),
    (["diagnose", "gradients", "--out", "o", "--train-steps", "-1"], "--train-steps must be >= 0"),
    (["diagnose", "exploding", "--out", "o", "--radius", "0"], "--radius must be > 0"),
    (["bench", "memory", "--steps-scale", "1e9"], "--steps-scale must be <= 100"),
    (["bench", "memory", "--seed", "-1"], "--seed must be >= 0"),
    (["bench", "encoders", "--charlm-minutes", "nan"], "--charlm-minutes"),
]


@pytest.mark.parametrize("argv,needle", VERB_BOUNDS, ids=[" ".join(a[:1] + a[-2:]) for a, _ in VERB_BOUNDS])
def test_verb_options_outside_their_bounds_are_refused_at_once(tmp_path, capsys, argv, needle):
    t0 = time.perf_counter()
    check_bad_input(capsys, tmp_path, argv, [needle.split()[0]], needle)
    assert time.perf_counter() - t0 < 5


# ---- YAML --------------------------------------------------------------------------------------

ALIAS_BOMB = "\n".join([f'{c}: &{c} [{",".join(["*" + p] * 9)}]' for p, c in zip("abcdefgh", "bcdefghi")])
YAML_CASES = [
    ("alias bomb (424 bytes)", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + ALIAS_BOMB + "\n",
     "aliases"),
    ("one harmless alias", "model: &m {hidden_size: 8}\ndata: *m\n", "aliases"),
    ("merge key", "x: &x {hidden_size: 8}\nmodel:\n  <<: *x\n", "aliases"),
    ("duplicate key", "model:\n  hidden_size: 8\n  hidden_size: 16\n", "duplicate key 'hidden_size'"),
    ("duplicate section", "model:\n  hidden_size: 8\nmodel:\n  num_layers: 1\n", "duplicate key 'model'"),
    ("quoted int", 'model:\n  hidden_size: "32"\n', "hidden_size must be int"),
    ("bool for int", "model:\n  hidden_size: true\n", "hidden_size must be int"),
    ("negative seed", "run:\n  seed: -1\n", "--seed must lie in [0, 4294967295]"),
    ("infinite float", "optim:\n  weight_decay: .inf\n", "--weight-decay must be a finite number"),
    ("NaN float", "optim:\n  lr: .nan\n", "--lr must be a finite number"),
    ("date for text", "data:\n  data: 2020-01-01\n", "data must be str"),
    ("list for float", "optim:\n  lr: [1, 2]\n", "lr must be float"),
    ("deep nesting", "model: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply"),
    ("python tag", "model: !!python/object/apply:os.system ['true']\n", "invalid YAML"),
    ("400-digit int for a float", "model:\n  dropout: " + "9" * 400 + "\n", "dropout must be float"),
    ("5000-digit int", "model:\n  hidden_size: " + "9" * 5000 + "\n", "invalid YAML value (Exceeds the limit"),
    ("impossible date", "data:\n  val_start: 2020-13-45\n", "invalid YAML value (month must be in 1..12)"),
    ("over-long value", "data:\n  encoding: " + "x" * 100_000 + "\n", "unknown key"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name,text,needle", YAML_CASES, ids=[c[0] for c in YAML_CASES])
def test_yaml_that_expands_hides_or_guesses_is_refused(tiny_corpus, tmp_path, capsys, name, text, needle):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text)
    t0 = time.perf_counter()
    err = check_bad_input(capsys, tmp_path, tiny_train_args(tiny_corpus, tmp_path / "out", "--config", str(cfg)),
                          [str(cfg)], needle)
    assert time.perf_counter() - t0 < 10 and len(err) < 1000, err


def test_a_float_written_1e_3_still_reads_as_a_number(tiny_corpus, tmp_path):
    from rnnkit.training.config import build_config, load_yaml

    cfg = tmp_path / "run.yaml"
    cfg.write_text("optim:\n  lr: 1e-3\nmodel:\n  num_layers: 2.0\n")  # PyYAML reads 1e-3 as text
    built = build_config(load_yaml(cfg, "charlm"), {}, task="charlm")
    assert built.optim.lr == 1e-3 and built.model.num_layers == 2 and isinstance(built.model.num_layers, int)


# ---- messages stay short -----------------------------------------------------------------------


def test_a_10_mb_csv_cell_gives_a_short_error_line(tmp_path, capsys):
    csv = tmp_path / "series.csv"
    rows = ["date,y"] + [f"2020-01-{d:02d},{d}" for d in range(1, 29)]
    rows[5] = "2020-01-05," + "z" * 10_000_000
    csv.write_text("\n".join(rows) + "\n")
    err = check_bad_input(capsys, tmp_path, ["train", "forecast", "--data", str(csv), "--time", "date", "--target", "y",
                                             "--out", str(tmp_path / "out"), "--max-steps", "1", "--no-progress"],
                          [str(csv)], "not numeric")
    assert len(err) < 1000 and "characters" in err, err[:300]


def test_mixed_time_zones_name_the_row_where_the_zone_changes(tmp_path, capsys):
    csv = tmp_path / "series.csv"
    rows = ["date,y"] + [f"2020-03-{d:02d}T00:00:00+01:00,{d}" for d in range(1, 29)]
    rows[20] = "2020-03-20T00:00:00+02:00,20"  # line 21 of the file
    csv.write_text("\n".join(rows) + "\n")
    check_bad_input(capsys, tmp_path, ["train", "forecast", "--data", str(csv), "--time", "date", "--target", "y",
                                       "--out", str(tmp_path / "out"), "--max-steps", "1", "--no-progress"],
                    [str(csv), "row 2 has 1:00:00", "row 21 has 2:00:00"], "mixes time zones")


def test_the_cli_backstop_keeps_any_message_to_one_short_line():
    from rnnkit.errors import one_line, shown

    assert one_line("a\nb") == "a\\nb"
    long = one_line("file: " + "x" * 10_000_000 + " tail")
    assert len(long) < 2100 and long.startswith("file: ") and long.endswith(" tail")
    assert shown("y" * 1000).endswith("... (1,002 characters)") and shown(3) == "3"


def test_a_word_list_is_read_whole_and_normalised(tmp_path):
    from rnnkit.data.speech import read_word_list

    p = tmp_path / "words.txt"
    p.write_text("Zero one\nONE two\n")
    assert read_word_list(p) == ["one", "two", "zero"]


def test_huge_integers_in_messages_are_described_not_printed():
    from rnnkit.errors import ConfigError, shown
    from rnnkit.training.config import CharLMModelConfig

    with pytest.raises(ConfigError, match="--layers must be an integer of magnitude below 2..63, got -an integer of about 5,000"):
        CharLMModelConfig(num_layers=-10 ** 5000)
    with pytest.raises(ConfigError, match="--hidden must be an integer of magnitude below 2..63"):
        CharLMModelConfig(hidden_size=10 ** 5000)
    assert shown(10 ** 5000) == "an integer of about 5,000 digits"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_text_tables_and_prediction_inputs_that_are_special_files(tmp_path, kind):
    """data.sentiment.read_text_file: what `predict --input` and sentiment `evaluate --data` read."""
    from rnnkit.data.sentiment import read_text_file
    from rnnkit.errors import UserError

    p = _special(tmp_path, kind, "texts.csv")
    with pytest.raises(UserError, match="data file must be a regular file"):
        read_text_file(p)
    CHECKED["n"] += 1

"""Pretrained word vectors in the sentiment model (``--embeddings``): rows copied, the rest
rescaled, padding zero, the size taken from the file, frozen rows that stay put, and a
checkpoint that records the file and never needs it again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from rnnkit.cli.main import main
from rnnkit.tasks import sentiment as st

from tests.fixtures.sentiment import FILLER, NEG, POS, synthetic_reviews, write_csv


def _task(vocab=12, dim=6):
    torch.manual_seed(0)
    _, task = st.build({"encoder": "lstm", "embedding_dim": dim, "hidden_size": 4, "num_layers": 1, "dropout": 0.0,
                        "bidirectional": False, "pooling": "max"}, vocab, 2)
    return task


def test_found_rows_are_copied_and_the_others_rescaled_to_their_spread():
    task = _task(vocab=300, dim=6)
    rng = np.random.default_rng(0)
    vectors = rng.normal(0, 0.05, size=(300, 6)).astype(np.float32)
    found = np.zeros(300, dtype=bool)
    found[[0, 2, 5]] = True  # row 0 (padding) is never taken, even if a file had it
    found[10:200] = True
    task.load_vectors(vectors, found)
    w = task.embedding.weight.detach().numpy()
    assert not w[0].any()
    np.testing.assert_array_equal(w[found & (np.arange(300) > 0)], vectors[found & (np.arange(300) > 0)])
    rest = ~found
    rest[0] = False
    assert w[rest].std() == pytest.approx(vectors[found & (np.arange(300) > 0)].std(), rel=1e-5)


def test_wrong_shape_is_refused():
    task = _task(vocab=12, dim=6)
    with pytest.raises(ValueError, match="do not fit"):
        task.load_vectors(np.zeros((12, 5), np.float32), np.ones(12, bool))


# ---- through the CLI -------------------------------------------------------------------------


def write_vectors(path: Path, dim: int, words=POS + NEG + FILLER[:4], header=True, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    lines = [f"{len(words)} {dim}"] if header else []
    lines += [f"{w} " + " ".join(f"{x:.5f}" for x in rng.normal(0, 0.3, dim)) for w in words]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def args(data, out, *extra):
    return ["train", "sentiment", "--data", str(data), "--out", str(out), "--hidden", "8", "--batch-size", "16",
            "--min-freq", "1", "--max-steps", "3", "--val-every", "50", "--no-progress", "--logger", "none",
            "--threads", "1", *extra]


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    d = tmp_path_factory.mktemp("emb")
    return write_csv(d / "reviews.csv", synthetic_reviews(120))


def _row(out: Path, word: str) -> np.ndarray:
    cfg = json.loads((out / "config.json").read_text())
    i = cfg["data"]["vocab"]["tokens"].index(word)
    return load_file(str(out / "model.safetensors"))["task.embedding.weight"][i]


def test_dimension_from_the_file_provenance_and_coverage(reviews, tmp_path, capsys):
    vec = write_vectors(tmp_path / "vec.txt", dim=5)
    out = tmp_path / "run"
    assert main(args(reviews, out, "--embeddings", str(vec))) == 0
    printed = capsys.readouterr().err  # a note on stderr; stdout carries the done: line only
    cfg = json.loads((out / "config.json").read_text())
    n_words = len(cfg["data"]["vocab"]["tokens"]) - 2
    assert f"embeddings: 20 of {n_words} vocabulary words found in {vec.resolve()}" in printed
    assert cfg["model"]["embedding_dim"] == cfg["train"]["model"]["embedding_dim"] == 5
    p = cfg["data"]["pretrained_embeddings"]
    assert p["path"] == str(vec.resolve()) and p["found"] == 20 and p["dim"] == 5 and len(p["sha256"]) == 64
    vec.unlink()  # evaluation reads the weights, never the vector file
    assert main(["evaluate", str(out), "--json", "--threads", "1"]) == 0


def test_frozen_rows_stay_and_resume_keeps_them_frozen(reviews, tmp_path):
    vec = write_vectors(tmp_path / "glove.txt", dim=4, header=False)
    out = tmp_path / "frozen"
    assert main(args(reviews, out, "--embeddings", str(vec), "--freeze-embeddings")) == 0
    line = next(ln for ln in vec.read_text().splitlines() if ln.startswith("superb "))
    expected = np.float32([float(x) for x in line.split()[1:]])
    np.testing.assert_array_equal(_row(out, "superb"), expected)
    assert main(["train", "sentiment", "--resume", str(out), "--max-steps", "5", "--no-progress",
                 "--logger", "none", "--threads", "1"]) == 0
    np.testing.assert_array_equal(_row(out, "superb"), expected)
    assert json.loads((out / "config.json").read_text())["data"]["pretrained_embeddings"]["found"] == 20


def test_unfrozen_rows_train_and_yaml_works(reviews, tmp_path):
    vec = write_vectors(tmp_path / "vec.txt", dim=4)
    config = tmp_path / "c.yaml"
    config.write_text(f"task: sentiment\nmodel:\n  embeddings: {vec}\n  embedding_dim: 4\n", encoding="utf-8")
    out = tmp_path / "yaml"
    assert main(args(reviews, out, "--config", str(config), "--lr", "1e-2")) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["embeddings"] == str(vec) and cfg["model"]["freeze_embeddings"] is False
    line = next(ln for ln in vec.read_text().splitlines() if ln.startswith("superb "))
    assert not np.array_equal(_row(out, "superb"), np.float32([float(x) for x in line.split()[1:]]))


def test_without_embeddings_the_default_size_is_128(reviews, tmp_path):
    out = tmp_path / "plain"
    assert main(args(reviews, out, "--max-steps", "1")) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["embedding_dim"] == 128 and "pretrained_embeddings" not in cfg["data"]


def test_freeze_without_vectors_is_a_config_error():
    from rnnkit.errors import ConfigError
    from rnnkit.training.config import build_config

    with pytest.raises(ConfigError, match="--freeze-embeddings needs --embeddings FILE"):
        build_config({}, {"model": {"freeze_embeddings": True}}, task="sentiment")
    assert build_config({}, {}, task="sentiment").model.embedding_dim is None  # resolved by the recipe

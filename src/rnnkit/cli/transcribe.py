"""``rnnkit transcribe CKPT a.wav [b.flac | folder ...]``: transcripts of audio (``AsrPredictor.transcribe``).

Inputs: audio files and folders (their audio files, sorted) as arguments, or ``--input`` a
manifest (CSV/TSV with a ``path`` column; ``text`` may be there too and is kept) or a list of
paths one per line (``-`` = stdin). A file that cannot be read is reported as one line and
the run goes on (``--on-error skip``, the default here) or stops (``--on-error stop``); the
exit code is 2 at the end if any file failed. Output: ``FILE<TAB>text`` lines, ``--json``
lines, or ``--output`` (.csv/.tsv/.jsonl/.json) with the manifest's columns kept.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

import numpy as np

from ..errors import ConfigError, DataError, UserError
from . import io
from .common import bounded, positive_int

BATCH = 16  # utterances per network call


def register(sub) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio files with an asr checkpoint",
                       description="Print the transcript of each audio file (WAV, FLAC, OGG, ...).")
    p.add_argument("checkpoint", metavar="CKPT", help="asr checkpoint directory")
    p.add_argument("files", metavar="AUDIO", nargs="*", help="audio files or folders of audio files")
    p.add_argument("--input", metavar="FILE", default=None,
                   help="a manifest (CSV/TSV with a 'path' column) or a list of audio paths, one per line "
                        "('-' = standard input)")
    p.add_argument("--on-error", choices=("stop", "skip"), default="skip",
                   help="an unreadable audio file is reported and skipped (default) or stops the run")
    p.add_argument("--timestamps", action="store_true", help="per-word start and end times (s) from the CTC alignment")
    p.add_argument("--beam", type=positive_int("--beam"), default=1, help="CTC prefix beam width; 1 = greedy (default: 1)")
    p.add_argument("--words", default=None, metavar="train|FILE",
                   help="beam search may only spell these words: 'train' (the training transcripts' words) "
                        "or a file of words, one per line")
    p.add_argument("--chunk-seconds", type=bounded("--chunk-seconds", float, 0.1), default=30.0,
                   help="decode long files in chunks of at most this many seconds, >= 0.1 (default: 30)")
    io.add_output_flags(p)
    p.add_argument("--threads", type=positive_int("--threads"), default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_transcribe)


def audio_rows(files: List[str], manifest: str = None):
    """The inputs as a DataFrame with a ``path`` column (folders expanded, manifest columns kept)."""
    import pandas as pd

    from ..data.audio import AUDIO_SUFFIXES

    paths: List[str] = []
    for f in files:
        p = Path(f)
        if p.is_dir():
            found = sorted(str(q) for q in p.rglob("*") if q.suffix.lower() in AUDIO_SUFFIXES and q.is_file())
            if not found:
                raise DataError(f"{p}: the folder holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
            paths += found
        else:
            paths.append(f)
    frames = [pd.DataFrame({"path": paths})] if paths else []
    if manifest is not None:
        name = "standard input" if manifest == "-" else manifest
        df, col = io.read_table(manifest, "path", None)
        if "path" not in df.columns:
            raise DataError(f"{name}: a manifest needs a 'path' column (found: {', '.join(df.columns)[:200]})")
        base = Path(manifest).parent if manifest != "-" else Path(".")
        df["path"] = [str(p if Path(p).is_absolute() else base / p) for p in df["path"]]
        frames.append(df)
    if not frames:
        raise ConfigError("give audio files or folders, or --input MANIFEST ('-' for standard input)")
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def cmd_transcribe(args) -> int:
    from ..predictors import load
    from ..predictors.base import set_threads

    fmt = io.output_format(args.output)
    rows = audio_rows(args.files, args.input)
    model = load(args.checkpoint, expect=["asr"])
    set_threads(args.threads)
    decoder, constraint = model.decoding(args.beam, args.words)
    texts: List[str] = [""] * len(rows)
    stamps: List[list] = [[] for _ in range(len(rows))]
    ok = [False] * len(rows)
    paths = rows["path"].tolist()

    def work(idx):
        waves, where = [], []
        for i in idx:
            try:
                waves.append(model.waveform(paths[i]))
                where.append(i)
            except UserError as e:
                if args.on_error == "stop":
                    raise
                print(f"rnnkit: error: {e}", file=sys.stderr, flush=True)
        for i, r in zip(where, model.transcribe_waves(waves, decoder, args.beam, constraint, True, args.chunk_seconds)):
            texts[i], stamps[i], ok[i] = r["text"], r["words"], True
            if not fmt:
                _print(paths[i], r, args)

    def save(done):
        out = rows.iloc[:done].copy()
        out["transcript"] = texts[:done]
        if args.timestamps:
            out["words"] = [" ".join(f"{s['word']}[{s['start']:.2f}-{s['end']:.2f}]" for s in w) for w in stamps[:done]]
        io.write_frame(out.loc[np.array(ok[:done], dtype=bool)], args.output, fmt)

    io.run_rows(len(rows), BATCH, work, lambda done: save(done) if fmt else None)
    if fmt:
        save(len(rows))
        print(f"wrote {sum(ok)} transcripts to {args.output}", file=sys.stderr)
    failed = len(rows) - sum(ok)
    if failed:
        print(f"rnnkit: error: {failed} of {len(rows)} files could not be transcribed", file=sys.stderr)
        return 2
    return 0


def _print(path: str, r, args) -> None:
    if args.json:
        obj = {"file": path, "text": r["text"]}
        if args.timestamps:
            obj["words"] = r["words"]
        io.print_jsonl([obj])
    elif args.timestamps:
        print(f"{path}\t{r['text']}\t" + " ".join(f"{s['word']}[{s['start']:.2f}-{s['end']:.2f}]" for s in r["words"]),
              flush=True)
    else:
        print(f"{path}\t{r['text']}", flush=True)

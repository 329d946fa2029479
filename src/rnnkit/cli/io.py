"""One input/output convention for every inference verb (sample, predict, forecast, backtest,
transcribe, translate, evaluate).

* Inputs: arguments, ``--input FILE`` or ``--input -`` (stdin). Delimited text (CSV, TSV,
  semicolon- or pipe-separated) is sniffed, or given with ``--sep``; ``.jsonl`` holds one
  object per line; anything else is one item per line. A row that cannot be used is named
  (file and line) and stops the run, or with ``--on-error skip`` is skipped with a warning.
* Outputs: ``--output FILE`` in the format its extension names (``.csv``, ``.tsv``,
  ``.jsonl``, ``.json``, and ``.txt`` where a verb has one text per row); an unknown extension
  is an error, never a silent CSV. ``--json`` prints JSON lines to stdout. The input rows'
  other columns stay next to the predicted ones. Files are written through a temporary file
  renamed into place (:mod:`rnnkit.fileio`); rows finished before a stop are still written.
* Long inputs get a progress bar on stderr (tqdm, which Lightning already brings).
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .. import fileio
from ..errors import ConfigError, DataError

DELIMITED = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
OUTPUT_FORMATS = (".csv", ".tsv", ".jsonl", ".json")
SNIFF_BYTES = 64 * 1024
SEPARATORS = ",\t;|"
PROGRESS_MIN = 200  # items before a progress bar is worth showing


def add_input_flags(p, what: str = "texts", column: bool = True) -> None:
    p.add_argument("--input", metavar="FILE", default=None,
                   help=f"read {what} from FILE ('-' = standard input): CSV/TSV (delimiter sniffed), .jsonl, "
                        "or one per line")
    if column:
        p.add_argument("--text-col", default=None, metavar="COL",
                       help="column of --input holding the text (default: the training one, else 'text')")
        p.add_argument("--no-header", action="store_true",
                       help="--input has no header line (--text-col is then a 0-based number)")
        p.add_argument("--sep", default=None, metavar="CHAR",
                       help="delimiter of --input (default: sniffed among , TAB ; |)")
    p.add_argument("--on-error", choices=("stop", "skip"), default="stop",
                   help="a bad input row stops the run (default) or is skipped with a warning")


def add_output_flags(p, txt: bool = False) -> None:
    formats = ", ".join(OUTPUT_FORMATS + ((".txt",) if txt else ()))
    p.add_argument("--output", metavar="FILE", default=None,
                   help=f"write results to FILE, in the format its extension names ({formats})")
    p.add_argument("--json", action="store_true", help="print one JSON object per line to stdout")


def output_format(path: Optional[str], txt: bool = False) -> Optional[str]:
    """The format of ``--output`` (checked before any work), or None."""
    if path is None:
        return None
    p = Path(path)
    suffix = p.suffix.lower()
    allowed = OUTPUT_FORMATS + ((".txt",) if txt else ())
    if suffix not in allowed and not (str(path).startswith("/dev/") and suffix == ""):
        raise ConfigError(f"{path}: --output format unknown from its extension {suffix or '(none)'!r}; "
                          f"use one of {', '.join(allowed)}")
    fileio.check_output(p)
    return suffix or ".jsonl"


# ---------------------------------------------------------------------------------------
# inputs


def read_input_text(path: str) -> str:
    if path == "-":
        return fileio.stdin_text()
    p = fileio.check_input(path, "--input")
    try:
        import gzip

        raw = gzip.open(p, "rb").read() if p.suffix == ".gz" else p.read_bytes()
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def sniff_sep(text: str, path: str) -> Optional[str]:
    """The delimiter of delimited ``text``, or None when it reads as one item per line."""
    head = text[:SNIFF_BYTES]
    suffix = Path(path).suffix.lower()
    if suffix in DELIMITED:
        try:
            return csv.Sniffer().sniff(head, delimiters=SEPARATORS).delimiter
        except csv.Error:
            return DELIMITED[suffix]
    return None


def read_table(path: str, text_col: Optional[str], sep: Optional[str], header: bool = True,
               on_error: str = "stop", keep_empty: bool = False):
    """The rows of ``--input`` as a pandas DataFrame of strings, and the name of the text column.

    Plain text (no delimiter, not .jsonl) is one row per line, column ``text``; an empty line
    is a bad row unless ``keep_empty`` (line-aligned files, e.g. for translation)."""
    import pandas as pd

    text = read_input_text(path)
    name = "standard input" if path == "-" else path
    if not text.strip():
        raise DataError(f"{name}: empty (nothing to read)")
    if Path(path).suffix.lower() == ".jsonl":
        rows = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                bad_row(name, i, f"not a JSON object ({str(e)[:80]})", on_error)
                continue
            rows.append(obj)
        df = pd.DataFrame(rows) if rows else pd.DataFrame({text_col or "text": []})
        col = text_col or "text"
    else:
        sep = sep or sniff_sep(text, path)
        if sep is None:
            lines = text.splitlines()
            while lines and not lines[-1].strip():
                lines.pop()
            keep = []
            for i, line in enumerate(lines, 1):
                if not line.strip() and not keep_empty:
                    bad_row(name, i, "empty line (one text per line)", on_error)
                keep.append(keep_empty or bool(line.strip()))
            df = pd.DataFrame({"text": [ln.strip() for ln in lines], "__line": range(1, len(lines) + 1)})
            df = df.loc[np.array(keep, dtype=bool)]
            col = "text"
        else:
            df, col = _delimited(text, name, sep, text_col, header, on_error)
    if col not in df.columns and len(df):
        raise DataError(f"{name}: no column {col!r} (columns: {', '.join(map(str, df.columns))[:200]}); "
                        "choose one with --text-col")
    return df, col


def _delimited(text: str, name: str, sep: str, text_col: Optional[str], header: bool, on_error: str):
    import pandas as pd

    bad: List[Tuple[int, str]] = []

    def on_bad(fields):  # pandas calls this for a row with too many fields
        bad.append((0, sep.join(fields)))
        return None

    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, header=0 if header else None, dtype=str, keep_default_na=False,
                         engine="python", on_bad_lines=on_bad)
    except (pd.errors.ParserError, ValueError, csv.Error) as e:
        shown = {"\t": "TAB"}.get(sep, sep)
        raise DataError(f"{name}: cannot parse as {shown!r}-separated text ({str(e)[:150]}); "
                        "give the delimiter with --sep") from None
    if bad:
        lines = _bad_line_numbers(text, sep, len(df.columns))
        for ln in lines[:5]:
            bad_row(name, ln, f"has more fields than the {len(df.columns)} columns of the header", on_error)
        if len(lines) > 5:
            print(f"rnnkit: warning: {name}: {len(lines) - 5} more such lines skipped", file=sys.stderr)
    df.columns = [str(c) for c in df.columns]
    df["__line"] = range(2 if header else 1, len(df) + (2 if header else 1))
    return df, str(text_col if text_col is not None else "text")


def _bad_line_numbers(text: str, sep: str, n_cols: int) -> List[int]:
    return [i for i, row in enumerate(csv.reader(io.StringIO(text), delimiter=sep), 1) if len(row) > n_cols]


def bad_row(name: str, line: int, problem: str, on_error: str) -> None:
    """One bad input row: an error (``stop``) or a warning (``skip``)."""
    msg = f"{name}, line {line}: {problem}"
    if on_error == "skip":
        print(f"rnnkit: warning: {msg} (skipped)", file=sys.stderr)
        return
    raise DataError(f"{msg} (use --on-error skip to skip bad rows)")


def clean_texts(df, col: str, name: str, on_error: str):
    """Rows of ``df`` whose ``col`` holds text; empty ones named, then stopped at or skipped."""
    keep = []
    for i, v in enumerate(df[col].tolist()):
        ok = isinstance(v, str) and v.strip() != ""
        if not ok:
            line = int(df["__line"].iloc[i]) if "__line" in df.columns else i + 1
            bad_row(name, line, f"empty {col!r}", on_error)
        keep.append(ok)
    return df.loc[np.array(keep, dtype=bool)]


# ---------------------------------------------------------------------------------------
# outputs


def progress(items: Sequence[Any], desc: str, unit: str) -> Iterable[Any]:
    """``items`` with a tqdm bar on stderr when there are many of them and stderr is a terminal."""
    if len(items) < PROGRESS_MIN or not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit=unit, file=sys.stderr, leave=False)


def in_batches(n: int, size: int) -> Iterator[range]:
    for i in range(0, n, size):
        yield range(i, min(n, i + size))


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):  # NumPy scalars
        return _json_value(v.item())
    return v


def records(df) -> List[Dict[str, Any]]:
    return [{k: _json_value(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


def print_jsonl(rows: Iterable[Dict[str, Any]]) -> None:
    out = sys.stdout
    for r in rows:
        out.write(json.dumps({k: _json_value(v) for k, v in r.items()}, ensure_ascii=False) + "\n")
    out.flush()


def write_frame(df, path: str, fmt: str, text_col: Optional[str] = None) -> None:
    """Write ``df`` to ``path`` atomically in ``fmt`` (see :func:`output_format`)."""
    df = df.drop(columns=[c for c in df.columns if str(c).startswith("__")])
    with fileio.atomic_output(path) as f:
        if fmt in (".csv", ".tsv"):
            df.to_csv(f, index=False, sep="," if fmt == ".csv" else "\t", lineterminator="\n")
        elif fmt == ".json":
            json.dump(records(df), f, ensure_ascii=False, indent=1)
            f.write("\n")
        elif fmt == ".txt":
            for v in df[text_col or df.columns[-1]].tolist():
                f.write(f"{v}\n")
        else:  # .jsonl
            for r in records(df):
                f.write(json.dumps(r, ensure_ascii=False) + "\n")


def write_json(obj: Any, path: str) -> None:
    with fileio.atomic_output(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def run_rows(n: int, batch: int, work: Callable[[range], None], on_stop: Callable[[int], None]) -> None:
    """Run ``work`` over batches of ``n`` rows; when one raises, ``on_stop(rows_done)`` saves
    what is finished before the error goes on."""
    done = 0
    try:
        for idx in in_batches(n, batch):
            work(idx)
            done = idx.stop
    except BaseException:
        if done:
            on_stop(done)
        raise

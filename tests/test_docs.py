"""Run the ``>>>`` examples of docs/*.md and README.md as doctests, one test per file.

Markdown fence lines (```` ``` ````, ``~~~``) are blanked before parsing, so an example's
expected output ends at its code block's end without needing a blank line before the fence.
Files without ``>>>`` are skipped. Each file gets fresh globals; examples within a file share
them, top to bottom.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = sorted((ROOT / "docs").glob("**/*.md")) + [p for p in [ROOT / "README.md"] if p.exists()]
FENCE = re.compile(r"^[ \t]*(```|~~~).*$", re.MULTILINE)
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


class MarkdownDocTestParser(doctest.DocTestParser):
    """doctest's parser with Markdown fence lines blanked (line numbers are kept)."""

    def parse(self, string, name="<string>"):
        return super().parse(FENCE.sub("", string), name)


# README's "Python API" examples load runs/<name>: tiny checkpoints stand in for them
README_RUNS = {"ts": "charlm", "sst2": "sentiment", "seattle": "forecast", "asr": "asr", "m30k": "seq2seq"}


def _readme_runs(request, tmp_path, monkeypatch) -> None:
    import shutil

    tiny = request.getfixturevalue("tiny")
    (tmp_path / "runs").mkdir()
    for name, task in README_RUNS.items():
        (tmp_path / "runs" / name).symlink_to(tiny[task])
    shutil.copy(sorted((tiny["asr"].parent / "digits").glob("*.wav"))[0], tmp_path / "recording.wav")
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_examples(path: Path, request, tmp_path, monkeypatch) -> None:
    if ">>>" not in path.read_text(encoding="utf-8"):
        pytest.skip(f"{path.name} has no >>> examples")
    if path.name == "README.md":
        _readme_runs(request, tmp_path, monkeypatch)
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        result = doctest.testfile(str(path), module_relative=False, optionflags=OPTIONS,
                                  parser=MarkdownDocTestParser(), encoding="utf-8",
                                  raise_on_error=False, report=True)
    assert result.attempted > 0, f"no examples found in {path}"
    assert result.failed == 0, report.getvalue()

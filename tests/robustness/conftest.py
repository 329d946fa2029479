"""Counts the malformed inputs the suite checked and prints the number at the end."""

from __future__ import annotations

CHECKED = {"n": 0}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if CHECKED["n"]:
        terminalreporter.write_line(f"robustness suite: {CHECKED['n']} malformed inputs checked "
                                    f"(one line naming the input, exit 2, no traceback, nothing written)")

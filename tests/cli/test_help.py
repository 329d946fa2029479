"""``--help`` answers for every verb, sub-verb and ``train <task>``, and every help string renders.

``rnnkit train asr --help`` once crashed (an unescaped ``%`` in a help text is a %-format
directive to argparse); these tests walk the whole parser tree, so a new option cannot
bring that back.
"""

from __future__ import annotations

import argparse

import pytest

from rnnkit.cli.main import build_parser, main


def _walk(parser: argparse.ArgumentParser, path=()):
    """(argv prefix, parser) for the parser and every sub-parser below it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, path + (name,))


ALL = [path for path, _ in _walk(build_parser())]


def test_the_tree_holds_every_verb_and_task():
    assert ("train", "asr") in ALL and ("train", "forecast") in ALL and ("train", "seq2seq") in ALL
    assert ("diagnose", "gradients") in ALL and ("bench", "memory") in ALL
    assert len(ALL) >= 19  # rnnkit, 10 verbs, 5 train tasks, diagnose and bench sub-verbs


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "rnnkit")
def test_help_exits_0_without_traceback(path, capsys):
    with pytest.raises(SystemExit) as e:
        main([*path, "--help"])
    cap = capsys.readouterr()
    assert e.value.code == 0, cap.err
    assert "Traceback" not in cap.out + cap.err
    assert cap.out.startswith("usage: rnnkit")
    assert cap.err == ""


def test_every_help_string_renders_through_argparse():
    """format_help of every (sub)parser, and each option's help %-formatted on its own, so
    the message names the option whose help is broken."""
    for path, parser in _walk(build_parser()):
        parser.format_help()
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.help and action.help is not argparse.SUPPRESS:
                try:
                    formatter._expand_help(action)
                except (TypeError, ValueError, KeyError) as e:  # pragma: no cover - the failure message
                    pytest.fail(f"rnnkit {' '.join(path)} {action.option_strings}: help does not render: {e}")


def test_a_percent_in_a_config_help_is_shown_literally(capsys):
    with pytest.raises(SystemExit):
        main(["train", "asr", "--help"])
    assert "at most 20% of the utterance" in " ".join(capsys.readouterr().out.split())

"""User-facing errors: one clear line, exit code 2, no traceback (the CLI catches them).

Raise :class:`UserError` (or a subclass) for anything caused by the user's input: a missing
file, a malformed corpus, a bad option, a checkpoint of the wrong kind. The message must
name the file (or option) and the problem in one line.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user; the CLI prints ``rnnkit: error: <message>`` and exits 2."""

    exit_code = 2


class DataError(UserError):
    """A data file or corpus that cannot be used."""


class CheckpointError(UserError):
    """A checkpoint that cannot be loaded (missing, corrupt, wrong task, newer format)."""


class ExportError(CheckpointError):
    """A checkpoint that cannot be exported (an encoder without an ONNX route, a failed self-check)."""


class ConfigError(UserError):
    """An invalid configuration value or option."""


class InputError(UserError, ValueError):
    """A bad argument to a predictor method (:func:`rnnkit.load`): a wrong type, an empty
    list, a NaN row, audio of the wrong kind, a checkpoint of another task for the method.
    Also a ``ValueError``, so callers that catch the standard type still do."""


class TrainingDiverged(UserError):
    """Training produced non-finite losses or gradients for too many consecutive steps."""

    exit_code = 1


class Interrupted(UserError):
    """Stopped at once by a second Ctrl-C, without saving (the shell's 128 + SIGINT)."""

    exit_code = 130

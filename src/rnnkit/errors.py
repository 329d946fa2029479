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
QUOTE_LIMIT = 200


def shown(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for an error message, cut to about ``limit`` characters: a 10 MB CSV
    cell or an expanded YAML document never becomes a 10 MB error line."""
    if isinstance(value, int) and value.bit_length() > 10_000:  # str() refuses > 4300 digits
        return f"{'-' if value < 0 else ''}an integer of about {int(value.bit_length() * 0.30103):,} digits"
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


MESSAGE_LIMIT = 2000


def one_line(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """The backstop the CLI prints through: one line (newlines escaped) of at most about
    ``limit`` characters, keeping the start (file and problem) and the end."""
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    if len(message) <= limit:
        return message
    head = limit - 200
    return f"{message[:head]} ...[{len(message) - head - 100:,} characters cut]... {message[-100:]}"

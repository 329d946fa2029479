"""SIGINT / SIGTERM as a polite request to stop (torch-free, shared by both engines).

The first signal sets :attr:`StopFlag.signal`; the training loop finishes its step, writes a
checkpoint and returns. A second SIGINT interrupts at once: :class:`StopNow` is raised
wherever the run is (a ``BaseException``, so neither ``except Exception`` in the loop nor
Lightning's KeyboardInterrupt handler, which exits 1 in silence, swallows it); the engine
turns it into :class:`~rnnkit.errors.Interrupted` (exit 130, naming the last saved step).
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Dict, Optional


class StopNow(BaseException):
    """A second SIGINT: stop at once, without saving."""


class StopFlag:
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal: Optional[int] = None
        self._previous: Dict[int, Any] = {}

    def install(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():  # handlers live in the main thread only
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        if self.signal is None:
            self.signal = pending()  # one that arrived while the run was starting up
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise StopNow()
        self.signal = signum

    @property
    def name(self) -> Optional[str]:
        return None if self.signal is None else signal.Signals(self.signal).name


# A signal that arrives while `rnnkit train` starts up (importing torch and Lightning, reading
# the data) is recorded rather than raised: a KeyboardInterrupt raised inside an import can be
# swallowed by a library's bare `except:`, and the run then trains on as if nothing happened.
# The engines check :func:`pending` before they create --out and refuse to start.
_startup: Optional[StopFlag] = None


def defer_interrupts() -> StopFlag:
    """Record SIGINT/SIGTERM from now on (a second SIGINT still stops at once: StopNow)."""
    global _startup
    _startup = StopFlag().install()
    return _startup


def pending() -> Optional[int]:
    """The signal recorded since :func:`defer_interrupts`, if any."""
    return None if _startup is None else _startup.signal


def end_deferral() -> None:
    global _startup
    if _startup is not None:
        _startup.restore()
        _startup = None


def refuse_if_pending(what: str = "training") -> None:
    """Raise :class:`~rnnkit.errors.Interrupted` when a signal arrived before ``what`` began."""
    sig = pending()
    if sig is not None:
        from ..errors import Interrupted

        e = Interrupted(f"stopped by {signal.Signals(sig).name} before {what} started; nothing was written")
        e.resumable = False  # nothing was saved: no resume command to print
        raise e

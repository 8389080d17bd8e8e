"""How long work reports and stops: the ``progress`` and ``should_stop`` callbacks it takes (with
``quiet`` and ``never``, the defaults) and the one cancellation exception, ``Cancelled``; and the
signals that end a command-line run (``ends_as_interrupts``, ``signals_held``).

Long work is a plain function taking ``progress(fraction, message)`` and ``should_stop()``; when
``should_stop()`` turns true it raises Cancelled, having written nothing. Cancelled is a subclass
of InterruptedError, so code that caught InterruptedError (the data checks and the listing of
images used to raise it) still catches it. InterruptedError is an OSError: an ``except OSError``
that should not swallow a cancellation must come after ``except Cancelled``.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Callable, Sequence

Progress = Callable[[float, str], None]   # progress(fraction 0..1, message)
ShouldStop = Callable[[], bool]


def quiet(fraction: float, message: str) -> None:
    """A progress callback that shows nothing."""


def never() -> bool:
    """A should_stop callback that never stops."""
    return False


class Cancelled(InterruptedError):
    """The caller's ``should_stop()`` turned true; nothing was written."""


class Terminated(KeyboardInterrupt):
    """The process was asked to end (SIGTERM: a logoff, a service manager, ``kill``; SIGHUP: the
    terminal closed; SIGBREAK on Windows): handled as Ctrl+C is, so what was done is kept."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def ends_as_interrupts():
    """While inside, the signals that end a process raise ``Terminated`` in the main thread (the
    handlers before are restored after); elsewhere (another thread) nothing changes."""
    import signal

    def stop(signum, frame):
        raise Terminated(signum)

    with _signal_handlers(("SIGTERM", "SIGHUP", "SIGBREAK"), stop):
        yield


@contextlib.contextmanager
def _signal_handlers(names: Sequence[str], handler):
    """``handler`` for these signals while inside, in the main thread only, and the handlers
    before put back after. A signal set to be ignored stays ignored (``nohup``), and one whose
    handler Python cannot put back (installed from C) is left alone."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {}
    for name in names:
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        current = signal.getsignal(sig)
        if current is None or (current is signal.SIG_IGN and handler is not signal.SIG_IGN):
            continue
        try:
            before[sig] = signal.signal(sig, handler)
        except (OSError, ValueError):
            pass
    try:
        yield
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


def signals_held():
    """Ctrl+C and the ending signals ignored while inside: what was done is being saved."""
    import signal

    return _signal_handlers(("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK"), signal.SIG_IGN)

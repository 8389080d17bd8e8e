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


# the signals that asked this run to end, in order, since the outermost ``ends_as_interrupts``
# began: kept even when the exception a signal raised was swallowed (an interrupt that lands in
# a destructor, which Python only reports), and while ``signals_held`` holds them
_received: list[int] = []
_depth = [0]


def interrupted() -> int | None:
    """The first signal that asked this run to end (``signal.SIGINT`` for Ctrl+C), None if none:
    a ``should_stop`` for long work, and the check between phases."""
    return _received[0] if _received else None


def interruption(signum: int) -> KeyboardInterrupt:
    """The exception a signal ends a run with: KeyboardInterrupt for Ctrl+C, else Terminated."""
    import signal

    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def stop_asked() -> bool:
    """A ``should_stop`` for long work run from a command: true once a signal asked the run to
    end, even one whose exception the code it landed in swallowed (a destructor in
    TensorFlow's clean-up)."""
    return interrupted() is not None


def raise_if_interrupted() -> None:
    """Raises the run's interruption if a signal asked it to end (checked between phases)."""
    signum = interrupted()
    if signum is not None:
        raise interruption(signum)


@contextlib.contextmanager
def ends_as_interrupts():
    """While inside, Ctrl+C raises KeyboardInterrupt and the signals that end a process raise
    ``Terminated`` in the main thread (the handlers before are restored after); elsewhere
    (another thread) nothing changes. Each signal is also remembered (``interrupted``), so an
    interrupt raised where Python swallows it is not lost."""
    def stop(signum, frame):
        _received.append(signum)
        raise interruption(signum)

    if _depth[0] == 0:
        _received.clear()
    _depth[0] += 1
    try:
        with _signal_handlers(("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK"), stop):
            yield
    finally:
        _depth[0] -= 1


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


@contextlib.contextmanager
def signals_held(notice: str = ""):
    """Ctrl+C and the ending signals wait while inside: what was done is being saved, and the
    saving finishes. A signal that came meanwhile is not raised but remembered (``interrupted``):
    a caller with more work after the saving checks it (long work through its ``should_stop``);
    a run that ends with the saving simply ends, its files complete. ``notice`` is said on
    stderr when the first such signal comes (that it was heard, and why the run goes on)."""
    import os

    held: list[int] = []

    def hold(signum, frame):
        if not held and notice:
            with contextlib.suppress(OSError):   # the terminal may be gone; never print() here,
                os.write(2, f"{notice}\n".encode())   # which may be writing when it lands
        held.append(signum)
        _received.append(signum)

    with _signal_handlers(("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK"), hold):
        yield

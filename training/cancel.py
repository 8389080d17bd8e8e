"""How long work reports and stops: the ``progress`` and ``should_stop`` callbacks it takes (with
``quiet`` and ``never``, the defaults) and the one cancellation exception, ``Cancelled``.

Long work is a plain function taking ``progress(fraction, message)`` and ``should_stop()``; when
``should_stop()`` turns true it raises Cancelled, having written nothing. Cancelled is a subclass
of InterruptedError, so code that caught InterruptedError (the data checks and the listing of
images used to raise it) still catches it. InterruptedError is an OSError: an ``except OSError``
that should not swallow a cancellation must come after ``except Cancelled``.
"""
from __future__ import annotations

from typing import Callable

Progress = Callable[[float, str], None]   # progress(fraction 0..1, message)
ShouldStop = Callable[[], bool]


def quiet(fraction: float, message: str) -> None:
    """A progress callback that shows nothing."""


def never() -> bool:
    """A should_stop callback that never stops."""
    return False


class Cancelled(InterruptedError):
    """The caller's ``should_stop()`` turned true; nothing was written."""

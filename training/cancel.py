"""The one cancellation exception: raised when a caller's ``should_stop()`` turned true.

A subclass of InterruptedError, so code that caught InterruptedError (the data checks and the
listing of images used to raise it) still catches it. InterruptedError is an OSError: an
``except OSError`` that should not swallow a cancellation must come after ``except Cancelled``.
"""
from __future__ import annotations


class Cancelled(InterruptedError):
    """The caller's ``should_stop()`` turned true; nothing was written."""

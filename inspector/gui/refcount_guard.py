"""A guard against a reference-count bug of the pinned PySide6/shiboken6 6.12.0 on CPython 3.11.

Measured here: every ``Signal.emit()`` / ``connect()`` called from Python drops one reference to
``True`` that it never took, and every Python override of a C++ virtual that returns None (a
``paintEvent``, an item model's ``data()`` returning None, pyqtgraph's many overrides) drops one
reference to ``None``. CPython 3.11 frees None/True when their count reaches zero and aborts the
process ("Fatal Python error: none_dealloc" / "bool_dealloc") - after some minutes of scrolling
or a few thousand signals: a window that dies in the middle of a shift.

CPython 3.12 made these singletons immortal, so the bug is harmless there. On 3.11 this module
does the same by hand: when a probe shows the bug, None, True and False get a reference count
so large (2**40) that no session can use it up. Nothing else changes. Remove this module when a
fixed PySide6 is pinned (``probe()`` then returns False and ``install()`` does nothing).
"""
from __future__ import annotations

import ctypes
import sys

BOOST = 1 << 40
_installed = False


def probe(rounds: int = 16) -> bool:
    """True when emitting a signal from Python loses references to True (the 6.12.0 bug)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        sig = Signal()

    p = _Probe()
    before = sys.getrefcount(True)
    for _ in range(rounds):
        p.sig.emit()
    lost = before - sys.getrefcount(True)
    if lost > 0:  # give back what the probe itself took
        _add_refs(True, lost)
    return lost >= rounds // 2


def _applicable() -> bool:
    return (sys.implementation.name == "cpython" and sys.version_info < (3, 12)
            and not hasattr(sys, "gettotalrefcount"))  # release build: ob_refcnt is at offset 0


def _add_refs(obj, n: int) -> None:
    ctypes.c_ssize_t.from_address(id(obj)).value += n


def install() -> bool:
    """Makes None, True and False effectively immortal if this PySide6 needs it; idempotent.
    Returns whether the guard is active."""
    global _installed
    if _installed:
        return True
    if not _applicable() or not probe():
        return False
    for obj in (None, True, False):
        _add_refs(obj, BOOST)
    _installed = True
    return True


def active() -> bool:
    return _installed

"""The commands' standard output in UTF-8 where the system would use another encoding (Windows'
ANSI code page, a Latin-2 locale).
Qt-free, numpy-free: the commands call it first."""
from __future__ import annotations

import codecs
import contextlib
import sys


def utf8_stdout(platform: str | None = None) -> None:
    """The commands' output in UTF-8, as ``--out`` writes it: on Windows a redirected or piped
    stdout is in the ANSI code page with errors="strict", so a path, class or model name outside
    it (Polish, Czech, Chinese...) raised UnicodeEncodeError in the middle of a run or listing
    (a console is UTF-8 already). Elsewhere, a redirected or piped stdout in a locale that is
    not UTF-8 (``LC_ALL=pl_PL.ISO-8859-2``) is made UTF-8 the same way: ``inspector classify
    --excel > x.csv`` stopped at its byte-order mark with a traceback. A terminal keeps its
    locale's encoding."""
    out = sys.stdout
    if out is None or not hasattr(out, "reconfigure"):
        return
    windows = (platform or sys.platform) == "win32"
    if not windows:
        with contextlib.suppress(LookupError, TypeError, ValueError, OSError, AttributeError):
            if codecs.lookup(out.encoding).name == "utf-8" or out.isatty():
                return
    with contextlib.suppress(ValueError, OSError):
        out.reconfigure(encoding="utf-8", errors="backslashreplace")

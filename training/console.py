"""The commands' standard output on Windows: UTF-8 where the system would use its ANSI code page.
Qt-free, numpy-free: the commands call it first."""
from __future__ import annotations

import contextlib
import sys


def utf8_stdout(platform: str | None = None) -> None:
    """The commands' output in UTF-8, as ``--out`` writes it: on Windows a redirected or piped
    stdout is in the ANSI code page with errors="strict", so a path, class or model name outside
    it (Polish, Czech, Chinese...) raised UnicodeEncodeError in the middle of a run or listing
    (a console is UTF-8 already). Elsewhere nothing changes."""
    if (platform or sys.platform) == "win32" and hasattr(sys.stdout, "reconfigure"):
        with contextlib.suppress(ValueError, OSError):
            sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")

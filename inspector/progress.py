"""Progress of a long command on a terminal (``inspector classify``). Qt-free."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """A bar redrawn in place on a terminal; plain lines (every 10 % or 10 s) otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None, label: str = "classifying"):
        stream = stream or sys.stderr
        self.total, self.stream, self.label = total, stream, label
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1

    def update(self, done: int, failed: int = 0) -> None:
        now = time.monotonic()
        frac = done / max(1, self.total)
        rate = done / max(now - self.start, 1e-9)
        extra = f", {failed} failed" if failed else ""
        if self.tty:
            if now - self._last_draw < 0.1 and done < self.total:
                return
            self._last_draw = now
            eta = (self.total - done) / rate if rate > 0 else 0
            bar = "#" * int(frac * 30)
            self.stream.write(f"\r{self.label} [{bar:<30}] {done}/{self.total} {frac:4.0%} "
                              f"{rate:6.1f} img/s ETA {eta:4.0f} s{extra}  ")
            if done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
        else:
            decile = int(frac * 10)
            if decile > self._last_decile or now - self._last_draw >= 10 or done >= self.total:
                if done >= self.total and self._last_decile == 10:
                    return
                self._last_decile = decile
                self._last_draw = now
                print(f"{self.label}: {done}/{self.total} ({frac:.0%}, {rate:.1f} img/s{extra})",
                      file=self.stream, flush=True)

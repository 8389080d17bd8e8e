"""What the wizard's pages share: page ids, colours, time and percent formats, thumbnails and
the problem tree."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem

from training.checks import ERROR, INFO, WARNING
from training.images import ImageReadError

from ..workers import make_thumbnail, qimage_from_array


PAGE_DATA, PAGE_SETTINGS, PAGE_TRAINING, PAGE_EVALUATION, PAGE_FINISH = range(5)
THUMB = 72
SEVERITY_COLOURS = {ERROR: "#c62828", WARNING: "#b26a00", INFO: "#546e7a"}
TRAIN_PEN, VAL_PEN = "#0072B2", "#D55E00"  # Okabe-Ito blue and vermilion


def new_run(page) -> Callable[[Callable], Callable]:
    """Starts a new run of a page's background work: returns a wrapper for the run's slots
    that drops what an earlier run still sends (Back, then Next before the stopped run has
    ended: its late "cancelled" read as the new run's outcome)."""
    run = page._run = object()
    return lambda slot: (lambda *a: slot(*a) if page._run is run else None)


def hms(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


def about_time(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(1, round(seconds / 5) * 5):.0f} s"
    return f"about {round(seconds / 60):.0f} min"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def read_thumbnail(path: str | Path) -> np.ndarray | None:
    """An image's thumbnail for the wizard's lists (the main window's: gui.workers.make_thumbnail),
    or None when it cannot be read. Runs in a worker; thumb_pixmap shows it."""
    try:
        return make_thumbnail(path, THUMB)
    except ImageReadError:
        return None


def thumb_pixmap(arr: np.ndarray | None, size: int = THUMB) -> QPixmap:
    """A thumbnail array (read_thumbnail) as a pixmap; grey where there is none."""
    if arr is None:
        pm = QPixmap(size, size)
        pm.fill(QColor("#ddd"))
        return pm
    return QPixmap.fromImage(qimage_from_array(arr))


def wrap_text(text: str, metrics, width: int) -> str:
    """``text`` with line breaks so that no line is wider than ``width`` pixels."""
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}" if line else word
        if line and metrics.horizontalAdvance(trial) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    return "\n".join(lines)


class ProblemTree(QTreeWidget):
    """A tree whose top-level messages wrap to the width (Qt item views do not grow rows for
    wrapped text, so the line breaks are put in by hand and redone on resize)."""

    def add_message(self, text: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem([text])
        item.setData(0, Qt.ItemDataRole.UserRole, text)
        item.setToolTip(0, text)
        self.addTopLevelItem(item)
        self._rewrap(item)
        return item

    def _rewrap(self, item: QTreeWidgetItem) -> None:
        width = max(200, self.viewport().width() - self.indentation() - 12)
        item.setText(0, wrap_text(item.data(0, Qt.ItemDataRole.UserRole), self.fontMetrics(), width))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        for i in range(self.topLevelItemCount()):
            self._rewrap(self.topLevelItem(i))

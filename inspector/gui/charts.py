"""pyqtgraph bar charts: every class's probability, and a block's channel weights."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics

# Colour-blind-safe palette (Okabe-Ito), one colour per class, shared by charts and thumbnails.
CLASS_COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#0072B2", "#D55E00", "#F0E442",
                 "#999999")
# "unknown - not a known defect": a violet-magenta no class and no review state uses
UNKNOWN_COLOUR = QColor("#C51BD6")
STATUS_GAP_PX = 16  # space between a status bar's message and its permanent labels


def class_colour(index: int) -> QColor:
    return QColor(CLASS_COLOURS[index % len(CLASS_COLOURS)])


class _Chart(pg.PlotWidget):
    """A static chart: white, no mouse interaction, never takes keyboard focus."""

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        self.setMenuEnabled(False)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for name in ("left", "bottom"):
            ax = self.getAxis(name)
            ax.setTextPen("k")
            ax.setPen(pg.mkPen("#888"))
        # room on the right for the bottom axis's last tick label (centred on the plot's edge)
        self.getPlotItem().layout.setContentsMargins(1, 1, 12, 1)


class ProbabilityChart(_Chart):
    """Horizontal bars: one per class (keyboard number and name), the predicted class filled in
    its colour, the others outlined; a dashed line marks the review threshold."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Class probabilities", color="k", size="10pt")
        self.getPlotItem().invertY(True)
        self.setXRange(0, 1, padding=0.02)
        self.getPlotItem().showGrid(x=True, y=False, alpha=0.2)
        self._class_names: list[str] = []
        self._values = np.zeros(0, np.float32)
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[])
        self.addItem(self.bars)
        self.threshold_line = pg.InfiniteLine(0.8, angle=90, pen=pg.mkPen("#c00", width=1,
                                                                             style=Qt.PenStyle.DashLine))
        self.addItem(self.threshold_line)
        self.labels: list[pg.TextItem] = []

    def set_classes(self, class_names: Sequence[str]) -> None:
        self._class_names = list(class_names)
        ticks = [(i, f"{i + 1}  {n}" if i < 9 else n) for i, n in enumerate(self._class_names)]
        self.getAxis("left").setTicks([ticks])
        self.setYRange(-0.6, len(self._class_names) - 0.4, padding=0)
        self.set_values(None)

    def set_threshold(self, value: float) -> None:
        self.threshold_line.setValue(float(value))

    def values(self) -> np.ndarray:
        """The bar lengths shown (what a test compares with the classifier's output)."""
        return np.asarray(self.bars.opts.get("width", []), dtype=np.float64)

    def set_values(self, probs: np.ndarray | None) -> None:
        n = len(self._class_names)
        probs = np.zeros(n, np.float32) if probs is None else np.asarray(probs, np.float32)
        self._values = probs
        top = int(np.argmax(probs)) if probs.size and probs.max() > 0 else -1
        brushes = [class_colour(i) if i == top else QColor(class_colour(i).lighter(170))
                   for i in range(len(probs))]
        self.bars.setOpts(x0=np.zeros(len(probs)), y=np.arange(len(probs)), height=0.7,
                          width=probs, brushes=brushes, pen=pg.mkPen("#555"))
        while len(self.labels) < len(probs):   # value labels are made once, then reused
            t = pg.TextItem("", color="k", anchor=(0, 0.5))
            self.addItem(t)
            self.labels.append(t)
        for i, t in enumerate(self.labels):
            shown = top >= 0 and i < len(probs)
            t.setVisible(shown)
            if shown:
                t.setText(f"{probs[i]:.1%}")
                t.setPos(min(float(probs[i]), 0.78) + 0.01, i)


TITLE_MARGIN = 64   # a chart's width less its title's: the axes beside the plot, and a margin


class WeightsChart(_Chart):
    """Vertical bars: one per channel (an SE block's excitation weights, or the class weights a
    class activation map uses)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.getAxis("bottom").setLabel("channel", color="k")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush="#0072B2", pen=None)
        self.addItem(self.bars)
        self._title: str | None = None
        self._shown_title: str | None = None
        self._ranges: tuple | None = None

    def values(self) -> np.ndarray:
        return np.asarray(self.bars.opts.get("height", []), dtype=np.float64)

    def _fit_title(self) -> None:
        """The title, shortened with "…" to the chart's width: a title wider than the chart
        widened the plot past its panel, and the last channels' bars were cut off."""
        font = QFont(self.font())
        font.setPointSizeF(10)
        # the plot is as wide as its title and the axes' room beside it (about 40 px)
        room = max(40, self.width() - TITLE_MARGIN)
        shown = QFontMetrics(font).elidedText(self._title or "", Qt.TextElideMode.ElideRight, room)
        if shown != self._shown_title:   # a new title lays the plot out again: only on change
            self._shown_title = shown
            self.setTitle(shown, color="k", size="10pt")

    def resizeEvent(self, event) -> None:  # noqa: N802
        if getattr(self, "_title", None):   # first: the plot is laid out for the new title
            self._fit_title()
        super().resizeEvent(event)   # pyqtgraph calls it with None while it is built

    def set_weights(self, weights: np.ndarray | None, title: str = "", unit_range: bool = True) -> None:
        w = np.zeros(0, np.float32) if weights is None else np.asarray(weights, np.float32).ravel()
        if title != self._title:
            self._title = title
            self.setToolTip(title)
            self._fit_title()
        neg = w < 0
        brushes = [QColor("#D55E00") if n else QColor("#0072B2") for n in neg]
        self.bars.setOpts(x=np.arange(len(w)), height=w, width=0.8, brushes=brushes, pen=None)
        if len(w):
            if unit_range:
                lo, hi, pad = 0.0, 1.0, 0.02
            else:
                lo, hi = float(min(w.min(), 0)), float(max(w.max(), 0))
                hi, pad = (hi if hi > lo else lo + 1), 0.05
            ranges = (len(w), lo, hi, pad)
            if ranges != self._ranges:  # the same ranges again would only cost a relayout
                self._ranges = ranges
                self.setXRange(-0.8, len(w) - 0.2, padding=0)
                self.setYRange(lo, hi, padding=pad)

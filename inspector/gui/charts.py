"""pyqtgraph bar charts: every class's probability, and a block's channel weights."""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QFontMetricsF

from ..tiles import defect_free_classes

# Colour-blind-safe palette (Okabe-Ito), one colour per class, shared by charts, thumbnails,
# the review window's tiles and the camera's tiles. Its bluish green is kept for defect-free
# classes (good, free, ...) alone: a defect class drawn in it read as "defect-free".
CLASS_COLOURS = ("#E69F00", "#56B4E9", "#999999", "#CC79A7", "#0072B2", "#D55E00", "#F0E442")
GOOD_COLOUR = "#009E73"
# "unknown - not a known defect": a violet-magenta no class and no review state uses
UNKNOWN_COLOUR = QColor("#C51BD6")
STATUS_GAP_PX = 16  # space between a status bar's message and its permanent labels


def class_colour(index: int, class_names=None) -> QColor:
    """The colour of class ``index``; with ``class_names``, a defect-free class's is green."""
    if class_names is not None and 0 <= index < len(class_names):
        free = _defect_free(tuple(class_names))
        if index in free:
            return QColor(GOOD_COLOUR)
        # the defect classes in turn: a defect-free class's index leaves no colour unused (8
        # classes with "good" second gave the 1st and the 8th the same orange)
        index -= sum(i < index for i in free)
    return QColor(CLASS_COLOURS[index % len(CLASS_COLOURS)])


@lru_cache(maxsize=64)
def _defect_free(class_names: tuple) -> tuple[int, ...]:
    """``tiles.defect_free_classes``, once per list of names (class_colour runs on every
    paint of every thumbnail, bar and tile)."""
    return tuple(defect_free_classes(class_names))


def _luminance(colour: QColor) -> float:
    """Relative luminance (WCAG 2)."""
    def lin(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    return 0.2126 * lin(colour.redF()) + 0.7152 * lin(colour.greenF()) + 0.0722 * lin(colour.blueF())


def contrast(a: QColor, b: QColor) -> float:
    """The WCAG contrast ratio of two colours (1 to 21; text wants at least 4.5)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def ink_for(colour: QColor) -> QColor:
    """Black or white, whichever reads better on ``colour`` (black on the class blue #0072B2
    was 4.0:1)."""
    black, white = QColor("black"), QColor("white")
    return black if contrast(black, colour) >= contrast(white, colour) else white


TEXT_CONTRAST = 4.5   # WCAG AA for text


def on_palette(colour: str | QColor, palette) -> str:
    """``colour`` made readable as text on ``palette``'s window: on a dark theme lightened
    until it reaches ``TEXT_CONTRAST`` (the review window's #6A1B9A on a dark window was
    1.3:1, the greys about 2:1), on a light one kept as it is."""
    window = palette.window().color()
    if window.lightness() >= 128:
        return QColor(colour).name()
    return _lightened(QColor(colour).name(), window.name())


@lru_cache(maxsize=256)
def _lightened(colour: str, window: str) -> str:
    """``colour`` lightened until it reaches ``TEXT_CONTRAST`` on the dark ``window`` (once
    per pair: the thumbnails ask on every paint)."""
    c, bg = QColor(colour), QColor(window)
    if c.value() < 32:   # lighter() scales the value: black would stay black
        c = QColor.fromHsvF(max(0.0, c.hueF()), c.saturationF(), 0.35)
    for _ in range(40):
        if contrast(c, bg) >= TEXT_CONTRAST:
            break
        c = c.lighter(112)
        if c.value() == 255:   # as bright as it goes: towards white
            c = QColor.fromHsvF(max(0.0, c.hueF()), max(0.0, c.saturationF() - 0.08), 1.0)
    return c.name()


def title_points(widget) -> float:
    """A chart title's point size: 10, or the system font's where that is larger (a title stayed
    at 10 pt beside 16-pt text)."""
    return max(10.0, widget.font().pointSizeF())


def title_size(widget) -> str:
    return f"{title_points(widget):g}pt"


def nice_step(span: float, labels: int) -> float:
    """The smallest of 1, 2, 2.5 and 5 times a power of ten whose multiples within ``span``
    number at most ``labels`` (at least 2)."""
    labels = max(2, int(labels))
    if not np.isfinite(span) or span <= 0:
        return 1.0
    power = 10.0 ** np.floor(np.log10(span / labels))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0):
        if np.floor(span / (m * power) + 1e-9) + 1 <= labels:
            return float(m * power)
    return float(100 * power)


class FittedAxis(pg.AxisItem):
    """A vertical axis with as many labelled ticks as its height holds in its font, one level
    only: pyqtgraph's own spacing ignores the font, and at a 16-pt system font a 130-px chart's
    labels were drawn over one another. A label at the axis's end may reach past it (into the
    title's room) rather than be left out."""

    def __init__(self, orientation: str, **kwargs):
        super().__init__(orientation, **kwargs)
        self.setStyle(hideOverlappingLabels=False)

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802,N803 (pyqtgraph's names)
        line = QFontMetricsF(self.style.get("tickFont") or self.font()).height()
        labels = max(2, int(size // max(1.0, 1.15 * line)))
        return [(nice_step(abs(maxVal - minVal), labels), 0.0)]


class _Chart(pg.PlotWidget):
    """A static chart: white, no mouse interaction, never takes keyboard focus."""

    def __init__(self, parent=None, **kwargs):
        super().__init__(parent, background="w", **kwargs)
        self.setMenuEnabled(False)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setAccessibleName("chart")
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
        self.setTitle("Class probabilities", color="k", size=title_size(self))
        self.setAccessibleName("Class probabilities")
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
        # what the bars say, for a screen reader: the classes, highest first
        order = np.argsort(-probs) if top >= 0 else []
        self.setAccessibleDescription(", ".join(
            f"{self._class_names[i]} {probs[i]:.1%}" for i in order if i < n) or "none")
        brushes = [class_colour(i, self._class_names) if i == top
                   else QColor(class_colour(i, self._class_names).lighter(170))
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
        super().__init__(parent, axisItems={"left": FittedAxis("left")})
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
        font.setPointSizeF(title_points(self))
        # the plot is as wide as its title and the axes' room beside it (about 40 px)
        room = max(40, self.width() - TITLE_MARGIN)
        shown = QFontMetrics(font).elidedText(self._title or "", Qt.TextElideMode.ElideRight, room)
        if shown != self._shown_title:   # a new title lays the plot out again: only on change
            self._shown_title = shown
            self.setTitle(shown, color="k", size=title_size(self))

    def resizeEvent(self, event) -> None:  # noqa: N802
        # first: the plot is laid out for the new title (not once closed: its plot is gone,
        # and a font change still resizes it)
        if getattr(self, "_title", None) and getattr(self, "plotItem", None) is not None:
            self._fit_title()
        super().resizeEvent(event)   # pyqtgraph calls it with None while it is built

    def set_weights(self, weights: np.ndarray | None, title: str = "", unit_range: bool = True) -> None:
        w = np.zeros(0, np.float32) if weights is None else np.asarray(weights, np.float32).ravel()
        if title != self._title:
            self._title = title
            self.setToolTip(title)
            self.setAccessibleName(title)
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

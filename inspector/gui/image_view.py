"""The selected image shown large: zoom (wheel, Ctrl++ / Ctrl+-), pan (drag), fit; an attention map drawn
over it with adjustable opacity, a colour bar that explains the map's colours, and for an image
classified tile by tile the grid of its labelled tiles (click one to select it)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QLinearGradient, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView,
                               QWidget)

from ..engine import upsample
from ..tiles import TiledVerdict, defect_free_classes
from .charts import class_colour
from .charts import UNKNOWN_COLOUR as UNKNOWN_QCOLOUR
from .workers import qimage_from_array

COLORMAP = "inferno"
MAX_OVERLAY_SIDE = 1024  # the map is upsampled to the image, at most this many pixels a side


def colormap_lut(name: str = COLORMAP) -> np.ndarray:
    """(256, 3) uint8 colours of a perceptually uniform colour map."""
    return np.asarray(pg.colormap.get(name).getLookupTable(0.0, 1.0, 256, alpha=False), np.uint8)


_LUT: np.ndarray | None = None


def colorize(m: np.ndarray) -> np.ndarray:
    """A (h, w) map with values 0..1 as (h, w, 3) uint8 colours."""
    global _LUT
    if _LUT is None:
        _LUT = colormap_lut()
    idx = np.clip(np.nan_to_num(np.asarray(m, np.float32)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return _LUT[idx]


def overlay_image(m: np.ndarray, height: int, width: int) -> tuple[QImage, float]:
    """A map (h, w) upsampled to the image (capped at MAX_OVERLAY_SIDE a side) and coloured;
    returns the QImage and the scale that stretches it over the image."""
    scale = min(1.0, MAX_OVERLAY_SIDE / max(height, width))
    oh, ow = max(1, round(height * scale)), max(1, round(width * scale))
    up = np.clip(upsample(m, oh, ow), 0.0, 1.0)
    return qimage_from_array(colorize(up)), width / ow


# tile colours: defect-free tiles green, unknown tiles their own colour, defects in their
# class's colour as in the thumbnails, the chart and the camera (charts.class_colour)
UNKNOWN_COLOUR = UNKNOWN_QCOLOUR.name()   # the one colour of "unknown" in every view
CLICK_SLOP = 4   # pixels the mouse may move between press and release for a click


def _cell_edges(starts: list[int], size: int, length: int) -> list[float]:
    """Edges of the cells that share a side between tiles starting at ``starts``: each tile owns
    the part nearer its centre than any other's (half of each overlap)."""
    centres = [s + size / 2 for s in starts]
    return [0.0] + [(a + b) / 2 for a, b in zip(centres, centres[1:])] + [float(length)]


class TileGridItem(QGraphicsItem):
    """The labelled tiles of one image: each tile's own cell (overlaps split half and half)
    framed in its class's colour with its label and confidence; the deciding tile drawn bold,
    the selected tile's whole rectangle outlined."""

    def __init__(self, verdict: TiledVerdict):
        super().__init__()
        self.verdict = verdict
        self.selected: int | None = None
        v = verdict
        xs = sorted({t.x for t in v.tiles})
        ys = sorted({t.y for t in v.tiles})
        ex = _cell_edges(xs, v.tiles[0].w, v.shape[1])
        ey = _cell_edges(ys, v.tiles[0].h, v.shape[0])
        self.cells = [QRectF(ex[xs.index(t.x)], ey[ys.index(t.y)],
                             ex[xs.index(t.x) + 1] - ex[xs.index(t.x)],
                             ey[ys.index(t.y) + 1] - ey[ys.index(t.y)]) for t in v.tiles]
        self._free = set(defect_free_classes(v.class_names))
        self._labels = [v.label(i) for i in range(len(v.tiles))]
        self.setZValue(2)

    def _defect_free(self, i: int) -> bool:
        v = self.verdict
        return bool(v.known[i]) and int(np.argmax(v.probs[i])) in self._free

    def colour(self, i: int) -> QColor:
        v = self.verdict
        if not v.known[i]:
            return QColor(UNKNOWN_COLOUR)
        return class_colour(int(np.argmax(v.probs[i])), v.class_names)

    def label_text(self, i: int) -> str:
        """A known tile's class and confidence; a flagged tile's "unknown" alone (as its
        thumbnail: a percentage beside it read as how sure the model is that the tile is
        unknown, where it is the closest class's probability, which the verdict box names)."""
        if not self.verdict.known[i]:
            return self._labels[i]
        return f"{self._labels[i]} {self.verdict.confidence(i):.0%}"

    def tile_at(self, pos: QPointF) -> int | None:
        for i, r in enumerate(self.cells):
            if r.contains(pos):
                return i
        return None

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt)
        h, w = self.verdict.shape
        return QRectF(-2, -2, w + 4, h + 4)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        v = self.verdict
        cell_h = min(r.height() for r in self.cells)
        font = QFont()
        font.setPixelSize(max(6, int(cell_h * 0.16)))
        painter.setFont(font)
        fm = painter.fontMetrics()
        for i, r in enumerate(self.cells):
            colour = self.colour(i)
            free = self._defect_free(i)
            if not free:
                fill = QColor(colour)
                fill.setAlpha(60)
                painter.fillRect(r, fill)
            pen = QPen(colour, 3 if i == v.winner else 1)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawRect(r.adjusted(1, 1, -1, -1))
            text = fm.elidedText(self.label_text(i), Qt.TextElideMode.ElideMiddle,
                                 int(r.width() - 6))
            box = QRectF(r.x() + 3, r.y() + 2, fm.horizontalAdvance(text) + 4, fm.height())
            painter.fillRect(box, QColor(0, 0, 0, 150))
            painter.setPen(QColor("#FFFFFF") if free else colour.lighter(130))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        if self.selected is not None:
            t = v.tiles[self.selected]
            pen = QPen(QColor("#FFFFFF"), 2, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawRect(QRectF(t.x, t.y, t.w, t.h))


class ImageView(QGraphicsView):
    """A zoomable, pannable view of one image with an optional overlay on top and, for an image
    classified tile by tile, its grid of labelled tiles (``tile_clicked`` on a click)."""

    zoom_changed = Signal(float)
    tile_clicked = Signal(int)   # the index of the tile clicked (in the shown TiledVerdict)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QColor("#202124"))
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setMinimumSize(QSize(240, 240))
        self.image_item = QGraphicsPixmapItem()
        self.image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.overlay_item = QGraphicsPixmapItem()
        self.overlay_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.overlay_item.setZValue(1)
        self.overlay_item.setOpacity(0.5)
        self.scene().addItem(self.image_item)
        self.scene().addItem(self.overlay_item)
        self._fit = True
        self._message = ""
        self.tile_grid: TileGridItem | None = None
        self._press: QPointF | None = None

    # -- tiles -------------------------------------------------------------------------------
    def set_tiles(self, verdict: TiledVerdict | None) -> None:
        """Shows the labelled tiles of the image (None: none)."""
        if self.tile_grid is not None:
            self.scene().removeItem(self.tile_grid)
            self.tile_grid = None
        if verdict is not None and verdict.tiles:
            self.tile_grid = TileGridItem(verdict)
            self.scene().addItem(self.tile_grid)

    def select_tile(self, index: int | None) -> None:
        if self.tile_grid is not None:
            self.tile_grid.selected = index
            self.tile_grid.update()

    def selected_tile(self) -> int | None:
        return None if self.tile_grid is None else self.tile_grid.selected

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self._press = event.position()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        super().mouseReleaseEvent(event)
        press, self._press = self._press, None
        if (self.tile_grid is None or press is None
                or (event.position() - press).manhattanLength() > CLICK_SLOP):
            return  # a drag pans
        i = self.tile_grid.tile_at(self.mapToScene(event.position().toPoint()))
        if i is not None:
            self.select_tile(i)
            self.tile_clicked.emit(i)

    # -- content -----------------------------------------------------------------------------
    def set_image(self, image: QImage | None) -> None:
        self._message = ""
        self.set_tiles(None)
        self.overlay_item.setPixmap(QPixmap())
        if image is None or image.isNull():
            self.image_item.setPixmap(QPixmap())
            self.scene().setSceneRect(QRectF())
        else:
            self.image_item.setPixmap(QPixmap.fromImage(image))
            self.scene().setSceneRect(QRectF(0, 0, image.width(), image.height()))
        if self._fit:
            self.fit()
        self.viewport().update()

    def set_message(self, text: str) -> None:
        """A line of text shown instead of an image (loading, unreadable file...)."""
        self._message = text
        self.set_tiles(None)
        self.image_item.setPixmap(QPixmap())
        self.overlay_item.setPixmap(QPixmap())
        self.viewport().update()

    def set_overlay(self, image: QImage | None, scale: float = 1.0,
                    at: tuple[float, float] = (0.0, 0.0)) -> None:
        """An overlay stretched by ``scale`` with its top-left corner at image pixel ``at`` (a
        tile's overlay over its part of the image)."""
        if image is None:
            self.overlay_item.setPixmap(QPixmap())
            return
        self.overlay_item.setPixmap(QPixmap.fromImage(image))
        self.overlay_item.setScale(scale)
        self.overlay_item.setPos(*at)

    def set_overlay_opacity(self, opacity: float) -> None:
        self.overlay_item.setOpacity(max(0.0, min(1.0, float(opacity))))

    def has_image(self) -> bool:
        return not self.image_item.pixmap().isNull()

    # -- zoom and pan ------------------------------------------------------------------------
    def fit(self) -> None:
        self._fit = True
        if self.has_image():
            self.fitInView(self.image_item, Qt.AspectRatioMode.KeepAspectRatio)
            self.zoom_changed.emit(self.zoom())

    def actual_size(self) -> None:
        self._fit = False
        self.resetTransform()
        self.zoom_changed.emit(1.0)

    def zoom(self) -> float:
        return float(self.transform().m11())

    def zoom_by(self, factor: float) -> None:
        new = self.zoom() * factor
        if not 0.02 <= new <= 64:
            return
        self._fit = False
        self.scale(factor, factor)
        self.zoom_changed.emit(self.zoom())

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt)
        delta = event.angleDelta().y()
        if delta:
            self.zoom_by(1.25 ** (delta / 120.0))
        event.accept()

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        self.fit()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    def drawForeground(self, painter: QPainter, rect) -> None:  # noqa: N802
        if self._message and not self.has_image():
            painter.save()
            painter.resetTransform()
            painter.setPen(QColor("#ddd"))
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self._message)
            painter.restore()


class ColorBar(QWidget):
    """A vertical colour bar from "low" (bottom) to "high" (top) in the overlay's colours."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAccessibleName("Attention colour scale, low to high")
        self.setMinimumHeight(120)
        lut = colormap_lut()
        self._stops = [(i / 255.0, QColor(*map(int, lut[i]))) for i in range(0, 256, 15)] + \
                      [(1.0, QColor(*map(int, lut[255])))]
        self.set_labels("high", "low")

    def set_labels(self, top: str, bottom: str) -> None:
        self.top_label, self.bottom_label = top, bottom
        # wide enough for its words and ticks in the system font (a fixed 54 px cut "0.5" at
        # 16 pt)
        fm = self.fontMetrics()
        self.setFixedWidth(max(54, 30 + fm.horizontalAdvance("0.5"),
                               4 + max(fm.horizontalAdvance(top), fm.horizontalAdvance(bottom))))
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        fm = p.fontMetrics()
        th = fm.height()
        bar = QRectF(4, th + 4, 16, max(10, self.height() - 2 * th - 8))
        g = QLinearGradient(bar.bottomLeft(), bar.topLeft())
        for pos, colour in self._stops:
            g.setColorAt(pos, colour)
        p.fillRect(bar, g)
        p.setPen(self.palette().windowText().color())
        p.drawRect(bar)
        p.drawText(QRectF(0, 0, self.width(), th + 2), Qt.AlignmentFlag.AlignLeft, self.top_label)
        p.drawText(QRectF(0, self.height() - th - 2, self.width(), th + 2), Qt.AlignmentFlag.AlignLeft,
                   self.bottom_label)
        for frac, text in ((1.0, "1"), (0.5, "0.5"), (0.0, "0")):
            y = bar.bottom() - frac * bar.height()
            p.drawLine(int(bar.right()), int(y), int(bar.right()) + 4, int(y))
            p.drawText(int(bar.right()) + 6, int(y + fm.ascent() / 2 - 1), text)
        p.end()

"""The frame view: the newest frame, the region of interest drawn with the mouse, tiles and their
labels, and the attention overlay."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from ...camera import LiveResult, Roi
from ...engine import UNKNOWN
from ..charts import UNKNOWN_COLOUR, class_colour, ink_for
from ..workers import qimage_from_array
from .settings import MIN_ROI_SIDE, OVERLAY_OPACITY


# ---------------------------------------------------------------------------------------------
# The frame view

class FrameView(QWidget):
    """The live frame fitted into the widget, the ROI (drag with the left button to draw it),
    the tiles with their labels, and the attention overlay over the region it belongs to."""

    roi_drawn = Signal(object)   # Roi in frame pixels

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(QSize(360, 270))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(False)
        self.setCursor(Qt.CursorShape.CrossCursor)
        # it takes the keyboard (a click, Tab, a source opened) so that Space pauses, S takes a
        # snapshot and O shows the overlay while no button or box has it
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._image: QImage | None = None
        self._size = (0, 0)                       # frame width, height
        self.roi: Roi | None = None
        self.square = True
        self.result: LiveResult | None = None
        self.overlay: QImage | None = None
        self.show_overlay = True
        self.message = "No source open"
        self.banner = ""   # over the picture while it is not live ("reconnecting…")
        self._drag: tuple[QPointF, QPointF] | None = None

    # -- data ----------------------------------------------------------------------------
    def set_frame(self, image: np.ndarray | None) -> None:
        if image is None:
            self._image, self._size = None, (0, 0)
        else:
            self._image = qimage_from_array(image)
            self._size = (int(image.shape[1]), int(image.shape[0]))
        self.update()

    def frame_size(self) -> tuple[int, int]:
        return self._size

    def set_result(self, result: LiveResult | None, overlay: QImage | None) -> None:
        self.result, self.overlay = result, overlay
        self.update()

    def set_message(self, text: str) -> None:
        self.message = text
        self.update()

    def set_banner(self, text: str) -> None:
        """A line over the top of the picture ("" for none): the frame shown is not a live,
        analysed one."""
        if text != self.banner:
            self.banner = text
            self.update()

    # -- geometry ------------------------------------------------------------------------
    def image_rect(self) -> QRectF:
        """Where the frame is drawn in the widget (fitted, aspect kept, centred)."""
        w, h = self._size
        if not w or not h:
            return QRectF()
        s = min(self.width() / w, self.height() / h)
        return QRectF((self.width() - w * s) / 2, (self.height() - h * s) / 2, w * s, h * s)

    def _to_frame(self, p: QPointF) -> QPointF:
        t = self.image_rect()
        s = t.width() / self._size[0]
        x = min(max((p.x() - t.x()) / s, 0.0), self._size[0])
        y = min(max((p.y() - t.y()) / s, 0.0), self._size[1])
        return QPointF(x, y)

    def _to_widget(self, roi: Roi) -> QRectF:
        t = self.image_rect()
        s = t.width() / self._size[0] if self._size[0] else 1.0
        return QRectF(t.x() + roi.x * s, t.y() + roi.y * s, roi.w * s, roi.h * s)

    # -- mouse ---------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt)
        if event.button() == Qt.MouseButton.LeftButton and self._image is not None:
            p = self._to_frame(event.position())
            self._drag = (p, p)
            self.update()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._drag is not None:
            self._drag = (self._drag[0], self._to_frame(event.position()))
            self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._drag is None or event.button() != Qt.MouseButton.LeftButton:
            return
        a, _ = self._drag
        b = self._to_frame(event.position())
        self._drag = None
        roi = Roi.from_points(a.x(), a.y(), b.x(), b.y(), square=self.square)
        roi = roi.clamp(*self._size)
        if roi is not None and roi.w >= MIN_ROI_SIDE and roi.h >= MIN_ROI_SIDE:
            self.roi_drawn.emit(roi)
        self.update()

    # -- painting ------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#202020"))
        if self._image is None:
            p.setPen(QColor("#d0d0d0"))
            p.drawText(self.rect().adjusted(12, 12, -12, -12),
                       Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
            p.end()
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(self.image_rect(), self._image)
        res = self.result
        if res is not None and self.overlay is not None and self.show_overlay:
            p.setOpacity(OVERLAY_OPACITY)
            p.drawImage(self._to_widget(res.roi), self.overlay)
            p.setOpacity(1.0)
        if res is not None and len(res.tiles) > 1:
            self._paint_tiles(p, res)
        if self.roi is not None:
            pen = QPen(QColor("#ffd400"), 2, Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(self._to_widget(self.roi))
        if res is not None and len(res.tiles) == 1:
            self._paint_tag(p, self._to_widget(res.roi), res.label, res.label_name,
                            res.confidence, above=True, unknown=not res.known)
        if self._drag is not None:
            a, b = self._drag
            r = Roi.from_points(a.x(), a.y(), b.x(), b.y(), square=self.square)
            p.setPen(QPen(QColor("#00e5ff"), 2, Qt.PenStyle.DashLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(self._to_widget(r))
        if self.banner:
            self._paint_banner(p)
        p.end()

    def _paint_banner(self, p: QPainter) -> None:
        font = QFont(p.font())
        font.setPointSizeF(max(10.0, self.font().pointSizeF()))
        font.setBold(True)
        p.setFont(font)
        fm = p.fontMetrics()
        text = fm.elidedText(self.banner, Qt.TextElideMode.ElideRight, max(40, self.width() - 16))
        box = QRectF(0, 0, self.width(), fm.height() + 10)
        p.fillRect(box, QColor(0, 0, 0, 190))
        p.setPen(QColor("#ffd400"))
        p.drawText(box.adjusted(8, 0, -8, 0),
                   Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)

    def _paint_tiles(self, p: QPainter, res: LiveResult) -> None:
        labels = res.tile_labels
        unknown = set(res.unknown_tiles)
        for k, (t, label, probs) in enumerate(zip(res.tiles, labels, res.tile_probs)):
            r = self._to_widget(t)
            colour = UNKNOWN_COLOUR if k in unknown else class_colour(label, res.class_names)
            p.setPen(QPen(colour, 4.0 if k == res.winner else 1.5))  # the deciding tile bold
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(r.adjusted(1, 1, -1, -1))
            name = res.class_names[label] if label < len(res.class_names) else str(label)
            self._paint_tag(p, r, label, name, float(probs[label]), above=False,
                            unknown=k in unknown)

    def _paint_tag(self, p: QPainter, r: QRectF, label: int, name: str, conf: float,
                   above: bool, unknown: bool = False) -> None:
        """A class tag, or for a region flagged unknown "unknown" (with the closest class's
        confidence left out: it is none of them) in the unknown colour."""
        font = QFont(p.font())
        font.setPointSizeF(max(8.5, 0.9 * self.font().pointSizeF()))   # a large system font too
        p.setFont(font)
        fm = p.fontMetrics()
        text = UNKNOWN if unknown else f"{name} {conf:.0%}"
        if fm.horizontalAdvance(text) + 6 > r.width() and not above:
            text = "unk" if unknown else f"{name[:3]} {conf:.0%}"
        tw, th = fm.horizontalAdvance(text) + 6, fm.height() + 2
        y = r.top() - th if above and r.top() - th >= 0 else r.top() + 1
        box = QRectF(r.left() + (0 if above else 1), y, tw, th)
        names = self.result.class_names if self.result is not None else None
        colour = QColor(UNKNOWN_COLOUR if unknown else class_colour(label, names))
        ink = ink_for(colour)
        colour.setAlpha(220)
        p.fillRect(box, colour)
        p.setPen(ink)
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

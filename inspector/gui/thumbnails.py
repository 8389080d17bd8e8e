"""The thumbnail list: a QAbstractListModel over the review session (rows are the filtered and
sorted session indices), a bounded LRU cache of thumbnails loaded lazily when a row is painted,
and a delegate that paints thumbnail, predicted class, confidence and verdict."""
from __future__ import annotations

from collections import OrderedDict
from typing import Hashable

from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from ..engine import BLANK_TEXT, UNKNOWN, UNKNOWN_TEXT, is_blank_score
from ..session import UNSURE, ReviewSession
from .charts import UNKNOWN_COLOUR, class_colour, on_palette
from .workers import ThumbnailLoader

THUMB = 112
CAPTION_CHARS = 14   # a grid cell is at least this many average characters wide (large fonts)
SESSION_INDEX_ROLE = Qt.ItemDataRole.UserRole + 1

REVIEW_COLOUR = QColor("#E69F00")
ERROR_COLOUR = QColor("#C62828")
ACCEPT_COLOUR = QColor("#2E7D32")
OVERRIDE_COLOUR = QColor("#6A1B9A")


class ThumbnailCache:
    """At most ``capacity`` thumbnails, least recently used dropped first."""

    def __init__(self, capacity: int = 1000):
        self.capacity = capacity
        self._d: OrderedDict[Hashable, QImage] = OrderedDict()

    @classmethod
    def for_side(cls, side: int) -> ThumbnailCache:
        """A cache of thumbnails ``side`` pixels across that takes the memory of 1,000 at
        ``THUMB`` (at the screen's pixel density, 200 %: 224 px, four times the pixels each)."""
        return cls(max(200, round(1000 * (THUMB / max(THUMB, side)) ** 2)))

    def get(self, key: Hashable) -> QImage | None:
        img = self._d.get(key)
        if img is not None:
            self._d.move_to_end(key)
        return img

    def put(self, key: Hashable, image: QImage) -> None:
        self._d[key] = image
        self._d.move_to_end(key)
        while len(self._d) > self.capacity:
            self._d.popitem(last=False)

    def clear(self) -> None:
        self._d.clear()

    def discard(self, key: Hashable) -> None:
        self._d.pop(key, None)

    def __len__(self) -> int:
        return len(self._d)


class ThumbnailModel(QAbstractListModel):
    def __init__(self, loader: ThumbnailLoader, cache: ThumbnailCache | None = None, parent=None):
        super().__init__(parent)
        self.visible: tuple[int, int] | None = None  # rows on screen (set by the view's owner)
        self.loader = loader
        self.cache = cache or ThumbnailCache.for_side(loader.size)
        self.session: ReviewSession | None = None
        self.generation = 0
        self.rows: list[int] = []
        self._row_of: dict[int, int] = {}
        self._thumb_errors: dict[int, str] = {}
        loader.ready.connect(self._on_thumbnails)

    # -- content -----------------------------------------------------------------------------
    def set_session(self, session: ReviewSession | None, generation: int) -> None:
        self.beginResetModel()
        self.session = session
        self.generation = generation
        self.cache.clear()
        self._thumb_errors.clear()
        self.loader.clear()
        self.rows = []
        self._row_of = {}
        self.endResetModel()

    def set_rows(self, rows: list[int]) -> None:
        if rows == self.rows:
            return
        self.beginResetModel()
        self.rows = list(rows)
        self._row_of = {idx: r for r, idx in enumerate(self.rows)}
        self.endResetModel()

    def session_index(self, row: int) -> int | None:
        return self.rows[row] if 0 <= row < len(self.rows) else None

    def row_of(self, session_index: int) -> int | None:
        return self._row_of.get(session_index)

    def item_changed(self, session_index: int) -> None:
        r = self._row_of.get(session_index)
        if r is not None:
            ix = self.index(r)
            self.dataChanged.emit(ix, ix)

    def items_changed(self, session_indices, visible: tuple[int, int] | None = None) -> None:
        """Repaints the rows of these session indices; with ``visible`` (first, last row on
        screen) only those on screen, one by one: a range would repaint the whole view, and rows
        off screen are painted from fresh data when they scroll in anyway."""
        rows = [r for r in (self._row_of.get(i) for i in session_indices) if r is not None]
        if not rows:
            return
        if visible is None:
            self.dataChanged.emit(self.index(min(rows)), self.index(max(rows)))
            return
        first, last = visible
        for r in rows:
            if first <= r <= last:
                ix = self.index(r)
                self.dataChanged.emit(ix, ix)

    def forget(self, session_indices) -> None:
        """These images' files changed: their thumbnails are made again when next shown."""
        for i in session_indices:
            self.cache.discard((self.generation, i))
            self._thumb_errors.pop(i, None)

    def thumbnail(self, session_index: int) -> QImage | None:
        """The cached thumbnail, or None after asking the loader for it."""
        key = (self.generation, session_index)
        img = self.cache.get(key)
        if img is None and session_index not in self._thumb_errors and self.session is not None:
            self.loader.request(key, self.session.items[session_index].path)
        return img

    def thumbnail_error(self, session_index: int) -> str | None:
        return self._thumb_errors.get(session_index)

    def _on_thumbnails(self, batch) -> None:
        changed = []
        for (gen, idx), image, error in batch:
            if gen != self.generation:
                continue
            if image is not None:  # kept as a QImage: 1 byte a pixel when grey (a pixmap: 4)
                self.cache.put((gen, idx), image)
            else:
                self._thumb_errors[idx] = error or "unreadable"
            changed.append(idx)
        self.items_changed(changed, self.visible)

    # -- Qt model ----------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self.session is None:
            return None
        idx = self.rows[index.row()]
        item = self.session.items[idx]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.path.name
        if role == SESSION_INDEX_ROLE:
            return idx
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(idx)
        if role == Qt.ItemDataRole.AccessibleTextRole:   # what a screen reader says of a cell:
            # its name, prediction and verdict (the name alone hid the rest, painted only)
            return "; ".join([item.path.name, *self.tooltip(idx).splitlines()[1:]])
        return None

    def tooltip(self, idx: int) -> str:
        s = self.session
        it = s.items[idx]
        lines = [str(it.path)]
        if it.error:
            lines.append(f"cannot classify: {it.error}")
        elif s.is_unknown(idx) and is_blank_score(it.unknown_score):
            lines.append(f"{UNKNOWN_TEXT} ({BLANK_TEXT})")
        elif s.is_unknown(idx):
            lines.append(f"{UNKNOWN_TEXT} (closest class {s.predicted_name(idx)} "
                         f"{it.confidence:.1%}, unknown score {it.unknown_score:.2f})")
        elif it.probs is not None:
            lines.append(f"predicted {s.predicted_name(idx)} ({it.confidence:.1%})"
                         + (" - needs review" if s.needs_review(idx) else ""))
        else:
            lines.append("not classified yet")
        if it.verdict:
            lines.append(f"verdict: {it.verdict.label} ({it.verdict.time})")
        return "\n".join(lines)


class ThumbnailDelegate(QStyledItemDelegate):
    """Paints a cell: thumbnail (framed violet when flagged unknown, orange when it needs review,
    red when unreadable), a verdict badge, the predicted class in its colour with the confidence
    (or "unknown" in violet), and the file name."""

    def __init__(self, model: ThumbnailModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.grid = True

    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        fh = option.fontMetrics.height()
        if self.grid:   # a large system font widens the cell: at 16 pt "77% roll…" was all
            return QSize(max(THUMB + 26, CAPTION_CHARS * option.fontMetrics.averageCharWidth()),
                         THUMB + 2 * fh + 14)
        return QSize(200, max(56, 2 * fh + 12))   # two lines of a large system font

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        s = self.model.session
        if s is None:
            return
        idx = self.model.session_index(index.row())
        if idx is None:
            return
        it = s.items[idx]
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        r = option.rect
        pal = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            p.fillRect(r.adjusted(1, 1, -1, -1), pal.highlight())
            text_colour = pal.highlightedText().color()
        else:
            text_colour = pal.text().color()
        if option.state & QStyle.StateFlag.State_HasFocus:   # where the verdict keys go
            p.setPen(QPen(text_colour, 2, Qt.PenStyle.DashLine))
            p.drawRect(r.adjusted(1, 1, -2, -2))
        fh = option.fontMetrics.height()
        side = THUMB if self.grid else 48
        if self.grid:
            trect = QRect(r.x() + (r.width() - side) // 2, r.y() + 5, side, side)
        else:
            trect = QRect(r.x() + 4, r.y() + (r.height() - side) // 2, side, side)

        img = self.model.thumbnail(idx)
        p.fillRect(trect, QColor("#3a3a3a"))
        if img is not None:
            sz = img.size().scaled(trect.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(trect.x() + (trect.width() - sz.width()) // 2,
                           trect.y() + (trect.height() - sz.height()) // 2, sz.width(), sz.height())
            p.drawImage(target, img)
        elif it.error or self.model.thumbnail_error(idx):
            p.setPen(QColor("#eee"))
            p.drawText(trect, Qt.AlignmentFlag.AlignCenter, "unreadable" if self.grid else "✕")

        unknown = s.is_unknown(idx)
        if it.error:
            frame = ERROR_COLOUR
        elif unknown:
            frame = UNKNOWN_COLOUR
        elif s.needs_review(idx):
            frame = REVIEW_COLOUR
        else:
            frame = None
        if frame is not None:
            p.setPen(QPen(frame, 3))
            p.drawRect(trect.adjusted(1, 1, -2, -2))

        badge = self._badge(s, idx)
        if badge is not None and self.grid:
            text, colour = badge
            bw = max(22, option.fontMetrics.horizontalAdvance(text) + 10)
            brect = QRect(trect.right() - bw - 2, trect.y() + 3, bw, fh + 4)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(colour)
            p.drawRoundedRect(brect, 6, 6)
            p.setPen(QColor("white"))
            p.drawText(brect, Qt.AlignmentFlag.AlignCenter, text)

        if it.error:
            line1, colour = "unreadable", ERROR_COLOUR
        elif unknown:  # in its own colour, no class dot: it is none of them
            line1, colour = (UNKNOWN if self.grid else UNKNOWN_TEXT), UNKNOWN_COLOUR
        elif it.probs is not None:
            li = it.label_index
            line1 = (f"{it.confidence:.0%} {s.predicted_name(idx)}" if self.grid
                     else f"{s.predicted_name(idx)}  {it.confidence:.0%}")
            colour = class_colour(li, s.class_names)
        else:
            line1, colour = "classifying…", text_colour
        if selected:   # violet or red on the highlight was 1.3-1.5:1; the words say it
            colour = text_colour
        else:          # and on a dark theme's base, lightened
            colour = QColor(on_palette(colour, pal))
        name = it.path.name
        if self.grid:
            l1 = QRect(r.x() + 4, trect.bottom() + 4, r.width() - 8, fh)
            l2 = QRect(r.x() + 4, l1.bottom() + 1, r.width() - 8, fh)
        else:
            x = trect.right() + 10
            l2 = QRect(x, r.y() + 6, r.right() - x - 4, fh)   # file name on top in the list
            l1 = QRect(x, l2.bottom() + 3, r.right() - x - 4, fh)
            if badge is not None:  # the verdict at the right end of the class line
                text, bcolour = badge
                text = {"✓": "✓ accepted", "?": "? unsure"}.get(text, f"{text} {it.verdict.label}")
                # at most half the text's room: a long class name (64 characters are allowed)
                # covered the prediction and the thumbnail, its start cut off (a locale audit)
                room = max(40, (r.right() - x) // 2)
                text = option.fontMetrics.elidedText(text, Qt.TextElideMode.ElideRight, room - 10)
                bw = option.fontMetrics.horizontalAdvance(text) + 10
                brect = QRect(r.right() - bw - 4, l1.y() - 1, bw, fh + 2)
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(bcolour)
                p.drawRoundedRect(brect, 5, 5)
                p.setPen(QColor("white"))
                p.drawText(brect, Qt.AlignmentFlag.AlignCenter, text)
                l1.setRight(brect.left() - 4)
        if it.probs is not None and not it.error and not unknown:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(colour)
            p.drawEllipse(QRect(l1.x(), l1.y() + fh // 2 - 4, 8, 8))
            l1 = l1.adjusted(12, 0, 0, 0)
            colour = text_colour
        font = QFont(option.font)
        font.setBold(True)
        p.setFont(font)
        p.setPen(colour)
        # elided by the bold font's widths: the plain font's cut "100% rolled-in_scale" short
        # with no "…" (a small-screen audit)
        p.drawText(l1, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   QFontMetrics(font).elidedText(line1, Qt.TextElideMode.ElideRight, l1.width()))
        p.setFont(option.font)
        p.setPen(text_colour)
        p.drawText(l2, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   option.fontMetrics.elidedText(name, Qt.TextElideMode.ElideMiddle, l2.width()))
        p.restore()

    @staticmethod
    def _badge(s: ReviewSession, idx: int) -> tuple[str, QColor] | None:
        v = s.items[idx].verdict
        if v is None:
            return None
        if v.label == UNSURE:
            return "?", QColor("#757575")
        if s.is_overridden(idx):
            n = s.class_names.index(v.label) + 1 if v.label in s.class_names else None
            return (f"→{n}" if n else "→"), OVERRIDE_COLOUR
        return "✓", ACCEPT_COLOUR

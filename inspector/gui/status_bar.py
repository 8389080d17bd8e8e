"""A status bar whose informative labels step aside for a message that does not fit beside them."""
from __future__ import annotations

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QStatusBar, QWidget

MESSAGE_PAD_PX = 24   # the message's margins and the gap to the first label
GAP_PX = 6            # the status bar's gap between two permanent widgets (Qt's layout spacing)


class StatusBar(QStatusBar):
    """Permanent widgets added with ``add_yielding`` (the model's and the device's labels) are
    hidden while the current message does not fit beside them, and shown again when it goes or
    the window widens. At a 16-pt system font those two labels and the unknown share took the
    whole bar of a 1366-px window, and "Exported 48 images to …" showed as "Exported"."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._yielding: list[QWidget] = []
        self._stepped_aside = False
        self.messageChanged.connect(self._fit)

    def add_yielding(self, widget: QWidget) -> None:
        self.addPermanentWidget(widget)
        self._yielding.append(widget)

    def stepped_aside(self) -> bool:
        """Whether the yielding widgets are hidden for the message."""
        return self._stepped_aside

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt)
        super().resizeEvent(event)
        self._fit()

    def event(self, event) -> bool:
        # a label's text changed, the progress bar shown: the widths are laid out again
        if event.type() == QEvent.Type.LayoutRequest:
            self._fit()
        return super().event(event)

    def _fit(self, *_args) -> None:
        message = self.currentMessage()
        step_aside = False
        if message:
            others = [w for w in self.findChildren(QWidget) if w.parent() is self
                      and not w.isHidden() and w not in self._yielding]
            width = (sum(w.sizeHint().width() for w in others + self._yielding)
                     + GAP_PX * (len(others) + len(self._yielding)))
            needed = self.fontMetrics().horizontalAdvance(message) + MESSAGE_PAD_PX
            step_aside = needed + width > self.width()
        if step_aside != self._stepped_aside:
            self._stepped_aside = step_aside
            for w in self._yielding:
                w.setVisible(not step_aside)

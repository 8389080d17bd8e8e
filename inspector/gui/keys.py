"""Keys that belong to the widget that has the keyboard, not to a window's one-key shortcuts."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QWidget


class TypingKeys(QObject):
    """Keys typed without Ctrl or Alt (``keys``: only these) go to a watched widget while it has
    the keyboard (a combo box's type-ahead, a slider, Space on a button), not to the window's
    one-key shortcuts: typing "not yet reviewed" in the review window's status filter recorded
    the new class "ot yet reviewed" (N begins a new class), 1-9, U, Backspace and Delete judged
    the image behind the box, and Space on the camera's Stop button paused instead. A text
    field keeps such keys itself (Qt's QLineEdit and spin boxes do; ClassNameEdit adds Enter)."""

    def __init__(self, parent: QObject | None = None, keys: tuple[Qt.Key, ...] | None = None):
        super().__init__(parent)
        self._keys = keys

    def watch(self, *widgets: QWidget) -> None:
        for w in widgets:
            w.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.ShortcutOverride and not (
                event.modifiers() & (Qt.KeyboardModifier.ControlModifier
                                     | Qt.KeyboardModifier.AltModifier
                                     | Qt.KeyboardModifier.MetaModifier)) and (
                self._keys is None or event.key() in self._keys):
            event.accept()   # the key reaches the widget as a key press, no shortcut fires
            return True
        return False

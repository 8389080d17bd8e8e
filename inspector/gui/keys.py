"""Keys that belong to the widget that has the keyboard, not to a window's one-key shortcuts."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QComboBox, QWidget

# keys that edit in a box without producing printable text (Enter is the window's: its accept
# action, seeing a box with the keyboard, ends the choice there and accepts nothing)
EDITING_KEYS = (Qt.Key.Key_Backspace, Qt.Key.Key_Delete, Qt.Key.Key_Space)


class TypingKeys(QObject):
    """Keys that type (text without Ctrl or Alt, Backspace, Delete, Space; ``keys``: only
    these) go to a watched widget while it has the keyboard (a combo box's type-ahead, a
    slider, Space on a button), not to the window's one-key shortcuts: typing "not yet
    reviewed" in the review window's status filter recorded the new class "ot yet reviewed" (N
    begins a new class), 1-9, U, Backspace and Delete judged the image behind the box, and
    Space on the camera's Stop button paused instead. Function keys (F1, F5) and Ctrl
    shortcuts still reach the window. A text field keeps such keys itself (Qt's QLineEdit and
    spin boxes do; ClassNameEdit adds Enter)."""

    def __init__(self, parent: QObject | None = None, keys: tuple[Qt.Key, ...] | None = None):
        super().__init__(parent)
        self._keys = keys

    def watch(self, *widgets: QWidget) -> None:
        for w in widgets:
            w.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() != QEvent.Type.ShortcutOverride or event.modifiers() & (
                Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                | Qt.KeyboardModifier.MetaModifier):
            return False
        key = event.key()
        typing = (key in self._keys if self._keys is not None
                  else key in EDITING_KEYS or (event.text() and event.text().isprintable()))
        if typing:
            event.accept()   # the key reaches the widget as a key press, no shortcut fires
            return True
        return False


class ChoiceBox(QComboBox):
    """A combo box that says when its open list closes (a choice made with the mouse or the
    keys, or Esc), so that the window can hand the keyboard back to the images then, and not
    at each item its type-ahead passes while the list is closed (``activated`` fires on those
    too: the first letter of "unreadable" sent the rest to the verdict keys)."""

    list_closed = Signal()

    def hidePopup(self) -> None:  # noqa: N802 (Qt)
        super().hidePopup()
        self.list_closed.emit()

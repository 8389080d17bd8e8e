"""Window sizes that fit the screen: many plant PCs have 1366x768 or 1280x720 screens, and
laptops run at 125% or 150% scaling (1366x768 at 150% leaves about 910x480 logical pixels), so a
window's first size is its wish clipped to the screen's free area, never larger."""
from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

SCREEN_SHARE = 0.96   # of the free area (without the taskbar): room for the title bar and frame
TITLE_BAR = 32        # logical pixels the window's frame and title bar take above its contents


def available_size(widget: QWidget | None = None) -> QSize | None:
    """The free area of the widget's screen (or the primary one), in logical pixels; None
    without a screen."""
    screen = (widget.screen() if widget is not None else None) or QGuiApplication.primaryScreen()
    return None if screen is None else screen.availableGeometry().size()


def fitted(width: int, height: int, widget: QWidget | None = None) -> QSize:
    """``width`` x ``height``, made smaller where the screen's free area is smaller (the title
    bar and frame counted); never below the widget's own minimum size."""
    free = available_size(widget)
    if free is None:
        return QSize(width, height)
    w = min(width, int(free.width() * SCREEN_SHARE))
    h = min(height, int(free.height() * SCREEN_SHARE) - TITLE_BAR)
    if widget is not None:
        least = widget.minimumSizeHint().expandedTo(widget.minimumSize())
        w, h = max(w, least.width()), max(h, least.height())
    return QSize(w, h)


def resize_to_fit(widget: QWidget, width: int, height: int) -> None:
    """Resizes ``widget`` to ``width`` x ``height`` or to what its screen has room for."""
    widget.resize(fitted(width, height, widget))

"""The inspector's main window (a package): thumbnails of the images under review (classified in
the background, what is on screen first), the selected image large with its attention maps, every
class's probability, and keyboard-first verdicts that go straight to the folder's journal.

window (MainWindow: state, the model, the selected image, verdicts, tools), background (the
classification in a worker thread and the one staleness check of what comes back), layout
(widgets, menus, view and settings) and files (opening, exports, drag and drop).
"""
from __future__ import annotations

from .background import BackgroundClassification
from .layout import APP_TITLE, IMAGE_FILTER, SORTS, STATUS_FILTERS
from .window import MainWindow

__all__ = ["APP_TITLE", "IMAGE_FILTER", "SORTS", "STATUS_FILTERS", "BackgroundClassification",
           "MainWindow"]

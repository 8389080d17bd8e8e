"""Starting the GUI: the QApplication with the app's name and icon, and the main window."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import pyqtgraph as pg
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from ..paths import resources_dir


def create_app() -> QApplication:
    """The QApplication (made once) with the app's name, icon and pyqtgraph options."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Steel Inspector")
    app.setOrganizationName("steel-inspector")
    app.setWindowIcon(QIcon(str(resources_dir() / "icons" / "inspector.png")))
    pg.setConfigOptions(antialias=True)
    return app


def run_window(paths: Sequence[str | Path] = (), model: str | Path | None = None) -> int:
    """Shows the main window with ``paths`` open and runs the event loop; the exit status."""
    app = create_app()

    from .main_window import MainWindow

    window = MainWindow(model_path=model, paths=[Path(p) for p in paths])
    window.show()
    return app.exec()

"""What the screenshot scripts share: waiting for a Qt signal, and a main window that has opened
a folder and classified every image in it (offscreen; the caller sets QT_QPA_PLATFORM)."""
from __future__ import annotations

from pathlib import Path


def wait(signal, ms: int = 60_000) -> None:
    """Runs Qt's event loop until ``signal`` fires or ``ms`` milliseconds have passed."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def classified_window(bundle: Path, folder: Path, size: tuple[int, int] = (1480, 900)):
    """The main window with ``bundle`` loaded, shown at ``size``, ``folder`` opened and every
    image in it classified."""
    from PySide6.QtWidgets import QApplication

    QApplication.instance() or QApplication([])
    from inspector.engine import load_classifier
    from inspector.gui.main_window import MainWindow

    w = MainWindow(classifier=load_classifier(bundle))
    w.resize(*size)
    w.show()
    finished = []
    w.classification_done.connect(lambda: finished.append(1))
    w.open_folder(folder)
    wait(w.session_opened)
    if not finished:
        wait(w.classification_done)
    return w

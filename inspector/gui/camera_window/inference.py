"""The camera window's inference worker: a QThread that analyses newest frames one at a time and
keeps only its newest result for the window."""
from __future__ import annotations

import threading

from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QImage

from ... import camera as cam
from ...camera import ClassifierLike, FrameGrabber, LiveConfig, LiveResult
from ..image_view import colorize
from ..workers import qimage_from_array


# ---------------------------------------------------------------------------------------------
# The inference worker

class InferenceThread(QThread):
    """Runs :func:`inspector.camera.inference_loop` for one grabber. Like the grabber with frames,
    it keeps only the newest result (with its attention overlay already coloured: a QImage that
    owns its pixels, or None) and emits ``result_ready(self)`` when one waits where none waited;
    the GUI thread collects it with :meth:`take`. So at most one notification is ever queued: a
    GUI thread that falls behind shows the newest result next, never a backlog of old ones (which
    also showed a result other than the one just announced)."""

    result_ready = Signal(object)   # this worker: take() has a result
    failed = Signal(str)

    def __init__(self, grabber: FrameGrabber, parent=None):
        super().__init__(parent)
        self.grabber = grabber
        self.model: ClassifierLike | None = None         # set from the GUI thread; read here
        self.config = LiveConfig()           # swapped as a whole from the GUI thread
        self.paused = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._newest: tuple[LiveResult, QImage | None] | None = None
        self._timings: list[tuple[float, float]] = []   # (t_done, latency) of every result

    def stop(self) -> None:
        self._stop.set()

    def take(self) -> tuple[tuple[LiveResult, QImage | None] | None, list[tuple[float, float]]]:
        """The newest result and its overlay (None if none is waiting), and the (completion time,
        latency) of every result since the last call (for the rate and latency statistics)."""
        with self._lock:
            newest, timings = self._newest, self._timings
            self._newest, self._timings = None, []
        return newest, timings

    def run(self) -> None:  # noqa: D401 - QThread entry point
        def emit(result: LiveResult) -> None:
            overlay = None
            if result.heat is not None:
                overlay = qimage_from_array(colorize(result.heat))
            with self._lock:
                announce = self._newest is None
                self._newest = (result, overlay)
                self._timings.append((result.t_done, result.latency))
            if announce:
                self.result_ready.emit(self)

        cam.inference_loop(self.grabber, lambda: self.model, lambda: self.config, emit,
                           self._stop.is_set, paused=lambda: self.paused,
                           on_error=self.failed.emit)

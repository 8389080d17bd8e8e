"""The wizard's background jobs: long work in a thread pool, reporting progress, epochs, results,
errors and cancellation as signals, stopped and drained when the wizard closes."""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from training.bundle import BundleError
from training.cancel import Cancelled

log = logging.getLogger(__name__)


# ---- background jobs -------------------------------------------------------------------------
class JobSignals(QObject):
    progress = Signal(float, str)
    epoch = Signal(object)      # training.train epoch record (dict)
    done = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)


class Job(QRunnable):
    """Runs ``fn(job)`` in a pool thread; ``fn`` reports through ``job.progress``, ``job.epoch``
    and polls ``job.should_stop``. Results, errors and cancellation come back as signals."""

    def __init__(self, fn: Callable[["Job"], Any]):
        super().__init__()
        self.setAutoDelete(False)
        self.fn = fn
        self.signals = JobSignals()
        self._stop = threading.Event()
        self.finished = threading.Event()

    def progress(self, fraction: float, message: str) -> None:
        self.signals.progress.emit(float(fraction), str(message))

    def epoch(self, record: dict) -> None:
        self.signals.epoch.emit(dict(record))

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        from training.data import DatasetError
        from training.images import ImageReadError
        try:
            out = self.fn(self)
        except Cancelled as exc:
            self.signals.cancelled.emit(str(exc))
        except (DatasetError, BundleError, ImageReadError, OSError, ValueError) as exc:
            if self.should_stop():
                self.signals.cancelled.emit(str(exc))
            else:
                self.signals.failed.emit(str(exc))
        except Exception as exc:  # reported on the page, never raised into Qt
            log.exception("unexpected error in a wizard job")
            self.signals.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            if self.should_stop():
                self.signals.cancelled.emit("cancelled")
            else:
                self.signals.done.emit(out)
        finally:
            self.finished.set()


class Jobs(QObject):
    """Keeps strong references to running jobs and stops and drains them on close."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self.running: list[Job] = []
        self._ended: list[Job] = []
        self.closed = False

    def start(self, fn: Callable[[Job], Any], **slots: Callable) -> Job:
        """Runs ``fn(job)``; ``slots`` (progress=, epoch=, done=, failed=, cancelled=) are
        connected before the job starts, so that not even a very quick job's signal is lost."""
        # A finished job is dropped only at the start after the one that saw it finished, so
        # that its queued signals have long been delivered.
        self.running = [j for j in self.running if j not in self._ended]
        self._ended = [j for j in self.running if j.finished.is_set()]
        job = Job(fn)
        for name, slot in slots.items():
            getattr(job.signals, name).connect(self._guard(slot))
        if self.closed:  # the wizard is closing: a job asked for now never runs
            return job
        self.running.append(job)
        self.pool.start(job)
        return job

    def _guard(self, slot: Callable) -> Callable:
        """Drops what arrives after ``drain`` (the pages may be gone by then)."""
        def call(*args):
            if not self.closed:
                slot(*args)
        return call

    def drain(self, timeout_ms: int = 60000) -> bool:
        """Stops every job, waits for them, and drops their late signals."""
        self.closed = True
        for job in list(self.running):
            job.stop()
        return self.pool.waitForDone(timeout_ms)

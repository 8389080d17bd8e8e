"""Qt adapters that run the Qt-free core off the GUI thread and report through signals.

Workers never touch widgets; they hand over plain data or QImages (never QPixmaps), and every
QImage made from a numpy buffer is copied so that it owns its pixels.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Hashable

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtGui import QImage

from .. import result_cache
from ..batch import Result, WorkQueue, classify_stream
from ..result_cache import CachedQueue
from ..offload import BATCH_SIZE, DECODE_THREADS, ChildClassifier, ChildFailed, ProcessSpec
from ..tiles import ClassifierLike, TileSettings, inspect_input

log = logging.getLogger(__name__)


def qimage_from_array(arr: np.ndarray) -> QImage:
    """An HxW (grey) or HxWx3 (RGB) uint8 array as a QImage that owns a copy of the pixels."""
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    if arr.ndim == 2:
        img = QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_Grayscale8)
    elif arr.shape[2] == 3:
        img = QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGB888)
    elif arr.shape[2] == 4:
        img = QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGBA8888)
    else:
        raise ValueError(f"cannot show an array of shape {arr.shape}")
    return img.copy()


def as_grey_if_grey(rgb: np.ndarray) -> np.ndarray:
    """An RGB array whose three channels are equal, as one channel (a third of the memory)."""
    if rgb.ndim == 3 and np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return np.ascontiguousarray(rgb[..., 0])
    return rgb


def make_thumbnail(path: str | Path, size: int) -> np.ndarray:
    """The image at ``path`` fitted into size x size (aspect kept), grey or RGB uint8.
    Raises training.images.ImageReadError."""
    from PIL import Image

    from training.images import decode_image

    arr = decode_image(path)
    h, w = arr.shape[:2]
    scale = min(size / w, size / h, 1.0)
    if scale < 1.0:
        img = Image.fromarray(arr)
        img.thumbnail((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR,
                      reducing_gap=2.0)
        arr = np.asarray(img)
    return as_grey_if_grey(arr)


def lower_thread_priority(steps: int = 5) -> None:
    """Lets the GUI thread win the CPU over the calling background thread (and the threads it
    starts later, e.g. TensorFlow's pools when the model is loaded here). On Linux this raises
    the calling thread's nice value (threads have their own); elsewhere QThread priorities do
    the job. Never fails: at worst nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + steps))
    except (OSError, AttributeError):  # pragma: no cover - restricted sandboxes
        pass


def preload_modules(*names: str) -> threading.Thread:
    """Imports ``names`` in a daemon thread, so that the GUI thread's first use of them (e.g.
    OpenCV for the first attention overlay: its extension took ~150 ms to load, a measured
    stall of the window) finds them loaded. Failures are left to the real import to report."""
    import importlib

    def run():
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # reported where the module is really used
                pass

    t = threading.Thread(target=run, name="preload", daemon=True)
    t.start()
    return t


# --------------------------------------------------------------------------------------------
# One-off tasks: loading a model, probing cameras, the retraining wizard's checks and training


class TaskSignals(QObject):
    progress = Signal(float, str)
    report = Signal(object)     # what fn reports besides progress (training's epoch records)
    done = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message says all (a file, a folder, a model that cannot be used): reported
    as they are. Anything else is a bug: reported with its type and logged with its traceback."""
    from training.bundle import BundleError
    from training.data import DatasetError
    from training.images import ImageReadError

    return (DatasetError, BundleError, ImageReadError, OSError, ValueError)


class Task:
    """Runs ``fn(progress, should_stop)`` (or ``fn(progress, should_stop, report)``, see
    TaskRunner.start) in a thread of its own; the outcome comes back as one signal:
    ``done(result)``, ``failed(message)``, or ``cancelled(message)`` when ``fn`` raised
    training's Cancelled or stopped (returned or failed) after ``cancel()``."""

    def __init__(self, fn: Callable[..., Any], background: bool = True, reports: bool = False):
        self.fn = fn
        self.background = background
        self.reports = reports
        self.signals = TaskSignals()
        self._stop = threading.Event()
        self.finished = threading.Event()   # set when fn has returned or raised

    def cancel(self) -> None:
        self._stop.set()

    stop = cancel

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def progress(self, fraction: float, message: str) -> None:
        self.signals.progress.emit(float(fraction), str(message))

    def report(self, record: Any) -> None:
        self.signals.report.emit(record)

    def run(self) -> None:
        from training.cancel import Cancelled

        if self.background:
            lower_thread_priority()
        try:
            args = (self.progress, self.should_stop) + ((self.report,) if self.reports else ())
            out = self.fn(*args)
        except Cancelled as exc:  # before the expected errors: a cancellation is an OSError too
            self.signals.cancelled.emit(str(exc))
        except Exception as exc:  # reported, never raised into Qt
            msg = str(exc) or type(exc).__name__
            if self.should_stop() and isinstance(exc, expected_errors()):
                self.signals.cancelled.emit(msg)
                return
            if not isinstance(exc, expected_errors()):
                msg = f"{type(exc).__name__}: {msg}"  # unexpected: keep the details for a report
                log.exception("unexpected error in a background task")
            self.signals.failed.emit(msg)
        else:
            if self.should_stop():
                self.signals.cancelled.emit("cancelled")
            else:
                self.signals.done.emit(out)
        finally:
            self.finished.set()


def wait_visibly(parent, title: str, text: str, finished: Callable[[], bool],
                 cancel: str | None = None, grace_s: float = 0.3,
                 limit_s: float | None = None) -> bool:
    """Waits for ``finished()`` without freezing the window: after ``grace_s`` a modal dialog
    says what is awaited (``text``), with a button ``cancel`` to stop waiting (None: none), until
    it is finished or ``limit_s`` have passed. True when it finished. (A cancelled wizard sat
    19 s with no word while its export ended; a closing window waits for an export so.)"""
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QProgressDialog

    end = time.monotonic() + grace_s
    while time.monotonic() < end:
        if finished():
            return True
        time.sleep(0.01)
    if finished():
        return True
    box = QProgressDialog(text, cancel or "", 0, 0, parent)
    if cancel is None:
        box.setCancelButton(None)
    box.setWindowTitle(title)
    box.setWindowModality(Qt.WindowModality.WindowModal if parent is not None
                          else Qt.WindowModality.ApplicationModal)
    box.setMinimumDuration(0)
    box.setAutoClose(False)
    loop = QEventLoop()
    deadline = None if limit_s is None else time.monotonic() + limit_s
    poll = QTimer(interval=50)

    def check() -> None:
        if finished() or (deadline is not None and time.monotonic() > deadline):
            loop.quit()
        elif cancel is None and not box.isVisible():   # closed by Esc or its title bar's
            box.show()                                 # button: without a cancel, it stays

    poll.timeout.connect(check)
    if cancel is not None:
        box.canceled.connect(loop.quit)
    poll.start()
    box.show()
    loop.exec()
    poll.stop()
    box.close()
    box.deleteLater()
    return finished()


class TaskRunner(QObject):
    """Starts Tasks, keeps strong references to them until their outcome is delivered, and on
    ``drain`` cancels them, waits for them and drops what they still send (the widgets that
    listened may be gone).

    Every task runs in a new Python thread (at most ``MAX_RUNNING`` at a time; the others wait
    for a turn), never in a reused pool thread: TensorFlow's bindings keep a Python thread
    state per OS thread, and a QThreadPool thread that had run one task (PySide6 makes and
    deletes a thread state around each ``QRunnable.run``) gave the next task that called
    TensorFlow a deleted one. The retraining wizard's evaluation, right after its training,
    crashed the whole program that way (a segmentation fault in ``reduce_mean``, every time,
    with the bundled model);
    ``tests/test_workers.py::test_tensorflow_tasks_one_after_another_do_not_crash`` guards it."""

    MAX_RUNNING = 2

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._turns = threading.BoundedSemaphore(self.MAX_RUNNING)
        self._tasks: set[Task] = set()
        self._threads: list[threading.Thread] = []
        self.closed = False

    @property
    def running(self) -> list[Task]:
        """The tasks whose outcome has not been delivered yet."""
        return list(self._tasks)

    def start(self, fn: Callable[..., Any], done: Callable[[Any], Any] | None = None,
              failed: Callable[[str], Any] | None = None,
              progress: Callable[[float, str], Any] | None = None, *,
              cancelled: Callable[[str], Any] | None = None,
              report: Callable[[Any], Any] | None = None, background: bool = True) -> Task:
        """Runs ``fn(progress, should_stop)`` in a thread of its own, or ``fn(progress,
        should_stop, report)`` when a ``report`` slot is given. The slots are connected before
        it starts (a quick task could otherwise finish before anyone listens) and run in the GUI
        thread. ``background`` lowers the worker thread's priority below the GUI thread's. After
        ``drain`` nothing starts any more."""
        task = Task(fn, background=background, reports=report is not None)
        for signal, slot in ((task.signals.progress, progress), (task.signals.report, report),
                             (task.signals.done, done), (task.signals.failed, failed),
                             (task.signals.cancelled, cancelled)):
            if slot is not None:
                signal.connect(self._unless_closed(slot))
        # a weak reference: Qt keeps the slot, and a slot holding the task (which holds its
        # signals) made a cycle no collector frees, one finished task kept per folder opened
        ref = weakref.ref(task)
        for signal in (task.signals.done, task.signals.failed, task.signals.cancelled):
            signal.connect(lambda _=None, r=ref: self._finished(r()))
        if self.closed:
            return task
        self._tasks.add(task)
        self._threads = [t for t in self._threads if t.is_alive()]
        thread = threading.Thread(target=self._run, args=(task,), daemon=True,
                                  name=f"task-{getattr(fn, '__name__', 'fn')}")
        self._threads.append(thread)
        thread.start()
        return task

    def _finished(self, task: Task | None) -> None:
        """A task's outcome was delivered (in the GUI thread): it is let go, and its signals
        are deleted here, in the thread they belong to, not wherever the last reference to
        the task happens to drop (its own worker thread, sometimes)."""
        if task is not None:
            self._tasks.discard(task)
            task.signals.deleteLater()

    def _run(self, task: Task) -> None:
        with self._turns:
            if task.should_stop():   # cancelled (drained) while it waited for its turn
                task.signals.cancelled.emit("cancelled")
                task.finished.set()
                return
            task.run()

    def _unless_closed(self, slot: Callable) -> Callable:
        def call(*args):
            if not self.closed:
                slot(*args)
        return call

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Waits for the running tasks to finish (without cancelling them or closing); False
        when some still run after ``timeout_ms`` (negative: no limit, as QThreadPool's)."""
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
        for t in list(self._threads):
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        return not self._threads

    def drain(self, timeout_ms: int = 30000) -> bool:
        """Cancels every task, waits for them, and drops their late signals."""
        self.cancel_all()
        return self.wait(timeout_ms)

    def cancel_all(self) -> None:
        """Cancels every task and drops their late signals, without waiting (``idle`` says
        when they have ended)."""
        self.closed = True
        for t in list(self._tasks):
            t.cancel()

    def threads(self) -> list[threading.Thread]:
        """The tasks' threads still running."""
        self._threads = [t for t in self._threads if t.is_alive()]
        return list(self._threads)

    def idle(self) -> bool:
        """Whether no task's thread is running any more."""
        return not self.threads()


# --------------------------------------------------------------------------------------------
# Classifying a session in the background


class ClassifyWorker(QThread):
    """Classifies what is put into ``queue`` (keys of the caller's choosing), visible images
    first (``queue.prioritize``), in batches; decoding overlaps with inference. Batches are
    smaller than the batch command's: the model's activations for 16 images of 200x200 take
    ~60 MB less than for 32, the selected image's inspection waits less for the model, and
    what scrolls into view is reached sooner; throughput hardly differs on a CPU."""

    results = Signal(object)  # list[inspector.batch.Result]
    idle = Signal()

    def __init__(self, classifier: ClassifierLike, batch_size: int = BATCH_SIZE,
                 decode_threads: int = DECODE_THREADS,
                 parent: QObject | None = None, tiling: TileSettings | None = None):
        super().__init__(parent)
        self.classifier = classifier
        self.tiling = tiling   # inspector.tiles.TileSettings: large images tile by tile
        self.batch_size = batch_size
        self.decode_threads = decode_threads
        self.queue = WorkQueue()
        self._stop = threading.Event()
        self.cached: CachedQueue | None = None   # the queue through the result cache, once run

    def stop(self) -> None:
        self._stop.set()
        self.queue.close()

    def run(self) -> None:
        lower_thread_priority()  # the decoding threads started from here inherit it
        queue, emit = self._through_cache()
        try:
            with ThreadPoolExecutor(self.decode_threads, thread_name_prefix="decode") as pool:
                while not self._stop.is_set():
                    if not self.queue.wait(0.25):
                        continue
                    classify_stream(self.classifier, queue.take, emit, self._stop.is_set,
                                    self.batch_size, pool, tiling=self.tiling)
                    if not self._stop.is_set() and len(self.queue) == 0:
                        self.idle.emit()
        finally:
            self._close_cache()

    def _through_cache(self) -> tuple[WorkQueue | CachedQueue, Callable[[list[Result]], None]]:
        """(the queue to take from, the function results go out through): through the results
        kept from earlier sessions (inspector.result_cache, ``cached``), or the queue itself
        where there are none to keep (no bundle folder, or switched off)."""
        key = None if result_cache.disabled() else \
            result_cache.model_key(self.classifier, self.tiling)
        if key is None:
            return self.queue, self._emit
        if self.cached is None:
            cache = result_cache.ResultCache(key, self.classifier.class_names)
            self.cached = CachedQueue(self.queue, cache, self._emit,
                                      lambda: getattr(self.classifier, "unknown_threshold", None),
                                      self._stop.is_set)
        cached = self.cached
        return cached, lambda results: self._emit(cached.stored(results))

    def _close_cache(self) -> None:
        if self.cached is not None:
            self.cached.cache.close()

    def _emit(self, results: list[Result]) -> None:
        if not self._stop.is_set():
            self.results.emit(results)


class ProcessClassifyWorker(ClassifyWorker):
    """A ClassifyWorker whose decoding and inference run in a child process
    (``inspector.offload``): this thread only hands out the queue's batches and emits the
    results, so the GUI thread never waits for the workers' hold on Python's GIL. When the child
    cannot start or dies, what it had not returned goes back into the queue and the work goes on
    in threads, as ClassifyWorker does it."""

    def __init__(self, classifier: ClassifierLike, spec: ProcessSpec, parent: QObject | None = None):
        super().__init__(classifier, spec.batch_size, spec.decode_threads, parent, spec.tiling)
        self.spec = spec
        self.child: ChildClassifier | None = None
        self.child_error: str | None = None   # why the work went back to threads

    def run(self) -> None:
        if self._stop.is_set():
            return
        queue, emit = self._through_cache()
        try:
            self.child = ChildClassifier(self.spec)
            if self.cached is not None:   # while the child loads its model
                self.cached.skim()
            self.child.serve(queue, emit, self._stop.is_set,
                             lambda: float(getattr(self.classifier, "accept", 1.0)), self.idle.emit,
                             self._rejudge)
        except Exception as exc:  # ChildFailed, or anything else: the work goes on in threads
            self.child_error = str(exc) if isinstance(exc, ChildFailed) else \
                f"{type(exc).__name__}: {exc}"
            log.warning("classification process: %s; classifying in threads instead",
                        self.child_error)
        finally:
            self._close_cache()
            if self.child is not None:
                self.child.close()
                if self.child_error is not None and self.child.outstanding:
                    # what the child had taken was on screen: first again
                    self.queue.add(self.child.outstanding.items())
                    self.queue.prioritize(list(self.child.outstanding))
        if self.child_error is not None and not self._stop.is_set():
            super().run()

    def _rejudge(self, results: list[Result]) -> None:
        """Known/unknown again at the threshold in use now (the setting changed while these
        were judged), by the rule the session applies to stored scores."""
        threshold = getattr(self.classifier, "unknown_threshold", None)
        for r in results:
            r.rejudge(threshold)


# --------------------------------------------------------------------------------------------
# Thumbnails


class ThumbnailLoader(QThread):
    """Loads thumbnails newest request first (what was just scrolled into view), drops requests
    that pile up beyond ``max_pending`` (scrolled away), and hands them over in small batches."""

    ready = Signal(object)  # list[(key, QImage | None, error | None)]

    def __init__(self, size: int, max_pending: int = 400, parent: QObject | None = None):
        super().__init__(parent)
        self.size = size
        self.max_pending = max_pending
        self._pending: OrderedDict[Hashable, Path] = OrderedDict()
        self._cond = threading.Condition()
        self._stop = False

    def request(self, key: Hashable, path: Path) -> None:
        with self._cond:
            if key in self._pending:
                self._pending.move_to_end(key)
            else:
                self._pending[key] = path
                while len(self._pending) > self.max_pending:
                    self._pending.popitem(last=False)
            self._cond.notify()

    def clear(self) -> None:
        with self._cond:
            self._pending.clear()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._pending.clear()
            self._cond.notify_all()

    def run(self) -> None:
        from training.images import ImageReadError

        lower_thread_priority(3)
        batch: list = []
        while True:
            with self._cond:
                if not self._pending and batch:
                    pass
                else:
                    while not self._pending and not self._stop:
                        self._cond.wait()
                if self._stop:
                    return
                item = self._pending.popitem(last=True) if self._pending else None
            if item is not None:
                key, path = item
                try:
                    batch.append((key, qimage_from_array(make_thumbnail(path, self.size)), None))
                except ImageReadError as exc:
                    batch.append((key, None, exc.problem))
                except Exception as exc:  # never let one odd file stop the loader
                    batch.append((key, None, f"{type(exc).__name__}: {exc}"))
            if batch and (item is None or len(batch) >= 12):
                self.ready.emit(batch)
                batch = []


# --------------------------------------------------------------------------------------------
# Inspecting the selected image


class InspectWorker(QThread):
    """Decodes the selected image (for display) and inspects it (probabilities, SE attention,
    CAM). Only the latest request matters: a newer one replaces one not yet started. With
    ``tiling``, an image larger than the model's view is also classified tile by tile
    (``tiled``, then the deciding tile's own inspection, ``tile_inspected``, before
    ``inspected``); ``request_tile`` inspects another of its tiles (the image decoded last is
    kept for that)."""

    inspected = Signal(object, QImage, object, object)  # key, image, Inspection, (h, w)
    tiled = Signal(object, object)                       # key, inspector.tiles.ImageVerdict
    tile_inspected = Signal(object, int, object)         # key, tile index, Inspection
    failed = Signal(object, str)                         # key, problem

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.classifier = None
        self.tiling = None
        self._request: tuple[Hashable, Path, int | None] | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._last: tuple | None = None  # (path, classifier, tiling), the image, its tiles

    def request(self, key: Hashable, path: Path) -> None:
        with self._cond:
            self._request = (key, Path(path), None)
            self._cond.notify()

    def request_tile(self, key: Hashable, path: Path, index: int) -> None:
        """The inspection of tile ``index`` of an image (``tile_inspected``). Never in place of
        another image's request not yet started: a tile of the image on screen clicked while the
        next image loaded replaced it, and the window stayed on the old image for good."""
        with self._cond:
            pending = self._request
            if pending is not None and pending[2] is None and pending[0] != key:
                return
            self._request = (key, Path(path), int(index))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def run(self) -> None:
        from training.images import ImageReadError, decode_image

        while True:
            with self._cond:
                while self._request is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                key, path, tile = self._request
                self._request = None
            clf, tiling = self.classifier, self.tiling
            try:
                if tile is not None:
                    self._inspect_tile(key, path, tile, clf, tiling)
                    continue
                self._last = None
                full = decode_image(path)
                image = qimage_from_array(as_grey_if_grey(full))
                if clf is not None and tiling is not None:
                    from ..tiles import classify_image

                    verdict = classify_image(clf, full, tiling)
                    self._last = ((path, clf, tiling), full, verdict.tiles)
                    if verdict.tiles is not None:
                        self.tiled.emit(key, verdict)
                        t = verdict.tiles
                        self.tile_inspected.emit(key, t.winner, self._tile_inspection(clf, full, t, t.winner))
                inspection = inspect_input(clf, full) if clf is not None else None
            except ImageReadError as exc:
                self.failed.emit(key, exc.problem)
                continue
            except Exception as exc:
                log.exception("unexpected error in a background task")
                self.failed.emit(key, f"{type(exc).__name__}: {exc}")
                continue
            self.inspected.emit(key, image, inspection, full.shape[:2])

    @staticmethod
    def _tile_inspection(clf, full: np.ndarray, tiles, index: int):
        return inspect_input(clf, tiles.tiles[index].crop(full), whole=False)

    def _inspect_tile(self, key, path: Path, index: int, clf, tiling) -> None:
        """Inspects one tile of the image decoded last (decoded and tiled again if another image
        came between)."""
        from training.images import decode_image

        from ..tiles import classify_image

        if clf is None or tiling is None:
            return
        if self._last is None or self._last[0] != (path, clf, tiling):
            full = decode_image(path)
            self._last = ((path, clf, tiling), full, classify_image(clf, full, tiling).tiles)
        _, full, tiles = self._last
        if tiles is not None and 0 <= index < len(tiles.tiles):
            self.tile_inspected.emit(key, index, self._tile_inspection(clf, full, tiles, index))

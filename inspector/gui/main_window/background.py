"""The main window's background classification: one ClassifyWorker per model, and the one
staleness check of everything that comes back from a background thread."""
from __future__ import annotations

from typing import Hashable, Iterable

from PySide6.QtCore import QObject, Signal

from ...batch import Result
from ...engine import Classifier
from ...session import ReviewSession
from ...tiles import TileSettings
from ...offload import process_spec
from ..workers import ClassifyWorker, ProcessClassifyWorker

Key = tuple[int, int, Hashable]   # (session generation, model token, what: a session index)


class BackgroundClassification(QObject):
    """Classifies the images of the open session in a worker thread, visible ones first.

    Every request is keyed ``(generation, model token, index)``: the generation counts sessions
    opened, the model token classifiers set. A result, an inspection or a queued call whose key
    is not current (:meth:`is_current`) belongs to another folder or to an earlier model and is
    dropped; ``results`` carries only current ones."""

    results = Signal(object)   # list[inspector.batch.Result] of the current session and model

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.generation = 0
        self.model_token = 0
        self.tiling = TileSettings()   # how large images are tiled (per folder: the window's)
        self._worker: ClassifyWorker | None = None

    # ---- the staleness check ----------------------------------------------------------------
    def key(self, what: Hashable) -> Key:
        """The key of a request made now (a session index, or anything else per session)."""
        return (self.generation, self.model_token, what)

    def is_current(self, key: Key) -> bool:
        """True when ``key`` was made for the session and the model in use now."""
        return tuple(key[:2]) == (self.generation, self.model_token)

    def is_current_session(self, generation: int) -> bool:
        return generation == self.generation

    # ---- sessions and models ----------------------------------------------------------------
    def new_session(self) -> int:
        """A session was opened: what is queued for the previous one is dropped."""
        self.generation += 1
        if self._worker is not None:
            self._worker.queue.clear()
        return self.generation

    def set_classifier(self, classifier: Classifier) -> None:
        """Stops the worker of the previous model (its late results become stale) and starts
        one for ``classifier``."""
        self.stop()
        self.model_token += 1
        # decoding and LiteRT in a child process where they can be (inspector.offload): in
        # threads here they hold the GUI thread's GIL while it paints
        spec = process_spec(classifier, tiling=self.tiling)
        self._worker = (ClassifyWorker(classifier, parent=self, tiling=self.tiling) if spec is None
                        else ProcessClassifyWorker(classifier, spec, parent=self))
        self._worker.results.connect(self.accept)
        self._worker.start()

    def set_tiling(self, tiling: TileSettings) -> bool:
        """Tiles large images this way from now on: a running worker is restarted (what it had
        computed becomes stale, like an earlier model's). True when anything changed."""
        if tiling == self.tiling:
            return False
        self.tiling = tiling
        if self._worker is not None:
            self.set_classifier(self._worker.classifier)
        return True

    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def process_error(self) -> str | None:
        """Why the classification process was given up (the work went on in threads), or None."""
        return getattr(self._worker, "child_error", None)

    @property
    def where(self) -> str:
        """Where the images are classified, for the self-test and logs."""
        w = self._worker
        if isinstance(w, ProcessClassifyWorker):
            if w.child_error:
                return f"in threads (the classification process failed: {w.child_error})"
            return "in a child process"
        return "in threads" if w is not None else "nowhere (no model)"

    def stop(self) -> None:
        """Stops the worker and waits for it (idempotent)."""
        w, self._worker = self._worker, None
        if w is not None:
            w.results.disconnect(self.accept)
            w.stop()
            w.wait()
            # let go of it: a stopped worker left as a child of this object kept its model and
            # the model's inference threads alive, about 67 MB and 4 threads per model switch
            # or change of the tile settings
            w.classifier = None
            w.setParent(None)
            w.deleteLater()

    # ---- work --------------------------------------------------------------------------------
    def enqueue(self, session: ReviewSession, indices: Iterable[int]) -> None:
        """Queues the images of ``session`` at ``indices`` that have neither a prediction nor
        an error."""
        if self._worker is None:
            return
        items = session.items
        # the items' own Path objects: Path(a Path) parses it again, ~60 ms on the GUI thread for
        # a folder of 5,000 while the decoders run (a stall the GUI benchmark recorded)
        self._worker.queue.add((self.key(i), items[i].path) for i in indices
                               if items[i].probs is None and items[i].error is None)

    def prioritize(self, indices: Iterable[int]) -> None:
        """Moves the images at ``indices`` (those on screen) to the front of the queue."""
        if self._worker is not None:
            self._worker.queue.prioritize(self.key(i) for i in indices)

    def accept(self, results: list[Result]) -> None:
        """Results from the worker: the current ones go on as ``results``, stale ones are
        dropped (a queued batch of the previous model or folder that arrives late)."""
        current = [r for r in results if self.is_current(r.key)]
        if current:
            self.results.emit(current)

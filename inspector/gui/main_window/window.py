"""The inspector's main window: thumbnails of the images under review (classified in the
background, what is on screen first), the selected image large with its attention maps, every
class's probability, and keyboard-first verdicts that go straight to the folder's journal."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Iterable

from PySide6.QtCore import QElapsedTimer, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QMainWindow, QWidget

from ... import report
from ...batch import Result, startup_fallback, startup_model_path
from ...engine import Classifier
from ...session import UNSURE, JournalError, ReviewSession, Sort
from ...settings import Key
from ..charts import on_palette
from ..settings import Settings
from ..thumbnails import THUMB
from ..workers import InspectWorker, Task, TaskRunner, ThumbnailLoader, preload_modules
from .background import BackgroundClassification
from .files import FileActions
from .tiling import TileActions
from .tools import ToolWindows
from .unknown import UnknownReview
from .layout import (APP_TITLE, BACKGROUND_START_MS, MESSAGE_MS, MESSAGE_NOTE_MS,
                     MESSAGE_SHORT_MS, MESSAGE_SUMMARY_MS, MESSAGE_WARNING_MS, PRIORITY_DELAY_MS,
                     PROGRESS_UPDATE_MS, VIEW_REFRESH_MS, WindowLayout)

log = logging.getLogger(__name__)
# Enter on an image flagged unknown; cleared when another image is shown
UNKNOWN_ACCEPT_HINT = ("Flagged unknown: no class to accept. Give its class (1-9), a new class "
                       "name (N) or Unsure (U)")

# Background threads run Python too: the interpreter lock goes back to the GUI thread within
# 2 ms (Python's default: 5 ms), so that repaints are never held up behind a worker.
SWITCH_INTERVAL_S = 0.002


class MainWindow(UnknownReview, WindowLayout, FileActions, TileActions, ToolWindows,
                 QMainWindow):
    """The review window. ``classifier`` (a loaded Classifier) skips loading ``model_path``;
    ``settings`` defaults to the user's settings file."""

    model_loaded = Signal(object)        # the Classifier now in use
    model_failed = Signal(str)           # why a model could not be loaded
    inspection_shown = Signal(int)       # session index of the image now shown with its maps
    tile_inspection_shown = Signal(int)  # a tile of the shown image now shown with its own maps
    classification_done = Signal()       # every image of the session has a prediction or error
    session_opened = Signal()

    def __init__(self, model_path: str | Path | None = None, paths: Iterable[str | Path] = (),
                 classifier: Classifier | None = None, settings: Settings | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.settings = settings or Settings()
        self.classifier: Classifier | None = None
        self.model_path: Path | None = None
        self.session = ReviewSession(threshold=self.settings.get_float(Key.THRESHOLD))
        self._current: int | None = None          # session index shown large
        self._background_pending: int | None = None  # session whose classification waits
        self._shown_key = None                    # background.key(index) whose inspection is shown
        self._n_done = 0                          # images of the session classified so far
        self._classifying = False                 # classification of the session under way
        self._done_announced = False              # classification_done emitted for _n_done
        self._progress_clock = QElapsedTimer()
        self._load_token = 0
        self._startup_fallback: Path | None = None  # the bundled model, if the startup one fails
        self._startup_note = ""                     # said in the status bar once it is loaded
        self._open_token = 0
        self._listed_folder: Path | None = None   # the folder open (not files), for Include sub-folders
        self._dialogs: list[QWidget] = []         # child windows kept alive
        self._verdict_actions: list[QAction] = []
        self.last_message: tuple[str, str] | None = None  # the latest message shown to the user

        self._tasks = TaskRunner(self)
        self._export_task: Task | None = None   # the last export asked (FileActions.export)
        self._export_path: Path | None = None
        self.background = BackgroundClassification(self)   # and the one staleness check
        self.background.results.connect(self._on_results)
        # made at the screen's pixel density: a 112-px thumbnail drawn on a 150% or 200% screen
        # was enlarged and blurred
        dpr = max(1.0, QApplication.instance().devicePixelRatio())
        self._thumbs = ThumbnailLoader(round(THUMB * dpr), parent=self)
        self._thumbs.start(ThumbnailLoader.Priority.LowPriority)
        self._inspect = InspectWorker(self)
        self._inspect.inspected.connect(self._on_inspected)
        self._inspect.failed.connect(self._on_inspect_failed)
        self._inspect.start()
        preload_modules("cv2")   # the attention overlays' resampling, off the GUI thread

        self._build_ui()
        self._build_menus()
        self._rebuild_class_widgets([])
        self._restore_settings()
        self._init_tiles()
        # a settings file that cannot be written is said once, not found out at the next start
        self.settings.on_unsaved = lambda why: self._inform("Settings not saved", why)
        self.settings.sync()

        self._view_timer = QTimer(self, singleShot=True, interval=VIEW_REFRESH_MS)
        self._view_timer.timeout.connect(self._apply_view)
        self._priority_timer = QTimer(self, singleShot=True, interval=PRIORITY_DELAY_MS)
        self._priority_timer.timeout.connect(self._update_priority)
        self.list.verticalScrollBar().valueChanged.connect(lambda _: self._on_scrolled())
        self.splitter.splitterMoved.connect(lambda *_: self._on_scrolled())

        if classifier is not None:
            bundle_path = getattr(getattr(classifier, "bundle", None), "path", None)
            self.set_classifier(classifier, Path(bundle_path) if bundle_path else None)
        else:
            notes: list[str] = []
            path = startup_model_path(model_path, notes)
            if notes:   # said in the status bar once the model is loaded
                self._startup_note = notes[0][:1].upper() + notes[0][1:]
            self.load_model(path)
            self._startup_fallback = startup_fallback(path, model_path)
        paths = [Path(p) for p in paths]
        if paths:
            self.open_paths(paths)

    def _class_names(self) -> list[str]:
        return list(self.classifier.class_names) if self.classifier is not None else []

    def _set_session(self, session: ReviewSession) -> None:
        self.background.new_session()
        self._use_folder_tiling(session.root)
        if self.classifier is not None:
            card = self.classifier.card or {}
            session.class_names = list(self.classifier.class_names)
            session.model_name = str(card.get("name", ""))
            session.model_version = str(card.get("version", ""))
        session.threshold = self.threshold.value() / 100.0
        self.session = session
        self._current = None
        self._shown_key = None
        self._n_done = 0
        self._done_announced = False
        if self._classifying:  # the previous session's progress
            self._classifying = False
            self.progress.hide()
        self.thumb_model.set_session(session, self.generation)
        self._apply_view()
        title = session.root if session.root is not None else ""
        self.setWindowTitle(f"{APP_TITLE} — {title}" if title else APP_TITLE)
        if session.journal is not None and session.journal.unreadable:
            self._inform("Earlier verdicts cannot be read",
                         "Cannot read the verdict journal "
                         + "; ".join(session.journal.unreadable)
                         + ".\nVerdicts saved in it are not shown. New verdicts are saved in "
                         f"{session.journal.path}.")
        elif session.journal is not None and session.journal.skipped_lines:
            self.statusBar().showMessage(self._folder_notes()[-1], MESSAGE_WARNING_MS)
        if self.thumb_model.rowCount():
            self.list.setCurrentIndex(self.thumb_model.index(0))
        elif len(session):   # the filter kept from the folder before hides them all (for now)
            self.panel.show_message(f"No image matches the filter: {self._filter_text()}.\n"
                                    "Images show as they are classified and match it; Show ▸ "
                                    f"All images and every class show all {len(session)}.")
        else:
            self.panel.show_message("No images here.")
        # started once the first image is shown large (or BACKGROUND_START_MS after opening,
        # whichever comes first), so that the window lays out, paints the new folder and its
        # first image and charts before the decoders compete with it for Python's GIL and the
        # cores: at once, the GUI benchmark's longest gap (127 ms) fell in this first 0.3 s
        gen = self._background_pending = self.generation
        QTimer.singleShot(BACKGROUND_START_MS if self.thumb_model.rowCount() else 0, self,
                          lambda: self._start_background(gen))
        self.list.setFocus()
        self.session_opened.emit()

    # ========================================================================================
    # The model

    def load_model(self, path: str | Path) -> None:
        """Loads a bundle in the background; when it is ready, every image is classified again."""
        from ...engine import load_classifier

        path = Path(path)
        self._startup_fallback = None  # only the startup model falls back
        self._load_token += 1
        token = self._load_token
        self.model_label.setText(f"loading {path.name}…")
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setFormat("loading model… %p%")
        self.progress.show()
        self._tasks.start(
            lambda progress, should_stop: load_classifier(path, progress),
            progress=lambda f, m, t=token: self._on_model_progress(t, f, m),
            done=lambda clf, t=token, p=path: t == self._load_token and self.set_classifier(clf, p),
            failed=lambda msg, t=token, p=path: t == self._load_token and self._on_model_failed(p, msg))

    def _on_model_progress(self, token: int, fraction: float, message: str) -> None:
        if token == self._load_token:
            if self.progress.maximum() != 100 or self.progress.isHidden():
                self.progress.setRange(0, 100)
                self.progress.show()
            self.progress.setValue(round(fraction * 100))
            self.progress.setFormat(f"{message}… %p%")
            self.statusBar().showMessage(message[:1].upper() + message[1:])

    def _on_model_failed(self, path: Path, message: str) -> None:
        fallback = self._startup_fallback
        if fallback is not None and self.classifier is None:
            # the model library's active version is damaged: start with the bundled model
            self._startup_note = (f"Cannot load the active model ({message}); "
                                  f"using the bundled model {fallback.name}")
            log.warning("%s", self._startup_note)
            self.load_model(fallback)
            self.statusBar().showMessage(self._startup_note)
            return
        self.progress.hide()
        if self.classifier is None:
            self.model_label.setText("no model")
            self.model_label.setToolTip(message)
        else:  # the model in use stays
            self.model_label.setText(f"{self.classifier.title} · {len(self.classifier.class_names)} classes")
        hint = ("" if self.classifier is None else
                f" Still using {self.classifier.title}.")
        self._inform("Cannot load the model", f"{message}\n\nChoose another model under Tools ▸ "
                     f"Models… or start with --model BUNDLE.{hint}")
        self.model_failed.emit(message)

    @property
    def generation(self) -> int:
        """How many sessions were opened (the thumbnails and the background work are keyed by it)."""
        return self.background.generation

    def set_classifier(self, classifier: Classifier, path: Path | None) -> None:
        """Uses ``classifier`` (loaded from ``path``) from now on: every image is classified again;
        whatever the old model is still computing is dropped when it arrives."""
        self.background.set_classifier(classifier)
        self._tile_results = {}
        self._shown_key = None
        self.classifier = classifier
        self.model_path = path
        self._inspect.classifier = classifier
        card = classifier.card or {}
        self.model_label.setText(f"{classifier.title} · {len(classifier.class_names)} classes")
        self.model_label.setToolTip(f"{path}\nclasses: {', '.join(classifier.class_names)}\n"
                                    f"input {classifier.input_size}×{classifier.input_size}")
        self.device_label.setText(report.device_status_text(classifier.device))
        self.device_label.setToolTip(f"device: {classifier.device}")
        self.session.set_model(classifier.class_names, str(card.get("name", "")),
                               str(card.get("version", "")))
        self._rebuild_class_widgets(list(classifier.class_names))
        self._unknown_model_changed()
        self.panel.set_blocks(list(classifier.se_block_names))
        self.progress.hide()
        self.statusBar().showMessage(f"{classifier.title} ready on {classifier.device}", MESSAGE_MS)
        if self._startup_note:
            note, self._startup_note = self._startup_note, ""
            self.statusBar().showMessage(f"{note}: {classifier.title} ready on {classifier.device}",
                                         MESSAGE_NOTE_MS)
            self.model_label.setToolTip(f"{note}\n{self.model_label.toolTip()}")
        self._classify_all_again()
        self.model_loaded.emit(classifier)

    # ========================================================================================
    # Classification in the background

    def _start_background(self, gen: int) -> None:
        """Queues every image of session ``gen`` for classification, once."""
        if self._background_pending != gen or not self.background.is_current_session(gen):
            return
        self._background_pending = None
        self._enqueue(range(len(self.session)))

    def _enqueue(self, indices: Iterable[int]) -> None:
        if not self.background.running:
            return
        self.background.enqueue(self.session, indices)
        self._update_priority()
        self._show_progress()

    def _on_scrolled(self) -> None:
        if self.thumb_model.rowCount():
            self.thumb_model.visible = self._visible_rows()
        self._priority_timer.start()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if hasattr(self, "_priority_timer"):
            self._on_scrolled()

    def _update_priority(self) -> None:
        """What is on screen (from the first visible row on) is classified first."""
        if not self.thumb_model.rowCount():
            self.thumb_model.visible = None
            return
        first, last = self._visible_rows()
        self.thumb_model.visible = (first, last)
        self.background.prioritize(self.thumb_model.rows[first:last + 1])

    def _on_results(self, results: list[Result]) -> None:
        s = self.session
        changed = []
        for r in results:  # only the current session's and model's (self.background)
            i = r.key[2]
            if not s.is_classified(i):
                self._n_done += 1
            if r.error is not None:
                s.set_error(i, r.error)
            else:
                s.set_prediction(i, r.probs, r.unknown_score, r.known,
                                 getattr(r, "padding", 0.0))
            self._remember_tiles(i, r.tiles)
            changed.append(i)
        if not changed:
            return
        visible = self._visible_rows() if self.thumb_model.rowCount() else None
        self.thumb_model.visible = visible
        self.thumb_model.items_changed(changed, visible)
        if self._current in changed:
            self._update_verdict_label()
        f = self._filter()
        if f.depends_on_predictions or self._sort() not in (Sort.OPENED, Sort.PATH):
            if not self._view_timer.isActive():
                self._view_timer.start()
        self._show_progress()

    def _folder_notes(self) -> list[str]:
        """What opening the folder found besides its images: files of other formats left out,
        damaged lines skipped in its verdict journal."""
        s = self.session
        notes = [s.left_out_note] if s.left_out_note else []
        if s.journal is not None and s.journal.skipped_lines:
            notes.append(f"{s.journal.path}: skipped {s.journal.skipped_lines} damaged line(s)")
        return notes

    def _show_progress(self) -> None:
        n = len(self.session)
        if self.classifier is None or not n:
            return
        done = min(self._n_done, n)
        if done >= n:
            # announced once, also when the selected image's inspection classified the last
            # image before the queued background classification showed any progress
            if self._classifying or not self._done_announced:
                self._classifying = False
                self._done_announced = True
                self.progress.hide()
                summary = self.session.summary()   # per class: tooltip and File ▸ Summary
                # what opening the folder said (files left out, damaged journal lines) stays
                # with the summary that replaces it, not only for the second it showed
                notes = "".join(f"; {n}" for n in self._folder_notes())
                self.statusBar().showMessage(report.summary_text(summary, per_class=False)
                                             + notes, MESSAGE_SUMMARY_MS)
                self.statusBar().setToolTip(report.summary_text(summary) + notes)
                self._update_counts()
                self.classification_done.emit()
            return
        self._done_announced = False
        if not self._classifying or self.progress.maximum() != n:
            self._classifying = True
            self.progress.setRange(0, n)
            self.progress.setFormat("classified %v of %m")
            self.progress.show()
        elif self._progress_clock.isValid() and self._progress_clock.elapsed() < PROGRESS_UPDATE_MS:
            return  # a progress bar repaints at once: a few updates a second are enough
        self._progress_clock.start()
        self.progress.setValue(done)
        self._update_unknown_status()   # the drift signal grows with the folder, not at its end

    # ========================================================================================
    # The selected image

    def current_index(self) -> int | None:
        """The session index of the image shown large."""
        return self._current

    def shown_index(self) -> int | None:
        """The session index whose image and explanation are on screen now."""
        if self._shown_key is None or not self.background.is_current(self._shown_key):
            return None
        return self._shown_key[2]

    def select(self, session_index: int) -> None:
        r = self.thumb_model.row_of(session_index)
        if r is not None:
            self.list.setCurrentIndex(self.thumb_model.index(r))

    def _on_current_changed(self, current, _previous) -> None:
        idx = self.thumb_model.session_index(current.row()) if current.isValid() else None
        if idx is None or idx == self._current:
            return
        self._current = idx
        if self.statusBar().currentMessage() == UNKNOWN_ACCEPT_HINT:   # it was about the last one
            self.statusBar().clearMessage()
        self.list.selectionModel().select(current, self.list.selectionModel().SelectionFlag.ClearAndSelect)
        self._update_verdict_label()
        self._request_inspection(idx)

    def _request_inspection(self, idx: int) -> None:
        self._inspect.request(self.background.key(idx), self.session.items[idx].path)

    def _on_inspected(self, key, image, inspection, shape) -> None:
        idx = key[2]
        if not self.background.is_current(key) or idx != self._current:
            return
        s = self.session
        self._changed_when_shown(idx)   # the file shown is not the one classified: again
        if inspection is not None and s.items[idx].probs is None and s.items[idx].error is None:
            s.set_prediction(idx, inspection.probs, inspection.unknown_score,
                             inspection.known, getattr(inspection, "padding", 0.0))
            # (the batch worker will agree)
            self._n_done += 1
            self.thumb_model.item_changed(idx)
            self._show_progress()
        self._shown_key = key
        self.panel.show_image(image, inspection, shape, self._caption(idx, shape))
        self.prob_chart.set_values(None if inspection is None else inspection.probs)
        self._update_verdict_label()
        self._show_tiles(idx)   # a large image: its tiles, the deciding one shown
        self.inspection_shown.emit(idx)
        QTimer.singleShot(0, self, lambda: self._start_background(key[0]))  # after it paints

    def _on_inspect_failed(self, key, problem: str) -> None:
        idx = key[2]
        if not self.background.is_current(key) or idx != self._current:
            return
        self._shown_key = key
        # classified before, changed or gone now: its old result is not shown as its own (an
        # inspection that fails for another reason leaves the result as it is)
        self._changed_when_shown(idx)
        self.panel.show_message(f"Cannot show this image:\n{problem}", str(self.session.items[idx].path))
        self.prob_chart.set_values(None)
        self.inspection_shown.emit(idx)
        QTimer.singleShot(0, self, lambda: self._start_background(key[0]))

    def _update_verdict_label(self) -> None:
        idx = self._current
        if idx is None:
            self.verdict_label.setText("Verdict: —")
            return
        s = self.session
        it = s.items[idx]
        pred = s.predicted_name(idx)
        pal = self.verdict_label.palette()   # the colours readable on a dark theme too
        if it.error:
            head = f"<span style='color:{on_palette('#C62828', pal)}'>Cannot classify: {it.error}</span>"
        elif pred is None:
            head = "Classifying…"
        elif s.is_unknown(idx):
            head = self._unknown_head(idx)
        else:
            # the frame's orange was 2:1 as text on a light window: a darker one for words
            flag = (f" — <b style='color:{on_palette('#9A5B00', pal)}'>needs review</b>"
                    if s.needs_review(idx) else "")
            head = f"Predicted <b>{pred}</b> ({it.confidence:.1%}){flag}"
        if it.verdict is None:
            verdict = "Verdict: <i>not reviewed</i>"
        elif it.verdict.label == UNSURE:
            verdict = "Verdict: <b>unsure</b>"
        elif s.is_overridden(idx):
            verdict = (f"Verdict: <b style='color:{on_palette('#6A1B9A', pal)}'>{it.verdict.label}</b>"
                       " (overrides the prediction)")
        else:
            verdict = f"Verdict: <b style='color:{on_palette('#2E7D32', pal)}'>{it.verdict.label}</b> ✓"
        self.verdict_label.setText(f"{head}<br>{verdict}")
        self._append_tile_line()

    def _next_overlay(self) -> None:
        c = self.panel.source
        if c.count():   # none before a model is loaded
            c.setCurrentIndex((c.currentIndex() + 1) % c.count())

    # ========================================================================================
    # Verdicts

    def set_verdict(self, label: str | None, advance: bool = True, new_class: bool = False) -> bool:
        """Sets the shown image's true class (a class name, UNSURE, or None to clear; with
        ``new_class`` any class name); saved to the journal at once. Moves on to the next image
        when ``advance``."""
        idx = self._current
        if idx is None or not self._verdict_target_shown(idx):
            return False
        try:
            self.session.set_verdict(idx, label, new_class)
        except JournalError as exc:
            self._inform("Verdict not saved", str(exc))
            return False
        journal = self.session.journal
        if journal is not None and journal.fallback_reason:   # saved, but not beside the images
            self.statusBar().showMessage(
                f"Verdict saved on this PC only ({journal.fallback_path}): the folder's journal "
                f"could not be written ({journal.fallback_reason}); other PCs will not see it",
                MESSAGE_WARNING_MS)
        self.thumb_model.item_changed(idx)
        self._update_verdict_label()
        if self._filter().unreviewed or self._filter().overridden:
            self._view_timer.start()
        if advance and label is not None:
            self._advance()
        return True

    def undo_verdict(self) -> bool:
        """Ctrl+Z: the last verdict of this session is taken back (the image gets the verdict it
        had before, journalled) and that image is shown, in whatever view it was given: with
        "Not yet reviewed" the judged image had left the view and could not be reached."""
        try:
            idx = self.session.undo_verdict()
        except JournalError as exc:
            self._inform("Verdict not saved", str(exc))
            return False
        if idx is None:
            self.statusBar().showMessage("No verdict to undo in this folder", MESSAGE_SHORT_MS)
            return False
        self.thumb_model.item_changed(idx)
        self._apply_view()
        if self.thumb_model.row_of(idx) is None:   # the filters hide it: show every image
            self.status_filter.setCurrentIndex(0)
            self.class_filter.setCurrentIndex(0)
            self._apply_view()
        self.select(idx)
        self._update_verdict_label()
        v = self.session.items[idx].verdict
        self.statusBar().showMessage(
            f"Verdict undone: {self.session.items[idx].path.name} is "
            + (f"back to {v.label}" if v is not None else "not reviewed again"), MESSAGE_SHORT_MS)
        return True

    def _verdict_target_shown(self, idx: int) -> bool:
        """Whether the image a verdict would go to is the one on screen: right after a move (a
        large tiled image takes seconds) the large view still shows the one before, and a key
        pressed then (or held down) must not judge images nobody has seen."""
        if self.classifier is None or self.shown_index() == idx:
            return True
        self.statusBar().showMessage("The image is still loading: give its verdict when it "
                                     "shows", MESSAGE_SHORT_MS)
        return False

    def accept_prediction(self) -> bool:
        idx = self._current
        if idx is None:
            return False
        focus = QApplication.focusWidget()
        if isinstance(focus, (QAbstractSpinBox, QComboBox)):
            # Enter ends typing a threshold or choosing a filter; it accepts nothing
            if isinstance(focus, QAbstractSpinBox):
                focus.interpretText()   # the value typed counts (it counts once typed)
            self.list.setFocus()
            return False
        name = self.session.predicted_name(idx)
        if name is None:
            self.statusBar().showMessage("No prediction to accept yet", MESSAGE_SHORT_MS)
            return False
        if self.session.is_unknown(idx):   # its closest class is not a verdict to accept
            self.statusBar().showMessage(UNKNOWN_ACCEPT_HINT, MESSAGE_MS)
            return False
        return self.set_verdict(name)

    def _advance(self) -> None:
        ix = self.list.currentIndex()
        if ix.isValid() and ix.row() + 1 < self.thumb_model.rowCount():
            self.list.setCurrentIndex(self.thumb_model.index(ix.row() + 1))

    def closeEvent(self, event) -> None:  # noqa: N802
        if not self.close_retraining():   # the user chose to keep a training or its model
            event.ignore()
            return
        # a settings file found unwritable now is logged: a message would open on a window
        # that is closing
        self.settings.on_unsaved = lambda why: log.warning("settings not saved: %s", why)
        self._save_layout()
        self.close_tool_windows()
        # an export being written is waited for, with a message; closed without it, the tasks
        # are not waited for either (its thread ends with the program; the file stays as it was)
        self.shutdown(30000 if self.finish_exports() else 500)
        super().closeEvent(event)

    def shutdown(self, drain_ms: int = 30000) -> None:
        """Stops every background thread (idempotent), waiting ``drain_ms`` at most for the
        background tasks."""
        self._view_timer.stop()
        self._priority_timer.stop()
        self.background.stop()
        for w in (self._thumbs, self._inspect):
            w.stop()
            w.wait()
        self._tasks.drain(drain_ms)

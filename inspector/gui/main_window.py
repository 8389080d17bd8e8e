"""The inspector's main window: thumbnails of the images under review (classified in the
background, what is on screen first), the selected image large with its attention maps, every
class's probability, and keyboard-first verdicts that go straight to the folder's journal."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable

from PySide6.QtCore import QElapsedTimer, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QFileDialog,
                               QGridLayout, QGroupBox, QHBoxLayout, QLabel, QListView, QMainWindow,
                               QMessageBox, QProgressBar, QPushButton, QSizePolicy, QSpinBox,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from .. import report
from ..batch import Result, collect_paths, startup_fallback, startup_model_path
from ..session import UNSURE, Filter, JournalError, ReviewSession, Sort
from ..settings import Key
from .settings import Settings
from .charts import ProbabilityChart
from .inspection_panel import InspectionPanel
from .thumbnails import THUMB, ThumbnailDelegate, ThumbnailModel
from .workers import ClassifyWorker, InspectWorker, TaskRunner, ThumbnailLoader

APP_TITLE = "Steel Inspector"

STATUS_FILTERS: list[tuple[str, dict]] = [
    ("All images", {}),
    ("Needs review", {"needs_review": True}),
    ("Overridden", {"overridden": True}),
    ("Not yet reviewed", {"unreviewed": True}),
    ("Unreadable", {"errors": True}),
]
SORTS: list[tuple[str, Sort]] = [
    ("Order opened", Sort.OPENED),
    ("Confidence, lowest first", Sort.CONFIDENCE_ASC),
    ("Confidence, highest first", Sort.CONFIDENCE_DESC),
    ("File path", Sort.PATH),
]
IMAGE_FILTER = "Images (*.bmp *.png *.jpg *.jpeg *.tif *.tiff *.BMP *.PNG *.JPG *.JPEG *.TIF *.TIFF)"


class MainWindow(QMainWindow):
    model_loaded = Signal(object)        # the Classifier now in use
    model_failed = Signal(str)           # why a model could not be loaded
    inspection_shown = Signal(int)       # session index of the image now shown with its maps
    classification_done = Signal()       # every image of the session has a prediction or error
    session_opened = Signal()

    def __init__(self, model_path: str | Path | None = None, paths: Iterable[str | Path] = (),
                 classifier=None, settings: Settings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        # Background threads run Python too: hand the interpreter lock back to the GUI thread
        # within 2 ms (default 5 ms) so that repaints are never held up behind a worker.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.002))
        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.settings = settings or Settings()
        self.classifier = None
        self.model_path: Path | None = None
        self.session = ReviewSession(threshold=self.settings.get_float(Key.THRESHOLD))
        self.generation = 0
        self._current: int | None = None          # session index shown large
        self._shown_key = None                    # (generation, model, index) whose inspection is shown
        self._model_token = 0                     # bumped on every classifier switch: older results are stale
        self._n_done = 0                          # images of the session classified so far
        self._classifying = False                 # classification of the session under way
        self._progress_clock = QElapsedTimer()
        self._load_token = 0
        self._startup_fallback: Path | None = None  # the bundled model, if the startup one fails
        self._startup_note = ""                     # said in the status bar once it is loaded
        self._open_token = 0
        self._classify: ClassifyWorker | None = None
        self._dialogs: list[QWidget] = []         # child windows kept alive
        self._verdict_actions: list[QAction] = []
        self.last_message: tuple[str, str] | None = None  # the latest message shown to the user

        self._tasks = TaskRunner(self)
        self._thumbs = ThumbnailLoader(THUMB, parent=self)
        self._thumbs.start(ThumbnailLoader.Priority.LowPriority)
        self._inspect = InspectWorker(self)
        self._inspect.inspected.connect(self._on_inspected)
        self._inspect.failed.connect(self._on_inspect_failed)
        self._inspect.start()

        self._build_ui()
        self._build_menus()
        self._rebuild_class_widgets([])
        self._restore_settings()

        self._view_timer = QTimer(self, singleShot=True, interval=800)
        self._view_timer.timeout.connect(self._apply_view)
        self._priority_timer = QTimer(self, singleShot=True, interval=60)
        self._priority_timer.timeout.connect(self._update_priority)
        self.list.verticalScrollBar().valueChanged.connect(lambda _: self._on_scrolled())
        self.splitter.splitterMoved.connect(lambda *_: self._on_scrolled())

        if classifier is not None:
            bundle_path = getattr(getattr(classifier, "bundle", None), "path", None)
            self._set_classifier(classifier, Path(bundle_path) if bundle_path else None)
        else:
            path = startup_model_path(model_path)
            self.load_model(path)
            self._startup_fallback = startup_fallback(path, model_path)
        paths = [Path(p) for p in paths]
        if paths:
            self.open_paths(paths)

    # ========================================================================================
    # UI

    def _build_ui(self) -> None:
        # thumbnails
        self.thumb_model = ThumbnailModel(self._thumbs, parent=self)
        self.delegate = ThumbnailDelegate(self.thumb_model, self)
        self.list = QListView()
        self.list.setModel(self.thumb_model)
        self.list.setItemDelegate(self.delegate)
        self.list.setUniformItemSizes(True)
        self.list.setLayoutMode(QListView.LayoutMode.Batched)
        self.list.setBatchSize(400)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setDragEnabled(False)
        self.list.setAcceptDrops(False)
        self.list.setMinimumWidth(THUMB + 40)
        self.list.selectionModel().currentChanged.connect(self._on_current_changed)
        self._set_grid(True)

        # the image and its explanation
        self.panel = InspectionPanel()
        self.panel.overlay_source_changed.connect(lambda k: self.settings.set(Key.OVERLAY_SOURCE, k))
        self.panel.opacity_changed.connect(lambda v: self.settings.set(Key.OVERLAY_OPACITY, v))
        self.panel.source.activated.connect(lambda _: self.list.setFocus())

        # probabilities, verdict, channel weights
        self.prob_chart = ProbabilityChart()
        self.prob_chart.setMinimumHeight(190)
        self.verdict_label = QLabel("Verdict: —")
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setMinimumHeight(2 * self.verdict_label.fontMetrics().height() + 6)
        self.verdict_box = QGroupBox("Verdict (keys)")
        self.verdict_grid = QGridLayout(self.verdict_box)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.prob_chart, 3)
        rl.addWidget(self.verdict_box)
        rl.addWidget(self.panel.weights_chart, 2)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.list)
        self.splitter.addWidget(self.panel)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 5)
        self.splitter.setStretchFactor(2, 3)
        self.splitter.setSizes([330, 640, 420])
        self.setCentralWidget(self.splitter)

        # toolbar: threshold, filters, sorting
        tb = self.addToolBar("Review")
        tb.setObjectName("review_toolbar")
        tb.setMovable(False)
        self.open_folder_button = QPushButton("Open folder…")
        self.open_folder_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.open_folder_button.clicked.connect(self.choose_folder)
        tb.addWidget(self.open_folder_button)
        tb.addSeparator()
        tb.addWidget(QLabel(" Needs review below "))
        self.threshold = QSpinBox()
        self.threshold.setRange(0, 100)
        self.threshold.setSuffix(" %")
        self.threshold.setToolTip("Images whose top probability is below this are flagged "
                                  "\"needs review\" (orange frame)")
        self.threshold.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        tb.addWidget(self.threshold)
        tb.addSeparator()
        tb.addWidget(QLabel(" Show "))
        self.status_filter = QComboBox()
        for text, _ in STATUS_FILTERS:
            self.status_filter.addItem(text)
        self.class_filter = QComboBox()
        self.class_filter.addItem("every class", None)
        self.sort_combo = QComboBox()
        for text, sort in SORTS:
            self.sort_combo.addItem(text, sort)
        for combo in (self.status_filter, self.class_filter, self.sort_combo):
            combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
            combo.currentIndexChanged.connect(lambda _: self._apply_view())
            combo.activated.connect(lambda _: self.list.setFocus())
        tb.addWidget(self.status_filter)
        tb.addWidget(QLabel(" predicted as "))
        tb.addWidget(self.class_filter)
        tb.addWidget(QLabel("  Sort "))
        tb.addWidget(self.sort_combo)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        tb.addWidget(spacer)
        self.count_label = QLabel()
        tb.addWidget(self.count_label)

        # status bar: progress, model, device
        sb = self.statusBar()
        self.progress = QProgressBar()
        self.progress.setFixedWidth(260)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.model_label = QLabel("no model")
        self.device_label = QLabel("")
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.model_label)
        sb.addPermanentWidget(self.device_label)

        self.panel.show_message("Open a folder of images (Ctrl+O) or drop images here.")

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        self._action(m, "Open &folder…", self.choose_folder, QKeySequence.StandardKey.Open)
        self._action(m, "Open &images…", self.choose_files, "Ctrl+Shift+O")
        self.recursive_action = self._action(m, "Include &sub-folders", None, checkable=True)
        self.recursive_action.toggled.connect(lambda on: self.settings.set(Key.RECURSIVE, on))
        m.addSeparator()
        self._action(m, "Export results as &CSV…", lambda: self._choose_export("csv"), "Ctrl+E")
        self._action(m, "Export results as &JSON…", lambda: self._choose_export("json"))
        self._action(m, "&Summary…", self.show_summary, "Ctrl+I")
        m.addSeparator()
        self._action(m, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        self.review_menu = mb.addMenu("&Review")

        v = mb.addMenu("&View")
        group = QActionGroup(self)
        self.grid_action = self._action(v, "&Grid of thumbnails", lambda: self._set_grid(True), checkable=True)
        self.list_action = self._action(v, "&List", lambda: self._set_grid(False), checkable=True)
        group.addAction(self.grid_action)
        group.addAction(self.list_action)
        v.addSeparator()
        self._action(v, "&Fit image", self.panel.view.fit, "F")
        self._action(v, "Zoom &in", lambda: self.panel.view.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn)
        self._action(v, "Zoom &out", lambda: self.panel.view.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut)
        self._action(v, "&Actual size", self.panel.view.actual_size, "Ctrl+1")
        self._action(v, "Next &overlay", self._next_overlay, "A")

        t = mb.addMenu("&Tools")
        self._action(t, "Live &camera…", self.open_camera, "Ctrl+L")
        self._action(t, "&Retrain model…", self.open_retrain)
        self._action(t, "&Models…", self.open_models)

        h = mb.addMenu("&Help")
        self._action(h, "&Keyboard shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents)

    def _action(self, menu, text, slot, shortcut=None, checkable=False) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        a.setCheckable(checkable)
        if slot is not None:
            a.triggered.connect(lambda _=False: slot())
        menu.addAction(a)
        self.addAction(a)  # shortcuts work while the menu bar is hidden, too
        return a

    def _rebuild_class_widgets(self, class_names: list[str]) -> None:
        """Verdict buttons and actions (keys 1-9), the class filter and the chart's classes."""
        for a in self._verdict_actions:
            self.removeAction(a)
        self._verdict_actions = []
        self.review_menu.clear()
        while self.verdict_grid.count():
            w = self.verdict_grid.takeAt(0).widget()
            if w is not None and w is not self.verdict_label:
                w.deleteLater()

        def add(text, key, slot, row, col, span=1):
            a = QAction(text, self)
            a.setShortcuts([QKeySequence(k) for k in ([key] if isinstance(key, str) else key)])
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            a.triggered.connect(lambda _=False: slot())
            self.addAction(a)
            self.review_menu.addAction(a)
            self._verdict_actions.append(a)
            b = QPushButton(f"{text}  [{a.shortcut().toString()}]" if key else text)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(a.trigger)
            self.verdict_grid.addWidget(b, row, col, 1, span)
            return a

        for i, name in enumerate(class_names[:9]):
            add(name, str(i + 1), lambda n=name: self.set_verdict(n), i // 2, i % 2)
        row = (min(len(class_names), 9) + 1) // 2
        add("Accept prediction", ["Return", "Enter"], self.accept_prediction, row, 0)
        add("Unsure", "U", lambda: self.set_verdict(UNSURE), row, 1)
        add("Clear verdict", ["Backspace", "Delete"], lambda: self.set_verdict(None), row + 1, 0, 2)
        self.verdict_grid.addWidget(self.verdict_label, row + 2, 0, 1, 2)

        current = self.class_filter.currentData()
        self.class_filter.blockSignals(True)
        self.class_filter.clear()
        self.class_filter.addItem("every class", None)
        for name in class_names:
            self.class_filter.addItem(name, name)
        i = self.class_filter.findData(current)
        self.class_filter.setCurrentIndex(max(0, i))
        self.class_filter.blockSignals(False)
        self.prob_chart.set_classes(class_names)

    def _set_grid(self, grid: bool) -> None:
        self.delegate.grid = grid
        if grid:
            self.list.setViewMode(QListView.ViewMode.IconMode)
            self.list.setFlow(QListView.Flow.LeftToRight)
            self.list.setWrapping(True)
            self.list.setSpacing(2)
            fh = self.list.fontMetrics().height()
            self.list.setGridSize(QSize(THUMB + 30, THUMB + 2 * fh + 18))
        else:
            self.list.setViewMode(QListView.ViewMode.ListMode)
            self.list.setFlow(QListView.Flow.TopToBottom)
            self.list.setWrapping(False)
            self.list.setSpacing(0)
            self.list.setGridSize(QSize())
        if hasattr(self, "grid_action"):
            self.grid_action.setChecked(grid)
            self.list_action.setChecked(not grid)
            self.settings.set(Key.GRID_VIEW, grid)
        self.list.setMovement(QListView.Movement.Static)
        self.list.doItemsLayout()
        self._scroll_to_current()

    # ========================================================================================
    # Settings

    def _restore_settings(self) -> None:
        s = self.settings
        self.threshold.setValue(round(s.get_float(Key.THRESHOLD) * 100))
        self.threshold.valueChanged.connect(self._threshold_changed)
        self._threshold_changed(self.threshold.value(), save=False)
        self.panel.set_opacity(s.get_float(Key.OVERLAY_OPACITY))
        self.panel.set_source(s.get_str(Key.OVERLAY_SOURCE))
        self.recursive_action.setChecked(s.get_bool(Key.RECURSIVE))
        self._set_grid(s.get_bool(Key.GRID_VIEW))
        geometry = s.get_bytes(Key.WINDOW_GEOMETRY)
        if not geometry or not self.restoreGeometry(geometry):
            self.resize(1400, 860)
        state = s.get_bytes(Key.WINDOW_STATE)
        if state:
            self.restoreState(state)
        splitter = s.get_bytes(Key.SPLITTER_STATE)
        if splitter:
            self.splitter.restoreState(splitter)

    def _save_layout(self) -> None:
        self.settings.set(Key.WINDOW_GEOMETRY, bytes(self.saveGeometry().data()))
        self.settings.set(Key.WINDOW_STATE, bytes(self.saveState().data()))
        self.settings.set(Key.SPLITTER_STATE, bytes(self.splitter.saveState().data()))
        self.settings.sync()

    def _threshold_changed(self, percent: int, save: bool = True) -> None:
        t = percent / 100.0
        self.session.threshold = t
        self.prob_chart.set_threshold(t)
        if save:
            self.settings.set(Key.THRESHOLD, t)
        self.list.viewport().update()
        if self.status_filter.currentIndex() == 1:
            self._apply_view()

    # ========================================================================================
    # Opening images

    def choose_folder(self) -> None:
        start = self.settings.get_str(Key.LAST_FOLDER)
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", start)
        if folder:
            self.open_folder(folder)

    def choose_files(self) -> None:
        start = self.settings.get_str(Key.LAST_FOLDER)
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", start, IMAGE_FILTER + ";;All files (*)")
        if files:
            self.open_files(files)

    def open_paths(self, paths: Iterable[str | Path]) -> None:
        """A single folder opens as a folder; anything else as a set of files."""
        paths = [Path(p) for p in paths]
        missing = [p for p in paths if not p.exists()]
        if missing:
            self._inform("Cannot open", "Not found: " + ", ".join(map(str, missing)))
            paths = [p for p in paths if p.exists()]
        if len(paths) == 1 and paths[0].is_dir():
            self.open_folder(paths[0])
        elif paths:
            recursive, names, threshold = (self.recursive_action.isChecked(), self._class_names(),
                                           self.session.threshold)
            self._open_in_background(
                lambda: ReviewSession.open_files(collect_paths(paths, recursive), names, threshold),
                f"Opening {len(paths)} items…", paths[0].absolute().parent)

    def open_folder(self, folder: str | Path, recursive: bool | None = None) -> None:
        """Lists the folder's images in the background (a network share can take a while) and
        then shows them; ``session_opened`` tells when."""
        recursive = self.recursive_action.isChecked() if recursive is None else recursive
        folder = Path(folder)
        names, threshold = self._class_names(), self.session.threshold
        self._open_in_background(lambda: ReviewSession.open_folder(folder, recursive, names, threshold),
                                 f"Opening {folder}…", folder.absolute())

    def open_files(self, paths: Iterable[str | Path]) -> None:
        paths = [Path(p) for p in paths]
        if not paths:
            return
        session = ReviewSession.open_files(paths, self._class_names(), self.session.threshold)
        self.settings.set(Key.LAST_FOLDER, str(paths[0].absolute().parent))
        self._set_session(session)

    def _open_in_background(self, make_session, message: str, last_folder: Path) -> None:
        self._open_token += 1
        token = self._open_token
        self.statusBar().showMessage(message)
        self.list.setCursor(Qt.CursorShape.BusyCursor)
        self._tasks.start(lambda progress, should_stop: make_session(),
                          done=lambda session, t=token: self._opened(t, session, last_folder),
                          failed=lambda msg, t=token: self._open_failed(t, msg))

    def _opened(self, token: int, session: ReviewSession, last_folder: Path) -> None:
        if token != self._open_token:
            return  # something else was opened meanwhile
        self.list.unsetCursor()
        self.statusBar().clearMessage()
        self.settings.set(Key.LAST_FOLDER, str(last_folder))
        self._set_session(session)
        if not len(session):
            self.statusBar().showMessage(f"No images (BMP, PNG, JPEG, TIFF) in {last_folder}", 8000)

    def _open_failed(self, token: int, message: str) -> None:
        if token == self._open_token:
            self.list.unsetCursor()
            self._inform("Cannot open", message)

    def add_files(self, paths: Iterable[str | Path]) -> list[int]:
        """Adds images to the session under review (e.g. camera snapshots); returns indices."""
        paths = [Path(p) for p in paths]
        if self.session.root is None or not len(self.session):
            self.open_files(paths)
            return list(range(len(self.session)))
        new = self.session.add_paths(paths)
        if new:
            self._enqueue(new)
            self._apply_view()
            self.statusBar().showMessage(f"Added {', '.join(p.name for p in paths[:3])}"
                                         + (" …" if len(paths) > 3 else ""), 5000)
        return new

    def _class_names(self) -> list[str]:
        return list(self.classifier.class_names) if self.classifier is not None else []

    def _set_session(self, session: ReviewSession) -> None:
        self.generation += 1
        if self._classify is not None:
            self._classify.queue.clear()
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
        if self._classifying:  # the previous session's progress
            self._classifying = False
            self.progress.hide()
        self.thumb_model.set_session(session, self.generation)
        self._apply_view()
        title = session.root if session.root is not None else ""
        self.setWindowTitle(f"{APP_TITLE} — {title}" if title else APP_TITLE)
        if session.journal is not None and session.journal.skipped_lines:
            self.statusBar().showMessage(f"{session.journal.path}: skipped "
                                         f"{session.journal.skipped_lines} damaged line(s)", 10000)
        if self.thumb_model.rowCount():
            self.list.setCurrentIndex(self.thumb_model.index(0))
        else:
            self.panel.show_message("No images here.")
        # queued from the event loop, so that the window lays out and paints the new folder
        # before the decoders start competing with it for Python's GIL
        gen = self.generation
        QTimer.singleShot(0, self, lambda: gen == self.generation and self._enqueue(range(len(session))))
        self.list.setFocus()
        self.session_opened.emit()

    # ========================================================================================
    # The model

    def load_model(self, path: str | Path) -> None:
        """Loads a bundle in the background; when it is ready, every image is classified again."""
        from ..engine import load_classifier

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
            done=lambda clf, t=token, p=path: t == self._load_token and self._set_classifier(clf, p),
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
            print(f"steel-inspector: {self._startup_note}", file=sys.stderr, flush=True)
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

    def _set_classifier(self, classifier, path: Path | None) -> None:
        self._stop_classifying()
        self._model_token += 1  # whatever the old model is still computing is dropped when it arrives
        self._shown_key = None
        self.classifier = classifier
        self.model_path = path
        self._inspect.classifier = classifier
        card = classifier.card or {}
        self.model_label.setText(f"{classifier.title} · {len(classifier.class_names)} classes")
        self.model_label.setToolTip(f"{path}\nclasses: {', '.join(classifier.class_names)}\n"
                                    f"input {classifier.input_size}×{classifier.input_size}")
        self.device_label.setText(f"device: {classifier.device}")
        self.session.set_model(classifier.class_names, str(card.get("name", "")),
                               str(card.get("version", "")))
        self._rebuild_class_widgets(list(classifier.class_names))
        self.panel.set_blocks(list(classifier.se_block_names))
        self.progress.hide()
        self.statusBar().showMessage(f"{classifier.title} ready on {classifier.device}", 5000)
        if self._startup_note:
            note, self._startup_note = self._startup_note, ""
            self.statusBar().showMessage(f"{note}: {classifier.title} ready on {classifier.device}",
                                         30000)
            self.model_label.setToolTip(f"{note}\n{self.model_label.toolTip()}")
        self._classify = ClassifyWorker(classifier, parent=self)
        self._classify.results.connect(self._on_results)
        self._classify.start()
        self._n_done = 0
        self._classifying = False
        self.thumb_model.items_changed(range(len(self.session)))
        self._apply_view()
        self._enqueue(range(len(self.session)))
        if self._current is not None:
            self._request_inspection(self._current)
        self.model_loaded.emit(classifier)

    def _stop_classifying(self) -> None:
        w, self._classify = self._classify, None
        if w is not None:
            w.results.disconnect(self._on_results)
            w.stop()
            w.wait()

    # ========================================================================================
    # Classification in the background

    def _enqueue(self, indices: Iterable[int]) -> None:
        if self._classify is None:
            return
        s, gen, tok = self.session, self.generation, self._model_token
        self._classify.queue.add(((gen, tok, i), s.items[i].path) for i in indices
                                 if s.items[i].probs is None and s.items[i].error is None)
        self._update_priority()
        self._show_progress()

    def _visible_rows(self) -> tuple[int, int]:
        """(first, last) row on screen, from the first visible cell and the grid's size."""
        vp = self.list.viewport().rect()
        first = self.list.indexAt(vp.topLeft() + QPoint(4, 4))
        start = first.row() if first.isValid() else 0
        if self.delegate.grid:
            cell = self.list.gridSize()
        else:
            cell = self.list.visualRect(first).size() if first.isValid() else QSize(300, 56)
        cols = max(1, vp.width() // max(1, cell.width())) if self.delegate.grid else 1
        rows = vp.height() // max(1, cell.height()) + 2
        return start, start + cols * rows - 1

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
        if self._classify is not None:
            self._classify.queue.prioritize((self.generation, self._model_token, i)
                                            for i in self.thumb_model.rows[first:last + 1])

    def _on_results(self, results: list[Result]) -> None:
        s = self.session
        changed = []
        for r in results:
            gen, tok, i = r.key
            if gen != self.generation or tok != self._model_token:
                continue  # another folder's, or the previous model's
            if not s.is_classified(i):
                self._n_done += 1
            if r.error is not None:
                s.set_error(i, r.error)
            else:
                s.set_prediction(i, r.probs)
            changed.append(i)
        if not changed:
            return
        visible = self._visible_rows() if self.thumb_model.rowCount() else None
        self.thumb_model.visible = visible
        self.thumb_model.items_changed(changed, visible)
        if self._current in changed:
            self._update_verdict_label()
        f = self._filter()
        if f.depends_on_predictions or self._sort() is not Sort.OPENED:
            if not self._view_timer.isActive():
                self._view_timer.start()
        self._show_progress()

    def _show_progress(self) -> None:
        n = len(self.session)
        if self.classifier is None or not n:
            return
        done = min(self._n_done, n)
        if done >= n:
            if self._classifying:
                self._classifying = False
                self.progress.hide()
                self.statusBar().showMessage(report.summary_text(self.session.summary()), 15000)
                self._update_counts()
                self.classification_done.emit()
            return
        if not self._classifying or self.progress.maximum() != n:
            self._classifying = True
            self.progress.setRange(0, n)
            self.progress.setFormat("classified %v of %m")
            self.progress.show()
        elif self._progress_clock.isValid() and self._progress_clock.elapsed() < 250:
            return  # a progress bar repaints at once: a few updates a second are enough
        self._progress_clock.start()
        self.progress.setValue(done)

    # ========================================================================================
    # Filters and sorting

    def _filter(self) -> Filter:
        extra = STATUS_FILTERS[max(0, self.status_filter.currentIndex())][1]
        return Filter(predicted_class=self.class_filter.currentData(), **extra)

    def _sort(self) -> Sort:
        return self.sort_combo.currentData() or Sort.OPENED

    def set_filter(self, status: str = "All images", predicted_class: str | None = None,
                   sort: Sort = Sort.OPENED) -> None:
        """Chooses a filter and sorting (as the toolbar's combos do)."""
        self.status_filter.setCurrentIndex([t for t, _ in STATUS_FILTERS].index(status))
        self.class_filter.setCurrentIndex(max(0, self.class_filter.findData(predicted_class)))
        self.sort_combo.setCurrentIndex(self.sort_combo.findData(sort))
        self._apply_view()

    def _apply_view(self) -> None:
        self._view_timer.stop()
        keep = self._current
        rows = self.session.view(self._filter(), self._sort())
        self.thumb_model.set_rows(rows)
        r = self.thumb_model.row_of(keep) if keep is not None else None
        if r is not None:
            ix = self.thumb_model.index(r)
            if self.list.currentIndex() != ix:
                self.list.selectionModel().setCurrentIndex(
                    ix, self.list.selectionModel().SelectionFlag.ClearAndSelect)
            self._scroll_to_current()
        elif rows and not self.list.currentIndex().isValid():
            self.list.setCurrentIndex(self.thumb_model.index(0))
        self._update_counts()
        self._priority_timer.start()

    def _update_counts(self) -> None:
        n, shown = len(self.session), self.thumb_model.rowCount()
        review = sum(1 for i in range(n) if self.session.needs_review(i)) if n <= 50000 else 0
        text = f"{shown} of {n} shown" if shown != n else f"{n} images"
        if review:
            text += f" · {review} need review"
        self.count_label.setText(text + "  ")

    def _scroll_to_current(self) -> None:
        ix = self.list.currentIndex()
        if ix.isValid():
            self.list.scrollTo(ix)

    # ========================================================================================
    # The selected image

    def current_index(self) -> int | None:
        """The session index of the image shown large."""
        return self._current

    def shown_index(self) -> int | None:
        """The session index whose image and explanation are on screen now."""
        if self._shown_key is None or self._shown_key[:2] != (self.generation, self._model_token):
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
        self.list.selectionModel().select(current, self.list.selectionModel().SelectionFlag.ClearAndSelect)
        self._update_verdict_label()
        self._request_inspection(idx)

    def _request_inspection(self, idx: int) -> None:
        self._inspect.request((self.generation, self._model_token, idx), self.session.items[idx].path)

    def _on_inspected(self, key, image, inspection, shape) -> None:
        gen, tok, idx = key
        if gen != self.generation or tok != self._model_token or idx != self._current:
            return
        s = self.session
        if inspection is not None and s.items[idx].probs is None and s.items[idx].error is None:
            s.set_prediction(idx, inspection.probs)  # the batch worker will agree
            self._n_done += 1
            self.thumb_model.item_changed(idx)
            self._show_progress()
        self._shown_key = key
        self.panel.show_image(image, inspection, shape, self._caption(idx, shape))
        self.prob_chart.set_values(None if inspection is None else inspection.probs)
        self._update_verdict_label()
        self.inspection_shown.emit(idx)

    def _on_inspect_failed(self, key, problem: str) -> None:
        gen, tok, idx = key
        if gen != self.generation or tok != self._model_token or idx != self._current:
            return
        self._shown_key = key
        self.panel.show_message(f"Cannot show this image:\n{problem}", str(self.session.items[idx].path))
        self.prob_chart.set_values(None)
        self.inspection_shown.emit(idx)

    def _caption(self, idx: int, shape) -> str:
        it = self.session.items[idx]
        return f"<b>{it.path.name}</b> &nbsp; {shape[1]}×{shape[0]} &nbsp; <span style='color:#666'>{it.path.parent}</span>"

    def _update_verdict_label(self) -> None:
        idx = self._current
        if idx is None:
            self.verdict_label.setText("Verdict: —")
            return
        s = self.session
        it = s.items[idx]
        pred = s.predicted_name(idx)
        if it.error:
            head = f"<span style='color:#C62828'>Cannot classify: {it.error}</span>"
        elif pred is None:
            head = "Classifying…"
        else:
            flag = " — <b style='color:#E69F00'>needs review</b>" if s.needs_review(idx) else ""
            head = f"Predicted <b>{pred}</b> ({it.confidence:.1%}){flag}"
        if it.verdict is None:
            verdict = "Verdict: <i>not reviewed</i>"
        elif it.verdict.label == UNSURE:
            verdict = "Verdict: <b>unsure</b>"
        elif s.is_overridden(idx):
            verdict = f"Verdict: <b style='color:#6A1B9A'>{it.verdict.label}</b> (overrides the prediction)"
        else:
            verdict = f"Verdict: <b style='color:#2E7D32'>{it.verdict.label}</b> ✓"
        self.verdict_label.setText(f"{head}<br>{verdict}")

    def _next_overlay(self) -> None:
        c = self.panel.source
        c.setCurrentIndex((c.currentIndex() + 1) % c.count())

    # ========================================================================================
    # Verdicts

    def set_verdict(self, label: str | None, advance: bool = True) -> bool:
        """Sets the shown image's true class (a class name, UNSURE, or None to clear); saved to
        the journal at once. Moves on to the next image when ``advance``."""
        idx = self._current
        if idx is None:
            return False
        try:
            self.session.set_verdict(idx, label)
        except JournalError as exc:
            self._inform("Verdict not saved", str(exc))
            return False
        self.thumb_model.item_changed(idx)
        self._update_verdict_label()
        if self._filter().unreviewed or self._filter().overridden:
            self._view_timer.start()
        if advance and label is not None:
            self._advance()
        return True

    def accept_prediction(self) -> bool:
        idx = self._current
        if idx is None:
            return False
        name = self.session.predicted_name(idx)
        if name is None:
            self.statusBar().showMessage("No prediction to accept yet", 3000)
            return False
        return self.set_verdict(name)

    def _advance(self) -> None:
        ix = self.list.currentIndex()
        if ix.isValid() and ix.row() + 1 < self.thumb_model.rowCount():
            self.list.setCurrentIndex(self.thumb_model.index(ix.row() + 1))

    # ========================================================================================
    # Export

    def _choose_export(self, kind: str) -> None:
        if not len(self.session):
            self._inform("Nothing to export", "Open a folder of images first.")
            return
        start = self.settings.get_str(Key.LAST_EXPORT_FOLDER) or str(self.session.root or "")
        name = f"{(self.session.root or Path('results')).name}-results.{kind}"
        path, _ = QFileDialog.getSaveFileName(self, f"Export results as {kind.upper()}",
                                              str(Path(start) / name), f"{kind.upper()} (*.{kind})")
        if path:
            self.export(path, kind)

    def export(self, path: str | Path, kind: str | None = None) -> Path | None:
        kind = kind or Path(path).suffix.lower().lstrip(".")
        try:
            out = (report.export_json if kind == "json" else report.export_csv)(self.session, path)
        except OSError as exc:
            self._inform("Export failed", f"{path}: {exc.strerror or exc}")
            return None
        self.settings.set(Key.LAST_EXPORT_FOLDER, str(Path(path).absolute().parent))
        self.statusBar().showMessage(f"Exported {len(self.session)} results to {out}", 8000)
        return out

    def show_summary(self) -> QDialog:
        header, rows = report.summary_table(self.session)
        d = QDialog(self)
        d.setWindowTitle("Summary")
        table = QTableWidget(len(rows), len(header))
        table.setHorizontalHeaderLabels(header)
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                text = "" if v is None else (f"{v:.1%}" if isinstance(v, float) and c > 0 and
                                              header[c] == "mean_confidence" else str(v))
                table.setItem(r, c, QTableWidgetItem(text))
        table.resizeColumnsToContents()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        save = buttons.addButton("Export summary as CSV…", QDialogButtonBox.ButtonRole.ActionRole)
        save.clicked.connect(lambda: self._export_summary(d))
        buttons.rejected.connect(d.reject)
        lay = QVBoxLayout(d)
        lay.addWidget(QLabel(report.summary_text(self.session.summary())))
        lay.addWidget(table)
        lay.addWidget(buttons)
        d.resize(900, 320)
        d.table = table
        d.show()
        self._keep(d)
        return d

    def _export_summary(self, parent) -> None:
        path, _ = QFileDialog.getSaveFileName(parent, "Export summary", "summary.csv", "CSV (*.csv)")
        if path:
            self.export_summary(path)

    def export_summary(self, path: str | Path) -> Path | None:
        """Writes the per-class summary as CSV; a failure is shown, naming the file."""
        try:
            out = report.export_summary_csv(self.session, path)
        except OSError as exc:
            self._inform("Export failed", f"{path}: {exc.strerror or exc}")
            return None
        self.statusBar().showMessage(f"Exported the summary to {out}", 8000)
        return out

    # ========================================================================================
    # Tools built elsewhere (imported lazily, so this window works before they exist)

    def open_camera(self):
        try:
            from .camera_window import CameraWindow
        except ImportError as exc:
            return self._unavailable("Live camera", exc)
        w = CameraWindow(classifier_provider=lambda: self.classifier, parent=self)
        w.snapshot_taken.connect(lambda path: self.add_files([path]))
        self._keep(w)
        w.show()
        return w

    def open_retrain(self):
        try:
            from .wizard import RetrainWizard
        except ImportError as exc:
            return self._unavailable("Retrain model", exc)
        w = RetrainWizard(current_bundle=self.model_path, verdicts=self.session.training_verdicts(),
                          parent=self)
        w.model_ready.connect(lambda path: self.load_model(path))
        self._keep(w)
        w.show()
        return w

    def open_models(self):
        try:
            from .model_manager import ModelManagerDialog
        except ImportError as exc:
            return self._unavailable("Models", exc)
        d = ModelManagerDialog(parent=self)
        d.model_selected.connect(lambda path: self.load_model(path))
        self._keep(d)
        d.show()
        return d

    def _unavailable(self, what: str, exc: Exception) -> None:
        self._inform(what, f"{what} is not available in this version ({exc}).")
        return None

    def _keep(self, w: QWidget) -> None:
        self._dialogs = [d for d in self._dialogs if d.isVisible()] + [w]

    def show_shortcuts(self) -> None:
        names = self._class_names()
        keys = "".join(f"<tr><td><b>{i + 1}</b></td><td>true class {n}</td></tr>" for i, n in enumerate(names[:9]))
        self._inform("Keyboard shortcuts", f"""<table cellpadding=3>
<tr><td><b>← → ↑ ↓</b></td><td>move between images</td></tr>{keys}
<tr><td><b>Enter</b></td><td>accept the prediction</td></tr>
<tr><td><b>U</b></td><td>unsure</td></tr>
<tr><td><b>Backspace</b></td><td>clear the verdict</td></tr>
<tr><td><b>A</b></td><td>next overlay (CAM, SE blocks, none)</td></tr>
<tr><td><b>F</b> / <b>Ctrl+1</b></td><td>fit / actual size; mouse wheel zooms, drag pans</td></tr>
<tr><td><b>Ctrl+O</b></td><td>open a folder</td></tr>
<tr><td><b>Ctrl+E</b></td><td>export results as CSV</td></tr>
<tr><td><b>Ctrl+L</b></td><td>live camera</td></tr></table>""")

    def _inform(self, title: str, text: str) -> QMessageBox:
        """A message that does not block (window-modal, so tests and workers carry on)."""
        box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.AutoText)
        box.open()
        self.statusBar().showMessage(f"{title}: {text.splitlines()[0] if text else ''}", 10000)
        self.last_message = (title, text)
        return box

    # ========================================================================================
    # Drag and drop, closing

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        if len(paths) == 1 and paths[0].is_dir():
            self.open_folder(paths[0])
        elif self.session.root is not None and len(self.session):
            self.add_files(collect_paths(paths, self.recursive_action.isChecked()))
        else:
            self.open_paths(paths)

    def closeEvent(self, event) -> None:  # noqa: N802
        self._save_layout()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stops every background thread (idempotent)."""
        self._view_timer.stop()
        self._priority_timer.stop()
        self._stop_classifying()
        for w in (self._thumbs, self._inspect):
            w.stop()
            w.wait()
        self._tasks.drain()


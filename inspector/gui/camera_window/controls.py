"""The camera window's controls: widgets, actions, saved settings, the source picker and the camera
list (a mixin of CameraWindow)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QFont, QKeySequence
from PySide6.QtWidgets import (QAbstractButton, QCheckBox, QComboBox, QFileDialog, QFormLayout,
                               QFrame, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QScrollArea, QSpinBox, QSplitter, QStackedWidget, QToolButton,
                               QVBoxLayout, QWidget)

from ... import camera as cam
from ...camera import Source, SourceKind, State
from ...report import UNKNOWN_RATE_TIP, unknown_rate_text
from ...tiles import MIN_TILE
from ..screen import resize_to_fit
from ..charts import STATUS_GAP_PX, UNKNOWN_COLOUR, ProbabilityChart, on_palette
from ..image_view import ColorBar
from ..keys import TypingKeys
from .settings import LABEL_KEYS
from .frame_view import FrameView

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# The window

KIND_LABELS = (("Camera", SourceKind.CAMERA), ("Stream URL", SourceKind.URL),
                ("Video file", SourceKind.FILE), ("Image sequence", SourceKind.SEQUENCE))
STATE_COLOURS = {State.LIVE: "#1b7f2a", State.CONNECTING: "#555", State.RECONNECTING: "#c25e00",
                  State.FAILED: "#c00000", State.FINISHED: "#555", State.STOPPED: "#555",
                  State.IDLE: "#555"}


class CameraControls:
    """The camera window's widgets and actions, its saved settings, the source picker and the
    camera list: the parts of :class:`CameraWindow` that arrange and read widgets (a mixin;
    the window's state lives in CameraWindow.__init__)."""

    # ---- construction ------------------------------------------------------------------
    def _build_ui(self) -> None:
        central = QWidget(self)
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 6, 6, 6)

        bar = QHBoxLayout()
        self.kind_combo = QComboBox()
        for text, kind in KIND_LABELS:
            self.kind_combo.addItem(text, kind.value)
        bar.addWidget(QLabel("Source:"))
        bar.addWidget(self.kind_combo)
        self.source_stack = QStackedWidget()
        # camera
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        self.camera_combo = QComboBox()
        self.camera_combo.setMinimumWidth(200)
        self.refresh_button = QToolButton()
        self.refresh_button.setText("Find cameras")
        self.refresh_button.clicked.connect(self.refresh_cameras)
        h.addWidget(self.camera_combo, 1)
        h.addWidget(self.refresh_button)
        self.source_stack.addWidget(w)
        # url
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("rtsp://user:password@host:554/stream  or  http://host/video.mjpg")
        self.url_edit.textEdited.connect(lambda _t: setattr(self, "_url_secret", ""))
        self.source_stack.addWidget(self.url_edit)
        # file
        self.file_edit, fw = self._path_row("Video file (.mp4, .avi, …)", self._browse_file)
        self.source_stack.addWidget(fw)
        # sequence
        self.seq_edit, sw = self._path_row("Folder of images, or a pattern such as /data/f_%04d.png",
                                           self._browse_folder)
        self.source_stack.addWidget(sw)
        bar.addWidget(self.source_stack, 1)
        self.open_button = QPushButton("Open")
        self.open_button.setDefault(True)
        self.open_button.clicked.connect(self.open_from_picker)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop_source)
        bar.addWidget(self.open_button)
        bar.addWidget(self.stop_button)
        outer.addLayout(bar)
        self.kind_combo.currentIndexChanged.connect(self.source_stack.setCurrentIndex)
        self.url_edit.returnPressed.connect(self.open_from_picker)
        self.file_edit.returnPressed.connect(self.open_from_picker)
        self.seq_edit.returnPressed.connect(self.open_from_picker)

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        lh = QHBoxLayout(left)
        lh.setContentsMargins(0, 0, 0, 0)
        self.view = FrameView()
        self.view.roi_drawn.connect(self.set_roi)
        lh.addWidget(self.view, 1)
        self.colour_bar = ColorBar()
        self.colour_bar.set_labels("high", "low")
        lh.addWidget(self.colour_bar)
        split.addWidget(left)

        panel = QWidget()
        panel.setMinimumWidth(300)
        pv = QVBoxLayout(panel)
        pv.setContentsMargins(6, 0, 8, 0)
        self.prediction_label = QLabel("—")
        f = QFont(self.prediction_label.font())
        f.setPointSizeF(f.pointSizeF() * 1.6)
        f.setBold(True)
        self.prediction_label.setFont(f)
        self.prediction_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.prediction_label.setWordWrap(True)   # "unknown - not a known defect (closest ...)"
        pv.addWidget(self.prediction_label)
        self.detail_label = QLabel("")
        self.detail_label.setWordWrap(True)
        pv.addWidget(self.detail_label)
        self.chart = ProbabilityChart()
        self.chart.setMinimumHeight(190)
        self.chart.setMaximumHeight(220)   # in the scrolling panel it would take its size hint
        pv.addWidget(self.chart)

        box = QGroupBox("What the model sees")
        form = QFormLayout(box)
        self.overlay_check = QCheckBox("Attention overlay")
        self.overlay_combo = QComboBox()
        row = QHBoxLayout()
        row.addWidget(self.overlay_check)
        row.addWidget(self.overlay_combo, 1)
        form.addRow(row)
        self.tile_check = QCheckBox("Tiles of")
        self.tile_spin = QSpinBox()
        self.tile_spin.setRange(MIN_TILE, 4096)
        self.tile_spin.setSuffix(" px")
        self.tile_spin.setKeyboardTracking(False)   # "1024" typed: no live tiles at 102 first
        self.tile_spin.setToolTip("Tile side in frame pixels (default: the scale the model was trained at, "
                                 "its training images' side)")
        row = QHBoxLayout()
        row.addWidget(self.tile_check)
        row.addWidget(self.tile_spin, 1)
        form.addRow(row)
        self.square_check = QCheckBox("Square region (drag on the frame)")
        self.clear_roi_button = QPushButton("Whole frame")
        self.clear_roi_button.setToolTip("Forget the region of interest: classify the whole frame")
        self.clear_roi_button.clicked.connect(self.clear_roi)
        row = QHBoxLayout()
        row.addWidget(self.square_check, 1)
        row.addWidget(self.clear_roi_button)
        form.addRow(row)
        self.roi_label = QLabel("Region: whole frame")
        self.roi_label.setWordWrap(True)   # "... (drag on the frame to choose one)" in full
        form.addRow(self.roi_label)
        pv.addWidget(box)

        box = QGroupBox("Live")
        lv = QVBoxLayout(box)
        self.stats_label = QLabel("")
        self.stats_label.setTextFormat(Qt.TextFormat.PlainText)
        lv.addWidget(self.stats_label)
        row = QHBoxLayout()
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self.set_paused)
        self.snapshot_button = QPushButton("Snapshot")
        self.snapshot_button.clicked.connect(self.snapshot)
        row.addWidget(self.pause_button)
        row.addWidget(self.snapshot_button)
        lv.addLayout(row)
        self.roi_only_check = QCheckBox("Save the region only (what the model sees)")
        lv.addWidget(self.roi_only_check)
        pv.addWidget(box)

        box = QGroupBox("Collect training images")
        cv = QVBoxLayout(box)
        row = QHBoxLayout()
        self.data_folder_label = QLabel("")
        self.data_folder_label.setWordWrap(True)
        choose = QPushButton("Folder…")
        choose.clicked.connect(self._choose_data_folder)
        row.addWidget(self.data_folder_label, 1)
        row.addWidget(choose)
        cv.addLayout(row)
        self.collect_hint = QLabel("")
        self.collect_hint.setWordWrap(True)
        self.collect_hint.setStyleSheet(f"color: {on_palette('#555', self.collect_hint.palette())}")
        cv.addWidget(self.collect_hint)
        pv.addWidget(box)
        pv.addStretch(1)
        # a short window scrolls the panel instead of squeezing its boxes over each other
        side = QScrollArea()
        side.setWidgetResizable(True)
        side.setFrameShape(QFrame.Shape.NoFrame)
        side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        side.setWidget(panel)
        side.setMinimumWidth(max(panel.minimumWidth(), panel.minimumSizeHint().width())
                             + side.verticalScrollBar().sizeHint().width())
        split.addWidget(side)
        split.setStretchFactor(0, 1)   # a wider window widens the frame, not the panel
        split.setStretchFactor(1, 0)
        split.setSizes([840, side.minimumWidth()])
        outer.addWidget(split, 1)
        self.setCentralWidget(central)

        self.state_label = QLabel("")
        # permanent: a message ("Snapshot saved") hid a plain status-bar widget for 8 s, the
        # stream's state with it
        self.statusBar().addPermanentWidget(self.state_label)
        self.unknown_label = QLabel("")
        self.unknown_label.setToolTip(UNKNOWN_RATE_TIP)
        self.unknown_label.setContentsMargins(STATUS_GAP_PX, 0, 0, 0)   # apart from messages
        self.statusBar().addPermanentWidget(self.unknown_label)
        self.overlay_check.toggled.connect(self._config_changed)
        self.overlay_combo.currentIndexChanged.connect(self._config_changed)
        self.tile_check.toggled.connect(self._config_changed)
        self.tile_spin.valueChanged.connect(self._tile_spin_changed)
        self.square_check.toggled.connect(self._square_changed)
        self._update_data_folder_label()
        resize_to_fit(self, 1180, 720)

    def _show_verdict(self, result) -> None:
        """The live label: the class and confidence, or "unknown - not a known defect" in its
        own colour (a tiled frame's is its deciding tile's, ``LiveResult.winner``)."""
        self.prediction_label.setText(result.verdict_text)
        self.prediction_label.setStyleSheet(
            "" if result.known else f"color: {on_palette(UNKNOWN_COLOUR, self.prediction_label.palette())}")

    def _show_unknown_rate(self) -> None:
        """The share of unknown verdicts in the live stream against the model's validation rate."""
        model = self._model
        if model is None:
            self.unknown_label.setText("")
            return
        flagged, judged = self._unknown_rate.counts
        self.unknown_label.setText(unknown_rate_text(
            flagged, judged, getattr(model, "validation_unknown_rate", None),
            bool(getattr(model, "has_unknown_detection", False))))

    def _path_row(self, placeholder: str, browse: Callable[[], None]) -> tuple[QLineEdit, QWidget]:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        button = QToolButton()
        button.setText("Browse…")
        button.clicked.connect(browse)
        h.addWidget(edit, 1)
        h.addWidget(button)
        return edit, w

    def _build_actions(self) -> None:
        menu = self.menuBar().addMenu("&Source")
        a = QAction("&Open", self, shortcut=QKeySequence("Ctrl+O"), triggered=self.open_from_picker)
        menu.addAction(a)
        a = QAction("S&top", self, triggered=self.stop_source)
        menu.addAction(a)
        a = QAction("&Find cameras", self, triggered=self.refresh_cameras)
        menu.addAction(a)
        menu.addSeparator()
        close = QAction("&Close", self, triggered=self.close)
        # every key of the platform's Close (Ctrl+W and Ctrl+F4 here), not the first alone
        close.setShortcuts(QKeySequence.keyBindings(QKeySequence.StandardKey.Close))
        menu.addAction(close)
        self.addAction(close)
        menu = self.menuBar().addMenu("&Frame")
        self.pause_action = QAction("&Pause", self, shortcut=QKeySequence("Space"), checkable=True)
        self.pause_action.toggled.connect(self.pause_button.setChecked)
        self.pause_button.toggled.connect(self.pause_action.setChecked)
        menu.addAction(self.pause_action)
        self.snapshot_action = QAction("&Snapshot for review", self, shortcut=QKeySequence("S"),
                                       triggered=self.snapshot)
        self.snapshot_action.setAutoRepeat(False)   # a held key takes one frame, not 30 a second
        menu.addAction(self.snapshot_action)
        menu.addAction(QAction("&Whole frame (forget region)", self, triggered=self.clear_roi))
        self.overlay_action = QAction("Attention &overlay", self, shortcut=QKeySequence("O"),
                                      checkable=True)
        self.overlay_action.toggled.connect(self.overlay_check.setChecked)
        self.overlay_check.toggled.connect(self.overlay_action.setChecked)
        menu.addAction(self.overlay_action)
        self.collect_menu = self.menuBar().addMenu("&Collect")
        self.collect_menu.addAction(QAction("Choose data &folder…", self,
                                            triggered=self._choose_data_folder))
        self.collect_menu.addSeparator()
        self.label_actions: list[QAction] = []
        for i in range(LABEL_KEYS):
            a = QAction(f"Save as class {i + 1}", self)
            a.setShortcuts([QKeySequence(f"Shift+{i + 1}"), QKeySequence(f"Ctrl+Shift+{i + 1}")])
            a.triggered.connect(lambda _=False, k=i: self.save_labelled(k))
            a.setAutoRepeat(False)
            self.collect_menu.addAction(a)
            self.addAction(a)
            self.label_actions.append(a)
        for a in (self.pause_action, self.snapshot_action, self.overlay_action):
            self.addAction(a)
        # Space on a focused button, check box or list presses it, as everywhere else, instead
        # of pausing (the Stop button paused, the overlay box stayed as it was)
        self._space_keys = TypingKeys(self, keys=(Qt.Key.Key_Space,))
        self._space_keys.watch(*self.findChildren(QAbstractButton), *self.findChildren(QComboBox))
        for button, tip in ((self.pause_button, "Freeze the view on the current frame (Space)"),
                            (self.snapshot_button, "Save the current frame and add it to the "
                                                   "review window (S)"),
                            (self.open_button, "Open the chosen source (Ctrl+O)"),
                            (self.overlay_check, "Show the model's attention over the frame (O)")):
            button.setToolTip(tip)

    def _restore_settings(self) -> None:
        s = self._settings
        kind = str(s.get("kind", SourceKind.CAMERA.value))
        for i, (_t, k) in enumerate(KIND_LABELS):
            if k.value == kind:
                self.kind_combo.setCurrentIndex(i)
                self.source_stack.setCurrentIndex(i)
        self.url_edit.setText(str(s.get("url", "") or ""))
        self.file_edit.setText(str(s.get("file", "") or ""))
        self.seq_edit.setText(str(s.get("sequence", "") or ""))
        self.overlay_check.setChecked(s.get_bool("overlay", True))
        self._saved_overlay_mode = str(s.get("overlay_mode", cam.OVERLAY_CAM))
        self.tile_check.setChecked(s.get_bool("tiles", False))
        saved_tile = s.get_int("tile_size", 0)
        if saved_tile:
            self._tile_user_set = True
            self.tile_spin.setValue(saved_tile)
        self.square_check.setChecked(s.get_bool("square", True))
        self.roi_only_check.setChecked(s.get_bool("roi_only", True))
        geometry = s.get("geometry", None)
        if geometry is not None:
            try:
                self.restoreGeometry(geometry)
            except TypeError:
                pass

    def _save_settings(self) -> None:
        s = self._settings
        s.set("kind", self._kind().value)
        url = self.current_url()
        if url and cam.mask_url(url) == url:  # never write a password into the settings file
            s.set("url", url)
        s.set("file", self.file_edit.text())
        s.set("sequence", self.seq_edit.text())
        s.set("overlay", self.overlay_check.isChecked())
        s.set("overlay_mode", self.overlay_combo.currentData() or cam.OVERLAY_CAM)
        s.set("tiles", self.tile_check.isChecked())
        if self._tile_user_set:
            s.set("tile_size", self.tile_spin.value())
        s.set("square", self.square_check.isChecked())
        s.set("roi_only", self.roi_only_check.isChecked())
        s.set("data_folder", self._data_folder)
        s.set("geometry", self.saveGeometry())
        s.sync()

    # ---- sources -------------------------------------------------------------------------
    def current_url(self) -> str:
        text = self.url_edit.text().strip()
        if self._url_secret and text == cam.mask_url(self._url_secret):
            return self._url_secret
        return text

    def _kind(self) -> SourceKind:
        return SourceKind(self.kind_combo.currentData())

    def source_from_picker(self) -> Source | None:
        kind = self._kind()
        if kind is SourceKind.CAMERA:
            index = self.camera_combo.currentData()
            if index is None:
                self._show_message("No camera to open: none was found (Find cameras to look again).")
                return None
            return Source.camera(int(index))
        if kind is SourceKind.URL:
            url = self.current_url()
            if not url:
                self._show_message("Type a stream URL first.")
                return None
            problem = cam.url_problem(url)
            if problem:
                self._show_message(problem)
                return None
            return Source.url(url)
        edit = self.file_edit if kind is SourceKind.FILE else self.seq_edit
        text = edit.text().strip()
        if not text:
            self._show_message("Choose a video file first." if kind is SourceKind.FILE
                               else "Choose a folder of images or a file pattern first.")
            return None
        return Source.file(text) if kind is SourceKind.FILE else Source.sequence(text)

    def open_from_picker(self) -> None:
        source = self.source_from_picker()
        if source is not None:
            self.open_source(source)
    def _show_in_picker(self, source: Source) -> None:
        """The source bar shows what is open, also when it was opened from code or settings."""
        at = self.kind_combo.findData(source.kind.value)
        if at >= 0:
            self.kind_combo.setCurrentIndex(at)
        if source.kind is SourceKind.URL:
            self._url_secret = str(source.target)
            self.url_edit.setText(source.display)   # the field never shows the password
        elif source.kind is SourceKind.FILE:
            self.file_edit.setText(str(source.target))
        elif source.kind is SourceKind.SEQUENCE:
            self.seq_edit.setText(str(source.target))
        else:
            at = self.camera_combo.findData(int(source.target))
            if at < 0:
                self.camera_combo.addItem(f"Camera {source.target}", int(source.target))
                at = self.camera_combo.count() - 1
            self.camera_combo.setCurrentIndex(at)

    # ---- camera list -----------------------------------------------------------------------
    def refresh_cameras(self) -> None:
        """Probes camera indices 0-9 in a background task; fills the camera list."""
        if self._probe_task is not None and not self._probe_task.finished.is_set():
            return
        self.camera_combo.clear()
        self.camera_combo.addItem("Looking for cameras…", None)
        self.refresh_button.setEnabled(False)
        probe = self._probe

        def probe_failed(message: str) -> None:
            log.warning("camera probe failed: %s", message)
            self._on_cameras_found([])

        self._probe_task = self._tasks.start(lambda _progress, _should_stop: list(probe()),
                                             done=self._on_cameras_found, failed=probe_failed)

    def _on_cameras_found(self, found: list) -> None:
        self.refresh_button.setEnabled(True)
        self.camera_combo.clear()
        if not found:
            self.camera_combo.addItem("No camera found", None)
            return
        saved = self._settings.get_int("camera_index", -1)
        for info in found:
            self.camera_combo.addItem(info.label, info.index)
        idx = self.camera_combo.findData(saved)
        if idx >= 0:
            self.camera_combo.setCurrentIndex(idx)

    def camera_indices(self) -> list[int]:
        return [self.camera_combo.itemData(i) for i in range(self.camera_combo.count())
                if self.camera_combo.itemData(i) is not None]

    def set_data_folder(self, folder: str | Path) -> None:
        """The labelled data folder (one sub-folder per class) Shift+1..6 save into."""
        self._data_folder = str(folder)
        self._settings.set("data_folder", self._data_folder)
        self._update_data_folder_label()

    def _update_data_folder_label(self) -> None:
        self.data_folder_label.setText(self._data_folder or "No data folder chosen")

    def _choose_data_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Labelled data folder (one sub-folder per "
                                                  "class)", self._data_folder)
        if folder:
            self.set_data_folder(folder)

    # ---- browsing -----------------------------------------------------------------------------
    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Video file", self.file_edit.text(),
                                              "Videos (*.mp4 *.avi *.mov *.mkv *.mjpg *.m4v);;"
                                              "All files (*)")
        if path:
            self.file_edit.setText(path)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of images", self.seq_edit.text())
        if path:
            self.seq_edit.setText(path)

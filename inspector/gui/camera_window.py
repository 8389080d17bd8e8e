"""The live camera window: pick a source (camera, stream URL, video file, image sequence), draw a
region of interest, and watch it classified live with the class-probability bars and an optional
attention overlay; pause, take snapshots for review, or file frames under a class for retraining.

Everything that takes time runs elsewhere: :class:`inspector.camera.FrameGrabber` reads the source
in its own threads and keeps only the newest frame; one :class:`InferenceThread` (a QThread)
analyses newest frames one at a time and keeps only its newest result for the window, which it
announces by signal (results never queue up behind a busy GUI thread). This module only arranges
widgets and forwards signals.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QFont, QImage, QKeySequence, QPainter, QPen
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QFileDialog, QFormLayout, QFrame,
                               QGroupBox, QHBoxLayout, QLabel, QLineEdit, QMainWindow, QPushButton,
                               QScrollArea, QSizePolicy, QSpinBox, QSplitter, QStackedWidget,
                               QToolButton, QVBoxLayout, QWidget)

from .. import camera as cam
from ..camera import (CameraInfo, Frame, FrameGrabber, LiveConfig, LiveResult, LiveStats,
                      ReconnectPolicy, Roi, Source, SourceKind, State, StreamStatus)
from .charts import ProbabilityChart, class_colour
from .image_view import ColorBar, colorize
from .settings import Settings, SettingsGroup
from .workers import qimage_from_array

log = logging.getLogger(__name__)

DISPLAY_INTERVAL_MS = 30   # newest frame to the screen at most ~33 times a second
STATS_INTERVAL_MS = 250
OVERLAY_OPACITY = 0.5
MIN_ROI_SIDE = 8           # a drag smaller than this (frame pixels) is a click, not a ROI
LABEL_KEYS = 6             # Shift+1 .. Shift+6 file the frame under class 1..6


# ---------------------------------------------------------------------------------------------
# Settings: the app's INI file, under a "camera/" group (per-source keys are dynamic, which the
# app's Key enum does not cover).

def camera_settings() -> SettingsGroup:
    return Settings().group("camera")


def roi_key(source: Source) -> str:
    """The settings key of a source's region of interest (a hash: URLs may hold passwords)."""
    return "roi/" + hashlib.sha1(source.key.encode("utf-8")).hexdigest()[:16]


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
        self.model: Any = None               # set from the GUI thread; read here
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


# ---------------------------------------------------------------------------------------------
# The frame view

class FrameView(QWidget):
    """The live frame fitted into the widget, the ROI (drag with the left button to draw it),
    the tiles with their labels, and the attention overlay over the region it belongs to."""

    roi_drawn = Signal(object)   # Roi in frame pixels

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(QSize(360, 270))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(False)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self._image: QImage | None = None
        self._size = (0, 0)                       # frame width, height
        self.roi: Roi | None = None
        self.square = True
        self.result: LiveResult | None = None
        self.overlay: QImage | None = None
        self.show_overlay = True
        self.message = "No source open"
        self._drag: tuple[QPointF, QPointF] | None = None

    # -- data ----------------------------------------------------------------------------
    def set_frame(self, image: np.ndarray | None) -> None:
        if image is None:
            self._image, self._size = None, (0, 0)
        else:
            self._image = qimage_from_array(image)
            self._size = (int(image.shape[1]), int(image.shape[0]))
        self.update()

    def frame_size(self) -> tuple[int, int]:
        return self._size

    def set_result(self, result: LiveResult | None, overlay: QImage | None) -> None:
        self.result, self.overlay = result, overlay
        self.update()

    def set_message(self, text: str) -> None:
        self.message = text
        self.update()

    # -- geometry ------------------------------------------------------------------------
    def _target(self) -> QRectF:
        w, h = self._size
        if not w or not h:
            return QRectF()
        s = min(self.width() / w, self.height() / h)
        return QRectF((self.width() - w * s) / 2, (self.height() - h * s) / 2, w * s, h * s)

    def _to_frame(self, p: QPointF) -> QPointF:
        t = self._target()
        s = t.width() / self._size[0]
        x = min(max((p.x() - t.x()) / s, 0.0), self._size[0])
        y = min(max((p.y() - t.y()) / s, 0.0), self._size[1])
        return QPointF(x, y)

    def _to_widget(self, roi: Roi) -> QRectF:
        t = self._target()
        s = t.width() / self._size[0] if self._size[0] else 1.0
        return QRectF(t.x() + roi.x * s, t.y() + roi.y * s, roi.w * s, roi.h * s)

    # -- mouse ---------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt)
        if event.button() == Qt.MouseButton.LeftButton and self._image is not None:
            p = self._to_frame(event.position())
            self._drag = (p, p)
            self.update()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._drag is not None:
            self._drag = (self._drag[0], self._to_frame(event.position()))
            self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._drag is None or event.button() != Qt.MouseButton.LeftButton:
            return
        a, _ = self._drag
        b = self._to_frame(event.position())
        self._drag = None
        roi = Roi.from_points(a.x(), a.y(), b.x(), b.y(), square=self.square)
        roi = roi.clamp(*self._size)
        if roi is not None and roi.w >= MIN_ROI_SIDE and roi.h >= MIN_ROI_SIDE:
            self.roi_drawn.emit(roi)
        self.update()

    # -- painting ------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#202020"))
        if self._image is None:
            p.setPen(QColor("#d0d0d0"))
            p.drawText(self.rect().adjusted(12, 12, -12, -12),
                       Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
            p.end()
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(self._target(), self._image)
        res = self.result
        if res is not None and self.overlay is not None and self.show_overlay:
            p.setOpacity(OVERLAY_OPACITY)
            p.drawImage(self._to_widget(res.roi), self.overlay)
            p.setOpacity(1.0)
        if res is not None and len(res.tiles) > 1:
            self._paint_tiles(p, res)
        if self.roi is not None:
            pen = QPen(QColor("#ffd400"), 2, Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(self._to_widget(self.roi))
        if res is not None and len(res.tiles) == 1:
            self._paint_tag(p, self._to_widget(res.roi), res.label, res.label_name,
                            res.confidence, above=True)
        if self._drag is not None:
            a, b = self._drag
            r = Roi.from_points(a.x(), a.y(), b.x(), b.y(), square=self.square)
            p.setPen(QPen(QColor("#00e5ff"), 2, Qt.PenStyle.DashLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(self._to_widget(r))
        p.end()

    def _paint_tiles(self, p: QPainter, res: LiveResult) -> None:
        labels = res.tile_labels
        for t, label, probs in zip(res.tiles, labels, res.tile_probs):
            r = self._to_widget(t)
            colour = class_colour(label)
            p.setPen(QPen(colour, 1.5))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(r.adjusted(1, 1, -1, -1))
            name = res.class_names[label] if label < len(res.class_names) else str(label)
            self._paint_tag(p, r, label, name, float(probs[label]), above=False)

    def _paint_tag(self, p: QPainter, r: QRectF, label: int, name: str, conf: float,
                   above: bool) -> None:
        font = QFont(p.font())
        font.setPointSizeF(8.5)
        p.setFont(font)
        fm = p.fontMetrics()
        text = f"{name} {conf:.0%}"
        if fm.horizontalAdvance(text) + 6 > r.width() and not above:
            text = f"{name[:3]} {conf:.0%}"
        tw, th = fm.horizontalAdvance(text) + 6, fm.height() + 2
        y = r.top() - th if above and r.top() - th >= 0 else r.top() + 1
        box = QRectF(r.left() + (0 if above else 1), y, tw, th)
        colour = QColor(class_colour(label))
        colour.setAlpha(220)
        p.fillRect(box, colour)
        p.setPen(QColor("black"))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)


# ---------------------------------------------------------------------------------------------
# The window

_KIND_LABELS = (("Camera", SourceKind.CAMERA), ("Stream URL", SourceKind.URL),
                ("Video file", SourceKind.FILE), ("Image sequence", SourceKind.SEQUENCE))
_STATE_COLOURS = {State.LIVE: "#1b7f2a", State.CONNECTING: "#555", State.RECONNECTING: "#c25e00",
                  State.FAILED: "#c00000", State.FINISHED: "#555", State.STOPPED: "#555",
                  State.IDLE: "#555"}


class CameraWindow(QMainWindow):
    """Live classification of a camera feed.

    ``classifier_provider`` returns the app's current Classifier (or None while none is loaded);
    it is asked again every few hundred milliseconds, so a model switched in the main window is
    picked up. ``snapshot_taken(path)`` reports each snapshot PNG for the review list.
    ``capture_factory``, ``policy`` and ``camera_probe`` exist for tests and special set-ups.
    """

    snapshot_taken = Signal(str)
    sample_saved = Signal(str, str)            # path, class name (labelled data folder)
    result_ready = Signal(object)              # LiveResult, after the window has shown it
    status_changed = Signal(object)            # StreamStatus
    _grabber_status = Signal(object, object)   # (grabber, StreamStatus) from the grabber thread
    _cameras_found = Signal(list)

    def __init__(self, classifier_provider: Callable[[], Any], parent=None, *,
                 capture_factory: cam.CaptureFactory | None = None,
                 policy: ReconnectPolicy | None = None,
                 camera_probe: Callable[[], list[CameraInfo]] | None = None):
        super().__init__(parent)
        self.setWindowTitle("Live camera — Steel Inspector")
        self._provider = classifier_provider
        self._factory = capture_factory
        self._policy = policy or ReconnectPolicy()
        self._probe = camera_probe or cam.probe_cameras
        self._settings = camera_settings()
        self._model: Any = None
        self._model_known = False
        self._source: Source | None = None
        self._grabber: FrameGrabber | None = None
        self._worker: InferenceThread | None = None
        self._old_workers: list[InferenceThread] = []
        self._config = LiveConfig()
        self._paused = False
        self._shown: Frame | None = None          # the frame on screen
        self._result: LiveResult | None = None
        self._stats = LiveStats()
        self._status = StreamStatus(State.IDLE, "No source open")
        self._pending_roi = False                # restore the saved ROI at the first frame
        self._roi_unsaved = False                # a ROI set before the first frame
        self._probe_thread: threading.Thread | None = None
        self._url_secret = ""                    # the URL as typed (the field shows it masked)
        self._data_folder = str(self._settings.get("data_folder", "") or "")
        self._tile_user_set = False
        self._tile_note = None                    # (tile, w, h, used) last said in the status bar
        colorize(np.zeros((1, 1), np.float32))   # build the colour table on this thread

        self._build_ui()
        self._build_actions()
        self._restore_settings()
        self._grabber_status.connect(self._on_grabber_status)
        self._cameras_found.connect(self._on_cameras_found)

        self._display_timer = QTimer(self)
        self._display_timer.setInterval(DISPLAY_INTERVAL_MS)
        self._display_timer.timeout.connect(self._show_newest)
        self._display_timer.start()
        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(STATS_INTERVAL_MS)
        self._stats_timer.timeout.connect(self._tick)
        self._stats_timer.start()
        self._refresh_model()
        self.refresh_cameras()
        app = QApplication.instance()
        if app is not None:  # the app quitting with this window open still ends its threads
            app.aboutToQuit.connect(self.stop_source)

    # ---- construction ------------------------------------------------------------------
    def _build_ui(self) -> None:
        central = QWidget(self)
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 6, 6, 6)

        bar = QHBoxLayout()
        self.kind_combo = QComboBox()
        for text, kind in _KIND_LABELS:
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
        self.tile_spin.setRange(16, 4096)
        self.tile_spin.setSuffix(" px")
        self.tile_spin.setToolTip("Tile side in frame pixels (default: the model's input size)")
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
        self.collect_hint.setStyleSheet("color: #555")
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
        self.statusBar().addWidget(self.state_label, 1)
        self.overlay_check.toggled.connect(self._config_changed)
        self.overlay_combo.currentIndexChanged.connect(self._config_changed)
        self.tile_check.toggled.connect(self._config_changed)
        self.tile_spin.valueChanged.connect(self._tile_spin_changed)
        self.square_check.toggled.connect(self._square_changed)
        self._update_data_folder_label()
        self.resize(1180, 720)

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
        menu.addAction(QAction("&Close", self, shortcut=QKeySequence.StandardKey.Close,
                               triggered=self.close))
        menu = self.menuBar().addMenu("&Frame")
        self.pause_action = QAction("&Pause", self, shortcut=QKeySequence("Space"), checkable=True)
        self.pause_action.toggled.connect(self.pause_button.setChecked)
        self.pause_button.toggled.connect(self.pause_action.setChecked)
        menu.addAction(self.pause_action)
        self.snapshot_action = QAction("&Snapshot for review", self, shortcut=QKeySequence("S"),
                                       triggered=self.snapshot)
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
            self.collect_menu.addAction(a)
            self.addAction(a)
            self.label_actions.append(a)
        for a in (self.pause_action, self.snapshot_action, self.overlay_action):
            self.addAction(a)

    def _restore_settings(self) -> None:
        s = self._settings
        kind = str(s.get("kind", SourceKind.CAMERA.value))
        for i, (_t, k) in enumerate(_KIND_LABELS):
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

    # ---- model ---------------------------------------------------------------------------
    def _refresh_model(self) -> None:
        try:
            model = self._provider()
        except Exception:  # noqa: BLE001 - the provider belongs to someone else
            log.exception("classifier provider failed")
            model = None
        if model is self._model and self._model_known:
            return
        self._model, self._model_known = model, True
        if self._worker is not None:
            self._worker.model = model
        if self._grabber is not None:  # without a model nothing is taken: nothing is dropped
            self._grabber.counting_drops = not self._paused and model is not None
        names = list(getattr(model, "class_names", []) or [])
        self.chart.set_classes(names)
        self._result = None
        self.view.set_result(None, None)
        current = self.overlay_combo.currentData() or self._saved_overlay_mode
        self.overlay_combo.blockSignals(True)
        self.overlay_combo.clear()
        self.overlay_combo.addItem("Class activation map", cam.OVERLAY_CAM)
        for name in (getattr(model, "se_block_names", []) or []):
            self.overlay_combo.addItem(f"SE block {name[2:]} feature map", name)
        idx = max(0, self.overlay_combo.findData(current))
        self.overlay_combo.setCurrentIndex(idx)
        self.overlay_combo.blockSignals(False)
        if model is not None and not self._tile_user_set:
            self.tile_spin.blockSignals(True)
            self.tile_spin.setValue(int(model.input_size))
            self.tile_spin.blockSignals(False)
        for i, a in enumerate(self.label_actions):
            if i < len(names):
                a.setText(f"Save as {names[i]}")
                a.setEnabled(True)
            else:
                a.setText(f"Save as class {i + 1}")
                a.setEnabled(False)
        keys = ", ".join(f"Shift+{i + 1} {n}" for i, n in enumerate(names[:LABEL_KEYS]))
        self.collect_hint.setText(f"Keys file the frame under a class: {keys}" if names else
                                  "Load a model to file frames under its classes.")
        if model is None:
            self.prediction_label.setText("No model")
            self.detail_label.setText("Load a model in the main window; the feed is shown meanwhile.")
        else:
            self.prediction_label.setText("—")
            self.detail_label.setText(f"{getattr(model, 'title', 'model')} · input "
                                      f"{model.input_size}×{model.input_size}")
        self._config_changed()

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
            if "://" not in url:
                self._show_message(f"{cam.mask_url(url)}: not a URL (it should start with rtsp:// "
                                   f"or http://).")
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

    def open_source(self, source: Source) -> None:
        """Stops the current source (if any) and starts reading ``source``."""
        self.stop_source()
        self._show_in_picker(source)
        self._source = source
        self._stats = LiveStats()
        self._shown = None
        self._result = None
        self._pending_roi = True
        self._roi_unsaved = False
        self.view.roi = None
        self.view.set_result(None, None)
        self.view.set_frame(None)
        self.view.set_message(f"Opening {source.display}…")
        self._config = replace(self._config, roi=None)
        holder: list[FrameGrabber] = []
        grabber = FrameGrabber(source, factory=self._factory, policy=self._policy,
                               on_status=lambda st: self._grabber_status.emit(holder[0], st))
        holder.append(grabber)
        worker = InferenceThread(grabber)  # no Qt parent: only stop_source() ends it
        worker.model = self._model
        worker.config = self._config
        worker.paused = self._paused
        grabber.counting_drops = not self._paused and self._model is not None
        worker.result_ready.connect(self._on_result)
        worker.failed.connect(self._on_analysis_failed)
        self._grabber, self._worker = grabber, worker
        grabber.start()
        worker.start()
        self.setWindowTitle(f"Live camera — {source.display} — Steel Inspector")
        self._config_changed()

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

    def stop_source(self) -> None:
        """Stops reading and analysing; waits for the threads (a reader stuck inside a camera
        driver is left to finish on its own: it holds nothing of this window)."""
        worker, grabber = self._worker, self._grabber
        self._worker = self._grabber = None
        if worker is not None:
            worker.stop()
        if grabber is not None:
            grabber.stop()
        if worker is not None:
            if not worker.wait(5000):
                log.warning("the live analysis did not stop within 5 s")
            self._old_workers.append(worker)  # keep the wrapper until its queued results drain
            self._prune_old_workers()
        if grabber is not None:
            if not grabber.join(3.0):
                log.warning("%s: a reader thread is still inside the driver; left behind",
                            grabber.source.display)
        if self._source is not None and self._status.state not in (State.FAILED, State.FINISHED):
            self._set_status(StreamStatus(State.STOPPED, f"{self._source.display}: stopped"))

    def _prune_old_workers(self) -> None:
        """Keeps the last few stopped workers (their queued results may still arrive) and any
        that has not finished yet (destroying a running QThread aborts the program)."""
        old = self._old_workers
        self._old_workers = [w for w in old[:-4] if w.isRunning()] + old[-4:]

    # ---- camera list -----------------------------------------------------------------------
    def refresh_cameras(self) -> None:
        """Probes camera indices 0-9 in a background thread; fills the camera list."""
        if self._probe_thread is not None and self._probe_thread.is_alive():
            return
        self.camera_combo.clear()
        self.camera_combo.addItem("Looking for cameras…", None)
        self.refresh_button.setEnabled(False)
        probe = self._probe

        def run() -> None:
            try:
                found = list(probe())
            except Exception:  # noqa: BLE001
                log.exception("camera probe failed")
                found = []
            self._cameras_found.emit(found)

        self._probe_thread = threading.Thread(target=run, daemon=True, name="camera probe")
        self._probe_thread.start()

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

    # ---- ROI, tiles, overlay ------------------------------------------------------------------
    def set_roi(self, roi: Roi | None, remember: bool = True) -> None:
        """Sets the region the model sees (frame pixels; None: the whole frame)."""
        w, h = self.view.frame_size()
        if roi is not None and w and h:
            roi = roi.clamp(w, h)
        if remember:
            self._pending_roi = False  # a ROI chosen now wins over the one saved for the source
            self._roi_unsaved = not (w and h)
        self.view.roi = roi
        if roi != self._config.roi:
            self.view.set_result(None, None)  # the old region's labels and overlay no longer fit
        self._config = replace(self._config, roi=roi)
        self._push_config()
        self.roi_label.setText(f"Region: {roi.w}×{roi.h} px at ({roi.x}, {roi.y})" if roi else
                               "Region: whole frame (drag on the frame to choose one)")
        if remember and self._source is not None:
            key = roi_key(self._source)
            if roi is None:
                self._settings.remove(key)
            elif w and h:
                self._settings.set(key, roi.to_text(w, h))
        self.view.update()

    def clear_roi(self) -> None:
        self.set_roi(None)

    def roi(self) -> Roi | None:
        return self._config.roi

    def _square_changed(self, on: bool) -> None:
        self.view.square = on

    def _tile_spin_changed(self, _v: int) -> None:
        self._tile_user_set = True
        self._config_changed()

    def _config_changed(self, *_a) -> None:
        overlay = (self.overlay_combo.currentData() or cam.OVERLAY_CAM) \
            if self.overlay_check.isChecked() else None
        tile = self.tile_spin.value() if self.tile_check.isChecked() else None
        if tile != self._config.tile:
            self.view.set_result(None, None)  # the old grid no longer fits
        self._config = replace(self._config, overlay=overlay, tile=tile)
        self.overlay_combo.setEnabled(self.overlay_check.isChecked())
        self.tile_spin.setEnabled(self.tile_check.isChecked())
        self.view.show_overlay = overlay is not None
        self.colour_bar.setVisible(overlay is not None)
        self._push_config()
        self._note_tile_limit()
        self.view.update()

    def _note_tile_limit(self, roi: Roi | None = None) -> None:
        """Says in the status bar when the chosen tile size would make more than
        ``cam.MAX_TILES`` tiles (the analysis then uses the smallest tile size that fits)."""
        tile = self._config.tile
        if not tile:
            self._tile_note = None
            return
        if roi is None:
            roi = self._config.roi
            if roi is None and self._shown is not None:
                roi = Roi(0, 0, self._shown.width, self._shown.height)
        if roi is None:
            return
        used = cam.fit_tile(roi.w, roi.h, tile)
        note = (tile, roi.w, roi.h, used)
        if used == tile or note == self._tile_note:
            return
        self._tile_note = note
        self._show_message(f"Tiles of {tile} px would make {cam.tile_count(roi.w, roi.h, tile)} "
                           f"tiles in this {roi.w}×{roi.h} px region (at most {cam.MAX_TILES}): "
                           f"using {used} px tiles")

    def _push_config(self) -> None:
        if self._worker is not None:
            self._worker.config = self._config

    def live_config(self) -> LiveConfig:
        return self._config

    # ---- live loop (GUI side) ------------------------------------------------------------------
    def _show_newest(self) -> None:
        g = self._grabber
        if g is None or self._paused:
            return
        frame = g.peek()
        if frame is None or (self._shown is not None and frame.index == self._shown.index):
            return
        self._display(frame)

    def _display(self, frame: Frame) -> None:
        """Puts ``frame`` on screen (the frame snapshots and labelled saves take)."""
        self._shown = frame
        self.view.set_frame(frame.image)
        if self._pending_roi:
            self._pending_roi = False
            text = self._settings.get(roi_key(self._source), None)
            roi = Roi.from_text(text, frame.width, frame.height) if text else None
            self.set_roi(roi, remember=False)
        elif self._roi_unsaved:  # chosen before the first frame: saved now that its size is known
            self._roi_unsaved = False
            self.set_roi(self._config.roi)

    def _on_result(self, worker: InferenceThread) -> None:
        newest, timings = worker.take()  # always taken: the worker announces only into an empty box
        if newest is None or self._paused or worker is not self._worker:
            return  # paused, or a late result of a stopped source
        for t_done, latency in timings:
            self._stats.record(t_done, latency)
        result, overlay = newest
        if self._shown is None or result.frame.index > self._shown.index:
            # the display timer has not shown this frame yet: show it now, so that a result is
            # never on screen without its frame (a snapshot right after it saves that frame)
            self._display(result.frame)
        if not self._is_current(result):
            return  # computed for a region, tiling, overlay or model since changed
        self._result = result
        self._note_tile_limit(result.roi)
        self.chart.set_values(result.probs)
        tiles = len(result.tiles)
        self.prediction_label.setText(f"{result.label_name}  {result.confidence:.1%}")
        self.detail_label.setText(
            (f"mean of {tiles} tiles ({result.grid[0]}×{result.grid[1]})" if tiles > 1
             else f"region {result.roi.w}×{result.roi.h} px")
            + f" · latency {result.latency * 1000:.0f} ms")
        self.view.set_result(result, overlay)
        self.result_ready.emit(result)

    def _is_current(self, result: LiveResult) -> bool:
        """Whether ``result`` was computed with the settings and classes chosen now (the worker
        may have finished the previous ROI's frame after ``set_roi``)."""
        if result.config is not None and result.config != self._config:
            return False
        names = list(getattr(self._model, "class_names", []) or [])
        return self._model is not None and list(result.class_names) == names

    def _on_analysis_failed(self, message: str) -> None:
        self._show_message(message)

    def _tick(self) -> None:
        self._refresh_model()
        g = self._grabber
        if g is None:
            self.stats_label.setText("")
            return
        s = g.stats
        self.stats_label.setText(
            f"Classified: {self._stats.fps:5.1f} frames/s    captured: {s.capture_fps:5.1f}/s\n"
            f"Latency (capture → result): {self._stats.latency_median * 1000:4.0f} ms median\n"
            f"Dropped (model busy): {s.dropped}    frames: {s.captured}")

    def stats(self) -> dict:
        g = self._grabber
        gs = g.stats if g is not None else None
        return {"classified_fps": self._stats.fps, "latency_median": self._stats.latency_median,
                "results": self._stats.count, "dropped": gs.dropped if gs else 0,
                "captured": gs.captured if gs else 0, "capture_fps": gs.capture_fps if gs else 0.0}

    def _on_grabber_status(self, grabber: FrameGrabber, status: StreamStatus) -> None:
        if grabber is self._grabber:
            self._set_status(status)

    def _set_status(self, status: StreamStatus) -> None:
        self._status = status
        colour = _STATE_COLOURS.get(status.state, "#555")
        self.state_label.setStyleSheet(f"color: {colour}; font-weight: bold")
        self.state_label.setText(status.message)
        if self._shown is None or status.state in (State.FAILED,):
            self.view.set_message(status.message)
        self.status_changed.emit(status)

    def status(self) -> StreamStatus:
        return self._status

    def status_text(self) -> str:
        return self.state_label.text()

    def _show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    # ---- pause, snapshot, labelled save ------------------------------------------------------------
    def set_paused(self, paused: bool) -> None:
        """Freezes the picture and stops analysing; the source keeps being read (so nothing is
        stale on resume), and frames skipped while paused are not counted as dropped."""
        self._paused = bool(paused)
        if self.pause_button.isChecked() != self._paused:
            self.pause_button.setChecked(self._paused)
        if self._worker is not None:
            self._worker.paused = self._paused
        if self._grabber is not None:
            self._grabber.counting_drops = not self._paused and self._model is not None
        if self._paused and self._result is not None:
            # show the analysed frame, so that picture, overlay and bars belong together
            self._shown = self._result.frame
            self.view.set_frame(self._shown.image)
        if not self._paused:
            self._stats.reset()
        self.pause_button.setText("Resume" if self._paused else "Pause")

    def is_paused(self) -> bool:
        return self._paused

    def _image_to_save(self) -> np.ndarray | None:
        frame = self._shown
        if frame is None:
            self._show_message("Nothing to save yet: no frame has arrived.")
            return None
        roi = self._config.roi
        if self.roi_only_check.isChecked() and roi is not None:
            roi = roi.clamp(frame.width, frame.height)
            if roi is not None:
                return roi.crop(frame.image).copy()
        return frame.image

    def snapshot(self) -> str | None:
        """Saves the frame on screen (or its region) as a new PNG in the snapshots folder and
        emits ``snapshot_taken(path)``. Returns the path, or None."""
        image = self._image_to_save()
        if image is None or self._source is None:
            return None
        try:
            path = cam.save_snapshot(image, self._source)
        except OSError as exc:
            self._show_message(f"Snapshot not saved: {cam.snapshots_dir()}: {exc.strerror or exc}")
            return None
        self._show_message(f"Snapshot saved: {path}")
        self.snapshot_taken.emit(str(path))
        return str(path)

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

    def save_labelled(self, class_index: int) -> str | None:
        """Saves the frame on screen (or its region) into ``data folder/<class>/``."""
        names = list(getattr(self._model, "class_names", []) or
                     (self._result.class_names if self._result else []))
        if class_index >= len(names):
            self._show_message(f"No class {class_index + 1}: load a model first.")
            return None
        if not self._data_folder:
            self._show_message("Choose a labelled data folder first (Collect ▸ Choose data folder…).")
            return None
        image = self._image_to_save()
        if image is None or self._source is None:
            return None
        name = names[class_index]
        try:
            path = cam.save_labelled(image, self._data_folder, name, self._source)
        except (OSError, ValueError) as exc:
            self._show_message(f"Not saved into {self._data_folder}/{name}: "
                               f"{getattr(exc, 'strerror', None) or exc}")
            return None
        self._show_message(f"Saved as {name}: {path}")
        self.sample_saved.emit(str(path), name)
        return str(path)

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

    # ---- closing ------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 (Qt)
        self._display_timer.stop()
        self._stats_timer.stop()
        self.stop_source()
        if self._probe_thread is not None:
            self._probe_thread.join(5.0)
        try:
            if self.camera_combo.currentData() is not None:
                self._settings.set("camera_index", int(self.camera_combo.currentData()))
            self._save_settings()
        except Exception:  # noqa: BLE001 - settings must never keep the window from closing
            log.exception("camera settings not saved")
        super().closeEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if not self._display_timer.isActive():
            self._display_timer.start()
            self._stats_timer.start()

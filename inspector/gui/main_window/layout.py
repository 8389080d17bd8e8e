"""The main window's layout: widgets, menus, the thumbnail list or grid, filters and sorting,
the class widgets, the saved layout and settings (a mixin of MainWindow)."""
from __future__ import annotations

import html
import re
import time

from PySide6 import QtGui
from PySide6.QtCore import QEvent, QObject, QPoint, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QFrame, QGridLayout,
                               QGroupBox, QLabel, QListView, QMessageBox, QProgressBar,
                               QPushButton, QScrollArea, QSizePolicy, QSpinBox, QSplitter,
                               QTextBrowser, QVBoxLayout, QWidget)

from ...session import UNSURE, Filter, Sort
from ...settings import Key
from ...tiles import MOSTLY
from ...engine import UNKNOWN_TEXT
from ..screen import resize_to_fit
from ..status_bar import StatusBar
from ..keys import ChoiceBox, TypingKeys
from ..charts import UNKNOWN_COLOUR, ProbabilityChart, on_palette
from ..inspection_panel import InspectionPanel
from ..thumbnails import CAPTION_CHARS, THUMB, ThumbnailDelegate, ThumbnailModel


APP_TITLE = "Steel Inspector"



class _FillingLayout(QVBoxLayout):
    """A column layout that a scroll area fits to its height: the verdict's word-wrapped label
    made the column "height for width", and a scroll area then sized it by its preferred
    heights (the charts' 576 and 384 px), so it scrolled in a window that had room for it."""

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return False

class FocusBack(QObject):
    """Gives the keyboard back to the image list after a setting is changed with the mouse (a
    spin box's arrows: events on the spin box itself, not on its text field, where one types;
    a slider), so that the verdict and navigation keys that follow judge and move through
    images instead of changing the setting (3 set the threshold to 3%)."""

    def __init__(self, target: QWidget, parent: QObject | None = None):
        super().__init__(parent)
        self._target = target

    def watch(self, widget: QWidget) -> None:
        widget.installEventFilter(self)
        if isinstance(widget, QSpinBox):   # a typed value counts once typed (Enter, focus out)
            widget.setKeyboardTracking(False)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.MouseButtonRelease:
            QTimer.singleShot(0, self._target.setFocus)
        return False


class ThumbnailList(QListView):
    """The thumbnails. In the list view (one column) Left and Right move to the previous and
    next image as Up and Down do: Qt's list mode ignores them, and the help says the four
    arrows move between images."""

    def moveCursor(self, action, modifiers):  # noqa: N802 (Qt)
        if self.viewMode() == QListView.ViewMode.ListMode:
            action = {QAbstractItemView.CursorAction.MoveLeft:
                      QAbstractItemView.CursorAction.MoveUp,
                      QAbstractItemView.CursorAction.MoveRight:
                      QAbstractItemView.CursorAction.MoveDown}.get(action, action)
        return super().moveCursor(action, modifiers)


STATUS_FILTERS: list[tuple[str, dict]] = [
    ("All images", {}),
    ("Needs review", {"needs_review": True}),
    ("Unknown", {"unknown": True}),
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

# Sizes (pixels) and times (milliseconds) of the main window
DEFAULT_SIZE = (1400, 860)           # the first start, before a saved geometry exists
SPLITTER_SIZES = [330, 640, 420]     # thumbnails | image | probabilities and verdict
VERDICT_COLUMN_WIDTH = 320           # the verdict column's share of a narrow window, at least
LIST_BATCH_SIZE = 400                # thumbnails laid out per batch (a big folder stays responsive)
LIST_MARGIN = 40                     # the thumbnail list is this much wider than a thumbnail
GRID_CELL_PAD = (30, 18)             # a grid cell around a thumbnail and its two caption lines
ROW_SIZE_GUESS = (300, 56)           # a list row's size before any row is laid out
PROB_CHART_MIN_HEIGHT = 160       # with the verdict box and the weights chart: a 1366x768 screen's height
PROGRESS_WIDTH = 260
SUMMARY_DIALOG_SIZE = (900, 320)
HELP_DIALOG_SIZE = (560, 700)        # F1's list; smaller where the screen is
EXPORT_CLOSE_GRACE_S = 0.3          # an export this near its end is waited for without a message
SUMMARY_REFRESH_MS = 1000         # the open summary follows classification and verdicts
COUNT_REVIEW_UP_TO = 50000           # the "needs review" count is skipped for bigger sessions
VIEW_REFRESH_MS = 800                # re-filter/re-sort at most this often while results arrive
# ...and at most this share of the window's time: a refresh takes longer the larger the folder
# (30,000 images sorted by confidence: a fifth of a second and more), so the next one waits
# this many times as long as the last took
REFRESH_SHARE = 10
REFRESH_MAX_MS = 10_000   # ...but never longer than this (one refresh held up by a busy PC)
BACKGROUND_START_MS = 400            # at the latest, classification starts this long after opening
PRIORITY_DELAY_MS = 60               # after scrolling stops, what is on screen is queued first
PROGRESS_UPDATE_MS = 250             # the progress bar repaints at most 4 times a second
MESSAGE_SHORT_MS = 3000              # status bar messages stay this long
MESSAGE_MS = 5000
MESSAGE_LONG_MS = 8000
MESSAGE_WARNING_MS = 10000
MESSAGE_SUMMARY_MS = 15000
MESSAGE_NOTE_MS = 30000
ZOOM_STEP = 1.25                     # View > Zoom in / out: a quarter larger, or back


def paced(timer: QTimer, least_ms: int, refresh) -> None:
    """Runs ``refresh`` and sets ``timer`` (the wait before the next one) to REFRESH_SHARE
    times what it took, at least ``least_ms`` and at most REFRESH_MAX_MS: a view of a larger
    folder is refreshed less often, never more than a tenth of the window's time."""
    started = time.perf_counter()
    try:
        refresh()
    finally:
        took_ms = (time.perf_counter() - started) * 1000
        timer.setInterval(int(min(REFRESH_MAX_MS, max(least_ms, REFRESH_SHARE * took_ms))))



class WindowLayout:
    """The main window's widgets, menus and view: thumbnails list or grid, filters and sorting,
    the class widgets of the model in use, the saved layout and settings, help (a mixin of
    MainWindow: the state lives in MainWindow.__init__)."""

    # ========================================================================================
    # UI

    def _build_ui(self) -> None:
        self.setStatusBar(StatusBar(self))   # before anything is put into it
        # thumbnails
        self.thumb_model = ThumbnailModel(self._thumbs, parent=self)
        self.delegate = ThumbnailDelegate(self.thumb_model, self)
        self.list = ThumbnailList()
        self.list.setAccessibleName("Images")
        self.list.setModel(self.thumb_model)
        self.list.setItemDelegate(self.delegate)
        self.list.setUniformItemSizes(True)
        self.list.setLayoutMode(QListView.LayoutMode.Batched)
        self.list.setBatchSize(LIST_BATCH_SIZE)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setDragEnabled(False)
        self.list.setAcceptDrops(False)
        self.list.setMinimumWidth(THUMB + LIST_MARGIN)
        self.list.selectionModel().currentChanged.connect(self._on_current_changed)
        self._set_grid(True)

        # the image and its explanation
        self.panel = InspectionPanel()
        self.panel.overlay_source_changed.connect(lambda k: self.settings.set(Key.OVERLAY_SOURCE, k))
        self.panel.opacity_changed.connect(lambda v: self.settings.set(Key.OVERLAY_OPACITY, v))
        self.panel.source.list_closed.connect(self.list.setFocus)
        self._focus_back = FocusBack(self.list, self)
        self._focus_back.watch(self.panel.opacity)
        self._typing_keys = TypingKeys(self)
        self._typing_keys.watch(self.panel.source, self.panel.opacity)

        # probabilities, verdict, channel weights
        self.prob_chart = ProbabilityChart()
        self.prob_chart.setMinimumHeight(PROB_CHART_MIN_HEIGHT)
        self.verdict_label = QLabel("Verdict: —")
        self.verdict_label.setWordWrap(True)
        # five lines: an unknown tile shows its verdict, the closest class, the review and the tile
        self.verdict_label.setMinimumHeight(5 * self.verdict_label.fontMetrics().height() + 6)
        self.verdict_box = QGroupBox("Verdict (keys)")
        self.verdict_grid = QGridLayout(self.verdict_box)
        column = QWidget()
        rl = _FillingLayout(column)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.prob_chart, 3)
        rl.addWidget(self.verdict_box)
        rl.addWidget(self.panel.weights_chart, 2)
        # scrolls where the window is short (a 1366x768 screen, or 125-150% scaling): the
        # charts' and the verdict box's heights together made the window taller than the screen
        right = QScrollArea()
        right.setObjectName("verdict_column")
        right.setWidget(column)
        right.setWidgetResizable(True)
        right.setFrameShape(QFrame.Shape.NoFrame)
        # a click on its charts or buttons (all NoFocus) must leave the keys with the thumbnails
        # (a scroll area takes focus by default: Right then scrolled it instead of moving on)
        right.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.verdict_column = right

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.list)
        self.splitter.addWidget(self.panel)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 5)
        self.splitter.setStretchFactor(2, 3)
        self.splitter.setSizes(SPLITTER_SIZES)
        self.setCentralWidget(self.splitter)

        # toolbar: threshold, filters, sorting
        tb = self.addToolBar("Review")
        tb.setObjectName("review_toolbar")
        tb.setMovable(False)
        self.open_folder_button = QPushButton("Open folder…")
        self.open_folder_button.setToolTip("Open a folder of images (Ctrl+O)")
        self.open_folder_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.open_folder_button.clicked.connect(self.choose_folder)
        tb.addWidget(self.open_folder_button)
        tb.addSeparator()
        label = QLabel(" Needs review below ")
        tb.addWidget(label)
        self.threshold = QSpinBox()
        label.setBuddy(self.threshold)   # its name for a screen reader
        self.threshold.setRange(0, 100)
        self.threshold.setSuffix(" %")
        self.threshold.setToolTip("Images whose top probability is below this are flagged "
                                  "\"needs review\" (orange frame)")
        self.threshold.setFocusPolicy(Qt.FocusPolicy.StrongFocus)   # Tab reaches it too
        self._focus_back.watch(self.threshold)
        tb.addWidget(self.threshold)
        self._build_unknown_widgets(tb)
        tb.addSeparator()
        tb.addWidget(QLabel(" Show "))
        self.status_filter = ChoiceBox()
        for text, _ in STATUS_FILTERS:
            self.status_filter.addItem(text)
        self.class_filter = ChoiceBox()
        self.class_filter.addItem("every class", None)
        self.sort_combo = ChoiceBox()
        for text, sort in SORTS:
            self.sort_combo.addItem(text, sort)
        self._typing_keys.watch(self.status_filter, self.class_filter, self.sort_combo)
        for combo in (self.status_filter, self.class_filter, self.sort_combo):
            combo.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            combo.currentIndexChanged.connect(lambda _: self._apply_view())
            # the keyboard back to the images once the open list closes: not at each item the
            # type-ahead of a closed box passes (activated), where the letters that follow
            # were verdict keys again
            combo.list_closed.connect(self.list.setFocus)
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

        # status bar: progress, model, device (the last two step aside for a long message)
        sb = self.statusBar()
        self.progress = QProgressBar()
        self.progress.setFixedWidth(PROGRESS_WIDTH)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.model_label = QLabel("no model")
        self.device_label = QLabel("")
        sb.addPermanentWidget(self.progress)
        sb.add_yielding(self.model_label)
        sb.add_yielding(self.device_label)

        self.panel.show_message("Open a folder of images (Ctrl+O) or drop images here.")

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        self._action(m, "Open &folder…", self.choose_folder, QKeySequence.StandardKey.Open)
        self._action(m, "Open &images…", self.choose_files, "Ctrl+Shift+O")
        self._action(m, "&Refresh folder (images added since)", self.refresh_folder,
                     QKeySequence.StandardKey.Refresh)
        self.recursive_action = self._action(m, "Include su&b-folders", None, checkable=True)
        self.recursive_action.toggled.connect(self._recursive_toggled)
        m.addSeparator()
        self._action(m, "Export results as &CSV…", lambda: self._choose_export("csv"), "Ctrl+E")
        self._action(m, "Export results as &JSON…", lambda: self._choose_export("json"),
                     "Ctrl+Shift+E")
        # no shortcut of its own: Ctrl+Alt is AltGr on German and Polish keyboards (AltGr+E
        # types € and ę); Alt+F, T reaches it
        self._action(m, "Export results with &tiles as CSV…",
                     lambda: self._choose_export("csv", tiles=True))
        self._action(m, "&Summary…", self.show_summary, "Ctrl+I")
        m.addSeparator()
        quit_action = self._action(m, "&Quit", self.close)
        # the platform's Quit key, or Ctrl+Q where it has none (Windows)
        quit_action.setShortcuts(QKeySequence.keyBindings(QKeySequence.StandardKey.Quit)
                                 or [QKeySequence("Ctrl+Q")])

        self.review_menu = mb.addMenu("&Review")

        v = mb.addMenu("&View")
        group = QActionGroup(self)
        self.grid_action = self._action(v, "&Grid of thumbnails", lambda: self._set_grid(True),
                                        "Ctrl+G", checkable=True)
        self.list_action = self._action(v, "&List", lambda: self._set_grid(False), "Ctrl+Shift+G",
                                        checkable=True)
        group.addAction(self.grid_action)
        group.addAction(self.list_action)
        v.addSeparator()
        fit = self._action(v, "&Fit image", self.panel.view.fit, "F")
        fit.setShortcuts([QKeySequence("F"), QKeySequence("Ctrl+0")])
        zoom_in = self._action(v, "Zoom &in", lambda: self.panel.view.zoom_by(ZOOM_STEP), QKeySequence.StandardKey.ZoomIn)
        # Ctrl+= too: the + of a US keyboard is Shift+=
        zoom_in.setShortcuts([*QKeySequence.keyBindings(QKeySequence.StandardKey.ZoomIn),
                              QKeySequence("Ctrl+=")])
        self._action(v, "Zoom &out", lambda: self.panel.view.zoom_by(1 / ZOOM_STEP), QKeySequence.StandardKey.ZoomOut)
        self._action(v, "&Actual size", self.panel.view.actual_size, "Ctrl+1")
        self._action(v, "Next o&verlay", self._next_overlay, "A")
        self._action(v, "&Tiles of large images…", self.choose_tiling, "Ctrl+T")
        self._action(v, "Ne&xt tile", lambda: self.step_tile(1), "]")
        self._action(v, "Pre&vious tile", lambda: self.step_tile(-1), "[")
        self._action(v, "The tile that &decides", self.show_deciding_tile, "T")
        self._action(v, "Next tile that &stands out", self.next_notable_tile, "Ctrl+]")

        t = mb.addMenu("&Tools")
        self._action(t, "Live &camera…", self.open_camera, "Ctrl+L")
        self._action(t, "&Retrain model…", self.open_retrain, "Ctrl+R")
        self._action(t, "&Models…", self.open_models, "Ctrl+M")

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
            if w is not None and w is not self.verdict_label and w is not self.new_class_edit:
                w.hide()  # at once: deleteLater waits for the event loop, and a grab before it
                w.deleteLater()  # showed the old button over the new ones

        def add(text, key, slot, row, col, span=1):
            a = QAction(text, self)
            a.setShortcuts([QKeySequence(k) for k in ([key] if isinstance(key, str) else key)])
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            a.triggered.connect(lambda _=False: slot())
            self.addAction(a)
            self.review_menu.addAction(a)
            self._verdict_actions.append(a)
            shown = a.shortcut().toString().replace("Return", "Enter")   # as the help says
            b = QPushButton(f"{text}  [{shown}]" if key else text)
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
        add("New class…", "N", self.begin_new_class, row + 2, 0)
        self.verdict_grid.addWidget(self.new_class_edit, row + 2, 1)
        self.review_menu.addSeparator()
        for text, key, slot in (("&Undo last verdict", QKeySequence.StandardKey.Undo,
                                 self.undo_verdict),
                                ("&Copy", QKeySequence.StandardKey.Copy, self._copy),
                                ("&Filter…", QKeySequence.StandardKey.Find, self._open_filter)):
            a = QAction(text, self)
            a.setShortcuts(QKeySequence.keyBindings(key))   # every key the platform has for it
            a.triggered.connect(lambda _=False, slot=slot: slot())
            self.addAction(a)
            self.review_menu.addAction(a)
            self._verdict_actions.append(a)
        self.verdict_grid.addWidget(self.verdict_label, row + 3, 0, 1, 2)

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
            fm = self.list.fontMetrics()
            width = max(THUMB + GRID_CELL_PAD[0], CAPTION_CHARS * fm.averageCharWidth() + 4)
            self.list.setGridSize(QSize(width, THUMB + 2 * fm.height() + GRID_CELL_PAD[1]))
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
            resize_to_fit(self, *DEFAULT_SIZE)
        state = s.get_bytes(Key.WINDOW_STATE)
        if state:
            self.restoreState(state)
        splitter = s.get_bytes(Key.SPLITTER_STATE)
        if not splitter or not self.splitter.restoreState(splitter):
            self.splitter.setSizes(self._first_splitter_sizes())

    def _first_splitter_sizes(self) -> list[int]:
        """The thumbnails, the image and the verdict column in the usual proportions; in a
        narrow window (a small screen) the verdict column keeps the width its charts and
        buttons need, the image giving way first, then the thumbnails."""
        room = max(1, self.width() - 12)
        sizes = [round(room * v / sum(SPLITTER_SIZES)) for v in SPLITTER_SIZES]
        column = self.verdict_column   # (its buttons come with the model: at least 320 px)
        need = max(VERDICT_COLUMN_WIDTH, column.widget().minimumSizeHint().width()) + \
            column.verticalScrollBar().sizeHint().width() + 4
        short = need - sizes[2]
        if short > 0:   # the image panel no narrower than its own controls allow
            floor = max(240, self.panel.minimumSizeHint().width())
            from_image = min(short, max(0, sizes[1] - floor))
            from_list = min(short - from_image, max(0, sizes[0] - (THUMB + LIST_MARGIN)))
            sizes = [sizes[0] - from_list, sizes[1] - from_image,
                     sizes[2] + from_image + from_list]
        return sizes

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
        else:
            self._update_counts()   # "N need review" follows the threshold

    # ========================================================================================
    # Filters and sorting

    def _filter(self) -> Filter:
        extra = STATUS_FILTERS[max(0, self.status_filter.currentIndex())][1]
        return Filter(predicted_class=self.class_filter.currentData(), **extra)

    def _filter_text(self) -> str:
        """The filter in words, e.g. "Needs review · predicted crazing"."""
        parts = [self.status_filter.currentText()]
        if self.class_filter.currentData() is not None:
            parts.append(f"predicted {self.class_filter.currentText()}")
        return " · ".join(parts)

    def _sort(self) -> Sort:
        return self.sort_combo.currentData() or Sort.OPENED

    def set_filter(self, status: str = "All images", predicted_class: str | None = None,
                   sort: Sort = Sort.OPENED) -> None:
        """Chooses a filter and sorting (as the toolbar's combos do)."""
        self.status_filter.setCurrentIndex([t for t, _ in STATUS_FILTERS].index(status))
        self.class_filter.setCurrentIndex(max(0, self.class_filter.findData(predicted_class)))
        self.sort_combo.setCurrentIndex(self.sort_combo.findData(sort))
        self._apply_view()

    def _copy(self) -> None:
        """Ctrl+C: the text selected in the caption (it takes no keyboard focus, so that the
        keys stay with the images), else the shown image's path."""
        text = self.panel.caption.selectedText()
        if not text and self._current is not None:
            text = str(self.session.items[self._current].path)
        if text:
            QtGui.QGuiApplication.clipboard().setText(text)

    def _open_filter(self) -> None:
        """Ctrl+F: the status filter with its list open (arrows and Enter choose, Esc keeps)."""
        self.status_filter.setFocus()
        self.status_filter.showPopup()

    def _apply_view(self) -> None:
        self._view_timer.stop()
        paced(self._view_timer, VIEW_REFRESH_MS, self._refresh_view)

    def _refresh_view(self) -> None:
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
        review = sum(1 for i in range(n) if self.session.needs_review(i)) if n <= COUNT_REVIEW_UP_TO else 0
        text = f"{shown} of {n} shown" if shown != n else f"{n} images"
        if review:
            text += f" · {review} need review"
        self.count_label.setText(text + "  ")
        self._update_unknown_status()

    def _scroll_to_current(self) -> None:
        ix = self.list.currentIndex()
        if ix.isValid():
            self.list.scrollTo(ix)

    def show_shortcuts(self) -> QDialog:
        names = self._class_names()
        keys = "".join(f"<tr><td><b>{i + 1}</b></td><td>true class {html.escape(n)}</td></tr>"
                       for i, n in enumerate(names[:9]))
        return self._help("Keyboard shortcuts", f"""<table cellpadding=3>
<tr><td><b>← → ↑ ↓</b></td><td>move between images</td></tr>{keys}
<tr><td><b>Enter</b></td><td>accept the prediction</td></tr>
<tr><td><b>U</b></td><td>unsure</td></tr>
<tr><td><b>N</b></td><td>a new class name (an image of a kind the model does not know)</td></tr>
<tr><td><b>Backspace</b> / <b>Delete</b></td><td>clear the verdict</td></tr>
<tr><td><b>Ctrl+Z</b></td><td>undo the last verdict (and show its image)</td></tr>
<tr><td><b>PageUp</b> / <b>PageDown</b>, <b>Home</b> / <b>End</b></td><td>a page of images, the first / last image</td></tr>
<tr><td><b>Ctrl+F</b></td><td>show: all, needs review, unknown, not yet reviewed…</td></tr>
<tr><td><b>A</b></td><td>next overlay (CAM, SE blocks, none)</td></tr>
<tr><td><b>F</b> or <b>Ctrl+0</b> / <b>Ctrl+1</b></td><td>fit / actual size; mouse wheel or Ctrl++ / Ctrl+- zoom, drag pans</td></tr>
<tr><td><b>Ctrl+T</b></td><td>tiles of large images (size, overlap; per folder)</td></tr>
<tr><td><b>]</b> / <b>[</b>, <b>T</b></td><td>a large image's next / previous tile, the tile that decides</td></tr>
<tr><td><b>Ctrl+]</b></td><td>the next tile that stands out (unknown, or another class than most)</td></tr>
<tr><td><b>Ctrl+G</b> / <b>Ctrl+Shift+G</b></td><td>thumbnails as a grid / a list</td></tr>
<tr><td><b>Ctrl+O</b> / <b>Ctrl+Shift+O</b></td><td>open a folder / image files</td></tr>
<tr><td><b>F5</b></td><td>refresh the folder: add and classify the images that came since</td></tr>
<tr><td><b>Ctrl+E</b> / <b>Ctrl+Shift+E</b></td><td>export results as CSV / JSON</td></tr>
<tr><td><b>Ctrl+I</b></td><td>summary per folder</td></tr>
<tr><td><b>Ctrl+L</b></td><td>live camera</td></tr>
<tr><td><b>Ctrl+R</b> / <b>Ctrl+M</b></td><td>retrain the model / the model library (switch, roll back)</td></tr>
<tr><td><b>F1</b></td><td>this list</td></tr>
<tr><td><b>Ctrl+Q</b></td><td>quit</td></tr></table>""")

    def _help(self, title: str, text: str) -> QDialog:
        """Rich text in a dialog that scrolls (a message box grows with its text: F1's list was
        taller than a 1366x768 screen, its OK button off the screen) and does not block."""
        d = QDialog(self)
        d.setWindowTitle(title)
        d.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        browser = QTextBrowser()
        browser.setHtml(text)
        browser.setFrameShape(QFrame.Shape.NoFrame)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        buttons.accepted.connect(d.accept)
        lay = QVBoxLayout(d)
        lay.addWidget(browser)
        lay.addWidget(buttons)
        resize_to_fit(d, *HELP_DIALOG_SIZE)
        d.open()
        self.statusBar().showMessage(f"{title}: F1", MESSAGE_WARNING_MS)
        self.last_message = (title, text)
        return d

    def _visible_rows(self) -> tuple[int, int]:
        """(first, last) row on screen, from the first visible cell and the grid's size."""
        vp = self.list.viewport().rect()
        first = self.list.indexAt(vp.topLeft() + QPoint(4, 4))
        start = first.row() if first.isValid() else 0
        if self.delegate.grid:
            cell = self.list.gridSize()
        else:
            cell = self.list.visualRect(first).size() if first.isValid() else QSize(*ROW_SIZE_GUESS)
        cols = max(1, vp.width() // max(1, cell.width())) if self.delegate.grid else 1
        rows = vp.height() // max(1, cell.height()) + 2
        return start, start + cols * rows - 1

    def _caption(self, idx: int, shape) -> str:
        it = self.session.items[idx]
        pal = self.panel.caption.palette()   # readable on a dark theme too
        flag = (f"<b style='color:{on_palette(UNKNOWN_COLOUR, pal)}'>{UNKNOWN_TEXT}</b> &nbsp; "
                if self.session.is_unknown(idx) else "")
        pad = ""
        if it.padding and it.probs is not None:   # the fill a turned or letterboxed frame has
            pad = (f" &nbsp; <span style='color:{on_palette('#8a5a00', pal)}'>"
                   + (f"padding {it.padding:.0%}: read as the surface beside it"
                      if it.padding < MOSTLY else f"mostly padding ({it.padding:.0%})")
                   + "</span>")
        # names as they are: a file called x<y.png or a&amp;b.png is not markup
        return (f"{flag}<b>{html.escape(it.path.name)}</b> &nbsp; {shape[1]}×{shape[0]}{pad} "
                f"&nbsp; <span style='color:{on_palette('#666', pal)}'>"
                f"{html.escape(str(it.path.parent))}</span>")

    def _inform(self, title: str, text: str, rich: bool = False) -> QMessageBox:
        """A message that does not block (window-modal, so tests and workers carry on). Plain
        text unless ``rich`` (file and folder names in it are shown as they are, never read as
        markup); rich text escapes its names itself."""
        box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
        box.open()
        first = text.splitlines()[0] if text else ""
        if rich:   # the status bar shows plain text: the words only
            first = html.unescape(re.sub(r"<[^>]*>", " ", first))
        self.statusBar().showMessage(f"{title}: {' '.join(first.split())}", MESSAGE_WARNING_MS)
        self.last_message = (title, text)
        return box

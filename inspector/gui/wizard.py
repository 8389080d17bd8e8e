"""The retraining wizard: new labelled images -> checked data -> settings -> training with live
curves -> evaluation against the current model -> a new version in the model library.

The pages only arrange widgets and forward signals: checking is ``training.checks``, staging,
default settings and evaluation are ``inspector.retrain``, training is ``training.train.train``
and the library is ``inspector.library``. Long work runs in a thread pool (``_Job``).
Nothing outside a temporary folder is written before Finish (``FinishPage.validatePage``);
cancelling stops the work within one batch and deletes the temporary folder.
"""
from __future__ import annotations

import shutil
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QCheckBox, QComboBox,
                               QDoubleSpinBox, QFileDialog, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListView,
                               QListWidget, QListWidgetItem, QMessageBox, QProgressBar,
                               QPushButton, QRadioButton, QSpinBox, QSplitter, QTableWidget,
                               QTableWidgetItem, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget, QWizard, QWizardPage)

from training.bundle import BundleError, read_card
from training.checks import ERROR, INFO, WARNING, Report, find_problems
from training.train import TrainConfig

from .. import retrain
from ..library import ModelLibrary, slug

PAGE_DATA, PAGE_SETTINGS, PAGE_TRAINING, PAGE_EVALUATION, PAGE_FINISH = range(5)
THUMB = 72
SEVERITY_COLOURS = {ERROR: "#c62828", WARNING: "#b26a00", INFO: "#546e7a"}
TRAIN_PEN, VAL_PEN = "#0072B2", "#D55E00"  # Okabe-Ito blue and vermilion


def _hms(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


def _about(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(1, round(seconds / 5) * 5):.0f} s"
    return f"about {round(seconds / 60):.0f} min"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _pixmap(arr: np.ndarray | None, size: int = THUMB) -> QPixmap:
    if arr is None:
        pm = QPixmap(size, size)
        pm.fill(QColor("#ddd"))
        return pm
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    img = QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(img)


def _wrap(text: str, metrics, width: int) -> str:
    """``text`` with line breaks so that no line is wider than ``width`` pixels."""
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}" if line else word
        if line and metrics.horizontalAdvance(trial) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    return "\n".join(lines)


class _ProblemTree(QTreeWidget):
    """A tree whose top-level messages wrap to the width (Qt item views do not grow rows for
    wrapped text, so the line breaks are put in by hand and redone on resize)."""

    def add_message(self, text: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem([text])
        item.setData(0, Qt.ItemDataRole.UserRole, text)
        item.setToolTip(0, text)
        self.addTopLevelItem(item)
        self._rewrap(item)
        return item

    def _rewrap(self, item: QTreeWidgetItem) -> None:
        width = max(200, self.viewport().width() - self.indentation() - 12)
        item.setText(0, _wrap(item.data(0, Qt.ItemDataRole.UserRole), self.fontMetrics(), width))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        for i in range(self.topLevelItemCount()):
            self._rewrap(self.topLevelItem(i))


# ---- background jobs -------------------------------------------------------------------------
class _JobSignals(QObject):
    progress = Signal(float, str)
    epoch = Signal(object)      # training.train epoch record (dict)
    done = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)


class _Job(QRunnable):
    """Runs ``fn(job)`` in a pool thread; ``fn`` reports through ``job.progress``, ``job.epoch``
    and polls ``job.should_stop``. Results, errors and cancellation come back as signals."""

    def __init__(self, fn: Callable[["_Job"], Any]):
        super().__init__()
        self.setAutoDelete(False)
        self.fn = fn
        self.signals = _JobSignals()
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
        from training.train import TrainingCancelled

        try:
            out = self.fn(self)
        except (TrainingCancelled, InterruptedError) as exc:
            self.signals.cancelled.emit(str(exc))
        except (DatasetError, BundleError, ImageReadError, OSError, ValueError) as exc:
            if self.should_stop():
                self.signals.cancelled.emit(str(exc))
            else:
                self.signals.failed.emit(str(exc))
        except Exception as exc:  # reported on the page, never raised into Qt
            traceback.print_exc()
            self.signals.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            if self.should_stop():
                self.signals.cancelled.emit("cancelled")
            else:
                self.signals.done.emit(out)
        finally:
            self.finished.set()


class _Jobs(QObject):
    """Keeps strong references to running jobs and stops and drains them on close."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self.running: list[_Job] = []
        self._ended: list[_Job] = []
        self.closed = False

    def start(self, fn: Callable[[_Job], Any], **slots: Callable) -> _Job:
        """Runs ``fn(job)``; ``slots`` (progress=, epoch=, done=, failed=, cancelled=) are
        connected before the job starts, so that not even a very quick job's signal is lost."""
        # A finished job is dropped only at the start after the one that saw it finished, so
        # that its queued signals have long been delivered.
        self.running = [j for j in self.running if j not in self._ended]
        self._ended = [j for j in self.running if j.finished.is_set()]
        job = _Job(fn)
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


# ---- the wizard ------------------------------------------------------------------------------
class RetrainWizard(QWizard):
    """Retrains SSDC-MiniNet on the inspector's own labelled images. ``current_bundle``: the
    model in use; ``verdicts``: (image path, true class name) pairs from review.
    ``model_ready(path)`` is emitted on Finish when the user chose to use the new model now."""

    model_ready = Signal(str)

    def __init__(self, current_bundle: Path, verdicts: Sequence[tuple[Path, str]] = (),
                 parent=None, library: ModelLibrary | None = None):
        super().__init__(parent)
        self.setWindowTitle("Retrain the model")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setOption(QWizard.WizardOption.HaveHelpButton, False)
        self.resize(980, 720)
        self.current_bundle = Path(current_bundle) if current_bundle else None
        try:
            self.current_card: dict | None = read_card(self.current_bundle) if self.current_bundle else None
        except BundleError:
            self.current_card = None
        self.verdicts = [(Path(p), str(c)) for p, c in verdicts]
        self.library = library or ModelLibrary()
        self.jobs = _Jobs(self)
        retrain.clean_stale_work_dirs()
        self.work = retrain.work_dir()
        # state shared by the pages
        self.report: Report | None = None
        self.folders: list[Path] = []
        self.use_verdicts = bool(self.verdicts)
        self.exclude: set[str] = set()
        self.config: TrainConfig | None = None
        self.seconds_per_image: float | None = None
        self.card: dict | None = None          # the new model's card, after training
        self.bundle_dir: Path | None = None    # the new bundle, in the temporary folder
        self.data_dir: Path | None = None      # the folder training read
        self.origin: dict[str, str] = {}       # staged file -> original file
        self.evaluation: retrain.SplitEvaluation | None = None
        self.saved_path: Path | None = None

        self.data_page = DataPage(self)
        self.settings_page = SettingsPage(self)
        self.training_page = TrainingPage(self)
        self.evaluation_page = EvaluationPage(self)
        self.finish_page = FinishPage(self)
        for pid, page in ((PAGE_DATA, self.data_page), (PAGE_SETTINGS, self.settings_page),
                          (PAGE_TRAINING, self.training_page),
                          (PAGE_EVALUATION, self.evaluation_page), (PAGE_FINISH, self.finish_page)):
            self.setPage(pid, page)
        self.setStartId(PAGE_DATA)

    # ---- facts the pages share -----------------------------------------------------------
    @property
    def model_classes(self) -> list[str] | None:
        return list(self.current_card["class_names"]) if self.current_card else None

    @property
    def input_size(self) -> int:
        return int(self.current_card["input_size"]) if self.current_card else 200

    @property
    def current_title(self) -> str:
        if not self.current_card:
            return "none"
        c = self.current_card
        return f"{c.get('name', 'model')} {c.get('version', '')}".strip()

    def usable_samples(self):
        return self.report.usable_samples(self.exclude) if self.report else []

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.usable_samples():
            out[s.label] = out.get(s.label, 0) + 1
        return out

    def class_names(self) -> tuple[str, ...]:
        return self.report.training_class_names() if self.report else ()

    def new_work_folder(self, name: str) -> Path:
        d = self.work / f"{name}-{time.strftime('%H%M%S')}-{len(list(self.work.iterdir()))}"
        return d

    # ---- Finish (the only side effects) and closing -----------------------------------------
    def commit(self, name: str, use_now: bool) -> Path:
        """Puts the new bundle into the library (and into use). Raises on failure."""
        if self.bundle_dir is None or not self.bundle_dir.is_dir():
            raise BundleError("there is no trained model to save")
        path = self.library.add(self.bundle_dir, name=name, move=True)
        self.bundle_dir = None
        self.saved_path = path
        if use_now:
            self.library.activate(path.name)
            self.model_ready.emit(str(path))
        return path

    def done(self, result: int) -> None:
        if result == QWizard.DialogCode.Accepted and self.saved_path is None:
            if not self.validateCurrentPage():  # Finish: FinishPage.validatePage commits
                return
        self.jobs.drain()
        retrain.remove_work_dir(self.work)
        super().done(result)  # validates again when accepted: committing is idempotent


# ---- page 1: data ----------------------------------------------------------------------------
class DataPage(QWizardPage):
    checked = Signal()  # a check finished (its report is in wizard.report)

    def __init__(self, wizard: RetrainWizard):
        super().__init__()
        self.wiz = wizard
        self.setTitle("Labelled images")
        self.setSubTitle("Choose a folder with one sub-folder per class (the folder name is the "
                         "class) and/or the verdicts you gave in review. The images are checked "
                         "before anything is trained.")
        self._job: _Job | None = None
        self._generation = 0
        self._timer = QTimer(self, singleShot=True, interval=300)
        self._timer.timeout.connect(self.start_check)

        self.folder_edit = QLineEdit(placeholderText="folder with one sub-folder per class")
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda: self._browse(self.folder_edit))
        self.verdicts_box = QCheckBox(f"Include the {len(wizard.verdicts):,} images you classified "
                                      "in review")
        self.verdicts_box.setChecked(bool(wizard.verdicts))
        self.verdicts_box.setVisible(bool(wizard.verdicts))
        self.merge_box = QCheckBox("Also train on the original training images:")
        self.merge_edit = QLineEdit(placeholderText="e.g. the NEU folder the current model was "
                                                    "trained on (keeps what it already knows)")
        self.merge_edit.setEnabled(False)
        merge_browse = QPushButton("Browse…")
        merge_browse.setEnabled(False)
        merge_browse.clicked.connect(lambda: self._browse(self.merge_edit))
        self.merge_box.toggled.connect(self.merge_edit.setEnabled)
        self.merge_box.toggled.connect(merge_browse.setEnabled)
        # checked when typing is done (Enter, leaving the field) or a folder is browsed to; not
        # on every keystroke: "/" alone would start a scan of the whole disk
        for w in (self.folder_edit, self.merge_edit):
            w.editingFinished.connect(self.schedule_check)
        self.verdicts_box.toggled.connect(self.schedule_check)
        self.merge_box.toggled.connect(self.schedule_check)

        src = QGridLayout()
        src.addWidget(QLabel("Image folder:"), 0, 0)
        src.addWidget(self.folder_edit, 0, 1)
        src.addWidget(browse, 0, 2)
        src.addWidget(self.merge_box, 1, 0)
        src.addWidget(self.merge_edit, 1, 1)
        src.addWidget(merge_browse, 1, 2)
        src.addWidget(self.verdicts_box, 2, 0, 1, 3)

        self.status = QLabel("No images chosen yet.")
        self.status.setWordWrap(True)
        self.busy = QProgressBar()
        self.busy.setRange(0, 1000)
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(8)
        self.busy.hide()
        self.mode_label = QLabel()
        self.mode_label.setWordWrap(True)
        self.mode_label.setTextFormat(Qt.TextFormat.RichText)

        self.class_table = QTableWidget(0, 3)
        self.class_table.setHorizontalHeaderLabels(["Class", "Images", ""])
        self.class_table.verticalHeader().hide()
        self.class_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.class_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        hh = self.class_table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)

        self.problem_tree = _ProblemTree()
        self.problem_tree.setHeaderLabels(["Problems found"])
        self.problem_tree.setUniformRowHeights(False)
        self.exclude_box = QCheckBox()
        self.exclude_box.hide()
        self.exclude_box.toggled.connect(self._exclusion_changed)
        probs = QWidget()
        pl = QVBoxLayout(probs)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self.problem_tree)
        pl.addWidget(self.exclude_box)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.class_table)
        split.addWidget(probs)
        split.setSizes([300, 600])

        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListView.ViewMode.IconMode)
        self.thumbs.setIconSize(QSize(THUMB, THUMB))
        self.thumbs.setGridSize(QSize(THUMB + 34, THUMB + 30))
        self.thumbs.setFlow(QListView.Flow.LeftToRight)
        self.thumbs.setWrapping(False)
        self.thumbs.setFixedHeight(THUMB + 50)
        self.thumbs.setMovement(QListView.Movement.Static)
        self.thumbs.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)

        lay = QVBoxLayout(self)
        lay.addLayout(src)
        lay.addWidget(self.status)
        lay.addWidget(self.busy)
        lay.addWidget(self.mode_label)
        lay.addWidget(split, 1)
        lay.addWidget(self.thumbs)

    def _browse(self, edit: QLineEdit) -> None:
        d = QFileDialog.getExistingDirectory(self, "Choose a folder with one sub-folder per class",
                                             edit.text())
        if d:
            edit.setText(d)
            self.schedule_check()

    # ---- checking ------------------------------------------------------------------------
    def set_folder(self, folder: str | Path, merge: str | Path | None = None) -> None:
        """Chooses the images (also for tests and the main window) and checks them."""
        self.folder_edit.setText(str(folder))
        if merge is not None:
            self.merge_box.setChecked(True)
            self.merge_edit.setText(str(merge))
        self.schedule_check()

    def schedule_check(self) -> None:
        self._timer.start(0)

    def sources(self) -> tuple[list[Path], list[tuple[Path, str]]]:
        folders = []
        if self.folder_edit.text().strip():
            folders.append(Path(self.folder_edit.text().strip()).expanduser())
        if self.merge_box.isChecked() and self.merge_edit.text().strip():
            folders.append(Path(self.merge_edit.text().strip()).expanduser())
        verdicts = self.wiz.verdicts if self.verdicts_box.isChecked() else []
        return folders, verdicts

    def start_check(self) -> None:
        self._timer.stop()
        folders, verdicts = self.sources()
        key = (tuple(folders), len(verdicts))
        if self._job is not None:
            self._job.stop()
            self._job = None
        self._generation += 1
        gen = self._generation
        self.wiz.report = None
        self.completeChanged.emit()
        if not folders and not verdicts:
            self._show_empty("No images chosen yet.")
            return
        self.status.setText("Checking the images…")
        self.busy.setValue(0)
        self.busy.show()
        wiz = self.wiz

        def work(job: _Job):
            samples, layout = retrain.gather_samples(folders, verdicts, job.should_stop)
            report = find_problems(samples, model_classes=wiz.model_classes,
                                   input_size=wiz.input_size, progress=job.progress,
                                   should_stop=job.should_stop)
            report.problems = sorted(layout + report.problems,
                                     key=lambda p: (ERROR, WARNING, INFO).index(p.severity))
            report.source = " + ".join(str(f) for f in folders) + (
                (" + " if folders else "") + "review verdicts" if verdicts else "")
            thumbs = []
            by_class: dict[str, list] = {}
            for s in report.usable_samples():
                by_class.setdefault(s.label, []).append(s)
            for name in report.class_names:
                for s in by_class.get(name, [])[:3]:
                    thumbs.append((name, str(s.path), retrain.thumbnail(s.path, THUMB)))
            return report, thumbs, key

        self._job = wiz.jobs.start(
            work, progress=lambda f, m, g=gen: self._progress(g, f, m),
            done=lambda out, g=gen: self._checked(g, out),
            failed=lambda msg, g=gen: self._check_failed(g, msg))

    def _progress(self, gen: int, fraction: float, message: str) -> None:
        if gen == self._generation:
            self.busy.setValue(int(fraction * 1000))
            self.status.setText(message[:1].upper() + message[1:] + "…")

    def _check_failed(self, gen: int, message: str) -> None:
        if gen != self._generation:
            return
        self._job = None
        self._show_empty(f"The images could not be checked: {message}")
        self.checked.emit()

    def _show_empty(self, text: str) -> None:
        self.busy.hide()
        self.status.setText(text)
        self.class_table.setRowCount(0)
        self.problem_tree.clear()
        self.thumbs.clear()
        self.mode_label.clear()
        self.exclude_box.hide()

    def _checked(self, gen: int, out) -> None:
        if gen != self._generation:
            return
        self._job = None
        report, thumbs, _ = out
        self.wiz.report = report
        self.busy.hide()
        self._fill(report, thumbs)
        self._exclusion_changed()
        self.checked.emit()

    def _fill(self, report: Report, thumbs) -> None:
        counts = report.counts
        n = sum(counts.values())
        nerr, nwarn = len(report.errors), len(report.warnings)
        verdict = ("No problems found." if not report.problems or (not nerr and not nwarn) else
                   f"{nerr} error(s) and {nwarn} warning(s): see the list."
                   if nerr else f"{nwarn} warning(s): training can go ahead, but see the list.")
        self.status.setText(f"{n:,} images in {len(report.class_names)} classes. {verdict}")

        model = self.wiz.model_classes
        self.class_table.setRowCount(len(report.class_names))
        for r, name in enumerate(report.class_names):
            self.class_table.setItem(r, 0, QTableWidgetItem(name))
            item = QTableWidgetItem(f"{counts.get(name, 0):,}")
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.class_table.setItem(r, 1, item)
            tag = "" if model is None else ("known" if name in model else "new")
            tag_item = QTableWidgetItem(tag)
            if tag == "new":
                tag_item.setForeground(QColor("#1565c0"))
            self.class_table.setItem(r, 2, tag_item)

        if model is None:
            mode = ("No current model could be read: a new model is trained from scratch.")
        elif report.same_classes:
            mode = ("<b>Same classes as the current model</b> (" + self.wiz.current_title +
                    "): it is fine-tuned on these images.")
        else:
            new = report.new_classes
            what = (f"<b>New classes</b> ({', '.join(new[:6])}{'…' if len(new) > 6 else ''})"
                    if new else "<b>Some of the current model's classes</b>")
            mode = (f"{what}: the current model's classifier is rebuilt for "
                    f"{len(report.class_names)} classes; its learned features are kept as the "
                    "starting point.")
        self.mode_label.setText(mode)

        self.problem_tree.clear()
        for p in report.problems:
            top = self.problem_tree.add_message(f"{p.severity.upper()}: {p.message}")
            top.setForeground(0, QColor(SEVERITY_COLOURS[p.severity]))
            for f in p.files[:200]:
                child = QTreeWidgetItem([f])
                child.setToolTip(0, f)
                top.addChild(child)
            if len(p.files) > 200:
                top.addChild(QTreeWidgetItem([f"… and {len(p.files) - 200} more"]))
            top.setExpanded(p.severity == ERROR and len(p.files) <= 20)
        if not report.problems:
            self.problem_tree.add_message("No problems found.")

        excl = report.excludable_files
        if excl and report.ok_without_excludable:
            self.exclude_box.setText(f"Leave out the {len(excl)} file(s) named in the errors "
                                     "and go on")
            self.exclude_box.show()
        else:
            self.exclude_box.setChecked(False)
            self.exclude_box.hide()

        self.thumbs.clear()
        for name, path, arr in thumbs:
            item = QListWidgetItem(QIcon(_pixmap(arr)), name)
            item.setToolTip(path)
            self.thumbs.addItem(item)

    def _exclusion_changed(self) -> None:
        report = self.wiz.report
        if report is not None and self.exclude_box.isChecked() and not self.exclude_box.isHidden():
            self.wiz.exclude = set(report.excludable_files)
        else:
            self.wiz.exclude = set()
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        r = self.wiz.report
        if r is None or self._job is not None:
            return False
        if r.ok:
            return True
        return r.ok_without_excludable and self.exclude_box.isChecked()

    def validatePage(self) -> bool:
        self.wiz.folders, verdicts = self.sources()
        self.wiz.use_verdicts = bool(verdicts)
        return True

    def cleanupPage(self) -> None:  # pragma: no cover - first page
        pass


# ---- page 2: settings ------------------------------------------------------------------------
class SettingsPage(QWizardPage):
    measured = Signal(float)  # seconds per training image

    def __init__(self, wizard: RetrainWizard):
        super().__init__()
        self.wiz = wizard
        self.setTitle("Training settings")
        self.setSubTitle("The defaults work on a new data set without tuning; the number of "
                         "epochs is chosen to fit about "
                         f"{retrain.DEFAULT_BUDGET_SECONDS // 60} minutes on this PC.")
        self._measure_job: _Job | None = None
        self._filling = False
        self._touched: set[str] = set()

        self.from_current = QRadioButton()
        self.from_scratch = QRadioButton("From scratch (a new SSDC-MiniNet)")
        group = QButtonGroup(self)
        group.addButton(self.from_current)
        group.addButton(self.from_scratch)
        self.from_current.toggled.connect(self._start_changed)
        start = QGroupBox("Start from")
        sl = QVBoxLayout(start)
        sl.addWidget(self.from_current)
        sl.addWidget(self.from_scratch)

        self.epochs = QSpinBox(minimum=1, maximum=1000)
        self.lr = QDoubleSpinBox(decimals=5, minimum=1e-5, maximum=0.1, singleStep=5e-4)
        self.batch = QSpinBox(minimum=2, maximum=512)
        self.augment = QCheckBox("Flips, turns, small rotations and shifts, brightness and "
                                 "contrast changes")
        self.val_pct = QSpinBox(minimum=0, maximum=40, suffix=" %")
        self.test_pct = QSpinBox(minimum=1, maximum=40, suffix=" %")
        held = QHBoxLayout()
        held.addWidget(QLabel("validation"))
        held.addWidget(self.val_pct)
        held.addSpacing(12)
        held.addWidget(QLabel("test"))
        held.addWidget(self.test_pct)
        held.addStretch(1)
        form = QFormLayout()
        form.addRow("Epochs:", self.epochs)
        form.addRow("Learning rate:", self.lr)
        form.addRow("Batch size:", self.batch)
        form.addRow("Augmentation:", self.augment)
        form.addRow("Held out:", held)
        basics = QGroupBox("Settings")
        basics.setLayout(form)

        self.estimate = QLabel()
        self.estimate.setWordWrap(True)
        self.estimate.setTextFormat(Qt.TextFormat.RichText)

        self.advanced_toggle = QCheckBox("Show advanced settings")
        self.advanced = QGroupBox("Advanced")
        self.design = QComboBox()
        self.design.addItems(["B", "A"])
        self.schedule = QComboBox()
        self.schedule.addItems(["cosine", "constant"])
        self.warmup = QSpinBox(minimum=0, maximum=50)
        self.smoothing = QDoubleSpinBox(decimals=3, minimum=0, maximum=0.5, singleStep=0.01)
        self.rotation = QDoubleSpinBox(decimals=1, minimum=0, maximum=180, suffix="°")
        self.shift = QDoubleSpinBox(decimals=2, minimum=0, maximum=0.5, singleStep=0.02)
        self.brightness = QDoubleSpinBox(decimals=2, minimum=0, maximum=0.5, singleStep=0.02)
        self.contrast = QDoubleSpinBox(decimals=2, minimum=0, maximum=0.5, singleStep=0.02)
        self.flips = QCheckBox("flips and 90° turns")
        self.dropout = QDoubleSpinBox(decimals=2, minimum=0, maximum=0.8, singleStep=0.05)
        self.seed = QSpinBox(minimum=0, maximum=2 ** 31 - 1)
        self.name = QLineEdit()
        af = QFormLayout(self.advanced)
        af.addRow("Design (from scratch):", self.design)
        af.addRow("Learning-rate schedule:", self.schedule)
        af.addRow("Warm-up epochs:", self.warmup)
        af.addRow("Label smoothing:", self.smoothing)
        af.addRow("Rotation ±:", self.rotation)
        af.addRow("Shift ± (fraction):", self.shift)
        af.addRow("Brightness ±:", self.brightness)
        af.addRow("Contrast ±:", self.contrast)
        af.addRow("", self.flips)
        af.addRow("Dropout (from scratch):", self.dropout)
        af.addRow("Random seed:", self.seed)
        af.addRow("Model name:", self.name)
        self.advanced.hide()
        self.advanced_toggle.toggled.connect(self.advanced.setVisible)

        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(start)
        left.addWidget(basics)
        left.addWidget(self.estimate)
        left.addWidget(self.advanced_toggle)
        left.addStretch(1)
        top.addLayout(left, 3)
        top.addWidget(self.advanced, 2)
        lay.addLayout(top)

        for w in (self.epochs, self.batch, self.val_pct, self.test_pct, self.warmup, self.seed):
            w.valueChanged.connect(self._changed)
        for w in (self.lr, self.smoothing, self.rotation, self.shift, self.brightness,
                  self.contrast, self.dropout):
            w.valueChanged.connect(self._changed)
        for w in (self.augment, self.flips):
            w.toggled.connect(self._changed)
        for w in (self.design, self.schedule):
            w.currentIndexChanged.connect(self._changed)
        self.epochs.valueChanged.connect(lambda _: self._touch("epochs"))
        self.lr.valueChanged.connect(lambda _: self._touch("lr"))
        self.batch.valueChanged.connect(lambda _: self._touch("batch"))

    def _touch(self, what: str) -> None:
        if not self._filling:
            self._touched.add(what)

    # ---- defaults and the time estimate ---------------------------------------------------
    def _guess_seconds_per_image(self) -> float:
        # ~70 training images/s at 200x200 on a 2-core CPU; scales with the pixel count
        return (self.wiz.input_size / 200) ** 2 / 70

    def suggestion(self) -> TrainConfig:
        w = self.wiz
        spi = w.seconds_per_image or self._guess_seconds_per_image()
        return retrain.suggest_settings(
            w.counts(), spi, current_bundle=w.current_bundle if w.current_card else None,
            current_card=w.current_card, class_names=w.class_names(),
            from_scratch=self.from_scratch.isChecked() or not w.current_card)

    def initializePage(self) -> None:
        w = self.wiz
        can_fine_tune = w.current_card is not None
        self.from_current.setText(f"The current model ({w.current_title}) - recommended: it "
                                  "learns faster and from fewer images")
        self.from_current.setEnabled(can_fine_tune)
        self._filling = True
        (self.from_current if can_fine_tune else self.from_scratch).setChecked(True)
        self._filling = False
        self._touched.clear()
        self.apply(self.suggestion())
        if w.seconds_per_image is None:
            self._measure()

    def apply(self, c: TrainConfig, only_untouched: bool = False) -> None:
        """Shows a configuration (``only_untouched``: leave what the user changed)."""
        self._filling = True
        try:
            if not (only_untouched and "epochs" in self._touched):
                self.epochs.setValue(c.epochs)
            if not (only_untouched and "lr" in self._touched):
                self.lr.setValue(c.learning_rate)
            if not (only_untouched and "batch" in self._touched):
                self.batch.setValue(c.batch_size)
            if not only_untouched:
                self.augment.setChecked(c.augment)
                self.val_pct.setValue(round(c.val_fraction * 100))
                self.test_pct.setValue(round(c.test_fraction * 100))
                self.design.setCurrentText(c.design)
                self.schedule.setCurrentText(c.lr_schedule)
                self.warmup.setValue(c.warmup_epochs)
                self.smoothing.setValue(c.label_smoothing)
                self.rotation.setValue(c.rotation_degrees)
                self.shift.setValue(c.shift_fraction)
                self.brightness.setValue(c.brightness)
                self.contrast.setValue(c.contrast)
                self.flips.setChecked(c.flips)
                self.dropout.setValue(c.dropout)
                self.seed.setValue(c.seed)
                self.name.setText(c.name)
        finally:
            self._filling = False
        self._base = c
        self._changed()

    def config(self) -> TrainConfig:
        scratch = self.from_scratch.isChecked()
        w = self.wiz
        return replace(
            self._base,
            init_bundle=None if scratch else str(w.current_bundle),
            design=self.design.currentText(),
            epochs=self.epochs.value(), learning_rate=self.lr.value(),
            batch_size=self.batch.value(), augment=self.augment.isChecked(),
            val_fraction=self.val_pct.value() / 100, test_fraction=self.test_pct.value() / 100,
            lr_schedule=self.schedule.currentText(), warmup_epochs=self.warmup.value(),
            label_smoothing=self.smoothing.value(), rotation_degrees=self.rotation.value(),
            shift_fraction=self.shift.value(), brightness=self.brightness.value(),
            contrast=self.contrast.value(), flips=self.flips.isChecked(),
            dropout=self.dropout.value() if scratch else 0.0, seed=self.seed.value(),
            name=self.name.text().strip() or "SSDC-MiniNet",
            input_size=w.input_size, class_names=w.class_names(),
            version=time.strftime("%Y.%m.%d-%H%M"))

    def _start_changed(self) -> None:
        if self._filling:
            return
        scratch = self.from_scratch.isChecked()
        self.design.setEnabled(scratch)
        self.dropout.setEnabled(scratch)
        self._touched.clear()
        self.apply(self.suggestion())

    def _changed(self, *_) -> None:
        if self._filling or not hasattr(self, "_base"):
            return
        scratch = self.from_scratch.isChecked()
        self.design.setEnabled(scratch)
        self.dropout.setEnabled(scratch)
        w = self.wiz
        c = self.config()
        spi = w.seconds_per_image
        counts = w.counts()
        tr, va, te = retrain.split_counts(counts, c.val_fraction, c.test_fraction)
        split = f"{tr:,} images to train on, {va:,} to validate, {te:,} to test"
        if spi is None:
            guess = retrain.estimate_seconds(counts, c, self._guess_seconds_per_image())
            self.estimate.setText(f"{split}.<br>Estimated time: {_about(guess)} "
                                  "<i>(measuring the speed of this PC…)</i>")
        else:
            secs = retrain.estimate_seconds(counts, c, spi)
            self.estimate.setText(
                f"{split}.<br><b>Estimated time on this PC: {_about(secs)}</b> "
                f"(measured {1 / spi:.0f} training images per second at "
                f"{c.input_size}x{c.input_size}).")
        self.completeChanged.emit()

    def _measure(self) -> None:
        w = self.wiz
        if self._measure_job is not None:
            return
        config = replace(self.suggestion(), batch_size=16)
        names = w.class_names()

        def work(job: _Job):
            return retrain.measure_seconds_per_image(config, names, should_stop=job.should_stop)

        self._measure_job = w.jobs.start(work, done=self._measured, failed=self._measure_failed)

    def _measured(self, spi: float) -> None:
        self._measure_job = None
        self.wiz.seconds_per_image = float(spi)
        if self.wiz.currentId() == PAGE_SETTINGS:
            self.apply(self.suggestion(), only_untouched=True)
        self.measured.emit(float(spi))

    def _measure_failed(self, message: str) -> None:
        self._measure_job = None
        self.estimate.setText(self.estimate.text().replace(
            "(measuring the speed of this PC…)", f"(the speed of this PC could not be measured: "
                                                 f"{message})"))

    def validatePage(self) -> bool:
        self.wiz.config = self.config()
        return True


# ---- page 3: training ------------------------------------------------------------------------
class TrainingPage(QWizardPage):
    finished = Signal(bool)  # True: a model was trained; False: stopped or failed
    epoch_done = Signal(dict)  # the epoch record just drawn

    def __init__(self, wizard: RetrainWizard):
        super().__init__()
        import pyqtgraph as pg

        self.wiz = wizard
        self.setTitle("Training")
        self.setSubTitle("The model trains in the background; you can keep working. Stop ends "
                         "it within one batch and keeps nothing.")
        self.job: _Job | None = None
        self.history: list[dict] = []
        self._trained_key = None
        self.state = "idle"  # idle, running, stopping, done, cancelled, failed

        self.loss_plot = self._plot(pg, "Loss", "")
        self.acc_plot = self._plot(pg, "Accuracy", "%")
        self.acc_plot.setYRange(0, 100, padding=0.02)
        self.curves = {
            "loss": self.loss_plot.plot([], [], pen=pg.mkPen(TRAIN_PEN, width=2), symbol="o",
                                        symbolSize=5, symbolBrush=TRAIN_PEN, name="training"),
            "val_loss": self.loss_plot.plot([], [], pen=pg.mkPen(VAL_PEN, width=2), symbol="s",
                                            symbolSize=5, symbolBrush=VAL_PEN, name="validation"),
            "accuracy": self.acc_plot.plot([], [], pen=pg.mkPen(TRAIN_PEN, width=2), symbol="o",
                                           symbolSize=5, symbolBrush=TRAIN_PEN, name="training"),
            "val_accuracy": self.acc_plot.plot([], [], pen=pg.mkPen(VAL_PEN, width=2),
                                               symbol="s", symbolSize=5, symbolBrush=VAL_PEN,
                                               name="validation"),
        }
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.stats = QLabel()
        self.stats.setTextFormat(Qt.TextFormat.RichText)
        self.stop_button = QPushButton("Stop training")
        self.stop_button.clicked.connect(self.stop)
        self.again_button = QPushButton("Train again")
        self.again_button.clicked.connect(self.start)
        self.again_button.hide()

        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.acc_plot)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.again_button)
        lay = QVBoxLayout(self)
        lay.addLayout(plots, 1)
        lay.addWidget(self.stats)
        lay.addLayout(buttons)
        lay.addWidget(self.status)

    @staticmethod
    def _plot(pg, title: str, units: str):
        p = pg.PlotWidget(background="w")
        p.setTitle(title, color="k", size="11pt")
        p.setMenuEnabled(False)
        p.showGrid(x=True, y=True, alpha=0.25)
        p.setLabel("bottom", "epoch", color="k")
        if units:
            p.setLabel("left", units, color="k")
        for name in ("left", "bottom"):
            ax = p.getAxis(name)
            ax.setTextPen("k")
            ax.setPen(pg.mkPen("#888"))
        legend = p.addLegend(offset=(-10, 10), labelTextColor="k")
        legend.setBrush(pg.mkBrush(255, 255, 255, 200))
        p.setMinimumHeight(260)
        return p

    def _key(self):
        w = self.wiz
        return (tuple(w.folders), w.use_verdicts, tuple(sorted(w.exclude)), w.config and
                replace(w.config, version=""))

    def initializePage(self) -> None:
        if self.state == "done" and self._trained_key == self._key() and self.wiz.bundle_dir:
            return  # same data and settings: keep the model already trained
        self.start()

    def cleanupPage(self) -> None:
        """Going back stops a running training."""
        self.stop()

    def start(self) -> None:
        w = self.wiz
        if self.job is not None:
            return
        # forget an earlier run
        if w.bundle_dir is not None:
            shutil.rmtree(w.bundle_dir.parent, ignore_errors=True)
        w.bundle_dir, w.card, w.evaluation = None, None, None
        self.history = []
        for c in self.curves.values():
            c.setData([], [])
        self.progress.setValue(0)
        self.stats.setText("")
        self.status.setText("Starting…")
        self.stop_button.show()
        self.stop_button.setEnabled(True)
        self.again_button.hide()
        self.state = "running"
        self.completeChanged.emit()

        config = w.config or w.settings_page.config()
        run_dir = w.new_work_folder("run")
        out = run_dir / "bundle"
        folder = (retrain.training_folder(w.report, w.folders, w.verdicts if w.use_verdicts else [],
                                          sorted(w.exclude)) if w.report else None)
        samples = w.usable_samples()
        digests = {p: i.digest for p, i in w.report.info.items()} if w.report else {}
        srcs = [str(f) for f in w.folders] + (["review verdicts"] if w.use_verdicts else [])
        notes = (f"retrained in the wizard from {', '.join(srcs)}; started from "
                 f"{'scratch' if not config.init_bundle else w.current_title}")

        def work(job: _Job):
            data_dir, origin = folder, {}
            if data_dir is None:
                data_dir, origin = retrain.stage_dataset(
                    samples, run_dir / "data", digests,
                    lambda f, m: job.progress(0.0, m), job.should_stop)
            from training.train import train
            card = train(data_dir, out, config, job.progress, job.should_stop, job.epoch,
                         notes=notes)
            return card, out, Path(data_dir), origin

        self._started = time.monotonic()
        self._key_started = self._key()
        self.job = w.jobs.start(work, progress=self._progress, epoch=self._epoch, done=self._done,
                                failed=self._failed, cancelled=self._cancelled)

    def stop(self) -> None:
        if self.job is not None and self.state == "running":
            self.job.stop()
            self.state = "stopping"
            self.stop_button.setEnabled(False)
            self.status.setText("Stopping after the current batch…")

    def _progress(self, fraction: float, message: str) -> None:
        if self.state == "running":
            self.progress.setValue(int(fraction * 1000))
            self.status.setText(message)

    def _epoch(self, rec: dict) -> None:
        self.history.append(rec)
        x = [r["epoch"] for r in self.history]
        for key, curve in self.curves.items():
            ys = [r.get(key) for r in self.history]
            if any(v is None for v in ys):
                continue
            scale = 100.0 if "accuracy" in key else 1.0
            curve.setData(x, [v * scale for v in ys])
        total = (self.wiz.config or self.wiz.settings_page.config()).epochs
        best = max(self.history, key=lambda r: r.get("val_accuracy", r.get("accuracy", 0)))
        val = (f" · best validation accuracy <b>{best['val_accuracy'] * 100:.1f}%</b> "
               f"(epoch {best['epoch']})" if "val_accuracy" in best else "")
        self.stats.setText(f"Epoch {rec['epoch']}/{total} · {rec['seconds']:.0f} s per epoch · "
                           f"<b>{_hms(rec.get('seconds_left', 0))} left</b>{val}")
        self.epoch_done.emit(rec)

    def _done(self, out) -> None:
        card, bundle, data_dir, origin = out
        w = self.wiz
        self.job = None
        w.card, w.bundle_dir, w.data_dir, w.origin = card, Path(bundle), data_dir, origin
        self.state = "done"
        self._trained_key = self._key_started
        self.progress.setValue(1000)
        took = time.monotonic() - self._started
        test = (card.get("metrics") or {}).get("test") or {}
        self.status.setText(f"Training done in {_hms(took)}. Test accuracy "
                            f"{_pct(test.get('accuracy'))} on {test.get('count', 0)} held-out "
                            "images. Next: compare it with the current model.")
        self.stop_button.hide()
        self.again_button.show()
        self.completeChanged.emit()
        self.finished.emit(True)

    def _failed(self, message: str) -> None:
        self.job = None
        self.state = "failed"
        self.status.setText(f"Training failed: {message}")
        self.stop_button.hide()
        self.again_button.show()
        self.completeChanged.emit()
        self.finished.emit(False)

    def _cancelled(self, message: str) -> None:
        self.job = None
        self.state = "cancelled"
        self.status.setText("Training stopped; nothing was saved. Change the settings (Back) or "
                            "train again.")
        self.stop_button.hide()
        self.again_button.show()
        self.completeChanged.emit()
        self.finished.emit(False)

    def isComplete(self) -> bool:
        return self.state == "done" and self.wiz.bundle_dir is not None


# ---- page 4: evaluation ----------------------------------------------------------------------
class EvaluationPage(QWizardPage):
    evaluated = Signal()

    def __init__(self, wizard: RetrainWizard):
        super().__init__()
        self.wiz = wizard
        self.setTitle("Evaluation on the held-out images")
        self.setSubTitle("The test images were not used for training or for choosing the best "
                         "epoch. When the classes are the current model's, it is tested on the "
                         "same images.")
        self.job: _Job | None = None
        self.state = "idle"
        self.headline = QLabel()
        self.headline.setWordWrap(True)
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        self.per_class = QTableWidget(0, 5)
        self.per_class.verticalHeader().hide()
        self.per_class.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion = QTableWidget(0, 0)
        self.confusion.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.wrong = QListWidget()
        self.wrong.setViewMode(QListView.ViewMode.IconMode)
        self.wrong.setIconSize(QSize(THUMB, THUMB))
        self.wrong.setGridSize(QSize(THUMB + 90, THUMB + 44))
        self.wrong.setMovement(QListView.Movement.Static)
        self.wrong.setResizeMode(QListView.ResizeMode.Adjust)
        self.wrong.setWordWrap(True)

        g1 = QGroupBox("Per class")
        QVBoxLayout(g1).addWidget(self.per_class)
        g2 = QGroupBox("Confusion matrix (rows: true class, columns: predicted)")
        QVBoxLayout(g2).addWidget(self.confusion)
        self.wrong_box = QGroupBox("Misclassified images")
        QVBoxLayout(self.wrong_box).addWidget(self.wrong)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(g1)
        top.addWidget(g2)
        lay = QVBoxLayout(self)
        lay.addWidget(self.headline)
        lay.addWidget(top, 3)
        lay.addWidget(self.wrong_box, 2)

    def initializePage(self) -> None:
        w = self.wiz
        if w.evaluation is not None:
            self._show(w.evaluation)
            return
        self.state = "running"
        self.headline.setText("Evaluating the new model on the held-out images…")
        self.completeChanged.emit()
        bundle, data_dir, origin = w.bundle_dir, w.data_dir, dict(w.origin)
        current = w.current_bundle if w.current_card else None

        def work(job: _Job):
            ev = retrain.evaluate_split(bundle, data_dir, current, origin, job.progress,
                                        job.should_stop)
            thumbs = [retrain.thumbnail(m.path, THUMB) for m in ev.misclassified[:120]]
            return ev, thumbs

        self.job = w.jobs.start(work, done=self._done, failed=self._failed,
                                cancelled=lambda _m: self._failed("cancelled"))

    def cleanupPage(self) -> None:
        if self.job is not None:
            self.job.stop()

    def _done(self, out) -> None:
        ev, thumbs = out
        self.job = None
        self.wiz.evaluation = ev
        self._thumbs = thumbs
        self._show(ev)
        self.state = "done"
        self.completeChanged.emit()
        self.evaluated.emit()

    def _failed(self, message: str) -> None:
        self.job = None
        self.state = "failed"
        card = self.wiz.card or {}
        test = (card.get("metrics") or {}).get("test") or {}
        self.headline.setText(f"The detailed evaluation failed ({message}). From training: test "
                              f"accuracy {_pct(test.get('accuracy'))}.")
        self.completeChanged.emit()
        self.evaluated.emit()

    def _show(self, ev: retrain.SplitEvaluation) -> None:
        rep, cur = ev.report, ev.current_report
        names = rep["class_names"]
        text = (f"<b>New model: {rep['accuracy'] * 100:.1f}%</b> correct on {rep['count']:,} "
                f"held-out images (macro F1 {rep['macro_f1'] * 100:.1f}%).")
        if cur is not None:
            text += (f" Current model ({self.wiz.current_title}): "
                     f"<b>{cur['accuracy'] * 100:.1f}%</b> on the same images.")
        if ev.better:
            verdict = ("<span style='color:#2e7d32'>The new model is better.</span>"
                       if cur is not None else
                       "<span style='color:#2e7d32'>The current model cannot classify these "
                       "classes; the new one can.</span>")
        else:
            verdict = ("<span style='color:#c62828'>The new model is <b>not</b> better than the "
                       "current one on these images; keep the current one unless you know "
                       "why.</span>")
        text += "<br>" + verdict
        if ev.note:
            text += f"<br><i>Note: {ev.note}.</i>"
        if cur is not None and len(self.wiz.folders) > 1:
            text += ("<br><i>Note: the current model may have been trained on some of these "
                     "images (the original training set was merged in), which flatters its "
                     "figures.</i>")
        self.headline.setText(text)

        cols = ["Class", "Precision", "Recall", "Images"]
        if cur is not None:
            cols[3:3] = ["Current P", "Current R"]
        self.per_class.setColumnCount(len(cols))
        self.per_class.setHorizontalHeaderLabels(cols)
        self.per_class.setRowCount(len(names))
        for r, name in enumerate(names):
            pc = rep["per_class"][name]
            vals = [name, _pct(pc["precision"]), _pct(pc["recall"])]
            if cur is not None:
                cc = cur["per_class"][name]
                vals += [_pct(cc["precision"]), _pct(cc["recall"])]
            vals.append(str(pc["support"]))
            for c, v in enumerate(vals):
                item = QTableWidgetItem(v)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.per_class.setItem(r, c, item)
        self.per_class.resizeColumnsToContents()

        cm = np.asarray(rep["confusion_matrix"])
        n = len(names)
        self.confusion.setRowCount(n)
        self.confusion.setColumnCount(n)
        self.confusion.setHorizontalHeaderLabels(names)
        self.confusion.setVerticalHeaderLabels(names)
        rows = cm.sum(axis=1, keepdims=True)
        frac = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
        for i in range(n):
            for j in range(n):
                item = QTableWidgetItem(str(int(cm[i, j])))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                shade = int(255 - 120 * frac[i, j])
                colour = QColor(shade, shade, 255) if i == j else QColor(255, shade, shade)
                if cm[i, j]:
                    item.setBackground(colour)
                item.setToolTip(f"true {names[i]}, predicted {names[j]}: {int(cm[i, j])}")
                self.confusion.setItem(i, j, item)

        self.wrong.clear()
        thumbs = getattr(self, "_thumbs", [])
        for k, m in enumerate(ev.misclassified):
            arr = thumbs[k] if k < len(thumbs) else None
            label = f"{m.true} → {m.predicted}\n{m.confidence * 100:.0f}%"
            if m.current_predicted is not None:
                label += f" (current: {m.current_predicted})"
            item = QListWidgetItem(QIcon(_pixmap(arr)), label)
            item.setToolTip(f"{m.path}\ntrue class {m.true}, new model says {m.predicted} "
                            f"({m.confidence * 100:.1f}%)")
            self.wrong.addItem(item)
        self.wrong_box.setTitle(f"Misclassified images ({len(ev.misclassified)})"
                                if ev.misclassified else "Misclassified images: none")

    def isComplete(self) -> bool:
        return self.state in ("done", "failed") or self.wiz.evaluation is not None


# ---- page 5: finish --------------------------------------------------------------------------
class FinishPage(QWizardPage):
    def __init__(self, wizard: RetrainWizard):
        super().__init__()
        self.wiz = wizard
        self.setTitle("Save the new model")
        self.setSubTitle("Nothing has been saved yet: Finish puts the model into your model "
                         "library; Cancel discards it. The bundled model is never changed.")
        self.setFinalPage(True)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.name = QLineEdit()
        self.name.textChanged.connect(self._update_target)
        self.target = QLabel()
        self.target.setWordWrap(True)
        self.use_now = QRadioButton("Use the new model now")
        self.later = QRadioButton("Keep using the current model; switch later in the model manager")
        QButtonGroup(self).addButton(self.use_now)
        self.use_now.group().addButton(self.later)
        form = QFormLayout()
        form.addRow("Name:", self.name)
        form.addRow("", self.target)
        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addLayout(form)
        lay.addWidget(self.use_now)
        lay.addWidget(self.later)
        lay.addStretch(1)

    def initializePage(self) -> None:
        w = self.wiz
        card = w.card or {}
        test = (card.get("metrics") or {}).get("test") or {}
        better = w.evaluation.better if w.evaluation is not None else True
        self.name.setText(card.get("name", "SSDC-MiniNet"))
        self.summary.setText(
            f"<b>{card.get('name', 'model')}</b>, {len(card.get('class_names', []))} classes "
            f"({', '.join(card.get('class_names', [])[:8])}), test accuracy "
            f"<b>{_pct(test.get('accuracy'))}</b>"
            + ("" if better else " - <span style='color:#c62828'>not better than the current "
                                 "model</span>") + ".")
        ev = w.evaluation
        if ev is not None and ev.current_report is not None:
            self.summary.setText(self.summary.text() + (
                f"<br>The current model ({w.current_title}) got "
                f"{ev.current_report['accuracy'] * 100:.1f}% on the same "
                f"{ev.current_report['count']} images."))
        (self.use_now if better else self.later).setChecked(True)
        self._update_target()

    def _update_target(self) -> None:
        path = self.wiz.library.next_path(slug(self.name.text() or "model"))
        self.target.setText(f"Saved as version {path.name} in {path.parent}")

    def validatePage(self) -> bool:
        if self.wiz.saved_path is not None:
            return True
        try:
            self.wiz.commit(self.name.text().strip() or "model", self.use_now.isChecked())
        except (BundleError, OSError) as exc:
            QMessageBox.critical(self, "Saving the model failed", str(exc))
            return False
        return True

"""Wizard page 1, the data: class folders and review verdicts, checked for problems."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QFileDialog, QGridLayout, QHeaderView,
                               QLabel, QLineEdit, QListView, QListWidget, QListWidgetItem,
                               QProgressBar, QPushButton, QSplitter, QTableWidget, QTableWidgetItem,
                               QTreeWidgetItem, QVBoxLayout, QWidget, QWizardPage)

from training.checks import ERROR, Report, find_problems, with_layout

from ... import retrain
from ..charts import on_palette
from .common import SEVERITY_COLOURS, THUMB, ProblemTree, read_thumbnail, thumb_pixmap
from ..workers import Task

if TYPE_CHECKING:  # the wizard imports its pages
    from .retrain_wizard import RetrainWizard


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
        self._job: Task | None = None
        self._generation = 0
        self._sources_checked: tuple | None = None   # the sources of the last check started
        self._timer = QTimer(self, singleShot=True, interval=300)
        self._timer.timeout.connect(self.start_check)

        self.folder_edit = QLineEdit(placeholderText="folder with one sub-folder per class")
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda: self._browse(self.folder_edit))
        self.verdicts_box = QCheckBox(verdicts_text(
            wizard.verdicts, (wizard.current_card or {}).get("class_names") or []))
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
            w.editingFinished.connect(self._edited)
            w.returnPressed.connect(self.schedule_check)   # Enter: check again, even unchanged
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
        self.class_table.setTabKeyNavigation(False)   # Tab goes on to the wizard's buttons
        self.class_table.setHorizontalHeaderLabels(["Class", "Images", ""])
        self.class_table.verticalHeader().hide()
        self.class_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.class_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        hh = self.class_table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)

        self.problem_tree = ProblemTree()
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
        """A check is coming: the report shown is no longer the images chosen, so the page is
        not complete until the check is done (Enter in a changed folder field went on to the
        settings page with the old folder's report, as the Enter also reached Next)."""
        if self.wiz.report is not None:
            self.wiz.report = None
            self.completeChanged.emit()
        self._timer.start(0)

    def _edited(self) -> None:
        """Typing done: checks the images unless nothing changed. Focus leaving the field
        unchanged (e.g. for Next) must not check again: the new check's empty report would
        leave the following pages without data."""
        folders, verdicts = self.sources()
        if (tuple(folders), len(verdicts)) != self._sources_checked:
            self.schedule_check()

    def sources(self) -> tuple[list[Path], list[tuple[Path, str]]]:
        folders = [f for f in (_folder_of(self.folder_edit.text()),
                               _folder_of(self.merge_edit.text())
                               if self.merge_box.isChecked() else None) if f is not None]
        verdicts = self.wiz.verdicts if self.verdicts_box.isChecked() else []
        return folders, verdicts

    def start_check(self) -> None:
        self._timer.stop()
        folders, verdicts = self.sources()
        key = (tuple(folders), len(verdicts))
        self._sources_checked = key
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

        def work(progress, should_stop):
            samples, layout = retrain.gather_samples(folders, verdicts, should_stop)
            report = find_problems(samples, model_classes=wiz.model_classes,
                                   input_size=wiz.full_size, native=True,
                                   progress=progress,
                                   should_stop=should_stop)
            with_layout(report, layout)
            report.source = " + ".join(str(f) for f in folders) + (
                (" + " if folders else "") + "review verdicts" if verdicts else "")
            thumbs = []
            by_class: dict[str, list] = {}
            for s in report.usable_samples():
                by_class.setdefault(s.label, []).append(s)
            for name in report.class_names:
                for s in by_class.get(name, [])[:3]:
                    thumbs.append((name, str(s.path), read_thumbnail(s.path)))
            return report, thumbs, key

        self._job = wiz.jobs.start(
            work, progress=lambda f, m, g=gen: self._progress(g, f, m),
            done=lambda out, g=gen: self._checked(g, out),
            failed=lambda msg, g=gen: self._check_failed(g, msg), background=False)

    def _progress(self, gen: int, fraction: float, message: str) -> None:
        if gen == self._generation:
            self.busy.setValue(int(fraction * 1000))
            self.status.setText(message[:1].upper() + message[1:] + "…")

    def _check_failed(self, gen: int, message: str) -> None:
        if gen != self._generation:
            return
        self._sources_checked = None   # leaving the field checks again
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
                tag_item.setForeground(QColor(on_palette("#1565c0", self.class_table.palette())))
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
            top.setForeground(0, QColor(on_palette(SEVERITY_COLOURS[p.severity],
                                                   self.problem_tree.palette())))
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
            item = QListWidgetItem(QIcon(thumb_pixmap(arr)), name)
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


def verdicts_text(verdicts, model_classes) -> str:
    """The review verdicts offered as training data, naming the classes the model does not have
    yet (typed in for images it flagged unknown): each becomes a class of the new model."""
    text = f"Include the {len(verdicts):,} images you classified in review"
    new: dict[str, int] = {}
    for _, label in verdicts:
        if model_classes and label not in model_classes:
            new[label] = new.get(label, 0) + 1
    if new:
        text += (" — new classes: " + ", ".join(f"{name} ({n:,})" for name, n in new.items()))
    return text


def _folder_of(text: str) -> Path | None:
    """The folder a path box names: its text as it is when that folder exists (a folder name
    ending in a space, chosen with Browse…, was stripped and then "not found"), else without
    the spaces around it (typed or pasted with them). None when the box is empty."""
    if not text.strip():
        return None
    exact = Path(text).expanduser()
    return exact if text != text.strip() and exact.exists() else Path(text.strip()).expanduser()

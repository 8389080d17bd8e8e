"""Wizard page 4, evaluation: the new model against the current one on the same held-out images."""
from __future__ import annotations

from typing import TYPE_CHECKING
import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import (QAbstractItemView, QGroupBox, QHeaderView, QLabel, QListView,
                               QListWidget, QListWidgetItem, QProgressBar, QSplitter,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWizardPage)

from training.card import ModelCard

from ... import retrain
from ..charts import on_palette
from .common import THUMB, new_run, pct, read_thumbnail, thumb_pixmap
from ..workers import Task

if TYPE_CHECKING:  # the wizard imports its pages
    from .retrain_wizard import RetrainWizard


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
        self.job: Task | None = None
        self.state = "idle"
        self.headline = QLabel()
        self.headline.setWordWrap(True)
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        self.bar = QProgressBar()   # while the held-out images are read and classified
        self.bar.setRange(0, 1000)
        self.bar.hide()
        self.per_class = QTableWidget(0, 5)
        self.per_class.verticalHeader().hide()
        self.per_class.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion = QTableWidget(0, 0)
        self.confusion.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for table in (self.per_class, self.confusion):   # Tab goes on, not from cell to cell
            table.setTabKeyNavigation(False)
        self.confusion.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.wrong = QListWidget()
        self.wrong.setViewMode(QListView.ViewMode.IconMode)
        self.wrong.setIconSize(QSize(THUMB, THUMB))
        # room for the label's lines in the system font: "true → predicted" wraps to two, and
        # the confidence under it was cut off at the default font
        self.wrong.setGridSize(QSize(THUMB + 90, THUMB + 4 * self.wrong.fontMetrics().height() + 8))
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
        lay.addWidget(self.bar)
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

        def work(progress, should_stop):
            ev = retrain.evaluate_split(bundle, data_dir, current, origin, progress, should_stop)
            thumbs = [read_thumbnail(m.path) for m in ev.misclassified[:120]]
            return ev, thumbs

        self.bar.setValue(0)
        self.bar.setFormat("%p%")
        self.bar.show()
        if self.job is not None:   # Back, then Next at once: the first evaluation still ends
            self.job.stop()
        mine = new_run(self)   # an earlier evaluation's late "cancelled" is not this one's

        self.job = w.jobs.start(work, done=mine(self._done), failed=mine(self._failed),
                                progress=mine(self._progress),
                                cancelled=mine(lambda _m: self._failed("cancelled")),
                                background=False)

    def _progress(self, fraction: float, message: str) -> None:
        self.bar.setValue(int(round(1000 * min(max(fraction, 0.0), 1.0))))
        if message:
            self.bar.setFormat(f"%p% - {message}")

    def cleanupPage(self) -> None:
        if self.job is not None:
            self.job.stop()

    def _done(self, out) -> None:
        ev, thumbs = out
        self.job = None
        self.bar.hide()
        self.wiz.evaluation = ev
        self._thumbs = thumbs
        self._show(ev)
        self.state = "done"
        self.completeChanged.emit()
        self.evaluated.emit()

    def _failed(self, message: str) -> None:
        self.job = None
        self.bar.hide()
        self.state = "failed"
        test = ModelCard.of(self.wiz.card).metrics("test")
        self.headline.setText(f"The detailed evaluation failed ({message}). From training: test "
                              f"accuracy {pct(test.get('accuracy'))}.")
        self.completeChanged.emit()
        self.evaluated.emit()

    def _show(self, ev: retrain.SplitEvaluation) -> None:
        rep, cur = ev.report, ev.current_report
        names = rep["class_names"]
        recalls = rep["per_class"]
        weakest = min(names, key=lambda n: (recalls[n]["support"] == 0, recalls[n]["recall"]))
        text = (f"<b>New model: macro F1 {rep['macro_f1'] * 100:.1f}%</b>, lowest class recall "
                f"<b>{recalls[weakest]['recall'] * 100:.0f}%</b> ({weakest}); "
                f"{rep['accuracy'] * 100:.1f}% correct on {rep['count']:,} held-out images.")
        if cur is not None:
            text += (f" Current model ({self.wiz.current_title}): macro F1 "
                     f"<b>{cur['macro_f1'] * 100:.1f}%</b>, "
                     f"{cur['accuracy'] * 100:.1f}% on the same images.")
        problems = ev.problems
        red = on_palette("#c62828", self.headline.palette())     # readable on a dark theme too
        green = on_palette("#2e7d32", self.headline.palette())
        if problems:
            verdict = (f"<span style='color:{red}'><b>Do not use this model:</b> "
                       + "; ".join(problems) + ". Add images of the weak classes or train "
                       "longer; it will not be offered for use.</span>")
        elif ev.lost_classes:
            verdict = (f"<span style='color:{red}'>The new model does not know "
                       + ", ".join(ev.lost_classes) + ", which the current one finds; it is "
                       "not offered in its place.</span>")
        elif ev.better:
            verdict = (f"<span style='color:{green}'>The new model is better.</span>"
                       if cur is not None else
                       f"<span style='color:{green}'>The current model cannot classify these "
                       "classes; the new one can.</span>")
        else:
            verdict = (f"<span style='color:{red}'>The new model is <b>not</b> better than the "
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

        cols = ["Class", "Recall", "Precision", "Images"]
        if cur is not None:
            cols[3:3] = ["Current R", "Current P"]
        self.per_class.setColumnCount(len(cols))
        self.per_class.setHorizontalHeaderLabels(cols)
        self.per_class.setRowCount(len(names))
        for r, name in enumerate(names):
            pc = rep["per_class"][name]
            vals = [name, pct(pc["recall"]), pct(pc["precision"])]
            if cur is not None:
                cc = cur["per_class"][name]
                vals += [pct(cc["recall"]), pct(cc["precision"])]
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
                    item.setForeground(QColor("black"))   # a dark theme's white: 1.1:1 on it
                item.setToolTip(f"true {names[i]}, predicted {names[j]}: {int(cm[i, j])}")
                self.confusion.setItem(i, j, item)

        self.wrong.clear()
        thumbs = getattr(self, "_thumbs", [])
        for k, m in enumerate(ev.misclassified):
            arr = thumbs[k] if k < len(thumbs) else None
            label = f"{m.true} → {m.predicted}\n{m.confidence * 100:.0f}%"
            if m.current_predicted is not None:
                label += f" (current: {m.current_predicted})"
            item = QListWidgetItem(QIcon(thumb_pixmap(arr)), label)
            item.setToolTip(f"{m.path}\ntrue class {m.true}, new model says {m.predicted} "
                            f"({m.confidence * 100:.1f}%)")
            self.wrong.addItem(item)
        self.wrong_box.setTitle(f"Misclassified images ({len(ev.misclassified)})"
                                if ev.misclassified else "Misclassified images: none")

    def isComplete(self) -> bool:
        return self.state in ("done", "failed") or self.wiz.evaluation is not None

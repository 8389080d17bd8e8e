"""Wizard page 5, finish: the name, and whether to use the new model now."""
from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QButtonGroup, QFormLayout, QLabel, QLineEdit, QMessageBox,
                               QRadioButton, QVBoxLayout, QWizardPage)

from training.bundle import BundleError
from training.card import ModelCard

from ...library import LibraryError
from ..charts import on_palette
from .common import pct

if TYPE_CHECKING:  # the wizard imports its pages
    from .retrain_wizard import RetrainWizard


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
        card = ModelCard.of(w.card)
        test = card.metrics("test")
        ev = w.evaluation
        # without the evaluation page's comparison (cancelled or failed), the card's own test
        # figures judge the model, and it is not called better than the current one
        problems = ev.problems if ev is not None else (card.usability_problems() or [])
        better = ev.better if ev is not None else False
        self.name.setText(card.data.get("name", "SSDC-MiniNet"))
        red = on_palette("#c62828", self.summary.palette())   # readable on a dark theme too
        self.summary.setText(
            f"<b>{card.name}</b>, {len(card.class_names)} classes "
            f"({', '.join(card.class_names[:8])}), test accuracy "
            f"<b>{pct(test.get('accuracy'))}</b>"
            + ("" if better or problems else f" - <span style='color:{red}'>not better than "
                                              "the current model</span>") + ".")
        if problems:
            self.summary.setText(self.summary.text() + (
                f"<br><span style='color:{red}'><b>Not usable:</b> " + "; ".join(problems)
                + ". It can be saved to look at, but not put into use.</span>"))
        for note in card.notes():
            self.summary.setText(self.summary.text() + "<br>" + note)
        if card.export_failure:
            self.summary.setText(self.summary.text() + (
                "<br>Its fast runtime (LiteRT) export failed its check, so the app runs it on "
                "TensorFlow: the same results, slower to load and to run. Details: "
                + html.escape(card.export_failure)))
        if ev is None:
            self.summary.setText(self.summary.text() + (
                "<br>It was not compared with the current model (the evaluation did not run)."))
        if ev is not None and ev.current_report is not None:
            self.summary.setText(self.summary.text() + (
                f"<br>The current model ({w.current_title}) got "
                f"{ev.current_report['accuracy'] * 100:.1f}% on the same "
                f"{ev.current_report['count']} images."))
        (self.use_now if better else self.later).setChecked(True)
        self.use_now.setEnabled(not problems)
        self.use_now.setToolTip("Not offered: " + "; ".join(problems) if problems else "")
        self._update_target()

    def _update_target(self) -> None:
        path = self.wiz.library.next_path(self.name.text() or "model")
        self.target.setText(f"Saved as version {path.name} in {path.parent}")

    def validatePage(self) -> bool:
        if self.wiz.saved_path is not None:
            return True
        try:
            self.wiz.commit(self.name.text().strip() or "model",
                            self.use_now.isChecked() and self.use_now.isEnabled())
        except (BundleError, OSError, LibraryError) as exc:
            if self.wiz.saved_path is not None:   # saved, but not put into use
                QMessageBox.warning(self, "Not put into use", f"Saved as "
                                    f"{self.wiz.saved_path.name}, not put into use: {exc}")
                return True
            QMessageBox.critical(self, "Saving the model failed", str(exc))
            return False
        return True

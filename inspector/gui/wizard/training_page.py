"""Wizard page 3, training: live curves, progress, Finish now (keeps the best epoch so far) and
Stop (keeps nothing)."""
from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout,
                               QWizardPage)

from training.card import ModelCard

from ... import retrain
from .common import TRAIN_PEN, VAL_PEN, hms, new_run, pct
from ..workers import Task

log = logging.getLogger(__name__)

# training.train.train's progress once the training proper is over (the temperature, the unknown
# detector, the export and the test evaluation follow)
AFTER_TRAINING = 0.94
# each training chart at least this tall: 260 made the page taller than a 1366x768 screen at 150%
TRAINING_CHART_MIN_HEIGHT = 170

if TYPE_CHECKING:  # the wizard imports its pages
    from .retrain_wizard import RetrainWizard


# ---- page 3: training ------------------------------------------------------------------------
class TrainingPage(QWizardPage):
    finished = Signal(bool)  # True: a model was trained; False: stopped or failed
    epoch_done = Signal(dict)  # the epoch record just drawn

    def __init__(self, wizard: RetrainWizard):
        super().__init__()
        import pyqtgraph as pg

        self.wiz = wizard
        self.setTitle("Training")
        self.setSubTitle("The model trains in the background; you can keep working. Finish now "
                         "ends it after the current epoch and keeps its best epoch so far; Stop "
                         "ends it within one batch and keeps nothing.")
        self.job: Task | None = None
        self.history: list[dict] = []
        self._trained_key = None
        self.state = "idle"  # idle, running, finishing, stopping, done, cancelled, failed

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
        self._finish = threading.Event()   # the running job's "Finish now"
        self.finish_button = QPushButton("Finish no&w")
        self.finish_button.setToolTip(
            "End the training after the current epoch and go on with its best epoch so far: "
            "it is calibrated, exported and evaluated like a model that ran its full schedule "
            "(from the first epoch of the training on; not during the preparation, the new "
            "head's fit or the augmentation check)")
        self.finish_button.clicked.connect(self.finish_now)
        self.stop_button = QPushButton("Stop training")
        self.stop_button.setToolTip("End the training within one batch; nothing is kept")
        self.stop_button.clicked.connect(self.stop)
        self.again_button = QPushButton("Train again")
        self.again_button.clicked.connect(self.start)
        self.again_button.hide()

        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.acc_plot)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.finish_button)
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
        p.setMinimumHeight(TRAINING_CHART_MIN_HEIGHT)
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
            if self.state != "stopping":
                return
            # Back stopped it and Next came before it ended: it ends on its own (nothing of it
            # is kept), and what it still sends is ignored (``mine``)
            self.job = None
        mine = new_run(self)   # this run's signals only (set before any early return below)
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
        self._finish = threading.Event()
        self.finish_button.show()
        self.finish_button.setEnabled(False)   # from the training's first epoch on (_epoch)
        self.again_button.hide()
        self.state = "running"
        self.completeChanged.emit()

        room = retrain.space_problem(w.work, w.current_bundle)
        if room:   # said now, not after the training's minutes when the model is written
            self._failed(room)
            return
        config = w.config or w.settings_page.config()
        run_dir = w.new_work_folder("run")
        out = run_dir / "bundle"
        folder = (retrain.training_folder(w.report, w.folders, w.verdicts if w.use_verdicts else [],
                                          sorted(w.exclude)) if w.report else None)
        samples = w.usable_samples()
        digests = retrain.sample_digests(w.report)
        srcs = [str(f) for f in w.folders] + (["review verdicts"] if w.use_verdicts else [])
        notes = (f"retrained in the wizard from {', '.join(srcs)}; started from "
                 f"{'scratch' if not config.init_bundle else w.current_title}")

        finish = self._finish

        def work(progress, should_stop, report):
            from training.train import train

            with retrain.failures_named(run_dir):
                data_dir, origin = retrain.training_data(
                    folder, samples, run_dir / "data", digests, lambda f, m: progress(0.0, m),
                    should_stop)
                card = train(data_dir, out, config, progress, should_stop,
                             lambda record: report(dict(record)), notes=notes,
                             finish_now=finish.is_set)
            return card, out, Path(data_dir), origin

        self._started = time.monotonic()
        self._key_started = self._key()

        self.job = w.jobs.start(work, progress=mine(self._progress), report=mine(self._epoch),
                                done=mine(self._done), failed=mine(self._failed),
                                cancelled=mine(self._cancelled), background=False)

    def stop(self) -> None:
        if self.job is not None and self.state in ("running", "finishing"):
            self.job.stop()
            self.state = "stopping"
            self.stop_button.setEnabled(False)
            self.finish_button.setEnabled(False)
            self.status.setText("Stopping after the current batch…")

    def finish_now(self) -> None:
        """Ends the training after the current epoch; its best epoch so far goes on to the
        calibration, the export and the evaluation (``training.train.fit``'s ``finish_now``)."""
        if self.job is not None and self.state == "running":
            self._finish.set()
            self.state = "finishing"
            self.finish_button.setEnabled(False)
            self.status.setText("Finishing after the current epoch; the best epoch so far is "
                                "kept…")

    def _progress(self, fraction: float, message: str) -> None:
        if fraction >= AFTER_TRAINING:   # calibrating, exporting: too late to finish sooner
            self.finish_button.setEnabled(False)
        if self.state == "running" or (self.state == "finishing" and fraction >= AFTER_TRAINING):
            self.progress.setValue(int(fraction * 1000))
            self.status.setText(message)

    def _epoch(self, rec: dict) -> None:
        """An epoch of the training proper (the head phase and the augmentation check report
        none): from the first on, Finish now can act."""
        self.history.append(rec)
        if self.state == "running":
            self.finish_button.setEnabled(True)
        x = [r["epoch"] for r in self.history]
        for key, curve in self.curves.items():
            ys = [r.get(key) for r in self.history]
            if any(v is None for v in ys):
                continue
            scale = 100.0 if "accuracy" in key else 1.0
            curve.setData(x, [v * scale for v in ys])
        config = self.wiz.config or self.wiz.settings_page.config()
        total = f"about {config.epochs}" if config.time_budget_s > 0 else str(config.epochs)
        # unequal classes: the balanced accuracy the best epoch is chosen by (a model that calls
        # every magnetic tile "free" has 71% plain accuracy and 17% balanced)
        key = "val_balanced_accuracy" if "val_balanced_accuracy" in rec else "val_accuracy"
        what = "balanced validation accuracy" if key != "val_accuracy" else "validation accuracy"
        best = max(self.history, key=lambda r: r.get(key, r.get("accuracy", 0)))
        val = (f" · best {what} <b>{best[key] * 100:.1f}%</b> "
               f"(epoch {best['epoch']})" if key in best else "")
        self.stats.setText(f"Epoch {rec['epoch']} of {total} · {rec['seconds']:.0f} s per epoch · "
                           f"<b>{hms(rec.get('seconds_left', 0))} left</b>{val}")
        self.epoch_done.emit(rec)

    def _done(self, out) -> None:
        card, bundle, data_dir, origin = out
        w = self.wiz
        w.card, w.bundle_dir, w.data_dir, w.origin = card, Path(bundle), data_dir, origin
        self._trained_key = self._key_started
        self.progress.setValue(1000)
        took = time.monotonic() - self._started
        model_card = ModelCard.of(card)
        test = model_card.metrics("test")
        early = "Finished early as asked. " if model_card.finished_by_user else ""
        self._end("done", f"{early}Training done in {hms(took)}. Test accuracy "
                          f"{pct(test.get('accuracy'))} on {test.get('count', 0)} held-out "
                          "images. Next: compare it with the current model.")

    def _failed(self, message: str) -> None:
        self._end("failed", f"Training failed: {message}")

    def _cancelled(self, message: str) -> None:
        self._end("cancelled", "Training stopped; nothing was saved. Change the settings (Back) "
                               "or train again.")

    def _end(self, state: str, text: str) -> None:
        """The run is over (done, failed or cancelled): says so, offers to train again."""
        self.job = None
        self.state = state
        self.status.setText(text)
        self.stop_button.hide()
        self.finish_button.hide()
        self.again_button.show()
        self.completeChanged.emit()
        if state != "done":
            log.warning("training ended %s: %s", state, text)
        self.finished.emit(state == "done")

    def isComplete(self) -> bool:
        return self.state == "done" and self.wiz.bundle_dir is not None

"""Wizard page 2, the settings: defaults fitted to a time budget, and the time estimate."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING
from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout,
                               QFrame, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QRadioButton,
                               QScrollArea, QSpinBox, QVBoxLayout, QWidget, QWizardPage)

from training.train import TrainConfig
from training.transfer import earliest_stop

from ... import retrain
from .common import PAGE_SETTINGS, about_time
from ..workers import Task

if TYPE_CHECKING:  # the wizard imports its pages
    from .retrain_wizard import RetrainWizard


# ---- page 2: settings ------------------------------------------------------------------------
class SettingsPage(QWizardPage):
    measured = Signal(float)  # seconds per training image at the suggested size, once known

    def __init__(self, wizard: RetrainWizard):
        super().__init__()
        self.wiz = wizard
        self.setTitle("Training settings")
        self.setSubTitle("The defaults work on a new data set without tuning; the number of "
                         "epochs is chosen to fit about "
                         f"{retrain.DEFAULT_BUDGET_SECONDS // 60} minutes on this PC (up to "
                         f"{retrain.STRETCH_RATIO * retrain.DEFAULT_BUDGET_SECONDS / 60:.3g} "
                         "when the data needs more epochs than that buys).")
        self._measure_job: Task | None = None
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
        lay.setContentsMargins(0, 0, 0, 0)
        body = QWidget()
        top = QHBoxLayout(body)
        left = QVBoxLayout()
        left.addWidget(start)
        left.addWidget(basics)
        left.addWidget(self.estimate)
        left.addWidget(self.advanced_toggle)
        left.addStretch(1)
        top.addLayout(left, 3)
        top.addWidget(self.advanced, 2)
        # scrolls where the wizard is short (a 1366x768 screen at 150%: the advanced settings
        # made the page taller than the screen, its buttons below it)
        scroll = QScrollArea()
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)   # no extra Tab stop
        lay.addWidget(scroll)

        for w in (self.epochs, self.batch, self.val_pct, self.test_pct, self.warmup, self.seed,
                  self.lr, self.smoothing, self.rotation, self.shift, self.brightness,
                  self.contrast, self.dropout):
            # a typed value counts once typed (Enter, Tab, a click elsewhere): counted at every
            # key, the wizard's update after each one rewrote the box, so that "0.15" typed into
            # label smoothing kept 0.0 and "0.0015" as the learning rate 0.001 (an audit)
            w.setKeyboardTracking(False)
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
        if not self._filling and what not in self._touched:
            self._touched.add(what)
            self._changed()   # its own valueChanged ran first: epochs by hand end the budget

    # ---- defaults and the time estimate ---------------------------------------------------
    def suggestion(self, smaller_when_short: bool = True, stretch: bool = True) -> TrainConfig:
        w = self.wiz
        # a guess stands for the speed at the full size until one is measured
        spi = w.seconds_per_image or retrain.guess_seconds_per_image(self._full())
        return retrain.suggest_settings(
            w.counts(), spi, current_bundle=w.current_bundle if w.current_card else None,
            current_card=w.current_card, class_names=w.class_names(),
            from_scratch=self.from_scratch.isChecked() or not w.current_card,
            image_side=self._image_side(), smaller_when_short=smaller_when_short,
            stretch=stretch)

    def _image_side(self) -> float | None:
        return retrain.median_side(self.wiz.report) if self.wiz.report else None

    def _full(self) -> int:
        """The size the images train at without the short-budget rule."""
        return retrain.full_training_size(self.wiz.current_card, self._image_side())

    def _measured_speeds(self) -> dict[int, float]:
        """The speeds measured so far by size ({} before any; a number set by tests: none)."""
        speeds = self.wiz.seconds_per_image
        return dict(speeds) if isinstance(speeds, dict) else {}

    def _speed_text(self, c: TrainConfig, spi: float) -> str:
        """What the speed shown rests on: measured at the size trained at, or carried over from
        another size's measurement (a second measurement that failed)."""
        speeds = self.wiz.seconds_per_image
        rate = f"{1 / spi:.0f} training images per second at {c.input_size}x{c.input_size}"
        if not isinstance(speeds, dict) or c.input_size in speeds:
            return "measured " + rate
        at = retrain.nearest_measured(speeds, c.input_size)
        return f"about {rate}, from the speed measured at {at}x{at}"

    def _stretch_text(self, c: TrainConfig) -> str:
        """Why the estimate is longer than the default budget, if the data needs the epochs."""
        exact = self.suggestion(stretch=False)
        if exact.input_size != c.input_size or c.epochs <= exact.epochs:
            return ""
        return (f"; longer than {retrain.DEFAULT_BUDGET_SECONDS // 60} minutes, which buy "
                f"about {exact.epochs} epochs: a fine-tune needs about {retrain.STRETCH_EPOCHS}")

    def _size_text(self, c: TrainConfig) -> str:
        """Why the training's size differs from the current model's input, if it does."""
        w = self.wiz
        full = self._full()
        if c.input_size < full:
            at_full = self.suggestion(smaller_when_short=False, stretch=False)
            return (f", smaller than the full {full}x{full}, where this budget buys only "
                    f"about {at_full.epochs} epochs")
        if c.input_size == w.input_size:
            return ""
        if c.input_size > w.input_size and w.full_size > w.input_size and \
                not self.from_scratch.isChecked():
            return (f", larger than the current model's {w.input_size}x{w.input_size}: it was "
                    f"trained smaller than its training images")
        return f", the images' own size; the current model takes {w.input_size}x{w.input_size}"

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
        suggested = self.suggestion()
        self.apply(suggested)
        speeds = w.seconds_per_image
        if speeds is None or (isinstance(speeds, dict) and suggested.input_size not in speeds):
            self._measure()   # not yet, or not at the size now chosen (other data, scratch)

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
            # epochs set by hand: no budget to be short of, so the full size (as the command's
            # --epochs); its speed is always measured first
            input_size=(self._full() if "epochs" in self._touched else self._base.input_size),
            class_names=w.class_names(),
            # epochs set by hand: exactly those, not the suggested time budget
            time_budget_s=0.0 if "epochs" in self._touched else self._base.time_budget_s,
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
        spi = (None if w.seconds_per_image is None
               else retrain.seconds_per_image_at(w.seconds_per_image, c.input_size))
        counts = w.counts()
        tr, va, te = retrain.split_counts(counts, c.val_fraction, c.test_fraction)
        split = f"{tr:,} images to train on, {va:,} to validate, {te:,} to test"
        if spi is None:
            guess = retrain.estimate_seconds(counts, c,
                                             retrain.guess_seconds_per_image(c.input_size))
            self.estimate.setText(f"{split}.<br>Estimated time: {about_time(guess)} "
                                  "<i>(measuring the speed of this PC…)</i>")
        else:
            secs = retrain.estimate_seconds(counts, c, spi)
            bound = (f" at most: training stops early when {c.patience} epochs in a row bring "
                     f"no better validation score, from epoch {earliest_stop(c.epochs)} on"
                     if c.patience else "")
            if c.time_budget_s > 0:
                bound = (f": training ends on time, about {c.epochs} epochs at this speed (its "
                         "schedule runs on the clock)") + self._stretch_text(c) + bound
            self.estimate.setText(
                f"{split}.<br><b>Estimated time on this PC: {about_time(secs)}</b>{bound} "
                f"({self._speed_text(c, spi)}{self._size_text(c)}).")
        self.completeChanged.emit()

    def _measure(self) -> None:
        """Measures this PC's training speed at the full size first, then, when that speed makes
        the settings choose another size (a short budget: retrain.SHORT_BUDGET_SIZE), there too
        (``wiz.seconds_per_image``: {input size: seconds per image})."""
        w = self.wiz
        if self._measure_job is not None:
            return
        config = self.suggestion(smaller_when_short=self._full() in self._measured_speeds())
        config = replace(config, batch_size=16)
        names = w.class_names()

        def work(progress, should_stop):
            return config.input_size, retrain.measure_seconds_per_image(
                config, names, should_stop=should_stop)

        self._measure_job = w.jobs.start(work, done=self._measured, failed=self._measure_failed,
                                         background=False)
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802
        """Not before this PC's speed is measured (seconds): the epochs, the fixed costs and the
        estimate follow from it, and training beside the measurement would slow both."""
        return self._measure_job is None

    def _measured(self, result: tuple[int, float]) -> None:
        self._measure_job = None
        size, spi = result
        w = self.wiz
        w.seconds_per_image = {**self._measured_speeds(), int(size): float(spi)}
        if w.currentId() != PAGE_SETTINGS:
            # the user went back (the data may be re-checked, so no suggestion now): the speed
            # is kept, and showing the page again measures another size if one is needed
            self.completeChanged.emit()
            return
        suggested = self.suggestion()
        if suggested.input_size not in w.seconds_per_image:
            self._measure()   # the measured speed chose another size: measure it there
            return
        self.apply(suggested, only_untouched=True)
        self.completeChanged.emit()
        self.measured.emit(w.seconds_per_image[suggested.input_size])

    def _measure_failed(self, message: str) -> None:
        self._measure_job = None
        if isinstance(self.wiz.seconds_per_image, dict) and \
                self.wiz.currentId() == PAGE_SETTINGS:
            # a second size failed: the first size's speed, carried over, serves
            self.apply(self.suggestion(), only_untouched=True)
        self.completeChanged.emit()   # else the guessed speed serves
        text = self.estimate.text()
        if "(measuring the speed of this PC…)" in text:
            self.estimate.setText(text.replace(
                "(measuring the speed of this PC…)",
                f"(the speed of this PC could not be measured: {message})"))
        else:   # the page shows the first size's speed, carried over: say why
            self.estimate.setText(text + f"<br>The speed at the size chosen could not be "
                                         f"measured: {message}")

    def validatePage(self) -> bool:
        self.wiz.config = self.config()
        return True

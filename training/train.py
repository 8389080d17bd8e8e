"""Training SSDC-MiniNet: pure functions that take plain data plus ``progress(fraction, message)``
and ``should_stop()`` callables, so the command line, the retraining wizard and the tests all
drive the same code. Qt-free.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import data as data_mod
from .provenance import code_version
from . import schedule
from . import transfer
from .bundle import (CARD_FILE, MODEL_FILE, SPLIT_FILE, check_bundle_target, library_versions,
                     load_bundle, write_bundle_atomic, write_json)
from .cancel import Progress, ShouldStop, never, quiet
from .card import VIEW_KEY, geometry_dropped
from .fused_bn import use_fused_batch_norm
from .transfer import init_record, stop_early
from .augment import (augment_image, augmented_batches, consistency_loss,  # noqa: F401
                      paired_views, steps_per_epoch, training_datasets)
from .metrics import classification_report, format_report, save_confusion_png

log = logging.getLogger(__name__)

# TrainConfig.input_norm: "auto" and training.model.INPUT_NORMS (not imported: keras)
INPUT_NORM_CHOICES = ("auto", "standardize", "standardize_colour", "rescale")

EpochHook = Callable[[dict], None]
TrainingCancelled = data_mod.Cancelled  # raised when should_stop() turned true

MIN_INPUT_SIZE, MAX_INPUT_SIZE = 16, 1024   # the model's square input, pixels


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; saved in the model card."""
    design: str = "A"  # chosen by validation; see docs/model.md ("Which design, and why")
    epochs: int = 50
    batch_size: int = 32
    learning_rate: float = 2e-3
    lr_schedule: str = "cosine"  # "cosine" (linear warm-up, cosine decay to 0) or "constant"
    warmup_epochs: int = 2
    label_smoothing: float = 0.05
    augment: bool = True
    flips: bool = True  # horizontal and vertical flips and transposition (90-degree turns)
    rotation_degrees: float = 15.0  # the bundled 1.2.0-1.4.0: 45 (with the turns, every angle)
    shift_fraction: float = 0.1
    # False: none of the augmentation's geometry (turns, mirrors, rotation, shift, the camera's
    # field of view and software turns), only what a camera does to the light and the pixels
    # (lighting, uneven light, blur, noise, JPEG): for images whose orientation and scale carry
    # information. The augmentation check falls back to it ("camera only") when the whole
    # augmentation holds a data set's classes back (_augmentation_check)
    geometry: bool = True
    brightness: float = 0.1  # +- fraction of full scale
    contrast: float = 0.1  # +- fraction (without camera_shifts)
    camera_shifts: bool = True  # blur, noise, JPEG, lighting, scale (training.shifts)
    camera: str = "standard"  # the camera's ranges: training.shifts.CAMERAS ("wide_scale": 1.4.0)
    # the share of the wider views whose surround is other images of the same class instead of
    # the mirror (training.shifts.wider_surround); None: the camera's own (0 for every camera)
    view_tiled: float | None = None
    # the share of images turned by software with constant-filled corners
    # (training.shifts.rotate_filled); None: the camera's own (0 for every camera)
    filled: float | None = None
    val_fraction: float = 1 / 12
    test_fraction: float = 1 / 12
    seed: int = 1234
    input_size: int = 200
    dropout: float = 0.0
    # "standardize": each image's own mean (per colour channel) and contrast are divided out
    # inside the model (training.model); "standardize_colour": the same with one mean for the
    # three channels, so an image's overall colour reaches the network; "rescale": 0..255 to
    # -1..1 as in the 1.0 bundle; "auto": standardize_colour when the training images are in
    # colour (training.images.in_colour), else standardize (with_input_norm; the same
    # computation on grey images). Fine-tuning converts.
    input_norm: str = "auto"
    class_names: tuple[str, ...] | None = None
    init_bundle: str | None = None  # fine-tune from this bundle
    # unequal classes: "balanced" weighs each class's loss by n / (classes * n_c) throughout,
    # "deferred" (the default) only for the last third of the fine-tune (DeferredWeights), and
    # either way the best epoch is chosen by balanced validation accuracy
    # (training.transfer.class_weights); "none" neither. Equal classes are not weighted at all,
    # so the bundled model's NEU recipe is the same under each
    class_weighting: str = "deferred"
    head_first: bool = True  # a new head is first fitted on frozen features (training.transfer)
    patience: int = 0  # stop after this many epochs without a better validation epoch (0: never)
    # > 0: training (the fine-tuning phase) ends on time: this many seconds, the schedule on the
    # clock, ``epochs`` the estimate (training.schedule); 0: exactly ``epochs`` epochs
    time_budget_s: float = 0.0
    # with augmentation: first train CHECK_EPOCHS epochs augmented and CHECK_EPOCHS clean from the
    # same start and drop the augmentation when clean is clearly better on validation, or the
    # augmented run made much less progress above chance (the wizard's fine-tunes with new
    # classes; training.transfer.keep_augmentation)
    augment_check: bool = False
    # > 0 (with the camera shifts on; ignored when training clean): the best epoch is chosen on
    # the validation images plus this many camera-shifted copies of each
    # (training.shifts.shifted_copies), not on clean images alone; the card's phase record says
    # so when it applied
    val_shifted_copies: int = 0
    # > 0 (with augmentation): every batch holds each of its images twice, augmented
    # independently, and the loss adds this weight times the Jensen-Shannon divergence between
    # the two views' predictions (AugMix's consistency; training.augment.consistency_loss): the
    # model is taught to say the same of an image and of its shifted copy. An epoch then costs
    # about twice the steps' time.
    consistency: float = 0.0
    # what the consistency compares (with ``consistency`` > 0): "views", two independently
    # augmented views, symmetric (AugMix's Jensen-Shannon divergence); "clean", the image turned
    # and shifted as the recipe does but through no camera, against the same image through a
    # random camera, the clean view's prediction held fixed (no gradient) as the target of the
    # shifted one: KL(p_clean || p_shifted), the weak-to-strong teacher of UDA and FixMatch
    consistency_teacher: str = "views"
    # > 0: mixup (Zhang et al., "mixup: Beyond empirical risk minimization", ICLR 2018): each
    # training batch is blended with a shuffled copy of itself, images and one-hot labels alike,
    # by a weight drawn from Beta(mixup, mixup) per batch (training.augment.mixed_batch); the
    # validation images stay as they are. Not with ``consistency``. 0: off
    mixup: float = 0.0
    # the LiteRT inspection export's int8 file (calibrated on 300 training images and checked on
    # the test split): about a fifth of the wizard's fixed costs, 21 of 47 s for 1,650 NEU images
    # on a 2-core PC, for a file that ran slower than fp32 in every measurement on x86 CPUs
    # (1.7-10x: docs/runtime.md), so the wizard leaves it out (inspector.retrain.defaults) and
    # ``python -m training export`` adds it when wanted
    export_int8: bool = True
    # > 0: the weights kept are the latest epoch's whose validation score is within this many
    # validation images' worth of the best (one image of the class with the fewest validation
    # images for balanced accuracy, one of all for plain accuracy: selection_margin), not the
    # best alone. The wizard's 1: on magnetic tiles' 134 validation images (3 of fray) one image
    # moves balanced accuracy by 5.6 points, and the best alone picked epoch 7 of 18 (85.2%
    # against 82.8% at the end) at 74% accuracy: macro F1 73.7% on test. 0: the best alone
    # (the bundled recipe, whose commands reproduce its weights)
    later_epoch_margin_images: float = 0.0
    # fine-tuning (from ``init_bundle``, or a recipe's later stage): the layers that work at the
    # input's full and half resolution (design A: the stem, the first two blocks and the first
    # SE block; training.transfer.freeze_early_layers) keep the start model's weights, so their
    # backward pass, the most expensive part of a step, is skipped: a step takes 0.6 of the
    # time. Ignored from scratch; not the wizard's default. Magnetic tiles, 5-fold cv from the
    # bundled model, clean: macro F1 86.9% with 24 epochs frozen against 84.8% with 15 of every
    # layer in about the same time; the wizard's whole command on the slow PC's budget: no
    # better (docs/retraining.md)
    freeze_early: bool = False
    name: str = "SSDC-MiniNet"
    version: str = "1.0.0"

    def problems(self) -> list[str]:
        """What is wrong with these settings (named as the command line's options), [] if
        nothing: checked before any work, so that a typo never costs a training run."""
        from .shifts import CAMERAS

        bad = []

        def need(ok: bool, text: str) -> None:
            if not ok:
                bad.append(text)

        finite = math.isfinite
        need(self.epochs >= 1, f"--epochs must be at least 1 (got {self.epochs})")
        need(0 <= self.seed < 2**32,   # NumPy's and TensorFlow's seeds are 32-bit
             f"--seed must be from 0 to {2**32 - 1} (got {self.seed})")
        need(finite(self.val_fraction) and finite(self.test_fraction)
             and 0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1
             and self.val_fraction + self.test_fraction < 1,
             "--val-fraction and --test-fraction must each be from 0 to below 1, together below "
             f"1 (got {self.val_fraction:g} and {self.test_fraction:g})")
        need(self.batch_size >= 1, f"--batch must be at least 1 (got {self.batch_size})")
        need(finite(self.learning_rate) and 0 < self.learning_rate <= 1,
             f"--lr must be above 0 and at most 1 (got {self.learning_rate:g})")
        need(self.lr_schedule in ("cosine", "constant"),
             f"--schedule must be cosine or constant (got {self.lr_schedule!r})")
        need(self.warmup_epochs >= 0, f"warm-up epochs must not be negative ({self.warmup_epochs})")
        need(0 <= self.label_smoothing < 1,
             f"--label-smoothing must be from 0 to below 1 (got {self.label_smoothing:g})")
        need(0 <= self.rotation_degrees <= 180,
             f"--rotation must be from 0 to 180 degrees (got {self.rotation_degrees:g})")
        need(0 <= self.shift_fraction <= 0.5,
             f"--shift must be from 0 to 0.5 of the image (got {self.shift_fraction:g})")
        need(0 <= self.brightness <= 1 and 0 <= self.contrast <= 1,
             "brightness and contrast ranges must be from 0 to 1")
        need(self.camera in CAMERAS, f"--camera must be one of {', '.join(CAMERAS)} "
             f"(got {self.camera!r})")
        need(self.view_tiled is None or (finite(self.view_tiled) and 0 <= self.view_tiled <= 1),
             f"--view-tiled must be from 0 to 1 (got {self.view_tiled})")
        need(self.filled is None or (finite(self.filled) and 0 <= self.filled <= 1),
             f"--filled must be from 0 to 1 (got {self.filled})")
        need(MIN_INPUT_SIZE <= self.input_size <= MAX_INPUT_SIZE,
             f"--size must be from {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} pixels "
             f"(got {self.input_size})")
        need(0 <= self.dropout < 1, f"dropout must be from 0 to below 1 (got {self.dropout:g})")
        need(self.input_norm in INPUT_NORM_CHOICES,
             f"--input-norm must be {', '.join(INPUT_NORM_CHOICES[:-1])} or "
             f"{INPUT_NORM_CHOICES[-1]} (got {self.input_norm!r})")
        need(self.class_weighting in ("balanced", "deferred", "none"),
             f"--class-weighting must be balanced, deferred or none "
             f"(got {self.class_weighting!r})")
        need(self.patience >= 0, f"--patience must not be negative (got {self.patience})")
        need(finite(self.later_epoch_margin_images) and self.later_epoch_margin_images >= 0,
             f"--later-epoch-margin must not be negative (got {self.later_epoch_margin_images:g})")
        need(bool(str(self.version).strip()), "--version must not be empty")
        need(finite(self.time_budget_s) and self.time_budget_s >= 0,
             f"--time-budget-min must not be negative (got {self.time_budget_s / 60:g})")
        need(self.val_shifted_copies >= 0,
             f"--val-shifted must not be negative (got {self.val_shifted_copies})")
        need(finite(self.consistency) and self.consistency >= 0,
             f"--consistency must not be negative (got {self.consistency:g})")
        need(self.consistency_teacher in ("views", "clean"),
             f"--consistency-teacher must be views or clean (got {self.consistency_teacher!r})")
        need(self.consistency_teacher == "views" or (self.consistency > 0 and self.augment),
             "--consistency-teacher clean needs --consistency W and the augmentation")
        need(finite(self.mixup) and 0 <= self.mixup <= 10,
             f"--mixup must be from 0 to 10 (got {self.mixup:g})")
        need(not (self.mixup > 0 and self.consistency > 0),
             "--mixup and --consistency cannot be used together")
        # Keras's class_weight weighs a blended label by its larger share alone; the deferred
        # loss weighs it by its shares (DeferredWeights)
        need(not (self.mixup > 0 and (self.class_weighting == "balanced" or self.augment_check)),
             "--mixup works with --class-weighting deferred or none and without --augment-check")
        if self.class_names is not None:
            names = [c.strip() for c in self.class_names]
            need(all(names), "--classes has an empty class name")
            twice = sorted({c for c in names if names.count(c) > 1})
            need(not twice, f"--classes names {', '.join(twice)} more than once")
        return bad

    def check(self) -> None:
        """Raises ValueError listing every problem of ``problems()``."""
        bad = self.problems()
        if bad:
            raise ValueError("; ".join(bad))

    def camera_settings(self):
        """The camera shifts' probabilities and ranges (``training.shifts.CameraAugment``): the
        named camera's, with ``view_tiled`` and ``filled`` when given, without its field of view
        and software turns when ``geometry`` is off."""
        from .shifts import CAMERAS

        cam = CAMERAS[self.camera]
        if self.view_tiled is not None:
            cam = replace(cam, p_view_tiled=self.view_tiled)
        if self.filled is not None:
            cam = replace(cam, p_filled=self.filled)
        # without geometry: no field of view and no software turns (scale and orientation)
        return cam if self.geometry else replace(cam, p_scale=0.0, p_filled=0.0)

    @property
    def camera_only_probe(self) -> bool:
        """Whether the augmentation check may try the camera's light and pixel shifts alone: the
        recipe has both geometry to drop and camera shifts to keep (_augmentation_check)."""
        return self.geometry and self.camera_shifts

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_names"] = list(self.class_names) if self.class_names else None
        return d


# The paper's recipe as published: Adam 1e-3 constant, no label smoothing, rotation/shift/flip.
PAPER_RECIPE = TrainConfig(learning_rate=1e-3, lr_schedule="constant", warmup_epochs=0,
                           label_smoothing=0.0, brightness=0.0, contrast=0.0)


@dataclass
class FitResult:
    model: Any
    history: list[dict]
    best_epoch: int
    best_val_accuracy: float
    seconds: float
    images_per_second: float
    phases: list = field(default_factory=list)   # head-first and fine-tuning records
    class_weights: dict | None = None


@dataclass
class PreparedData:
    dataset: data_mod.Dataset
    images: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    view: dict | None = None   # the card's record of the scale it is trained at (training_view)


def set_seed(seed: int) -> None:
    import keras
    keras.utils.set_random_seed(seed)


def prepare_data(data_dir: str | Path, config: TrainConfig, progress: Progress = quiet,
                 should_stop: ShouldStop = never) -> PreparedData:
    ds = data_mod.scan_dataset(data_dir, config.class_names)
    need = 1 + (config.val_fraction > 0) + (config.test_fraction > 0)
    counts = np.bincount(ds.labels, minlength=len(ds.class_names))
    few = [f"{c} ({n})" for c, n in zip(ds.class_names, counts) if n < need]
    if few:   # such a class would be trained on but never validated or tested
        raise data_mod.DatasetError(
            f"{data_dir}: too few images in class(es) {', '.join(few)}: each class needs at least "
            f"{need} (one each for training" + (", validation" if config.val_fraction > 0 else "")
            + (" and testing" if config.test_fraction > 0 else "") + "); add images")
    conflicts = [g for g in data_mod.duplicate_groups(ds)
                 if len({int(ds.labels[i]) for i in g}) > 1]
    if conflicts:   # contradictory labels for one image: never without a word
        named = "; ".join(" = ".join(ds.relative(i) for i in g) for g in conflicts[:5])
        log.warning("%d image(s) are byte-identical copies filed under different classes (%s%s); "
                    "each group is kept on one side of the split, but each copy is trained "
                    "under its own folder's class - remove the wrong copy (python -m training "
                    "check lists them)", sum(len(g) for g in conflicts), named,
                    " ..." if len(conflicts) > 5 else "")
    view = data_mod.dataset_view(ds, config.input_size)
    images = data_mod.load_arrays(ds, config.input_size, progress, should_stop,
                                  square=view["square"])
    tr, va, te = data_mod.stratified_split(ds, config.val_fraction, config.test_fraction, config.seed)
    if len(tr) == 0:
        raise data_mod.DatasetError(f"{data_dir}: too few images to train on after the split")
    return PreparedData(ds, images, tr, va, te, view)


def _datasets(x_train, y_train, x_val, y_val, config: TrainConfig, num_classes: int, weights):
    train, val = training_datasets(x_train, y_train, x_val, y_val, config, num_classes)
    if val is not None and weights is not None:   # weighted validation = balanced accuracy
        val = val.map(transfer.with_sample_weights(weights, num_classes))
    return train, val


def _compile(model, config: TrainConfig, lr, weights, deferred=None) -> None:
    """``deferred``: a variable of per-class loss weights (``DeferredWeights``) the loss reads
    at every step, for deferred re-weighting; the fit then gets no ``class_weight``."""
    import keras

    if paired_views(config):
        loss = consistency_loss(config.label_smoothing, config.consistency,
                                clean_teacher=config.consistency_teacher == "clean")
    elif deferred is not None:
        loss = deferred.loss(config.label_smoothing)
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss,
                  metrics=["accuracy"], weighted_metrics=["accuracy"] if weights else None)


class DeferredWeights:
    """Deferred re-weighting: per-class loss weights of 1 until ``transfer.DEFERRED_START`` of
    the fine-tune's schedule, the balanced class weights after it (``switch``). Cao et al.
    2019 found it better for the rare classes than weighting from the start, which makes the
    network fit a handful of rare images with large steps before its features are learnt.
    Measured on magnetic tiles (5-fold cv, 15 clean epochs from the bundled model): macro F1
    84.8% against 79.3% weighted from the start and 82.9% never weighted, better than the
    former on every fold (docs/retraining.md)."""

    def __init__(self, weights: dict, num_classes: int):
        import tensorflow as tf

        self.weights = np.array([weights[i] for i in range(num_classes)], np.float32)
        self.var = tf.Variable(np.ones(num_classes, np.float32), trainable=False,
                               name="class_loss_weights")
        self.switched_at: int | None = None   # the epoch (1-based) the weights came on

    def loss(self, label_smoothing: float):
        import keras
        import tensorflow as tf

        base = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing,
                                                    reduction=None)
        var = self.var

        def weighted(y_true, y_pred):
            return base(y_true, y_pred) * tf.reduce_sum(y_true * var, axis=-1)

        return weighted

    def switch(self, where: float, epoch: int) -> None:
        """Turns the weights on once the schedule has reached ``DEFERRED_START``."""
        if self.switched_at is None and where >= transfer.DEFERRED_START:
            self.var.assign(self.weights)
            self.switched_at = epoch


CAMERA_ONLY = "camera only"   # the augmentation check's third probe: no geometry (TrainConfig)


def _augmentation_check(model, x_train, y_train, x_val, y_val, class_names, config: TrainConfig,
                        weights, progress: Progress, should_stop: ShouldStop) -> dict:
    """``CHECK_EPOCHS`` epochs with the recipe's augmentation and as many without, from the
    same weights, each on a short cosine schedule; the model keeps the weights of the one chosen
    (``transfer.keep_augmentation`` on each probe's ``transfer.true_class_probability`` on the
    validation images after its last epoch: augmented unless it made much less progress above
    chance than clean). Measured on magnetic tiles: after two epochs each, balanced accuracy
    0.38 augmented against 0.71 clean, and training on clean images reached 87% macro F1 where
    the augmented recipe stayed at 44%; on NEU-like textures the augmentation costs little and
    buys robustness, so it is kept unless the gap is large.

    When the whole augmentation is dropped (and the recipe has geometry to drop), a third probe
    of as many epochs trains with the camera's light and pixel shifts alone (``CAMERA_ONLY``:
    ``geometry`` off, no turns, mirrors, rotation, shift or field of view) and is kept by the
    same rule against clean. Measured on magnetic tiles (2026-12-07, docs/retraining.md): the
    whole augmentation made 0.31-0.62 of clean's progress, the camera alone 0.89; its model
    read defocus, noise and motion blur at 94-95% where the clean one fell to 79-87%. Returns
    the phase's card record."""
    n = len(class_names)
    start = model.get_weights()
    steps = steps_per_epoch(len(x_train), config)
    t0 = time.perf_counter()
    scores, accuracy, kept, epoch_s = {}, {}, {}, {}

    def run_probe(i: int, name: str, probes: int, **change) -> None:
        model.set_weights(start)
        probe = replace(config, epochs=transfer.CHECK_EPOCHS, warmup_epochs=0, time_budget_s=0.0,
                        patience=0, **change)
        train, val = _datasets(x_train, y_train, x_val, y_val, probe, n, weights)
        _compile(model, probe, _initial_learning_rate(probe), weights)
        tracker = _Tracker(probe, steps, lambda f, m: progress(
            (i + f) / probes, f"augmentation check, {name}: {m}"), should_stop, None, has_val=True)
        model.fit(train, validation_data=val, epochs=probe.epochs, verbose=0, callbacks=[tracker],
                  class_weight=weights, steps_per_epoch=steps, shuffle=False)
        if should_stop():
            raise TrainingCancelled("training cancelled; nothing was written")
        probs = model.predict(x_val, batch_size=64, verbose=0)
        scores[name] = transfer.true_class_probability(y_val, probs, n)
        accuracy[name], kept[name] = float(tracker.best_acc), tracker.best_weights
        epoch_s[name] = tracker.train_seconds / max(1, len(tracker.history))

    probes = 3 if config.camera_only_probe else 2
    run_probe(0, "augmented", probes, augment=True)
    run_probe(1, "clean", probes, augment=False)
    chosen = ("augmented" if transfer.keep_augmentation(scores["augmented"], scores["clean"], n)
              else "clean")
    if chosen == "clean" and probes == 3:
        run_probe(2, CAMERA_ONLY, probes, augment=True, geometry=False)
        if transfer.keep_augmentation(scores[CAMERA_ONLY], scores["clean"], n):
            chosen = CAMERA_ONLY
    model.set_weights(kept[chosen] if kept[chosen] is not None else start)
    rec = {"phase": "augmentation check", "epochs_each": transfer.CHECK_EPOCHS,
           "val_true_class_probability": {k: round(v, 4) for k, v in scores.items()},
           "val_balanced_accuracy" if weights else "val_accuracy": {
               k: round(v, 4) for k, v in accuracy.items()},
           "progress_share": transfer.AUGMENT_PROGRESS, "chance": round(1.0 / n, 4),
           "chosen": chosen, "epoch_seconds": {k: round(v, 2) for k, v in epoch_s.items()},
           "seconds": round(time.perf_counter() - t0, 1)}
    progress(1.0, f"augmentation check, {transfer.CHECK_EPOCHS} epochs each: the validation images' true "
                  f"classes got {scores['augmented']:.0%} probability with the camera "
                  f"augmentation, {scores['clean']:.0%} without; "
                  + ("training with the camera augmentation" if chosen == "augmented" else
                     f"{scores[CAMERA_ONLY]:.0%} with the camera's light and pixel shifts alone: "
                     "training with those, without turns, mirrors or changes of scale"
                     if chosen == CAMERA_ONLY else
                     "these images are learnt clearly faster without it"
                     + (f" and without its light and pixel shifts alone "
                        f"({scores[CAMERA_ONLY]:.0%})" if CAMERA_ONLY in scores else "")
                     + ": training without augmentation"))
    return rec


def _warmup_share(config: TrainConfig) -> float:
    return schedule.warmup_share(config.warmup_epochs, config.epochs)


def _selection_set(x_val: np.ndarray, y_val: np.ndarray, config: TrainConfig
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The images the best epoch is chosen on: the validation split, plus with
    ``config.val_shifted_copies`` that many camera-shifted copies of each (seeded, so every
    epoch is judged on the same images). Clean validation accuracy alone can hardly tell a
    robust epoch from a brittle one: nearly all of 138 NEU validation images are right in every
    epoch. (In 1.3.0's run both ways chose the same epoch, 7 of 30.)"""
    copies = int(config.val_shifted_copies or 0)
    if not (copies > 0 and config.augment and config.camera_shifts and len(x_val)):
        return x_val, y_val
    from .shifts import shifted_copies

    return (shifted_copies(x_val, config.seed, copies, config.geometry),
            np.tile(y_val, copies + 1))


def _initial_learning_rate(config: TrainConfig) -> float:
    """The optimizer's learning rate before the first batch. Every run then follows
    ``training.schedule.learning_rate``, set by ``_Tracker`` before each batch: on the share of
    the planned steps, or of the time budget with one (one warm-up and cosine decay for both)."""
    if config.lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"unknown learning-rate schedule {config.lr_schedule!r}")
    return schedule.learning_rate(config.learning_rate, 0.0, _warmup_share(config),
                                  config.lr_schedule)


def with_input_norm(config: TrainConfig, train_images: np.ndarray) -> TrainConfig:
    """``config`` with ``input_norm="auto"`` made concrete for these training images:
    ``standardize_colour`` when they are in colour (``training.images.in_colour``: a tenth or
    more of them), so that a class told apart by its overall colour (a reddish scale) can be
    learnt, else ``standardize``. Any other setting is kept."""
    if config.input_norm != "auto":
        return config
    from .images import COLOUR_SHARE, colour_share

    if _start_norm(config) == "standardize_colour":   # a colour model stays one
        return replace(config, input_norm="standardize_colour")
    share = colour_share(train_images)
    if share >= COLOUR_SHARE:   # training.images.in_colour
        log.info("%.0f%% of the training images are in colour: the model keeps each image's "
                 "overall colour (input_norm standardize_colour)", 100 * share)
        return replace(config, input_norm="standardize_colour")
    return replace(config, input_norm="standardize")


def check_resumed_norm(previous: Sequence[dict], requested: TrainConfig, used: TrainConfig,
                       what: str) -> None:
    """Refuses to go on from an earlier run's rows (``cv``/``openset --resume``) trained with
    another input normalisation than the one chosen now (rows from before 2026-12-06 record
    none: they used the setting asked for, "standardize" for the default then)."""
    asked = requested.input_norm if requested.input_norm != "auto" else "standardize"
    other = sorted({str(r.get("input_norm", asked)) for r in previous} - {used.input_norm})
    if other:
        raise data_mod.DatasetError(
            f"the {what} done earlier trained with input_norm {other[0]}, and these images now "
            f"choose {used.input_norm}; resume with --input-norm {other[0]}, or start again "
            "without --resume")


def _start_norm(config: TrainConfig) -> str | None:
    """The input normalisation of the model a fine-tune starts from, read from its saved
    network's layer names as ``training.model.input_norm_of`` reads a loaded one, without
    loading it (None: from scratch, or a file that cannot be read, which loading names)."""
    if not config.init_bundle:
        return None
    import zipfile

    from .bundle import MODEL_FILE

    try:
        with zipfile.ZipFile(Path(config.init_bundle) / MODEL_FILE) as z:
            layers = json.loads(z.read("config.json"))["config"]["layers"]
        from .model import input_norm_of_layers

        return input_norm_of_layers(layer["name"] for layer in layers)
    except Exception:  # noqa: BLE001 - any damage is named when the bundle loads
        return None


def _learns_colour_now(config: TrainConfig) -> tuple[str, ...]:
    """The layers a fine-tune must train whatever else it freezes: the first convolution and its
    normalisation when it starts to keep colour from a model that did not (its kernel was
    averaged over the channels, ``build_initial_model``), so that it can learn colour."""
    if (config.init_bundle and config.input_norm == "standardize_colour"
            and _start_norm(config) != "standardize_colour"):
        return ("stem_conv", "stem_bn")
    return ()


def _concrete_norm(norm: str) -> str:
    return "standardize" if norm == "auto" else norm   # before the images are seen: grey's


def build_initial_model(config: TrainConfig, class_names: Sequence[str]):
    from .model import build_ssdc_mininet, colour_blind_stem, rebuilt, replace_head

    norm = _concrete_norm(config.input_norm)
    if config.init_bundle:
        start = load_bundle(config.init_bundle)
        model = rebuilt(start.model, input_norm=norm)
        if _learns_colour_now(config):
            colour_blind_stem(model)   # starts reading colour as grey, then learns it
        if start.input_size != config.input_size:   # native resolution: fully convolutional
            from .transfer import resized_model
            model = resized_model(model, config.input_size)
        if list(start.class_names) != list(class_names):
            model = replace_head(model, len(class_names))
        return model
    return build_ssdc_mininet(config.design, len(class_names), config.input_size, config.dropout,
                              norm)


def fit(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
        class_names: Sequence[str], config: TrainConfig, progress: Progress = quiet,
        should_stop: ShouldStop = never, on_epoch: EpochHook | None = None,
        model=None, clock: Callable[[], float] = time.perf_counter,
        finish_now: ShouldStop = never) -> FitResult:
    """Trains a model (default: SSDC-MiniNet as ``config`` says) and returns it with the weights
    of its best validation epoch (highest accuracy, ties broken by lower loss). With
    ``config.time_budget_s`` the run ends on time (``training.schedule``; ``clock`` is the clock
    it runs on). Raises TrainingCancelled if ``should_stop()``. Once ``finish_now()`` is true
    the training ends after the current epoch (of the last phase: at least one) with the best
    epoch so far, as early stopping does; the phase records it (``finished_by_user``)."""
    set_seed(config.seed)
    config = with_input_norm(config, x_train)
    num_classes = len(class_names)
    weights = transfer.class_weights(y_train, num_classes, config.class_weighting)
    phases: list[dict] = []
    fine_tune = bool(config.init_bundle) or model is not None   # (a recipe's later stage)
    if model is None:
        model = build_initial_model(config, class_names)
        if transfer.needs_head_first(config, transfer.bundle_classes(config.init_bundle),
                                     class_names):
            phases.append(transfer.fit_head(
                model, x_train, y_train, x_val, y_val, num_classes, weights=weights,
                seed=config.seed, progress=lambda f, m: progress(0.03 * f, m),
                should_stop=should_stop))
            progress = transfer.shifted(progress, 0.03)
    steps = steps_per_epoch(len(x_train), config)
    frozen = (transfer.freeze_early_layers(model, keep=_learns_colour_now(config))
              if config.freeze_early and fine_tune else [])
    use_fused_batch_norm(model)   # training steps ~2x faster on a CPU; the model is unchanged
    budget = max(0.0, float(config.time_budget_s or 0.0))
    checking = bool(config.augment and config.augment_check and len(x_val))
    if checking and not transfer.check_needed(phases, num_classes):
        head = phases[0]
        phases.append({"phase": "augmentation check", "chosen": "augmented", "skipped": True,
                       "why": f"the new head reached {head['val_balanced_accuracy']:.1%} "
                              "balanced validation accuracy on frozen features (at least "
                              f"{transfer.HEAD_SEPARATES:.0%} of the way from chance to 100%)"})
        progress(0.0, "augmentation check skipped: the frozen features already separate the "
                      "classes; training with the camera augmentation")
        if budget:   # its epochs go to the fit: the budget counted them
            config = replace(config, epochs=config.epochs + 2 * transfer.CHECK_EPOCHS)
    elif checking:
        check = _augmentation_check(model, x_train, y_train, x_val, y_val, class_names, config,
                                    weights, lambda f, m: progress(0.1 * f, m), should_stop)
        phases.append(check)
        progress = transfer.shifted(progress, 0.1)
        config = replace(config, augment=check["chosen"] != "clean",
                         geometry=config.geometry and check["chosen"] != CAMERA_ONLY)
        if budget:   # the check came out of the time budget
            budget = max(1.0, budget - check["seconds"])
            # the estimated epochs again, at the speed just measured for the chosen variant:
            # clean epochs skip the augmentation and run 2-5x faster than the augmented ones
            # the estimate assumed, and a run that reached 3x its estimate stopped early
            # (magnetic tiles: 24 of "about 8" epochs, 754 s against an estimate of 966 s)
            per_epoch = check["epoch_seconds"][check["chosen"]]
            if per_epoch > 0:
                config = replace(config, epochs=max(1, round(budget / per_epoch)))
    x_sel, y_sel = _selection_set(x_val, y_val, config)
    train, val = _datasets(x_train, y_train, x_sel, y_sel, config, num_classes, weights)
    run_epochs = schedule.epoch_cap(config.epochs) if budget else config.epochs
    deferred = (DeferredWeights(weights, num_classes)
                if weights and config.class_weighting == "deferred" and not paired_views(config)
                else None)
    _compile(model, config, _initial_learning_rate(config), weights, deferred)
    margin = selection_margin(y_sel, num_classes, bool(weights), config.later_epoch_margin_images)
    tracker = _Tracker(config, steps, progress, should_stop, on_epoch, has_val=val is not None,
                       budget=budget, run_epochs=run_epochs, clock=clock, margin=margin,
                       deferred=deferred, finish_now=finish_now)
    start = time.perf_counter()
    model.fit(train, validation_data=val, epochs=run_epochs, verbose=0, callbacks=[tracker],
              class_weight=None if deferred is not None else weights, steps_per_epoch=steps,
              shuffle=False)   # the batches come shuffled (augmented_batches); Keras ignores it
    seconds = time.perf_counter() - start
    # the saved model, and any later fine-tune from it, trains every layer (a run that raises
    # leaves no model behind)
    transfer.unfreeze(model, frozen)
    if should_stop():
        raise TrainingCancelled("training cancelled; nothing was written")
    if tracker.best_weights is not None:
        model.set_weights(tracker.best_weights)
    done_epochs = max(1, len(tracker.history))
    phases.append({"phase": "fine-tune, early layers frozen" if frozen else
                   "all" if not phases else "fine-tune all layers",
                   "epochs_planned": config.epochs, "epochs_run": len(tracker.history),
                   "stopped_early": not budget and len(tracker.history) < config.epochs,
                   "patience": config.patience, "best_epoch": tracker.best_epoch,
                   "learning_rate": config.learning_rate, "seconds": round(seconds, 1)})
    if budget:
        phases[-1].update(time_budget_s=round(budget, 1), ended_on_time=tracker.on_time)
    if tracker.finished_by_user:
        phases[-1].update(stopped_early=True, finished_by_user=(
            f"asked to finish: ended after epoch {len(tracker.history)} with its best epoch"))
    if frozen:
        phases[-1].update(frozen_layers=frozen)
    if deferred is not None:
        phases[-1].update(class_weights_from_epoch=deferred.switched_at)
    if margin > 0 and tracker.history:
        phases[-1].update(best_epoch_rule=(
            f"the latest epoch within {margin:.1%} ({config.later_epoch_margin_images:g} "
            f"validation image(s)) of the best validation score, {tracker.top:.1%}"))
    if len(x_sel) != len(x_val):   # what the best epoch was chosen on (--val-shifted)
        phases[-1]["best_epoch_chosen_on"] = (
            f"{len(x_val)} validation images and {len(x_sel) - len(x_val)} camera-shifted copies")
    return FitResult(model, tracker.history, tracker.best_epoch, tracker.best_acc, seconds,
                     len(x_train) * done_epochs / max(tracker.train_seconds, 1e-9), phases,
                     weights)


def selection_margin(y_val: np.ndarray, num_classes: int, balanced: bool,
                     images: float) -> float:
    """``images`` validation images' worth of the validation score: of the class with the fewest
    validation images when the score is balanced accuracy (each class weighs 1 / classes), of
    all images otherwise; 0 without validation images or ``images``."""
    y_val = np.asarray(y_val, int)
    if images <= 0 or not len(y_val):
        return 0.0
    if not balanced:
        return images / len(y_val)
    counts = np.bincount(y_val, minlength=num_classes)
    present = counts[counts > 0]
    return images / (len(present) * int(present.min()))


def keep_epoch(score: float, loss: float, best_score: float, best_loss: float, top: float,
               margin: float) -> bool:
    """Whether an epoch's weights replace the kept ones: with a ``margin``, any epoch within it
    of the best score so far (``top``, this epoch's included), so the latest such epoch is kept;
    without, only a better score (a lower loss breaks a tie)."""
    if margin > 0:
        return score >= top - margin
    return score > best_score or (score == best_score and loss < best_loss)


class _Tracker:
    """Keras callback (built lazily so this module imports without Keras) that reports progress,
    honours cancellation within one batch and keeps the best epoch's weights."""

    def __new__(cls, *args, **kwargs):
        import keras

        class Tracker(keras.callbacks.Callback):
            def __init__(self, config, steps, progress, should_stop, on_epoch, has_val,
                         budget=0.0, run_epochs=None, clock=time.perf_counter, margin=0.0,
                         deferred=None, finish_now=never):
                super().__init__()
                self.finish_now = finish_now
                self.finished_by_user = False
                self.deferred = deferred   # DeferredWeights: switched on the schedule
                self.margin, self.top = margin, -1.0   # keep_epoch
                self.config, self.steps = config, steps
                self.progress, self.should_stop, self.on_epoch = progress, should_stop, on_epoch
                self.has_val = has_val
                self.budget, self.clock = budget, clock
                self.run_epochs = run_epochs or config.epochs
                self.warmup = _warmup_share(config)
                self.history: list[dict] = []
                self.best_weights = None
                self.best_epoch, self.best_acc, self.best_loss = 0, -1.0, math.inf
                self.train_seconds = 0.0
                self.on_time = False      # a time-budgeted run stopped at its deadline
                self._t0 = self._epoch_t0 = clock()
                self._epoch = 0

            def _where(self, step: int) -> float:
                """The schedule's position 0..1 (time-budgeted: time or steps, whichever is
                further; otherwise steps)."""
                if self.budget:
                    return schedule.progress(self.clock() - self._t0, self.budget, step,
                                             self.run_epochs * self.steps)
                return min(1.0, step / max(1, self.config.epochs * self.steps))

            def _epoch_text(self, epoch: int) -> str:
                return (f"epoch {epoch} (about {self.config.epochs})" if self.budget
                        else f"epoch {epoch}/{self.config.epochs}")

            def on_epoch_begin(self, epoch, logs=None):
                self._epoch = epoch
                self._epoch_t0 = self.clock()

            def on_train_batch_begin(self, batch, logs=None):
                # the schedule on the steps, or on the clock with a time budget; a guard in case
                # Keras announces a batch past the epoch's steps (it did when the data ran out)
                if batch >= self.steps:
                    return
                p = self._where(self._epoch * self.steps + batch)
                self.model.optimizer.learning_rate = schedule.learning_rate(
                    self.config.learning_rate, p, self.warmup, self.config.lr_schedule)
                if self.deferred is not None:
                    self.deferred.switch(p, self._epoch + 1)

            def on_train_batch_end(self, batch, logs=None):
                if self.should_stop():
                    self.model.stop_training = True
                    return
                if batch % 5 == 0:
                    self.progress(self._where(self._epoch * self.steps + batch + 1),
                                  f"{self._epoch_text(self._epoch + 1)}, batch {batch + 1}/"
                                  f"{self.steps}, loss {float(logs.get('loss', 0)):.4f}")

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                if self.should_stop():
                    return
                took = self.clock() - self._epoch_t0
                self.train_seconds += took
                rec = {"epoch": epoch + 1, "seconds": round(took, 2)}
                for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
                    if k in logs:
                        rec[k] = float(logs[k])
                if "val_weighted_accuracy" in logs:   # class weights: balanced accuracy
                    rec["val_balanced_accuracy"] = float(logs["val_weighted_accuracy"])
                lr = self.model.optimizer.learning_rate
                rec["learning_rate"] = float(np.asarray(lr))
                acc = rec.get("val_balanced_accuracy",
                              rec.get("val_accuracy", rec.get("accuracy", 0.0)))
                loss = rec.get("val_loss", rec.get("loss", math.inf))
                self.top = max(self.top, acc)
                if keep_epoch(acc, loss, self.best_acc, self.best_loss, self.top, self.margin):
                    self.best_acc, self.best_loss, self.best_epoch = acc, loss, epoch + 1
                    self.best_weights = self.model.get_weights()
                rec["best_epoch"] = self.best_epoch
                self.history.append(rec)
                elapsed = self.clock() - self._t0
                if self.finish_now() and epoch + 1 < self.run_epochs:
                    self.model.stop_training = self.finished_by_user = True
                    left = 0.0
                elif self.budget:
                    if schedule.time_is_up(elapsed, took, self.budget):
                        self.model.stop_training = self.on_time = True
                    left = 0.0 if self.on_time else max(0.0, self.budget - elapsed)
                else:
                    if stop_early(epoch + 1, self.best_epoch, self.config.patience,
                                  self.config.epochs):
                        self.model.stop_training = True   # early stopping; best weights kept
                    left = elapsed / (epoch + 1) * (self.config.epochs - epoch - 1)
                rec["seconds_left"] = round(left, 1)
                if self.on_epoch:
                    self.on_epoch(dict(rec))
                val = (f", val loss {rec['val_loss']:.4f} acc {rec['val_accuracy'] * 100:.1f}%"
                       if "val_accuracy" in rec else "")
                self.progress(1.0 if self.on_time else self._where((epoch + 1) * self.steps),
                              f"{self._epoch_text(epoch + 1)}: loss {rec['loss']:.4f} acc "
                              f"{rec['accuracy'] * 100:.1f}%{val} ({took:.0f} s, ~{_hms(left)} left)")

        return Tracker(*args, **kwargs)


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def evaluate_arrays(predictor, images: np.ndarray, labels: np.ndarray, class_names) -> dict:
    probs = predictor.predict(images)
    return classification_report(labels, probs.argmax(axis=1), class_names)


def history_csv(history: list[dict]) -> str:
    keys = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_balanced_accuracy",
            "learning_rate", "seconds"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
    w.writeheader()
    for rec in history:
        w.writerow(rec)
    return buf.getvalue()


def train(data_dir: str | Path, out_dir: str | Path, config: TrainConfig = TrainConfig(),
          progress: Progress = quiet, should_stop: ShouldStop = never,
          on_epoch: EpochHook | None = None, lr_grid: Sequence[float] = (),
          prepared: PreparedData | None = None, notes: str = "", command: str = "",
          finish_now: ShouldStop = never) -> dict:
    """Trains on a data folder and writes a bundle to ``out_dir`` atomically. With ``lr_grid``,
    one model per learning rate is trained and the best by validation accuracy is kept.
    ``finish_now``: see ``fit`` (the wizard's "Finish now"). Returns the model card."""
    from .flops import count_flops, count_params
    from .predict import KerasPredictor

    t_start = time.perf_counter()
    for lr in list(lr_grid) or [config.learning_rate]:   # before the training, not after it
        replace(config, learning_rate=lr).check()
    check_bundle_target(out_dir, (data_dir,))
    p = prepared or prepare_data(data_dir, config, lambda f, m: progress(0.02 * f, m), should_stop)
    ds, x = p.dataset, p.images
    config = with_input_norm(config, x)   # a property of the images, as in cv and openset
    names = ds.class_names
    grid = list(lr_grid) or [config.learning_rate]
    grid_results = []
    best: tuple[FitResult, TrainConfig] | None = None
    for gi, lr in enumerate(grid):
        cfg = replace(config, learning_rate=lr, class_names=tuple(names))

        def sub(f, m, gi=gi, lr=lr):
            prefix = f"[lr {lr:g}] " if len(grid) > 1 else ""
            progress(0.02 + 0.93 * (gi + f) / len(grid), prefix + m)

        res = fit(x[p.train_idx], ds.labels[p.train_idx], x[p.val_idx], ds.labels[p.val_idx],
                  names, cfg, sub, should_stop, on_epoch, finish_now=finish_now)
        grid_results.append({"learning_rate": lr, "best_val_accuracy": res.best_val_accuracy,
                             "best_epoch": res.best_epoch})
        if best is None or res.best_val_accuracy > best[0].best_val_accuracy:
            best = (res, cfg)
    res, cfg = best

    def stop_here() -> None:   # between the steps after training: Stop acts within seconds
        if should_stop():
            raise TrainingCancelled("training cancelled; nothing was written")

    stop_here()
    progress(0.94, "fitting the temperature and the unknown detector")
    from .detect import fit_model_detector, no_detector_reason, recipe_arguments

    detector = fit_model_detector(res.model, x[p.train_idx], ds.labels[p.train_idx],
                                  x[p.val_idx], ds.labels[p.val_idx], len(names), cfg.seed,
                                  **recipe_arguments(cfg, res.phases))
    stop_here()
    progress(0.95, "exporting the inspection model to LiteRT")
    from .inspection_export import (INSPECTION_FORMATS, InspectionExportError, build_inspection,
                                    first_line, summary)

    rep = x[p.train_idx[np.random.default_rng(cfg.seed).permutation(len(p.train_idx))[:300]]]
    try:
        lite_files, lite_info = build_inspection(
            res.model, rep, x[p.test_idx], ds.labels[p.test_idx], detector=detector,
            formats_wanted=tuple(f for f in INSPECTION_FORMATS if f != "int8" or cfg.export_int8))
        if not cfg.export_int8:
            lite_info["formats"]["int8"] = {
                "usable": False, "reason": "not exported (export_int8 off: slower than fp32 on "
                                           "the CPUs measured; python -m training export adds it)"}
        export_card = summary(lite_info)
    except Exception as exc:  # noqa: BLE001 - the check's error, the converter's or LiteRT's
        # the trained model is kept (its figures below come from Keras): the app runs a bundle
        # without the LiteRT export on TensorFlow; `python -m training export` redoes it
        import logging

        logging.getLogger(__name__).warning("the LiteRT inspection export failed",
                                            exc_info=True)
        lite_files, lite_info = {}, None
        export_card = {"failed": first_line(exc) if isinstance(exc, InspectionExportError)
                       else f"{type(exc).__name__}: {first_line(exc)}"}
        progress(0.955, f"the LiteRT export failed its check ({export_card['failed']}); the "
                        f"bundle is saved without it and runs on TensorFlow")
    stop_here()
    progress(0.96, "evaluating on the test split")
    predictor = KerasPredictor(res.model, names, cfg.input_size)
    test_report = (evaluate_arrays(predictor, x[p.test_idx], ds.labels[p.test_idx], names)
                   if len(p.test_idx) else None)
    val_report = (evaluate_arrays(predictor, x[p.val_idx], ds.labels[p.val_idx], names)
                  if len(p.val_idx) else None)
    card = {
        "name": cfg.name,
        "version": cfg.version,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "architecture": f"SSDC-MiniNet design {cfg.design}",
        "class_names": list(names),
        "input_size": cfg.input_size,
        **({VIEW_KEY: p.view} if p.view is not None else {}),
        "input": ("raw RGB pixels 0-255 (grey replicated to 3 channels); the model "
                  + {"standardize": "divides out each image's mean and contrast itself",
                     "standardize_colour": "divides out each image's mean (one for the three "
                                           "channels, so its overall colour stays) and contrast "
                                           "itself"}.get(cfg.input_norm, "rescales itself")),
        "parameters": count_params(res.model),
        "gflops": round(count_flops(res.model) / 1e9, 4),
        "metrics": {
            "test": _summary(test_report),
            "validation": _summary(val_report),
            "best_epoch": res.best_epoch,
            "final_train_accuracy": res.history[-1].get("accuracy") if res.history else None,
        },
        "training": {
            "config": cfg.describe(),
            "camera_augment": _camera_augment_card(
                replace(cfg, geometry=False) if geometry_dropped(res.phases) else cfg),
            "init": init_record(cfg.init_bundle),
            "lr_grid": grid_results if len(grid) > 1 else None,
            "phases": res.phases,
            "class_weights": ({names[i]: round(w, 4) for i, w in res.class_weights.items()}
                              if res.class_weights else None),
            "split": {"train": int(len(p.train_idx)), "validation": int(len(p.val_idx)),
                      "test": int(len(p.test_idx))},
            "fit_seconds": round(res.seconds, 1),
            "total_seconds": round(time.perf_counter() - t_start, 1),
            "train_images_per_second": round(res.images_per_second, 1),
            "notes": notes,
            "command": command,
            "code": code_version(),
        },
        "dataset": {
            "root": str(Path(data_dir)),
            "file_count": len(ds),
            "per_class": ds.counts(),
            "file_list_sha256": ds.list_hash(),
            "duplicate_groups": len(data_mod.duplicate_groups(ds)),
        },
        "seed": cfg.seed,
        "libraries": library_versions(),
        "unknown_detection": detector.card() if detector is not None else None,
        **({} if detector is not None else {"unknown_detection_missing": no_detector_reason(
            len(p.val_idx), ds.labels[p.train_idx], len(names))}),
        "exports": {"inspection": export_card},
    }
    split = {"train": [ds.relative(i) for i in p.train_idx],
             "validation": [ds.relative(i) for i in p.val_idx],
             "test": [ds.relative(i) for i in p.test_idx]}

    def fill(tmp: Path) -> None:
        if should_stop():
            raise TrainingCancelled("training cancelled; nothing was written")
        res.model.save(tmp / MODEL_FILE)
        write_json(tmp / CARD_FILE, card)
        (tmp / "history.csv").write_text(history_csv(res.history), encoding="utf-8")
        write_json(tmp / SPLIT_FILE, split)
        from .inspection_export import write_inspection

        if lite_info is not None:
            write_inspection(tmp, lite_files, lite_info)
        if detector is not None:
            from .openset import DETECTOR_FILE

            (tmp / DETECTOR_FILE).write_bytes(detector.to_bytes())
        if test_report:
            write_json(tmp / "test_report.json", test_report)
            save_confusion_png(test_report, tmp / "confusion.png",
                               f"{cfg.name} {cfg.version}: test split")

    write_bundle_atomic(out_dir, fill)
    progress(1.0, f"saved {out_dir}")
    if test_report:
        card["_test_report_text"] = format_report(test_report)
    return card


def _camera_augment_card(config: TrainConfig) -> dict | None:
    """The camera shifts' probabilities and ranges, so the card says the whole recipe."""
    if not (config.augment and config.camera_shifts):
        return None
    return {"name": config.camera, **config.camera_settings().describe()}


def _summary(report: dict | None) -> dict | None:
    if report is None:
        return None
    return {k: report[k] for k in ("count", "accuracy", "macro_precision", "macro_recall",
                                   "macro_f1")} | {"confusion_matrix": report["confusion_matrix"]}


def cross_validate(data_dir: str | Path, config: TrainConfig = TrainConfig(), folds: int = 5,
                   progress: Progress = quiet, should_stop: ShouldStop = never,
                   only_folds: Sequence[int] | None = None,
                   on_fold: Callable[[dict], None] | None = None,
                   previous: Sequence[dict] = (),
                   stages: Sequence[TrainConfig] = ()) -> dict:
    """Stratified k-fold cross-validation: each fold is held out once as the test set, the rest is
    split into training and validation (for the best-epoch checkpoint). Returns per-fold reports
    and mean and standard deviation of accuracy and macro F1. ``previous`` holds fold results of
    an earlier, interrupted run of the same configuration; those folds are not trained again.

    ``stages``: a recipe of several runs, each fine-tuning the model the one before ended with
    (as ``train --init`` does with a bundle), on the same training and validation images of the
    fold; only the last stage's model is tested. Their ``STAGE_FIXED`` settings (the fold's
    images, the model's shape) are ``config``'s (``later_stages``)."""
    from .predict import KerasPredictor

    # the report records the settings asked for (input_norm "auto" as asked, so that --resume
    # compares like with like) and the normalisation chosen for the data (``input_norm_used``)
    requested, requested_stages = config, later_stages(config, stages)
    for cfg in (config, *requested_stages):
        cfg.check()
    ds = data_mod.scan_dataset(data_dir, config.class_names)
    square = data_mod.dataset_view(ds, config.input_size)["square"]
    x = data_mod.load_arrays(ds, config.input_size, lambda f, m: progress(0.02 * f, m),
                             should_stop, square=square)
    config = with_input_norm(config, x)   # one choice for every fold: the data's colour
    check_resumed_norm(previous, requested, config, "folds")
    stages = later_stages(config, stages)
    fold_idx = data_mod.stratified_folds(ds, folds, config.seed)
    names = ds.class_names
    results = list(previous)
    done = {r["fold"] - 1 for r in results}
    todo = [k for k in (only_folds if only_folds else range(folds)) if k not in done]
    for n, k in enumerate(todo):
        test = fold_idx[k]
        rest = np.concatenate([fold_idx[j] for j in range(folds) if j != k])
        sub = ds.subset(rest)
        tr, va, _ = data_mod.stratified_split(sub, config.val_fraction, 0.0, config.seed + k)
        tr, va = rest[tr], rest[va]

        runs = [config, *stages]
        res, best, seconds = None, [], 0.0
        for j, cfg in enumerate(runs):
            def prog(f, m, n=n, k=k, j=j):
                part = (n + (j + f) / len(runs)) / len(todo)
                stage = f" stage {j + 1}/{len(runs)}" if len(runs) > 1 else ""
                progress(0.02 + 0.98 * part, f"fold {k + 1}/{folds}{stage}: {m}")

            cfg = replace(cfg, class_names=tuple(names))
            res = fit(x[tr], ds.labels[tr], x[va], ds.labels[va], names, cfg, prog, should_stop,
                      model=res.model if res is not None else None)
            best.append(res.best_epoch)
            seconds += res.seconds
        rep = evaluate_arrays(KerasPredictor(res.model, names, config.input_size), x[test],
                              ds.labels[test], names)
        progress(0.02 + 0.98 * (n + 1) / len(todo),
                 f"fold {k + 1}/{folds}: the temperature and the unknown detector")
        unknown = _fold_calibration(res, runs[-1], x[tr], ds.labels[tr], x[va], ds.labels[va],
                                    x[test], ds.labels[test], len(names))
        results.append({"fold": k + 1, "train": int(len(tr)), "validation": int(len(va)),
                        "test": int(len(test)),
                        "best_epoch": best[0] if len(best) == 1 else best,
                        "fit_seconds": round(seconds, 1), "input_norm": config.input_norm,
                        **_summary(rep),
                        **({"calibration": unknown} if unknown else {})})
        if on_fold:
            on_fold(_cv_summary(list(results), folds, requested, ds, data_dir, requested_stages,
                                config.input_norm))
    results.sort(key=lambda r: r["fold"])
    return _cv_summary(results, folds, requested, ds, data_dir, requested_stages,
                       config.input_norm)


def _fold_calibration(res: FitResult, config: TrainConfig, x_train, y_train, x_val, y_val,
                      x_test, y_test, num_classes: int) -> dict | None:
    """What training fits after a fold's model (the temperature and the unknown detector, on
    its training and validation images) measured on the fold's held-out images: ECE before and
    after the temperature, and the share accepted as known with the accuracy on those. None
    when the fold has too few validation images for a detector."""
    from .calibration import ece, softmax
    from .detect import fit_model_detector, model_outputs, recipe_arguments

    det = fit_model_detector(res.model, x_train, y_train, x_val, y_val, num_classes, config.seed,
                             **recipe_arguments(config, res.phases))
    if det is None:
        return None
    out = model_outputs(res.model, x_test)
    y = np.asarray(y_test)
    calibrated = det.probabilities(out["logits"])
    known = det.known(det.scores(out))
    right = calibrated.argmax(axis=1) == y
    return {"temperature": round(float(det.temperature), 4),
            "ece_before": float(ece(softmax(out["logits"]), y)),
            "ece_after": float(ece(calibrated, y)),
            "accepted": float(known.mean()) if len(y) else 0.0,
            "accuracy_on_accepted": float(right[known].mean()) if known.any() else None}


# what a later stage of a recipe takes from the first: the fold's images and the model's shape
STAGE_FIXED = ("input_size", "class_names", "seed", "val_fraction", "test_fraction", "design",
               "input_norm")


def later_stages(config: TrainConfig, stages: Sequence[TrainConfig]) -> list[TrainConfig]:
    """The later stages of a recipe as ``cross_validate`` runs them: each starts from the stage
    before (no ``init_bundle``) with the first stage's ``STAGE_FIXED`` settings."""
    fixed = {k: getattr(config, k) for k in STAGE_FIXED}
    return [replace(c, init_bundle=None, **fixed) for c in stages]


def _cv_summary(results: list[dict], folds: int, config: TrainConfig, ds, data_dir,
                stages: Sequence[TrainConfig] = (), input_norm_used: str | None = None) -> dict:
    accs = np.array([r["accuracy"] for r in results])
    f1s = np.array([r["macro_f1"] for r in results])
    cal = [r["calibration"] for r in results if r.get("calibration")]
    # after each fold (``on_fold``) and with --only the means cover fewer folds than ``folds``:
    # ``complete`` says whether they are the cross-validation's result
    done = sorted(int(r["fold"]) for r in results)
    out = {"folds": folds, "folds_done": done, "complete": done == list(range(1, folds + 1)),
           "config": config.describe(),
           "input_norm_used": input_norm_used or config.input_norm, "results": results,
           "accuracy_mean": float(accs.mean()), "accuracy_std": float(accs.std(ddof=0)),
           "macro_f1_mean": float(f1s.mean()), "macro_f1_std": float(f1s.std(ddof=0)),
           **({"calibration_mean": {k: float(np.mean([c[k] for c in cal if c[k] is not None]))
                                    for k in ("ece_before", "ece_after", "accepted",
                                              "accuracy_on_accepted")}} if cal else {}),
           "dataset": {"root": str(data_dir), "file_count": len(ds),
                       "file_list_sha256": ds.list_hash()}}
    if stages:
        out["stages"] = [c.describe() for c in stages]
    return out


def format_cv(result: dict) -> str:
    lines = [f"{'fold':>4} {'train':>6} {'val':>5} {'test':>5} {'best ep':>8} {'accuracy':>9} {'macro F1':>9}"]
    for r in result["results"]:
        best = r["best_epoch"]
        best = "/".join(str(b) for b in best) if isinstance(best, list) else best
        lines.append(f"{r['fold']:>4} {r['train']:>6} {r['validation']:>5} {r['test']:>5} "
                     f"{best:>8} {r['accuracy'] * 100:>8.2f}% {r['macro_f1'] * 100:>8.2f}%")
    lines.append(f"mean accuracy {result['accuracy_mean'] * 100:.2f}% ± {result['accuracy_std'] * 100:.2f}"
                 f"   macro F1 {result['macro_f1_mean'] * 100:.2f}% ± {result['macro_f1_std'] * 100:.2f}")
    cal = result.get("calibration_mean")
    if cal:
        acc = cal["accuracy_on_accepted"]
        lines.append(f"held-out images, with the temperature and the unknown detector each fold "
                     f"fits: ECE {cal['ece_before'] * 100:.2f}% -> {cal['ece_after'] * 100:.2f}%, "
                     f"{cal['accepted'] * 100:.1f}% accepted as known"
                     + (f", {acc * 100:.2f}% of them right" if acc == acc else ""))
    return "\n".join(lines)


"""Default settings for a time budget: the training-time estimate, the speed guess and its
measurement on this PC, and the settings that fit the budget."""
from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from training.cancel import Cancelled
from training.train import TrainConfig
from training.transfer import CHECK_EPOCHS, median_side

from .data import ShouldStop, never


DEFAULT_BUDGET_SECONDS = 15 * 60   # the default epochs fit this much training on this machine
MIN_EPOCHS = 8
MAX_EPOCHS = 60
# Calibrated on this 2-core PC (idle; python -m inspector.retrain --data magnetic-tile
# --epochs 2, 1,344 images at 200x200: measured 38 img/s at batch 16, epochs of 55 and 85 s,
# head-first 25.7 s, 24 s outside fit and head-first, 29 s of fit outside the epochs): one
# calibration run, not yet checked on another
# fit() with numpy augmentation vs. the bare train steps measured, per image: a part per image and
# a part per step (shared by the batch). Measured 2026-12-02 on this 2-core PC after training
# got one tf.data iterator per run (before, a new one each epoch left the cores idle ~6 s in
# two epochs of three, which these constants had absorbed as 2.4 at batch 16 and 1.5 at 32):
# 800 NEU images, 3 epochs, alternating rounds, 1.107 and 1.096 at batch 16, 1.091 and 1.078 at
# batch 32 (a one-off script over training.train.fit and measure_seconds_per_image); the NEU
# add-back wizard run of the same day: 1.10 at batch 32 (docs/results/wizard_quality.json)
AUGMENT_PER_IMAGE = 1.07
AUGMENT_PER_STEP = 0.5
EVAL_COST = 0.35                   # an inference costs about this fraction of a training step
READ_SECONDS = 0.004               # reading and resizing one image
# Starting, measuring, loading the model, tracing the first epoch, the LiteRT export (fp32 and
# fp16 and their grey twins; int8 too until 2026-12-05), the unknown detector (the training
# images and their turned copies through the model), testing, writing the bundle and adding it
# to the library: a part that does not depend on the machine and a part that costs as much as
# training this many images of the data set at the measured speed (the same CPU does both).
# Refitted 2026-12-04 on the 31 wizard runs in docs/results/wizard_quality.json since 2026-12-02 13:00
# (681-1,650 images, 72-305 training img/s, 128 and 200 px, one and two cores): the whole
# command's estimate off by 1.2% on average, 4.2% at most (the constants before, 30 s plus
# 3,230 images at the measured speed whatever the data set's size, and a head-first of 12 s:
# 5.3% and 16.8%, every run of the last two days estimated high: -3% to -8% on NEU, -9% to -11%
# on 681 images at 128x128). Fitted on those runs, so not an independent check of them.
# Refitted 2026-12-06 on the 33 runs since the wizard stopped exporting int8 (2026-12-05 and
# -06: magnetic tiles and NEU add-back at 92-146 training img/s, 1,344-1,650 images, and the
# synthetic plant data at 128 px; docs/results/estimate_refit_2026-12-06.json lists them):
# the whole command's estimate off by 0.2% on average, -5.7% to +6.0% (the constants before,
# 24.5 s and 1.95: +6.4% on average, up to +14.2% on 3-minute runs, where the fixed costs'
# 20 s too much were a tenth of the command). A least-squares fit put all of it on the per-image
# part (0 s and 2.75); 10 s stays fixed for starting Python and TensorFlow and the speed
# measurement, which do not grow with the data set.
# Refitted 2026-12-07 (night) with small data sets: all of those runs had 1,344-1,650 images,
# so a cost per run could not be told from one per image, and on the synthetic plant data at
# 135 and 544 images the estimate was 18.5% and 7.7% low (14.4% on one core): the exports, the
# detector and the speed measurement take about 20 s whatever the data set's size. A part per
# run in training-step equivalents (it costs what this CPU's training costs) added and the
# three fitted with those 36 runs: 0 s, 2,600 per run and 1.0 per image; the 33 earlier runs
# then 0.0% off on average, -6.0% to +5.6%, the three small ones -5.2%, -4.4% and +4.1%
# (docs/results/estimate_refit_2026-12-07.json).
FIXED_BASE_SECONDS = 0.0
FIXED_PER_RUN = 2600.0             # training-step equivalents per run, whatever its data set
FIXED_PER_IMAGE = 1.0              # training-step equivalents per image of the data set
HEAD_SECONDS = 3.7                 # head-first: fitting the new classifier on cached features
HEAD_PER_IMAGE = 0.74              # ...after one pass over the training and validation images
GUESS_IMAGES_PER_S = 70.0          # training images/s at 200x200 on a 2-core CPU, before measuring
# A training step with the early layers frozen (TrainConfig.freeze_early, train --freeze-early;
# not the wizard's default) against the whole network's, which measure_seconds_per_image times
# (the unit of the constants above, the fixed costs' inference included). Measured 2026-12-06
# on this 2-core PC, the bundled model with a new head, 12 alternated steps each: 0.599 and
# 0.599 at 200x200 (batch 16, 32), 0.607 and 0.600 at 128x128
FROZEN_STEP_SHARE = 0.60
# A short budget trains smaller: a fine-tune whose budget buys fewer than SHORT_BUDGET_EPOCHS
# epochs at the full size (the model's input, or the images' own when smaller) trains at
# SHORT_BUDGET_SIZE instead, about three times as many epochs. Measured 2026-12-06 on this 2-core
# PC with the slow PC's budget (9-13 epochs at 200 px, 32-45 at 128): magnetic tiles 5-fold cv
# macro F1 90.6% at 128 px against 84.8% at 200 px for about the same fitting time, better on
# every fold (docs/results/cv_magnetic_128px_40_epochs.json); NEU with two classes added back
# 98.21% / 98.81% against 96.43% / 98.81% (docs/results/wizard_size_128_2026-12-06.json). Not
# below 128: a defect must keep enough pixels; not from scratch, where it was not measured.
SHORT_BUDGET_EPOCHS = 20
SHORT_BUDGET_SIZE = 128
# ...and only when the full size is at least this many times SHORT_BUDGET_SIZE (160 px): images
# of 136-152 px would give up resolution for at most 1.4x the epochs ((152 / 128) ^ 1.7), and a
# second speed measurement's seconds besides
SHORT_BUDGET_MIN_RATIO = 1.25
# The budget follows what the data needs: a fine-tune whose budget buys fewer than
# STRETCH_EPOCHS epochs (at the size it trains at) gets up to STRETCH_RATIO times the budget,
# just enough for them (15 minutes become 18.75 at most: the 20 minutes at most, less the
# estimate's error; at 4/3, 20.0 estimated, a magnetic-tile run on the slow PC took 20.7 min,
# 2026-12-07 evening). Measured 2026-12-06/07 on this 2-core PC,
# 5-fold cv at 128 px: NEU with two classes added back (1,212 training images a fold) 97.82% in
# the 28 epochs that the slow PC's 15 minutes buy, 98.42% in 37, 98.73% in 50; the magnetic
# tiles, whose 15 minutes buy 38, 89.21% in 38 and 89.68% in 60 (docs/retraining.md, "The
# budget follows the data"). Not from scratch, where it was not measured.
STRETCH_EPOCHS = 36
STRETCH_RATIO = 1.25
# A training step's time grows with the input's side to this power (bench_model, the same run:
# 31.0 training img/s at 200x200, 66.7 at 128x128; docs/results/bench_model_fused_bn.json): to
# carry a speed measured at one size over to another until it is measured there
SIZE_TIME_EXPONENT = 1.7


def model_full_size(card: Mapping | None) -> int:
    """The largest size a fine-tune from the model of ``card`` trains at by default: its input
    size, or, when it was trained smaller than its training images (the short-budget rule on a
    slow PC), the smaller of their scale (the card's ``view``, ``tile``) and the recipe's input
    size. So one short run does not keep every later fine-tune from it at SHORT_BUDGET_SIZE,
    even on a fast PC; a model trained at 128 because its images are 128 px stays at 128. A
    size chosen by hand (``--size``) was for that run: the next one goes back too."""
    from training.card import ModelCard

    mc = ModelCard.of(card or {})
    size = int(mc.input_size or TrainConfig().input_size)
    # a card without a valid record gives the input size as its tile (ModelCard.view)
    scale = min(mc.view.tile, TrainConfig().input_size) // 8 * 8
    return max(size, scale)


def full_training_size(card: Mapping | None, image_side: float | None) -> int:
    """The size a fine-tune from the model of ``card`` trains images of median shorter side
    ``image_side`` at without the short-budget rule: ``model_full_size``, or the images' own
    size when smaller (``training.transfer.native_input_size``)."""
    from training.transfer import native_input_size

    return native_input_size(image_side, model_full_size(card))


def guess_seconds_per_image(input_size: int = 200) -> float:
    """The training time per image before it is measured: ~70 images/s at 200x200 on a 2-core
    CPU, scaled with the pixel count."""
    return (input_size / 200) ** 2 / GUESS_IMAGES_PER_S


def seconds_per_image_at(speeds: float | Mapping[int, float], size: int) -> float:
    """The training time per image at ``size`` from speeds measured at some sizes
    (``{input_size: seconds per image}``): the one measured there, else the nearest size's,
    scaled by ``SIZE_TIME_EXPONENT``. A plain number is taken as measured at ``size``."""
    if not isinstance(speeds, Mapping):
        return float(speeds)
    if not speeds:
        raise ValueError("no training speed measured")
    if size in speeds:
        return float(speeds[size])
    near = nearest_measured(speeds, size)
    return float(speeds[near]) * (size / near) ** SIZE_TIME_EXPONENT


def nearest_measured(speeds: Mapping[int, float], size: int) -> int:
    """The measured size whose speed is carried over to ``size`` (the nearest by ratio, the
    smaller on a tie)."""
    return min(speeds, key=lambda s: (abs(math.log(s / size)), s))


def split_counts(counts: Mapping[str, int], val_fraction: float,
                 test_fraction: float) -> tuple[int, int, int]:
    """Train, validation and test image counts as ``training.data.stratified_split`` makes them."""
    tr = va = te = 0
    for n in counts.values():
        t, v = int(round(n * test_fraction)), int(round(n * val_fraction))
        if n >= 3:
            t = max(t, 1 if test_fraction > 0 else 0)
            v = max(v, 1 if val_fraction > 0 else 0)
        t, v = min(t, n), min(v, max(0, n - t))
        tr, va, te = tr + n - t - v, va + v, te + t
    return tr, va, te


def fixed_seconds(seconds_per_image: float, images: int) -> float:
    """The whole command's costs outside reading, head-first, the fits and testing, for the
    measured training time per image and a data set of ``images`` images
    (``FIXED_BASE_SECONDS``, ``FIXED_PER_RUN``, ``FIXED_PER_IMAGE``)."""
    return FIXED_BASE_SECONDS + ((FIXED_PER_RUN + FIXED_PER_IMAGE * max(0, images))
                                 * max(0.0, seconds_per_image))


def head_first_seconds(counts: Mapping[str, int], config: TrainConfig,
                       seconds_per_image: float) -> float:
    """Head-first (a new head when fine-tuning): one inference over the training and validation
    images for their features, then fitting the classifier on them (``HEAD_PER_IMAGE``
    training-step equivalents per image in all, plus ``HEAD_SECONDS``)."""
    if not (config.init_bundle and config.head_first):
        return 0.0
    tr, va, _ = split_counts(counts, config.val_fraction, config.test_fraction)
    return (tr + va) * seconds_per_image * HEAD_PER_IMAGE + HEAD_SECONDS


def augment_overhead(batch_size: int) -> float:
    """An augmented training epoch's time per image, in units of the measured bare step's."""
    return AUGMENT_PER_IMAGE + AUGMENT_PER_STEP / max(1, batch_size)


def epoch_seconds(counts: Mapping[str, int], config: TrainConfig, seconds_per_image: float) -> float:
    tr, va, _ = split_counts(counts, config.val_fraction, config.test_fraction)
    aug = augment_overhead(config.batch_size) if config.augment else 1.0
    step = FROZEN_STEP_SHARE if config.freeze_early and config.init_bundle else 1.0
    # the augmentation's part (aug - 1) is work outside the network: not made faster by freezing
    return tr * seconds_per_image * (step + aug - 1.0) + va * seconds_per_image * EVAL_COST


def check_seconds(counts: Mapping[str, int], config: TrainConfig, seconds_per_image: float) -> float:
    """The augmentation check's time before the fit: CHECK_EPOCHS augmented epochs and as many
    clean ones (which skip the augmentation), 0 without the check. Its third probe (the
    camera's shifts alone, ``TrainConfig.camera_only_probe``) is not counted: it runs only
    when the whole augmentation is dropped, and then every epoch of the fit runs without the
    augmentation, cheaper than ``estimate_seconds`` counts it (17.8 against 20.1 s an epoch on
    magnetic tiles on a slow PC): from about 15 epochs on, more than the probe's two epochs
    cost. A time-budgeted run takes the probe out of its budget."""
    if not (config.augment and config.augment_check):
        return 0.0
    clean = replace(config, augment=False)
    return CHECK_EPOCHS * (epoch_seconds(counts, config, seconds_per_image)
                           + epoch_seconds(counts, clean, seconds_per_image))


def estimate_seconds(counts: Mapping[str, int], config: TrainConfig,
                     seconds_per_image: float) -> float:
    """Wall-clock seconds for the whole retraining (checks, measuring, ``train()`` with
    ``config`` on a data set with these class counts, evaluation, saving), given the measured
    training time per image (at the config's input size). A time-budgeted run
    (``config.time_budget_s``) takes its budget, whatever the speed; otherwise all
    ``config.epochs`` are counted (with early stopping, ``config.patience``, an upper bound).
    Head-first is counted only when the classes differ from the start model's; callers that
    cannot tell (no class names) count it whenever ``init_bundle`` is set."""
    n = sum(counts.values())
    _, _, te = split_counts(counts, config.val_fraction, config.test_fraction)
    fit = (config.time_budget_s if config.time_budget_s > 0   # the check comes out of it
           else config.epochs * epoch_seconds(counts, config, seconds_per_image)
           + check_seconds(counts, config, seconds_per_image))
    return (fixed_seconds(seconds_per_image, n) + n * READ_SECONDS
            + head_first_seconds(counts, config, seconds_per_image)
            + fit
            + 2 * te * seconds_per_image * EVAL_COST)


def suggest_settings(counts: Mapping[str, int], seconds_per_image: float | Mapping[int, float],
                     *, current_bundle: str | Path | None = None,
                     current_card: Mapping | None = None,
                     class_names: Sequence[str] | None = None,
                     from_scratch: bool = False,
                     budget_seconds: float = DEFAULT_BUDGET_SECONDS,
                     image_side: float | None = None,
                     smaller_when_short: bool = True,
                     stretch: bool = True) -> TrainConfig:
    """Settings that work on a new data set without tuning: start from the current model (its
    input size; a new classifier head when the classes differ), the project's recipe, a larger
    held-out split for small data sets, and as many epochs as fit ``budget_seconds`` on this
    machine (between MIN_EPOCHS and MAX_EPOCHS). Images smaller than the model's input
    (``image_side``: median shorter side, ``median_side``) are trained at their own size rounded
    down to a multiple of 8; a fine-tune whose budget buys fewer than SHORT_BUDGET_EPOCHS epochs
    at that size trains at SHORT_BUDGET_SIZE if that is enough smaller (SHORT_BUDGET_MIN_RATIO;
    ``smaller_when_short``); one whose budget then still buys fewer than STRETCH_EPOCHS gets
    more time, up to STRETCH_RATIO times the budget (``stretch``).
    ``seconds_per_image``: the measured training time per image, ``{input_size: seconds}`` for
    the sizes measured (``seconds_per_image_at``), or one number measured at the size the
    images would train at without the short-budget rule. Unequal classes get balanced class
    weights; a new head is fitted first on frozen features. Training ends on time
    (``config.time_budget_s``, ``training.schedule``): the budget left after the fixed costs,
    its schedule on the clock, ``epochs`` what the measured speed buys; the best validation
    epoch's weights are kept. No early stopping: it made the estimate only an upper bound (a
    magnetic-tile run took 28% less than its estimate) and cut the cosine schedule off while its
    learning rate was high."""
    card = dict(current_card or {})
    if current_bundle is not None and not card:
        from training.bundle import BundleError, read_card
        try:
            card = read_card(current_bundle)
        except BundleError:
            card = {}
    full = full_training_size(card, image_side)
    speeds = seconds_per_image if isinstance(seconds_per_image, Mapping) \
        else {full: float(seconds_per_image)}
    names = tuple(class_names) if class_names else tuple(sorted(counts))
    model_classes = card.get("class_names")
    fine_tune = not from_scratch and current_bundle is not None and bool(card)
    same = fine_tune and model_classes is not None and list(model_classes) == list(names)
    config = _fit_budget(counts, seconds_per_image_at(speeds, full), card, current_bundle,
                         names, fine_tune, same, full, budget_seconds)
    if smaller_when_short and fine_tune and full >= SHORT_BUDGET_MIN_RATIO * SHORT_BUDGET_SIZE \
            and config.epochs < SHORT_BUDGET_EPOCHS:
        config = _fit_budget(counts, seconds_per_image_at(speeds, SHORT_BUDGET_SIZE), card,
                             current_bundle, names, fine_tune, same, SHORT_BUDGET_SIZE,
                             budget_seconds)
    if stretch and fine_tune and config.epochs < STRETCH_EPOCHS:
        spi = seconds_per_image_at(speeds, config.input_size)
        wanted = budget_seconds + (STRETCH_EPOCHS - config.epochs) * epoch_seconds(counts, config,
                                                                                   spi)
        config = _fit_budget(counts, spi, card, current_bundle, names, fine_tune, same,
                             config.input_size, min(STRETCH_RATIO * budget_seconds, wanted))
    return config


def _fit_budget(counts: Mapping[str, int], seconds_per_image: float, card: Mapping,
                current_bundle: str | Path | None, names: tuple[str, ...], fine_tune: bool,
                same: bool, input_size: int, budget_seconds: float) -> TrainConfig:
    """suggest_settings at one input size."""
    n = sum(counts.values())
    held_out = 0.1 if n < 3000 else 1 / 12
    base = TrainConfig()
    design = str(card.get("training", {}).get("config", {}).get("design") or base.design)
    config = replace(
        base,
        design=design if fine_tune else base.design,
        input_size=input_size,
        class_names=names,
        init_bundle=str(current_bundle) if fine_tune else None,
        # a kept head needs gentler steps than a new one or a model from scratch
        learning_rate=1e-3 if same else base.learning_rate,
        warmup_epochs=1 if same else base.warmup_epochs,
        val_fraction=held_out,
        test_fraction=held_out,
        batch_size=32 if n * (1 - 2 * held_out) >= 256 else 16,
        name=str(card.get("name") or base.name) if fine_tune else base.name,
        # unequal classes: plain cross-entropy first, the balanced class weights for the last
        # third (deferred re-weighting; magnetic tiles, 5-fold cv: macro F1 84.8% against 79.3%
        # weighted from the start and 82.9% never weighted; docs/retraining.md)
        class_weighting="deferred",
        head_first=True,
        epochs=1,
        export_int8=False,   # a fifth of the fixed costs for a file slower than fp32 (TrainConfig)
        later_epoch_margin_images=1.0,   # not an early epoch that one rare image made best
        # every layer trains (TrainConfig.freeze_early stays off): frozen early layers made the
        # steps 0.6 as long, but on the slow PC's budget the wizard's results were no better
        # (magnetic tiles, four splits: +11, -2, -3, -10 points of macro F1; NEU add-back the
        # same), and the bundled model's early layers have only ever seen grey images, so a
        # colour camera needs them to learn (docs/retraining.md)
    )
    if not (fine_tune and not same):
        config = replace(config, head_first=False)
    per_epoch = max(epoch_seconds(counts, config, seconds_per_image), 1e-6)
    spare = budget_seconds - (estimate_seconds(counts, config, seconds_per_image) - per_epoch)
    # new classes: first check that the camera augmentation lets them be learnt (its epochs
    # come out of the fit's time)
    config = replace(config, augment_check=config.head_first)
    checking = check_seconds(counts, config, seconds_per_image)
    lo = MIN_EPOCHS if fine_tune else 2 * MIN_EPOCHS
    hi = MAX_EPOCHS if fine_tune else 2 * MAX_EPOCHS
    epochs = int(min(hi, max(lo, math.floor((spare - checking) / per_epoch))))
    # the fit's time: the spare budget, but at least MIN_EPOCHS' and at most MAX_EPOCHS' worth
    fit_seconds = min(hi * per_epoch + checking, max(lo * per_epoch + checking, spare))
    return replace(config, epochs=epochs, patience=0, time_budget_s=round(fit_seconds, 1))


def measure_seconds_per_image(config: TrainConfig, class_names: Sequence[str], steps: int = 5,
                              should_stop: ShouldStop = never, min_seconds: float = 3.0,
                              max_steps: int = 15) -> float:
    """Times training steps of the model ``config`` starts from (after one untimed step that
    traces the graph): at least ``steps`` and until ``min_seconds`` have passed (at most
    ``max_steps``), and returns the median's seconds per training image on this machine. A few
    steps more than strictly needed: on a shared or throttled CPU single steps vary by 2x."""
    import keras

    from training.fused_bn import use_fused_batch_norm
    from training.train import build_initial_model

    model = build_initial_model(config, class_names)
    use_fused_batch_norm(model)   # as training.train.fit trains it
    model.compile(optimizer=keras.optimizers.Adam(1e-4),
                  loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
    rng = np.random.default_rng(0)
    b = config.batch_size
    x = rng.integers(0, 256, (b, config.input_size, config.input_size, 3)).astype(np.float32)
    y = keras.utils.to_categorical(rng.integers(0, len(class_names), b), len(class_names))
    model.train_on_batch(x, y)
    took: list[float] = []
    while len(took) < steps or (sum(took) < min_seconds and len(took) < max_steps):
        if should_stop():
            raise Cancelled("cancelled while measuring")
        t = time.perf_counter()
        model.train_on_batch(x, y)
        took.append(time.perf_counter() - t)
    return float(np.median(took)) / b

"""The transfer recipe's parts that are not the training loop itself: class weights for unequal
classes, the input size a data set is trained at, a model rebuilt at another input size, and the
head-first phase (the new classifier fitted on frozen features before everything is fine-tuned)
and the record of what a fine-tuning started from.
Qt-free; ``training.train.fit`` calls these."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .cancel import Cancelled, Progress, ShouldStop, never, quiet


UNEQUAL_RATIO = 1.5   # classes count as unequal when the largest has 1.5x the smallest's images
HEAD_EPOCHS = 40      # epochs of the head-first phase (on cached features: seconds)
HEAD_LR = 1e-2
CHECK_EPOCHS = 2      # the augmentation check's epochs, augmented and clean each
AUGMENT_PROGRESS = 0.75  # augmented must make this share of clean's progress above chance
PROGRESS_FLOOR = 0.05  # ... where clean has come at least this far above chance (else: noise)
# the check is skipped (the augmentation kept) when the head fitted on frozen features already
# reaches this share of the way from chance to a perfect balanced validation accuracy
HEAD_SEPARATES = 0.8


# ---- unequal classes -------------------------------------------------------------------------
def class_weights(labels: np.ndarray, num_classes: int, mode: str = "balanced") -> dict | None:
    """Per-class loss weights: with ``mode="balanced"`` and unequal classes (largest over smallest
    above ``UNEQUAL_RATIO``), n / (classes * n_c), so that every class weighs as much in the loss
    as if the classes were equal; None otherwise (equal classes, or ``mode="none"``)."""
    if mode == "none":
        return None
    if mode not in ("balanced", "deferred"):   # deferred: the same weights, late in training
        raise ValueError(f"unknown class weighting {mode!r} (balanced, deferred or none)")
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes).astype(float)
    present = counts[counts > 0]
    if len(present) < 2 or present.max() <= UNEQUAL_RATIO * present.min():
        return None
    w = len(labels) / (len(present) * np.maximum(counts, 1))
    return {i: float(w[i]) for i in range(num_classes)}


# deferred re-weighting (Cao et al., "Learning imbalanced datasets with label-distribution-aware
# margin loss", NeurIPS 2019: DRW): plain cross-entropy until this share of the fine-tune's
# schedule, the balanced class weights after it
DEFERRED_START = 2 / 3


def with_sample_weights(weights: dict, num_classes: int):
    """A tf.data map adding each one-hot row's class weight (weighted accuracy = balanced)."""
    import tensorflow as tf

    w = tf.constant([weights[i] for i in range(num_classes)], tf.float32)
    return lambda x, y: (x, y, tf.reduce_sum(y * w, axis=-1))


# ---- native resolution -----------------------------------------------------------------------
def median_side(sizes) -> float | None:
    """The median of the images' shorter sides, from (width, height) pairs or a data check's
    ``Report`` (its ``info``); None when there are none."""
    if hasattr(sizes, "info"):
        sizes = [(i.width, i.height) for i in sizes.info.values()]
    sides = [min(w, h) for w, h in sizes]
    return float(np.median(sides)) if sides else None


def native_input_size(median_side: float | None, model_size: int = 200, minimum: int = 32) -> int:
    """The input size to train at: the model's own size, or, when the data's images are smaller
    (median of their shorter sides), that side rounded down to a multiple of 8 (the network is
    fully convolutional; the bundle records the size and the engine resizes to it)."""
    if not median_side or median_side >= model_size:
        return model_size
    return max(minimum, int(median_side) // 8 * 8)


def resized_model(model, input_size: int):
    """The same network and weights taking ``input_size`` x ``input_size`` images."""
    import keras

    from .model import STANDARDIZED, input_norm_of, rebuilt

    if tuple(model.input_shape[1:3]) == (input_size, input_size):
        return model
    if input_norm_of(model) in STANDARDIZED:   # its contrast scale depends on the size
        return rebuilt(model, input_size=input_size)
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            cfg = layer["config"]
            key = "batch_shape" if "batch_shape" in cfg else "batch_input_shape"
            cfg[key] = [None, input_size, input_size, cfg[key][-1]]
    new = keras.Model.from_config(config)
    new.set_weights(model.get_weights())
    return new


# ---- head-first ------------------------------------------------------------------------------
def _features(model, x: np.ndarray, should_stop: ShouldStop, progress: Progress,
              start: float, span: float, batch: int = 64) -> np.ndarray:
    import keras

    pool = keras.Model(model.inputs[0], model.get_layer("pool").output)
    out = []
    for i in range(0, len(x), batch):
        if should_stop():
            raise Cancelled("training cancelled; nothing was written")
        out.append(np.asarray(pool(x[i:i + batch].astype(np.float32), training=False)))
        progress(start + span * min(1.0, (i + batch) / max(1, len(x))),
                 f"head-first: features of {min(i + batch, len(x))}/{len(x)} images")
    return np.concatenate(out) if out else np.zeros((0, pool.output_shape[-1]), np.float32)


def fit_head(model, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
             y_val: np.ndarray, num_classes: int, epochs: int = HEAD_EPOCHS,
             weights: dict | None = None, seed: int = 1234, progress: Progress = quiet,
             should_stop: ShouldStop = never) -> dict:
    """Phase 1 of transfer: the new classifier head alone, on the frozen backbone's pooled
    features of the (unaugmented) training images, computed once; its weights go into
    ``model``'s ``classifier`` layer. Returns the phase's record for the model card. Raises
    Cancelled when ``should_stop()`` turns true (the model is then discarded)."""
    import keras

    t0 = time.perf_counter()
    f_tr = _features(model, x_train, should_stop, progress, 0.0, 0.7)
    f_va = _features(model, x_val, should_stop, progress, 0.7, 0.2) if len(x_val) else None
    keras.utils.set_random_seed(seed)
    head = keras.Sequential([keras.Input((f_tr.shape[1],)),
                             keras.layers.Dense(num_classes, activation="softmax")])
    head.compile(keras.optimizers.Adam(HEAD_LR), "categorical_crossentropy",
                 metrics=["accuracy"])

    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if should_stop():
                self.model.stop_training = True

    eye = np.eye(num_classes, dtype=np.float32)
    hist = head.fit(f_tr, eye[y_train], batch_size=64, epochs=epochs, verbose=0,
                    class_weight=weights, callbacks=[Stop()],
                    validation_data=(f_va, eye[y_val]) if f_va is not None else None)
    if should_stop():
        raise Cancelled("training cancelled; nothing was written")
    kernel, bias = head.layers[-1].get_weights()
    model.get_layer("classifier").set_weights([kernel, bias])
    h = hist.history
    rec = {"phase": "head", "what": "new classifier on frozen, cached features", "epochs": epochs,
           "learning_rate": HEAD_LR, "seconds": round(time.perf_counter() - t0, 2),
           "train_accuracy": float(h["accuracy"][-1])}
    if "val_accuracy" in h:
        rec["val_accuracy"] = float(h["val_accuracy"][-1])
        pred = np.argmax(head.predict(f_va, batch_size=256, verbose=0), axis=1)
        rec["val_balanced_accuracy"] = balanced_accuracy(y_val, pred, num_classes)
    progress(1.0, f"head-first: classifier fitted in {rec['seconds']:.0f} s"
             + (f", validation accuracy {rec['val_accuracy'] * 100:.1f}%"
                if "val_accuracy" in rec else ""))
    return rec


def keep_augmentation(augmented: float, clean: float, classes: int,
                      progress: float = AUGMENT_PROGRESS) -> bool:
    """Whether training keeps the recipe's augmentation, given each probe's balanced validation
    score after the augmentation check's epochs with it and without
    (``true_class_probability``; chance is 1 / ``classes``): yes unless the augmented probe has
    come less than ``progress`` of the clean probe's way above chance. The augmentation is what
    makes a model robust to a real camera, so it goes only when it clearly stops this data's
    classes from being learnt in the time there is (small, local defects that blur, noise, a
    crop or a turn of a squeezed image take away). Measured after two epochs each (2026-12-05,
    ``docs/retraining.md``): NEU classes added back 0.84-0.92 of clean's progress and synthetic
    plant data 0.90, where the augmentation costs little; magnetic tiles 0.32-0.61 on four
    splits, where it kept macro F1 at 39-48% and clean training reached 80-91%. Only once clean
    is ``PROGRESS_FLOOR`` above chance: below that, neither probe has learnt anything and the
    difference is noise."""
    chance = 1.0 / max(classes, 1)
    if clean - chance < PROGRESS_FLOOR:
        return True
    return (augmented - chance) >= progress * (clean - chance)


def true_class_probability(y_true, probs, num_classes: int) -> float:
    """The augmentation check's score: the mean over the classes present in ``y_true`` of the
    mean probability the model gives an image's own class - a balanced accuracy that counts how
    sure the model is, not only whether its top class is right. On a validation split whose
    rarest classes have 3-6 images, balanced accuracy moves 3-6 points with one image and with
    the epoch a probe is read at (magnetic tiles: 0.555 at a probe's best epoch, 0.451 at its
    last); this score changes smoothly. A guess (every class 1 / classes) scores 1 / classes."""
    y_true = np.asarray(y_true, np.int64)
    probs = np.asarray(probs, np.float64)
    return _class_mean(y_true, probs[np.arange(len(y_true)), y_true], num_classes)


def balanced_accuracy(y_true, y_pred, num_classes: int) -> float:
    """The mean recall over the classes present in ``y_true``."""
    y_true = np.asarray(y_true)
    return _class_mean(y_true, np.asarray(y_pred) == y_true, num_classes)


def _class_mean(y_true: np.ndarray, per_image: np.ndarray, num_classes: int) -> float:
    """The mean over the classes present in ``y_true`` of ``per_image``'s mean over each class's
    images: every class weighs the same however many images it has (0.0 without images)."""
    means = [float(np.mean(per_image[y_true == c])) for c in range(num_classes)
             if np.any(y_true == c)]
    return float(np.mean(means)) if means else 0.0


def check_needed(phases: Sequence[dict], num_classes: int,
                 separates: float | None = None) -> bool:
    """Whether the augmentation check runs: not when the head-first phase (in ``phases``)
    already separates the new classes on the start model's frozen features - a balanced
    validation accuracy at least ``separates`` of the way from chance (1 / classes) to 1. The
    start model's features were learnt with the same augmentation, and on such data it has never
    been the augmentation that kept classes from being learnt: in all eight wizard runs whose
    head reached 0.92-0.97 (NEU classes added back, synthetic plant data) the check kept it,
    and its 2 x CHECK_EPOCHS epochs (57 s of a 4.8-minute slow-PC run) went to waste. Magnetic
    tiles, where the check dropped the augmentation and macro F1 rose from 48% to 91%, had a
    head at 0.37-0.40 (``docs/results/wizard_quality.json``). Without a head-first record (no
    new head, or no validation images) the check runs."""
    head = next((p for p in phases if p.get("phase") == "head"), None)
    score = None if head is None else head.get("val_balanced_accuracy")
    if score is None:
        return True
    separates = HEAD_SEPARATES if separates is None else separates
    chance = 1.0 / max(num_classes, 1)
    return score < chance + separates * (1.0 - chance)


def bundle_classes(bundle) -> list[str] | None:
    """The class names of the bundle training starts from (None: none, or unreadable)."""
    from .bundle import BundleError, read_card

    if not bundle:
        return None
    try:
        return list(read_card(bundle)["class_names"])
    except (BundleError, KeyError):
        return None


def shifted(progress: Progress, start: float) -> Progress:
    """Progress of what is left after ``start`` (a fraction) was reported."""
    return lambda f, m: progress(start + (1 - start) * f, m)


def freeze_early_layers(model, keep: Sequence[str] = ()) -> list[str]:
    """Freezes the layers before the first one whose output map's side is a quarter of the
    input's or smaller: those at the full and half resolution (design A: the stem, the first
    two depthwise-separable blocks and the first SE block, 2.4k of 23.6k weights; design B's
    first three blocks). Their backward pass, over the largest feature maps, is most of a
    training step's time, and what they compute (edges, fine texture, the first channel
    attention) carries over to a new surface; their batch normalisation keeps the start
    model's statistics. Layers named in ``keep`` stay trainable. Returns the names of the
    frozen layers that have weights; ``unfreeze`` undoes it."""
    side = model.input_shape[1]
    frozen = []
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if (side and shape is not None and len(shape) == 4 and shape[1]
                and 1 < shape[1] <= side / 4):   # (a pooled 1 x 1 map is not a resolution)
            break
        if layer.weights and layer.name not in keep:
            layer.trainable = False
            frozen.append(layer.name)
    return frozen


def unfreeze(model, names: Sequence[str]) -> None:
    """The layers ``freeze_early_layers`` froze (``names``) trainable again."""
    for name in names:
        model.get_layer(name).trainable = True


def needs_head_first(config, start_class_names: Sequence[str] | None,
                     class_names: Sequence[str]) -> bool:
    """Head-first runs when fine-tuning from a bundle whose classes differ (a new head)."""
    return bool(config.init_bundle and config.head_first and start_class_names is not None
                and list(start_class_names) != list(class_names))


def earliest_stop(epochs: int) -> int:
    """The first epoch after which early stopping may end a run: half of the planned epochs.
    Before that the learning rate is still high (warm-up, then the first half of the cosine), and
    validation accuracy dips and recovers: a 14-epoch add-back run stopped after epoch 6 with its
    best epoch the first (85% test accuracy) where 25 epochs reached 98%."""
    return max(1, math.ceil(epochs / 2))


def stop_early(epoch: int, best_epoch: int, patience: int, epochs: int) -> bool:
    """Whether training stops after ``epoch`` (1-based): ``patience`` epochs without a better
    validation epoch, and not before ``earliest_stop(epochs)``."""
    return (patience > 0 and epoch >= earliest_stop(epochs) and epoch < epochs
            and epoch - best_epoch >= patience)


def init_record(init_bundle: str | None) -> dict | None:
    """What a fine-tuning started from: the bundle's name, version and the SHA-256 of its
    weights file, so the run can be reproduced after that folder has changed."""
    if not init_bundle:
        return None
    import hashlib

    from .bundle import MODEL_FILE, read_card

    card = read_card(init_bundle)
    weights = Path(init_bundle) / MODEL_FILE
    return {"path": str(init_bundle), "name": card.get("name"), "version": card.get("version"),
            "model_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}

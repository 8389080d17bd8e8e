"""The training input pipeline: each image augmented in numpy and OpenCV (turns, mirrors, a small
nearest-neighbour rotation and shift, the camera shifts of ``training.shifts``), shuffled into
batches by a generator that tf.data runs ahead of the training steps. Qt-free."""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .train import TrainConfig


def augment_image(img: np.ndarray, rng: np.random.Generator, config: TrainConfig,
                  others=None) -> np.ndarray:
    """One training image as the recipe augments it (numpy and OpenCV, no TensorFlow):

    * flips and transposition (the eight 90-degree turns and mirrors of a square image);
    * a small rotation and shift, resampled with nearest neighbour: bilinear resampling blurs
      every training image, and a model trained only on blurred textures misreads sharp ones
      (measured: 97% on augmented training images, 91% on the same images unaugmented);
    * with ``camera_shifts``, what a plant camera does (``training.shifts.camera_augment``:
      field of view, lighting, uneven light, defocus and motion blur, sensor noise, JPEG), each
      with its own probability, a share of images left clean; otherwise the old brightness and
      contrast jitter. ``others()``, another training image of the same class, fills the
      surround of a wider field of view (``training.shifts.wider_surround``).
    Without ``geometry`` neither turns, mirrors, rotation and shift nor the camera's field of
    view: only the light and the pixels change.
    Grey images stay grey (one channel is augmented and repeated)."""
    from .shifts import camera_augment, is_grey

    grey = is_grey(img)
    x = img[..., 0] if grey else img
    g = config.geometry
    x, turn = turned(x, rng, config.flips and g, config.rotation_degrees if g else 0.0,
                     config.shift_fraction if g else 0.0, with_turn=True)
    if config.camera_shifts:
        def other():   # turned as this image was
            o = others()
            return _turn(o[..., 0] if grey and o.ndim == 3 else o, turn)
        x = camera_augment(x, rng, config.camera_settings(), None if others is None else other)
    elif config.contrast or config.brightness:
        f = x.astype(np.float32)
        mean = float(f.mean())
        c = 1.0 + rng.uniform(-config.contrast, config.contrast)
        b = rng.uniform(-config.brightness, config.brightness) * 255.0
        x = np.clip((f - mean) * c + mean + b + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(x[..., None], 3, axis=2) if grey else x


def _turn(x: np.ndarray, k: int) -> np.ndarray:
    """The k-th of the eight 90-degree turns and mirrors of a square image (0: itself)."""
    x = np.rot90(x, k % 4)
    return x[:, ::-1] if k >= 4 else x


def turned(x: np.ndarray, rng: np.random.Generator, flips: bool, rotation_degrees: float,
           shift_fraction: float = 0.0, with_turn: bool = False):
    """A square image (HxW or HxWxC) turned as the recipe turns it: one of the eight 90-degree
    turns and mirrors (``flips``), then a rotation of up to +-``rotation_degrees`` and a shift of
    up to +-``shift_fraction`` of the side, resampled with nearest neighbour (reflected at the
    borders). Returns a contiguous array (and, ``with_turn``, which of the eight turns)."""
    import cv2

    s = x.shape[0]
    k = 0
    if flips:
        k = int(rng.integers(8))
        x = _turn(x, k)
    angle = rng.uniform(-rotation_degrees, rotation_degrees) if rotation_degrees else 0.0
    shift = shift_fraction * s
    dx, dy = rng.uniform(-shift, shift, 2) if shift else (0.0, 0.0)
    if angle or dx or dy:
        m = cv2.getRotationMatrix2D(((s - 1) / 2, (s - 1) / 2), angle, 1.0)
        m[:, 2] += (dx, dy)
        x = cv2.warpAffine(np.ascontiguousarray(x), m, (x.shape[1], x.shape[0]),
                           flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)
    x = np.ascontiguousarray(x)
    return (x, k) if with_turn else x


def paired_views(config: TrainConfig) -> bool:
    """Whether batches hold two augmented views of each image (``config.consistency``)."""
    return bool(config.augment and config.consistency > 0)


def augmented_batches(images: np.ndarray, labels: np.ndarray, config: TrainConfig, epoch: int):
    """One epoch of shuffled (and, with ``config.augment``, augmented) batches
    ``(uint8 images, labels)``; deterministic for (seed, epoch). With ``paired_views(config)``
    a batch of n images holds 2n: first one view of each, then a second, independently
    augmented view of each in the same order (``consistency_loss`` pairs the halves)."""
    rng = np.random.default_rng([config.seed, epoch])
    order = rng.permutation(len(images))
    views = 2 if paired_views(config) else 1
    clean_first = views == 2 and config.consistency_teacher == "clean"
    no_camera = (replace(config, camera_shifts=False, contrast=0.0, brightness=0.0)
                 if clean_first else None)
    labels = np.asarray(labels)
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}

    def same_class(j):   # another image of image j's class (itself when it is the only one)
        pool = by_class[labels[j]]
        return lambda: images[pool[rng.integers(len(pool))]]

    for i in range(0, len(order), config.batch_size):
        idx = order[i:i + config.batch_size]
        if clean_first:   # the same turn and shift, once without and once through the camera
            seeds = rng.integers(2**63, size=len(idx))
            batch = np.stack(
                [augment_image(images[j], np.random.default_rng(s), no_camera)
                 for j, s in zip(idx, seeds)]
                + [augment_image(images[j], np.random.default_rng(s), config, same_class(j))
                   for j, s in zip(idx, seeds)])
        elif config.augment:
            batch = np.stack([augment_image(images[j], rng, config, same_class(j))
                              for _ in range(views) for j in idx])
        else:
            batch = images[idx]
        yield batch, np.tile(labels[idx], views)


def consistency_loss(label_smoothing: float, weight: float, clean_teacher: bool = False):
    """The training loss for paired batches (``augmented_batches`` with two views): per image,
    the cross-entropy plus ``weight`` times the Jensen-Shannon divergence between the
    predictions for its two views (AugMix, Hendrycks et al. 2020, with two augmented views).
    ``y_pred`` are probabilities; the batch's first half are the first views. A batch whose
    halves are the same images (the validation set, ``training_datasets``) adds nothing.
    ``clean_teacher``: the first views are the images without the camera shifts, and the term is
    KL(p || q) with p held fixed (no gradient), the clean view the target of the shifted one."""
    import keras
    from keras import ops

    ce = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, reduction=None)
    kl = keras.losses.KLDivergence(reduction=None)   # kl(a, b) = KL(a || b), per image

    def loss(y_true, y_pred):
        n = ops.shape(y_pred)[0] // 2
        p, q = y_pred[:n], y_pred[n:]
        if clean_teacher:
            js = kl(ops.stop_gradient(p), q)
        else:
            m = (p + q) / 2
            js = (kl(p, m) + kl(q, m)) / 2
        return ce(y_true, y_pred) + weight * ops.concatenate([js, js], axis=0)

    loss.__name__ = "crossentropy_with_consistency"
    return loss


def mixed_batch(batch: np.ndarray, labels: np.ndarray, num_classes: int, alpha: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """mixup: ``(float32 images, soft labels)``, the batch blended with a shuffled copy of itself
    by one weight ``lam`` ~ Beta(alpha, alpha): ``lam * x + (1 - lam) * x[perm]``, the same for
    the one-hot labels. Pixel values stay within the images' range."""
    eye = np.eye(num_classes, dtype=np.float32)
    lam = np.float32(rng.beta(alpha, alpha))
    perm = rng.permutation(len(batch))
    x = batch.astype(np.float32)
    return lam * x + (1 - lam) * x[perm], lam * eye[labels] + (1 - lam) * eye[labels[perm]]


def steps_per_epoch(count: int, config: TrainConfig) -> int:
    """Batches in one epoch of ``count`` training images (the last one may be smaller)."""
    return max(1, -(-int(count) // config.batch_size))


def training_datasets(x_train, y_train, x_val, y_val, config: TrainConfig, num_classes: int):
    """The training set is augmented in numpy by a generator that tf.data runs ahead of the
    training steps: one endless stream, epoch after epoch (``augmented_batches`` of epoch 0, 1,
    ...), so ``model.fit`` must be given ``steps_per_epoch`` (``steps_per_epoch()``). One
    iterator then serves the whole run: with one iterator per epoch, Keras destroyed the
    finished one at each epoch's start and waited, which left both cores idle for about 6 s in
    two epochs of three (NEU, 2 cores: epochs of 20.5 s against 13 s). What it waited for was
    tf.data's autotuning thread (below), which is now off as well. The validation set is
    cached as it is."""
    import itertools

    import tensorflow as tf

    size = x_train.shape[1]
    eye = np.eye(num_classes, dtype=np.float32)

    def gen():
        for epoch in itertools.count():
            mix = np.random.default_rng([config.seed, epoch, 1])   # mixup's own draws
            for batch, y in augmented_batches(x_train, y_train, config, epoch):
                if config.mixup > 0:
                    yield mixed_batch(batch, y, num_classes, config.mixup, mix)
                else:
                    yield batch, eye[y]

    train = tf.data.Dataset.from_generator(gen, output_signature=(
        tf.TensorSpec((None, size, size, 3), tf.float32 if config.mixup > 0 else tf.uint8),
        tf.TensorSpec((None, num_classes), tf.float32)))
    # tf.data's autotuning off: this pipeline has nothing to tune (one generator, a cast, a
    # fixed prefetch), and its model thread (Model::OptimizeLoop, sleeping on a timer) is what
    # an iterator's destruction waited for at the end of a fit: 0-30 s with both cores idle
    # (gdb: RootDataset::Iterator::~Iterator waiting on that thread)
    opts = tf.data.Options()
    opts.autotune.enabled = False
    train = train.map(lambda x, y: (tf.cast(x, tf.float32), y)).prefetch(2).with_options(opts)
    val = None
    if len(x_val):
        val = tf.data.Dataset.from_tensor_slices(
            (x_val, tf.one_hot(y_val, num_classes))).batch(64).map(
            lambda x, y: (tf.cast(x, tf.float32), y))
        if paired_views(config):   # the same image as both views: the loss is the cross-entropy
            val = val.map(lambda x, y: (tf.concat([x, x], 0), tf.concat([y, y], 0)))
        val = val.cache().with_options(opts)
    return train, val

"""A stand-in classifier with the engine's interface that labels an input by its mean
brightness (deterministic and fast), and a large synthetic image with one small defect patch."""
from __future__ import annotations

import types
from pathlib import Path

import numpy as np
from PIL import Image

from inspector.engine import Verdicts
from training.images import load_image, to_model_input

CLASSES = ["good", "dark_spot", "bright_scale"]


class BrightnessClassifier:
    """``good`` for mid-grey inputs, ``dark_spot`` for dark ones, ``bright_scale`` for bright
    ones; an input with much pure white is flagged unknown (score: its share of white pixels)."""

    class_names = list(CLASSES)
    input_size = 32
    title = "Brightness stand-in"
    device = "CPU"
    card = {"name": "Brightness", "version": "0.0.1"}
    se_block_names: list[str] = []
    has_unknown_detection = True

    accept = 0.95                    # the detector's settings as the engine exposes them
    unknown_threshold = 0.5
    validation_unknown_rate = 0.05

    def __init__(self):
        self.calls: list[int] = []

    def set_accept(self, share: float) -> None:
        self.accept = share

    def prepare(self, arr):
        return to_model_input(arr, self.input_size)

    def load(self, path):
        return load_image(path, self.input_size)

    def judge(self, images) -> Verdicts:
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        self.calls.append(len(images))
        mean = images.reshape(len(images), -1).mean(axis=1) / 255.0
        logits = np.stack([-abs(mean - 0.5) * 20, (0.35 - mean) * 20, (mean - 0.65) * 20], axis=1)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        white = (images.reshape(len(images), -1) >= 250).mean(axis=1)
        return Verdicts((e / e.sum(axis=1, keepdims=True)).astype(np.float32), white, white < 0.5)

    def classify(self, images):
        return self.judge(images).probs

    def inspect(self, image, maps=None):
        v = self.judge(np.asarray(image)[None])
        return types.SimpleNamespace(probs=v.probs[0], se_blocks=[], label=int(v.probs[0].argmax()),
                                     class_names=self.class_names, unknown_score=float(v.unknown_scores[0]),
                                     known=bool(v.known[0]), cam=lambda c=None: np.zeros((4, 4), np.float32),
                                     features=np.zeros((4, 4, 1), np.float32),
                                     classifier_weights=np.zeros((1, 3), np.float32))


PATCH = (1000, 720, 120, 120)   # x, y, w, h of the defect patch


def large_image(width: int = 1600, height: int = 1200, value: int = 128, patch_value: int = 20,
                patch=PATCH, seed: int = 0) -> np.ndarray:
    """Mid-grey noisy texture (``good``) with one small dark patch (``dark_spot``)."""
    rng = np.random.default_rng(seed)
    img = np.clip(rng.normal(value, 10, (height, width)), 0, 255).astype(np.uint8)
    x, y, w, h = patch
    img[y:y + h, x:x + w] = np.clip(rng.normal(patch_value, 5, (h, w)), 0, 255).astype(np.uint8)
    return img


def write_large(path: Path, **kw) -> Path:
    Image.fromarray(large_image(**kw)).save(path)
    return path

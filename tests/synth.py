"""Small synthetic images for tests: each class has its own texture, so a model can learn them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches")


def texture(class_index: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """A grey uint8 image whose pattern depends on the class (stripes at class-specific angles)."""
    rng = np.random.default_rng(seed * 97 + class_index)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = class_index * np.pi / 6
    freq = 0.15 + 0.1 * class_index
    img = 128 + 90 * np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 6))
    img += rng.normal(0, 12, (size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_dataset(root: Path, classes=CLASSES[:3], per_class: int = 8, size: int = 64,
                 fmt: str = "png") -> Path:
    root = Path(root)
    for ci, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            Image.fromarray(texture(ci, size, seed=k)).save(root / name / f"{name[:2]}_{k}.{fmt}")
    return root


def make_bundle(out: Path, classes=CLASSES, design: str = "B", input_size: int = 64,
                epochs: int = 3) -> Path:
    """A briefly trained SSDC-MiniNet bundle with a valid model card (a stand-in for the real
    one): small input so that tests run fast, predictions that differ between images."""
    import keras

    from training.bundle import CARD_FILE, MODEL_FILE, write_bundle_atomic, write_json
    from training.model import build_ssdc_mininet

    keras.utils.set_random_seed(0)
    model = build_ssdc_mininet(design, len(classes), input_size)
    x = np.stack([np.repeat(texture(c, input_size, seed=k)[..., None], 3, axis=2)
                  for c in range(len(classes)) for k in range(6)]).astype(np.float32)
    y = keras.utils.to_categorical(np.repeat(np.arange(len(classes)), 6), len(classes))
    model.compile(keras.optimizers.Adam(3e-3), "categorical_crossentropy")
    model.fit(x, y, batch_size=12, epochs=epochs, verbose=0)

    def fill(tmp: Path) -> None:
        model.save(tmp / MODEL_FILE)
        write_json(tmp / CARD_FILE, {"name": "Test-MiniNet", "version": "0.0.1",
                                     "class_names": list(classes), "input_size": input_size,
                                     "parameters": int(model.count_params())})

    return write_bundle_atomic(out, fill)

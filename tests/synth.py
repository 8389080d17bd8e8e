"""Small synthetic images for tests: each class has its own texture, so a model can learn them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# Probabilities computed by different paths (another batch size, one image against a batch, the
# inspection model against the plain one) differ in the last float32 bits: oneDNN picks other
# kernels per batch size and CPU (seen: 1.4e-5 between batch 3 and batch 7 on an AVX2-only EPYC).
# Labels are compared exactly; probabilities within this tolerance.
PROB_ATOL = 1e-4

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
                litert: bool = True, input_norm: str = "rescale") -> Path:
    """A stand-in SSDC-MiniNet bundle with a valid model card: small input so that tests run
    fast, and predictions that differ between images (batch-norm statistics calibrated on
    synthetic textures, random classifier weights; no backpropagation, so it takes seconds).
    With ``litert`` it has the LiteRT inspection export the app runs (fp32 only: the untrained
    backbone's features differ between textures in the fifth digit, which half-precision
    weights wash out; tests/test_litert.py converts the other formats); without, the app falls
    back to TensorFlow."""
    import keras

    from training.bundle import CARD_FILE, MODEL_FILE, write_bundle_atomic, write_json
    from training.model import build_ssdc_mininet

    keras.utils.set_random_seed(0)
    model = build_ssdc_mininet(design, len(classes), input_size, input_norm=input_norm)
    x = np.stack([np.repeat(texture(c % 6, input_size, seed=k)[..., None], 3, axis=2)
                  for c in range(len(classes)) for k in range(4)]).astype(np.float32)
    for _ in range(25):  # training-mode passes update the moving statistics (momentum 0.9)
        model(x, training=True)
    # A random head on whitened pooled features, so that different textures get clearly
    # different probabilities (an untrained backbone pools to nearly the same vector).
    pooled = np.asarray(keras.Model(model.inputs, model.get_layer("pool").output)(x))
    mu, sigma = pooled.mean(axis=0), pooled.std(axis=0) + 1e-6
    rng = np.random.default_rng(0)
    r = rng.normal(0, 1.5, (pooled.shape[1], len(classes))).astype(np.float32)
    head = model.get_layer("classifier")
    head.kernel.assign(r / sigma[:, None])
    head.bias.assign(-(mu / sigma) @ r)

    files, info = {}, None
    if litert:
        from training.inspection_export import build_inspection

        labels = np.array([c for c in range(len(classes)) for _ in range(4)])
        files, info = build_inspection(model, None, x, labels, formats_wanted=("fp32",))

    def fill(tmp: Path) -> None:
        model.save(tmp / MODEL_FILE)
        if info is not None:
            from training.inspection_export import write_inspection

            write_inspection(tmp, files, info)
        from training.card import VIEW_KEY, training_view

        # trained, as it stands for, on square images of its input size (NEU's kind)
        write_json(tmp / CARD_FILE, {"name": "Test-MiniNet", "version": "0.0.1",
                                     "class_names": list(classes), "input_size": input_size,
                                     VIEW_KEY: training_view([[input_size, input_size]],
                                                             input_size),
                                     "parameters": int(model.count_params())})

    return write_bundle_atomic(out, fill)


def detector_images(classes, seeds, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(N, size, size, 3) uint8 textures of ``classes`` (one per seed) and their labels."""
    x = np.stack([np.repeat(texture(c, size, seed=s)[..., None], 3, axis=2)
                  for c in classes for s in seeds])
    y = np.array([c for c in classes for _ in seeds])
    return x, y


def foreign_image(size: int = 64, seed: int = 0) -> np.ndarray:
    """A grey uint8 image unlike every class texture: a checkerboard of large squares with
    blotches (no stripes at all)."""
    rng = np.random.default_rng(seed + 5000)
    yy, xx = np.mgrid[0:size, 0:size]
    cell = size // 4
    img = np.where(((yy // cell) + (xx // cell)) % 2 == 0, 40.0, 215.0)
    img += rng.normal(0, 4, (size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


def short_budget_speeds(monkeypatch, module, speeds: dict[int, float]) -> list[int]:
    """Plays the short-budget rule on the 64x64 stand-in: SHORT_BUDGET_SIZE at 32 stands for
    128 (and 64 for the 200x200 model), and ``module``'s measure_seconds_per_image returns
    ``speeds[input size]``; returns the list of sizes measured."""
    from inspector.retrain import defaults
    monkeypatch.setattr(defaults, "SHORT_BUDGET_SIZE", 32)
    measured: list[int] = []

    def measure(config, names, **kw):
        measured.append(config.input_size)
        return speeds[config.input_size]

    monkeypatch.setattr(module, "measure_seconds_per_image", measure)
    return measured

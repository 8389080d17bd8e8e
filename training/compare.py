"""The paper's Table 1 on this machine: SSDC-MiniNet next to MobileNet (alpha 1, 0.25, 0.1),
DenseNet121 and ResNet50, plus the second study's transfer-learning heads (MobileNetV1,
EfficientNetB0, VGG-16 with a 128-64 dense head and 20% dropout).

Pretrained ImageNet weights cannot be downloaded at run time. Without a local weights file
(``weights={"vgg16_tl": "/path/vgg16_notop.h5"}``) a backbone trains from scratch (and is then
trainable); the table says which. Heavy models may use fewer epochs; the table records them.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from . import data as data_mod
from .train import TrainConfig, evaluate_arrays, fit

SMALL = ("ssdc_mininet", "mobilenet_0.1", "mobilenet_0.25")
HEAVY = ("mobilenet_1.0", "densenet121", "resnet50", "mobilenetv1_tl", "efficientnetb0_tl",
         "vgg16_tl")
ALL_MODELS = SMALL + HEAVY
TRANSFER = HEAVY[3:]   # the second study's backbones: they take local ImageNet weights
TL_SIZE = 224


def build_baseline(name: str, num_classes: int, input_size: int, weights: str | None = None):
    """A Keras model for ``name``: (model, input size, what its weights are)."""
    import keras
    from keras import layers

    from .model import build_ssdc_mininet

    if name == "ssdc_mininet":
        design = TrainConfig().design
        return build_ssdc_mininet(design, num_classes, input_size), input_size, "scratch"
    shape = (input_size, input_size, 3)
    if name.startswith("mobilenet_"):
        alpha = float(name.split("_")[1])
        base = keras.applications.MobileNet(input_shape=shape, alpha=alpha, include_top=True,
                                            weights=None, classes=num_classes)
        return _with_rescaling(base, shape, "mobilenet"), input_size, "scratch"
    if name == "densenet121":
        base = keras.applications.DenseNet121(input_shape=shape, include_top=True, weights=None,
                                              classes=num_classes)
        return _with_rescaling(base, shape, "densenet"), input_size, "scratch"
    if name == "resnet50":
        base = keras.applications.ResNet50(input_shape=shape, include_top=True, weights=None,
                                           classes=num_classes)
        return _with_rescaling(base, shape, "resnet"), input_size, "scratch"
    # The second study's transfer-learning models: 224x224, frozen backbone when pretrained.
    shape = (TL_SIZE, TL_SIZE, 3)
    ctor = {"mobilenetv1_tl": keras.applications.MobileNet,   # TRANSFER
            "efficientnetb0_tl": keras.applications.EfficientNetB0,
            "vgg16_tl": keras.applications.VGG16}[name]
    backbone = ctor(input_shape=shape, include_top=False, weights=None)
    used = "scratch (no local ImageNet weights)"
    if weights:
        try:
            backbone.load_weights(weights)
        except Exception as exc:  # noqa: BLE001 - h5py and Keras raise their own errors
            raise ValueError(f"--weights {name}={weights}: cannot be loaded into {name} "
                             f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                             ) from None
        backbone.trainable = False
        used = f"ImageNet, frozen ({Path(weights).name})"
    inputs = keras.Input(shape)
    x = backbone(inputs, training=False if weights else None)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name), TL_SIZE, used


def _with_rescaling(base, shape, mode: str):
    import keras
    from keras import layers

    inputs = keras.Input(shape)
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)  # raw pixels, like SSDC-MiniNet
    return keras.Model(inputs, base(x), name=base.name)


def cpu_latency_ms(model, input_size: int, runs: int = 20) -> float:
    """Median batch-1 latency of a compiled forward pass, in ms."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False))
    x = tf.zeros((1, input_size, input_size, 3))
    fn(x)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(x).numpy()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def compare(data_dir: str | Path, models=None, epochs: int = 50, heavy_epochs: int = 3,
            train_limit: int = 0, weights: dict[str, str] | None = None, seed: int = 1234,
            ssdc_bundle: str | None = None,
            progress: Callable[[float, str], None] = lambda f, m: None) -> dict:
    import keras

    from .bundle import load_bundle, read_card, read_split
    from .flops import count_flops, count_params

    models = list(models or ALL_MODELS)
    unknown = [m for m in models if m not in ALL_MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(ALL_MODELS)}")
    weights = weights or {}
    base_cfg = TrainConfig(seed=seed)
    card = read_card(ssdc_bundle) if ssdc_bundle else {}
    # With a bundle: its class order, and its own split, so that no model is tested on
    # images the bundle trained on.
    ds = data_mod.scan_dataset(data_dir, card.get("class_names"))
    x200 = data_mod.load_arrays(ds, 200, lambda f, m: progress(0.02 * f, m),
                                   square=data_mod.dataset_view(ds, 200)["square"])
    split = read_split(ssdc_bundle) if ssdc_bundle else None
    if split is not None:
        tr, va, te = data_mod.split_indices(ds, split)
    else:
        tr, va, te = data_mod.stratified_split(ds, base_cfg.val_fraction, base_cfg.test_fraction, seed)
    if train_limit and len(tr) > train_limit:
        tr = np.sort(np.random.default_rng(seed).permutation(tr)[:train_limit])
    rows = []
    for n, name in enumerate(models):
        def prog(f, m, n=n, name=name):
            progress(0.02 + 0.98 * (n + f) / len(models), f"{name}: {m}")

        keras.backend.clear_session()
        if name == "ssdc_mininet" and ssdc_bundle:
            b = load_bundle(ssdc_bundle)
            model, size, used = b.model, b.input_size, f"bundle {Path(ssdc_bundle).name}"
            ep = b.card.get("training", {}).get("config", {}).get("epochs", 0) or 1
        else:
            model, size, used = build_baseline(name, len(ds.class_names), 200, weights.get(name))
            ep = heavy_epochs if name in HEAVY else epochs
        x = x200 if size == 200 else _resize_all(x200, size)
        cfg = replace(base_cfg, epochs=ep, input_size=size, class_names=tuple(ds.class_names),
                      learning_rate=1e-3 if name != "ssdc_mininet" else base_cfg.learning_rate)
        row = {"model": name, "weights": used, "input": size, "parameters": count_params(model),
               "gflops": round(count_flops(model) / 1e9, 3),
               "size_mb": round(count_params(model) * 4 / 1e6, 2), "epochs": ep}
        t0 = time.perf_counter()
        if not (name == "ssdc_mininet" and ssdc_bundle) and ep > 0:
            res = fit(x[tr], ds.labels[tr], x[va], ds.labels[va], ds.class_names, cfg, prog,
                      model=model)
            model = res.model
            row["train_seconds"] = round(res.seconds, 1)
            row["train_images_per_second"] = round(res.images_per_second, 1)
        from .predict import KerasPredictor

        pred = KerasPredictor(model, ds.class_names, size)
        if ep > 0:
            row["train_accuracy"] = evaluate_arrays(pred, x[tr], ds.labels[tr], ds.class_names)["accuracy"]
            row["test_accuracy"] = evaluate_arrays(pred, x[te], ds.labels[te], ds.class_names)["accuracy"]
        row["cpu_latency_ms"] = round(cpu_latency_ms(model, size), 2)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        prog(1.0, "done")
    return {"rows": rows, "train_images": int(len(tr)), "test_images": int(len(te)),
            "dataset": str(data_dir), "seed": seed}


def _resize_all(x: np.ndarray, size: int) -> np.ndarray:
    from .images import resize_rgb

    return np.stack([resize_rgb(img, size) for img in x])


def format_table(result: dict) -> str:
    head = (f"{'model':<18}{'params':>12}{'GFLOPs':>8}{'MB':>8}{'epochs':>7}{'train acc':>10}"
            f"{'test acc':>9}{'CPU ms':>8}  weights")
    lines = [head]
    for r in result["rows"]:
        tr = f"{r['train_accuracy'] * 100:.2f}%" if "train_accuracy" in r else "-"
        te = f"{r['test_accuracy'] * 100:.2f}%" if "test_accuracy" in r else "-"
        lines.append(f"{r['model']:<18}{r['parameters']:>12,}{r['gflops']:>8.3f}{r['size_mb']:>8.2f}"
                     f"{r['epochs']:>7}{tr:>10}{te:>9}{r['cpu_latency_ms']:>8.1f}  {r['weights']}")
    lines.append(f"trained on {result['train_images']} images, tested on {result['test_images']}")
    return "\n".join(lines)

"""Post-training quantization of a bundle to LiteRT (TFLite) files.

* ``tflite-fp32``: plain conversion.
* ``tflite-fp16``: weights stored as float16 (computed in float32).
* ``tflite-int8``: integer quantization: int8 input (raw pixels minus 128, scale 1), int8 weights
  and activations of the convolutions and the classifier, int8 output; the per-image
  normalisation and the SE blocks' pooling and scaling stay float
  (``training.inspection_export.INT8_FLOAT_OPS``: fully int8 lost up to 4.3 points at single
  camera shifts); calibrated on a representative set drawn from the bundle's own training split
  (from ``split.json``), so no test image influences the quantization.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from .bundle import CARD_FILE, TFLITE_FILES, BundleError, load_bundle, read_card, read_split, replace_file_atomic, write_json
from .card import ModelCard
from .data import load_arrays, scan_dataset

REPRESENTATIVE_IMAGES = 300


def _concrete_function(model):
    import tensorflow as tf

    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    # Batch size left open: the interpreter starts at batch 1 and can be resized to any batch.
    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32, name="pixels")
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    return convert_variables_to_constants_v2(fn)  # frozen: the calibrator reads no variables


def _data_root(card: dict, data_dir: str | Path | None) -> Path | None:
    """The data folder given, else the one the card records; None when neither is a folder
    (a bundle that records none is not trained on the working directory)."""
    root = data_dir or (card.get("dataset") or {}).get("root")
    return Path(root) if root and Path(root).is_dir() else None


def representative_images(bundle_dir: Path, data_dir: str | Path | None, count: int,
                          seed: int = 0, progress: Callable[[float, str], None] = lambda f, m: None
                          ) -> np.ndarray:
    """Up to ``count`` training-split images (stratified by taking every k-th of a seeded
    shuffle) as uint8 arrays."""
    card = read_card(bundle_dir)
    size = int(card["input_size"])
    split = read_split(bundle_dir)
    root = _data_root(card, data_dir)
    if split is not None and root is not None:
        rel = split["train"]
        files = [root / r for r in rel if (root / r).exists()]
    elif root is not None:
        ds = scan_dataset(root, card["class_names"], with_digests=False)
        files = list(ds.files)
    elif data_dir:
        raise BundleError(f"{data_dir}: not a folder; the int8 export needs the training images "
                          "for calibration")
    else:
        raise BundleError(f"{bundle_dir}: int8 export needs training images for calibration; "
                          "pass --data with the training data folder")
    if not files:
        raise BundleError(f"{root}: none of the bundle's training files were found")
    rng = np.random.default_rng(seed)
    pick = [files[i] for i in sorted(rng.permutation(len(files))[:count])]
    from .data import Dataset

    ds = Dataset(root, card["class_names"], pick, np.zeros(len(pick), np.int64))
    images = load_arrays(ds, size, progress, square=ModelCard.of(card).view.square)
    return images


def convert(model, fmt: str, representative: np.ndarray | None = None) -> bytes:
    import tensorflow as tf

    from .fast_graph import fast_graph
    from .inspection_export import quantize_int8, set_precision

    if fmt != "tflite-int8":   # the same maths, XNNPACK's fast kernels (training.fast_graph)
        model = fast_graph(model)
    # the model as the trackable object, as the inspection export gives it (without, the
    # converter warned on every export that it takes a deprecated path)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([_concrete_function(model)], model)
    if fmt == "tflite-fp16":
        set_precision(conv, "fp16")
    elif fmt == "tflite-int8":
        return quantize_int8(conv, representative, integer_io=True)
    elif fmt != "tflite-fp32":
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(TFLITE_FILES)}")
    return conv.convert()


def export_bundle(bundle_dir: str | Path, fmt: str, data_dir: str | Path | None = None,
                  progress: Callable[[float, str], None] = lambda f, m: None) -> tuple[Path, dict]:
    """Writes ``model_<fmt>.tflite`` into the bundle (atomically) and records it in the card."""
    bundle_dir = Path(bundle_dir)
    bundle = load_bundle(bundle_dir)
    rep = None
    if fmt == "tflite-int8":
        rep = representative_images(bundle_dir, data_dir, REPRESENTATIVE_IMAGES,
                                    int(bundle.card.get("seed", 0)),
                                    lambda f, m: progress(0.5 * f, f"calibration set: {m}"))
    progress(0.6, f"converting to {fmt}")
    t = time.perf_counter()
    blob = convert(bundle.model, fmt, rep)
    out = bundle_dir / TFLITE_FILES[fmt]
    replace_file_atomic(out, blob)
    info = {"file": out.name, "bytes": len(blob), "seconds": round(time.perf_counter() - t, 1),
            "representative_images": int(len(rep)) if rep is not None else None}
    if fmt == "tflite-int8":
        from .inspection_export import INT8_FLOAT_OPS

        info["float_ops"] = list(INT8_FLOAT_OPS)   # kept in float, the rest int8
    card = read_card(bundle_dir)
    card.setdefault("exports", {})[fmt] = info
    (card.get("robustness") or {}).pop(out.name, None)   # measured on the file just replaced
    write_json(bundle_dir / CARD_FILE, card)
    progress(1.0, f"wrote {out}")
    return out, info


def split_images(bundle_dir: Path, data_dir: str | Path | None, part: str,
                 progress: Callable[[float, str], None] = lambda f, m: None
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """The images and labels of one part of a bundle's own split (from ``split.json``), or None
    when the split or the data folder is not at hand."""
    from .data import bundle_split

    card = read_card(bundle_dir)
    root = _data_root(card, data_dir)
    if not (bundle_dir / "split.json").exists() or root is None:
        return None
    ds = scan_dataset(root, card["class_names"], with_digests=False)
    (idx,) = bundle_split(ds, bundle_dir, [part])
    if not len(idx):
        return None
    sub = ds.subset(idx)
    images = load_arrays(sub, int(card["input_size"]), progress,
                            square=ModelCard.of(card).view.square)
    return images, sub.labels


def export_inspection(bundle_dir: str | Path, data_dir: str | Path | None = None,
                      progress: Callable[[float, str], None] = lambda f, m: None,
                      graph_score: bool = True) -> dict:
    """Writes the inspection model in LiteRT fp32, fp16 and int8 (``training.inspection_export``)
    into an existing bundle and records it in the card; fp32 and fp16 compute the bundle's
    unknown score in the graph when its detector's score compiles (unless not
    ``graph_score``). int8 needs the bundle's training images (calibration); its test accuracy,
    which decides whether the app may use it, needs the test split. Without them int8 is left
    out and the card says why."""
    from .inspection_export import build_inspection, summary, write_inspection

    bundle_dir = Path(bundle_dir)
    bundle = load_bundle(bundle_dir)
    try:
        rep = representative_images(bundle_dir, data_dir, REPRESENTATIVE_IMAGES,
                                    int(bundle.card.get("seed", 0)),
                                    lambda f, m: progress(0.2 * f, f"calibration set: {m}"))
    except BundleError as exc:
        progress(0.2, f"int8 left out: {exc}")
        rep = None
    test = split_images(bundle_dir, data_dir, "test",
                        lambda f, m: progress(0.2 + 0.1 * f, f"test split: {m}"))
    from .detect import load_detector

    files, info = build_inspection(bundle.model, rep, *(test or (None, None)),
                                   progress=lambda f, m: progress(0.3 + 0.7 * f, m),
                                   detector=load_detector(bundle_dir) if graph_score else None)
    if rep is None:
        info["formats"]["int8"] = {"usable": False,
                                   "reason": "no training images for calibration"}
    write_inspection(bundle_dir, files, info)
    card = read_card(bundle_dir)
    card.setdefault("exports", {})["inspection"] = summary(info)
    write_json(bundle_dir / CARD_FILE, card)
    return info

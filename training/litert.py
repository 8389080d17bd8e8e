"""The inspection model in LiteRT: reading and running what ``training.export.export_inspection``
writes into a bundle, without TensorFlow.

A bundle's inspection export is::

    inspect_fp32.tflite, inspect_fp16.tflite, inspect_int8.tflite
        one signature, input ``pixels`` (N, S, S, 3) float32 raw pixels 0..255, outputs: everything
        a verdict and an explanation need (``probs``, ``logits``, ``pool_<view>``, ``features``,
        ``se{i}_excite``, ``se{i}_input``; ``training.model.inspection_model``), float32 (the int8
        model computes in int8 inside, with float input and outputs)
    inspection.json
        per format: which signature output holds which key (TFLite names them ``output_<i>``;
        the map was checked by value against Keras on export), whether a batch can be run in one
        invoke, the largest probability difference to Keras and the test-split accuracy
    classifier_kernel.npy
        the classifier's (K, classes) kernel, for class activation maps

This module only needs numpy and ``ai_edge_litert``; it never imports TensorFlow.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Iterable

import numpy as np

INSPECTION_FORMATS = ("fp32", "fp16", "int8")
INSPECTION_FILES = {f: f"inspect_{f}.tflite" for f in INSPECTION_FORMATS}
INSPECTION_INFO = "inspection.json"
KERNEL_FILE = "classifier_kernel.npy"
VERDICT_KEYS_PREFIX = "pool_"


class ExportLoadError(ValueError):
    """A LiteRT file of the export that cannot be loaded; the message names it. (A ValueError,
    as the app reports BundleError and ValueError alike; training.bundle would bring Keras.)"""


def default_threads() -> int:
    """Interpreter threads: one core less than this process may use (at least one), so that
    image decoding and the window keep a core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def read_info(bundle_dir: str | Path) -> dict | None:
    """A bundle's ``inspection.json``, or None when the bundle has no inspection export (older
    bundles) or lacks a part of it."""
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / INSPECTION_INFO
    if not path.exists() or not (bundle_dir / KERNEL_FILE).exists():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    formats = {f: v for f, v in (info.get("formats") or {}).items()
               if v.get("usable") and (bundle_dir / INSPECTION_FILES[f]).exists()}
    if "fp32" not in formats:
        return None
    info["formats"] = formats
    return info


def read_kernel(bundle_dir: str | Path) -> np.ndarray:
    return np.load(Path(bundle_dir) / KERNEL_FILE, allow_pickle=False).astype(np.float32)


def interpreter_class():
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter


class InspectionRunner:
    """One inspection model in one LiteRT interpreter. ``run`` is thread-safe (one invoke at a
    time per interpreter). A batch runs in one invoke where the export found that to work
    (``batch``), else image by image."""

    def __init__(self, model: str | Path | bytes, outputs: dict[str, str], batch: bool = True,
                 num_threads: int | None = None):
        Interpreter = interpreter_class()
        kw = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        self.interpreter = Interpreter(num_threads=num_threads or default_threads(), **kw)
        runner = self.interpreter.get_signature_runner()
        (self._in_name, inp), = runner.get_input_details().items()
        self._input = int(inp["index"])
        self.input_shape = tuple(int(s) for s in inp["shape"][1:])
        details = runner.get_output_details()
        missing = [k for k, name in outputs.items() if name not in details]
        if missing:
            raise ValueError(f"the LiteRT model lacks the outputs of {', '.join(missing)}")
        self._outputs = {k: int(details[name]["index"]) for k, name in outputs.items()}
        self.keys = tuple(outputs)
        self.batch = batch
        self._lock = threading.Lock()
        self._n = 0

    def _resize(self, n: int) -> None:
        if n != self._n:
            self.interpreter.resize_tensor_input(self._input, [n, *self.input_shape])
            self.interpreter.allocate_tensors()
            self._n = n

    def run(self, images: np.ndarray, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """(N, S, S, 3) pixels -> {key: (N, ...) float32} for ``keys`` (default: all)."""
        x = np.ascontiguousarray(images, dtype=np.float32)
        keys = list(self.keys if keys is None else keys)
        with self._lock:
            if self.batch or len(x) == 1:
                self._resize(len(x))
                self.interpreter.set_tensor(self._input, x)
                self.interpreter.invoke()
                return {k: self.interpreter.get_tensor(self._outputs[k]) for k in keys}
            self._resize(1)
            parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
            for i in range(len(x)):
                self.interpreter.set_tensor(self._input, x[i:i + 1])
                self.interpreter.invoke()
                for k in keys:
                    parts[k].append(self.interpreter.get_tensor(self._outputs[k]))
            return {k: np.concatenate(v) for k, v in parts.items()}


def open_runner(bundle_dir: str | Path, fmt: str, info: dict,
                num_threads: int | None = None) -> InspectionRunner:
    """One format of a bundle's export; raises ExportLoadError naming the file when it cannot
    load."""
    entry = info["formats"][fmt]
    path = Path(bundle_dir) / INSPECTION_FILES[fmt]
    try:
        return InspectionRunner(path, entry["outputs"], bool(entry.get("batch", False)),
                                num_threads)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ExportLoadError(f"{path}: cannot load ({exc})") from None

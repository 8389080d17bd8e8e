"""The inspection model in LiteRT: reading and running what ``training.export.export_inspection``
writes into a bundle, without TensorFlow.

A bundle's inspection export is::

    inspect_fp32.tflite, inspect_fp16.tflite, inspect_int8.tflite
        one signature, input ``pixels`` (1, S, S, 3) float32 raw pixels 0..255 (older exports:
        (N, S, S, 3)), outputs: everything a verdict and an explanation need (``probs``,
        ``logits``, ``pool_<view>``, ``std_<view>``, ``features``, ``se{i}_excite``,
        ``se{i}_input``; ``training.model.inspection_model``), float32 (the int8 model computes
        in int8 inside, with float input and outputs); fp32 and fp16 also ``unknown_score`` and
        ``unknown_probs`` when the bundle's detector compiles (``training.score_graph``)
    inspect_fp32_grey.tflite, inspect_fp16_grey.tflite
        the same model for grey images, input (1, S, S, 1): the first convolution's kernel summed
        over the colour channels (``training.model.grey_model``), a fifth less work an image;
        ``InspectionRunner`` gives it every image whose three channels are equal
    inspection.json
        per format: which signature output holds which key (TFLite names them ``output_<i>``;
        the map was checked by value against Keras on export), whether a batch can be run in one
        invoke (``batch``; false for the static one-image models), the largest probability
        difference to Keras and the test-split accuracy; ``score``: the in-graph score's check
        against numpy and the detector's fingerprint; ``grey``: the grey file's outputs and its
        check against Keras (absent in older exports: every image then runs in colour)
    classifier_kernel.npy
        the classifier's (K, classes) kernel, for class activation maps

This module only needs numpy and ``ai_edge_litert``; it never imports TensorFlow.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Iterable

import numpy as np

INSPECTION_FORMATS = ("fp32", "fp16", "int8")
INSPECTION_FILES = {f: f"inspect_{f}.tflite" for f in INSPECTION_FORMATS}
GREY_FORMATS = ("fp32", "fp16")   # int8 keeps one calibrated RGB file
GREY_FILES = {f: f"inspect_{f}_grey.tflite" for f in GREY_FORMATS}
INSPECTION_INFO = "inspection.json"
KERNEL_FILE = "classifier_kernel.npy"
# the pooled outputs the unknown detector reads (``pool_<view>``: mean, ``std_<view>``: spread)
VERDICT_PREFIXES = ("pool_", "std_")
# the unknown detector's score and calibrated probabilities computed in the graph
# (``training.score_graph``; exports for a detector whose score compiles, fp32 and fp16)
SCORE_KEY = "unknown_score"    # (N,) the unknown score, higher = more foreign
PROBS_KEY = "unknown_probs"    # (N, K) probabilities at the detector's temperature
GRAPH_KEYS = (SCORE_KEY, PROBS_KEY)


class ExportLoadError(ValueError):
    """A LiteRT file of the export that cannot be loaded; the message names it. (A ValueError,
    as the app reports BundleError and ValueError alike; training.bundle would bring Keras.)"""


# lines LiteRT's native code prints on stderr that say nothing to a user (one per interpreter)
NATIVE_BANNERS = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


@contextlib.contextmanager
def banners_dropped(drop: Iterable[str] = NATIVE_BANNERS):
    """Within: what native code (and Python) writes to the process's stderr passes through a
    pipe whose reader thread forwards every line at once, except the ``drop`` banners; so
    nothing else is lost or held back, even if the process dies. For a command line's model
    loading; where stderr is no file descriptor (a window, a test's capture) it does nothing."""
    import sys

    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    drop = {d.encode() for d in drop}
    sys.stderr.flush()
    saved = os.dup(fd)
    read_end, write_end = os.pipe()

    def forward():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if line.rstrip(b"\r\n") not in drop:
                    os.write(saved, line)

    reader = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    reader.start()
    os.dup2(write_end, fd)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)   # the pipe's last writer closes: the reader ends
        reader.join(timeout=5)
        os.close(saved)


def available_cores() -> int:
    """The CPU cores this process may use (its affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def default_threads() -> int:
    """Interpreter threads: one core less than this process may use (at least one), so that
    image decoding and the window keep a core."""
    return max(1, available_cores() - 1)


def read_info(bundle_dir: str | Path) -> dict | None:
    """A bundle's ``inspection.json``, or None when the bundle has no inspection export (older
    bundles) or lacks a part of it."""
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / INSPECTION_INFO
    if not path.exists() or not (bundle_dir / KERNEL_FILE).exists():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        logging.getLogger(__name__).warning(
            "%s: damaged (%s); the LiteRT export is not used (export it again: python -m "
            "training export)", path, exc)
        return None
    formats = {f: v for f, v in (info.get("formats") or {}).items()
               if v.get("usable") and (bundle_dir / INSPECTION_FILES[f]).exists()}
    for f, v in formats.items():
        g = v.get("grey")
        # a twin of the same export: usable, its file there, its score (if any) the colour's
        digest = (v.get("score") or {}).get("digest")
        same_score = ((g or {}).get("score") or {}).get("digest") == digest
        if g and not (g.get("usable") and f in GREY_FILES and same_score
                      and (bundle_dir / GREY_FILES[f]).exists()):
            v.pop("grey")
    if "fp32" not in formats:
        return None
    info["formats"] = formats
    return info


def graph_score_usable(entry: dict, digest: str | None) -> bool:
    """Whether a format's export (``entry``: its part of ``inspection.json``) computes in its
    graph the score of the detector whose fingerprint is ``digest``
    (``training.openset.UnknownDetector.digest``), checked against numpy on export. False after
    the detector was fitted anew (``python -m training calibrate`` without a new export): the
    app then scores in numpy."""
    score = entry.get("score") or {}
    return (digest is not None and bool(score.get("usable")) and score.get("digest") == digest
            and set(GRAPH_KEYS) <= set(entry.get("outputs") or ()))


def verdict_keys(keys: Iterable[str], graph_score: bool = False) -> list[str]:
    """Of an export's output ``keys``, those a verdict reads: the score and probabilities the
    graph computed (``graph_score``), else the probabilities, logits and what the unknown
    detector scores in numpy (not the maps only an explanation needs)."""
    if graph_score:
        return [k for k in keys if k in GRAPH_KEYS]
    return [k for k in keys if k in ("probs", "logits") or k.startswith(VERDICT_PREFIXES)]


def read_kernel(bundle_dir: str | Path) -> np.ndarray:
    return np.load(Path(bundle_dir) / KERNEL_FILE, allow_pickle=False).astype(np.float32)


def interpreter_class():
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter


class _Slot:
    """One interpreter (and its grey twin, or None) and their lock."""

    def __init__(self, interpreter, threads: int = 1, grey=None):
        self.interpreter = interpreter
        self.grey = grey
        self.threads = threads
        self.lock = threading.Lock()
        self.n = 0
        self.grey_ready = False   # its tensors are allocated on its first grey image (~9 MB)


def grey_images(x: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) -> (N,) bool: the images whose three channels are equal (every pixel
    compared; a colour image is usually told by its first row already)."""
    import cv2   # its split gives contiguous planes: 28 against 52 us an image for numpy's

    out = np.zeros(len(x), bool)
    for i, im in enumerate(x):
        row = im[0]
        if (row[:, 0] == row[:, 1]).all() and (row[:, 0] == row[:, 2]).all():
            r, g, b = cv2.split(np.ascontiguousarray(im))
            out[i] = bool(np.array_equal(r, g) and np.array_equal(r, b))
    return out


class InspectionRunner:
    """One inspection model in LiteRT. ``run`` is thread-safe.

    A model exported for one image at a time (``batch`` False; what the export writes since the
    static batch of 1 lets XNNPACK take the whole graph: 140 against 108 img/s on one core) runs
    ``num_threads`` single-threaded interpreters side by side, each on its share of a batch
    (measured on two cores: 226 img/s, against 186 for one interpreter with two threads). A model
    that takes a batch in one invoke (``batch``; older exports) runs in one interpreter with
    ``num_threads`` threads.

    One image alone (the camera's frame, the image opened in the large view) is a matter of
    latency, not throughput: it runs on one more interpreter with ``single_threads`` threads
    (default: every core this process may use), when that is more than a batch interpreter has
    (measured on two cores, bundled model, fp32: 4.1 against 8.2 ms per image).

    ``grey``: the same model for one grey channel (``GREY_FILES``: a model file or bytes, and its
    outputs as ``outputs``), for a one-image model: every image whose three channels are equal
    runs on it (bundled model, fp32, one thread: 2.3 against 2.8 ms an image)."""

    def __init__(self, model: str | Path | bytes, outputs: dict[str, str], batch: bool = True,
                 num_threads: int | None = None, single_threads: int | None = None,
                 grey: tuple[str | Path | bytes, dict[str, str]] | None = None):
        Interpreter = interpreter_class()

        def source(m):
            return {"model_content": m} if isinstance(m, bytes) else {"model_path": str(m)}

        kw = source(model)
        if grey is not None and batch:
            raise ValueError("a grey twin serves a one-image model only")
        grey_kw = source(grey[0]) if grey is not None else None

        def slot(n):
            return _Slot(Interpreter(num_threads=n, **kw), n,
                         Interpreter(num_threads=n, **grey_kw) if grey_kw else None)

        threads = num_threads or default_threads()
        count, per = (1, threads) if batch else (threads, 1)
        self._slots = [slot(per) for _ in range(count)]
        single = single_threads or available_cores()
        self._single = slot(single) if single > per else None
        runner = self._slots[0].interpreter.get_signature_runner()
        (self._in_name, inp), = runner.get_input_details().items()
        self._input = int(inp["index"])
        self.input_shape = tuple(int(s) for s in inp["shape"][1:])
        details = runner.get_output_details()
        missing = [k for k, name in outputs.items() if name not in details]
        if missing:
            raise ValueError(f"the LiteRT model lacks the outputs of {', '.join(missing)}")
        self._outputs = {k: int(details[name]["index"]) for k, name in outputs.items()}
        self.keys = tuple(outputs)
        self._grey_input, self._grey_outputs = None, {}
        if grey is not None:
            g = self._slots[0].grey.get_signature_runner()
            (_, ginp), = g.get_input_details().items()
            gdetails = g.get_output_details()
            if tuple(int(s) for s in ginp["shape"][1:]) != (*self.input_shape[:-1], 1) or \
                    set(grey[1]) != set(outputs) or \
                    any(name not in gdetails for name in grey[1].values()):
                raise ValueError("the grey model's input or outputs do not match the model's")
            self._grey_input = int(ginp["index"])
            self._grey_outputs = {k: int(gdetails[name]["index"]) for k, name in grey[1].items()}
        self.batch = batch
        self._pool = None
        self._pool_lock = threading.Lock()

    @property
    def has_grey(self) -> bool:
        """Whether grey images run on the grey twin."""
        return self._grey_input is not None

    @property
    def interpreters(self) -> int:
        """Interpreters that share a batch (the one for single images not counted)."""
        return len(self._slots)

    @property
    def single_threads(self) -> int:
        """Threads that run one image alone."""
        return self._single.threads if self._single else self._slots[0].threads

    def _invoke(self, slot: _Slot, x: np.ndarray, keys: list[str]) -> dict[str, np.ndarray]:
        """``x`` through one interpreter (its lock held by the caller): in one invoke for a batch
        model, else image by image (grey ones on the grey twin)."""
        it = slot.interpreter
        step = len(x) if self.batch else 1
        if slot.n != step:
            it.resize_tensor_input(self._input, [step, *self.input_shape])
            it.allocate_tensors()
            slot.n = step
        grey = grey_images(x) if slot.grey is not None else np.zeros(len(x), bool)
        parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        for i in range(0, len(x), step):
            if grey[i] and slot.grey is not None:
                try:
                    if not slot.grey_ready:
                        slot.grey.allocate_tensors()
                        slot.grey_ready = True
                    slot.grey.set_tensor(self._grey_input,
                                         np.ascontiguousarray(x[i:i + 1, :, :, :1], np.float32))
                    slot.grey.invoke()
                    for k in keys:
                        parts[k].append(slot.grey.get_tensor(self._grey_outputs[k]))
                    continue
                except (RuntimeError, ValueError) as exc:   # the colour model takes over
                    logging.getLogger(__name__).warning(
                        "the grey model failed (%s); grey images run in colour", exc)
                    slot.grey = None
            it.set_tensor(self._input, np.ascontiguousarray(x[i:i + step], np.float32))
            it.invoke()
            for k in keys:
                parts[k].append(it.get_tensor(self._outputs[k]))
        return {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in parts.items()}

    def _on_slot(self, slot: _Slot, x: np.ndarray, keys: list[str]) -> dict[str, np.ndarray]:
        with slot.lock:
            return self._invoke(slot, x, keys)

    def _free_slot(self) -> _Slot:
        for slot in self._slots:
            if not slot.lock.locked():
                return slot
        return self._slots[0]

    def _executor(self):
        from concurrent.futures import ThreadPoolExecutor

        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(len(self._slots) - 1,
                                                thread_name_prefix="litert")
            return self._pool

    def run(self, images: np.ndarray, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """(N, S, S, 3) pixels -> {key: (N, ...) float32} for ``keys`` (default: all). uint8
        pixels are converted to float image by image (a grey image's one channel only)."""
        x = np.asarray(images)
        if x.dtype != np.uint8:
            x = np.asarray(x, np.float32)
        keys = list(self.keys if keys is None else keys)
        if len(x) == 1 and self._single is not None and not self._single.lock.locked():
            return self._on_slot(self._single, x, keys)
        k = min(len(self._slots), len(x))
        if k <= 1:
            return self._on_slot(self._free_slot(), x, keys)
        bounds = np.linspace(0, len(x), k + 1).astype(int)
        chunks = [x[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        pool = self._executor()
        futures = [pool.submit(self._on_slot, slot, c, keys)
                   for slot, c in zip(self._slots[1:], chunks[1:])]
        first = self._on_slot(self._slots[0], chunks[0], keys)
        parts = [first] + [f.result() for f in futures]
        return {key: np.concatenate([p[key] for p in parts]) for key in keys}


def open_runner(bundle_dir: str | Path, fmt: str, info: dict, num_threads: int | None = None,
                single_threads: int | None = None) -> InspectionRunner:
    """One format of a bundle's export; raises ExportLoadError naming the file when it cannot
    load."""
    entry = info["formats"][fmt]
    path = Path(bundle_dir) / INSPECTION_FILES[fmt]
    grey = entry.get("grey")
    batch = bool(entry.get("batch", False))
    grey_error = None
    if grey and not batch:
        gpath = Path(bundle_dir) / GREY_FILES[fmt]
        try:
            return InspectionRunner(path, entry["outputs"], batch, num_threads, single_threads,
                                    grey=(gpath, grey["outputs"]))
        except (ValueError, RuntimeError, KeyError) as exc:
            grey_error = f"{gpath}: not used ({exc}); grey images run in colour"
    try:
        runner = InspectionRunner(path, entry["outputs"], batch, num_threads, single_threads)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ExportLoadError(f"{path}: cannot load ({exc})") from None
    if grey_error:   # only when the colour model, which then serves every image, loads
        logging.getLogger(__name__).warning(grey_error)
    return runner

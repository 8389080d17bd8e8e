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
    verdict_fp32.tflite, verdict_fp16.tflite, verdict_fp32_grey.tflite, verdict_fp16_grey.tflite
        where the graph has the unknown score: the same models with only ``unknown_score`` and
        ``unknown_probs`` as outputs (the maps and spreads an explanation needs are neither
        computed nor written out: about a seventh faster); ``InspectionRunner`` runs every call
        that asks for no more on them (a folder's classification, the format choice's timing)
    inspection.json
        per format: which signature output holds which key (TFLite names them ``output_<i>``;
        the map was checked by value against Keras on export), whether a batch can be run in one
        invoke (``batch``; false for the static one-image models), the largest probability
        difference to Keras and the test-split accuracy; ``score``: the in-graph score's check
        against numpy and the detector's fingerprint; ``grey``: the grey file's outputs and its
        check against Keras (absent in older exports: every image then runs in colour);
        ``verdict`` (in a format's entry and in its ``grey``): the verdict-only file's outputs
        and its check against the inspection model (absent: verdicts run on that model)
    classifier_kernel.npy
        the classifier's (K, classes) kernel, for class activation maps

This module only needs numpy and ``ai_edge_litert``; it never imports TensorFlow.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Iterable

import numpy as np

INSPECTION_FORMATS = ("fp32", "fp16", "int8")
INSPECTION_FILES = {f: f"inspect_{f}.tflite" for f in INSPECTION_FORMATS}
GREY_FORMATS = ("fp32", "fp16")   # int8 keeps one calibrated RGB file
GREY_FILES = {f: f"inspect_{f}_grey.tflite" for f in GREY_FORMATS}
# the same models with only a verdict's outputs (``GRAPH_KEYS``), for formats whose graph has the
# unknown score: what a folder's classification runs (``InspectionRunner``'s ``verdict`` twins)
VERDICT_FILES = {f: f"verdict_{f}.tflite" for f in GREY_FORMATS}
VERDICT_GREY_FILES = {f: f"verdict_{f}_grey.tflite" for f in GREY_FORMATS}
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
        # a twin of the same export: usable, its file there, its score (if any) the colour's;
        # a verdict-only twin only beside the score it gives
        digest = (v.get("score") or {}).get("digest")

        def same_export(twin, files):
            return (twin.get("usable") and f in files and (bundle_dir / files[f]).exists()
                    and (twin.get("score") or {}).get("digest") == digest)

        grey = v.get("grey") if isinstance(v.get("grey"), dict) else {}
        for entry, files, key in ((v, GREY_FILES, "grey"), (v, VERDICT_FILES, "verdict"),
                                  (grey, VERDICT_GREY_FILES, "verdict")):
            twin = entry.get(key)
            if twin is not None and not (isinstance(twin, dict) and same_export(twin, files)
                                         and (key == "grey" or digest is not None)):
                entry.pop(key)
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


def model_source(m: str | Path | bytes, platform: str | None = None) -> dict:
    """The interpreter's keyword for a model file or its bytes. On Windows LiteRT opens
    ``model_path`` with the C runtime's narrow ``fopen``, which reads Python's UTF-8 bytes in
    the ANSI code page: a path such as ``C:\\Users\\Jürgen\\...`` was not found, and the app
    fell back to Keras, several times slower. Such a path's file (a few hundred KB) is handed
    over as bytes."""
    if isinstance(m, bytes):
        return {"model_content": m}
    if (platform or sys.platform) == "win32" and not str(m).isascii():
        return {"model_content": Path(m).read_bytes()}
    return {"model_path": str(m)}


# the files a runner may hold for one format, as (kind, grey): the inspection model itself
# (``MAIN``), its grey twin, and the verdict-only files (colour, grey)
INSPECT, VERDICT = "inspect", "verdict"
MAIN = (INSPECT, False)
TWIN_NAMES = {(INSPECT, True): "grey model", (VERDICT, False): "verdict model",
              (VERDICT, True): "grey verdict model"}


class TwinError(ValueError):
    """A twin file (``TWIN_NAMES``) that does not load or does not fit its model; ``twin`` says
    which, so that the runner can be opened without it."""

    def __init__(self, twin: tuple[str, bool], message: str):
        super().__init__(message)
        self.twin = twin


class _Slot:
    """One interpreter per file of the runner (``MAIN`` and its twins, by (kind, grey)) and their
    lock: one thread at a time runs them. Each allocates its tensors on first use (a twin's ~9 MB
    are not spent on images it never sees)."""

    def __init__(self, interpreters: dict, threads: int = 1):
        self.interpreters = interpreters
        self.threads = threads
        self.lock = threading.Lock()
        self.n = 0            # the batch the main interpreter is allocated for
        self.ready: set = set()   # the twins whose tensors are allocated


_PAIRS: dict[int, np.ndarray] = {}   # bytes of an image -> where a byte need not equal the next


def grey_images(x: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) -> (N,) bool: the images whose three channels are equal (every pixel
    compared: each byte against the next one, where the next is the same pixel's next
    channel; 11 us an image of 200x200 against 46 for its channels split and compared. Image
    by image: a whole batch's temporaries are fresh pages each call, 65 us an image)."""
    out = np.zeros(len(x), bool)
    for i, im in enumerate(x):
        row = im[0]
        if (row[:, 0] == row[:, 1]).all() and (row[:, 0] == row[:, 2]).all():
            b = np.ascontiguousarray(im).reshape(-1)
            free = _PAIRS.get(b.size)
            if free is None:   # True at each pixel's last channel: its next byte is the next pixel
                free = _PAIRS.setdefault(b.size, (np.arange(b.size - 1) % 3) == 2)
            out[i] = bool(((b[:-1] == b[1:]) | free).all())
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

    Twins of a one-image model, each a model file or bytes and its outputs (key -> signature
    output name):

    * ``grey``: the same model for one grey channel (``GREY_FILES``): every image whose three
      channels are equal runs on it (bundled model, fp32, one thread: 2.3 against 2.8 ms);
    * ``verdict`` and ``verdict_grey``: the same model with only the outputs of a verdict
      (``VERDICT_FILES``: the score and probabilities of ``GRAPH_KEYS``), which run every call
      that asks for no more than those (a classified folder), about a seventh faster than the
      whole inspection model (its maps and spreads neither written out nor computed).

    A twin that fails when it runs is dropped, and its images go to the next file that can run
    them (``_routes``: a grey verdict file's to the colour verdict file, then the models)."""

    def __init__(self, model: str | Path | bytes, outputs: dict[str, str], batch: bool = True,
                 num_threads: int | None = None, single_threads: int | None = None,
                 grey: tuple[str | Path | bytes, dict[str, str]] | None = None,
                 verdict: tuple[str | Path | bytes, dict[str, str]] | None = None,
                 verdict_grey: tuple[str | Path | bytes, dict[str, str]] | None = None):
        Interpreter = interpreter_class()

        twins = {k: v for k, v in {(INSPECT, True): grey, (VERDICT, False): verdict,
                                   (VERDICT, True): verdict_grey}.items() if v is not None}
        if twins and batch:
            raise ValueError("a grey or verdict twin serves a one-image model only")
        files = {MAIN: (model_source(model), outputs)}
        files.update({k: (model_source(m), outs) for k, (m, outs) in twins.items()})

        def open_file(key, n):
            try:
                return Interpreter(num_threads=n, **files[key][0])
            except (ValueError, RuntimeError, OSError) as exc:
                if key == MAIN:
                    raise
                raise TwinError(key, f"the {TWIN_NAMES[key]} does not load ({exc})") from None

        def slot(n):
            return _Slot({key: open_file(key, n) for key in files}, n)

        threads = num_threads or default_threads()
        count, per = (1, threads) if batch else (threads, 1)
        self._slots = [slot(per) for _ in range(count)]
        single = single_threads or available_cores()
        self._single = slot(single) if single > per else None
        self._inputs: dict = {}
        self._outputs: dict = {}
        for key, (_, outs) in files.items():
            runner = self._slots[0].interpreters[key].get_signature_runner()
            (_, inp), = runner.get_input_details().items()
            shape = tuple(int(s) for s in inp["shape"][1:])
            details = runner.get_output_details()
            if key == MAIN:
                self.input_shape = shape
                missing = [k for k, name in outs.items() if name not in details]
                if missing:
                    raise ValueError(f"the LiteRT model lacks the outputs of {', '.join(missing)}")
            else:
                want = (*self.input_shape[:-1], 1) if key[1] else self.input_shape
                keys_ok = set(outs) == set(outputs) if key[0] == INSPECT else \
                    bool(outs) and set(outs) <= set(outputs)
                if shape != want or not keys_ok or any(n not in details for n in outs.values()):
                    raise TwinError(key, f"the {TWIN_NAMES[key]}'s input or outputs do not match "
                                         "the model's")
            self._inputs[key] = int(inp["index"])
            self._outputs[key] = {k: int(details[name]["index"]) for k, name in outs.items()}
        self.keys = tuple(outputs)
        self.batch = batch
        self._pool = None
        self._pool_lock = threading.Lock()
        self._released = threading.Condition()

    @property
    def has_grey(self) -> bool:
        """Whether grey images run on the grey twin."""
        return (INSPECT, True) in self._inputs

    @property
    def grey_files(self) -> bool:
        """Whether any file of the runner takes grey images (the grey twin, the grey verdict
        file): grey and colour images then run different graphs."""
        return any(grey for _, grey in self._inputs)

    @property
    def verdict_outputs(self) -> tuple[str, ...]:
        """The keys the verdict-only twin gives (none without one)."""
        return tuple(self._outputs.get((VERDICT, False), ()))

    @property
    def interpreters(self) -> int:
        """Interpreters that share a batch (the one for single images not counted)."""
        return len(self._slots)

    @property
    def single_threads(self) -> int:
        """Threads that run one image alone."""
        return self._single.threads if self._single else self._slots[0].threads

    def _routes(self, slot: _Slot, keys: list[str], grey: bool) -> list[tuple[str, bool]]:
        """The files of ``slot`` that can run an image for ``keys``, best first: a verdict-only
        file that gives all of ``keys``, a grey one for a grey image, the model last."""
        order = ((VERDICT, True), (VERDICT, False), (INSPECT, True), MAIN) if grey else \
            ((VERDICT, False), MAIN)
        return [key for key in order if key in slot.interpreters
                and (key[0] == INSPECT or all(k in self._outputs[key] for k in keys))]

    def _invoke(self, slot: _Slot, x: np.ndarray, keys: list[str]) -> dict[str, np.ndarray]:
        """``x`` through one slot (its lock held by the caller): in one invoke for a batch
        model, else image by image (on the file ``_routes`` picks)."""
        step = len(x) if self.batch else 1
        has_grey = any(g for _, g in slot.interpreters)
        grey = grey_images(x) if has_grey else np.zeros(len(x), bool)
        parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        for i in range(0, len(x), step):
            for key in self._routes(slot, keys, bool(grey[i])):
                it = slot.interpreters[key]
                if key == MAIN:
                    if slot.n != step:
                        it.resize_tensor_input(self._inputs[key], [step, *self.input_shape])
                        it.allocate_tensors()
                        slot.n = step
                    it.set_tensor(self._inputs[key], np.ascontiguousarray(x[i:i + step],
                                                                          np.float32))
                    it.invoke()
                else:
                    try:
                        if key not in slot.ready:
                            it.allocate_tensors()
                            slot.ready.add(key)
                        pixels = x[i:i + 1, :, :, :1] if key[1] else x[i:i + 1]
                        it.set_tensor(self._inputs[key], np.ascontiguousarray(pixels, np.float32))
                        it.invoke()
                    except (RuntimeError, ValueError) as exc:   # the next route takes over
                        logging.getLogger(__name__).warning(
                            "the %s failed (%s); its images run on the next file that can",
                            TWIN_NAMES[key], exc)
                        del slot.interpreters[key]
                        continue
                for k in keys:
                    parts[k].append(it.get_tensor(self._outputs[key][k]))
                break
        return {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in parts.items()}

    def _on_slot(self, slot: _Slot, x: np.ndarray, keys: list[str]) -> dict[str, np.ndarray]:
        try:
            with slot.lock:
                return self._invoke(slot, x, keys)
        finally:
            with self._released:
                self._released.notify()

    def _take_slot(self) -> _Slot:
        """A batch slot no other thread is running, locked for the caller (``_on_slot`` and
        ``_give_back`` say when one is released)."""
        with self._released:
            while True:
                for slot in self._slots:
                    if slot.lock.acquire(blocking=False):
                        return slot
                self._released.wait(0.05)

    def _give_back(self, slot: _Slot) -> None:
        slot.lock.release()
        with self._released:
            self._released.notify()

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

    def run(self, images: np.ndarray, keys: Iterable[str] | None = None,
            spread: bool = True) -> dict[str, np.ndarray]:
        """(N, S, S, 3) pixels -> {key: (N, ...) float32} for ``keys`` (default: all). uint8
        pixels are converted to float image by image (a grey image's one channel only).
        ``spread``: a batch is shared among the batch interpreters and one image alone runs on
        the single-image one; else the whole call runs on one free batch interpreter, for
        callers that run as many calls side by side as there are interpreters
        (``inspector.batch.classify_stream``: no thread then waits for another's half)."""
        x = np.asarray(images)
        if x.dtype != np.uint8:
            x = np.asarray(x, np.float32)
        keys = list(self.keys if keys is None else keys)
        if not spread:
            slot = self._take_slot()
            try:
                return self._invoke(slot, x, keys)
            finally:
                self._give_back(slot)
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


TWIN_ARGS = {(INSPECT, True): "grey", (VERDICT, False): "verdict", (VERDICT, True): "verdict_grey"}
TWIN_FALLBACK = {(INSPECT, True): "grey images run in colour",
                 (VERDICT, False): "verdicts run on the inspection model",
                 (VERDICT, True): "grey images' verdicts run on the colour verdict model or "
                                  "the inspection models"}


def twin_files(bundle_dir: str | Path, fmt: str, entry: dict) -> dict[tuple[str, bool], tuple]:
    """A format's twins that ``read_info`` kept, as (kind, grey) -> (path, outputs)."""
    bundle_dir = Path(bundle_dir)
    grey = entry.get("grey") or {}
    found = {(INSPECT, True): (grey, GREY_FILES.get(fmt)),
             (VERDICT, False): (entry.get("verdict") or {}, VERDICT_FILES.get(fmt)),
             (VERDICT, True): (grey.get("verdict") or {}, VERDICT_GREY_FILES.get(fmt))}
    return {key: (bundle_dir / name, e["outputs"]) for key, (e, name) in found.items()
            if name and e.get("usable") and isinstance(e.get("outputs"), dict)}


def open_runner(bundle_dir: str | Path, fmt: str, info: dict, num_threads: int | None = None,
                single_threads: int | None = None) -> InspectionRunner:
    """One format of a bundle's export, with the twins it has (grey, verdict-only); raises
    ExportLoadError naming the file when the model cannot load. A twin that cannot is left out
    with a warning naming it (its images run on the model)."""
    entry = info["formats"][fmt]
    path = Path(bundle_dir) / INSPECTION_FILES[fmt]
    batch = bool(entry.get("batch", False))
    twins = {} if batch else twin_files(bundle_dir, fmt, entry)
    notes = []
    while True:
        try:
            runner = InspectionRunner(path, entry["outputs"], batch, num_threads, single_threads,
                                      **{TWIN_ARGS[k]: v for k, v in twins.items()})
            break
        except TwinError as exc:
            notes.append(f"{twins.pop(exc.twin)[0]}: not used ({exc}); {TWIN_FALLBACK[exc.twin]}")
        except (ValueError, RuntimeError, KeyError) as exc:
            raise ExportLoadError(f"{path}: cannot load ({exc})") from None
    for note in notes:   # only when the model, which then serves those images, loads
        logging.getLogger(__name__).warning(note)
    return runner

"""Which runtime runs a bundle, decided when it loads (Qt-free, TensorFlow-free):

* a GPU that TensorFlow can use: the Keras model through TensorFlow (``gpu_hint`` looks for one
  without importing TensorFlow; only then is TensorFlow asked);
* otherwise the bundle's LiteRT inspection export (``training.litert``), in the fastest of its
  formats on this machine: all are timed in turns for a moment (``time_formats``; the
  measurement is injectable), and int8
  counts only when its accuracy on the bundle's test split, recorded on export, is within
  ``INT8_MAX_LOSS_POINTS`` of fp32's;
* a bundle without the export (older bundles): the Keras model through TensorFlow on the CPU,
  and the device text says so (``python -m training export --format inspection`` adds it).
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from training.litert import (INSPECTION_FORMATS, InspectionRunner, graph_score_usable, open_runner,
                             verdict_keys)

from . import format_cache

INT8_MAX_LOSS_POINTS = 0.5      # = training.inspection_export.INT8_MAX_LOSS_POINTS
MEASURE_BUDGET_S = 0.02         # per format still timed (the dropped ones' turns count): 4-5 turns here
MEASURE_MAX_RUNS = 10
# a format whose first timed invoke (its second) takes this many times the best of that turn is
# not timed on. Not the warm-up invoke: it prepares the graph (here fp32 21 ms then 5, fp16
# 12-50 then 2, int8 14-48 then 3-21), and judged by it fp16 was dropped on a day it was the
# fastest format (490 against 477 img/s)
SLOWER = 5.0
# ... and one whose best of two timed invokes takes this many times the best of the others
# cannot win on a later turn either (here int8 10-18 ms against fp32's 2: turns past the second
# cost model ready 0.05 s)
SLOWER_AFTER_TWO = 2.0
MIN_TURNS = 3                   # turns before the budget may end the timing
GPU_ENV = "STEEL_INSPECTOR_GPU"  # "0": never use a GPU; "1": ask TensorFlow even without hints

Measure = Callable[[str, InspectionRunner], float]


def time_formats(runners: Mapping[str, InspectionRunner],
                 verdicts: Mapping[str, Callable[[np.ndarray], object]] | None = None
                 ) -> tuple[dict[str, float], dict[str, Exception]]:
    """Seconds per image at batch 1 of each format (the fastest of a few invokes after one
    warm-up; each invoke the mean of a grey and a colour image, ``probe_images``; the colour
    one alone for a runner without a grey twin, whose graph is the same for both) and the
    formats that failed to run, with the error. The formats are timed in turns
    (fp32, fp16, int8, fp32, ...), so that a slow moment of the machine falls on all of them
    alike: timed one after another, within ``MEASURE_BUDGET_S`` each, a slow moment while fp32
    and fp16 were timed made int8 the choice in one of eight loads here (fp32 4.0, fp16 4.1,
    int8 3.6 ms; in the other seven 1.7-2.0 against 3.0-3.5 ms). One image runs on a runner's
    single-image interpreter (a thread per core), so this is the latency of a camera frame or
    an opened image; the formats rank alike on the batch interpreters. A format whose first
    timed invoke takes ``SLOWER`` times the best of the round is not timed further (the
    warm-up invoke, which prepares the graph, is never judged), nor one whose best of two
    takes ``SLOWER_AFTER_TWO`` times the fastest's; the timing ends after ``MIN_TURNS`` turns
    at the earliest, once it has taken ``MEASURE_BUDGET_S`` for each format still timed.
    ``verdicts``: per format, what one image's verdict takes (the invoke and, where the score
    is not in the format's graph, the detector's numpy scoring; ``verdict_timer``); default:
    the invoke giving the probabilities."""
    failed: dict[str, Exception] = {}
    best: dict[str, float] = {}
    inputs = {}

    def run(fmt):   # a grey image and a colour one: the grey twins of fp32 and fp16 run the
        for x in inputs[fmt]:   # first (a fifth faster); int8 has none: one image, the same work
            if verdicts is not None and fmt in verdicts:
                verdicts[fmt](x)
            else:
                runners[fmt].run(x, ["probs"])

    for fmt, runner in runners.items():
        inputs[fmt] = probe_images(runner.input_shape)
        if not getattr(runner, "grey_files", True):
            inputs[fmt] = inputs[fmt][1:]
        try:
            run(fmt)   # prepares the graph: 2-25x a later invoke
        except (RuntimeError, ValueError, OSError) as exc:
            failed[fmt] = exc
    live = [fmt for fmt in runners if fmt not in failed]
    start = time.perf_counter()
    for turn in range(MEASURE_MAX_RUNS):
        for fmt in list(live):
            t = time.perf_counter()
            try:
                run(fmt)
            except (RuntimeError, ValueError, OSError) as exc:
                failed[fmt] = exc
                live.remove(fmt)
                best.pop(fmt, None)
                continue
            best[fmt] = min(best.get(fmt, np.inf), (time.perf_counter() - t) / len(inputs[fmt]))
        if turn in (0, 1) and best:
            fastest = min(best.values())
            slower = SLOWER if turn == 0 else SLOWER_AFTER_TWO
            live = [fmt for fmt in live if best[fmt] <= slower * fastest]
        if (len(live) <= 1 and turn > 0) or (turn + 1 >= MIN_TURNS and time.perf_counter() - start
                                             > MEASURE_BUDGET_S * len(live)):
            break
    return best, failed


def probe_images(shape) -> tuple[np.ndarray, np.ndarray]:
    """What the format choice times: one grey image and one colour image of ``shape`` (S, S, 3),
    uint8, with some texture (a blank image takes another path through the per-image
    standardisation)."""
    h, w = int(shape[0]), int(shape[1])
    ramp = (np.add.outer(np.arange(h) * 7, np.arange(w) * 13) % 251).astype(np.uint8)
    grey = np.stack((ramp, ramp, ramp), axis=-1)[None]
    colour = np.stack((ramp, ramp[::-1], ramp[:, ::-1]), axis=-1)[None]
    return grey, np.ascontiguousarray(colour)


def excluded_formats(info: dict) -> dict[str, str]:
    """Formats of an export that must not be used, with the reason."""
    formats = info["formats"]
    out = {}
    fp32 = formats["fp32"].get("test_accuracy")
    for fmt in INSPECTION_FORMATS:
        if fmt == "fp32" or fmt not in formats:
            continue
        acc = formats[fmt].get("test_accuracy")
        if formats[fmt].get("usable") is False:
            out[fmt] = formats[fmt].get("reason") or "failed its check on export"
        elif fmt == "int8" and (acc is None or fp32 is None):
            out[fmt] = "no test accuracy recorded"
        elif acc is not None and fp32 is not None and \
                (fp32 - acc) * 100 > INT8_MAX_LOSS_POINTS + 1e-9:
            out[fmt] = f"test accuracy {(fp32 - acc) * 100:.1f} points below fp32"
    return out


@dataclass
class Choice:
    fmt: str
    runner: InspectionRunner
    seconds: dict[str, float]      # per image at batch 1, of each format measured
    excluded: dict[str, str]       # format -> why it was not considered
    measured: float | None = None  # when the remembered timing was taken; None: timed now

    @property
    def reason(self) -> str:
        timed = ", ".join(f"{f} {s * 1000:.1f} ms" for f, s in self.seconds.items())
        text = f"fastest here: {timed}" if len(self.seconds) > 1 else f"{timed}"
        if self.measured is not None:
            text += time.strftime(", timed %Y-%m-%d %H:%M", time.localtime(self.measured))
        for f, why in self.excluded.items():
            text += f"; {f} not used: {why}"
        return text


def verdict_timer(runner: InspectionRunner, entry: dict, detector) -> Callable[[np.ndarray], object]:
    """What one verdict takes on a format (``entry``: its part of ``inspection.json``): the
    invoke giving the score computed in its graph, or the invoke giving the detector's inputs
    and the detector's numpy scoring (int8, a detector fitted after the export); without a
    ``detector``, the invoke giving the probabilities."""
    if detector is None:
        return lambda x: runner.run(x, ["probs"])
    if graph_score_usable(entry, detector.digest()):
        return lambda x: runner.run(x, verdict_keys(runner.keys, True))
    keys = verdict_keys(runner.keys)
    return lambda x: detector.verdict(runner.run(x, keys))


def _remembered(bundle_dir: str | Path, info: dict, excluded: dict[str, str], key: str,
                num_threads: int | None, detector) -> Choice | None:
    """The choice remembered under ``key`` (``inspector.format_cache``), its file opened and
    run once on the probe images, as the timing's warm-up would; None when there is none or
    its file no longer opens or runs (then every format is timed again)."""
    known = format_cache.recall(key)
    fmt = known["format"] if known else None
    if fmt not in INSPECTION_FORMATS or fmt not in info["formats"] or fmt in excluded:
        return None
    try:
        runner = open_runner(bundle_dir, fmt, info, num_threads)
        verdict = verdict_timer(runner, info["formats"][fmt], detector)
        for x in probe_images(runner.input_shape):
            verdict(x)
    except (RuntimeError, ValueError, OSError):
        return None
    seconds = {f: float(known["seconds"][f]) for f in INSPECTION_FORMATS
               if f in known["seconds"] and f not in excluded}
    return Choice(fmt, runner, seconds, excluded, float(known["measured"]))


def choose_format(bundle_dir: str | Path, info: dict, measure: Measure | None = None,
                  num_threads: int | None = None, detector=None) -> Choice:
    """Opens every usable format of the export, times each and keeps the fastest (with a
    ``detector``, the fastest to a verdict with the unknown score: ``verdict_timer``). The
    choice is remembered for this machine and export (``inspector.format_cache``) and, once two
    timed loads agree, a later load opens only the remembered format, unless it no longer
    opens or runs."""
    excluded = excluded_formats(info)
    key = None
    if measure is None:
        key = format_cache.choice_key(info, num_threads,
                                      None if detector is None else detector.digest())
        known = _remembered(bundle_dir, info, excluded, key, num_threads, detector)
        if known is not None:
            return known
    seconds: dict[str, float] = {}
    runners: dict[str, InspectionRunner] = {}
    for fmt in INSPECTION_FORMATS:
        if fmt not in info["formats"] or fmt in excluded:
            continue
        try:
            runners[fmt] = open_runner(bundle_dir, fmt, info, num_threads)
            if measure is not None:
                seconds[fmt] = float(measure(fmt, runners[fmt]))
        except (RuntimeError, ValueError, OSError) as exc:
            if fmt == "fp32":
                raise
            excluded[fmt] = f"does not run here ({exc})"
            runners.pop(fmt, None)
    if measure is None:
        seconds, failed = time_formats(runners, {f: verdict_timer(r, info["formats"][f], detector)
                                                 for f, r in runners.items()})
        if "fp32" in failed:
            raise failed["fp32"]
        for fmt, exc in failed.items():
            excluded[fmt] = f"does not run here ({exc})"
            runners.pop(fmt, None)
        # in the order of INSPECTION_FORMATS, as the device text lists them
        seconds = {fmt: seconds[fmt] for fmt in runners if fmt in seconds}
    best = min(seconds, key=seconds.get)
    if key is not None:
        format_cache.remember(key, best, seconds)
    return Choice(best, runners[best], seconds, excluded)


def litert_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


def gpu_hint() -> bool:
    """Whether this machine may have a GPU for TensorFlow, found without importing it: an NVIDIA
    driver (``nvidia-smi`` or ``/proc/driver/nvidia``) not hidden by ``CUDA_VISIBLE_DEVICES``,
    or ``STEEL_INSPECTOR_GPU=1``; ``STEEL_INSPECTOR_GPU=0`` turns it off."""
    setting = os.environ.get(GPU_ENV, "").strip()
    if setting in ("0", "1"):
        return setting == "1"
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia/gpus").is_dir()


def tensorflow_gpu() -> str | None:
    """The GPU's name when TensorFlow is installed and sees one (imports TensorFlow), else None."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        return None
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    try:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    except Exception:  # pragma: no cover - depends on drivers
        return "GPU"

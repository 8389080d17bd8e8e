"""Exporting the inspection model to LiteRT in fp32, fp16 and int8, checked against Keras
(what ``training.litert`` reads and the inspector app runs; see there for the files).

Checks on export, on the bundle's test images (or the calibration images without a test split):

* every output's tensor is matched to its key by value (TFLite names outputs ``output_<i>``, in
  the order of the sorted keys; an output that does not match its Keras tensor within
  ``OUTPUT_RTOL`` of that tensor's largest magnitude is an error);
* fp32 and fp16: the same labels as Keras (except on images whose top two Keras probabilities
  are closer than twice the tolerance) and probabilities within ``PROB_ATOL``; otherwise
  ``InspectionExportError``. Logits and probabilities are allowed, on top, what the features'
  own rounding difference explains through the classifier's weights (``head_slack``: ~1e-6 for a
  trained model; large only for degenerate, untrained ones);
* the unknown score in the graph (fp32 and fp16, for a bundle whose detector compiles,
  ``training.score_graph``): against the numpy score on the same runtime's outputs, within
  ``SCORE_ATOL`` (in the score's unit, a standard deviation of a part on validation images);
  recorded per format with the detector's fingerprint. Beyond it the format keeps the numpy
  score (never an error). int8 keeps it in numpy always (its integer kernels would quantize the
  detector's constants too);
* int8: never an error; its accuracy on the test split is recorded and the app uses it only when
  that is within ``INT8_MAX_LOSS_POINTS`` of fp32's (``inspector.runtime``). Without a test
  split, or when its outputs do not match, it is recorded as not usable.
"""
from __future__ import annotations

import io
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from .fast_score import CompiledSum
from .litert import (GRAPH_KEYS, GREY_FILES, GREY_FORMATS, INSPECTION_FILES, INSPECTION_FORMATS,
                     INSPECTION_INFO, KERNEL_FILE, PROBS_KEY, SCORE_KEY, VERDICT_FILES,
                     VERDICT_GREY_FILES, InspectionRunner)
from .score_graph import with_score

# the int8 converter runs TensorFlow's own interpreter on the calibration images, and that warns
# (six lines, on every int8 export) that it is deprecated: nothing a user of the export can change
warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated",
                        category=UserWarning)

Progress = Callable[[float, str], None]

# Largest difference of a probability to Keras's allowed on export (fp32: CPU kernels only;
# fp16: weights rounded to half precision).
PROB_ATOL = {"fp32": 1e-4, "fp16": 5e-3}
# An output matches its key when its largest difference to the Keras tensor is below this share
# of that tensor's largest magnitude.
OUTPUT_RTOL = {"fp32": 1e-3, "fp16": 5e-2, "int8": 0.35}
# ``std_<view>`` comes from the mean square less the squared mean (training.model.verdict_outputs):
# two runtimes' sums differ by a share of the mean square, so a channel whose spread is small
# against its mean differs by up to sqrt(share x mean square); that much more is allowed for
# these outputs, per channel. The share measured: up to 2e-8 on the tests' stand-ins, 4e-5 on a
# model trained for two epochs on 48x48 images (nearly flat last features); allowed: 1e-3 (the
# score itself is checked against numpy on the same outputs, and labels never read these)
SPREAD_VAR_RTOL = {"fp32": 1e-3, "fp16": 1e-2, "int8": 0.35}
# The in-graph unknown score's largest difference to the numpy score on the same outputs
# (measured on the bundled model: fp32 5e-5, fp16 0.03, its constants rounded to half precision).
SCORE_ATOL = {"fp32": 2e-3, "fp16": 0.1}
INT8_MAX_LOSS_POINTS = 0.5   # int8 counts only this close to fp32's test accuracy (percent points)
CHECK_IMAGES = 64


class InspectionExportError(ValueError):
    """The converted model does not give what Keras gives; the message says where."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An error's first line, at most ``limit`` characters: what a card records as a reason."""
    return (str(exc).splitlines() or [""])[0][:limit]


def _quiet(fraction: float, message: str) -> None:
    pass


def _concrete(inspect_model, input_size: int, channels: int = 3):
    """``inspect_model``: a Keras inspection model or a callable like it (``score_graph``)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    # one image per invoke: a static shape lets XNNPACK take the whole graph (a free batch
    # dimension leaves SHAPE/PACK/RESHAPE ops outside it: 108 against 140 img/s on one core);
    # training.litert runs several such interpreters side by side for a batch
    spec = tf.TensorSpec([1, input_size, input_size, channels], tf.float32, name="pixels")
    fn = tf.function(lambda x: inspect_model([x], training=False)).get_concrete_function(spec)
    return convert_variables_to_constants_v2(fn)  # frozen: the calibrator reads no variables


# int8 keeps these operations in float: the per-image normalisation (the image's mean, centring,
# unit contrast) and the SE blocks' pooling and scaling; the convolutions and the classifier stay
# int8. Fully int8, one quantization of the centred image served every image, and single shifts
# lost up to 4.3 points against the Keras model (brightness x1.3: 92.8% against 97.1%); with
# these in float the worst shift is one image (0.7 points) from Keras and the mean over all
# shifts 99.36% against 99.34% (bundled 1.4.0, test split, 2026-12-03), at the same speed here.
INT8_FLOAT_OPS = ("MEAN", "SUB", "SQUARED_DIFFERENCE", "SUM", "RSQRT", "MUL")


def quantize_int8(conv, representative: np.ndarray | None, integer_io: bool = False) -> bytes:
    """The converter's model in int8 with ``INT8_FLOAT_OPS`` in float (through LiteRT's
    quantization debugger, which takes such a list). ``integer_io``: int8 input (raw pixels
    minus 128, scale 1) and output too; else float32 input and outputs. Raises ValueError
    without representative images (``set_precision``)."""
    import tensorflow as tf

    set_precision(conv, "int8", representative)

    def sample():
        for img in representative[:8]:
            yield [np.asarray(img, np.float32)[None]]

    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_ops=list(INT8_FLOAT_OPS), fully_quantize=integer_io)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=conv, debug_dataset=sample, debug_options=options)
    return debugger.get_nondebug_quantized_model()


def set_precision(conv, precision: str, representative: np.ndarray | None = None) -> None:
    """Sets a TFLite converter to fp16 weights, or to full int8 calibrated on
    ``representative`` images (the exported model's and the inspection model's one recipe)."""
    import tensorflow as tf

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        conv.target_spec.supported_types = [tf.float16]
        return
    if representative is None or not len(representative):
        raise ValueError("int8 quantization needs representative images")

    def gen():
        for img in representative:
            yield [np.asarray(img, np.float32)[None]]

    conv.representative_dataset = gen
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def convert_inspection(inspect_model, input_size: int, fmt: str,
                       representative: np.ndarray | None = None, graph=None,
                       channels: int = 3) -> bytes:
    """The inspection model as a .tflite in ``fmt``; int8 keeps float32 input and outputs
    (logits, pooled features and maps are read as numbers, not as quantized codes).
    ``graph``: what to convert instead of the model itself (the model with the unknown score,
    ``training.score_graph.with_score``). ``channels``: the model's input channels (1 for
    ``training.model.grey_model``)."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [_concrete(graph or inspect_model, input_size, channels)], inspect_model)
    if fmt == "int8":
        return quantize_int8(conv, representative)
    if fmt == "fp16":
        set_precision(conv, fmt, representative)
    elif fmt != "fp32":
        raise ValueError(f"unknown inspection format {fmt!r}")
    return conv.convert()


def keras_outputs(inspect_model, images: np.ndarray, batch_size: int = 32) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(images), batch_size):
        out = inspect_model([np.asarray(images[i:i + batch_size], np.float32)], training=False)
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in parts.items()}


HEAD = ("logits", "probs", PROBS_KEY, SCORE_KEY)   # mapped last, in this order


def head_slack(kernel: np.ndarray, pooled_error: np.ndarray) -> float:
    """The largest logit change that a feature difference ``pooled_error`` (per channel) can
    cause through the classifier: rounding in the backbone, amplified by the weights. Small for
    a trained model (weights ~1: ~1e-6); large for one whose classes differ in the fifth digit of
    its features (the tests' untrained stand-ins), where no two runtimes agree closer."""
    return float((np.abs(pooled_error)[:, None] * np.abs(kernel)).sum(axis=0).max(initial=0.0))


def _map_outputs(blob: bytes, fmt: str, ref: dict[str, np.ndarray], x: np.ndarray,
                 kernel: np.ndarray) -> tuple[dict[str, str], dict[str, np.ndarray], float]:
    """key -> signature output name, checked by value against the Keras outputs ``ref``; also
    the outputs by key and the head's slack (``head_slack``)."""
    keys = sorted(ref)
    names = {f"output_{i}": k for i, k in enumerate(keys)}
    probe = InspectionRunner(blob, {n: n for n in names}, batch=False, num_threads=1,
                             single_threads=1)
    got = probe.run(x)
    rtol = OUTPUT_RTOL[fmt]
    slack = 0.0

    def fits(name, key):
        a, b = got[name], ref[key]
        if a.shape != b.shape:
            return False
        if key in GRAPH_KEYS:   # by name and shape: their values are _score_check's to judge
            return True
        scale = 1.0 if key == "probs" else float(np.abs(b).max(initial=0.0))
        allowed = rtol * scale + 1e-6 + (slack if key in HEAD else 0.0)
        pool = ref.get("pool_" + key[len("std_"):]) if key.startswith("std_") else None
        if pool is not None and pool.shape == b.shape:
            mean_square = pool.astype(np.float64) ** 2 + b ** 2
            allowed = allowed + np.sqrt(SPREAD_VAR_RTOL[fmt] * mean_square)
        return bool(np.all(np.abs(a - b) <= allowed))

    mapping, bad = {}, []
    order = [k for k in keys if k not in HEAD] + [k for k in keys if k in HEAD]
    for key in order:
        if key in HEAD and not slack and "pool_features" in mapping:
            pooled = got[mapping["pool_features"]] - ref["pool_features"]
            slack = head_slack(kernel, np.abs(pooled).max(axis=0))
        expected = f"output_{keys.index(key)}"
        if fits(expected, key):
            mapping[key] = expected
            continue
        # never an output already given to another key (pool_<view> and std_<view> share a shape)
        others = [n for n in names if n not in mapping.values() and fits(n, key)]
        if len(others) == 1:
            mapping[key] = others[0]
        else:
            bad.append(key)
    if bad:
        raise InspectionExportError(
            f"LiteRT {fmt}: the outputs {', '.join(bad)} do not match the Keras model's "
            f"(relative tolerance {rtol}); the conversion changed the model")
    return mapping, {k: got[n] for k, n in mapping.items()}, slack


def build_inspection(model, representative: np.ndarray | None = None,
                     test_images: np.ndarray | None = None, test_labels: np.ndarray | None = None,
                     progress: Progress = _quiet, formats_wanted=INSPECTION_FORMATS,
                     detector=None) -> tuple[dict[str, bytes], dict]:
    """Converts and checks; returns the files (name -> bytes) and ``inspection.json``'s content.
    int8 is converted when ``representative`` images are given. ``detector``: the bundle's
    unknown detector; when its score compiles, fp32 and fp16 compute it in the graph too."""
    from .fast_graph import fast_graph
    from .model import inspection_model, se_block_count

    size = int(model.input_shape[1])
    im = inspection_model(model)
    # fp32 and fp16 from the same graph rewritten for XNNPACK's fast kernels (training.fast_graph;
    # checked against ``im``'s outputs below like any conversion); int8 from the plain graph
    fast = fast_graph(model)
    im_fast = inspection_model(fast) if fast is not model else im
    check = test_images if test_images is not None and len(test_images) else representative
    if check is None or not len(check):
        raise ValueError("the inspection export needs test or representative images to check on")
    check = np.asarray(check[:CHECK_IMAGES], np.float32)
    ref = keras_outputs(im, check)
    cs = detector.compiled() if detector is not None else None
    graph_ref = dict(ref)
    if cs is not None:
        probs, scores = cs.judge(ref)
        graph_ref.update({PROBS_KEY: probs, SCORE_KEY: scores.astype(np.float32)})
    kernel = np.asarray(model.get_layer("classifier").kernel, np.float32)
    ref_test = None
    if test_images is not None and len(test_images) and test_labels is not None:
        ref_test = keras_outputs(im, test_images)["probs"].argmax(1)
    files: dict[str, bytes] = {}
    formats: dict[str, dict] = {}
    grey = None
    todo = [f for f in INSPECTION_FORMATS
            if f in formats_wanted and (f != "int8" or representative is not None)]
    for n, fmt in enumerate(todo):
        progress(n / len(todo), f"converting the inspection model to LiteRT {fmt}")
        t = time.perf_counter()
        in_graph = cs is not None and fmt != "int8"
        try:
            blob = convert_inspection(im if fmt == "int8" else im_fast, size, fmt,
                                      representative, with_score(im_fast, cs) if in_graph else None)
        except Exception as exc:  # noqa: BLE001 - TensorFlow's converter raises its own errors
            if fmt == "fp32":
                raise
            formats[fmt] = {"usable": False, "reason": f"the conversion failed "
                                                       f"({type(exc).__name__}: {first_line(exc)})"}
            continue
        seconds = time.perf_counter() - t
        try:
            outputs, got, slack = _map_outputs(blob, fmt, graph_ref if in_graph else ref, check,
                                               kernel)
        except (InspectionExportError, RuntimeError) as exc:
            # int8 may not convert faithfully, XNNPACK may refuse a quantized op, and fp16 can
            # wash out a barely trained model's tiny feature differences: such a format is
            # recorded as unusable (the engine skips it); only a failing fp32 is fatal
            if fmt == "fp32":
                raise
            formats[fmt] = {"usable": False, "reason": first_line(exc)}
            continue
        runner = InspectionRunner(blob, outputs, batch=False, num_threads=1, single_threads=1)
        entry = _agreement(fmt, got["probs"], ref["probs"], slack)
        entry.update(file=INSPECTION_FILES[fmt], bytes=len(blob), seconds=round(seconds, 1),
                     batch=False, outputs=outputs, usable=True)
        if ref_test is not None:
            pred = runner.run(test_images, ["probs"])["probs"].argmax(1)
            entry["test_images"] = int(len(test_labels))
            entry["test_accuracy"] = round(float(np.mean(pred == test_labels)), 6)
            entry["test_agreement_with_keras"] = round(float(np.mean(pred == ref_test)), 6)
        if in_graph:
            score_images = check if ref_test is None else np.concatenate([check, test_images])
            entry["score"] = _score_check(fmt, cs, detector.digest(), runner, score_images)
            if entry["score"].get("usable"):
                progress((n + 0.25) / len(todo), f"the verdict-only LiteRT {fmt} model")
                entry["verdict"], blob_v = verdict_twin(fmt, blob, outputs, runner, score_images,
                                                        entry["score"]["digest"])
                if blob_v is not None:
                    files[VERDICT_FILES[fmt]] = blob_v
        if representative is not None and fmt == "int8":
            entry["representative_images"] = int(len(representative))
        if fmt in GREY_FORMATS:
            progress((n + 0.5) / len(todo), f"converting the grey inspection model to LiteRT {fmt}")
            try:
                if grey is None:
                    grey = _GreyCheck(model, im, check, test_images, test_labels, cs)
                entry["grey"], grey_blob = grey.export(fmt, entry, kernel,
                                                       None if cs is None else detector.digest())
            except Exception as exc:   # a converter's or runtime's error: grey runs in colour
                entry["grey"], grey_blob = {"usable": False, "reason": f"{type(exc).__name__}: "
                                                                       f"{first_line(exc)}"}, None
            if grey_blob is not None:
                files[GREY_FILES[fmt]] = grey_blob
                if grey.verdict_blob is not None:
                    files[VERDICT_GREY_FILES[fmt]] = grey.verdict_blob
        formats[fmt] = entry
        files[INSPECTION_FILES[fmt]] = blob
    if ref_test is not None:
        formats["keras"] = {"test_accuracy": round(float(np.mean(ref_test == test_labels)), 6)}
    buf = io.BytesIO()
    np.save(buf, kernel)
    files[KERNEL_FILE] = buf.getvalue()
    info = {"input": "pixels: (1, S, S, 3) float32 raw RGB pixels 0..255, one image per invoke "
                     "(the grey files: (1, S, S, 1), for images whose channels are equal)",
            "input_size": size,
            "se_blocks": [f"se{i}" for i in range(1, se_block_count(model) + 1)],
            "keys": sorted(ref),
            "tolerance": {"probability_atol": PROB_ATOL, "output_rtol": OUTPUT_RTOL,
                          "int8_max_loss_points": INT8_MAX_LOSS_POINTS},
            "check_images": int(len(check)),
            "formats": formats}
    progress(1.0, "inspection model exported")
    return files, info


class _GreyCheck:
    """The grey twin of an export (``training.model.grey_model``): converted per format and checked
    like the colour model, on the check images made grey (their mean over the channels, three
    equal channels for Keras): every output mapped by value, the same labels and probabilities
    within ``PROB_ATOL`` as the colour model in Keras, and, where the colour file computes the
    unknown score, the same score within ``SCORE_ATOL``. A twin that fails is recorded as not
    usable (its grey images then run in colour), never an export error."""

    def __init__(self, model, im, check: np.ndarray, test_images: np.ndarray | None,
                 test_labels: np.ndarray | None, cs):
        from .fast_graph import fast_graph
        from .model import grey_model, inspection_model

        self.size = int(model.input_shape[1])
        self.im = inspection_model(fast_graph(grey_model(model)))
        self.cs = cs
        self.check = _grey(check)
        self.ref = keras_outputs(im, np.repeat(self.check, 3, axis=-1))
        if cs is not None:
            probs, scores = cs.judge(self.ref)
            self.ref.update({PROBS_KEY: probs, SCORE_KEY: scores.astype(np.float32)})
        has_test = test_images is not None and len(test_images) > 0
        self.test = _grey(test_images) if has_test else None
        self.test_labels = test_labels if has_test else None
        self.score_images = self.check if not has_test else np.concatenate([self.check, self.test])

    def export(self, fmt: str, colour: dict, kernel: np.ndarray, digest: str | None
               ) -> tuple[dict, bytes | None]:
        """The twin's entry and bytes (None when not usable); ``verdict_blob`` then holds its
        verdict-only file's bytes, or None."""
        self.verdict_blob = None
        in_graph = "score" in colour
        blob = convert_inspection(self.im, self.size, fmt, None,
                                  with_score(self.im, self.cs) if in_graph else None, channels=1)
        ref = self.ref if in_graph else {k: v for k, v in self.ref.items() if k not in GRAPH_KEYS}
        try:
            outputs, got, slack = _map_outputs(blob, fmt, ref, self.check, kernel)
            entry = _agreement(fmt, got["probs"], ref["probs"], slack)
        except (InspectionExportError, RuntimeError) as exc:
            return {"usable": False, "reason": first_line(exc)}, None
        entry.update(file=GREY_FILES[fmt], bytes=len(blob), outputs=outputs, usable=True)
        runner = InspectionRunner(blob, outputs, batch=False, num_threads=1, single_threads=1)
        if self.test_labels is not None:   # the test split made grey: what a grey line runs
            pred = runner.run(self.test, ["probs"])["probs"].argmax(1)
            entry["test_images"] = int(len(self.test_labels))
            entry["test_accuracy"] = round(float(np.mean(pred == self.test_labels)), 6)
        if in_graph:
            entry["score"] = _score_check(fmt, self.cs, digest, runner, self.score_images)
            if entry["score"].get("usable") != colour["score"].get("usable"):
                return {"usable": False, "reason": "its unknown score does not check as the "
                                                   "colour model's does"}, None
            if entry["score"].get("usable"):
                entry["verdict"], self.verdict_blob = verdict_twin(
                    fmt, blob, outputs, runner, self.score_images, digest, channels=1)
        return entry, blob


def outputs_only(blob: bytes, names: set[str]) -> bytes:
    """A converted model (one signature) with only the signature outputs ``names``, and without
    the operators whose results nobody then reads (removed until none is left): the same
    kernels on the same tensors for what it still computes. Raises ValueError for a model
    that is not one signature holding every one of ``names``."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(blob))
    if len(model.subgraphs) != 1 or len(model.signatureDefs or []) != 1:
        raise ValueError("not a model of one graph and one signature")
    graph, signature = model.subgraphs[0], model.signatureDefs[0]

    def name(o):
        return o.name.decode() if isinstance(o.name, bytes) else str(o.name)

    keep = [o for o in signature.outputs if name(o) in names]
    if {name(o) for o in keep} != set(names):
        missing = sorted(set(names) - {name(o) for o in keep})
        raise ValueError(f"the model lacks the outputs {missing}")
    signature.outputs = keep
    graph.outputs = np.array([o.tensorIndex for o in keep], np.int32)
    while True:
        read = {int(i) for i in graph.outputs}
        for op in graph.operators:
            read.update(int(i) for i in op.inputs if i >= 0)
        live = [op for op in graph.operators   # (an operator without outputs: kept)
                if op.outputs is None or len(op.outputs) == 0
                or any(int(o) in read for o in op.outputs)]
        if len(live) == len(graph.operators):
            break
        graph.operators = live
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def verdict_twin(fmt: str, blob: bytes, outputs: dict[str, str], runner: InspectionRunner,
                 images: np.ndarray, digest: str, channels: int = 3) -> tuple[dict, bytes | None]:
    """The verdict-only file of a format's model (``blob``, its ``outputs`` map, run by
    ``runner``): the same file with only the score and probabilities (``GRAPH_KEYS``) as
    outputs and the operators only the others needed taken out (``outputs_only``: the maps and
    spreads an explanation needs are neither computed nor written out). Checked against the
    model on the first ``CHECK_IMAGES`` of ``images`` (``_score_entry``: the same kernels, equal
    here). Its entry for ``inspection.json`` and its bytes; one that fails is recorded as not
    usable (its verdicts then run on the model), never an export error."""
    images = np.asarray(images[:CHECK_IMAGES], np.float32)
    keep = {k: outputs[k] for k in GRAPH_KEYS if k in outputs}
    try:
        if len(keep) != len(GRAPH_KEYS):
            raise ValueError("the model has no unknown score in its graph")
        small = outputs_only(blob, set(keep.values()))
        ref = runner.run(images, list(GRAPH_KEYS))
        got = InspectionRunner(small, keep, batch=False, num_threads=1,
                               single_threads=1).run(images, list(GRAPH_KEYS))
    except (RuntimeError, ValueError) as exc:
        return {"usable": False, "reason": f"{type(exc).__name__}: {first_line(exc)}"}, None
    score = _score_entry(fmt, got, ref[PROBS_KEY], ref[SCORE_KEY], digest,
                         "its score differs from the model's")
    if not score["usable"]:
        return {"usable": False, "reason": score["reason"]}, None
    name = (VERDICT_GREY_FILES if channels == 1 else VERDICT_FILES)[fmt]
    return {"file": name, "bytes": len(small), "outputs": keep, "usable": True,
            "score": score}, small


def _grey(images: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) -> (N, S, S, 1) float32: each image's mean over its channels, rounded to
    whole grey levels (what a grey camera gives)."""
    x = np.asarray(images, np.float32)
    return np.round(x.mean(axis=-1, keepdims=True))


def _score_check(fmt: str, cs: CompiledSum, digest: str, runner: InspectionRunner,
                 images: np.ndarray) -> dict:
    """The graph's unknown score and probabilities against the numpy ones computed from the
    same runtime's outputs (``_score_entry``)."""
    out = runner.run(np.asarray(images, np.float32), [*GRAPH_KEYS, "logits", *cs.inputs])
    probs, scores = cs.judge(out)
    return _score_entry(fmt, out, probs, scores, digest, "the graph's score differs from numpy's")


def _score_entry(fmt: str, got: dict, probs: np.ndarray, scores: np.ndarray, digest: str,
                 differs: str) -> dict:
    """``got``'s score and probabilities (``SCORE_KEY``, ``PROBS_KEY``) against ``scores`` and
    ``probs`` on the images whose reference score is finite: usable (with the detector's
    fingerprint ``digest``) within ``SCORE_ATOL`` and ``PROB_ATOL`` (a NaN where the reference
    is finite never is); else the reason, ``differs`` saying what differs from what."""
    ok = np.isfinite(scores)
    diff = float(np.abs(got[SCORE_KEY][ok] - scores[ok]).max(initial=0.0))
    pdiff = float(np.abs(got[PROBS_KEY][ok] - probs[ok]).max(initial=0.0))
    entry = {"images": int(len(scores)), "max_score_diff": float(f"{diff:.3g}"),
             "max_prob_diff": float(f"{pdiff:.3g}"), "score_atol": SCORE_ATOL[fmt]}
    if diff <= SCORE_ATOL[fmt] and pdiff <= PROB_ATOL[fmt]:
        entry.update(usable=True, digest=digest)
    else:
        entry.update(usable=False, reason=f"{differs} by {diff:.2g} (allowed "
                                          f"{SCORE_ATOL[fmt]:g}), probabilities by {pdiff:.2g}")
    return entry


def _agreement(fmt: str, probs: np.ndarray, ref: np.ndarray, slack: float = 0.0) -> dict:
    diff = float(np.abs(probs - ref).max(initial=0.0))
    top2 = np.sort(ref, axis=1)[:, -2:] if ref.shape[1] > 1 else np.zeros((len(ref), 2))
    atol = PROB_ATOL[fmt] + slack if fmt in PROB_ATOL else None
    clear = (top2[:, 1] - top2[:, 0]) > 2 * (atol or 0.0)
    flips = int(np.sum((probs.argmax(1) != ref.argmax(1)) & clear))
    if atol is not None and (diff > atol or flips):
        raise InspectionExportError(
            f"LiteRT {fmt} differs from Keras: largest probability difference {diff:.2g} "
            f"(allowed {atol:g}), {flips} label(s) changed on {len(ref)} check images")
    return {"max_prob_diff": float(f"{diff:.3g}"), "head_slack": float(f"{slack:.3g}"),
            "label_agreement": round(float(np.mean(probs.argmax(1) == ref.argmax(1))), 6)}


def write_inspection(bundle_dir: str | Path, files: dict[str, bytes], info: dict) -> None:
    """Writes the files and ``inspection.json`` (each atomically; the json last, so that a bundle
    never names a file it lacks). Ctrl+C waits until all are written (a second or so): stopped
    half-way, new files would sit beside the old description of their tensors."""
    from .bundle import replace_file_atomic, write_json
    from .cancel import signals_held

    bundle_dir = Path(bundle_dir)
    with signals_held():
        for name, blob in files.items():
            replace_file_atomic(bundle_dir / name, blob)
        stale = [INSPECTION_FILES[f] for f in INSPECTION_FORMATS
                 if INSPECTION_FILES[f] not in files]
        stale += [names[f] for names in (GREY_FILES, VERDICT_FILES, VERDICT_GREY_FILES)
                  for f in GREY_FORMATS if names[f] not in files]
        for name in stale:
            (bundle_dir / name).unlink(missing_ok=True)
        write_json(bundle_dir / INSPECTION_INFO, info)


def summary(info: dict) -> dict:
    """What the model card records of the inspection export."""
    def without_outputs(entry: dict) -> dict:
        return {k: without_outputs(v) if isinstance(v, dict) else v
                for k, v in entry.items() if k != "outputs"}

    return {f: without_outputs(e) for f, e in info["formats"].items()}

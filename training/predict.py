"""Running a model on uint8 image batches: Keras bundles and exported LiteRT files alike."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .bundle import BundleError, load_bundle, read_card
from .litert import model_source
from .padding import fill_padding_batch


class KerasPredictor:
    kind = "keras"

    def __init__(self, model, class_names, input_size: int):
        self.model = model
        self.class_names = list(class_names)
        self.input_size = input_size

    def predict(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(N, S, S, 3) uint8 -> (N, classes) float32 probabilities (padding around a frame's
        surface filled first, as the app does: ``training.padding``)."""
        out = []
        for i in range(0, len(images), batch_size):   # filled batch by batch: no copy of all
            batch = np.asarray(fill_padding_batch(images[i:i + batch_size])[0], dtype=np.float32)
            out.append(np.asarray(self.model(batch, training=False)))
        if not out:
            return np.zeros((0, len(self.class_names)), np.float32)
        return np.concatenate(out).astype(np.float32)


class LiteRTPredictor:
    """An exported ``.tflite`` model run by the LiteRT interpreter (batch 1 per invoke)."""

    kind = "tflite"

    def __init__(self, path: str | Path, class_names, input_size: int, num_threads: int | None = None):
        Interpreter = _interpreter_class()
        self.path = Path(path)
        self.class_names = list(class_names)
        self.input_size = input_size
        self.interpreter = Interpreter(num_threads=num_threads, **model_source(path))
        self.interpreter.allocate_tensors()
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]
        side = tuple(int(v) for v in self._in["shape"][1:3])
        outputs = int(self._out["shape"][-1])
        if side != (int(input_size),) * 2 or outputs != len(self.class_names):
            # a file copied from another model's bundle: said here, not as LiteRT's "Cannot set
            # tensor: Dimension mismatch" at the first image
            raise BundleError(f"{self.path}: takes {side[0]}x{side[1]} images and gives "
                              f"{outputs} class probabilities, but its model card says "
                              f"{input_size}x{input_size} and {len(self.class_names)} classes; "
                              "the file belongs to another model (export it again: python -m "
                              "training export)")

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        dtype = self._in["dtype"]
        if dtype == np.float32:
            return x.astype(np.float32)
        scale, zero = self._in["quantization"]
        if scale:
            x = np.round(x.astype(np.float32) / scale + zero)
        info = np.iinfo(dtype)
        return np.clip(x, info.min, info.max).astype(dtype)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if self._out["dtype"] == np.float32:
            return y.astype(np.float32)
        scale, zero = self._out["quantization"]
        return ((y.astype(np.float32) - zero) * (scale or 1.0)).astype(np.float32)

    def predict(self, images: np.ndarray, batch_size: int = 1) -> np.ndarray:
        out = np.zeros((len(images), len(self.class_names)), np.float32)
        for i in range(len(images)):
            one = fill_padding_batch(images[i:i + 1])[0]
            self.interpreter.set_tensor(self._in["index"], self._quantize(one))
            self.interpreter.invoke()
            out[i] = self._dequantize(self.interpreter.get_tensor(self._out["index"]))[0]
        return out


class InspectionPredictor:
    """A bundle's inspection export (``inspect_<format>.tflite``, its grey and verdict-only
    twins) run as the app runs that format (``training.litert.open_runner``): the model the
    inspector actually uses, whose first output is a feature map, not the probabilities, and
    whose grey twin takes one channel."""

    kind = "tflite"

    def __init__(self, path: str | Path, fmt: str, class_names, input_size: int,
                 num_threads: int | None = None):
        from .litert import ExportLoadError, open_runner, read_info

        self.path = Path(path)
        self.class_names = list(class_names)
        self.input_size = input_size
        info = read_info(self.path.parent)
        if info is None or fmt not in info["formats"]:
            raise BundleError(f"{self.path}: its bundle's inspection.json does not list {fmt} as "
                              "usable (export it again: python -m training export --format "
                              "inspection)")
        try:
            self.runner = open_runner(self.path.parent, fmt, info, num_threads)
        except ExportLoadError as exc:
            raise BundleError(str(exc)) from None

    def predict(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        parts = [self.runner.run(fill_padding_batch(images[i:i + batch_size])[0], ["probs"])["probs"]
                 for i in range(0, len(images), batch_size)]
        if not parts:
            return np.zeros((0, len(self.class_names)), np.float32)
        return np.concatenate(parts).astype(np.float32)


def _inspection_format(name: str) -> str | None:
    """The format of a file of the inspection export (inspect_fp32.tflite, its grey and
    verdict-only twins, ...: ``training.litert``'s names), None for another file."""
    from .litert import GREY_FILES, INSPECTION_FILES, VERDICT_FILES, VERDICT_GREY_FILES

    for files in (INSPECTION_FILES, GREY_FILES, VERDICT_FILES, VERDICT_GREY_FILES):
        for fmt, file_name in files.items():
            if file_name == name:
                return fmt
    return None


def _interpreter_class():
    """LiteRT's interpreter, or TensorFlow's own when TensorFlow is already loaded: two TFLite
    runtimes in one process crash (seen: a segfault in allocate_tensors after an int8
    conversion), so a process that converted models also runs them with TensorFlow's."""
    import sys
    import warnings

    if "tensorflow" in sys.modules:
        import tensorflow as tf

        def tf_interpreter(model_path=None, num_threads=None, model_content=None):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return tf.lite.Interpreter(
                    model_path=model_path, model_content=model_content, num_threads=num_threads,
                    experimental_op_resolver_type=  # TF's XNNPACK refused the 11x11 layer
                    tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)

        return tf_interpreter
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter


def open_predictor(path: str | Path, num_threads: int | None = None):
    """A bundle folder (or its model.keras) -> KerasPredictor; a file of the inspection export
    (``inspect_*.tflite``, ``verdict_*.tflite``) -> InspectionPredictor, run as the app runs it;
    another .tflite file (``model_*.tflite``) -> LiteRTPredictor (class names and input size come
    from the model card in the same folder)."""
    path = Path(path)
    if path.suffix == ".tflite":
        if not path.exists():
            raise BundleError(f"{path}: file not found")
        try:
            card = read_card(path.parent)
        except BundleError as exc:   # the file's own folder holds no card: say which file
            raise BundleError(f"{path}: a .tflite file is read with the model card of its bundle "
                              f"folder ({exc})") from None
        fmt = _inspection_format(path.name)
        try:
            if fmt is not None:
                return InspectionPredictor(path, fmt, card["class_names"],
                                           int(card["input_size"]), num_threads)
            return LiteRTPredictor(path, card["class_names"], int(card["input_size"]),
                                   num_threads)
        except (ValueError, RuntimeError) as exc:   # LiteRT: "not a valid Flatbuffer buffer"
            raise BundleError(f"{path}: not a LiteRT model LiteRT can load ({exc})") from None
    bundle = load_bundle(path)
    return KerasPredictor(bundle.model, bundle.class_names, bundle.input_size)


"""The classification engine: a loaded model bundle that classifies uint8 images and explains one
prediction (class probabilities, SE channel attention per block, class activation maps) from a
single forward pass. Qt-free; the GUI, the headless batch command and the camera all use it.

Predictions run on LiteRT (the bundle's inspection export, ``training.litert``) without
TensorFlow; TensorFlow is imported only for a GPU or a bundle without that export
(``inspector.runtime`` decides).
"""
from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from training.bundle import MODEL_FILE, Bundle, BundleError, load_bundle, read_card
from training.card import ModelCard
from training.images import load_image, to_model_input
from training.litert import (GRAPH_KEYS, PROBS_KEY, SCORE_KEY, graph_score_usable, read_info,
                             read_kernel, verdict_keys)
from training.padding import fill_padding_batch

from .attention import CAM
from .runtime import Measure, probe_images

log = logging.getLogger(__name__)


class SEBlockAttention:
    """One SE block's attention: its excitation weights and, computed when first asked for (the
    live overlay mostly shows the class activation map instead), the SE-weighted mean of the
    block's input feature maps."""

    def __init__(self, name: str, weights: np.ndarray, block_input: np.ndarray):
        self.name = name                # "se1", "se2", ...
        self.weights = weights          # (C,) excitation weights in 0..1
        self._input = block_input       # (h, w, C) the block's input
        self._map: np.ndarray | None = None

    @property
    def feature_map(self) -> np.ndarray:
        """(h, w) SE-weighted mean of the block's feature maps, scaled 0..1."""
        if self._map is None:
            w = self.weights
            weighted = np.tensordot(self._input, w, axes=([2], [0])) / max(float(w.sum()), 1e-12)
            self._map = normalize_map(weighted)
        return self._map


UNKNOWN = "unknown"                   # the label of an image the detector flags
UNKNOWN_TEXT = "unknown - not a known defect"
# why an image without any contrast is unknown (its score is +inf, see ``Classifier._verdicts``)
BLANK_TEXT = "no contrast to classify: a blank, dark or saturated image or tile"


def is_blank_score(unknown_score: float | None) -> bool:
    """Whether an unknown score marks an image (or one of its tiles) without any contrast: the
    engine gives such an image +inf, as no image the model knows could score."""
    return unknown_score is not None and math.isinf(unknown_score) and unknown_score > 0


@dataclass
class Verdicts:
    """What the model says of a batch: calibrated probabilities, and where the bundle has an
    unknown detector, each image's unknown score (higher = more foreign) and whether it is
    accepted as one of the known classes (all True without a detector)."""
    probs: np.ndarray                    # (N, classes), temperature-scaled softmax
    unknown_scores: np.ndarray | None    # (N,) or None without a detector
    known: np.ndarray                    # (N,) bool
    # (N,) share of each frame that was padding (constant fill left by software at its border,
    # replaced by the surface beside it before the model read it: training.padding); None: none
    padding: np.ndarray | None = None


@dataclass
class Inspection:
    probs: np.ndarray                 # (classes,) calibrated softmax probabilities
    se_blocks: list[SEBlockAttention]
    features: np.ndarray | None       # (h, w, K) last feature map (None: not asked for)
    classifier_weights: np.ndarray    # (K, classes)
    class_names: list[str] = field(default_factory=list)
    unknown_score: float | None = None
    known: bool = True
    padding: float = 0.0              # share of the frame that was padding (Verdicts.padding)
    # where the frame lies in the input when it was made square by reflection (top, bottom,
    # left, right fractions: training.images.square_box; inspector.tiles.inspect_input); the
    # attention maps of inspector.attention are cropped to it. None: the input is the frame
    content: tuple[float, float, float, float] | None = None

    @property
    def label(self) -> int:
        return int(np.argmax(self.probs))

    def cam(self, class_index: int | None = None) -> np.ndarray:
        """Class activation map (h, w) in 0..1 for a class (default: the predicted one)."""
        if self.features is None:
            raise ValueError("this inspection was made without the class activation map "
                             "(Classifier.inspect(maps=...) did not ask for \"cam\")")
        c = self.label if class_index is None else class_index
        m = np.tensordot(self.features, self.classifier_weights[:, c], axes=([2], [0]))
        return normalize_map(np.maximum(m, 0))


def normalize_map(m: np.ndarray) -> np.ndarray:
    """A map scaled to 0..1 (all zeros when flat, or where the runtime gave no number: a blank
    image, see ``Classifier._verdicts``)."""
    m = np.nan_to_num(np.asarray(m, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(m.min(initial=0.0)), float(m.max(initial=0.0))
    if hi - lo < 1e-12:
        return np.zeros_like(m)
    return (m - lo) / (hi - lo)


def upsample(m: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a (h, w) float map to (height, width)."""
    import cv2

    return cv2.resize(np.asarray(m, np.float32), (int(width), int(height)),
                      interpolation=cv2.INTER_LINEAR)


class KerasBackend:
    """The Keras model through TensorFlow (a GPU, or a bundle without a LiteRT export): one
    traced function per output set serves every batch size. One inference at a time."""

    def __init__(self, model):
        from training.model import inspection_model, se_block_count

        self.model = model
        self.input_size = int(model.input_shape[1])
        self.classifier_weights = np.asarray(model.get_layer("classifier").kernel)
        self.se_block_names = [f"se{i}" for i in range(1, se_block_count(model) + 1)]
        self._inspect = inspection_model(model)
        self._lock = threading.Lock()
        self._predict_fn = None
        self._inspect_fn = None

    def _any_batch(self):
        """The input signature of every batch size: one trace serves them all (a retrace in the
        middle of a folder would hold Python's GIL for a tenth of a second and stall the window)."""
        import tensorflow as tf

        return tf.TensorSpec([None, self.input_size, self.input_size, 3], tf.float32)

    def verdict(self, x: np.ndarray, spread: bool = True) -> dict[str, np.ndarray]:
        with self._lock:
            if self._predict_fn is None:
                import tensorflow as tf

                from training.model import verdict_model

                model = verdict_model(self.model)
                self._predict_fn = tf.function(lambda x: model(x, training=False),
                                               input_signature=[self._any_batch()])
            out = self._predict_fn(np.asarray(x, np.float32))
        return {k: np.asarray(v) for k, v in out.items()}

    def inspect(self, x: np.ndarray, want: Callable[[str], bool] | None = None
                ) -> dict[str, np.ndarray]:
        with self._lock:
            if self._inspect_fn is None:
                import tensorflow as tf

                inspect = self._inspect
                self._inspect_fn = tf.function(lambda x: inspect([x], training=False),
                                               input_signature=[self._any_batch()])
            out = self._inspect_fn(np.asarray(x, np.float32))
        return {k: np.asarray(v) for k, v in out.items() if want is None or want(k)}


class LiteRTBackend:
    """The bundle's LiteRT inspection export (``training.litert``): one runner, thread-safe, with
    as many single-threaded interpreters as it was given threads for batches, and one with a
    thread per core for a single image alone. ``graph_score``: the export computes the bundle's
    unknown score and calibrated probabilities in its graph (``training.score_graph``), so a
    verdict reads those instead of the pooled features the detector would score in numpy."""

    model = None
    graph_score = False

    def __init__(self, runner, info: dict, classifier_weights: np.ndarray,
                 graph_score: bool = False):
        self.runner = runner
        self.input_size = int(info["input_size"])
        self.classifier_weights = classifier_weights
        self.se_block_names = list(info["se_blocks"])
        self.graph_score = bool(graph_score) and set(GRAPH_KEYS) <= set(runner.keys)
        self.verdict_keys = verdict_keys(runner.keys, self.graph_score)

    def verdict(self, x: np.ndarray, spread: bool = True) -> dict[str, np.ndarray]:
        return self.runner.run(x, self.verdict_keys, spread)

    def inspect(self, x: np.ndarray, want: Callable[[str], bool] | None = None
                ) -> dict[str, np.ndarray]:
        """Every output, or those ``want`` accepts (only those are copied out of the runtime)."""
        return self.runner.run(x, None if want is None else [k for k in self.runner.keys
                                                             if want(k)])


_FROM_BUNDLE = object()   # Classifier's default: read the bundle's unknown detector


class Classifier:
    """One loaded bundle. ``classify`` and ``inspect`` are thread-safe (on TensorFlow one inference
    at a time; on LiteRT each on a free interpreter).
    ``backend`` runs the model (``LiteRTBackend`` or ``KerasBackend``; default: Keras on the
    bundle's model); ``device`` says where and how, for the status bar and logs."""

    runtime_format: str | None = None   # the LiteRT format load_classifier chose (None: TensorFlow)
    num_threads: int | None = None      # the LiteRT threads it was loaded with (None: the default)

    def __init__(self, bundle: Bundle, backend=None, device: str | None = None,
                 detector=_FROM_BUNDLE):
        self.bundle = bundle
        self.backend = backend if backend is not None else KerasBackend(bundle.model)
        self.model = self.backend.model   # the Keras model on the TensorFlow path, else None
        self.class_names = bundle.class_names
        self.input_size = bundle.input_size
        self.view = bundle.view   # the scale it was trained at: how inspector.tiles reads an image
        self.card = bundle.card
        self.classifier_weights = self.backend.classifier_weights
        self.device = device or "CPU, TensorFlow"
        if detector is _FROM_BUNDLE:
            from training.detect import load_detector

            detector = load_detector(bundle.path)
        self.detector = detector
        self.accept = self.detector.accept if self.detector else 1.0
        self._threshold = self.detector.threshold if self.detector else None
        self._graph_score = self.detector is not None and getattr(self.backend, "graph_score",
                                                                  False)

    @property
    def has_unknown_detection(self) -> bool:
        return self.detector is not None

    def set_accept(self, share: float) -> None:
        """The unknown threshold as the share of the model's validation images it accepts
        (default: the bundle's, 95%); without a detector nothing changes."""
        if self.detector is not None:
            self.accept = float(min(max(share, 0.5), 1.0))
            self._threshold = self.detector.threshold_for(self.accept)

    @property
    def unknown_threshold(self) -> float | None:
        """The score above which an image is flagged unknown at this setting (None without a
        detector); ``ReviewSession.rejudge_unknown`` applies it to stored scores."""
        return self._threshold

    @property
    def validation_unknown_rate(self) -> float | None:
        """The share of known images to expect flagged unknown at this setting, what a line the
        model knows should show: 1 - ``accept``, which the threshold's conformal rank promises
        at most for new images like the validation images (``training.openset.acceptance_threshold``;
        of the validation images themselves a little fewer are flagged, e.g. 3.6% of the bundled
        model's at 95%)."""
        return None if self.detector is None else 1.0 - self.accept

    def _verdicts(self, out: dict) -> Verdicts:
        if self._graph_score and SCORE_KEY in out:
            return self._graph_verdicts(out)
        logits = np.asarray(out["logits"], np.float64)
        # An image without any contrast (a capped lens, a blank or saturated frame) has nothing
        # for the model's per-image standardisation to divide by; Keras's epsilon keeps it
        # finite, but LiteRT's fast reciprocal square root of 0 gives NaN. Such an image is
        # like no class: even probabilities and flagged unknown (with a detector, by its
        # infinite score; without one, by its verdict alone).
        blank = ~np.isfinite(logits).all(axis=1)
        if self.detector is None:
            probs, scores = np.asarray(out["probs"], np.float32), None
        else:
            probs, scores = self.detector.verdict({k: np.asarray(v) for k, v in out.items()})
        if blank.any():
            probs = np.array(probs, copy=True)
            probs[blank] = 1.0 / probs.shape[1]
        if scores is None:   # no detector: a blank image is still no class (a capped lens
            # was counted as the first class, crazing, in exports and summaries)
            return Verdicts(probs, None, ~blank)
        scores = np.where(blank, np.inf, scores)
        return Verdicts(probs, scores, scores <= self._threshold)

    def _graph_verdicts(self, out: dict) -> Verdicts:
        """The verdict from the score and probabilities the export computed in its graph, in
        as few numpy calls as can be: each is slow right after an invoke (cold caches). A blank
        image's NaN (see ``_verdicts``) runs through to its score, which then compares False;
        only then is it looked for (a score or a probability that is not finite): flagged
        unknown, its probabilities evened out."""
        probs, scores = out[PROBS_KEY], out[SCORE_KEY]
        known = scores <= self._threshold
        if not known.all():
            blank = ~np.isfinite(scores) | ~np.isfinite(probs).all(axis=1)
            if blank.any():
                known = known & ~blank
                probs = np.array(probs, copy=True)
                probs[blank] = 1.0 / probs.shape[1]
                scores = np.where(blank, np.inf, scores)
        return Verdicts(probs, scores, known)

    def _is_verdict_key(self, key: str) -> bool:
        """Whether an inspection output is part of a verdict, as opposed to the maps only an
        explanation needs (the backend's ``verdict_keys``; on Keras, what a LiteRT export
        without the graph's score would read)."""
        keys = getattr(self.backend, "verdict_keys", None)
        return key in (keys if keys is not None else verdict_keys([key]))

    @property
    def title(self) -> str:
        return self.bundle.title

    @property
    def se_block_names(self) -> list[str]:
        return list(self.backend.se_block_names)

    @property
    def interpreters(self) -> int:
        """How many ``judge(..., spread=False)`` calls can run side by side, each on its own
        LiteRT interpreter (0 on TensorFlow, one inference at a time)."""
        runner = getattr(self.backend, "runner", None)
        return 0 if runner is None or runner.batch else runner.interpreters

    def judge(self, images: np.ndarray, spread: bool = True) -> Verdicts:
        """(N, S, S, 3) uint8 model inputs -> calibrated probabilities and unknown verdicts,
        from one forward pass. ``spread``: the images are shared among the LiteRT interpreters;
        else they all run on one free interpreter (for callers that run ``interpreters`` calls
        side by side)."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if len(images) == 0:
            k = len(self.class_names)
            return Verdicts(np.zeros((0, k), np.float32),
                            None if self.detector is None else np.zeros(0), np.zeros(0, bool))
        # uint8 as they are: LiteRT's runner converts image by image (a grey one's one channel)
        images, padding = fill_padding_batch(images)
        v = self._verdicts(self.backend.verdict(images, spread))
        if padding.any():
            v.padding = padding
        return v

    def classify(self, images: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 model inputs -> (N, classes) calibrated probabilities."""
        return self.judge(images).probs

    def inspect(self, image: np.ndarray, maps: Iterable[str] | None = None) -> Inspection:
        """Probabilities and attention for one (S, S, 3) uint8 model input. ``maps``: only these
        attention maps ("cam", SE block names; default all), so that the live overlay does not
        copy feature maps it does not show out of the runtime (about 0.4 ms a frame for the SE
        blocks' inputs); the others are then absent (no SE block, ``features`` None)."""
        x, padding = fill_padding_batch(np.asarray(image)[None])
        want = None
        if maps is not None:
            extra = {f"{b}_{part}" for b in maps for part in ("excite", "input")}
            extra |= {"features"} if CAM in maps else set()

            def want(key: str) -> bool:
                return self._is_verdict_key(key) or key in extra
        out = self.backend.inspect(x, want)
        verdict = self._verdicts({k: v for k, v in out.items() if self._is_verdict_key(k)})
        out = {k: np.asarray(v)[0] for k, v in out.items()}
        blocks = [SEBlockAttention(name, out[f"{name}_excite"], out[f"{name}_input"])
                  for name in self.se_block_names if f"{name}_input" in out]
        return Inspection(verdict.probs[0], blocks, out.get("features"), self.classifier_weights,
                          list(self.class_names),
                          None if verdict.unknown_scores is None
                          else float(verdict.unknown_scores[0]), bool(verdict.known[0]),
                          float(padding[0]))

    def prepare(self, arr: np.ndarray) -> np.ndarray:
        """Any in-memory frame (grey, RGB, RGBA, 16-bit) as this model's input."""
        return to_model_input(arr, self.input_size)

    def load(self, path: str | Path) -> np.ndarray:
        """An image file as this model's input; raises training.images.ImageReadError."""
        return load_image(path, self.input_size, self.view.reading)


def bundled_model_dir() -> Path:
    from .paths import bundled_model_dir as d

    return d()


NO_EXPORT = ("this bundle has no LiteRT export (python -m training export --format inspection "
             "adds it)")


def load_classifier(path: str | Path | None = None,
                    progress: Callable[[float, str], None] = lambda f, m: None,
                    measure: Measure | None = None,
                    num_threads: int | None = None, warm_up: str = "all") -> Classifier:
    """Loads a bundle (default: the bundled SSDC-MiniNet) on the runtime ``inspector.runtime``
    picks: TensorFlow on a GPU it sees, else the fastest LiteRT format of the bundle's export
    (``measure``: how a format is timed), else TensorFlow on the CPU. TensorFlow is imported
    only on the two TensorFlow paths. ``num_threads``: LiteRT interpreter threads (default
    ``training.litert.default_threads``: one core less than the process has, for a window).
    ``warm_up``: ``"all"`` prepares every kind of call (a window's); ``"verdicts"`` only what
    a process that classifies folders runs (``Classifier.judge`` on its batch interpreters;
    ``inspector classify``, the window's classification process): 0.03 s sooner ready."""
    if warm_up not in ("all", "verdicts"):
        raise ValueError(f"warm_up must be 'all' or 'verdicts', not {warm_up!r}")
    bundle_dir = Path(path or bundled_model_dir())
    if bundle_dir.is_file() and bundle_dir.name == MODEL_FILE:
        bundle_dir = bundle_dir.parent
    try:
        return _load_classifier(bundle_dir, progress, measure, num_threads, warm_up)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
        # a hand-edited or half-copied bundle (a card section of the wrong type, a damaged
        # kernel file, an export description that does not match): one line naming the bundle,
        # not the raw error (a TensorFlow binding error quotes kilobytes of arrays)
        log.warning("%s: cannot be loaded", bundle_dir, exc_info=True)   # a bug shows here
        first = (str(exc).strip().splitlines() or [""])[0]
        first = first if len(first) <= 160 else first[:157] + "..."
        raise BundleError(f"{bundle_dir}: damaged model bundle ({type(exc).__name__}: "
                          f"{first})") from exc


def _check_detector_matches_card(bundle_dir: Path, card: dict, det) -> None:
    """Raises BundleError when the bundle's unknown detector is not the one its model card
    records (its method, temperature or threshold differ): a bundle put together from two
    models' files gave the other model's unknown verdicts without a word. Cards without the
    record (before the detector existed) are not checked."""
    from training.openset import DETECTOR_FILE

    rec = card.get("unknown_detection") if isinstance(card, dict) else None
    if det is None or not isinstance(rec, dict):
        return
    differ = []
    for key in ("temperature", "threshold"):
        want = rec.get(key)
        got = getattr(det, key, None)
        if isinstance(want, (int, float)) and isinstance(got, (int, float)) and \
                not math.isclose(float(want), float(got), rel_tol=1e-6, abs_tol=1e-9):
            differ.append(f"{key} {float(got):.6g} in {DETECTOR_FILE}, {float(want):.6g} in the card")
    if isinstance(rec.get("method"), str) and getattr(det, "method", None) not in (None, rec["method"]):
        differ.append(f"score {det.method} in {DETECTOR_FILE}, {rec['method']} in the card")
    if differ:
        raise BundleError(f"{bundle_dir}: its unknown detector is not the one its model card "
                          f"records ({'; '.join(differ)}): a `python -m training calibrate` "
                          "cut short (run it again), or files of two models put together "
                          "(copy the whole bundle again)")


def _load_classifier(bundle_dir: Path, progress: Callable[[float, str], None],
                     measure: Measure | None, num_threads: int | None,
                     warm_up: str) -> Classifier:
    from . import runtime

    card = read_card(bundle_dir)
    info = read_info(bundle_dir)
    gpu = None
    if runtime.gpu_hint():
        progress(0.05, "looking for a GPU (loading TensorFlow)")
        gpu = runtime.tensorflow_gpu()
    if info is not None and not runtime.litert_available():
        info, why = None, "LiteRT (ai_edge_litert) is not installed"
    else:
        failed = ModelCard.of(card).export_failure
        why = NO_EXPORT if not failed else (
            f"its LiteRT export failed its check when it was trained ({failed}); the model's "
            f"results are the same, only slower")
    from training.detect import export_lacks, load_detector

    det = load_detector(bundle_dir)  # read once, here, for the check and the classifier
    _check_detector_matches_card(bundle_dir, card, det)
    if info is not None:
        missing = export_lacks(info, det)
        if missing:  # a detector fitted after the export (python -m training calibrate)
            log.warning("%s: the LiteRT export lacks %s, which the unknown detector reads; "
                        "re-export it (python -m training export)", bundle_dir, sorted(missing))
            info, why = None, "its LiteRT export predates the unknown detector (re-export it)"
    choice = None
    if gpu is None and info is not None and int(info["input_size"]) == int(card["input_size"]):
        progress(0.3, "choosing the fastest LiteRT format")
        try:
            choice = runtime.choose_format(bundle_dir, info, measure, num_threads, det)
        except (RuntimeError, ValueError, OSError) as exc:
            # a damaged or half-copied export file: the Keras model gives the same results
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            log.info("%s: the LiteRT export cannot be used (%s); TensorFlow instead",
                        bundle_dir, first)
            why = (f"its LiteRT export cannot be opened ({first}); the model's results are the "
                   f"same, only slower (python -m training export writes it again)")
    if choice is not None:
        graph = det is not None and graph_score_usable(info["formats"][choice.fmt], det.digest())
        device = f"CPU, LiteRT {choice.fmt} ({choice.reason})"
        if det is not None and not graph and \
                (info["formats"][choice.fmt].get("score") or {}).get("usable"):
            log.warning("%s: the LiteRT export's in-graph unknown score is another detector's "
                        "(fitted anew after the export): scored in numpy; re-export to put it "
                        "in the graph (python -m training export)", bundle_dir)
            device += "; unknown score in numpy: the export predates the detector (re-export it)"
        backend = LiteRTBackend(choice.runner, info, read_kernel(bundle_dir), graph)
        clf = Classifier(Bundle(bundle_dir, card, None), backend, device, det)
        clf.runtime_format, clf.num_threads = choice.fmt, num_threads
    else:
        progress(0.05, "loading TensorFlow")
        import tensorflow  # noqa: F401  (the slow part: ~2-3 s)

        progress(0.6, "loading the model")
        bundle = load_bundle(bundle_dir)
        progress(0.85, "preparing the model")
        clf = Classifier(bundle, KerasBackend(bundle.model),
                         f"{gpu}, TensorFlow" if gpu else f"CPU, TensorFlow: {why}", det)
    grey, colour = (x[0] for x in probe_images((clf.input_size, clf.input_size)))
    # warm-up (traces on TensorFlow), so the first real images are faster: a batch of a grey and
    # a colour image (on LiteRT shared among the batch interpreters: each of the first two
    # allocates one verdict file's tensors; the rest allocate theirs on their first images) and
    # a single image each (the single-image interpreter's inspection files, training.litert)
    if warm_up == "verdicts":
        probs = np.asarray(clf.judge(np.stack([grey, colour])).probs)
    else:
        probs = clf.classify(np.stack([grey, colour]))
    if probs.shape[-1] != len(clf.class_names):   # a card copied from another bundle
        raise BundleError(f"{bundle_dir}: the model gives {probs.shape[-1]} class "
                          f"probabilities but its model card names {len(clf.class_names)} "
                          "classes; the card belongs to another model")
    if warm_up != "verdicts":
        clf.inspect(grey)
        clf.inspect(colour)
    settle_garbage_collector()
    progress(1.0, f"{clf.title} ready on {clf.device}")
    return clf


def settle_garbage_collector() -> None:
    """Collects once, then moves every object alive now (TensorFlow, Keras and the model: about
    300,000 of them) out of the cyclic garbage collector's reach. Otherwise each full collection
    walks them all, holding Python's GIL for ~150 ms, and any thread that allocates (listing a
    folder of 20,000 images, say) stalls the window that long. Objects made later are collected
    as usual; called again after a model switch, so that the old model can be freed."""
    import gc

    gc.unfreeze()
    gc.collect()
    gc.freeze()

"""Fitting a bundle's temperature and unknown detector (``training.openset``) from its own
training and validation split, after training or post hoc (``python -m training calibrate``),
and reading it back. Keras is needed here only to compute the model's outputs."""
from __future__ import annotations

import logging
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bundle import CARD_FILE, read_card, replace_file_atomic, write_json
from .card import augmentation_dropped, setting_reader, trained_geometry
from .cancel import Progress, quiet
from .openset import DEFAULT_ACCEPT, DETECTOR_FILE, UnknownDetector, fit_detector

log = logging.getLogger(__name__)

CALIBRATION_COPIES = 2  # camera-shifted copies of each validation image for the temperature
# Turned copies of each training image in the k-NN bank (besides the image itself), for a
# model trained to read a surface turned and mirrored: a defect turned by 90 degrees or by a
# few degrees is as known as the original. Bundled 1.4.0: magnetic tiles' AUROC 0.960 -> 0.968,
# 138 test images turned by 90 degrees accepted 72% -> 79%; leave-one-class-out
# (docs/unknown-detection.md).
# The Gaussians stay on the training images alone: fitted on turned or camera-shifted copies as
# well, they swallowed left-out classes (leave-one-class-out mean 0.882 -> 0.845 turned,
# 0.819 turned and camera-shifted).
BANK_COPIES = 2


@dataclass(frozen=True)
class Turns:
    """How many turned ``copies`` of each training image join the k-NN bank, turned as the
    model was trained (``flips``: the eight turns and mirrors; ``rotation_degrees``)."""
    copies: int = 0
    flips: bool = False
    rotation_degrees: float = 0.0

    @classmethod
    def for_training(cls, config, phases=(), copies: int = BANK_COPIES) -> "Turns":
        """The turns a model trained with ``config`` (a TrainConfig or its card dict) was made
        invariant to; none when it trained without augmentation or without its geometry, also
        when the augmentation check (``phases``) dropped either."""
        get = setting_reader(config)
        flips = bool(get("flips", False))
        rotation = float(get("rotation_degrees", 0.0) or 0.0)
        if not trained_geometry(config, phases) or not (flips or rotation):
            return cls()
        return cls(copies, flips, rotation)

    def describe(self) -> dict:
        return {"turned_copies": self.copies, "flips": self.flips,
                "rotation_degrees": self.rotation_degrees}


def calibration_copies(config, phases=()) -> int:
    """How many camera-shifted copies of each validation image the temperature is fitted on
    for a model trained with ``config`` (a TrainConfig or its card dict): CALIBRATION_COPIES for
    a model trained with the camera augmentation, none for one trained without it (also when
    the augmentation check dropped it). Such a model is not robust to those shifts, so their
    copies would set its temperature for images it reads poorly: measured on magnetic tiles
    trained without it (5-fold cv), ECE on held-out images went from 8.8% to 11.0%."""
    get = setting_reader(config)
    camera = get("augment", False) and get("camera_shifts", False)
    return CALIBRATION_COPIES if camera and not augmentation_dropped(phases) else 0


def recipe_arguments(config, phases=()) -> dict:
    """``fit_model_detector``'s ``copies``, ``turns`` and ``scale`` for a model trained with
    ``config`` (a TrainConfig or its card dict) and ``phases``: what its recipe taught it."""
    return {"copies": calibration_copies(config, phases),
            "turns": Turns.for_training(config, phases),
            "scale": trained_geometry(config, phases)}


def turned_copies(images: np.ndarray, seed: int, turns: Turns, batch: int = 256):
    """``turns.copies`` turned versions of every image (``training.augment.turned``; copy 0 of
    every image first, then copy 1, ...), in batches of at most ``batch`` images so that a large
    training set is not held twice more in memory; seeded: the same call gives the same images.
    Grey images stay grey. Yields nothing without copies."""
    from .augment import turned

    if turns.copies <= 0 or not len(images):
        return
    rng = np.random.default_rng([seed, 4241])
    order = [i for _ in range(turns.copies) for i in range(len(images))]
    for start in range(0, len(order), batch):
        yield np.stack([turned(images[i], rng, turns.flips, turns.rotation_degrees)
                        for i in order[start:start + batch]])


_COMPILED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _verdict_function(model):
    """The model's verdict outputs as one compiled TensorFlow graph, made once per model: called
    batch by batch in eager mode, the same network ran 1.6x slower (100 against 164 img/s on two
    busy cores), which the detector's fit (several thousand images with the turned copies) and
    ``robustness`` on a bundle with a detector paid in full. Other Keras backends: the model's
    own call."""
    fn = _COMPILED.get(model)
    if fn is None:
        import keras

        from .model import verdict_model

        vm = verdict_model(model)
        fn = lambda x: vm(x, training=False)   # noqa: E731
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            fn = tf.function(fn, input_signature=[tf.TensorSpec(
                [None, *vm.input_shape[1:]], tf.float32)])
        _COMPILED[model] = fn
    return fn


def model_outputs(model, images: np.ndarray, batch_size: int = 64,
                  fill: bool = False) -> dict[str, np.ndarray]:
    """``probs``, ``logits`` and ``pool_<view>`` for uint8 images, from the Keras model.
    ``fill``: padding around each frame's surface filled first, batch by batch, as the app
    does (``training.padding``; images read by ``training.data`` are filled already)."""
    from .padding import fill_padding_batch

    fn = _verdict_function(model)
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(images), batch_size):
        batch = images[i:i + batch_size]
        out = fn(np.asarray(fill_padding_batch(batch)[0] if fill else batch, np.float32))
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(v))
    if not parts:
        return {k: np.zeros((0, 1), np.float32) for k in ("probs", "logits")}
    return {k: np.concatenate(v) for k, v in parts.items()}


def calibration_images(images: np.ndarray, seed: int, copies: int = CALIBRATION_COPIES,
                       scale: bool = True) -> np.ndarray:
    """The validation images plus ``copies`` camera-shifted versions of each (the camera of the
    documented severities, ``training.shifts.EVALUATED_CAMERA``, seeded): a temperature fitted
    on clean validation images alone, which a good model classifies perfectly, would only
    sharpen and make the model over-confident on the soft, noisy images a plant delivers; one
    fitted on the training recipe's wider shifts makes it under-confident (1.2.0: ECE 2.2%
    against 1.3% on its clean test split). Without ``scale`` the camera keeps its distance (a
    model trained without changes of scale reads them poorly, and would be calibrated for that)."""
    from .shifts import shifted_copies

    return shifted_copies(images, seed, copies, scale)


MIN_VALIDATION_IMAGES = 10   # the fewest validation images a threshold and a temperature are fitted on


def no_detector_reason(val_images: int, y_train: np.ndarray, num_classes: int) -> str | None:
    """Why no unknown detector can be fitted for a model (None: one can): too few validation
    images for a threshold, or a class without training images."""
    if val_images < MIN_VALIDATION_IMAGES:
        return (f"only {val_images} validation image(s); the unknown detector and the temperature "
                f"need at least {MIN_VALIDATION_IMAGES} (add images: the wizard holds back "
                "a tenth of them for validation)")
    if len(np.unique(y_train)) < num_classes:
        return "a class has no training images"
    return None


def fit_model_detector(model, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                       y_val: np.ndarray, num_classes: int, seed: int = 0,
                       accept: float = DEFAULT_ACCEPT, progress: Progress = quiet,
                       method: str | None = None, copies: int | None = None,
                       turns: Turns = Turns(), scale: bool = True) -> UnknownDetector | None:
    """The detector for a trained model, or None without enough validation images to fit a
    threshold (fewer than 10, or a class without training images). ``copies``: camera-shifted
    copies of each validation image for the temperature (default CALIBRATION_COPIES);
    ``turns``: the turned copies of the training images in the k-NN bank
    (``Turns.for_training`` of the model's recipe); ``scale``: whether those copies change the
    field of view too (``card.trained_geometry``: not for a model that never learnt it)."""
    copies = CALIBRATION_COPIES if copies is None else copies
    if no_detector_reason(len(x_val), y_train, num_classes):
        return None
    progress(0.0, "unknown detector: features of the training images")
    train = model_outputs(model, x_train)
    bank = None
    turned_features = [model_outputs(model, part)["pool_features"]
                       for part in turned_copies(x_train, seed, turns)]
    if turned_features:   # the labels follow turned_copies' order: copy by copy
        bank = (np.concatenate([train["pool_features"], *turned_features]),
                np.tile(np.asarray(y_train), turns.copies + 1))
    progress(0.5, "unknown detector: features of the validation images")
    val = model_outputs(model, x_val)
    cal = model_outputs(model, calibration_images(x_val, seed, copies, scale))
    y_cal = np.tile(y_val, copies + 1)
    progress(0.8, "unknown detector: choosing the score and threshold")
    det = fit_detector(train, y_train, val, y_val, num_classes, (cal["logits"], y_cal), accept,
                       method=method, bank=bank, head=classifier_weights(model))
    det.selection["fitted_on"] = {"training_images": int(len(x_train)), **turns.describe()}
    return det


def classifier_weights(model) -> tuple[np.ndarray, np.ndarray] | None:
    """The kernel and bias of the model's dense classifier on the pooled last features (for the
    virtual-logit score), or None for a model without one."""
    try:
        kernel, bias = model.get_layer("classifier").get_weights()
    except (ValueError, KeyError):
        return None
    return np.asarray(kernel), np.asarray(bias)


class KnownJudge:
    """A Keras predictor together with its bundle's unknown detector: ``judge`` gives the
    probabilities and which images the detector accepts as known, from one forward pass."""

    def __init__(self, predictor, detector):
        self.predictor, self.detector = predictor, detector
        self.class_names = predictor.class_names

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.judge(images)[0]

    def judge(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = model_outputs(self.predictor.model, images, fill=True)
        return (self.detector.probabilities(out["logits"]),
                self.detector.known(self.detector.scores(out)))


def judged(predictor, bundle_dir: str | Path):
    """``predictor`` with its bundle's unknown detector (``KnownJudge``) where it is a Keras
    model whose bundle has one, so that an evaluation also reports the share accepted as known;
    otherwise ``predictor`` itself."""
    if predictor.kind != "keras":
        return predictor
    detector = load_detector(bundle_dir)
    return predictor if detector is None else KnownJudge(predictor, detector)


def write_detector(bundle_dir: str | Path, det: UnknownDetector) -> None:
    """Writes ``unknown.npz`` and the card's ``unknown_detection`` section (each atomically)."""
    bundle_dir = Path(bundle_dir)
    replace_file_atomic(bundle_dir / DETECTOR_FILE, det.to_bytes())
    card = read_card(bundle_dir)
    card["unknown_detection"] = det.card()
    from .robustness import forget_known

    forget_known(card)   # measured with the detector before
    write_json(bundle_dir / CARD_FILE, card)


def export_lacks(info: dict | None, det: UnknownDetector | None) -> set[str]:
    """The model outputs ``det`` reads that a LiteRT export (its ``inspection.json``, ``info``)
    does not give: a detector fitted after the export (``calibrate`` without ``export``)."""
    if det is None or info is None or info.get("keys") is None:
        return set()
    return det.inputs() - set(info["keys"])


def load_detector(bundle_dir: str | Path) -> UnknownDetector | None:
    """A bundle's detector, or None when it has none (older bundles: unknown detection is
    unavailable for them, everything else works)."""
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / DETECTOR_FILE
    card = read_card(bundle_dir)
    if not path.exists():
        if card.get("unknown_detection"):   # the card says it has one: the file was lost
            log.warning("%s: unknown detection unavailable: the model card describes an unknown "
                        "detector but %s is missing (copy the whole bundle folder, or fit it "
                        "again: python -m training calibrate)", bundle_dir, DETECTOR_FILE)
        return None
    try:
        described = card.get("unknown_detection")
        det = UnknownDetector.load(path, described.get("selection")
                                   if isinstance(described, dict) else None)
        _check_fits(det, len(card["class_names"]))
        return det
    except (ValueError, KeyError, OSError, zipfile.BadZipFile,
            TypeError, AttributeError, IndexError) as exc:   # damaged, inconsistent, foreign
        # (a number where the file's description holds a list: TypeError stopped the whole
        # model from loading, not only its unknown verdict)
        log.warning("%s: unknown detection unavailable: %s: %s", bundle_dir, path.name, exc)
        return None


def _check_fits(det: UnknownDetector, classes: int) -> None:
    """Raises ValueError when a detector cannot be this model's: fitted for another number of
    classes (an unknown.npz copied from another version's folder scored every image against
    the wrong class means without a word), or its arrays' shapes disagree with each other."""
    if det.num_classes != classes:
        raise ValueError(f"fitted for {det.num_classes} classes, the model has {classes} "
                         "(a file from another model?); fit it again: python -m training "
                         "calibrate")
    for view, g in det.gauss.items():
        k, c = np.shape(g.means) if np.ndim(g.means) == 2 else (None, None)
        if k != classes or np.shape(g.precision) != (c, c):
            raise ValueError(f"its statistics of {view} do not fit each other or the model's "
                             f"{classes} classes; fit it again: python -m training calibrate")


def calibrate_bundle(bundle_dir: str | Path, data_dir: str | Path | None = None,
                     accept: float = DEFAULT_ACCEPT, progress: Progress = quiet,
                     method: str | None = None, copies: int | None = None) -> UnknownDetector:
    """Post hoc: fits the detector of an existing bundle on its own training and validation
    split (its weights stay) and writes it into the bundle."""
    from . import data as data_mod
    from .bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    card = bundle.card
    root = data_dir or (card.get("dataset") or {}).get("root")
    if not root:
        raise data_mod.DatasetError(f"{bundle_dir}: pass --data with the bundle's training data")
    ds = data_mod.scan_dataset(root, bundle.class_names, with_digests=False)
    tr, va = data_mod.bundle_split(ds, bundle_dir, ["train", "validation"])
    sub = ds.subset(np.concatenate([tr, va]))
    x = data_mod.load_arrays(sub, bundle.input_size, lambda f, m: progress(0.3 * f, m),
                                square=bundle.view.square)
    n = len(tr)
    training = card.get("training") or {}
    recipe = {"turns": Turns()}   # a card without its training settings: as before
    if training.get("config"):
        recipe = recipe_arguments(training["config"], training.get("phases"))
    if copies is not None:
        recipe["copies"] = copies
    det = fit_model_detector(bundle.model, x[:n], sub.labels[:n], x[n:], sub.labels[n:],
                             len(bundle.class_names), int(card.get("seed", 0)), accept,
                             lambda f, m: progress(0.3 + 0.7 * f, m), method, **recipe)
    if det is None:
        raise data_mod.DatasetError(f"{bundle_dir}: too few validation images to fit an unknown "
                                    "detector (at least 10, and training images of every class)")
    write_detector(bundle_dir, det)
    return det

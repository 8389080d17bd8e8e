"""ModelCard: reading a bundle's model card (``model_card.json``), with defaults for what an
older or partial card lacks: the one place that knows where the title, classes, input size and
metrics sit in the card (training.bundle.read_card reads the file)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .images import SQUARE_ASPECT, Reading


def _mapping(value: Any) -> dict[str, Any]:
    """A card's section as a dict ({} when missing or not a mapping: a hand-edited card)."""
    return dict(value) if isinstance(value, Mapping) else {}


def _check_chose(phases, choice: str) -> bool:
    """Whether a training's ``phases`` (``FitResult.phases``, the card's ``training.phases``)
    record that the augmentation check (``training.train._augmentation_check``) chose
    ``choice``."""
    return any(p.get("phase") == "augmentation check" and p.get("chosen") == choice
               for p in phases or ())


def augmentation_dropped(phases) -> bool:
    """Whether ``phases`` record that the augmentation check chose to train without the camera
    augmentation."""
    return _check_chose(phases, "clean")


def geometry_dropped(phases) -> bool:
    """Whether ``phases`` record that the augmentation check chose the camera's light and pixel
    shifts alone, without turns, mirrors or changes of scale (``training.train.CAMERA_ONLY``)."""
    return _check_chose(phases, "camera only")


def setting_reader(config):
    """``get(key, default)`` over a TrainConfig or its card dict (``training.config``)."""
    return config.get if isinstance(config, Mapping) else lambda k, d=None: getattr(config, k, d)


def trained_geometry(config, phases=()) -> bool:
    """Whether a model trained with ``config`` (a TrainConfig or its card dict) and ``phases``
    learnt turned, mirrored and rescaled images: augmented with geometry (``geometry``, True on
    cards older than the setting), and the augmentation check did not drop it."""
    get = setting_reader(config)
    return bool(get("augment", False) and get("geometry", True)
                and not augmentation_dropped(phases) and not geometry_dropped(phases))


@dataclass(frozen=True)
class TrainingView:
    """The scale a model was trained at, in image pixels. ``tile``: the side of the square that
    its input showed, the median over its training images of sqrt(height x width) (every image
    is squeezed whole into the input); ``largest``: the longest side of any training image. The
    app reads an image as the model learnt it: whole when it is no larger than the training
    images, else in tiles of ``tile`` pixels (``inspector.tiles``). ``square``: its training
    images were square (their median long/short side at most ``SQUARE_ASPECT``), so a
    non-square image is made square by reflection before it is resized, in training as in the
    app (``training.images.reflect_to_square``), instead of being stretched; a model trained
    on non-square images (magnetic tiles: 1.4) learnt them stretched and reads them so. A card
    written before the record (2026-12-05 evening) is read as the app of then read every image,
    stretched whole into the input (:meth:`before_record`): a model its wizard trained on a
    plant's images of many sizes learnt them so (the bundled 1.4.0's card has had the record
    since 2026-12-07); a model without any card (a stand-in, an export on its own) gets NEU's
    square images of its input size (:meth:`unrecorded`). A record without ``square`` (written
    for a few hours before it) is not square: those trainings stretched.
    ``smallest``: the shortest side of any training image (0: not recorded, as on cards written
    before 2026-12-06 evening). A model
    whose square training images were all about one size (:attr:`one_scale`) reads an image
    smaller than them at their scale, its surface continued by reflection
    (``inspector.tiles.as_trained``), as it reads a larger one in tiles at their scale."""

    tile: int
    largest: int
    square: bool = True
    smallest: int = 0

    @property
    def one_scale(self) -> bool:
        """Whether the model learnt square images of about one size (NEU's 200 x 200): every
        training image's shorter side at least the tile / ``ONE_SCALE``, and none longer than
        the tile x ``ONE_SCALE``. Only then does an image's size say its scale; a model that
        learnt images of many sizes squeezed each whole into its input, and reads a small one
        so too."""
        return (self.square and self.smallest > 0 and self.smallest * ONE_SCALE >= self.tile
                and self.largest <= self.tile * ONE_SCALE)

    @property
    def reading(self) -> Reading:
        """How the app reads a whole image for this model (``training.images.Reading``)."""
        return Reading(self.square, self.tile if self.one_scale else 0)

    @classmethod
    def unrecorded(cls, input_size: int) -> TrainingView:
        """The view of a model without a card to say it (a stand-in, an export on its own):
        NEU's square images of one size, the input's."""
        return cls(input_size, input_size, True, input_size)

    @classmethod
    def before_record(cls, input_size: int) -> TrainingView:
        """The view of a model whose card was written before the record (2026-12-05 evening):
        the app of then stretched every image whole into the input and enlarged a small one,
        and its wizard trained so on a plant's images of many sizes; it reads them as then."""
        return cls(input_size, input_size, False, 0)


VIEW_KEY = "view"
ONE_SCALE = 1.1   # TrainingView.one_scale: the shortest training image within this of the tile
# a model of one scale reads an image this many times as long as it is wide, and longer than a
# tile, in tiles (inspector.tiles.plan_tiles): made square by reflection it would be half mirror
NARROW_ASPECT = 2.0


def training_view(sizes: np.ndarray, input_size: int) -> dict[str, Any]:
    """The card's record of the scale a model was trained at (:class:`TrainingView`), from its
    data set's images' own (height, width) (``training.data.image_sizes``; unreadable ones
    (0, 0) are left out)."""
    hw = np.asarray(sizes, np.float64).reshape(-1, 2)
    hw = hw[(hw > 0).all(axis=1)]
    if not len(hw):
        return {"tile": int(input_size), "largest": int(input_size), "square": True,
                "smallest": int(input_size), "images": 0}
    aspect = float(np.median(hw.max(axis=1) / hw.min(axis=1)))
    return {"tile": max(1, int(round(float(np.median(np.sqrt(hw[:, 0] * hw[:, 1])))))),
            "largest": int(hw.max()),
            "smallest": int(hw.min()),
            "aspect": round(aspect, 3),
            "square": aspect <= SQUARE_ASPECT,
            "images": int(len(hw)),
            "rule": "over the data set's images: tile, the median of sqrt(height x width) (each "
                    "is squeezed whole into the input); largest, their longest side; smallest, "
                    f"their shortest side; square, their median long/short side at most "
                    f"{SQUARE_ASPECT:g} (a non-square image is then made square by reflection "
                    "before it is resized, else stretched). The app classifies an image whole "
                    "when no side is longer than max(largest, 1.5 tiles), else in tiles of this "
                    f"side; when the images were square and their sides within {ONE_SCALE:g} "
                    f"of the tile either way, an image {NARROW_ASPECT:g} times as long as wide "
                    "and longer than the tile is read in tiles too, and an image smaller than "
                    "the tile is first continued by reflection to the tile's side, so that it "
                    "keeps their scale"}


@dataclass(frozen=True)
class ModelCard:
    """A read-only view of a model card (the dict is ``data``; an empty card is allowed)."""

    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, card: Mapping[str, Any] | ModelCard | None) -> ModelCard:
        """A ModelCard for a card dict, a ModelCard, or None (an empty card)."""
        if isinstance(card, ModelCard):
            return card
        return cls(card or {})

    def __bool__(self) -> bool:
        return bool(self.data)

    @property
    def name(self) -> str:
        return str(self.data.get("name", "model"))

    @property
    def version(self) -> str:
        return str(self.data.get("version", ""))

    @property
    def title(self) -> str:
        """"name version", as the window title and the model list show a model."""
        return f"{self.name} {self.version}".strip()

    @property
    def class_names(self) -> list[str]:
        return list(self.data.get("class_names", []))

    @property
    def input_size(self) -> int | None:
        size = self.data.get("input_size")
        return int(size) if size is not None else None

    @property
    def view(self) -> TrainingView:
        """The scale the model was trained at (:class:`TrainingView`)."""
        size = self.input_size or 0
        v = self.data.get(VIEW_KEY)
        try:
            tile, largest = int(v["tile"]), int(v["largest"])
        except (TypeError, KeyError, ValueError, AttributeError, OverflowError):
            return TrainingView.before_record(size)
        try:   # an unreadable record of the smallest side alone: not recorded
            smallest = max(0, int(v.get("smallest") or 0))
        except (TypeError, ValueError, OverflowError):
            smallest = 0
        # a record without "square" was written before non-square images were reflected in
        # training (2026-12-05 late): the model learnt them stretched
        return TrainingView(tile, largest, bool(v.get("square", False)), smallest) \
            if tile > 0 and largest > 0 else TrainingView.before_record(size)

    @property
    def created(self) -> str:
        return str(self.data.get("created", ""))

    @property
    def created_here(self) -> str:
        """When it was trained, in this PC's local time to the minute ("2026-12-07 12:28"); the
        card keeps UTC, and cut to 16 characters it showed a model trained at 12:28 in India as
        06:58 (a locale audit). As written when it cannot be read."""
        return local_minute(self.created)

    def metrics(self, split: str = "test") -> dict[str, Any]:
        """The metrics of one split (``test``, ``validation``); {} when the card has none (or
        holds something else there: a damaged card must not stop the Models dialog)."""
        return _mapping(_mapping(self.data.get("metrics")).get(split))

    @property
    def test_accuracy(self) -> float | None:
        acc = self.metrics("test").get("accuracy")
        try:
            return float(acc) if acc is not None else None
        except (TypeError, ValueError):
            return None

    @property
    def training(self) -> dict[str, Any]:
        return _mapping(self.data.get("training"))

    @property
    def dataset(self) -> dict[str, Any]:
        return _mapping(self.data.get("dataset"))

    @property
    def export_failure(self) -> str | None:
        """Why the LiteRT inspection export failed its check when the model was trained (the
        bundle was saved without it and runs on TensorFlow), else None. The card then holds
        ``exports.inspection = {"failed": reason}`` in place of the formats' entries;
        ``python -m training export`` replaces it when the export succeeds."""
        exports = self.data.get("exports") or {}
        failed = (exports.get("inspection") or {}).get("failed")
        return str(failed) if failed else None

    @property
    def augmentation_dropped(self) -> bool:
        """Whether the augmentation check chose to train without the camera augmentation
        (``training.train._augmentation_check``): the model is then less robust to a real
        camera than one trained with it."""
        return augmentation_dropped(self.training.get("phases"))

    @property
    def finished_by_user(self) -> dict | None:
        """The last training phase when the user ended it early (the wizard's Finish now:
        ``training.train.fit``'s ``finish_now``), else None."""
        last = (self.training.get("phases") or [{}])[-1]
        return last if last.get("finished_by_user") else None

    def augmentation_note(self) -> str | None:
        """What the training commands (after "note: ") and the wizard's finish page say after a
        run that dropped the camera augmentation, else None."""
        if not self.augmentation_dropped:
            return None
        return ("Trained without the camera augmentation (these images' classes were learnt "
                "clearly faster without it), so it is less robust than the bundled model to "
                "blur, noise, JPEG and uneven light: check it on images from the plant's own "
                "camera.")

    def geometry_note(self) -> str | None:
        """What the training commands and the wizard's finish page say after a run whose
        augmentation check kept the camera's light and pixel shifts but dropped the turns,
        mirrors and changes of scale, else None."""
        if not geometry_dropped(self.training.get("phases")):
            return None
        return ("Trained with the camera's lighting, blur, noise and JPEG but without turns, "
                "mirrors or changes of scale (these images' classes were learnt clearly faster "
                "without them): it reads the surface as the camera shows it now, so retrain after "
                "the camera is turned or moved closer or further.")

    def usability_problems(self) -> list[str] | None:
        """Why this model must not be put into use, judged on its test split by the rule the
        retraining wizard applies (``training.metrics.usefulness_problems``: macro F1 near
        chance, or a class recalled far less often than the rest); [] when usable, None when
        the card holds no test confusion matrix to judge on (the model library then trusts it)."""
        from .metrics import report_from_confusion, usefulness_problems

        cm = self.metrics("test").get("confusion_matrix")
        names = self.class_names
        if not cm or len(cm) != len(names):
            return None
        return usefulness_problems(report_from_confusion(cm, names))

    @property
    def unknown_detection_missing(self) -> str | None:
        """Why the model was saved without an unknown detector (too few validation images),
        else None (it has one, or the card is older than this record)."""
        why = self.data.get("unknown_detection_missing")
        return str(why) if why and not self.data.get("unknown_detection") else None

    def notes(self) -> list[str]:
        """What the training commands (each after "note: ") and the wizard's finish page say
        about a new model beyond its figures: no camera augmentation (or none of its geometry),
        finished early by the user, no unknown detector."""
        notes = [n for n in (self.augmentation_note(), self.geometry_note()) if n]
        last = self.finished_by_user
        if last:
            notes.append(f"Finished early as asked, after {last.get('epochs_run')} epochs, with "
                         f"the best of them (epoch {last.get('best_epoch')}).")
        if self.unknown_detection_missing:
            notes.append(f"No unknown detector: {self.unknown_detection_missing}. Every image "
                         "gets one of its classes, however foreign.")
        view = self.view
        if VIEW_KEY in self.data and (view.tile, view.largest, view.square) != \
                (self.input_size, self.input_size, True):
            notes.append(f"The app reads images as it was trained: whole up to {view.largest} px "
                         f"(its largest training image), larger ones in {view.tile} px tiles "
                         f"(its training images' median side)"
                         + ("" if view.square else ", a non-square image stretched to a square "
                            "as its training images were") + ".")
        return notes

    def export_failure_note(self) -> str | None:
        """What the training commands print after a run whose LiteRT export failed, else None."""
        failed = self.export_failure
        if not failed:
            return None
        return (f"note: its LiteRT export failed its check ({failed}). The model is saved and its "
                f"figures are the Keras model's; the app runs it on TensorFlow, slower to load "
                f"and to run")


def local_minute(stamp: str) -> str:
    """An ISO 8601 time with its UTC offset as this PC's local time to the minute; one without
    an offset, or not a time, as written (cut to the minute)."""
    from datetime import datetime

    try:
        t = datetime.fromisoformat(str(stamp))
        if t.tzinfo is not None:
            t = t.astimezone()   # OverflowError at the calendar's ends
        return t.strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError, OSError):
        return str(stamp)[:16].replace("T", " ")

"""Tiles: a rectangle on an image or frame (:class:`Roi`), its cover by model-sized tiles, and
the verdict of an image larger than the model's view from the verdicts of its tiles. Qt-free;
the live camera (inspector.camera), ``inspector classify`` and the review window all tile here.

**Tiling an image.** A plant's frames are often far larger than the model's input (200x200 for
SSDC-MiniNet); squeezed whole into it, a small defect vanishes. An image with a side longer than
``WHOLE_UP_TO`` (1.5) tiles is therefore cut into square tiles of ``tile`` pixels that overlap
by at least ``overlap`` of a tile (default 0.25) and are spread evenly so that the last tile ends
at the image's edge; so is a narrow one (``NARROW_ASPECT``: twice as long as wide) longer than
one tile, for a model that learnt square images of one size (NEU's). Each tile is classified
(in batches, with the unknown detector where the
model has one). A smaller image is classified whole, as before.

By default (``TileSettings.size`` None) an image is read at the scale the model was trained at
(``training.card.TrainingView``, recorded in the model card): the tile is the side its training
images had (NEU's 200 px for the bundled model; the median sqrt(height x width), for a model
trained on images of many sizes, e.g. 317 px for magnetic tiles), and an image no larger than
the largest training image is classified whole, as the model learnt it, whatever its size. A
wizard-trained magnetic-tile model read its held-out images at 54.5% (macro F1 35.6%) in 200 px
tiles against 90.3% (82.9%) whole, as its training and its evaluation read them.

**The image's verdict from its tiles** (:func:`deciding_tile`):

0. blank tiles (no contrast at all: a frame's empty margin) and tiles that are at least half
   padding (``training.padding``: the fill around a de-skewed or letterboxed frame) take part
   only when every tile is one of them;
1. if any tile is flagged unknown, the image is unknown, and the least known tile (the highest
   unknown score) decides. A tile's unknown score is first put on the scale of one image
   (:func:`on_image_scale`, ``training.openset.as_one_image``): an image read in many tiles
   would otherwise be flagged whenever any one of them is, and *Accept as known* (the share of
   known images accepted) would hold for tiles, not images: a frame of nine known tiles at 95%
   each is accepted 63% of the time;
2. otherwise the most severe tile decides: the tile with the most confident defect. Where the
   model has a defect-free class (a class named like good, ok, free, normal, no_defect), any
   tile of another class beats every defect-free tile; the image is defect-free only when all
   of its tiles are.

The image's row then carries the deciding tile's probabilities, unknown score and label.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

import numpy as np

from training.card import NARROW_ASPECT, TrainingView
from training.images import square_box, square_surface
from training.padding import MOSTLY


class ClassifierLike(Protocol):
    """What the core needs of a classifier; inspector.engine.Classifier is the one (tests pass
    stand-ins). ``prepare`` makes a model input of any frame, ``load`` of an image file; ``judge``
    gives a batch's probabilities with the unknown verdicts, ``classify`` the probabilities
    alone, ``inspect`` one input's attention maps. ``view`` (optional: :func:`model_view`) is
    the scale the model was trained at."""

    class_names: list[str]
    input_size: int

    def prepare(self, arr: np.ndarray) -> np.ndarray: ...
    def load(self, path: str | Path) -> np.ndarray: ...
    def judge(self, images: np.ndarray) -> Any: ...
    def classify(self, images: np.ndarray) -> np.ndarray: ...
    def inspect(self, image: np.ndarray, maps: Iterable[str] | None = None) -> Any: ...


# ---------------------------------------------------------------------------------------------
# Region of interest and tiling

@dataclass(frozen=True)
class Roi:
    """A rectangle in frame pixels (x, y: top-left corner)."""

    x: int
    y: int
    w: int
    h: int

    @classmethod
    def from_points(cls, x0: float, y0: float, x1: float, y1: float,
                    square: bool = False) -> Roi:
        """The rectangle dragged from (x0, y0) to (x1, y1); ``square`` keeps the shorter side
        in both directions, anchored at the starting corner."""
        dx, dy = x1 - x0, y1 - y0
        if square:
            side = min(abs(dx), abs(dy))
            dx = math.copysign(side, dx) if dx else side
            dy = math.copysign(side, dy) if dy else side
        left, top = min(x0, x0 + dx), min(y0, y0 + dy)
        return cls(int(round(left)), int(round(top)), int(round(abs(dx))), int(round(abs(dy))))

    @property
    def empty(self) -> bool:
        return self.w <= 0 or self.h <= 0

    def clamp(self, width: int, height: int) -> Roi | None:
        """The part inside a width x height frame, or None when nothing is left."""
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + self.w), min(height, self.y + self.h)
        if x1 <= x0 or y1 <= y0:
            return None
        return Roi(x0, y0, x1 - x0, y1 - y0)

    def crop(self, image: np.ndarray) -> np.ndarray:
        return image[self.y:self.y + self.h, self.x:self.x + self.w]

    def offset(self, dx: int, dy: int) -> Roi:
        return Roi(self.x + dx, self.y + dy, self.w, self.h)

    def scaled(self, sx: float, sy: float) -> Roi:
        return Roi(int(round(self.x * sx)), int(round(self.y * sy)),
                   max(1, int(round(self.w * sx))), max(1, int(round(self.h * sy))))

    def to_text(self, frame_w: int, frame_h: int) -> str:
        """For settings: the ROI and the frame size it was drawn on."""
        return f"{self.x},{self.y},{self.w},{self.h},{int(frame_w)},{int(frame_h)}"

    @classmethod
    def from_text(cls, text: str, frame_w: int, frame_h: int) -> Roi | None:
        """A ROI saved by ``to_text``, scaled to a frame of another size; None if unreadable."""
        try:
            x, y, w, h, fw, fh = (int(v) for v in str(text).split(","))
        except (TypeError, ValueError):
            return None
        if fw <= 0 or fh <= 0:
            return None
        roi = cls(x, y, w, h)
        if (fw, fh) != (frame_w, frame_h):
            roi = roi.scaled(frame_w / fw, frame_h / fh)
        return roi.clamp(frame_w, frame_h)


def tile_starts(length: int, tile: int, overlap: float = 0.0) -> list[int]:
    """Where tiles of ``tile`` pixels start along a side of ``length`` pixels: as few as cover
    it with neighbours overlapping by at least ``overlap`` (a fraction of a tile), spread evenly,
    the first at 0 and the last ending at the edge."""
    if length <= tile:
        return [0]
    stride = max(1.0, tile * (1.0 - min(max(float(overlap), 0.0), MAX_OVERLAP)))
    n = math.ceil((length - tile) / stride - 1e-9) + 1
    return [int(round(i * (length - tile) / (n - 1))) for i in range(n)]


MAX_TILES = 64          # tiles per camera frame at most: tiny tiles on a big frame are made larger
CLASSIFY_CHUNK = 32     # tiles per classify call (bounded memory however many tiles there are)
MAX_OVERLAP = 0.9       # more would make a tile per pixel


def tile_count(w: int, h: int, tile: int, overlap: float = 0.0) -> int:
    """How many tiles :func:`tile_grid` makes for a ``w`` x ``h`` region."""
    return len(tile_starts(w, tile, overlap)) * len(tile_starts(h, tile, overlap))


def fit_tile(w: int, h: int, tile: int, max_tiles: int = MAX_TILES, overlap: float = 0.0) -> int:
    """``tile``, or the smallest larger tile size that covers a ``w`` x ``h`` region with at
    most ``max_tiles`` tiles."""
    tile = max(1, int(tile))
    if tile_count(w, h, tile, overlap) <= max_tiles:
        return tile
    lo, hi = tile, max(w, h, tile)  # tile_count(hi) == 1; the count never grows with the size
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if tile_count(w, h, mid, overlap) <= max_tiles:
            hi = mid
        else:
            lo = mid
    return hi


def tile_grid(roi: Roi, tile: int, overlap: float = 0.0) -> tuple[list[Roi], int, int]:
    """Model-sized tiles covering ``roi``: (tiles in frame pixels, row-major; rows; cols).

    Tiles are ``tile`` x ``tile`` pixels, neighbours overlapping by at least ``overlap`` of a
    tile; where the ROI is not a whole number of strides they overlap a little more, evenly,
    rather than running off the edge, so every tile is full of image. A side shorter than
    ``tile`` gets one tile of that side's length."""
    if tile < 1:
        raise ValueError("tile size must be at least 1 pixel")
    xs, ys = tile_starts(roi.w, tile, overlap), tile_starts(roi.h, tile, overlap)
    tw, th = min(tile, roi.w), min(tile, roi.h)
    tiles = [Roi(roi.x + x, roi.y + y, tw, th) for y in ys for x in xs]
    return tiles, len(ys), len(xs)


# ---------------------------------------------------------------------------------------------
# Images larger than the model's view

WHOLE_UP_TO = 1.5        # an image with no side longer than 1.5 tiles is classified whole
# ... unless it is NARROW_ASPECT (training.card) times as long as it is wide and longer than one
# tile, for a model that learnt square images of one size (TrainingView.one_scale: NEU's; a
# model that learnt images of many sizes may have learnt such strips whole): made square by
# reflection it would be half mirror or more, and shrunk besides; in tiles it keeps the model's
# scale and its tiles less mirror (plan_tiles)
DEFAULT_OVERLAP = 0.25   # of a tile
MIN_TILE = 16            # px: a smaller tile, enlarged to the model's input, shows no texture
MAX_IMAGE_TILES = 2500   # per image at most (a 16-megapixel frame at 200 px, overlap 0.25: 729)
UNKNOWN = "unknown"      # = inspector.engine.UNKNOWN (not imported: the engine loads TensorFlow)

_DEFECT_FREE = re.compile(r"(^|[^a-z])(good|ok|okay|normal|clean|free|defect[-_ ]?free|"
                          r"no[-_ ]?defects?|non[-_ ]?defective)([^a-z]|$)")


def defect_free_classes(class_names: Sequence[str]) -> list[int]:
    """The indices of the classes named like a defect-free surface (good, ok, free, normal,
    no_defect, ...)."""
    return [i for i, n in enumerate(class_names) if _DEFECT_FREE.search(str(n).lower())]


def model_view(classifier: Any) -> TrainingView:
    """The scale ``classifier``'s model was trained at; its input size for one without a
    ``view`` (a stand-in)."""
    view = getattr(classifier, "view", None)
    if isinstance(view, TrainingView):
        return view
    size = int(getattr(classifier, "input_size", 0) or 0)
    return TrainingView.unrecorded(size)


@dataclass(frozen=True)
class TileSettings:
    """How to tile: ``size`` in image pixels (None: at the scale the model was trained at, its
    ``TrainingView``; 0: never tile, the image is read whole into the model's input) and
    ``overlap`` as a fraction of a tile."""

    size: int | None = None
    overlap: float = DEFAULT_OVERLAP

    def side(self, view: TrainingView | int) -> int:
        """The tile side in pixels for a model trained at ``view`` (an int: its tile side;
        0: no tiling)."""
        tile = view.tile if isinstance(view, TrainingView) else int(view)
        return int(tile) if self.size is None else max(0, int(self.size))

    def whole_up_to(self, view: TrainingView | int) -> int:
        """The longest side classified whole besides 1.5 tiles: the largest training image's
        with the model's own tile size, none with a size the user chose."""
        return view.largest if self.size is None and isinstance(view, TrainingView) else 0

    def describe(self, view: TrainingView | int) -> str:
        side = self.side(view)
        if not side:
            return "whole images"
        largest = self.whole_up_to(view)
        whole = f"; whole up to {largest} px" if largest > WHOLE_UP_TO * side else ""
        return f"{side} px tiles, overlap {self.overlap:.0%}{whole}"


TILES_GROUP = "tiles"   # settings.ini: [tiles] <hash of the folder>=auto|N,overlap


def folder_key(folder: str | Path) -> str:
    """A folder's key among the tile settings the window remembers per folder."""
    import hashlib
    import os

    return hashlib.sha1(os.fsencode(str(Path(folder).resolve()))).hexdigest()[:16]   # any name


def tiling_to_text(t: TileSettings) -> str:
    """For the settings file: ``auto|N,overlap``."""
    return f"{'auto' if t.size is None else int(t.size)},{t.overlap:g}"


def tiling_from_text(text) -> TileSettings | None:
    try:
        size, overlap = str(text).split(",")
        o = float(overlap)
        if not 0.0 <= o <= MAX_OVERLAP:
            return None
        return TileSettings(None if size.strip() == "auto" else max(0, int(size)), o)
    except (TypeError, ValueError):
        return None


def nearest_tiling(folder: str | Path, raw_of) -> TileSettings | None:
    """The tile settings saved for ``folder``, else for the nearest folder above it (a line's
    day folders take the line's: a new day's sub-folder fell back to the defaults and was read
    at another scale); ``raw_of(key)`` gives a folder key's saved text or None. None when no
    folder up the path has one."""
    f = Path(folder).resolve()
    for d in (f, *f.parents):
        raw = raw_of(folder_key(d))
        t = None if raw is None else tiling_from_text(raw)
        if t is not None:
            return t
    return None


def saved_tiling(folder: str | Path, settings_file: str | Path | None = None) -> TileSettings | None:
    """The tile settings the window remembers for ``folder`` or the nearest folder above it (View
    > Tiles of large images), read without Qt for ``inspector classify``; None when none are
    saved."""
    from .settings import read_group_value

    return nearest_tiling(folder, lambda key: read_group_value(TILES_GROUP, key, settings_file))


def plan_tiles(height: int, width: int, tile: int, overlap: float = DEFAULT_OVERLAP,
               whole_up_to: int = 0,
               narrow: float = 0.0) -> tuple[list[Roi], int, int, float] | None:
    """The tiles of an image (as :func:`tile_grid`, and the overlap used), or None when it is
    classified whole (no tiling, or no side longer than ``WHOLE_UP_TO`` tiles or than
    ``whole_up_to`` pixels: the largest image the model was trained on). With ``narrow`` (a
    model that learnt square images of one size: ``NARROW_ASPECT``), an image at least
    ``narrow`` times as long as it is wide and longer than one tile is read in tiles all the
    same: made square by reflection for the whole-image reading, half or more of the model's
    view would be a mirror of its surface, shrunk besides (a 115 x 290 strip to 0.69 of its scale); its tiles (each
    thin tile made square by reflection, ``model_input``) keep the scale with less mirror.
    Measured on the bundled 1.4.0 (docs/unknown-detection.md, "Narrow images in tiles"):
    strips cut from its NEU test images read as right or more often and accepted as known
    about as often or more; magnetic-tile images (foreign) flagged more often. More than
    ``MAX_IMAGE_TILES`` tiles are avoided by less overlap first, so that the tiles keep the
    scale the model was trained at (overlap 0.9 on a 4000 x 4000 frame would otherwise make 678
    px tiles), and by larger tiles only when tiles that do not overlap are still too many (over
    100 megapixels at 200 px)."""
    whole = max(WHOLE_UP_TO * tile, whole_up_to)
    long, short = max(height, width), min(height, width)
    thin = narrow > 0 and long > tile and long >= narrow * short
    if tile < 1 or (height <= whole and width <= whole and not thin):
        return None
    while overlap > 0 and tile_count(width, height, tile, overlap) > MAX_IMAGE_TILES:
        overlap = max(0.0, round(overlap - 0.05, 2))
    tile = fit_tile(width, height, tile, MAX_IMAGE_TILES, overlap)
    return (*tile_grid(Roi(0, 0, width, height), tile, overlap), overlap)


def as_trained(classifier: Any, image: np.ndarray) -> tuple[np.ndarray, float]:
    """A whole image as the model learnt its training images before they were resized: made
    square by reflection when they were square (``TrainingView.square``: NEU's; a 100 x 200
    crop read 93.5% right against 67.4% stretched), its padding filled first
    (``training.images.square_surface``), else as it is, stretched by the resize as the
    model's non-square training images were; and the share of padding filled so. When they
    were all about one size (``TrainingView.one_scale``: NEU's 200 x 200), an image smaller
    than them is continued by reflection to their side, so that it keeps their scale as a
    larger image's tiles do (``training.images.Reading``; a 128 x 128 crop of a NEU test
    image read 94.4% right against 89.1% enlarged)."""
    return model_view(classifier).reading.whole(
        image, int(getattr(classifier, "input_size", 0) or 0) or None)


def content_box(classifier: Any, shape: tuple[int, ...]):
    """Where a whole image of ``shape`` lies in the model's input (``as_trained``), for its
    attention maps: None when it fills the input."""
    return model_view(classifier).reading.box(shape[0], shape[1])


def model_input(classifier: ClassifierLike, crop: np.ndarray, whole: bool
                ) -> tuple[np.ndarray, tuple[float, float, float, float] | None, float]:
    """The model input of a whole image (``as_trained``) or of a tile (a tile thinner than a
    tile side, a strip's, is always made square by continuing its surface by reflection,
    ``training.images.square_surface``, so that it keeps its scale instead of being stretched
    into the model's square view: 200 x 100 stretched 2x, 200 x 1 200x), where the crop lies in it
    (``training.images.square_box``; None when it fills the input) for its attention maps,
    and the share of padding filled before a reflection (``training.images.square_surface``;
    the engine fills and reports the rest). The review window, ``inspector classify`` and the live camera all
    read a region so."""
    if whole:
        x, share = as_trained(classifier, crop)
        return classifier.prepare(x), content_box(classifier, crop.shape), share
    x, share = square_surface(crop)
    return classifier.prepare(x), square_box(crop.shape[0], crop.shape[1]), share


def inspect_input(classifier: ClassifierLike, crop: np.ndarray, whole: bool = True,
                  maps: Iterable[str] | None = None) -> Any:
    """A whole image's or a tile's inspection (probabilities and attention maps), read as it is
    classified (:func:`model_input`), its maps over the crop itself (``Inspection.content``)."""
    x, box, share = model_input(classifier, crop, whole)
    ins = classifier.inspect(x) if maps is None else classifier.inspect(x, maps=maps)
    if box is not None:
        ins.content = box
    if share > getattr(ins, "padding", 0.0):
        ins.padding = share
    return ins



@dataclass
class Prepared:
    """An image as model inputs: one (whole) or one per tile."""

    inputs: np.ndarray              # (n, S, S, 3) uint8
    tiles: list[Roi] | None         # image pixels, row-major; None: the whole image
    grid: tuple[int, int]           # rows, cols
    shape: tuple[int, int]          # the image's height, width
    overlap: float = 0.0
    padding: np.ndarray | None = None   # (n,) padding filled before a reflection (model_input)


def prepare_image(classifier: ClassifierLike, image: np.ndarray, settings: TileSettings) -> Prepared:
    """``image`` (any size, as training.images.decode_image gives it) as model inputs, tiled
    when it is larger than the model's view (``classifier.prepare`` resizes each)."""
    h, w = image.shape[:2]
    view = model_view(classifier)
    plan = plan_tiles(h, w, settings.side(view), settings.overlap, settings.whole_up_to(view),
                      NARROW_ASPECT if view.one_scale else 0.0)
    if plan is None:
        x, _, share = model_input(classifier, image, True)
        return Prepared(np.asarray(x)[None], None, (1, 1), (h, w),
                        padding=np.array([share]) if share else None)
    tiles, rows, cols, overlap = plan
    made = [model_input(classifier, t.crop(image), False) for t in tiles]
    inputs = np.stack([np.asarray(x) for x, _, _ in made])
    shares = np.array([s for _, _, s in made], np.float64)
    return Prepared(inputs, tiles, (rows, cols), (h, w), overlap,
                    shares if shares.any() else None)


def load_prepared(classifier: ClassifierLike, settings: TileSettings, path: str | Path) -> Prepared:
    """An image file decoded at full size and prepared (raises training.images.ImageReadError)."""
    from training.images import decode_image

    return prepare_image(classifier, decode_image(path), settings)


@dataclass
class TiledVerdict:
    """The verdicts of an image's tiles and which one decides the image's (:func:`deciding_tile`)."""

    tiles: list[Roi]
    grid: tuple[int, int]
    shape: tuple[int, int]
    overlap: float
    class_names: list[str]
    probs: np.ndarray                    # (tiles, classes)
    # (tiles,) on the scale of one image (on_image_scale), or None without a detector
    unknown_scores: np.ndarray | None
    known: np.ndarray                    # (tiles,) bool
    winner: int                          # the deciding tile
    # (tiles,) share of each tile that is padding (training.padding; None: none is)
    padding: np.ndarray | None = None
    tile_scores: np.ndarray | None = None   # (tiles,) the detector's own scores, each tile alone

    @property
    def tile(self) -> int:
        return max(self.tiles[0].w, self.tiles[0].h)

    def top_class(self, i: int) -> str:
        c = int(np.argmax(self.probs[i]))
        return self.class_names[c] if c < len(self.class_names) else str(c)

    def label(self, i: int) -> str:
        """Tile ``i``'s label: its class, or ``unknown`` when flagged."""
        return self.top_class(i) if self.known[i] else UNKNOWN

    def confidence(self, i: int) -> float:
        return float(np.max(self.probs[i]))

    def score(self, i: int) -> float | None:
        return None if self.unknown_scores is None else float(self.unknown_scores[i])

    @property
    def image_score(self) -> float | None:
        """The image's unknown score: its least known tile's (the highest), so that the image
        is flagged at a threshold exactly when one of its tiles is; blank tiles count only when
        all are blank (``deciding_tile``)."""
        if self.unknown_scores is None:
            return None
        scores = np.asarray(self.unknown_scores, np.float64)
        return float(np.max(scores[_surface_tiles(scores, len(scores), self.padding)]))

    def rejudge(self, threshold: float | None) -> bool:
        """Known/unknown of every tile again at another threshold (the *Accept as known*
        setting changed; no model run) and the deciding tile with them; True when the deciding
        tile changed."""
        if self.unknown_scores is None:
            return False
        from .session import known_at

        self.known = np.array([known_at(float(v), threshold) for v in self.unknown_scores], bool)
        winner = deciding_tile(self.probs, self.known, self.unknown_scores, self.class_names,
                               self.padding)
        changed, self.winner = winner != self.winner, winner
        return changed


def deciding_tile(probs: np.ndarray, known: np.ndarray, unknown_scores: np.ndarray | None,
                  class_names: Sequence[str], padding: np.ndarray | None = None) -> int:
    """The tile whose verdict is the image's: the least known flagged tile if any is flagged,
    else the most confident tile of a defect class (tiles of a defect-free class only when all
    tiles are defect-free)."""
    probs = np.asarray(probs)
    known = np.asarray(known, bool)
    seen = _surface_tiles(unknown_scores, len(probs), padding)
    flagged = seen[~known[seen]]
    if flagged.size:
        if unknown_scores is None:
            return int(flagged[0])
        return int(flagged[np.argmax(np.asarray(unknown_scores)[flagged])])
    top, conf = probs.argmax(axis=1), probs.max(axis=1)
    candidates = seen[~np.isin(top[seen], defect_free_classes(class_names))]
    if candidates.size == 0:
        candidates = seen
    return int(candidates[np.argmax(conf[candidates])])


MOSTLY_PADDING = MOSTLY   # a tile with this share of padding or more decides only if all do


def effective_tiles(shape: tuple[int, int], tile: tuple[int, int], surface: int,
                    count: int) -> float:
    """How many tiles' worth of surface an image of ``shape`` (height, width) holds: its area in
    areas of its ``tile`` (height, width; a strip thinner than a tile has tiles of its
    thickness), overlapping tiles sharing surface and so not counted twice, times the share of
    its ``count`` tiles that have surface to read (``surface``: neither blank nor mostly
    padding)."""
    (h, w), (th, tw) = shape, tile
    return max(1.0, (surface / max(count, 1)) * (h * w) / float(max(th * tw, 1)))


def on_image_scale(classifier: Any, scores: np.ndarray | None, tiles: float
                   ) -> np.ndarray | None:
    """Tile scores on the scale of one image read as ``tiles`` tiles
    (``training.openset.as_one_image`` with the model's validation scores), so that the model's
    threshold accepts the stated share of known *images* whichever way they are read; unchanged
    without a detector or its validation scores (stand-ins, bundles before them)."""
    from training.openset import as_one_image

    detector = getattr(classifier, "detector", None)
    val = getattr(detector, "val_scores", None)
    if scores is None or val is None or not len(val) or tiles <= 1:
        return scores
    return as_one_image(scores, val, tiles)


def judge_tiles(classifier: Any, shape: tuple[int, int], tile: tuple[int, int], probs: np.ndarray,
                known: np.ndarray, scores: np.ndarray | None, padding: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray | None, int]:
    """An image's tiles judged as one image: their known/unknown with the scores on the image's
    scale (:func:`on_image_scale`, at the model's threshold now), those scores, and the deciding
    tile (:func:`deciding_tile`). The review window, ``inspector classify`` and the camera."""
    if scores is not None:
        seen = _surface_tiles(scores, len(scores), padding)
        scaled = on_image_scale(classifier, scores,
                                effective_tiles(shape, tile, len(seen), len(scores)))
        threshold = getattr(classifier, "unknown_threshold", None)
        if scaled is not scores and threshold is not None:
            from .session import known_at

            known = np.array([known_at(float(v), threshold) for v in scaled], bool)
            scores = scaled
    winner = deciding_tile(probs, known, scores, list(classifier.class_names), padding)
    return np.asarray(known, bool), scores, winner


def _surface_tiles(unknown_scores: np.ndarray | None, count: int,
                   padding: np.ndarray | None = None) -> np.ndarray:
    """The tiles that may decide: those with surface to classify. A blank tile (no contrast: a
    frame's empty margin; the engine scores it +inf) and a tile that is mostly padding
    (``training.padding``: a de-skewed or letterboxed frame's fill) decide only when every tile
    is such a tile: a large frame is judged on its surface, not on the edge of its padding."""
    every = np.arange(count)
    empty = np.zeros(count, bool)
    if unknown_scores is not None:
        empty |= np.isposinf(np.asarray(unknown_scores, np.float64))
    if padding is not None:
        empty |= np.asarray(padding, np.float64) >= MOSTLY_PADDING
    return every if empty.all() else every[~empty]


@dataclass
class ImageVerdict:
    """One image's verdict: the deciding tile's (or the whole image's), and its tiles."""

    probs: np.ndarray
    unknown_score: float | None
    known: bool
    tiles: TiledVerdict | None = None
    padding: float = 0.0    # share of the image (or its deciding tile) that is padding


def judge_batch(classifier: ClassifierLike, images: np.ndarray, spread: bool = True) -> Any:
    """``classifier.judge(images)``; ``spread`` False (the whole batch on one interpreter,
    ``Classifier.judge``) is passed only then, so that a stand-in without it serves the rest."""
    return classifier.judge(images) if spread else classifier.judge(images, spread=False)


def judge_prepared(classifier: ClassifierLike, images: Sequence[Prepared],
                   chunk: int = CLASSIFY_CHUNK, spread: bool = True) -> list[ImageVerdict]:
    """Every image's verdict, the inputs of all of them judged in batches of ``chunk``
    (``judge_batch``)."""
    counts = [len(p.inputs) for p in images]
    inputs = np.concatenate([p.inputs for p in images]) if images else np.zeros((0,))
    parts = [judge_batch(classifier, inputs[k:k + chunk], spread)
             for k in range(0, len(inputs), max(1, chunk))]
    probs = np.concatenate([np.asarray(v.probs, np.float32) for v in parts])
    known = np.concatenate([np.asarray(v.known, bool) for v in parts])
    scores = None if any(v.unknown_scores is None for v in parts) else \
        np.concatenate([np.asarray(v.unknown_scores, np.float64) for v in parts])
    pads = [getattr(v, "padding", None) for v in parts]   # stand-ins may lack it
    padding = None if all(p is None for p in pads) else np.concatenate(
        [np.zeros(len(v.probs)) if p is None else np.asarray(p, np.float64)
         for v, p in zip(parts, pads)])
    if any(p.padding is not None for p in images):   # filled before a reflection (model_input)
        before = np.concatenate([np.zeros(n) if p.padding is None else p.padding
                                 for p, n in zip(images, counts)])
        padding = before if padding is None else np.maximum(padding, before)
    names = list(classifier.class_names)
    out, k = [], 0
    for p, n in zip(images, counts):
        pr, kn = probs[k:k + n], known[k:k + n]
        sc = None if scores is None else scores[k:k + n]
        pd = None if padding is None or not padding[k:k + n].any() else padding[k:k + n]
        k += n
        if p.tiles is None:
            out.append(ImageVerdict(pr[0], None if sc is None else float(sc[0]), bool(kn[0]),
                                    padding=0.0 if pd is None else float(pd[0])))
            continue
        kn, on_image, w = judge_tiles(classifier, p.shape, (p.tiles[0].h, p.tiles[0].w), pr,
                                      kn, sc, pd)
        tv = TiledVerdict(p.tiles, p.grid, p.shape, p.overlap, names, pr, on_image, kn, w, pd,
                          None if on_image is sc else sc)
        out.append(ImageVerdict(pr[w], tv.image_score, bool(kn[w]), tv,
                                0.0 if pd is None else float(pd[w])))
    return out


def classify_image(classifier: ClassifierLike, image: np.ndarray, settings: TileSettings,
                   chunk: int = CLASSIFY_CHUNK) -> ImageVerdict:
    """One in-memory image's verdict, tiled when it is larger than the model's view."""
    return judge_prepared(classifier, [prepare_image(classifier, image, settings)], chunk)[0]

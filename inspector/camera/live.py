"""Live analysis: :func:`analyse` classifies the region of interest of one frame (whole, or as
model-sized tiles) with an optional attention map; :func:`inference_loop` pulls newest frames
and analyses them one at a time, for a worker thread to run; :class:`LiveStats` rates them."""
from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..attention import CAM, attention_map
from .grabber import Frame, FrameGrabber, rate
from ..tiles import (CLASSIFY_CHUNK, ClassifierLike, Prepared, Roi, fit_tile, inspect_input,
                     judge_prepared, judge_tiles, model_input, tile_grid)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Analysis of one frame

OVERLAY_CAM = CAM     # the overlay keys are inspector.attention's


@dataclass(frozen=True)
class LiveConfig:
    """What to do with each frame (swapped as a whole by the GUI: workers read it atomically)."""

    roi: Roi | None = None       # None: the whole frame
    tile: int | None = None      # tile side in frame pixels; None: the ROI as one model input
    overlay: str | None = None   # None, "cam" or an SE block name ("se1", ...)


@dataclass
class LiveResult:
    frame: Frame
    roi: Roi                      # the region actually classified (clamped to the frame)
    tiles: list[Roi]              # frame pixels; one entry (== roi) without tiling
    grid: tuple[int, int]         # rows, cols
    tile_probs: np.ndarray        # (tiles, classes)
    probs: np.ndarray             # (classes,): the ROI's, or the deciding tile's
    class_names: list[str]
    heat: np.ndarray | None = None  # (roi.h, roi.w) attention 0..1 over the ROI, or None
    overlay: str | None = None
    t_start: float = 0.0
    t_done: float = 0.0
    config: LiveConfig | None = None  # what it was computed for (a display drops stale results)
    tile_known: np.ndarray | None = None     # (tiles,) bool; None: the model has no detector
    tile_unknown_scores: np.ndarray | None = None   # on the frame's scale (inspector.tiles)
    winner: int = 0               # the tile whose verdict is the frame's (inspector.tiles.deciding_tile)
    # which model computed it (``id``; 0: not said): a late result of a model just replaced
    # by one with the same class names must not be shown as the new model's
    model_key: int = 0

    @property
    def known(self) -> bool:
        """The deciding tile's known/unknown: False when a tile with surface to read is
        flagged "unknown - not a known defect" (the least known such tile decides; a blank
        tile or one mostly padding only when every tile is one)."""
        return self.tile_known is None or bool(self.tile_known[self.winner])

    @property
    def unknown_tiles(self) -> list[int]:
        return [] if self.tile_known is None else [int(i) for i in np.flatnonzero(~self.tile_known)]

    @property
    def region_text(self) -> str:
        """What was classified, e.g. "region 100×80 px"; says so when the chosen region did
        not fit this frame (a source whose frames change size): cut to it, or the whole frame
        where it lies outside."""
        asked = self.config.roi if self.config is not None else None
        text = f"region {self.roi.w}×{self.roi.h} px"
        if asked is None or asked == self.roi:
            return text
        size = f"{self.frame.width}×{self.frame.height}"
        if asked.clamp(self.frame.width, self.frame.height) is None:
            return f"whole frame {size} px (the region lies outside this frame)"
        return f"{text} (the region is cut to this {size} px frame)"

    @property
    def verdict_text(self) -> str:
        """What the live label says: the class and its confidence, or the unknown verdict with
        the closest class."""
        if self.known:
            return f"{self.label_name}  {self.confidence:.1%}"
        from ..engine import BLANK_TEXT, UNKNOWN_TEXT, is_blank_score

        scores = self.tile_unknown_scores
        if scores is not None and is_blank_score(float(scores[self.winner])):
            return f"{UNKNOWN_TEXT} ({BLANK_TEXT})"
        return f"{UNKNOWN_TEXT} (closest {self.label_name} {self.confidence:.0%})"

    @property
    def label(self) -> int:
        return int(np.argmax(self.probs))

    @property
    def label_name(self) -> str:
        return self.class_names[self.label] if self.label < len(self.class_names) else str(self.label)

    @property
    def confidence(self) -> float:
        return float(self.probs[self.label])

    @property
    def latency(self) -> float:
        """Seconds from capture to result."""
        return self.t_done - self.frame.t_capture

    @property
    def tile_labels(self) -> list[int]:
        return [int(i) for i in np.argmax(self.tile_probs, axis=1)]


def _attention(inspection: Any, overlay: str) -> np.ndarray:
    m = attention_map(inspection, overlay)
    if m is None:
        raise ValueError(f"unknown attention map {overlay!r}")
    return m


def analyse(model: ClassifierLike, frame: Frame, config: LiveConfig,
            clock: Callable[[], float] = time.monotonic) -> LiveResult:
    """Classifies the frame's ROI (whole, or tile by tile) and, if asked, its attention map."""
    from ..engine import upsample

    t_start = clock()
    image = frame.image
    roi = (config.roi or Roi(0, 0, frame.width, frame.height)).clamp(frame.width, frame.height)
    if roi is None:  # the ROI lies outside this frame (the source changed resolution)
        roi = Roi(0, 0, frame.width, frame.height)
    # a region within one tile is read whole, as the review window reads an image no larger
    # than its tiles: at the model's scale (inspector.tiles.as_trained), not enlarged as a tile
    whole = not config.tile or max(roi.w, roi.h) <= int(config.tile)
    if whole:
        tiles, rows, cols = [roi], 1, 1
    else:  # at most MAX_TILES tiles (the window says when it enlarged them)
        tiles, rows, cols = tile_grid(roi, fit_tile(roi.w, roi.h, int(config.tile)))
    heat = None
    if config.overlay:   # one inspection per tile, for its map (inspector.tiles.inspect_input)
        heat = np.zeros((roi.h, roi.w), np.float32)
        inspections = [inspect_input(model, t.crop(image), whole, maps=(config.overlay,))
                       for t in tiles]
        for t, ins in zip(tiles, inspections):
            m = upsample(_attention(ins, config.overlay), t.h, t.w)
            ys, xs = slice(t.y - roi.y, t.y - roi.y + t.h), slice(t.x - roi.x, t.x - roi.x + t.w)
            np.maximum(heat[ys, xs], m, out=heat[ys, xs])
        tile_probs = np.stack([np.asarray(ins.probs, np.float32) for ins in inspections])
        known = np.array([bool(getattr(ins, "known", True)) for ins in inspections])
        raw = [getattr(ins, "unknown_score", None) for ins in inspections]
        scores = None if any(v is None for v in raw) else np.asarray(raw, np.float64)
        padding = np.array([float(getattr(ins, "padding", 0.0) or 0.0) for ins in inspections])
        known, scores, winner = judge_tiles(model, (roi.h, roi.w), (tiles[0].h, tiles[0].w),
                                            tile_probs, known, scores,
                                            padding if padding.any() else None)
    else:
        made = [model_input(model, t.crop(image), whole) for t in tiles]
        inputs = np.stack([np.asarray(x) for x, _, _ in made])
        filled = np.array([share for _, _, share in made], np.float64)
        if hasattr(model, "judge"):   # the review window's verdict of a tiled image
            prepared = Prepared(inputs, tiles, (rows, cols), (roi.h, roi.w), 0.0,
                                filled if filled.any() else None)
            v = judge_prepared(model, [prepared])[0].tiles
            tile_probs, known, scores, winner = v.probs, v.known, v.unknown_scores, v.winner
        else:   # a stand-in that only classifies: every tile known
            tile_probs = np.concatenate([
                np.asarray(model.classify(inputs[k:k + CLASSIFY_CHUNK]), np.float32)
                for k in range(0, len(inputs), CLASSIFY_CHUNK)])
            known, scores, winner = judge_tiles(
                model, (roi.h, roi.w), (tiles[0].h, tiles[0].w), tile_probs,
                np.ones(len(tiles), bool), None, filled if filled.any() else None)
    return LiveResult(frame, roi, tiles, (rows, cols), tile_probs, tile_probs[winner],
                      list(model.class_names), heat, config.overlay, t_start, clock(), config,
                      None if scores is None and np.all(known) else np.asarray(known, bool),
                      scores, winner, id(model))


class UnknownRate:
    """The share of live results flagged unknown over the last ``window`` results (the camera's
    drift signal, shown against the model's validation rate)."""

    def __init__(self, window: int = 200):
        self._flags: deque[bool] = deque(maxlen=window)

    def record(self, result: LiveResult) -> None:
        if result.tile_known is not None:
            self._flags.append(not result.known)

    def reset(self) -> None:
        self._flags.clear()

    @property
    def counts(self) -> tuple[int, int]:
        """(flagged, judged) among the last results."""
        return sum(self._flags), len(self._flags)


class LiveStats:
    """Rolling classified-frames-per-second and latency over the last ``window`` results."""

    def __init__(self, window: int = 30, clock: Callable[[], float] = time.monotonic):
        self._done: deque[float] = deque(maxlen=window + 1)
        self._lat: deque[float] = deque(maxlen=window)
        self._clock = clock   # the clock the results' completion times are read from
        self.count = 0

    def record(self, t_done: float, latency: float) -> None:
        """One result, by its completion time and capture-to-result latency (seconds)."""
        self._done.append(t_done)
        self._lat.append(latency)
        self.count += 1

    def reset(self) -> None:
        self._done.clear()
        self._lat.clear()

    @property
    def fps(self) -> float:
        """Results a second, 0 once results have stopped coming (``grabber.rate``)."""
        return rate(self._done, self._clock())

    @property
    def latency_median(self) -> float:
        return statistics.median(self._lat) if self._lat else 0.0


def inference_loop(grabber: FrameGrabber, get_model: Callable[[], ClassifierLike | None],
                   get_config: Callable[[], LiveConfig], emit: Callable[[LiveResult], None],
                   should_stop: Callable[[], bool], *, paused: Callable[[], bool] = lambda: False,
                   on_error: Callable[[str], None] = lambda m: None,
                   clock: Callable[[], float] = time.monotonic, poll: float = 0.1) -> None:
    """Pulls the newest frame, analyses it, emits the result; one at a time until stopped.

    Frames that arrive while an analysis runs replace each other in the grabber (dropped, not
    queued). Without a model, or paused, frames are not taken. An analysis error is reported
    through ``on_error`` (once per distinct message) and the loop goes on."""
    last_error = None
    while not should_stop():
        if paused() or get_model() is None:
            if grabber.wait_stopped(poll):  # wakes at once when the grabber stops
                return
            continue
        frame = grabber.latest(timeout=poll)
        if frame is None:
            if grabber.wait_stopped(0):
                return
            continue
        model, config = get_model(), get_config()
        if model is None or should_stop():
            continue
        try:
            result = analyse(model, frame, config, clock)
        except Exception as exc:  # noqa: BLE001 - a bad frame or model must not end the feed
            msg = f"analysis failed: {exc}"
            if msg != last_error:
                log.exception("live analysis failed")
                on_error(msg)
                last_error = msg
            continue
        last_error = None
        emit(result)

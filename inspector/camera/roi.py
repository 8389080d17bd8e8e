"""Region of interest and tiling: a rectangle on a frame, and its cover by model-sized tiles."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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


def _tile_starts(length: int, tile: int) -> list[int]:
    if length <= tile:
        return [0]
    n = math.ceil(length / tile)
    return [int(round(i * (length - tile) / (n - 1))) for i in range(n)]


MAX_TILES = 64          # tiles per frame at most: tiny tiles on a big frame are made larger
CLASSIFY_CHUNK = 32     # tiles per classify call (bounded memory however many tiles there are)


def tile_count(w: int, h: int, tile: int) -> int:
    """How many tiles :func:`tile_grid` makes for a ``w`` x ``h`` region."""
    return len(_tile_starts(w, tile)) * len(_tile_starts(h, tile))


def fit_tile(w: int, h: int, tile: int, max_tiles: int = MAX_TILES) -> int:
    """``tile``, or the smallest larger tile size that covers a ``w`` x ``h`` region with at
    most ``max_tiles`` tiles."""
    tile = max(1, int(tile))
    if tile_count(w, h, tile) <= max_tiles:
        return tile
    lo, hi = tile, max(w, h, tile)  # tile_count(hi) == 1; the count never grows with the size
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if tile_count(w, h, mid) <= max_tiles:
            hi = mid
        else:
            lo = mid
    return hi


def tile_grid(roi: Roi, tile: int) -> tuple[list[Roi], int, int]:
    """Model-sized tiles covering ``roi``: (tiles in frame pixels, row-major; rows; cols).

    Tiles are ``tile`` x ``tile`` pixels; where the ROI is not a multiple of ``tile`` they overlap
    evenly rather than running off the edge, so every tile is full of image. A side shorter than
    ``tile`` gets one tile of that side's length."""
    if tile < 1:
        raise ValueError("tile size must be at least 1 pixel")
    xs, ys = _tile_starts(roi.w, tile), _tile_starts(roi.h, tile)
    tw, th = min(tile, roi.w), min(tile, roi.h)
    tiles = [Roi(roi.x + x, roi.y + y, tw, th) for y in ys for x in xs]
    return tiles, len(ys), len(xs)

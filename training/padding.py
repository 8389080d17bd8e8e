"""Padding left around a frame's surface by software, filled before the model reads the frame.

A frame that software has turned (de-skewed line-scan images, ``PIL.Image.rotate``,
``cv2.warpAffine``: their default fills the corners with black), letterboxed to a square, or
pasted onto a larger canvas, has regions of one exact colour at its border that no camera
makes. The model has never seen such fill; it reads the straight edge between fill and surface
as a defect (bundled 1.4.0: frames turned by 10-45 degrees with black corners 32-46% right,
letterbox bars 26-74%; docs/robustness.md, "Padding around the surface"). Here the fill is found
and replaced by the surface next to it, mirrored, at the same scale: the largest axis-aligned
rectangle of surface is kept where it is and reflected out to the frame's edges, as the
training recipe's wider views and turns continue a surface.

What counts as padding, so that no real surface is taken for it (none of the NEU and
magnetic-tile images is, nor any NEU test image under the camera shifts of ``training.shifts``
and ``benchmarks/bench_other_shifts.py``; over all NEU images, JPEG 20-60 makes 5-6% of two
inclusion images count):

* two corners (or more) on one side of the frame are one exact colour (a ``CORNER`` x
  ``CORNER`` block, every channel), the same colour: JPEG flattens single corners (8x8 blocks
  of one value) and clipped highlights touch one corner, each in its own value (once two
  opposite corners, at 1.5% of the frame);
* or fill in one corner only (a tile of a large de-skewed frame, at the thin end of the turn's
  wedge) whose edge is one straight slanted line (``straight_oblique_edge``): a corner that
  JPEG flattened has a staircase edge of 8x8 blocks, a highlight a ragged one;
* the fill connected to those corners covers at least ``MIN_SHARE`` of the frame (JPEG's flat
  corners, two or three of one value, reach 1.5%), or ``MIN_SHARE_ALL`` when all four corners
  are the one colour (never seen from JPEG; a turn leaves 0.83% of the frame a degree, and by
  3 degrees the bundled model already reads 83% of NEU test frames right, by 2 degrees 98.6%);
* what is left is convex, as a turned or cropped rectangle is (a saturated highlight's ragged
  edge is not);
* a turned frame saved as JPEG (whose fill is no longer one exact colour next to its edge) is
  found by the pattern a turn leaves (``_compressed_turn``): all four corners nearly one colour,
  each a wedge within ``NEAR`` levels of it that keeps to its corner, its edge a straight line,
  the four slants those of one turn;
* it is filled when the rectangle kept is at least ``MIN_SIDE`` of the frame each way; a frame
  with less surface (or of one colour throughout: all padding) is left as it is, its share of
  padding reported (``inspector.tiles`` then lets its other tiles decide).

Qt-free and pure.
"""
from __future__ import annotations

import functools

import numpy as np

CORNER = 3          # side of the block at each corner that must be one exact colour
MIN_SHARE = 0.03    # least share of the frame the fill covers
MIN_SHARE_ALL = 0.01   # the same when all four corners are one colour (a turn: 0.83% a degree)
MIN_SIDE = 0.25     # least side of the surface kept, as a share of the frame's side
MARGIN = 2          # pixels of surface next to the fill dropped with it (blended by a resize)
HULL_SLACK = 0.01   # share of the surface's convex hull the fill may cover (pixel steps)
MOSTLY = 0.5        # a frame (tile) with this share of padding or more is mostly padding
MAX_FILL = 0.75     # a frame with more padding than this is left as it is (an object on a
                    # plain background, not a surface: mirroring it would make one up)
# a turned frame saved as JPEG (``_compressed_turn``)
NEAR = 24           # levels from a corner's colour that count as its fill
FLAT_NEAR = 8       # levels a corner block may vary by
TURN_RMS = 2.5      # px: RMS distance of a wedge's edge from its straight line (JPEG 30, 45
                    # degrees: up to 2.05)
TURN_SLANT = 3.0    # degrees the four wedges' slants may differ from one turn's
RING = 3            # px of JPEG ringing along a wedge's edge dropped with it
_MARGIN_KERNEL = np.ones((2 * MARGIN + 1, 2 * MARGIN + 1), np.uint8)


def _corner_colours(a: np.ndarray) -> list[tuple[tuple[int, int], tuple]]:
    """((y, x) of the corner pixel, colour) of each corner whose block is one exact colour."""
    h, w = a.shape[:2]
    ys, xs = _corner_blocks(h, w)
    px = a[ys, xs].reshape(4, CORNER * CORNER, -1)
    flat = (px == px[:, :1]).reshape(4, -1).all(axis=1)
    return [(corner, tuple(px[k, 0].tolist()))
            for k, corner in enumerate(((0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)))
            if flat[k]]


def _on_one_side(points: list[tuple[int, int]]) -> bool:
    """Whether two of these corners lie on one side of the frame (the same row or column):
    fill on two opposite corners only is no pad that software makes."""
    return any(p[0] == q[0] or p[1] == q[1] for i, p in enumerate(points) for q in points[i + 1:])


def straight_oblique_edge(fill: np.ndarray, min_points: int = 20) -> bool:
    """Whether the edge between a region of fill and the rest of the frame is one straight
    line at a slant (1-89 degrees; fitted to its pixels inside the frame, RMS distance under a
    pixel): the corner a turn leaves in one tile of a de-skewed frame (RMS 0.3 px), not a corner
    that JPEG flattened (8x8 blocks: 3-5 px)."""
    return edge_line(fill, 1.0, min_points) is not None


def edge_line(fill: np.ndarray, max_rms: float, min_points: int = 20) -> float | None:
    """The slant in degrees (1-89) of the edge between a region of fill and the rest of the
    frame when it is one straight line (fitted to its pixels inside the frame, RMS distance
    under ``max_rms`` px), else None."""
    import cv2

    h, w = fill.shape
    m = fill.astype(np.uint8)
    edge = m.astype(bool) & ~cv2.erode(m, np.ones((3, 3), np.uint8),
                                       borderType=cv2.BORDER_REPLICATE).astype(bool)
    edge[0], edge[-1], edge[:, 0], edge[:, -1] = False, False, False, False
    ys, xs = np.nonzero(edge)
    if len(ys) < min_points:
        return None
    pts = np.stack([xs, ys], axis=1).astype(np.float32)
    vx, vy, x0, y0 = cv2.fitLine(pts, cv2.DIST_L2, 0, 0.01, 0.01).ravel()
    rms = float(np.sqrt(np.mean(((pts[:, 0] - x0) * vy - (pts[:, 1] - y0) * vx) ** 2)))
    slant = float(np.degrees(np.arctan2(abs(vy), abs(vx))))
    return slant if rms < max_rms and 1.0 <= slant <= 89.0 else None


def _in_its_corner(part: np.ndarray, y: int, x: int) -> bool:
    """Whether fill in the corner at (y, x) touches only that corner's two edges of the frame,
    as a turn's wedge does (a region reaching the far edges is surface, not a wedge)."""
    far_row = part[-1] if y == 0 else part[0]
    far_col = part[:, -1] if x == 0 else part[:, 0]
    return not far_row.any() and not far_col.any()


def padding_mask(image: np.ndarray) -> np.ndarray | None:
    """(H, W) bool: the frame's padding (see the module's rules), or None when it has none."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    h, w = a.shape[:2]
    if a.ndim != 3 or min(h, w) < 4 * CORNER:
        return None
    corners = _corner_colours(a)
    mask = _exact_fill(a, corners) if corners else None
    if mask is None and _near_flat_corners(a):
        mask = _compressed_turn(a)
    return mask


def _exact_fill(a: np.ndarray, corners: list) -> np.ndarray | None:
    """The padding of one exact colour (the module's rules), or None."""
    import cv2

    h, w = a.shape[:2]
    colours = [v for v in {v for _, v in corners} if _on_one_side([p for p, u in corners if u == v])]
    # else the fill of single corners, taken only where its edge is one oblique straight line
    single = not colours
    if single:
        colours = list({v for _, v in corners})
    mask = np.zeros((h, w), bool)
    for v in colours:
        # the exact colour: a tolerance here (tried: black within 24 levels) ran into dark
        # surface next to the fill, which then failed the convexity rule (NEU with black bars:
        # 1,599 of 1,650 filled against 1,648), and took dim frames and dark corners for fill;
        # a turned frame saved as JPEG is found by the pattern of its wedges instead
        # (``_compressed_turn``)
        same = np.ones((h, w), bool)
        for c, value in enumerate(v):   # channel by channel: far faster than all(axis=-1)
            same &= a[..., c] == value
        same = same.view(np.uint8)
        _, labels = cv2.connectedComponents(same, connectivity=4)
        for (y, x), u in corners:
            if u == v:
                part = labels == labels[y, x]
                if single and not (straight_oblique_edge(part) and _in_its_corner(part, y, x)):
                    continue
                mask |= part
    share = float(mask.mean())
    four = len(corners) == 4 and len({v for _, v in corners}) == 1
    if share < (MIN_SHARE_ALL if four else MIN_SHARE):
        return None
    if share >= 1.0:
        return mask   # one colour throughout: nothing but fill (a blank frame or tile)
    return mask if _surface_convex(mask) else None


def _surface_convex(mask: np.ndarray) -> bool:
    """Whether the surface left beside the fill is convex (within ``HULL_SLACK``), as a turned
    or cropped rectangle is; a natural flat region inside the surface is not a pad."""
    import cv2

    h, w = mask.shape
    surface = (~mask).astype(np.uint8)
    contours, _ = cv2.findContours(surface, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.concatenate(contours)), 1)
    hull = cv2.erode(hull, _MARGIN_KERNEL).astype(bool)
    return bool((mask & hull).sum() <= HULL_SLACK * max(1, int(hull.sum())))


def _near_flat_corners(a: np.ndarray) -> bool:
    """Whether all four corner blocks are nearly flat (within ``FLAT_NEAR`` levels) and of
    nearly one colour (within ``NEAR``): the corners of a turned frame saved as JPEG. 8-bit
    frames only (the levels are 8-bit levels; the app and training fill the 8-bit model input)."""
    if a.dtype != np.uint8:
        return False
    ys, xs = _corner_blocks(*a.shape[:2])
    px = a[ys, xs].reshape(4, CORNER * CORNER, -1).astype(np.int16)
    if (px.max(axis=1) - px.min(axis=1)).max() > FLAT_NEAR:
        return False
    med = np.median(px, axis=1).astype(np.int16)
    return bool((med.max(axis=0) - med.min(axis=0)).max() <= NEAR)


def _corner_medians(a: np.ndarray) -> np.ndarray:
    """(4, C) int16: the median colour of each corner block (top left, top right, bottom left,
    bottom right)."""
    ys, xs = _corner_blocks(*a.shape[:2])
    px = a[ys, xs].reshape(4, CORNER * CORNER, -1)
    return np.median(px, axis=1).astype(np.int16)


def _one_turn(slants: list[float], tolerance: float) -> bool:
    """Whether the slants (degrees) of the four corners' fill (top left, top right, bottom left,
    bottom right) are those of one turn: top left and bottom right at one angle, the other two
    at 90 degrees less it, within ``tolerance``."""
    tl, tr, bl, br = slants
    return (abs(tl - br) <= tolerance and abs(tr - bl) <= tolerance
            and abs(tl + tr - 90) <= tolerance)


def _border_runs_of_a_turn(a: np.ndarray, colours: list[np.ndarray]) -> bool:
    """A quick look before ``_compressed_turn``'s: along the frame's edges, each corner's fill
    runs some way along both of its edges but not all the way, and the slants these runs make
    are roughly those of one turn (within 15 degrees; the wedges' edges decide exactly)."""
    h, w = a.shape[:2]

    def run(line: np.ndarray, colour: np.ndarray) -> int:
        near = (np.abs(line.astype(np.int16) - colour) <= NEAR).all(axis=-1)
        return int(near.argmin()) if not near.all() else len(near)

    top, bottom, left, right = a[0], a[-1], a[:, 0], a[:, -1]
    runs = (   # (along the top or bottom edge, along the left or right edge) from each corner
        (run(top, colours[0]), run(left, colours[0])),
        (run(top[::-1], colours[1]), run(right, colours[1])),
        (run(bottom, colours[2]), run(left[::-1], colours[2])),
        (run(bottom[::-1], colours[3]), run(right[::-1], colours[3])))
    if any(not (2 <= across < w and 2 <= down < h) for across, down in runs):
        return False
    return _one_turn([float(np.degrees(np.arctan2(down, across))) for across, down in runs], 15)


def _compressed_turn(a: np.ndarray) -> np.ndarray | None:
    """The fill of a turned frame that was then saved compressed (JPEG), or None: its corners
    are no longer one exact colour (JPEG rings next to the fill's edge), so fill is taken within
    ``NEAR`` levels of each corner's colour, but only in the pattern a turn leaves: each of the
    four corners a wedge that keeps to its corner, its edge one straight line (RMS under
    ``TURN_RMS`` px), the four slants those of one turn (top left and bottom right at one
    angle, the other two at 90 degrees less it, within ``TURN_SLANT`` degrees). The wedges are
    widened by ``RING`` px, the JPEG ringing along their edge."""
    import cv2

    h, w = a.shape[:2]
    corners = ((0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1))
    colours = list(_corner_medians(a))
    if not _border_runs_of_a_turn(a, colours):
        return None
    wide = a.astype(np.int16)
    mask = np.zeros((h, w), bool)
    slants = []
    for (y, x), colour in zip(corners, colours):
        near = (np.abs(wide - colour) <= NEAR).all(axis=-1)
        _, labels = cv2.connectedComponents(near.view(np.uint8), connectivity=4)
        part = labels == labels[y, x]
        if not _in_its_corner(part, y, x):
            return None
        slant = edge_line(part, TURN_RMS)
        if slant is None:
            return None
        slants.append(slant)
        mask |= part
    if not _one_turn(slants, TURN_SLANT):
        return None
    if mask.mean() < MIN_SHARE_ALL:
        return None
    mask = cv2.dilate(mask.view(np.uint8), np.ones((2 * RING + 1, 2 * RING + 1), np.uint8)
                      ).astype(bool)
    return mask if _surface_convex(mask) else None


def largest_rectangle(ok: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, x0, y1, x1) of the largest axis-aligned rectangle of True in a mask, or None when it
    has none. Fast (numpy over rows) when each row is one run of True, as in a convex region;
    otherwise row by row with a stack (``_largest_rectangle_any``, tens of ms at 200x200)."""
    h, w = ok.shape
    any_ = ok.any(axis=1)
    left = np.where(any_, ok.argmax(axis=1), w)
    right = np.where(any_, w - ok[:, ::-1].argmax(axis=1), 0)
    if (ok.sum(axis=1) != np.maximum(right - left, 0)).any():   # a row of several runs
        return _largest_rectangle_any(ok)
    best, where = 0, None
    for y0 in np.flatnonzero(any_):
        lo = np.maximum.accumulate(left[y0:])
        hi = np.minimum.accumulate(right[y0:])
        area = np.maximum(hi - lo, 0) * np.arange(1, h - y0 + 1)
        k = int(area.argmax())
        if area[k] > best:
            best, where = int(area[k]), (int(y0), int(lo[k]), int(y0) + k + 1, int(hi[k]))
    return where


def _largest_rectangle_any(ok: np.ndarray) -> tuple[int, int, int, int] | None:
    """``largest_rectangle`` for any mask: the largest rectangle under each row's histogram of
    True above it (the classic stack method)."""
    h, w = ok.shape
    heights = np.zeros(w, np.int64)
    best, where = 0, None
    for y in range(h):
        heights = np.where(ok[y], heights + 1, 0)
        row = heights.tolist() + [0]
        stack: list[tuple[int, int]] = []   # (start column, height), heights increasing
        for x, cur in enumerate(row):
            start = x
            while stack and stack[-1][1] >= cur:
                s, hh = stack.pop()
                if hh * (x - s) > best:
                    best, where = hh * (x - s), (y - hh + 1, s, y + 1, x)
                start = s
            stack.append((start, cur))
    return where


def fill_padding(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The frame with its padding replaced by the surface beside it, mirrored, and the share of
    the frame that is padding; the frame itself and 0.0 when it has none. A frame with too
    little surface to mirror (under ``MIN_SIDE`` either way) is returned as it is, with its
    share of padding (a tile that is mostly padding: ``inspector.tiles.deciding_tile``)."""
    a = np.asarray(image)
    mask = padding_mask(a)
    if mask is None:
        return a, 0.0
    import cv2

    h, w = mask.shape
    share = float(mask.mean())
    ok = cv2.erode((~mask).astype(np.uint8), _MARGIN_KERNEL,
                   borderType=cv2.BORDER_REPLICATE).astype(bool)
    rect = largest_rectangle(ok)
    if rect is None:
        return a, share
    y0, x0, y1, x1 = rect
    if y1 - y0 < MIN_SIDE * h or x1 - x0 < MIN_SIDE * w or share > MAX_FILL:
        return a, share
    pad = [(y0, h - y1), (x0, w - x1)] + [(0, 0)] * (a.ndim - 2)
    # reflected about the edge pixel, as the training recipe's turns and wider views continue a
    # surface (numpy's "reflect" is OpenCV's BORDER_REFLECT_101)
    return np.pad(a[y0:y1, x0:x1], pad, mode="reflect"), share


@functools.lru_cache(maxsize=16)
def _corner_blocks(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the four corner blocks (``CORNER`` x ``CORNER``), corner by
    corner: top left, top right, bottom left, bottom right."""
    r = np.arange(CORNER)
    ys, xs = [], []
    for y0, x0 in ((0, 0), (0, w - CORNER), (h - CORNER, 0), (h - CORNER, w - CORNER)):
        yy, xx = np.meshgrid(y0 + r, x0 + r, indexing="ij")
        ys.append(yy.ravel())
        xs.append(xx.ravel())
    return np.concatenate(ys), np.concatenate(xs)


def fill_padding_batch(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fill_padding`` over an (N, H, W[, C]) batch: the batch (the same array when no frame
    was filled) and each frame's share of padding. The corners are looked at for the whole
    batch at once, so a batch without any costs a few microseconds."""
    x = np.asarray(images)
    shares = np.zeros(len(x), np.float64)
    if x.ndim < 3 or len(x) == 0 or min(x.shape[1:3]) < 4 * CORNER:
        return x, shares
    # the CORNER x CORNER block at each corner, for the whole batch in one gather; the frames
    # with a block of one colour are looked at further (fill_padding)
    ys, xs = _corner_blocks(*x.shape[1:3])
    px = x[:, ys, xs].reshape(len(x), 4, CORNER * CORNER, -1)
    exact = (px == px[:, :, :1]).reshape(len(x), 4, -1).all(axis=2).any(axis=1)
    # or all four nearly flat and of nearly one colour (a turned frame saved as JPEG)
    # (the medians _near_flat_corners compares lie within each block's range: NEAR between
    # them allows 2 x FLAT_NEAR more between the blocks' extremes)
    lo, hi = px.min(axis=2).astype(np.int32), px.max(axis=2).astype(np.int32)   # (N, 4, C)
    near = ((hi - lo).max(axis=(1, 2)) <= FLAT_NEAR) \
        & ((hi.max(axis=1) - lo.min(axis=1)).max(axis=1) <= NEAR + 2 * FLAT_NEAR) \
        & (x.dtype == np.uint8)
    maybe = np.flatnonzero(exact | near)
    out = x
    for i in maybe:
        filled, shares[i] = fill_padding(x[i])
        if shares[i] and not np.shares_memory(filled, x):   # filled, not only found
            if out is x:
                out = x.copy()
            out[i] = filled
    return out, shares

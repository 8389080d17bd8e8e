"""Plain BMP files read with numpy: the format many line and area cameras save, and NEU's.

Pillow reads a 200x200 grey BMP in about 0.2 ms, most of it Python around a few microseconds of
copying (opening the file through its plugin registry, the header, the palette check, the
conversion to RGB); in ``inspector classify`` that was a tenth of each image's time on a
core. ``read_plain_bmp`` gives the same array as ``training.images.decode_image`` through
Pillow, bit for bit (``tests/test_images.py`` compares them), for the common layouts only:
uncompressed 8-bit with a palette of 3..256 colours and uncompressed 24-bit, bottom-up or
top-down, with a BITMAPINFOHEADER (40 bytes) or a later one. Anything else (RLE, bit fields,
1/4/16/32-bit, OS/2 headers, a palette of two colours, a truncated or implausible file) gives
None, and the caller reads the file through Pillow, whose messages name the problem.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SUFFIXES = (".bmp", ".dib")
_HEADERS = (40, 52, 56, 64, 108, 124)   # BITMAPINFOHEADER to BITMAPV5HEADER, as Pillow reads them
_GREY = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1)   # index i -> (i, i, i)
_GREY_PALETTE = bytes(b for i in range(256) for b in (i, i, i, 0))   # as most writers save it


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")


_HEAD = 14 + max(_HEADERS)   # the file header and the largest info header


def _layout(head: bytes, max_pixels: int | None) -> tuple[int, int, int, int, bool] | None:
    """(header size, width, height, bits, top-down) of a plain BMP's first ``_HEAD`` bytes (or
    all of a shorter file), or None for any other file. Read as Pillow reads it: the width and
    height unsigned, and the image top-down when the height's top byte is 0xFF (a negative
    height up to 2^24 rows; any other "negative" height is a huge unsigned one, which Pillow
    refuses, and so does ``max_pixels`` here)."""
    if len(head) < 54 or head[:2] != b"BM":
        return None
    header = _u32(head, 14)
    if header not in _HEADERS or len(head) < 14 + header:
        return None
    width, height = _u32(head, 18), _u32(head, 22)
    top_down = head[25] == 0xFF
    if top_down:
        height = 2 ** 32 - height
    bits, compression = int.from_bytes(head[28:30], "little"), _u32(head, 30)
    if compression != 0 or bits not in (8, 24) or width == 0 or height == 0:
        return None
    if max_pixels is not None and width * height > max_pixels:
        return None
    return header, width, height, bits, top_down


def read_plain_bmp(path: str | Path, max_pixels: int | None) -> np.ndarray | None:
    """An uncompressed 8- or 24-bit BMP file as an HxWx3 uint8 RGB array (a grey palette's
    indices as grey, any other palette looked up), or None for any other file (the caller
    reads it through Pillow). ``max_pixels``: a larger image gives None (Pillow's
    decompression-bomb limit then speaks), told from the header before the rest is read.
    OSError from reading the file propagates."""
    with open(path, "rb") as f:
        head = f.read(_HEAD)
        layout = _layout(head, max_pixels)
        if layout is None:
            return None
        return _pixels(head + f.read(), *layout)


def _pixels(data: bytes, header: int, width: int, height: int, bits: int,
            top_down: bool) -> np.ndarray | None:
    """The pixels of a file whose header ``_layout`` read, or None (see ``read_plain_bmp``)."""
    offset = _u32(data, 10)
    lut = None
    if bits == 8:
        colours = _u32(data, 46) or 256
        if not 2 < colours <= 256:
            return None
        palette_at = 14 + header
        if len(data) < palette_at + 4 * colours:
            return None
        if offset == palette_at:   # an offset that leaves out the palette: Pillow skips it too
            offset += 4 * colours
        palette = np.frombuffer(data, np.uint8, 4 * colours, palette_at).reshape(colours, 4)
        if data[palette_at:palette_at + 4 * colours] != _GREY_PALETTE[:4 * colours] \
                and not np.array_equal(palette[:, :3], _GREY[:colours]):
            if colours != 256:   # indices beyond a short palette: left to Pillow
                return None
            lut = np.ascontiguousarray(palette[:, 2::-1])   # BGRX -> RGB, a table per channel
    stride = ((width * bits + 31) >> 3) & ~3
    if offset < 14 + header or offset + stride * height > len(data):
        return None
    import cv2   # its channel shuffles take 5-8 us for 200x200 against numpy's 35-140

    rows = np.frombuffer(data, np.uint8, stride * height, offset).reshape(height, stride)
    if not top_down:
        rows = rows[::-1]
    if bits == 24:
        return cv2.cvtColor(rows[:, :3 * width].reshape(height, width, 3), cv2.COLOR_BGR2RGB)
    grey = cv2.cvtColor(rows[:, :width], cv2.COLOR_GRAY2RGB)
    return grey if lut is None else cv2.LUT(grey, lut[None])

"""Reading images into the model's input format: RGB uint8, resized to the model input.

Shared by training and the inspector so that both see exactly the same pixels. Qt-free.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from . import bmp
from .cancel import Cancelled

# Pillow warns from 89 megapixels on (and refuses from 179): a line-scan frame of that size is
# expected here (it is tiled, inspector.tiles); only the refusal stays, reported per file
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

IMAGE_SUFFIXES = (".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff")
# the formats Pillow may read for them, whatever a file's name says: a PostScript file named
# x.png was handed to Pillow's EPS plugin, which runs Ghostscript on it
PILLOW_FORMATS = ("BMP", "DIB", "PNG", "JPEG", "TIFF")   # JPEG opens MPO files too


# image formats a camera or a colleague may save that the inspector does not read: said when
# a folder holds some, not skipped without a word (other files - results, notes - are ignored)
OTHER_IMAGE_SUFFIXES = frozenset((".webp", ".jfif", ".jpe", ".dib", ".gif", ".jp2", ".j2k",
                                  ".pgm", ".ppm", ".pbm", ".pnm", ".raw", ".dng", ".heic", ".heif",
                                  ".avif", ".jxl", ".tga", ".exr", ".hdr", ".pcx", ".cr2", ".nef"))


def other_images_text(files: Sequence[str]) -> str | None:
    """What ``scan_images`` left out that is an image of another format (``files``, its
    ``others``), in words (None: nothing): "2 image file(s) of other formats are left out
    (2 .webp: a.webp, b.webp): ...", the first three named."""
    if not files:
        return None
    files = sorted(map(str, files))
    found = Counter(os.path.splitext(f)[1].lower() for f in files)
    kinds = ", ".join(f"{n} {s}" for s, n in found.most_common(5))
    named = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return (f"{len(files)} image file(s) of other formats are left out ({kinds}: {named}): "
            "the inspector reads BMP, PNG, JPEG and TIFF; convert them to one")


# folder names Windows refuses (also with a suffix: con.txt): a class of that name cannot be
# copied to a Windows PC, where the packaged app also runs
WINDOWS_RESERVED_NAMES = frozenset({"con", "prn", "aux", "nul",
                                    *(f"com{i}" for i in range(1, 10)),
                                    *(f"lpt{i}" for i in range(1, 10))})


def natural_key(name: str) -> list:
    """Sorts "img2" before "img10": the name's runs of decimal digits as numbers. Only what the
    pattern takes as digits is read as a number ("²" is a digit to ``str.isdigit`` but no
    number: a file named "img1²2.jpg" kept a whole folder from opening)."""
    parts = re.split(r"(\d+)", name)
    return [int(t) if i % 2 else t.lower() for i, t in enumerate(parts)]


def is_windows_reserved(name: str) -> bool:
    """Whether Windows refuses ``name`` for a file or folder, whatever follows the dot."""
    return name.split(".")[0].strip().lower() in WINDOWS_RESERVED_NAMES


class UnsupportedPixels(Exception):
    """Pixel data a conversion cannot scale to an image (the decoder names the file)."""


class ImageReadError(Exception):
    """An image that cannot be read; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def class_folders(root: str | Path) -> list[Path]:
    """The class sub-folders of a data folder, sorted by name; hidden ones (".name") skipped."""
    return sorted((p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)


def listing_problem(exc: OSError) -> str:
    """A folder that cannot be listed, in words: "FOLDER: cannot list it (permission denied)"."""
    reason = exc.strerror.lower() if exc.strerror else str(exc)
    return f"{exc.filename}: cannot list this folder ({reason}); its images are left out"


def walk_files(folder: str | Path, should_stop=lambda: False,
               problems: list[OSError] | None = None) -> Iterator[tuple[str, str]]:
    """(path relative to ``folder``, full path) of every file in a folder and its sub-folders,
    as strings, sub-folders in name order; hidden files and folders (".name") skipped. Folders
    that are symbolic links (a share mounted into the tree) are followed, each real folder
    once, so that a link to a folder above never loops. Raises Cancelled when
    ``should_stop()`` turns true (a huge folder chosen by mistake). A folder that cannot be
    listed (permission denied, a share gone) raises its OSError, or with ``problems`` is
    added there (``listing_problem`` says it in words) and the walk goes on."""
    base = os.fspath(folder)
    seen: set[str] = set()   # real paths (not inode numbers: some network shares give 0)

    def failed(exc: OSError) -> None:
        if problems is None:
            raise exc
        problems.append(exc)

    for dirpath, dirnames, filenames in os.walk(base, followlinks=True, onerror=failed):
        if should_stop():
            raise Cancelled("cancelled while listing images")
        real = os.path.normcase(os.path.realpath(dirpath))
        if real in seen:   # reached again through a link (or a link back up: a loop)
            dirnames[:] = []
            continue
        seen.add(real)
        # the real sub-folders first, then the links: a folder is listed under its own path
        # when it is both in the tree and linked to, whatever order the file system gives
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")),
                             key=lambda d: (os.path.islink(os.path.join(dirpath, d)), d))
        rel_dir = os.path.relpath(dirpath, base)
        rel_dir = "" if rel_dir == "." else rel_dir + os.sep
        for f in filenames:   # a broken link too: reading it then names the problem
            if not f.startswith("."):
                yield rel_dir + f, os.path.join(dirpath, f)


def files_under(folder: str | Path, should_stop=lambda: False,
                problems: list[OSError] | None = None) -> list[Path]:
    """Every file in a class folder and its sub-folders, sorted (``walk_files``, ``problems``
    as there): the one listing that training and the data checks share."""
    return sorted(Path(full) for _, full in walk_files(folder, should_stop, problems))


def sensor_full_scale(max_value: float) -> float:
    """Full scale of high-bit-depth data: 10-, 12- and 14-bit cameras store their pixels in
    16-bit files, so the smallest of 255, 1023, 4095, 16383, 65535 that holds the brightest
    pixel is taken as white (dividing 12-bit data by 65535 gives an almost black image)."""
    for full in (255.0, 1023.0, 4095.0, 16383.0, 65535.0):
        if max_value <= full:
            return full
    # 32-bit integer files (a few scientific cameras, image processing software): the next
    # power of two less one, as for the 16-bit depths, counted in integers (2^31 - 1 is 2^31
    # in float32, whose next power would be 2^32)
    return float((1 << int(max_value).bit_length()) - 1)


def to_uint8(arr: np.ndarray, full: float | None = None) -> np.ndarray:
    """Pixel values as uint8, the one conversion of every path (files, camera frames, model
    inputs): 16-bit (any integer) data scaled so that the sensor's full scale is white
    (``sensor_full_scale``, or ``full`` where the caller knows it: a camera stream keeps one
    for all its frames), uint8 as it is, anything else clipped to 0..255."""
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind in "ui":
        if full is None:
            full = sensor_full_scale(int(arr.max(initial=0)))   # the integer: exact
        a = arr.astype(np.float32)   # the same arithmetic in place: one copy, not five
        a /= full
        a *= 255.0
        a += 0.5
        return np.clip(a, 0, 255, out=a).astype(np.uint8)
    return np.clip(arr, 0, 255).astype(np.uint8)


# An image is in colour when its channels differ by at least this many grey levels on average
# (per pixel, the largest channel less the smallest): a grey image keeps equal channels, and one
# that went through a colour JPEG keeps them within a level or so.
COLOUR_CHROMA = 2.0
# a data set is in colour when at least this share of its images is
COLOUR_SHARE = 0.1


def chroma(images: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Each image's mean chroma: per pixel the largest channel less the smallest, averaged over
    the image (0 for a grey image). ``images``: (N, H, W, 3), any numeric dtype."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] < 2 or len(images) == 0:
        return np.zeros(len(images) if images.ndim else 0, np.float32)
    out = np.empty(len(images), np.float32)
    for i in range(0, len(images), chunk):   # bounded memory for a whole data set
        part = images[i:i + chunk].astype(np.float32)
        out[i:i + chunk] = (part.max(axis=-1) - part.min(axis=-1)).mean(axis=(1, 2))
    return out


def image_chroma(arr: np.ndarray, max_side: int = 200) -> float:
    """One image's mean chroma (``chroma``) as training sees it: a larger image shrunk first
    (area filter) to ``max_side``, the model's input, which averages a colour sensor's pixel
    noise away as training's resizing does. 0.0 for a grey (2-D or one-channel) image."""
    arr = np.asarray(arr)
    if arr.ndim != 3 or arr.shape[-1] < 2 or arr.size == 0:
        return 0.0
    return float(chroma(shrink_to(arr[..., :3], max_side)[None])[0])


def colour_share(images: np.ndarray) -> float:
    """The share of ``images`` in colour (``COLOUR_CHROMA``); 0.0 for none."""
    c = chroma(images)
    return float((c >= COLOUR_CHROMA).mean()) if len(c) else 0.0


def in_colour(images: np.ndarray) -> bool:
    """Whether a data set's images are in colour (``COLOUR_SHARE`` of them or more)."""
    return colour_share(images) >= COLOUR_SHARE


def _three(grey: np.ndarray) -> np.ndarray:
    """An HxW grey array as HxWx3 (uint8 through OpenCV: 5 us for 200x200 against np.stack's
    35; anything else, and an empty array, which OpenCV refuses, through numpy)."""
    if grey.dtype != np.uint8 or grey.size == 0:
        return np.stack((grey, grey, grey), axis=-1)
    import cv2

    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)


def _to_uint8_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow image (8/16-bit, grey, palette, alpha) as an HxWx3 uint8 array."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img)
        if img.mode == "I" and arr.size and int(arr.min()) < 0:
            # signed data, or unsigned 32-bit values above 2^31 that Pillow reads as negative
            raise UnsupportedPixels("holds negative pixel values (signed or unsigned 32-bit "
                                    "data, which cannot be told apart); save it as an 8- or "
                                    "16-bit image")
        return _three(to_uint8(arr))
    if img.mode == "F":
        arr = np.array(img, dtype=np.float64)   # its own copy, worked on in place (a float
        # frame at the pixel limit peaked at 34 bytes a pixel through the copies)
        finite = np.isfinite(arr)
        if arr.size and not finite.any():
            raise UnsupportedPixels("holds no pixel values that are numbers (NaN or infinity "
                                    "everywhere)")
        # a few dead pixels stored as NaN or infinity do not decide the scale: the numbers do
        numbers = arr if finite.all() else arr[finite]
        lo, hi = float(numbers.min(initial=0)), float(numbers.max(initial=1))
        del numbers, finite
        np.nan_to_num(arr, copy=False, nan=lo, posinf=hi, neginf=lo)
        arr -= lo
        arr /= max(hi - lo, 1e-12)
        arr *= 255.0
        arr += 0.5
        return _three(arr.astype(np.uint8))
    if img.mode in ("L", "1"):
        arr = np.asarray(img.convert("L"), dtype=np.uint8)
        return _three(arr)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def _native_depth(img: Image.Image) -> np.ndarray:
    """A 16-bit grey image as an HxW uint16 array as stored; any other image as
    ``_to_uint8_rgb`` gives it."""
    if img.mode in _SIXTEEN_BIT_MODES or img.mode == "I":
        lo, hi = img.getextrema()
        if lo >= 0 and hi <= 65535:
            return np.asarray(img).astype(np.uint16)
    return _to_uint8_rgb(img)


_SIXTEEN_BIT_COLOUR = ("RGB;16", "RGBA;16", "RGBX;16")   # rawmode prefixes, 16 bits a sample


def _rawmode(tile) -> str:
    args = getattr(tile, "args", None)
    return str(args[0] if isinstance(args, tuple) and args else args or "")


def _sixteen_bit_colour(img: Image.Image, page: int) -> bool:
    """Whether ``img`` is a colour file of 16 bits a sample (48/64-bit PNG, RGB 16-bit TIFF),
    which Pillow reads as 8-bit by each sample's high byte (12-bit data, 0..4095, came out
    0..15: black, and was classified without a word): :func:`_read_sixteen_bit_colour` reads
    it instead. Not a 16-bit pixel of 5-6-5 bits (a BMP's "BGR;16", which OpenCV reads as
    8-bit), nor a page other than the first (OpenCV decodes the first page: a camera's
    thumbnail)."""
    return (page == 0 and img.format in ("PNG", "TIFF") and img.mode in ("RGB", "RGBA")
            and any(_rawmode(t).startswith(_SIXTEEN_BIT_COLOUR) for t in (img.tile or ())))


def _read_sixteen_bit_colour(path: Path) -> np.ndarray:
    """A 16-bit colour file's samples as stored, scaled to the sensor's full scale as grey
    16-bit files are (``to_uint8``)."""
    import cv2

    data = np.fromfile(path, np.uint8)   # not cv2.imread: a non-ASCII path on Windows
    # not IMREAD_UNCHANGED, which ignores an EXIF orientation (a PNG's eXIf): turned as
    # Pillow's path turns it (_upright); an alpha channel is dropped, as there
    arr = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3:
        raise UnsupportedPixels("a 16-bit colour image OpenCV cannot read; save it as 8-bit "
                                "or 16-bit grey")
    rgb = arr[..., 2::-1] if arr.shape[2] >= 3 else np.repeat(arr[..., :1], 3, axis=2)
    return to_uint8(np.ascontiguousarray(rgb))


def decode_image(path: str | Path) -> np.ndarray:
    """Reads an image file at its own size as HxWx3 uint8 RGB, or raises ImageReadError."""
    return _decode(path, _to_uint8_rgb)


def decode_pixels(path: str | Path) -> np.ndarray:
    """Reads an image file at its own size and depth, or raises ImageReadError: 16-bit grey
    data as an HxW uint16 array (for a consumer that scales it itself, e.g. the live camera's
    image sequences, whose frames go through inspector.camera.to_rgb), anything else as
    ``decode_image`` gives it. The same decoder as review and training: the same pixels."""
    return _decode(path, _native_depth)


MAX_PAGES = 1000   # pages of a multi-page file looked at (Pillow's n_frames walks them all)


def main_page(img: Image.Image) -> tuple[int, int]:
    """The page of a multi-page file (TIFF) that is the image: ``(its index, how many pages have
    its size)``. It is the first of the largest pages, so a thumbnail or preview page that some
    cameras add, before or after the image, is neither read instead of it nor counted. At most
    ``MAX_PAGES`` pages are looked at, one seek each: ``n_frames`` walked every page of the file
    first (a 200,000-page TIFF of 21 MB took 300 s, then was refused)."""
    if not getattr(img, "is_animated", False):   # one page (set at open: no seek)
        return 0, 1
    sizes = []
    try:
        for i in range(MAX_PAGES):
            img.seek(i)   # EOFError past the last page
            sizes.append(img.size)
    except EOFError:
        pass
    if len(sizes) < 2:
        img.seek(0)
        return 0, 1
    main = max(range(len(sizes)), key=lambda i: (sizes[i][0] * sizes[i][1], -i))
    return main, sum(size == sizes[main] for size in sizes)


EXIF_ORIENTATION = 0x0112   # 1: upright; 2-8: mirrored and/or turned (phones, some cameras)


def _orientation(img: Image.Image) -> int:
    try:
        value = int(img.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - damaged EXIF: the pixels are read as stored
        return 1
    return value if 1 <= value <= 8 else 1


def _upright(img: Image.Image) -> Image.Image:
    """The image as a viewer shows it: turned and mirrored as its EXIF orientation says (a
    phone's photo of a defect is stored sideways), so that tiles and maps match what a person
    sees in any other program."""
    if _orientation(img) == 1:
        return img
    from PIL import ImageOps

    return ImageOps.exif_transpose(img)


def _empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def not_a_regular_file(path: str | Path) -> bool:
    """True for a named pipe, socket or device with an image's name: opening one waits for a
    writer that never comes (a FIFO called x.bmp hung training, the checks and ``inspector
    classify``). A missing file is False here: its read says "file not found"."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode) and not os.path.isdir(path)
    except OSError:
        return False


def _refuse_special_file(path: str | Path) -> None:
    """Raises ImageReadError for a pipe, socket or device (``not_a_regular_file``)."""
    if not_a_regular_file(path):
        raise ImageReadError(path, "not a regular file (a pipe, socket or device), not an image")


def _tiff_header(path: Path) -> bool:
    """Whether the file starts as a TIFF does (either byte order, classic or BigTIFF)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
    except OSError:
        return False


def too_large_text(pillow_message: str) -> str:
    """What a frame over Pillow's limit (twice ``Image.MAX_IMAGE_PIXELS``, 179 megapixels) is
    told, in a plant's words: one such frame takes gigabytes to read and prepare."""
    import re

    sizes = [int(n) for n in re.findall(r"\((\d+) pixels\)|limit of (\d+)", pillow_message)
             for n in n if n] if pillow_message else []
    size, limit = (sizes + [0, 0])[:2]
    if not size or not limit:
        return "image too large to read (over 179 megapixels); save it in parts"
    return (f"image too large to read: {size / 1e6:.0f} megapixels, over the {limit / 1e6:.0f} "
            "this program reads (one such frame takes gigabytes of memory); save it in parts")


def _decode(path: str | Path, convert) -> np.ndarray:
    path = Path(path)
    _refuse_special_file(path)
    try:
        arr, pages = None, 1
        if path.suffix.lower() in bmp.SUFFIXES:   # the plain layouts without Pillow: 10x faster
            limit = Image.MAX_IMAGE_PIXELS   # Pillow warns above it (ignored here), refuses at 2x
            arr = bmp.read_plain_bmp(path, None if limit is None else 2 * limit)
        if arr is None:
            # from a file object, not the path: Pillow memory-maps an uncompressed file opened by
            # path, and that read scrambles a TIFF turned by its Orientation tag (5-8) (Pillow
            # 13.0: the pixels laid out at the turned size); a file object is read plainly
            with open(path, "rb") as f, Image.open(f, formats=PILLOW_FORMATS) as img:
                main, pages = main_page(img)
                img.seek(main)
                if _sixteen_bit_colour(img, main):   # not decoded by Pillow first as well
                    arr = _read_sixteen_bit_colour(path)
                else:
                    img.load()
                    arr = convert(_upright(img))
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a folder, not an image") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except UnidentifiedImageError:
        if _empty(path):
            raise ImageReadError(path, "empty file (0 bytes)") from None
        if _tiff_header(path):   # a TIFF of a sample layout Pillow does not read, not damage
            raise ImageReadError(path, "a TIFF whose pixel layout cannot be read (e.g. 64-bit "
                                       "floating point, or two 16-bit channels), or a damaged "
                                       "one; save it as 8- or 16-bit grey or RGB") from None
        raise ImageReadError(path, "not an image file Pillow can read (unknown or damaged format)") from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, too_large_text(str(exc))) from None
    except MemoryError:
        raise ImageReadError(path, "not enough memory to read this image") from None
    except NotADirectoryError:   # a folder on the way has become a file
        raise ImageReadError(path, "file not found (a folder on its path is not a folder)") from None
    except OSError as exc:
        if exc.errno is not None:   # the file could not be read (a share gone, an I/O error,
            # a loop of links), which says nothing about the image in it
            raise ImageReadError(path, f"cannot read the file ({exc.strerror or exc})") from None
        raise ImageReadError(path, f"damaged image data ({exc})") from None   # Pillow's own
    except (ValueError, SyntaxError) as exc:  # truncated or corrupt data
        raise ImageReadError(path, f"damaged image data ({exc})") from None
    except UnsupportedPixels as exc:
        raise ImageReadError(path, str(exc)) from None
    except ImageReadError:
        raise
    except Exception as exc:   # noqa: BLE001 - Pillow raises TypeError ("Missing dimensions")
        # for a TIFF whose directory is damaged (a truncated multi-page file), and others for
        # other damage: about the file, never a traceback that stops a whole data check
        raise ImageReadError(path, f"damaged image data ({type(exc).__name__}: {exc})") from None
    if pages > 1:   # a stack of frames: classifying the first alone would skip the rest
        raise ImageReadError(path, f"holds {pages} images of the same size (a multi-page "
                                   "file); save each page as its own file")
    if arr.ndim not in (2, 3) or (arr.ndim == 2 and arr.dtype != np.uint16) \
            or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageReadError(path, f"unexpected image shape {arr.shape}")
    return arr


def resize_rgb(arr: np.ndarray, size: int) -> np.ndarray:
    """Resizes an HxWx3 uint8 array to size x size (area filter when shrinking)."""
    if arr.shape[0] == size and arr.shape[1] == size:
        return arr
    img = Image.fromarray(arr)
    shrinking = arr.shape[0] > size or arr.shape[1] > size
    img = img.resize((size, size), Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


SQUARE_ASPECT = 1.1   # a model whose training images' median long/short side is at most this
                      # learnt square images (training.card.TrainingView.square)


def reflect_to_square(arr: np.ndarray, max_side: int | None = None) -> np.ndarray:
    """A non-square image (any dtype, grey or colour) made square by continuing its surface by
    reflection on both sides of its shorter dimension, so that it keeps its scale and shape
    instead of being stretched into a square model input (a 200 x 100 crop stretched 2x).
    ``max_side``: an image longer than this is first shrunk (area filter, its shape kept) so
    that its longer side is ``max_side`` (the model's input size): an 8192 x 256 line-scan
    frame mirrored at full size would take 8192 x 8192 pixels."""
    if arr.shape[0] == arr.shape[1]:
        return arr
    arr = shrink_to(arr, max_side)
    h, w = arr.shape[:2]
    if h == w:
        return arr
    side = max(h, w)
    pad = [((side - h) // 2, side - h - (side - h) // 2),
           ((side - w) // 2, side - w - (side - w) // 2)] + [(0, 0)] * (arr.ndim - 2)
    return np.pad(arr, pad, mode="symmetric")


def shrink_to(arr: np.ndarray, max_side: int | None) -> np.ndarray:
    """An image longer than ``max_side`` shrunk (area filter, its shape kept) so that its longer
    side is ``max_side``; any other image as it is."""
    h, w = arr.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return arr
    import cv2

    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    shrunk = cv2.resize(np.ascontiguousarray(arr), size, interpolation=cv2.INTER_AREA)
    return shrunk.reshape(size[1], size[0], *arr.shape[2:])   # cv2 drops a channel of 1


def square_surface(image: np.ndarray, max_side: int | None = None) -> tuple[np.ndarray, float]:
    """A non-square frame made square by reflection (``training.images.reflect_to_square``,
    shrunk first to ``max_side``) with its padding filled before the reflection, and the share
    of padding: reflected first, a turned frame's wedges would be mirrored inward, where no rule
    finds them (a 200 x 140 frame turned by 10-30 degrees kept its black corners). A square
    frame is returned as it is (its padding is filled where every frame's is)."""
    from .padding import fill_padding

    a = np.asarray(image)
    if a.shape[0] == a.shape[1]:
        return a, 0.0
    filled, share = fill_padding(shrink_to(a, max_side))
    return reflect_to_square(filled), share


def square_box(height: int, width: int) -> tuple[float, float, float, float] | None:
    """Where an image of ``height`` x ``width`` lies in the square that ``reflect_to_square``
    makes of it: (top, bottom, left, right) as fractions of the side; None for a square one."""
    h, w = int(height), int(width)
    if h == w or h < 1 or w < 1:
        return None
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    return top / side, (top + h) / side, left / side, (left + w) / side


def crop_to_box(m: np.ndarray, box: tuple[float, float, float, float] | None) -> np.ndarray:
    """The part of a map over a square input (any resolution) that ``box`` (``square_box``)
    names, at least one cell each way; the map itself for None."""
    if box is None:
        return m
    mh, mw = m.shape[:2]
    r0, r1 = int(np.floor(box[0] * mh)), int(np.ceil(box[1] * mh))
    c0, c1 = int(np.floor(box[2] * mw)), int(np.ceil(box[3] * mw))
    return m[r0:max(r1, r0 + 1), c0:max(c1, c0 + 1)]


def image_size(path: str | Path) -> tuple[int, int] | None:
    """An image file's (height, width) from its header (of the page ``decode_image`` reads), or
    None when it cannot be read (the decoder names the problem when the file is read)."""
    if not_a_regular_file(path):
        return None
    try:
        with Image.open(path, formats=PILLOW_FORMATS) as img:
            img.seek(main_page(img)[0])
            w, h = img.size
            # a JPEG turned a quarter: decode_image reads it upright (Pillow's TIFF reader gives
            # a TIFF's size upright itself; a PNG's EXIF would cost a full decode to find here)
            if img.format in ("JPEG", "MPO") and _orientation(img) >= 5:
                w, h = h, w
        return int(h), int(w)
    except Exception:  # noqa: BLE001 - any unreadable file: its decode says why
        return None


def continue_surface(image: np.ndarray, side: int, max_side: int | None = None
                     ) -> tuple[np.ndarray, float]:
    """A frame smaller than ``side`` x ``side`` continued by reflection to that square, centred,
    so that it keeps its scale (a 128 x 128 crop read by a model that learnt 200 x 200 images
    is not enlarged 1.56 times); its padding filled first (``square_surface``'s reason), and
    the share of padding. A frame as large is returned as ``square_surface`` makes it (shrunk
    to ``max_side`` first)."""
    from .padding import fill_padding

    a = np.asarray(image)
    h, w = a.shape[:2]
    if max(h, w) >= side:
        return square_surface(a, max_side)
    filled, share = fill_padding(a)
    pad = [((side - h) // 2, side - h - (side - h) // 2),
           ((side - w) // 2, side - w - (side - w) // 2)] + [(0, 0)] * (a.ndim - 2)
    return np.pad(filled, pad, mode="symmetric"), share


def surface_box(height: int, width: int, side: int) -> tuple[float, float, float, float] | None:
    """Where a frame of ``height`` x ``width`` lies in the square of ``side`` that
    ``continue_surface`` makes of it (``square_box``'s fractions); None when it fills it."""
    h, w, side = int(height), int(width), int(side)
    if max(h, w) >= side or h < 1 or w < 1:
        return square_box(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    return top / side, (top + h) / side, left / side, (left + w) / side


@dataclass(frozen=True)
class Reading:
    """How a model reads a whole image (``training.card.TrainingView.reading``): ``square``, a
    non-square image made square by reflection (else stretched); ``scale``, the side of its
    training images when they were all about one size (else 0): a smaller image is continued
    by reflection to that side first, so that it keeps their scale."""

    square: bool = True
    scale: int = 0

    def whole(self, image: np.ndarray, max_side: int | None = None) -> tuple[np.ndarray, float]:
        """A whole image as this model reads it, before the resize to its input, and the share
        of padding filled first."""
        if not self.square:
            return np.asarray(image), 0.0
        if self.scale:
            return continue_surface(image, self.scale, max_side)
        return square_surface(image, max_side)

    def box(self, height: int, width: int) -> tuple[float, float, float, float] | None:
        """Where such an image lies in what ``whole`` makes of it (None: it fills it)."""
        if not self.square:
            return None
        return surface_box(height, width, self.scale) if self.scale else square_box(height, width)


def fit_input(arr: np.ndarray, size: int, square: bool | Reading = False) -> np.ndarray:
    """A decoded HxWx3 uint8 image as a size x size model input (``square``: a non-square image
    made square by reflection first, its padding filled before, as for a model that learnt
    square images: ``square_surface``, training.card.TrainingView; else stretched; a
    ``Reading``: as it says, a small image kept at its model's scale too)."""
    reading = square if isinstance(square, Reading) else Reading(bool(square))
    return resize_rgb(reading.whole(arr, size)[0], size)


def load_image(path: str | Path, size: int, square: bool | Reading = False) -> np.ndarray:
    """The model input for one file: size x size x 3 uint8 RGB (``square``: ``fit_input``).
    Raises ImageReadError."""
    return fit_input(decode_image(path), size, square)


def to_model_input(arr: np.ndarray, size: int) -> np.ndarray:
    """An in-memory frame (HxW grey, HxWx3 RGB or HxWx4) as the model input."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] in (1, 4):
        arr = arr[..., 0] if arr.shape[2] == 1 else arr[..., :3]
    arr = to_uint8(arr)   # the same scale for a grey frame as for its three equal channels
    return resize_rgb(_three(arr) if arr.ndim == 2 else np.ascontiguousarray(arr), size)


def file_digest(path: str | Path) -> str:
    """SHA-256 of the file's bytes (byte-identical images share a digest). Raises OSError
    when the file cannot be read, and ImageReadError for a pipe or device (never opened: it
    would wait for ever)."""
    _refuse_special_file(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

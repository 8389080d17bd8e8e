"""What to open and how: :class:`Source` (camera index, stream URL, video file, image sequence),
:func:`open_capture` through OpenCV (or :class:`FolderCapture` for a folder of images), probing
local cameras, and frames to RGB."""
from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from training.images import (ImageReadError, decode_pixels, is_image_file, natural_key,
                             sensor_full_scale, to_uint8)

from .urls import MASK, SCHEME, secrets_in, mask_url

# FFmpeg prints its own errors to stderr, and they can contain a stream URL with its password.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


log = logging.getLogger(__name__)

MAX_CAMERA_INDEX = 9
DEFAULT_SEQUENCE_FPS = 25.0
# Image sequences take the files review and training read (training.images.IMAGE_SUFFIXES).

# ---------------------------------------------------------------------------------------------
# Sources

class SourceKind(str, Enum):
    CAMERA = "camera"
    URL = "url"
    FILE = "file"
    SEQUENCE = "sequence"


@dataclass(frozen=True)
class Source:
    """What to open. ``loop`` and ``realtime`` apply to files and image sequences: they start again
    at their end, and replay at their own frame rate (``fps``, default: what the file says, else
    25) like a camera would deliver them, instead of as fast as they decode."""

    kind: SourceKind
    target: str | int
    loop: bool = True
    realtime: bool = True
    fps: float = 0.0

    @classmethod
    def camera(cls, index: int) -> Source:
        return cls(SourceKind.CAMERA, int(index))

    @classmethod
    def url(cls, url: str) -> Source:
        return cls(SourceKind.URL, str(url).strip())

    @classmethod
    def file(cls, path: str | Path, **kw: Any) -> Source:
        return cls(SourceKind.FILE, str(path), **kw)

    @classmethod
    def sequence(cls, folder_or_pattern: str | Path, **kw: Any) -> Source:
        return cls(SourceKind.SEQUENCE, str(folder_or_pattern), **kw)

    @property
    def is_live(self) -> bool:
        """Cameras and streams: they lose connections; files and sequences end."""
        return self.kind in (SourceKind.CAMERA, SourceKind.URL)

    @property
    def display(self) -> str:
        """How to show this source to a person or a log (never with a password)."""
        if self.kind is SourceKind.CAMERA:
            return f"camera {self.target}"
        if self.kind is SourceKind.URL:
            return mask_url(str(self.target))
        return str(self.target)

    @property
    def key(self) -> str:
        """A stable name for per-source settings (masked: settings files are not secret)."""
        return f"{self.kind.value}:{self.display}"

    @property
    def stem(self) -> str:
        """A short file-name-safe name for snapshots taken from this source."""
        if self.kind is SourceKind.CAMERA:
            raw = f"camera{self.target}"
        elif self.kind is SourceKind.URL:
            m = SCHEME.match(mask_url(str(self.target)))
            authority = (m.group(2) if m else str(self.target)).split("/", 1)[0].split("?", 1)[0]
            raw = authority.rsplit("@", 1)[-1].split(":", 1)[0] or "stream"
        else:
            p = Path(str(self.target))
            raw = p.stem if p.suffix else p.name
            raw = raw.replace("%", "")
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", raw).strip("._") or "frame"

    def scrub(self, text: str) -> str:
        """``text`` (an error message) with this source's URL and passwords masked."""
        text = str(text)
        if self.kind is SourceKind.URL:
            raw = str(self.target)
            text = text.replace(raw, mask_url(raw))
            for secret in secrets_in(raw):
                if len(secret) >= 3:  # shorter ones would mangle the message, not protect much
                    text = text.replace(secret, MASK)
        return text


class SourceError(Exception):
    """A source that cannot be opened. ``permanent``: retrying cannot help (a missing file)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class Capture(Protocol):
    """What :class:`FrameGrabber` needs of an opened source (a ``cv2.VideoCapture`` has it)."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...


CaptureFactory = Callable[[Source], Capture]


def quiet_cv2():
    """cv2, with its own logging down to errors."""
    import cv2

    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:  # pragma: no cover - older OpenCV
        pass
    return cv2


class FolderCapture:
    """A folder of images read in natural name order (``f2`` before ``f10``) as a capture.

    Files that cannot be decoded are skipped and named in ``skipped`` and the log."""

    def __init__(self, folder: str | Path, files: Sequence[Path] | None = None):
        self.folder = Path(folder)
        self.files = list(files) if files is not None else sorted(
            (p for p in self.folder.iterdir() if p.is_file() and is_image_file(p)),
            key=lambda p: natural_key(p.name))
        self.position = 0
        self.skipped: list[str] = []

    def isOpened(self) -> bool:  # noqa: N802 - the cv2.VideoCapture spelling
        return bool(self.files)

    def read(self) -> tuple[bool, np.ndarray | None]:
        while self.position < len(self.files):
            path = self.files[self.position]
            self.position += 1
            # The decoder of review and training (the same file gives the same pixels), at the
            # file's depth: 16-bit data stays 16-bit, and to_rgb scales it to the sensor's full
            # scale (10/12-bit frames would otherwise come out black).
            try:
                img = decode_pixels(path)
            except ImageReadError as exc:
                self.skipped.append(str(path))
                if str(path) not in _WARNED:   # once, not at every pass of a looping sequence
                    _WARNED.add(str(path))
                    log.warning("%s; skipped", exc)
                continue
            # a capture gives OpenCV's channel order (BGR), as every other source does
            return True, img if img.ndim == 2 else np.ascontiguousarray(img[..., ::-1])
        return False, None

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        self.position = len(self.files)


_WARNED: set[str] = set()   # unreadable sequence files already named in the log


def video_path(path: Path, platform: str | None = None,
               short_name: Callable[[str], str] | None = None) -> str:
    """The name OpenCV is given for a video file. On Windows OpenCV opens files by their
    narrow (ANSI) name, and a path such as ``D:\\Nagrania\\Łódź\\line.mp4`` is not found: there
    the file's short 8.3 name is given instead, where the file system keeps one; where it does
    not, SourceError says to move or rename the file (a locale audit)."""
    text = str(path)
    if (platform or sys.platform) != "win32" or text.isascii():
        return text
    short = (short_name or _windows_short_name)(text)
    if short and short.isascii():
        return short
    raise SourceError(f"{path}: OpenCV cannot open a video whose path has letters outside "
                      "English on Windows; move or rename it (e.g. to C:\\videos\\line.mp4)",
                      permanent=True)


def _windows_short_name(text: str) -> str:
    import ctypes

    try:
        size = ctypes.windll.kernel32.GetShortPathNameW(text, None, 0)
        buf = ctypes.create_unicode_buffer(size)
        if size and ctypes.windll.kernel32.GetShortPathNameW(text, buf, size):
            return buf.value
    except (AttributeError, OSError):
        pass
    return ""


def pattern_files(pattern: Path) -> list[Path]:
    """The files of a printf-style image sequence (``f_%04d.png``, ``img%d.bmp``) in its folder,
    in the order of their numbers (OpenCV's spelling; ``%%`` is a percent sign)."""
    parts = re.split(r"(%%|%0?\d*d)", pattern.name)
    rx = "".join("%" if part == "%%" else (r"(\d+)" if part.startswith("%") else re.escape(part))
                 for part in parts if part)
    found = []
    try:
        entries = list(pattern.parent.iterdir())
    except OSError:
        return []
    for p in entries:
        m = re.fullmatch(rx, p.name)
        if not m:
            continue
        numbers = tuple(int(g) for g in m.groups())
        try:
            exact = pattern.name % numbers == p.name   # "%04d": f_0003, not f_00003 or f_3
        except (TypeError, ValueError):
            exact = False
        if exact and p.is_file():
            found.append((numbers, p))
    return [p for _, p in sorted(found)]


def open_capture(source: Source, open_timeout: float = 10.0) -> Capture:
    """Opens ``source`` with OpenCV; raises :class:`SourceError` with a clear, masked message."""
    cv2 = quiet_cv2()
    kind, target = source.kind, source.target
    if kind is SourceKind.CAMERA:
        cap = cv2.VideoCapture(int(target))
        what = f"Camera {target} cannot be opened (unplugged, in use by another program, or no " \
               f"permission)"
    elif kind is SourceKind.URL:
        ms = int(open_timeout * 1000)
        cap = cv2.VideoCapture(str(target), cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        what = f"Stream {source.display} cannot be opened (wrong address or password, host " \
               f"unreachable, or unsupported format)"
    elif kind is SourceKind.FILE:
        path = Path(str(target))
        if not path.exists():
            raise SourceError(f"{path}: file not found", permanent=True)
        if path.is_dir():
            raise SourceError(f"{path}: is a folder, not a video file (choose 'Image sequence')",
                              permanent=True)
        cap = cv2.VideoCapture(video_path(path))
        what = f"{path}: not a video OpenCV can read (unknown codec or damaged file)"
    else:
        path = Path(str(target))
        if path.is_dir():
            folder = FolderCapture(path)
            if not folder.isOpened():
                raise SourceError(f"{path}: no images in this folder", permanent=True)
            return folder
        if "%" not in path.name:
            raise SourceError(f"{path}: not a folder, nor a pattern such as f_%04d.png",
                              permanent=True)
        if not path.parent.is_dir():
            raise SourceError(f"{path.parent}: folder not found", permanent=True)
        # listed here and read as a folder is (Pillow through Python's own file names): OpenCV's
        # image-sequence reader cannot open a non-ASCII path on Windows, and reads 16-bit frames
        # as 8-bit (a locale audit)
        files = pattern_files(path)
        if not files:
            raise SourceError(f"{path}: no images match this pattern", permanent=True)
        return FolderCapture(path.parent, files)
    if not cap.isOpened():
        cap.release()
        raise SourceError(what, permanent=not source.is_live)
    return cap


@dataclass(frozen=True)
class CameraInfo:
    index: int
    width: int
    height: int

    @property
    def label(self) -> str:
        size = f" ({self.width}x{self.height})" if self.width and self.height else ""
        return f"Camera {self.index}{size}"


def probe_cameras(indices: Sequence[int] = range(MAX_CAMERA_INDEX + 1),
                  opener: Callable[[int], Any] | None = None) -> list[CameraInfo]:
    """Local cameras that open, by index; an empty list when there are none (never raises)."""
    if opener is None:
        cv2 = quiet_cv2()
        if sys.platform.startswith("linux") and not any(Path("/dev").glob("video*")):
            return []  # no V4L device at all: nothing to probe
        opener = cv2.VideoCapture
    found = []
    for i in indices:
        try:
            cap = opener(i)
        except Exception:  # noqa: BLE001 - a broken driver must not break the picker
            continue
        try:
            if cap.isOpened():
                w = int(cap.get(3) or 0)  # CAP_PROP_FRAME_WIDTH
                h = int(cap.get(4) or 0)  # CAP_PROP_FRAME_HEIGHT
                found.append(CameraInfo(int(i), w, h))
        except Exception:  # noqa: BLE001
            pass
        finally:
            try:
                cap.release()
            except Exception:  # noqa: BLE001
                pass
    return found


def to_rgb(frame: np.ndarray, full_scale: float | None = None) -> np.ndarray:
    """An OpenCV frame (BGR, BGRA, grey; 8 or 16 bit) as contiguous HxWx3 uint8 RGB.

    16-bit frames are scaled to the sensor's full scale (10/12/14-bit data in 16-bit words:
    see training.images.sensor_full_scale), so a 12-bit frame is not almost black;
    ``full_scale``, where given, is that scale (``StreamScale``: one for a whole stream)."""
    import cv2   # loaded already: frames come from OpenCV

    a = np.ascontiguousarray(to_uint8(frame, full_scale))
    if a.size == 0:
        raise ValueError(f"an empty frame ({'x'.join(map(str, a.shape))})")
    # OpenCV's conversions, not numpy's strided copies: 0.04 against 2.4 ms for a 640x480
    # frame, time that counted into every live result's latency
    if a.ndim == 2 or a.shape[2] < 3:
        grey = a if a.ndim == 2 else np.ascontiguousarray(a[..., 0])
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    if a.shape[2] == 4:
        return cv2.cvtColor(a, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(a[..., :3] if a.shape[2] > 3 else a, cv2.COLOR_BGR2RGB)


class StreamScale:
    """The full scale of a stream's high-bit-depth frames: the largest any frame so far has
    needed (``training.images.sensor_full_scale``), never smaller. Judged frame by frame, a
    12-bit camera's frames whose brightest pixel was 1,000 in one and 1,030 in the next were
    scaled by 1,023 and 4,095: the same scene four times darker, the live view flickering and
    snapshots of it differing."""

    def __init__(self):
        self.full = 0.0

    def __call__(self, frame: np.ndarray) -> float | None:
        """The scale for ``frame`` (None for 8-bit and float frames: they need none)."""
        if frame.dtype == np.uint8 or frame.dtype.kind not in "ui":
            return None
        self.full = max(self.full, sensor_full_scale(int(frame.max(initial=0))))
        return self.full

"""Live camera feeds, Qt-free: sources, a newest-frame grabber with reconnects, ROI and tiling,
live analysis of a frame, saving snapshots, and masking passwords in stream URLs.

The pieces, in the order a frame meets them:

* :class:`Source` says what to open (camera index, stream URL, video file, image sequence);
  :func:`open_capture` opens it through OpenCV (or :class:`FolderCapture` for a folder of images).
* :class:`FrameGrabber` reads it in its own threads and keeps only the newest frame: a consumer
  that is slower than the source gets the latest frame, the ones it missed are counted as dropped.
  Open failures, disconnects and stalls (no frame for ``stall_timeout`` seconds) are reported and
  retried with capped exponential back-off (:class:`ReconnectPolicy`).
* :func:`analyse` classifies the region of interest of one frame (whole, or as model-sized tiles)
  and optionally computes an attention map; :func:`inference_loop` pulls newest frames and analyses
  them one at a time, for a worker thread to run.

Anything that shows or logs a source goes through :func:`mask_url` (``Source.display``), so stream
passwords never reach the screen or a log.
"""
from __future__ import annotations

import logging
import math
import os
import re
import statistics
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from training.images import IMAGE_SUFFIXES, is_image_file, sensor_full_scale

# FFmpeg prints its own errors to stderr, and they can contain a stream URL with its password.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

log = logging.getLogger(__name__)

MAX_CAMERA_INDEX = 9
DEFAULT_SEQUENCE_FPS = 25.0
# Image sequences take the files review and training read (training.images.IMAGE_SUFFIXES).

# ---------------------------------------------------------------------------------------------
# URL masking

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)(.*)$", re.S)
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:password|passwd|pwd|pass|secret|token|auth|apikey|api_key|access_token|key)=)"
    r"([^&;#]*)")
MASK = "****"


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``****``: ``rtsp://user:****@host/...``.

    Handles the user-info password, also one with unescaped ``@``, ``/`` or ``:`` in it (when
    unsure it masks more rather than less: everything up to the last ``@``), and password-like
    query parameters (``?user=a&password=...``). Text that is not a URL is returned unchanged.
    """
    text = str(url)
    m = _SCHEME.match(text)
    if m:
        scheme, rest = m.group(1), m.group(2)
        at, colon = rest.rfind("@"), rest.find(":")
        if at > 0 and 0 <= colon < at and not any(c in rest[:colon] for c in "/?#"):
            rest = f"{rest[:colon]}:{MASK}{rest[at:]}"
        text = scheme + rest
    return _SECRET_PARAM.sub(lambda p: p.group(1) + (MASK if p.group(2) else ""), text)


def _secrets_in(url: str) -> list[str]:
    """The literal password strings in ``url`` (to scrub them from error messages)."""
    found: list[str] = []
    m = _SCHEME.match(str(url))
    if m:
        rest = m.group(2)
        at, colon = rest.rfind("@"), rest.find(":")
        if at > 0 and 0 <= colon < at and not any(c in rest[:colon] for c in "/?#"):
            found.append(rest[colon + 1:at])
    found += [p.group(2) for p in _SECRET_PARAM.finditer(str(url)) if p.group(2)]
    return [s for s in found if s]


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
            m = _SCHEME.match(mask_url(str(self.target)))
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
            for secret in _secrets_in(raw):
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


def _quiet_cv2():
    import cv2

    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:  # pragma: no cover - older OpenCV
        pass
    return cv2


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


class FolderCapture:
    """A folder of images read in natural name order (``f2`` before ``f10``) as a capture.

    Files that cannot be decoded are skipped and named in ``skipped`` and the log."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.files = sorted((p for p in self.folder.iterdir()
                             if p.is_file() and is_image_file(p)),
                            key=_natural_key)
        self.position = 0
        self.skipped: list[str] = []

    def isOpened(self) -> bool:  # noqa: N802 - the cv2.VideoCapture spelling
        return bool(self.files)

    def read(self) -> tuple[bool, np.ndarray | None]:
        cv2 = _quiet_cv2()
        while self.position < len(self.files):
            path = self.files[self.position]
            self.position += 1
            # UNCHANGED keeps 16-bit data: IMREAD_COLOR shifts it right by 8, so 10/12-bit
            # frames would come out black; to_rgb scales it to the sensor's full scale.
            img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if img is not None:
                return True, img
            self.skipped.append(str(path))
            log.warning("%s: not an image OpenCV can read; skipped", path)
        return False, None

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        self.position = len(self.files)


def open_capture(source: Source, open_timeout: float = 10.0) -> Capture:
    """Opens ``source`` with OpenCV; raises :class:`SourceError` with a clear, masked message."""
    cv2 = _quiet_cv2()
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
        cap = cv2.VideoCapture(str(path))
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
        cap = cv2.VideoCapture(str(path), cv2.CAP_IMAGES)
        what = f"{path}: no images match this pattern"
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
        cv2 = _quiet_cv2()
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


def to_rgb(frame: np.ndarray) -> np.ndarray:
    """An OpenCV frame (BGR, BGRA, grey; 8 or 16 bit) as contiguous HxWx3 uint8 RGB.

    16-bit frames are scaled to the sensor's full scale (10/12/14-bit data in 16-bit words:
    see training.images.sensor_full_scale), so a 12-bit frame is not almost black."""
    a = np.asarray(frame)
    if a.dtype == np.uint16:
        full = sensor_full_scale(float(a.max())) if a.size else 65535.0
        a = np.minimum(a.astype(np.float32) * (255.0 / full) + 0.5, 255.0).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        return np.ascontiguousarray(np.repeat(a[..., None], 3, axis=2))
    if a.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(a, 3, axis=2))
    return np.ascontiguousarray(a[..., 2::-1])  # BGR(A) -> RGB


# ---------------------------------------------------------------------------------------------
# Reconnect policy and the grabber

@dataclass(frozen=True)
class ReconnectPolicy:
    """Capped exponential back-off between attempts, and when a source counts as stalled."""

    initial: float = 0.5        # seconds before the first retry
    factor: float = 2.0
    maximum: float = 10.0       # never wait longer than this between attempts
    stall_timeout: float = 5.0  # no frame for this long: reconnect
    open_timeout: float = 15.0  # opening takes longer than this: give up on that attempt

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1, 2, ...)."""
        if attempt < 1:
            return 0.0
        return float(min(self.maximum, self.initial * self.factor ** (attempt - 1)))


class State(str, Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    FINISHED = "finished"   # a file or sequence played to its end (loop off)
    FAILED = "failed"       # cannot work (missing file); no more attempts
    STOPPED = "stopped"


@dataclass(frozen=True)
class StreamStatus:
    state: State
    message: str
    attempt: int = 0             # consecutive failed attempts so far
    retry_in: float | None = None

    @property
    def is_fault(self) -> bool:
        return self.state in (State.RECONNECTING, State.FAILED)


@dataclass(frozen=True)
class Frame:
    image: np.ndarray   # HxWx3 uint8 RGB; never modified after capture
    index: int          # sequence number since the grabber started
    t_capture: float    # clock() when read() returned it

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True)
class GrabberStats:
    captured: int
    dropped: int        # captured, overwritten by a newer frame before anyone took them
    taken: int
    connections: int    # successful opens
    capture_fps: float


class _Gen:
    """One connection attempt's shared state (guarded by the grabber's condition)."""

    def __init__(self, number: int):
        self.number = number
        self.outcome: tuple[str, str, bool] | None = None  # (kind, message, permanent)
        self.opened = False
        self.frames = 0


class FrameGrabber:
    """Reads a source in background threads and keeps only its newest frame.

    ``latest()`` hands the newest frame not yet taken to one consumer; frames overwritten before
    anyone took them are counted in ``stats.dropped`` (while ``counting_drops`` is true: a paused
    consumer switches it off). ``peek()`` shows the newest frame without taking it (a display).

    A supervisor thread opens the source on a fresh reader thread per connection and watches it:
    an open failure, a read failure (disconnect) or no frame for ``policy.stall_timeout`` seconds
    ends that connection, and the next attempt follows after ``policy.delay(attempt)``. A reader
    stuck inside a driver call is abandoned (its late frames are ignored, it releases its capture
    when the call returns). ``on_status`` is called from the supervisor thread on every change.
    """

    def __init__(self, source: Source, *, factory: CaptureFactory | None = None,
                 policy: ReconnectPolicy = ReconnectPolicy(),
                 on_status: Callable[[StreamStatus], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.source = source
        self.policy = policy
        self._factory = factory or (lambda s: open_capture(s, policy.open_timeout))
        self._on_status = on_status
        self._clock = clock
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._newest: Frame | None = None
        self._newest_taken = True
        self._newest_counts = True
        self._captured = 0
        self._dropped = 0
        self._taken = 0
        self._connections = 0
        self._times: deque[float] = deque(maxlen=31)
        self._gen: _Gen | None = None
        self._status = StreamStatus(State.IDLE, f"{source.display}: not started")
        self._supervisor: threading.Thread | None = None
        self._readers: list[threading.Thread] = []
        self.counting_drops = True

    # -- public ---------------------------------------------------------------------------
    @property
    def status(self) -> StreamStatus:
        return self._status

    @property
    def stats(self) -> GrabberStats:
        with self._cond:
            t = list(self._times)
            fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 2 and t[-1] > t[0] else 0.0
            return GrabberStats(self._captured, self._dropped, self._taken, self._connections, fps)

    @property
    def running(self) -> bool:
        return self._supervisor is not None and self._supervisor.is_alive()

    def start(self) -> FrameGrabber:
        if self._supervisor is not None:
            raise RuntimeError("a FrameGrabber starts once")
        self._supervisor = threading.Thread(target=self._supervise, daemon=True,
                                            name=f"grabber {self.source.display}")
        self._supervisor.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float = 3.0) -> bool:
        """Waits for the threads to end; False if a reader is still stuck in a driver call."""
        deadline = time.monotonic() + timeout
        threads = ([self._supervisor] if self._supervisor else []) + list(self._readers)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def close(self, timeout: float = 3.0) -> bool:
        self.stop()
        return self.join(timeout)

    def latest(self, timeout: float | None = None) -> Frame | None:
        """The newest frame nobody took yet (waits up to ``timeout``); None on timeout or stop."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._stop.is_set() or not self._newest_taken, timeout)
            if not ok or self._newest_taken:
                return None
            self._newest_taken = True
            self._taken += 1
            return self._newest

    def peek(self) -> Frame | None:
        return self._newest

    def wait_stopped(self, timeout: float) -> bool:
        """Waits up to ``timeout`` seconds; True once ``stop()`` was called."""
        return self._stop.wait(timeout)

    def wait_for_state(self, states: set[State] | State, timeout: float) -> bool:
        """Waits until the status is in ``states`` (tests, scripts)."""
        states = {states} if isinstance(states, State) else set(states)
        with self._cond:
            return self._cond.wait_for(lambda: self._status.state in states, timeout)

    # -- internals ------------------------------------------------------------------------
    def _set_status(self, status: StreamStatus) -> None:
        with self._cond:
            changed = status != self._status
            self._status = status
            self._cond.notify_all()
        if changed:
            level = logging.WARNING if status.is_fault else logging.INFO
            log.log(level, "%s", status.message)  # messages are built from masked text only
            if self._on_status is not None:
                try:
                    self._on_status(status)
                except Exception:  # noqa: BLE001 - a listener must not kill the grabber
                    log.exception("status listener failed")

    def _report(self, gen: _Gen, kind: str, message: str = "", permanent: bool = False) -> None:
        with self._cond:
            if kind == "opened":
                gen.opened = True
                self._connections += 1
            elif gen.outcome is None:
                gen.outcome = (kind, message, permanent)
            self._cond.notify_all()

    def _publish(self, gen: _Gen, image: np.ndarray, t: float) -> bool:
        with self._cond:
            if gen is not self._gen or self._stop.is_set():
                return False
            if not self._newest_taken and self._newest_counts:
                self._dropped += 1
            self._newest_counts = self.counting_drops  # skipped while paused: not a drop
            self._newest = Frame(image, self._captured, t)
            self._newest_taken = False
            self._captured += 1
            self._times.append(t)
            gen.frames += 1
            self._cond.notify_all()
            return True

    def _read_loop(self, gen: _Gen) -> None:
        src = self.source
        try:
            cap = self._factory(src)
        except SourceError as exc:
            self._report(gen, "open_failed", src.scrub(str(exc)), exc.permanent)
            return
        except Exception as exc:  # noqa: BLE001 - drivers raise anything
            self._report(gen, "open_failed", src.scrub(f"{src.display} cannot be opened: {exc}"))
            return
        try:
            if self._stop.is_set() or gen is not self._gen:
                return
            self._report(gen, "opened")
            fps = 0.0
            if src.realtime and not src.is_live:
                fps = src.fps
                if fps <= 0:
                    try:
                        fps = float(cap.get(5) or 0.0)  # CAP_PROP_FPS
                    except Exception:  # noqa: BLE001
                        fps = 0.0
                if not (0 < fps <= 1000):
                    fps = DEFAULT_SEQUENCE_FPS
            t0 = time.monotonic()
            n = 0
            while not self._stop.is_set() and gen is self._gen:
                try:
                    ok, bgr = cap.read()
                except Exception as exc:  # noqa: BLE001
                    self._report(gen, "lost", src.scrub(f"{src.display}: read failed ({exc})"))
                    return
                t = self._clock()
                if self._stop.is_set() or gen is not self._gen:
                    return
                if not ok or bgr is None:
                    if src.is_live:
                        self._report(gen, "lost", f"{src.display}: disconnected (no frame)")
                    else:
                        self._report(gen, "ended", f"{src.display}: end reached")
                    return
                self._publish(gen, to_rgb(bgr), t)
                if fps:
                    n += 1
                    wait = t0 + n / fps - time.monotonic()
                    if wait < -1.0:  # far behind (slow disk): do not burst to catch up
                        t0, n = time.monotonic(), 0
                    elif wait > 0:
                        self._stop.wait(wait)
        finally:
            try:
                cap.release()
            except Exception:  # noqa: BLE001
                log.debug("release failed", exc_info=True)

    def _watch(self, gen: _Gen) -> tuple[str, str, bool]:
        """Waits until this connection ends; returns (kind, message, permanent)."""
        p = self.policy
        last_frames, was_opened = -1, False
        last_progress = time.monotonic()
        with self._cond:
            while True:
                if self._stop.is_set():
                    return ("stopped", "", False)
                if gen.opened and not was_opened:  # the stall clock starts when it is open
                    was_opened, last_progress = True, time.monotonic()
                if gen.frames != last_frames:
                    last_frames = gen.frames
                    last_progress = time.monotonic()
                    if gen.frames > 0 and self._status.state is not State.LIVE:
                        return ("live", "", False)  # (before an outcome: frames came first)
                if gen.outcome is not None:
                    return gen.outcome
                limit = p.stall_timeout if gen.opened else p.open_timeout
                left = last_progress + limit - time.monotonic()
                if left <= 0:
                    if gen.opened:
                        return ("stalled", f"{self.source.display}: no frame for "
                                           f"{p.stall_timeout:g} s (stalled)", False)
                    return ("stalled", f"{self.source.display}: opening took longer than "
                                       f"{p.open_timeout:g} s", False)
                self._cond.wait(min(left, 0.5))

    def _supervise(self) -> None:
        src = self.source
        attempt = 0
        number = 0
        try:
            while not self._stop.is_set():
                number += 1
                gen = _Gen(number)
                with self._cond:
                    self._gen = gen
                if attempt == 0 and number == 1:
                    self._set_status(StreamStatus(State.CONNECTING, f"Opening {src.display}…"))
                reader = threading.Thread(target=self._read_loop, args=(gen,), daemon=True,
                                          name=f"reader {number} {src.display}")
                self._readers = [t for t in self._readers if t.is_alive()] + [reader]
                reader.start()
                kind, message, permanent = self._watch(gen)
                if kind == "live":
                    attempt = 0
                    self._set_status(StreamStatus(State.LIVE, f"{src.display}: live"))
                    kind, message, permanent = self._watch(gen)
                with self._cond:
                    self._gen = None  # abandons the reader if it is still inside read()
                if kind == "stopped":
                    break
                if kind == "ended":
                    if gen.frames == 0:
                        self._set_status(StreamStatus(
                            State.FAILED, f"{src.display}: no frame could be read"))
                        return
                    if src.loop:
                        continue
                    self._set_status(StreamStatus(State.FINISHED, f"{src.display}: finished"))
                    return
                if permanent:
                    self._set_status(StreamStatus(State.FAILED, message))
                    return
                if gen.frames > 0:  # it worked for a while: back-off starts again
                    attempt = 0
                attempt += 1
                delay = self.policy.delay(attempt)
                self._set_status(StreamStatus(
                    State.RECONNECTING,
                    f"{message} — reconnecting in {delay:.1f} s (attempt {attempt})",
                    attempt, delay))
                if self._stop.wait(delay):
                    break
        finally:
            with self._cond:
                self._gen = None
            if self._status.state not in (State.FAILED, State.FINISHED):
                self._set_status(StreamStatus(State.STOPPED, f"{src.display}: stopped"))


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


# ---------------------------------------------------------------------------------------------
# Analysis of one frame

class _Model(Protocol):
    class_names: list[str]
    input_size: int

    def classify(self, images: np.ndarray) -> np.ndarray: ...
    def inspect(self, image: np.ndarray) -> Any: ...
    def prepare(self, arr: np.ndarray) -> np.ndarray: ...


OVERLAY_CAM = "cam"


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
    probs: np.ndarray             # (classes,): the ROI's, or the mean over tiles
    class_names: list[str]
    heat: np.ndarray | None = None  # (roi.h, roi.w) attention 0..1 over the ROI, or None
    overlay: str | None = None
    t_start: float = 0.0
    t_done: float = 0.0
    config: LiveConfig | None = None  # what it was computed for (a display drops stale results)

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

    def roi_image(self) -> np.ndarray:
        return self.roi.crop(self.frame.image)


def _attention(inspection: Any, overlay: str) -> np.ndarray:
    if overlay == OVERLAY_CAM:
        return inspection.cam()
    for block in inspection.se_blocks:
        if block.name == overlay:
            return block.feature_map
    raise ValueError(f"unknown attention map {overlay!r}")


def analyse(model: _Model, frame: Frame, config: LiveConfig,
            clock: Callable[[], float] = time.monotonic) -> LiveResult:
    """Classifies the frame's ROI (whole, or tile by tile) and, if asked, its attention map."""
    from .engine import upsample

    t_start = clock()
    image = frame.image
    roi = (config.roi or Roi(0, 0, frame.width, frame.height)).clamp(frame.width, frame.height)
    if roi is None:  # the ROI lies outside this frame (the source changed resolution)
        roi = Roi(0, 0, frame.width, frame.height)
    if config.tile:  # at most MAX_TILES tiles (the window says when it enlarged them)
        tiles, rows, cols = tile_grid(roi, fit_tile(roi.w, roi.h, int(config.tile)))
    else:
        tiles, rows, cols = [roi], 1, 1
    inputs = [model.prepare(t.crop(image)) for t in tiles]
    heat = None
    if config.overlay:
        heat = np.zeros((roi.h, roi.w), np.float32)
        probs = []
        for t, x in zip(tiles, inputs):
            ins = model.inspect(x)
            probs.append(np.asarray(ins.probs, np.float32))
            m = upsample(_attention(ins, config.overlay), t.h, t.w)
            ys, xs = slice(t.y - roi.y, t.y - roi.y + t.h), slice(t.x - roi.x, t.x - roi.x + t.w)
            np.maximum(heat[ys, xs], m, out=heat[ys, xs])
        tile_probs = np.stack(probs)
    else:
        tile_probs = np.concatenate([
            np.asarray(model.classify(np.stack(inputs[k:k + CLASSIFY_CHUNK])), np.float32)
            for k in range(0, len(inputs), CLASSIFY_CHUNK)])
    return LiveResult(frame, roi, tiles, (rows, cols), tile_probs, tile_probs.mean(axis=0),
                      list(model.class_names), heat, config.overlay, t_start, clock(), config)


class LiveStats:
    """Rolling classified-frames-per-second and latency over the last ``window`` results."""

    def __init__(self, window: int = 30):
        self._done: deque[float] = deque(maxlen=window + 1)
        self._lat: deque[float] = deque(maxlen=window)
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
        d = self._done
        return (len(d) - 1) / (d[-1] - d[0]) if len(d) > 2 and d[-1] > d[0] else 0.0

    @property
    def latency_median(self) -> float:
        return statistics.median(self._lat) if self._lat else 0.0


def inference_loop(grabber: FrameGrabber, get_model: Callable[[], _Model | None],
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


# ---------------------------------------------------------------------------------------------
# Saving frames

def _png_bytes(image: np.ndarray) -> bytes:
    cv2 = _quiet_cv2()
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(np.asarray(image)[..., ::-1]))
    if not ok:
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def save_png_new(image: np.ndarray, folder: str | Path, stem: str) -> Path:
    """Writes ``image`` (RGB uint8) as ``folder/stem.png``, or ``stem-2.png``, ... : never over an
    existing file, and never a half-written file under the final name (written aside, then
    linked into place, which fails rather than replaces when the name is taken)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = _png_bytes(image)
    tmp = folder / f".{stem}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    try:
        for n in range(1, 10000):
            target = folder / (f"{stem}.png" if n == 1 else f"{stem}-{n}.png")
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                continue
            except OSError:  # a file system without hard links: exclusive create instead
                try:
                    with open(target, "xb") as f:
                        f.write(data)
                    return target
                except FileExistsError:
                    continue
        raise OSError(f"{folder}: no free file name for {stem}")
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass


def timestamp_stem(prefix: str, when: datetime | None = None) -> str:
    when = when or datetime.now()
    return f"{prefix}_{when:%Y%m%d-%H%M%S}-{when.microsecond // 1000:03d}"


def snapshots_dir() -> Path:
    from .paths import user_data_dir

    return user_data_dir() / "snapshots"


def save_snapshot(image: np.ndarray, source: Source, folder: str | Path | None = None) -> Path:
    """A frame (or ROI) from ``source`` as a new PNG in the snapshots folder."""
    return save_png_new(image, folder or snapshots_dir(), timestamp_stem(source.stem))


def save_labelled(image: np.ndarray, data_dir: str | Path, class_name: str,
                  source: Source) -> Path:
    """A frame (or ROI) as a new PNG in ``data_dir/class_name/`` (a training data layout)."""
    if not class_name or any(c in class_name for c in "/\\") or class_name in (".", ".."):
        raise ValueError(f"{class_name!r} is not a usable class folder name")
    return save_png_new(image, Path(data_dir) / class_name, timestamp_stem(source.stem))


__all__ = [
    "CameraInfo", "Capture", "FolderCapture", "Frame", "FrameGrabber", "GrabberStats",
    "LiveConfig", "LiveResult", "LiveStats", "MASK", "OVERLAY_CAM", "ReconnectPolicy", "Roi",
    "Source", "SourceError", "SourceKind", "State", "StreamStatus", "analyse",
    "inference_loop", "mask_url", "open_capture", "probe_cameras", "save_labelled",
    "save_png_new", "save_snapshot", "snapshots_dir", "tile_grid", "timestamp_stem", "to_rgb",
]

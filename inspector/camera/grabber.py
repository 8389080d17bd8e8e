"""The newest-frame grabber: reads a source in its own threads, keeps only the newest frame, and
reconnects with capped exponential back-off (:class:`ReconnectPolicy`)."""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable

import numpy as np

from .sources import (CaptureFactory, DEFAULT_SEQUENCE_FPS, Source, SourceError, SourceKind,
                      StreamScale, open_capture, to_rgb)

log = logging.getLogger(__name__)


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
    # live at least this long: the connection counts as working and the back-off starts again
    # (a stream that sends one frame and drops would otherwise be retried every 0.5 s forever)
    stable_after: float = 10.0

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


def rate(times, now: float, quiet_after: float = 2.0) -> float:
    """Events per second over ``times`` (ascending clock readings), falling to 0 once nothing
    has come for ``quiet_after`` seconds or three intervals, whichever is longer: a stream that
    stalls, or a model that keeps failing, must not go on showing its last rate."""
    t = list(times)
    if len(t) <= 2 or t[-1] <= t[0]:
        return 0.0
    interval = (t[-1] - t[0]) / (len(t) - 1)
    if now - t[-1] > max(quiet_after, 3 * interval):
        return 0.0
    return 1.0 / interval


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


def skipped_note(files: list[str]) -> str:
    """The status's note on unreadable files of an image sequence ("" without any)."""
    if not files:
        return ""
    first = Path(files[0]).name
    more = f" and {len(files) - 1} more" if len(files) > 1 else ""
    return f"; {len(files)} unreadable file(s) skipped ({first}{more}; see the log)"


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
                 clock: Callable[[], float] = time.monotonic,
                 after: FrameGrabber | None = None):
        """``after``: a stopped grabber of the same source whose reader may still hold the device
        (a camera opens once): this one waits for it to end, up to ``policy.open_timeout``,
        before it opens the source."""
        self.source = source
        self._after = after
        self.policy = policy
        self._factory = factory or (lambda s: open_capture(s, policy.open_timeout))
        self._on_status = on_status
        self._clock = clock
        # one full scale for a stream's 16-bit frames; an image sequence's files are read
        # each as review and training read it (the same pixels, file by file)
        self._scale = (StreamScale() if source.kind is not SourceKind.SEQUENCE
                       else (lambda frame: None))
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
        self.skipped_files: list[str] = []   # an image sequence's unreadable files (last pass)
        self._readers: list[threading.Thread] = []
        self.counting_drops = True

    # -- public ---------------------------------------------------------------------------
    @property
    def status(self) -> StreamStatus:
        return self._status

    @property
    def stats(self) -> GrabberStats:
        with self._cond:
            fps = rate(self._times, self._clock())
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
                if not ok or bgr is None or bgr.size == 0:
                    self.skipped_files = list(getattr(cap, "skipped", None) or [])
                    if src.is_live:
                        self._report(gen, "lost", f"{src.display}: disconnected (no frame)")
                    else:
                        self._report(gen, "ended", f"{src.display}: end reached")
                    return
                self._publish(gen, to_rgb(bgr, self._scale(bgr)), t)
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

    def _set_live(self) -> None:
        self._set_status(StreamStatus(State.LIVE, f"{self.source.display}: live"
                                      + skipped_note(self.skipped_files)))

    def _wait_for_previous(self) -> None:
        """Waits (on the supervisor thread, stoppable) for ``after`` to let go of the source."""
        prev, self._after = self._after, None
        if prev is None:
            return
        deadline = time.monotonic() + self.policy.open_timeout
        while not self._stop.is_set() and not prev.join(0.05) and time.monotonic() < deadline:
            pass

    def _supervise(self) -> None:
        src = self.source
        attempt = 0
        number = 0
        self._wait_for_previous()
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
                live_since = None
                if kind == "live":
                    live_since = time.monotonic()
                    self._set_live()
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
                        if self.skipped_files:   # said once a pass has found them
                            self._set_live()
                        continue
                    self._set_status(StreamStatus(State.FINISHED, f"{src.display}: finished"))
                    return
                if permanent:
                    self._set_status(StreamStatus(State.FAILED, message))
                    return
                if live_since is not None and \
                        time.monotonic() - live_since >= self.policy.stable_after:
                    attempt = 0   # it worked for a while: back-off starts again
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

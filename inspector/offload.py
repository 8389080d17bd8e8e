"""The window's background classification in a child process of its own. Qt-free.

Decoding and LiteRT in threads of the window's own process share Python's interpreter lock (GIL)
with the GUI thread: every Python call the GUI thread makes while painting (the thumbnail
delegate, the charts) waits for whichever worker holds the lock, and on two cores, with the
workers at a lower priority, that worker may not even be running. The GUI benchmark measured a
dozen thumbnails painted in 25-50 ms instead of a few. In a child process the workers hold a GIL
of their own; the window's thread only hands out work and receives results.

The child loads the same bundle in the same LiteRT format the window chose (no second speed
measurement) and runs ``inspector.batch.classify_stream`` on it; it asks the parent for each
batch (``take``), so the parent's queue keeps deciding the order (what is on screen first) and
the unknown threshold in use. The child runs at a lower priority (its LiteRT and decoding
threads too), and so may run an interpreter per core, as ``inspector classify`` does: 5,000
images classified while scrolling in 9.6-11.0 s against 13.8-14.9 s with the window's one
interpreter, the longest gap between the GUI's 10 ms ticks alike (23-37 against 25-36 ms; two
cores, ``benchmarks/bench_inspector.py --skip throughput memory``, alternated). A child that cannot start or that dies hands its work back: the caller re-queues
what was outstanding and classifies in threads instead (``ChildFailed``).

Only the LiteRT path goes to a child (``process_spec``): TensorFlow (a GPU, a bundle without
the export) would take seconds and hundreds of MB to load a second time. Setting
``STEEL_INSPECTOR_CLASSIFY_PROCESS=0`` keeps the classification in threads."""
from __future__ import annotations

import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable

from .batch import Result, WorkQueue, classify_stream, pool_threads
from .tiles import TileSettings

log = logging.getLogger(__name__)

ENV_SWITCH = "STEEL_INSPECTOR_CLASSIFY_PROCESS"
CHILD_NICE = 10           # how much lower the child's priority is than the window's (POSIX)
START_TIMEOUT_S = 120.0   # a child that has not loaded the model by then is given up
POLL_S = 0.1
BATCH_SIZE = 16           # the window's batches (gui.workers.ClassifyWorker says why)
DECODE_THREADS = 2


class ChildFailed(RuntimeError):
    """The child process could not start, could not load the model or died."""


@dataclass(frozen=True)
class ProcessSpec:
    """What the child needs to classify as the window's own classifier would."""
    bundle: str                      # the bundle's folder
    fmt: str                         # the LiteRT format the window chose
    accept: float                    # share of known images accepted (the unknown threshold)
    num_threads: int | None = None   # LiteRT threads (None: training.litert's default)
    batch_size: int = BATCH_SIZE
    decode_threads: int = DECODE_THREADS
    tiling: TileSettings | None = None
    nice: int | None = None          # the child's nice value (POSIX; None: unchanged)
    identity: str = ""               # model_identity of the window's model ("": not checked)


def model_identity(classifier) -> str:
    """What tells the window's model from another one at the same path: its class names, model
    card and unknown detector. The child loads the bundle again from its folder; one that has
    been replaced since (a training run given the same --out, a stick swapped, a library
    version number given again) gave another model's probabilities under the window's class
    names, read as wrong labels."""
    import hashlib
    import json

    detector = getattr(classifier, "detector", None)
    card = getattr(classifier, "card", None) or {}
    # what decides the results, not the notes commands add to an unchanged model's card
    # (robustness tables, exports, history): those would refuse the same model
    parts = [list(getattr(classifier, "class_names", [])),
             {k: card.get(k) for k in ("name", "version", "created", "input_size", "view",
                                       "input", "unknown_detection")},
             getattr(detector, "threshold", None), getattr(detector, "temperature", None),
             getattr(detector, "method", None)]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def process_spec(classifier, tiling: TileSettings | None = None) -> ProcessSpec | None:
    """The spec of a child that classifies like ``classifier``, or None when it must stay in
    this process: not a LiteRT classifier loaded from a bundle (TensorFlow, a test's stand-in),
    or switched off by ``STEEL_INSPECTOR_CLASSIFY_PROCESS=0``."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    fmt = getattr(classifier, "runtime_format", None)
    bundle = getattr(getattr(classifier, "bundle", None), "path", None)
    if not fmt or bundle is None:
        return None
    nice = child_nice()
    threads = getattr(classifier, "num_threads", None)
    if nice is not None:
        # below the window, the child may take every core as ``inspector classify`` does: the
        # window's thread (and its own engine's threads, which keep a core) come first anyway
        from training.litert import available_cores

        threads = max(threads or 0, available_cores())
    return ProcessSpec(str(bundle), str(fmt), float(getattr(classifier, "accept", 1.0)),
                       threads, tiling=tiling, nice=nice, identity=model_identity(classifier))


def child_nice() -> int | None:
    """The nice value for a child: CHILD_NICE above the calling thread's (None off POSIX)."""
    try:
        return min(19, os.getpriority(os.PRIO_PROCESS, 0) + CHILD_NICE)
    except (AttributeError, OSError):
        return None


def lower_priority(pid: int | None, nice: int | None) -> None:
    """Puts process ``pid`` (None: this one) below the window, at nice value ``nice`` (never
    raises a thread's priority); never fails. On Linux each thread has a nice value of its own
    and new threads inherit their creator's: the parent lowers the child's first thread as soon
    as it starts (its imports then already run low), and the child lowers the threads that
    exist when it runs (numpy's BLAS pool, started while it unpickled its task)."""
    try:
        if nice is not None and sys.platform.startswith("linux"):
            tasks = os.listdir(f"/proc/{pid or 'self'}/task")
            for tid in map(int, tasks):
                if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                    os.setpriority(os.PRIO_PROCESS, tid, nice)
        elif nice is not None and hasattr(os, "setpriority"):  # other POSIX: the whole process
            if os.getpriority(os.PRIO_PROCESS, pid or 0) < nice:
                os.setpriority(os.PRIO_PROCESS, pid or 0, nice)
        elif pid is None and sys.platform == "win32":  # pragma: no cover - Windows
            import ctypes

            below_normal = 0x4000
            ctypes.windll.kernel32.SetPriorityClass(ctypes.windll.kernel32.GetCurrentProcess(),
                                                    below_normal)
    except Exception:  # pragma: no cover - restricted sandboxes
        pass


class _Stop(Exception):
    pass


def child_main(conn, spec: ProcessSpec) -> None:
    """The child process: loads the model, then classifies what the parent hands out until it
    says stop (or the pipe closes)."""
    lower_priority(None, spec.nice)
    try:
        from . import runtime
        from .engine import load_classifier

        # the window runs LiteRT: no second GPU probe here (it would import TensorFlow)
        os.environ[runtime.GPU_ENV] = "0"
        clf = load_classifier(spec.bundle, num_threads=spec.num_threads,
                              measure=lambda fmt, runner: 0.0 if fmt == spec.fmt else 1.0,
                              warm_up="verdicts")
        if clf.runtime_format != spec.fmt:
            raise RuntimeError(f"LiteRT {spec.fmt} did not open here (got "
                               f"{clf.runtime_format or 'TensorFlow'})")
        if spec.identity and model_identity(clf) != spec.identity:
            raise RuntimeError(f"the model in {spec.bundle} has changed since the window loaded "
                               "it; the window classifies with the model it loaded")
        clf.set_accept(spec.accept)
    except Exception as exc:  # reported to the parent, which classifies in threads instead
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", clf.device))
    accept = [spec.accept]

    def take(n: int) -> list[tuple[Hashable, Path]]:
        conn.send(("take", n))
        msg = conn.recv()
        if msg[0] != "batch":
            raise _Stop
        if msg[2] != accept[0]:
            accept[0] = msg[2]
            clf.set_accept(msg[2])
        return msg[1]

    def send(results: list[Result]) -> None:
        # parts are judged in pool threads ahead of this loop, which may have taken a new
        # threshold since (``take``): the verdicts are made again at the one they are sent with
        for r in results:
            r.rejudge(clf.unknown_threshold)
        conn.send(("results", results, accept[0]))

    try:
        # no window in this process: each thread decodes and judges a part of a batch on an
        # interpreter of its own (``classify_stream``'s side_by_side), as ``inspector classify``
        with ThreadPoolExecutor(pool_threads(clf, spec.decode_threads, side_by_side=True),
                                thread_name_prefix="decode") as pool:
            while True:
                classify_stream(clf, take, send, batch_size=spec.batch_size, pool=pool,
                                tiling=spec.tiling, side_by_side=True)
                conn.send(("idle",))
                if conn.recv()[0] != "wake":
                    return
    except (_Stop, EOFError, OSError, BrokenPipeError):
        return


class ChildClassifier:
    """The parent's end: starts the child and serves it work from a ``WorkQueue``."""

    def __init__(self, spec: ProcessSpec):
        import multiprocessing

        self.spec = spec
        self.device = ""
        self.outstanding: dict[Hashable, Path] = {}   # handed to the child, no result yet
        self.idle = False                              # the child waits for work
        ctx = multiprocessing.get_context("spawn")     # never fork a process with Qt threads
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(target=child_main, args=(child_conn, spec), daemon=True,
                                 name="inspector-classify")
        try:
            self._proc.start()
        except Exception as exc:
            raise ChildFailed(f"cannot start the classification process ({exc})") from exc
        finally:
            child_conn.close()
        lower_priority(self._proc.pid, spec.nice)

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def _recv(self, should_stop: Callable[[], bool], timeout: float | None = None):
        """The child's next message; None when ``should_stop()`` (or ``timeout`` passed)."""
        waited = 0.0
        while not should_stop():
            try:
                if self._conn.poll(POLL_S):
                    return self._conn.recv()
            except (EOFError, OSError) as exc:
                raise ChildFailed(f"the classification process ended ({exc or 'pipe closed'}; "
                                  f"exit code {self._proc.exitcode})") from exc
            if not self._proc.is_alive() and not self._conn.poll(0):
                raise ChildFailed(f"the classification process ended (exit code "
                                  f"{self._proc.exitcode})")
            waited += POLL_S
            if timeout is not None and waited >= timeout:
                raise ChildFailed(f"the classification process did not load the model in "
                                  f"{timeout:.0f} s")
        return None

    def _send(self, msg) -> None:
        try:
            self._conn.send(msg)
        except (OSError, ValueError) as exc:
            raise ChildFailed(f"the classification process ended ({exc})") from exc

    def serve(self, queue: WorkQueue, emit: Callable[[list[Result]], None],
              should_stop: Callable[[], bool], accept: Callable[[], float],
              idle: Callable[[], None] = lambda: None,
              rejudge: Callable[[list[Result]], None] = lambda results: None) -> None:
        """Hands the child batches from ``queue`` and passes its results to ``emit`` until
        ``should_stop()``; ``idle()`` when the queue has run dry. ``accept()``: the unknown
        threshold's share in use now; results the child judged at another share (the setting
        changed while they were on their way) go through ``rejudge`` first. Raises ChildFailed
        (``outstanding`` then holds what the child had taken and not returned)."""
        msg = self._recv(should_stop, START_TIMEOUT_S)
        if msg is None:
            return
        if msg[0] == "failed":
            raise ChildFailed(f"the classification process cannot load the model: {msg[1]}")
        self.device = msg[1]
        log.info("classifying in a child process (pid %s) on %s", self.pid, self.device)
        while True:
            msg = self._recv(should_stop)
            if msg is None:
                return
            if msg[0] == "take":
                batch = queue.take(msg[1])
                self.outstanding.update(batch)
                self._send(("batch", batch, float(accept())))
            elif msg[0] == "results":
                for r in msg[1]:
                    self.outstanding.pop(r.key, None)
                if msg[2] != float(accept()):
                    rejudge(msg[1])
                emit(msg[1])
            elif msg[0] == "idle":
                self.idle = True
                if len(queue) == 0:
                    idle()
                while not should_stop() and not queue.wait(0.25):
                    pass
                if should_stop():
                    return
                self.idle = False
                self._send(("wake",))

    def close(self, timeout: float = 2.0) -> None:
        """Stops the child (it holds nothing worth keeping: results already came back): an
        idle child is told to stop, a busy or loading one is terminated at once (waiting for
        its next message would keep a model switch or the window's closing waiting)."""
        try:
            self._conn.send(("stop",))
        except (OSError, ValueError):
            pass
        if self.idle:
            self._proc.join(min(timeout, 0.5))
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout)
        if self._proc.is_alive():  # pragma: no cover
            self._proc.kill()
            self._proc.join(timeout)
        self._conn.close()

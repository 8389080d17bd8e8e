"""Classifying many image files: a pipeline that decodes in a thread pool while the model runs,
used by the headless ``inspector classify`` command and by the GUI's background worker. Qt-free.

``inspector classify PATH... [--out results.csv] [--json results.json]`` writes one row per file
(columns: see inspector.report); unreadable or non-image files get a row with an ``error``
instead of stopping the run. Exit status: 0 when every file was classified, 2 when some failed,
1 when nothing could be run at all (no model, no files).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import stat
import sys
import tempfile
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Hashable, Iterable, Iterator, Sequence, TextIO

import numpy as np

from training.bundle import TEMP_SUFFIX, existing_mode
from training.cancel import Terminated, ends_as_interrupts, signals_held
from training.images import ImageReadError, image_size, is_image_file
from training.litert import available_cores, banners_dropped

from .library import ModelLibrary
from .locks import try_lock
from . import paths as app_paths  # the module (tests point bundled_model_dir elsewhere)
from .progress import ProgressBar
from .tiles import (DEFAULT_OVERLAP, MAX_OVERLAP, MIN_TILE, ClassifierLike, TiledVerdict,
                    TileSettings, judge_batch, judge_prepared, load_prepared, model_view)

if TYPE_CHECKING:  # the engine imports TensorFlow: loaded only when a model is
    from .engine import Classifier

log = logging.getLogger(__name__)

DEFAULT_BATCH = 32
# with tiling: model inputs (tiles) decoded and waiting at most, over all batches in flight (at
# 200 px, 120 kB each: about 250 MB); a batch then holds fewer images when they are large (a
# 16-megapixel frame is 729 tiles: 32 of them in each of three batches would be 8 GB)
MAX_TILES_IN_FLIGHT = 2048


@dataclass
class Result:
    key: Hashable          # the caller's name for the image (an index, the path, ...)
    path: Path
    probs: np.ndarray | None
    error: str | None
    unknown_score: float | None = None   # None: the model has no unknown detector
    known: bool = True                   # False: flagged unknown
    tiles: TiledVerdict | None = None    # a large image's tiles (the verdict is the deciding one's)
    padding: float = 0.0                 # share of the image (its deciding tile) that is padding

    def rejudge(self, threshold: float | None) -> None:
        """Known/unknown again at another threshold (the setting changed while this image was
        judged): a large image's every tile, and the deciding tile's probabilities with them."""
        from .session import known_at

        if self.probs is None:
            return
        if self.tiles is not None:
            self.tiles.rejudge(threshold)
            w = self.tiles.winner
            self.probs = self.tiles.probs[w]
            self.known = bool(self.tiles.known[w])
            self.padding = 0.0 if self.tiles.padding is None else float(self.tiles.padding[w])
        else:
            self.known = known_at(self.unknown_score, threshold, self.known)


def cli_threads() -> int:
    """LiteRT threads for ``inspector classify``: every core this process may use (no window to
    keep responsive), one single-threaded interpreter each (``training.litert``)."""
    return available_cores()


def startup_model_path(explicit: str | Path | None = None,
                       notes: list[str] | None = None) -> Path:
    """The model to start with: an explicit one, else the model library's active model (when
    it has one), else the bundled SSDC-MiniNet. Why the library's choice could not be read
    (a damaged ``active.json``) goes to ``notes``, to be said where the user sees it."""
    if explicit:
        return Path(explicit)
    try:
        library = ModelLibrary()
        active = library.active_path()
        problem = library.state_problem
    except Exception as exc:  # a damaged library must not stop the app from starting
        log.warning("model library: %s; using the bundled model", exc)
        active, problem = None, f"the model library cannot be read ({exc})"
    if problem and notes is not None:
        notes.append(f"{problem}: using the bundled model (Tools ▸ Models… chooses another)")
    return Path(active) if active else app_paths.bundled_model_dir()


def startup_fallback(path: str | Path, explicit: str | Path | None = None) -> Path | None:
    """The model to fall back to when the startup model ``path`` cannot be loaded: the bundled
    one, unless the user named the model (``explicit``) or ``path`` is the bundled one."""
    bundled = app_paths.bundled_model_dir()
    if explicit or Path(path) == bundled:
        return None
    return bundled


def collect_paths(paths: Iterable[str | Path], recursive: bool = True,
                  problems: list[OSError] | None = None, others: list[str] | None = None,
                  empty: list[Path] | None = None) -> list[Path]:
    """Folders expand to the image files inside them (sorted); files named explicitly are kept
    whatever they are (a non-image file then gets an error row); missing paths are kept too.
    Folders that cannot be listed go to ``problems`` (else their OSError is raised); the
    files in folders that are images of another format go to ``others`` (``scan_images``);
    folders with no image file go to ``empty``."""
    from .session import scan_images

    out: list[Path] = []
    seen: set[str] = set()
    for p in paths:
        p = Path(p)
        found = scan_images(p, recursive, problems, others) if _is_dir(p) else [p]
        if not found and empty is not None:
            empty.append(p)
        for f in found:
            # one file under two spellings (d and $PWD/d, a/../a) is one image: it was written
            # twice in the CSV and once in the JSON, whose session keys on the absolute path
            key = os.path.normcase(os.path.abspath(f))
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


# A frame this large (pixels, from its header) is decoded one at a time: each takes hundreds of
# megabytes while it is read and prepared (four 13000 x 13000 frames at once peaked at 3.6 GB,
# one at a time 2.8 GB), more than a 4-8 GB plant PC has to spare. Smaller ones in parallel.
# Only files over LARGE_FRAME_BYTES have their header read for it (155 us a file, a third of
# decoding a 200 x 200 BMP): a 40-megapixel camera frame is megabytes in any format.
LARGE_FRAME_PIXELS = 40_000_000
LARGE_FRAME_BYTES = 2_000_000
# a compressed file's size says little about its pixels: a blank 13000 x 13000 frame (lens
# cap on, strip stopped) is a 194 KB PNG; deflate packs at most about 1000:1, so no PNG or
# deflated TIFF of LARGE_FRAME_PIXELS is under this
COMPRESSED_FRAME_BYTES = 32_000
_large_frames = threading.Lock()


def _large_frame(path: Path) -> bool:
    try:
        limit = LARGE_FRAME_BYTES if path.suffix.lower() == ".bmp" else COMPRESSED_FRAME_BYTES
        if os.path.getsize(path) <= limit:
            return False
    except OSError:
        return False   # its decode says what is wrong
    size = image_size(path)
    return size is not None and size[0] * size[1] > LARGE_FRAME_PIXELS


def _decode(load: Callable[[Path], np.ndarray], path: Path) -> tuple[np.ndarray | None, str | None]:
    large = _large_frame(path)
    try:
        with _large_frames if large else contextlib.nullcontext():
            return load(path), None
    except ImageReadError as exc:
        return None, exc.problem
    except MemoryError:
        return None, "image too large to decode (out of memory)"
    except Exception as exc:  # e.g. Pillow's DecompressionBombError
        return None, f"cannot read image ({type(exc).__name__}: {exc})"


def pool_threads(classifier: ClassifierLike, workers: int | None = None,
                 side_by_side: bool = False) -> int:
    """Threads of a decoding pool: ``workers``, or up to four; ``side_by_side`` (see
    ``classify_stream``) at least one per interpreter of the classifier."""
    n = workers or max(1, min(4, os.cpu_count() or 1))
    return max(n, getattr(classifier, "interpreters", 0)) if side_by_side else n


def _judged(classifier: ClassifierLike, decoded: Sequence[tuple], tiling: TileSettings | None,
            batch_size: int, spread: bool = True) -> list[Result]:
    """Results for ``decoded`` ((key, path, model input or prepared image, error) each): the
    readable ones judged together (tile by tile with ``tiling``), each error kept as its row.
    ``spread``: see ``Classifier.judge`` (False only for a classifier that takes it)."""
    good = [d[2] for d in decoded if d[3] is None]
    probs, scores, known, tiles, problem = None, None, None, None, None
    padding: Sequence[float] | None = None
    if good:
        try:
            if tiling is None:
                v = judge_batch(classifier, np.stack(good), spread)
                probs, scores, known = v.probs, v.unknown_scores, v.known
                padding = getattr(v, "padding", None)   # stand-ins may lack it
            else:
                iv = judge_prepared(classifier, good, batch_size, spread)
                probs, known = [v.probs for v in iv], [v.known for v in iv]
                scores = None if all(v.unknown_score is None for v in iv) else \
                    [v.unknown_score for v in iv]
                tiles = [v.tiles for v in iv]
                padding = [v.padding for v in iv]
        except Exception as exc:  # never lose the whole run to one bad batch
            problem = f"classification failed ({type(exc).__name__}: {exc})"
    out, j = [], 0
    for k, p, _, error in decoded:
        if error is not None:
            out.append(Result(k, p, None, error))
        else:
            out.append(Result(k, p, probs[j] if probs is not None else None, problem,
                              None if scores is None else float(scores[j]),
                              True if known is None else bool(known[j]),
                              None if tiles is None else tiles[j],
                              0.0 if padding is None or probs is None else float(padding[j])))
            j += 1
    return out


def _decode_and_judge(classifier: ClassifierLike, load: Callable[[Path], np.ndarray],
                      part: Sequence[tuple[Hashable, Path]], tiling: TileSettings | None,
                      batch_size: int) -> list[Result]:
    """A part of a batch decoded and judged in one thread, on one interpreter."""
    return _judged(classifier, [(k, p, *_decode(load, p)) for k, p in part], tiling, batch_size,
                   spread=False)


def classify_stream(classifier: ClassifierLike,
                    take: Callable[[int], Sequence[tuple[Hashable, Path]]],
                    emit: Callable[[list[Result]], None],
                    should_stop: Callable[[], bool] = lambda: False,
                    batch_size: int = DEFAULT_BATCH, pool: ThreadPoolExecutor | None = None,
                    prefetch: int = 2, tiling: TileSettings | None = None,
                    side_by_side: bool = False) -> int:
    """Classifies images until ``take(n)`` (up to n (key, path) pairs) returns none, calling
    ``emit`` with each batch's results in order. Decoding runs in ``pool`` ``prefetch`` batches
    ahead of inference. With ``tiling``, an image larger than the model's view is classified
    tile by tile (inspector.tiles; ``batch_size`` model inputs per call) and its Result carries
    the tiles. Returns how many images were done; stops early when ``should_stop()``.

    ``side_by_side``, for a classifier with several LiteRT interpreters
    (``Classifier.interpreters``): each batch is cut into as many parts, and a ``pool`` thread
    decodes and judges a part on one interpreter; each thread takes the next part when it is
    done, so that no core waits for another's half of a batch or for the decoders. For a
    process with no window to keep responsive (``inspector classify``)."""
    load = classifier.load if tiling is None else \
        (lambda path: load_prepared(classifier, tiling, path))
    parts = getattr(classifier, "interpreters", 0) if side_by_side else 0
    own_pool = pool is None
    if own_pool:
        pool = ThreadPoolExecutor(max_workers=pool_threads(classifier, None, side_by_side),
                                  thread_name_prefix="decode")
    inflight: deque[tuple[list | None, list[Future]]] = deque()   # (batch, its futures)
    exhausted = False
    done = 0
    # tiling: images per batch from the tiles an image had so far (None: not known yet, so the
    # first batches are small), so that large frames do not fill the memory
    tiles_per_image: float | None = None

    def images_per_batch() -> int:
        if tiling is None:
            return batch_size
        if tiles_per_image is None:
            return max(1, parts)
        room = MAX_TILES_IN_FLIGHT / ((prefetch + 1) * tiles_per_image)
        return int(max(1, parts, min(batch_size, room)))

    try:
        while True:
            while not exhausted and len(inflight) <= prefetch and not should_stop():
                batch = take(images_per_batch())
                if not batch:
                    exhausted = True
                    break
                batch = [(k, p if isinstance(p, Path) else Path(p)) for k, p in batch]
                if parts:
                    cuts = np.linspace(0, len(batch), min(parts, len(batch)) + 1).astype(int)
                    inflight.append((None, [pool.submit(_decode_and_judge, classifier, load,
                                                        batch[a:b], tiling, batch_size)
                                            for a, b in zip(cuts[:-1], cuts[1:])]))
                else:
                    inflight.append((batch, [pool.submit(_decode, load, p) for _, p in batch]))
            if not inflight or should_stop():
                break
            batch, futures = inflight.popleft()
            if batch is None:
                out = [r for f in futures for r in f.result()]
            else:
                out = _judged(classifier, [(k, p, *f.result()) for (k, p), f
                                           in zip(batch, futures)], tiling, batch_size)
            done += len(out)
            if tiling is not None:
                counts = [len(r.tiles.tiles) if r.tiles is not None else 1 for r in out
                          if r.error is None]
                if counts:
                    tiles_per_image = float(max(counts))
            emit(out)
    finally:
        for _, futures in inflight:
            for f in futures:
                f.cancel()
        if own_pool:
            pool.shutdown(wait=True, cancel_futures=True)
    return done


def classify_paths(classifier: ClassifierLike, paths: Sequence[str | Path],
                   batch_size: int = DEFAULT_BATCH,
                   progress: Callable[[float, str], None] = lambda f, m: None,
                   should_stop: Callable[[], bool] = lambda: False,
                   workers: int | None = None,
                   tiling: TileSettings | None = None,
                   side_by_side: bool = False) -> Iterator[Result]:
    """Results for ``paths`` in order (key: the position in ``paths``), as a generator; the
    pipeline runs in a background thread so the caller can write results meanwhile.
    ``workers``: decoding threads (default: up to four; ``side_by_side``, see
    ``classify_stream``: at least one per interpreter)."""
    paths = list(paths)
    source = iter(enumerate(paths))
    lock = threading.Lock()
    stop = threading.Event()  # set when the consumer stops early (an error, Ctrl+C)

    def take(n):
        with lock:
            return [x for _, x in zip(range(n), source)]

    out: deque = deque()
    cond = threading.Condition()
    finished: list = []

    def emit(results):
        with cond:
            out.extend(results)
            cond.notify()

    def run():
        try:
            with ThreadPoolExecutor(max_workers=pool_threads(classifier, workers, side_by_side),
                                    thread_name_prefix="decode") as pool:
                classify_stream(classifier, take, emit, lambda: stop.is_set() or should_stop(),
                                batch_size, pool, tiling=tiling, side_by_side=side_by_side)
        except BaseException as exc:  # pragma: no cover - reported to the consumer
            finished.append(exc)
        finally:
            with cond:
                finished.append(None)
                cond.notify()

    t = threading.Thread(target=run, name="classify", daemon=True)
    t.start()
    n_done = 0
    try:
        while True:
            with cond:
                while not out and not finished:
                    cond.wait()
                chunk = list(out)
                out.clear()
                over = bool(finished) and not out
            for r in chunk:
                n_done += 1
                yield r
            if chunk:
                progress(n_done / max(1, len(paths)), f"{n_done}/{len(paths)}")
            if over:
                break
    finally:
        stop.set()
        t.join()
    errs = [e for e in finished if e is not None]
    if errs:  # pragma: no cover
        raise errs[0]


class WorkQueue:
    """A thread-safe queue of (key, path) with a movable front: keys passed to ``prioritize``
    (what is on screen) are taken first, the rest in the order they were added."""

    def __init__(self):
        self._cond = threading.Condition()
        self._pending: dict[Hashable, Path] = {}
        self._order: deque[Hashable] = deque()
        self._front: deque[Hashable] = deque()
        self._closed = False
        self._epoch = 0

    def add(self, items: Iterable[tuple[Hashable, str | Path]]) -> None:
        with self._cond:
            for k, p in items:
                if k not in self._pending:
                    self._order.append(k)
                self._pending[k] = p if isinstance(p, Path) else Path(p)  # Path(Path) re-parses
            self._cond.notify_all()

    def prioritize(self, keys: Iterable[Hashable]) -> None:
        with self._cond:
            self._front = deque(k for k in keys if k in self._pending)

    def take(self, n: int) -> list[tuple[Hashable, Path]]:
        return self.take_marked(n)[0]

    def take_marked(self, n: int) -> tuple[list[tuple[Hashable, Path]], int]:
        """``take``, with the queue's ``epoch`` when they were taken (read together: for
        ``put_back``)."""
        out = []
        with self._cond:
            for q in (self._front, self._order):
                while q and len(out) < n:
                    k = q.popleft()
                    p = self._pending.pop(k, None)
                    if p is not None:
                        out.append((k, p))
            return out, self._epoch

    @property
    def epoch(self) -> int:
        """Counts ``clear`` calls: items taken before the last one belong to work given up."""
        return self._epoch

    def put_back(self, items: Iterable[tuple[Hashable, Path]], epoch: int) -> None:
        """Returns taken items (taken more than needed: inspector.result_cache) to the queue,
        behind what is first in line now (what is on screen), in their order; dropped when the
        queue was cleared since they were taken (``epoch``: the queue's then)."""
        with self._cond:
            if epoch != self._epoch:
                return
            back = [(k, p) for k, p in items if k not in self._pending]
            self._pending.update(back)
            self._front.extend(k for k, _ in back)
            self._order.extend(k for k, _ in back)   # kept in line if the front is replaced
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._epoch += 1
            self._pending.clear()
            self._order.clear()
            self._front.clear()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def wait(self, timeout: float) -> bool:
        """Waits until there is work or the queue is closed; True when there is work."""
        with self._cond:
            if not self._pending and not self._closed:
                self._cond.wait(timeout)
            return bool(self._pending)

    def __len__(self) -> int:
        with self._cond:
            return len(self._pending)


# --------------------------------------------------------------------------------------------
# The command line


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {n})")
    return n


class _Parser(argparse.ArgumentParser):
    """An option error is "nothing was run": exit status 1, as the epilog says (argparse's own
    2 is this command's "some files could not be read")."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def _given_path(text: str) -> str:
    """A path on the command line: an empty one (an unset shell variable, "$DIR") is refused,
    never read as the current folder or as "not given"."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (an unset variable?)")
    return text


def _is_dir(path: Path) -> bool:
    """``path.is_dir()``, False where the name cannot even be looked at (too long: Python 3.11
    raises ENAMETOOLONG there): reading it then gives that file's error row."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="inspector classify",
        description="Classify image files (or folders of them) without a window.",
        epilog="Exit status: 0 all classified; 2 some files could not be read or some folders "
               "listed; 1 nothing was run, or the results could not be written; 130 "
               "interrupted (Ctrl+C), the results so far kept in FILE.partial; 128 + the signal's number when asked to end (143 SIGTERM, 129 the "
               "terminal closed); 141 the reader of stdout went away.")
    p.add_argument("paths", nargs="+", metavar="PATH", type=_given_path,
                   help="image files or folders")
    p.add_argument("--out", metavar="CSV", type=_given_path, help="write results as CSV (default: to stdout "
                   "unless --json is given)")
    p.add_argument("--json", metavar="FILE", type=_given_path, help="write results (and a summary) as JSON")
    p.add_argument("--model", metavar="BUNDLE", help="model bundle folder (default: the active "
                   "model of the library, else the bundled SSDC-MiniNet)")
    p.add_argument("--no-recursive", dest="recursive", action="store_false",
                   help="do not look into sub-folders")
    p.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH, metavar="N",
                   help=f"images per model call (default: {DEFAULT_BATCH})")
    p.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="decoding threads (default: up to 4; at least one per model "
                   "interpreter, one per core: each decodes and judges its part of a batch)")
    p.add_argument("--tile-size", type=_tile_size, default=None, metavar="N",
                   help="tile side in image pixels for images larger than the model's view "
                   "(default: the scale the model was trained at, its training images' side "
                   "(the input size for the bundled model); an image no larger than its "
                   "largest training image is then classified whole; 0: never tile, read "
                   "every image whole into the model's input)")
    p.add_argument("--overlap", type=_overlap, default=None, metavar="F",
                   help=f"overlap of neighbouring tiles, a fraction of a tile (default: "
                   f"{DEFAULT_OVERLAP}). Without --tile-size and --overlap, one folder is "
                   "tiled as the inspector window was set to tile it (View > Tiles of large "
                   "images)")
    p.add_argument("--tiles", action="store_true", help="also write one row per tile, after "
                   "its image's row (columns tile_x, tile_y, tile_w, tile_h; in --json, as the "
                   "image's list 'tiles')")
    p.add_argument("--excel", action="store_true", help="write the CSV for Excel on this PC: "
                   "a byte-order mark, and ';' between cells and ',' in numbers where this PC's "
                   "numbers take a decimal comma (default: plain CSV, ',' and '.', for scripts)")
    p.add_argument("--accept", type=_accept_percent, default=None, metavar="PERCENT",
                   help="the unknown verdict's threshold as the percentage of the model's known "
                   "validation images accepted (default: the inspector window's Accept-as-known "
                   "setting, else the model's own, usually 95)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return p


def command_tiling(args: argparse.Namespace) -> tuple[TileSettings, str]:
    """How ``inspector classify`` tiles: ``--tile-size`` / ``--overlap`` when given, else the
    settings the window remembers for the one folder given (and says so), else the defaults."""
    from .tiles import saved_tiling

    if args.tile_size is None and args.overlap is None and len(args.paths) == 1 \
            and _is_dir(Path(args.paths[0])):
        saved = saved_tiling(args.paths[0])
        if saved is not None:
            return saved, "the window's setting for this folder"
    return TileSettings(args.tile_size, DEFAULT_OVERLAP if args.overlap is None
                        else args.overlap), ""


def _accept_percent(text: str) -> float:
    try:
        f = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 50.0 <= f <= 100.0:
        raise argparse.ArgumentTypeError(f"must be a percentage from 50 to 100 (got {text})")
    return f / 100.0


def apply_accept(classifier, given: float | None) -> str:
    """Sets the classifier's unknown threshold as ``inspector classify`` uses it (``--accept``,
    else the window's saved setting, else the model's own) and says which, for the log."""
    from .settings import ACCEPT_RANGE, Key, read_setting

    if not getattr(classifier, "has_unknown_detection", False):
        return ("unknown detection unavailable for this model: no image is flagged unknown and "
                "the known column is left empty")
    if given is not None:
        share, source = given, "--accept"
    else:
        stored = float(read_setting(Key.UNKNOWN_ACCEPT))
        # as the window's box holds it: within its range, a whole percent
        lo, hi = ACCEPT_RANGE[0] / 100, ACCEPT_RANGE[1] / 100
        share, source = (round(min(max(stored, lo), hi) * 100) / 100, "the window's setting") \
            if stored > 0 else (classifier.accept, "the model's own")
    classifier.set_accept(share)
    return (f"unknown verdict: accepting {classifier.accept:.0%} of the model's known "
            f"validation images ({source}); unknown score above "
            f"{classifier.unknown_threshold:.3f} is flagged")


def _tile_size(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n != 0 and n < MIN_TILE:
        raise argparse.ArgumentTypeError(f"must be 0 (no tiles) or at least {MIN_TILE} pixels "
                                         f"(got {n})")
    return n


def _overlap(text: str) -> float:
    try:
        f = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= f <= MAX_OVERLAP:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_OVERLAP} (got {f})")
    return f


def _resolved(path: Path) -> Path:
    """``path`` with its links followed, or as given where they loop (Python 3.11's resolve
    raises RuntimeError then; reading such a file later names the problem)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _among(path: Path, inputs: Sequence[Path]) -> bool:
    """Whether ``path`` is the same file as one of ``inputs``. Only an input of the same name or
    a symbolic link can be (resolving every path of a large folder took 61 ms of the start of
    ``inspector classify`` on 1,500 files; a name comparison and an lstat take a few)."""
    target = _resolved(path)
    names = {path.name, target.name}   # the output may itself be a link to an input
    return any(_resolved(p) == target for p in inputs if p.name in names or p.is_symlink())


def check_outputs(out: str | None, json_out: str | None, inputs: Sequence[Path]) -> str | None:
    """What is wrong with the ``--out`` / ``--json`` paths, or None: checked before any work so
    that an hour of classification never ends in a file that cannot be written, and so that an
    output never replaces an input image. Creates missing parent folders (as the writes would)."""
    from .report import read_only_problem

    given = [(opt, Path(v)) for opt, v in (("--out", out), ("--json", json_out)) if v]
    if len(given) == 2 and _resolved(given[0][1]) == _resolved(given[1][1]):
        return f"--out and --json name the same file {out}; give two different files"
    for opt, path in given:
        if _is_dir(path):
            return f"{opt} {path}: is a folder; give a file name"
        # the longest name the run writes on the way: the CSV NAME.partial; the JSON
        # .NAME.ready-PID.writing through the atomic writer, which adds its own temporary
        # name around it (.FILE.XXXXXXXX.writing: training.bundle.replace_file_atomic)
        atomic = len(f"..xxxxxxxx{TEMP_SUFFIX}")
        extra = len(".partial") if opt == "--out" else \
            len(f"..ready-{os.getpid()}{TEMP_SUFFIX}") + atomic
        if len(os.fsencode(path.name)) + extra > 255:
            return (f"{opt} {path}: the file name is too long (at most {255 - extra} bytes: it "
                    "is written under a longer name first)")
        if is_image_file(path) or _among(path, inputs):
            return (f"{opt} {path}: is an image file name; results would replace an image. "
                    "Give a .csv or .json file")
        want = ".csv" if opt == "--out" else ".json"
        if path.suffix.lower() != want:   # a results.xlsx or .json holding CSV misleads
            return (f"{opt} {path}: {opt} writes {want[1:].upper()}, not "
                    f"{path.suffix or 'a file without a suffix'}; give a {want} name")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path.parent):
                pass
        except (FileExistsError, NotADirectoryError):
            file = next((a for a in path.parents if a.exists() and not a.is_dir()), path.parent)
            return f"{opt} {path}: {file} is a file, not a folder"
        except OSError as exc:
            return f"{opt} {path}: cannot write there ({exc.strerror or exc})"
        problem = read_only_problem(path)
        if problem:
            return f"{opt} {problem}"
    return None


def run(args: argparse.Namespace, classifier: Classifier | None = None,
        stderr: TextIO | None = None, stdout: TextIO | None = None) -> int:
    from . import report
    from .session import ReviewSession, now_iso

    stderr = stderr or sys.stderr
    stdout = stdout or sys.stdout

    def say(msg: str) -> None:
        if not args.quiet:
            print(msg, file=stderr, flush=True)

    from training.images import listing_problem, other_images_text

    unlisted: list[OSError] = []
    others: list[str] = []
    empty: list[Path] = []
    paths = collect_paths(args.paths, args.recursive, unlisted, others, empty)
    for exc in unlisted:
        print(f"inspector classify: {listing_problem(exc)}", file=stderr, flush=True)
    left_out = other_images_text(others)
    if left_out:   # never a silent skip, even with -q: a camera saving .webp would look empty
        print(f"inspector classify: note: {left_out}", file=stderr, flush=True)
    if paths and empty:   # alone, the folder is named below, and nothing is run
        print("inspector classify: note: no image files found in "
              + ", ".join(map(str, empty)), file=stderr, flush=True)
    if not paths:
        print("inspector classify: no image files found in " + ", ".join(map(str, args.paths)),
              file=stderr)
        return 1
    problem = check_outputs(args.out, args.json, paths)
    if problem is None and not args.out and not args.json and stdout is None:
        # started with its standard output closed: every result would be lost, and the run
        # ended with 0 as if it had written them
        problem = "standard output is closed: give --out CSV or --json FILE"
    if problem is not None:
        print(f"inspector classify: {problem}", file=stderr)
        return 1
    if classifier is None:
        from training.bundle import BundleError

        from .engine import load_classifier

        notes: list[str] = []
        model_path = startup_model_path(args.model, notes)
        for note in notes:   # also with -q: another model than the plant's chosen one
            print(f"inspector classify: note: {note}", file=stderr, flush=True)
        say(f"loading model {model_path} ...")
        try:
            with banners_dropped():
                classifier = load_classifier(model_path, num_threads=cli_threads(),
                                             warm_up="verdicts")
        except (BundleError, OSError, ValueError) as exc:
            fallback = startup_fallback(model_path, args.model)
            if fallback is None:
                print(f"inspector classify: cannot load the model: {exc}", file=stderr)
                return 1
            print(f"inspector classify: cannot load the active model of the library: {exc}; "
                  f"using the bundled model {fallback}", file=stderr, flush=True)
            try:
                with banners_dropped():
                    classifier = load_classifier(fallback, num_threads=cli_threads(),
                                                 warm_up="verdicts")
            except (BundleError, OSError, ValueError) as exc2:
                print(f"inspector classify: cannot load the model: {exc2}", file=stderr)
                return 1
        say(f"model {classifier.title} ({len(classifier.class_names)} classes) on {classifier.device}")
    say(apply_accept(classifier, args.accept))
    names = list(classifier.class_names)
    card = classifier.card or {}
    model, version = str(card.get("name", "")), str(card.get("version", ""))

    out_path = Path(args.out) if args.out else None
    partial = out_path.with_name(out_path.name + ".partial") if out_path else None
    json_partial = Path(args.json + ".partial") if args.json else None
    # the finished JSON, complete before it replaces the one before (with the CSV, at once)
    json_ready = (Path(args.json).with_name(f".{Path(args.json).name}.ready-{os.getpid()}"
                                            f"{TEMP_SUFFIX}") if args.json else None)
    try:
        stream = (open_partial(partial) if out_path is not None
                  else stdout if not args.json else None)
    except PartialBusy:
        print(f"inspector classify: another inspector classify is writing {out_path} (it holds "
              f"{partial}); wait for it to finish or choose another --out", file=stderr)
        return 1
    except OSError as exc:
        print(f"inspector classify: cannot write {partial}: {exc.strerror or exc}", file=stderr)
        return 1
    tiling, source = command_tiling(args)
    if source:
        say(f"tiles: {tiling.describe(model_view(classifier))} ({source})")
    # needs_review in the JSON's summary at the window's threshold, as --accept takes its setting
    # (it was always 0.8 whatever the window's "Needs review below" said)
    from .settings import Key, read_setting

    session = (ReviewSession(names, float(read_setting(Key.THRESHOLD)), model_name=model,
                             model_version=version) if args.json else None)
    tile_rows: dict[str, list[dict]] | None = {} if args.tiles and session is not None else None

    def save_partial() -> str:
        """What was done so far, kept when the run stops early; says where it is."""
        kept = []
        if json_ready is not None:
            json_ready.unlink(missing_ok=True)
        with signals_held():   # a second Ctrl+C or SIGTERM must not cut the saving short
            if stream is not None and stream is not stdout:
                try:
                    stream.close()
                except OSError:   # the flush failed before: the disk is still full
                    pass
                try:
                    st = partial.stat()
                    if st.st_size > 0:
                        kept.append(str(partial))
                    elif stat.S_ISREG(st.st_mode):   # nothing could be written (a full disk):
                        partial.unlink()              # no empty file to point at
                except OSError:
                    pass
            if session is not None:
                try:
                    report.export_json(session, json_partial, tiles=tile_rows)
                    kept.append(str(json_partial))
                except OSError:
                    pass
        return f"; results so far are in {' and '.join(kept)}" if kept else ""

    bar = ProgressBar(len(paths), stderr) if not args.quiet else None
    failed: list[Result] = []
    done = 0
    writing = "standard output" if stream is stdout else str(partial)   # for an error message
    try:
        fmt = (report.spreadsheet_csv(system_decimal_point()) if args.excel
               else report.PLAIN_CSV)
        writer = report.CsvWriter(stream, names, args.tiles, fmt) if stream is not None else None
        for r in classify_paths(classifier, paths, batch_size=args.batch_size, workers=args.workers,
                                tiling=tiling, side_by_side=True):
            done += 1
            if r.error is not None:
                failed.append(r)
            row = report.make_row(r.path, names, r.probs, r.error, model=model,
                                  model_version=version, time=now_iso(),
                                  unknown_score=r.unknown_score, known=r.known,
                                  padding=r.padding)
            rows = (report.tile_rows(r.path, r.tiles, names, model=model,
                                     model_version=version, time=row["time"])
                    if args.tiles and r.tiles is not None else [])
            if writer is not None:
                writer.write(row)
                for t in rows:
                    writer.write(t)
            if tile_rows is not None and rows:   # by the session's name for it (absolute)
                tile_rows[report.path_text(os.path.abspath(r.path))] = rows
            if session is not None:
                new = session.add_paths([r.path])
                i = new[0] if new else session.index_of(r.path)
                if r.error is not None:   # at the CSV row's time: a join on (path, time)
                    session.set_error(i, r.error, row["time"])
                else:
                    session.set_prediction(i, r.probs, r.unknown_score, r.known, r.padding,
                                           row["time"])
            if bar is not None:
                bar.update(done, len(failed))
        if stream is not None:
            stream.flush()
            if stream is not stdout:
                os.fsync(stream.fileno())
                with contextlib.suppress(OSError):   # an earlier result keeps its permissions
                    os.chmod(partial, existing_mode(out_path, existing_mode(partial, 0o644)))
        if session is not None:   # written whole beside its place first
            writing = args.json
            report.export_json(session, json_ready, tiles=tile_rows)
            with contextlib.suppress(OSError):
                os.chmod(json_ready, existing_mode(Path(args.json),
                                                   existing_mode(json_ready, 0o644)))
        # then both results take their places together (a stop waits for it): a CSV and a JSON
        # of two different runs never stand side by side (a kill between the CSV's replacing and
        # the JSON's writing left the new CSV beside the old JSON; found by a crash audit)
        with signals_held():
            if stream is not None and stream is not stdout:
                writing = str(out_path)   # held open by a spreadsheet: said as the CSV
                if sys.platform == "win32":   # Windows renames no open file: let go at the last
                    stream.close()            # moment (elsewhere: held, locked, until in place)
                os.replace(partial, out_path)   # first: the one a spreadsheet may hold open
                stream.close()
            if session is not None:
                try:
                    os.replace(json_ready, args.json)
                except OSError:   # held open elsewhere (Windows): the CSV is this run's now
                    if stream is not None and stream is not stdout:
                        writing = f"{args.json} ({out_path} holds this run's results)"
                    raise
                json_partial.unlink(missing_ok=True)   # an interrupted run's, now out of date
    except KeyboardInterrupt as exc:   # Ctrl+C, or a Terminated signal (ends_as_interrupts)
        how = "stopped" if isinstance(exc, Terminated) else "interrupted"
        where = save_partial()
        with contextlib.suppress(OSError):   # the terminal may be gone (SIGHUP)
            print(f"\n{how} after {done} of {len(paths)} files{where}", file=stderr)
        return 128 + exc.signum if isinstance(exc, Terminated) else 130
    except BrokenPipeError:
        # the reader of stdout went away (e.g. ``| head``): stop quietly, as a pipe tool does
        _silence_stdout(stdout)
        save_partial()
        return 141
    except OSError as exc:   # a full disk, a folder that became read-only during the run
        print(f"\ninspector classify: cannot write {writing}: {exc.strerror or exc} "
              f"(after {done} of {len(paths)} files){save_partial()}", file=stderr)
        return 1

    for r in failed[:10]:
        print(f"cannot classify {r.path}: {r.error}", file=stderr)
    if len(failed) > 10:
        print(f"... and {len(failed) - 10} more (see the error column)", file=stderr)
    written = " and ".join(str(p) for p in (out_path, args.json) if p)
    say(f"{done - len(failed)} of {done} files classified" + (f"; results in {written}" if written else ""))
    if unlisted:
        say(f"{len(unlisted)} folder(s) could not be listed (above): their images are not in the "
            "results")
    return 2 if failed or unlisted else 0


def _silence_stdout(stdout: TextIO) -> None:
    """Points stdout at the null device so that Python's own flush at exit raises no second
    BrokenPipeError (the recipe of the Python documentation on SIGPIPE)."""
    try:
        fd = stdout.fileno()
    except (OSError, ValueError, AttributeError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def system_decimal_point() -> str:
    """The decimal mark of this PC's number settings (``--excel``): "," in German, Polish,
    Czech or Brazilian settings; "." when they cannot be read."""
    import locale

    try:
        before = locale.setlocale(locale.LC_NUMERIC)
        try:
            locale.setlocale(locale.LC_NUMERIC, "")
            return locale.localeconv()["decimal_point"] or "."
        finally:
            locale.setlocale(locale.LC_NUMERIC, before)
    except (locale.Error, ValueError):
        return "."


class PartialBusy(Exception):
    """Another run holds the ``.partial`` file of the same ``--out``."""


def open_partial(partial: Path) -> TextIO:
    """The CSV's ``.partial`` file, opened for writing under a lock held until the run ends:
    two runs given the same ``--out`` truncated and wrote one file at their own offsets (NUL
    bytes, rows of both) and then moved it from under each other, one of them saying nothing
    (found by an audit). The second is refused (``PartialBusy``) before it touches the file.
    Where files cannot be locked, as before."""
    for _ in range(10):
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
        try:
            if try_lock(fd) is False:
                raise PartialBusy(str(partial))
            st = os.fstat(fd)
            try:
                now = os.stat(partial)
            except FileNotFoundError:
                now = None
            if now is None or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                # opened just before the run holding it renamed it into place (then let go):
                # that file is the other run's finished CSV now, never to be truncated
                os.close(fd)
                continue
            if stat.S_ISREG(st.st_mode):
                os.ftruncate(fd, 0)
            return os.fdopen(fd, "w", encoding="utf-8", newline="", errors="backslashreplace")
        except BaseException:
            os.close(fd)
            raise
    raise PartialBusy(str(partial))


def expand_wildcards(given: list[str], platform: str | None = None) -> list[str]:
    """On Windows neither cmd.exe nor PowerShell expands ``*.png`` for a program (a Linux shell
    does): a path with ``*``, ``?`` or ``[`` that names no file is expanded here, in name
    order; one that matches nothing stays as given (its error row names it)."""
    if (platform or sys.platform) != "win32":
        return given
    import glob

    out: list[str] = []
    for arg in given:
        hits = sorted(glob.glob(arg)) if glob.has_magic(arg) and not os.path.lexists(arg) else []
        out += hits or [arg]
    return out


def _dash_names_as_paths(given: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """A file whose name starts with a dash (``-x.png`` from a shell's ``*.png``) is a path,
    not an unknown option that ends the whole batch: an argument that is no option of the
    command but names a file or folder here is given as ``./-x.png``. Option values and
    everything after ``--`` are left alone."""
    options = parser._option_string_actions   # noqa: SLF001 - argparse keeps them only there
    out: list[str] = []
    takes_value = False
    for i, arg in enumerate(given):
        if arg == "--":
            return out + given[i:]
        if not takes_value and arg.startswith("-") and arg != "-" \
                and arg.split("=", 1)[0] not in options and os.path.lexists(arg):
            arg = os.path.join(os.curdir, arg)
        action = options.get(arg.split("=", 1)[0]) if arg.startswith("-") else None
        takes_value = action is not None and "=" not in arg and action.nargs != 0
        out.append(arg)
    return out


def main(argv: Sequence[str] | None = None, classifier: Classifier | None = None) -> int:
    # paths may come after options too: "classify a.png --no-recursive folder"; after "--"
    # (paths that start with a dash) argparse's plain reading, which intermixing refuses
    given = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    given = _dash_names_as_paths(given, parser)
    args = parser.parse_args(given) if "--" in given else parser.parse_intermixed_args(given)
    args.paths = expand_wildcards(args.paths)
    outcome: list[int] = []
    try:
        with ends_as_interrupts():
            outcome.append(run(args, classifier))
    except KeyboardInterrupt as exc:
        if outcome:   # it came after the run had ended: its outcome stands
            return outcome[0]
        with contextlib.suppress(OSError):   # the terminal may be gone (SIGHUP)
            print("\ninspector classify: " + ("stopped" if isinstance(exc, Terminated)
                                              else "interrupted")
                  + " before any file was classified", file=sys.stderr)
        return 128 + exc.signum if isinstance(exc, Terminated) else 130
    return outcome[0]

"""Results kept between sessions, so that opening a folder again does not classify it again
(Qt-free).

A plant's folder of a shift or a week is opened again and again (the next morning, after a
restart, to finish a review), and each time every image was classified anew: seconds for small
images, but a 16-megapixel frame is 729 tiles (0.9 s each here, four times that on a slow PC),
so a folder of a thousand frames took a quarter of an hour before its triage was back. The
window's background classification now asks this cache first (:class:`CachedQueue`): an image
whose file has not changed (the same path, size, modification time and bytes at its two ends) and that was classified
by the same model (the bundle's every file; int8 apart from the float formats) with the same tile settings gets
its stored result; the rest are classified and stored.

What is stored is what the model computed: probabilities, the unknown score, a large image's
tiles. Known/unknown is judged again at the threshold in use when the result is read, as for a
changed *Accept as known* setting. Errors (an unreadable file) are never stored: the file is
read again next time.

The cache is one SQLite file in the user data folder (``results-cache.sqlite``), shared by
every window and folder of the user; rows not used for ``MAX_AGE_DAYS`` are dropped, and it
keeps at most ``MAX_BYTES`` of results (the least recently used go first). Deleting it loses
nothing but time. A cache that cannot be opened or written (a damaged file, a full disk,
another process holding it) only means classifying again: nothing here raises, and a damaged
file is set aside (``.damaged``) and started anew. Results of other code are never reused:
the key holds a digest of the compiled modules that read, tile and judge an image
(``CODE_MODULES``), and ``CACHE_VERSION`` is raised for a change elsewhere that alters a
result.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import json
import logging
import marshal
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Hashable, Iterable, Sequence

import numpy as np

from .batch import Result, WorkQueue
from .paths import user_data_dir
from .session import file_identity
from .tiles import Roi, TiledVerdict, TileSettings

log = logging.getLogger(__name__)

FILE_NAME = "results-cache.sqlite"
CACHE_VERSION = 1            # raised when how images are read, tiled or judged changes
SCHEMA_VERSION = 1           # the file's layout (PRAGMA user_version): another is started anew
MAX_AGE_DAYS = 90            # a row not used for this long is dropped
# the stored results' bytes kept at most (the least recently used go first): a 200 px image's
# row is 0.6 kB, a 3000 px frame's (225 tiles) 27 kB, so about 800,000 small images or 20,000
# such frames
MAX_BYTES = 512 * 1024 * 1024
SAMPLE_BYTES = 16384         # read from each end of a file for its digest (file_stat)
LOOKUP_CHUNK = 256           # paths looked up in one query, and hits handed on at once
BUSY_TIMEOUT_S = 2.0         # another window writing: wait this long, then go without
DISABLE_ENV = "STEEL_INSPECTOR_NO_RESULT_CACHE"   # 1: never read or write the cache
_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    model TEXT NOT NULL,      -- model_key(): the model, its format and the tile settings
    path TEXT NOT NULL,       -- normalised absolute path of the image file
    size INTEGER NOT NULL,    -- the file's size and modification time (ns) when it was read
    mtime INTEGER NOT NULL,
    sample TEXT NOT NULL,     -- a digest of the file's ends (file_stat)
    used REAL NOT NULL,       -- when last stored or read (seconds since the epoch)
    bytes INTEGER NOT NULL,   -- the length of data
    data BLOB NOT NULL,       -- pack(): the result's arrays
    PRIMARY KEY (model, path)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS results_used ON results (used);
"""

Stat = tuple[str | bytes, int, int]   # (normalised path, size, modification time in ns; the
#                                        path's bytes where its name is not UTF-8)


def cache_file() -> Path:
    return user_data_dir() / FILE_NAME


def disabled() -> bool:
    return os.environ.get(DISABLE_ENV) == "1"


# the modules whose code makes a result from an image file: reading and padding, the training
# view (how an image is read and tiled for a model), the model's layers and runtimes, the
# unknown score and the calibration (a change to any of them keys every
# result anew, so a new build never shows what the code before it computed)
CODE_MODULES = ("training.images", "training.padding", "training.card", "training.model",
                "training.litert", "training.openset", "training.fast_score", "training.detect",
                "training.calibration", "inspector.tiles", "inspector.engine",
                "inspector.runtime", "inspector.offload", "inspector.batch")


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str | None:
    """A digest of the compiled code of ``CODE_MODULES`` (from their loaders: the source
    tree's and the packaged executable's alike), None when one cannot be read."""
    digest = hashlib.sha256()
    try:
        for name in CODE_MODULES:
            spec = importlib.util.find_spec(name)
            code = spec.loader.get_code(name)
            digest.update(name.encode() + b"\0" + marshal.dumps(code))
    except Exception as exc:   # a loader without get_code
        log.info("result cache: cannot read the code of %s (%s); not caching", name, exc)
        return None
    return digest.hexdigest()


def model_key(classifier, tiling: TileSettings | None) -> str | None:
    """What a stored result depends on besides the image: the bundle's files (name, size,
    modification time: a retrained, re-exported or recalibrated model is another), whether it
    runs quantised to int8, the tile settings, and the code that reads and judges an image
(``code_fingerprint``; ``CACHE_VERSION`` for anything else). None when the classifier
    has no bundle folder (nothing to key it by: no caching).

    fp32, fp16 and TensorFlow count as one: they give the same labels and verdicts on NEU
    (benchmarks/bench_labels.py: fp16 1,649 of 1,650 verdicts, the other within fp16's rounding
    of the threshold), and which of fp32 and fp16 a load chooses follows a timing that often
    ties, so keying by it would throw the results away at random. int8 differs more (1,648
    labels and 1,639 verdicts of 1,650) and is kept apart."""
    folder = getattr(getattr(classifier, "bundle", None), "path", None)
    if folder is None:
        return None
    folder = Path(folder)
    try:
        files = sorted((p.relative_to(folder).as_posix(), st.st_size, st.st_mtime_ns)
                       for p in folder.rglob("*") if p.is_file() and (st := p.stat()))
    except OSError as exc:
        log.info("result cache: cannot list %s (%s); not caching", folder, exc)
        return None
    code = code_fingerprint()
    if not files or code is None:
        return None
    parts = [CACHE_VERSION, code, os.path.normcase(os.path.abspath(folder)), files,
             "int8" if getattr(classifier, "runtime_format", None) == "int8" else "float",
             None if tiling is None else [tiling.size, tiling.overlap]]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def file_stat(path: Path) -> Stat | None:
    """The file's identity for a lookup: its normalised path, size and modification time;
    None when it cannot be read (classified, so that its error shows)."""
    ident = file_identity(path)
    if ident is None:
        return None
    name = os.path.normcase(os.path.abspath(path))
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:   # a name that is not UTF-8 on disk: kept as its bytes (a BLOB)
        name = os.fsencode(name)
    return name, *ident


def file_sample(path: Path | str, stat: Stat | None = None) -> str | None:
    """A digest of the file's first and last ``SAMPLE_BYTES``: a camera that overwrites a
    frame with one of the same size within a file system's timestamp step (two seconds on FAT)
    gives another. Read only where a stored row's size and time match (a lookup) and after an
    image was classified (a store, from the system's file cache), so a first open reads no
    file twice from a share. None when it cannot be read or, given ``stat``, when the file is
    no longer the one ``stat`` describes (it changed while it was classified)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if stat is not None and (int(st.st_size), int(st.st_mtime_ns)) != tuple(stat[1:]):
                return None
            head = f.read(SAMPLE_BYTES)
            if st.st_size > 2 * SAMPLE_BYTES:
                f.seek(-SAMPLE_BYTES, os.SEEK_END)
            tail = f.read(SAMPLE_BYTES)
    except (OSError, ValueError):
        return None
    return hashlib.blake2b(head + b"|" + tail, digest_size=16).hexdigest()


# --------------------------------------------------------------------------------------------
# A result as bytes

def pack(r: Result) -> bytes:
    """A result's model outputs as an ``.npz`` (no pickles): probabilities, unknown score,
    padding, and a tiled image's tiles."""
    meta: dict = {"score": r.unknown_score, "padding": float(r.padding)}
    arrays = {"probs": np.asarray(r.probs)}
    t = r.tiles
    if t is not None:
        meta["tiles"] = {"rois": [[q.x, q.y, q.w, q.h] for q in t.tiles], "grid": list(t.grid),
                         "shape": list(t.shape), "overlap": float(t.overlap),
                         "winner": int(t.winner)}
        arrays["tile_probs"] = np.asarray(t.probs)
        arrays["tile_known"] = np.asarray(t.known, bool)
        for name in ("unknown_scores", "padding", "tile_scores"):
            if getattr(t, name) is not None:
                arrays[f"tile_{name}"] = np.asarray(getattr(t, name))
    buf = io.BytesIO()
    np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    return buf.getvalue()


def unpack(data: bytes, key: Hashable, path: Path, class_names: Sequence[str]) -> Result:
    """The result ``pack`` stored, for ``key`` and ``path``; raises ValueError (or KeyError,
    OSError) when the bytes are damaged. Known/unknown are as stored: ``Result.rejudge``."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        arrays = {k: z[k] for k in z.files if k != "meta"}
    score = meta["score"]
    tiles = None
    tm = meta.get("tiles")
    if tm is not None:
        tiles = TiledVerdict(
            tiles=[Roi(*map(int, q)) for q in tm["rois"]], grid=tuple(tm["grid"]),
            shape=tuple(tm["shape"]), overlap=float(tm["overlap"]),
            class_names=list(class_names), probs=arrays["tile_probs"],
            unknown_scores=arrays.get("tile_unknown_scores"), known=arrays["tile_known"],
            winner=int(tm["winner"]), padding=arrays.get("tile_padding"),
            tile_scores=arrays.get("tile_tile_scores"))
        if len(tiles.tiles) != len(tiles.probs) or not 0 <= tiles.winner < len(tiles.tiles):
            raise ValueError("tiles do not match their verdicts")
    probs = arrays["probs"]
    if probs.shape != (len(class_names),):
        raise ValueError(f"{probs.shape[-1] if probs.ndim else 0} probabilities for "
                         f"{len(class_names)} classes")
    return Result(key, path, probs, None, None if score is None else float(score), True, tiles,
                  float(meta["padding"]))


# --------------------------------------------------------------------------------------------
# The store

class ResultCache:
    """One model's stored results (``model``: :func:`model_key`). Thread-safe; every method
    gives up quietly (a miss, nothing stored) when the file cannot be used."""

    def __init__(self, model: str, class_names: Sequence[str], path: str | Path | None = None):
        self.model = model
        self.class_names = list(class_names)
        self.path = Path(path) if path is not None else cache_file()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._broken = False
        self.hits = 0       # results read back
        self.stored = 0     # results written

    # ---- the file ----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection | None:
        if self._db is not None or self._broken:
            return self._db
        for attempt in (1, 2):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False,
                                     isolation_level=None)
                try:
                    db.execute("PRAGMA journal_mode=WAL")   # readers never wait for a writer
                    db.execute("PRAGMA synchronous=NORMAL")
                    (schema,) = db.execute("PRAGMA user_version").fetchone()
                    if schema != SCHEMA_VERSION:   # a file of another version: started anew
                        db.executescript("DROP TABLE IF EXISTS results;"
                                         f"PRAGMA user_version = {SCHEMA_VERSION};")
                    db.executescript(_SCHEMA)
                    self._prune(db)
                except BaseException:
                    db.close()
                    raise
                self._db = db
                return db
            except sqlite3.DatabaseError as exc:
                if attempt == 1 and _is_damaged(exc) and self._set_aside(exc):
                    continue
                self._give_up(exc)
            except OSError as exc:
                self._give_up(exc)
            return None
        return None

    def _set_aside(self, exc: Exception) -> bool:
        try:
            os.replace(self.path, self.path.with_name(self.path.name + ".damaged"))
            for extra in ("-wal", "-shm"):
                Path(str(self.path) + extra).unlink(missing_ok=True)
        except OSError:
            return False
        log.warning("result cache %s was damaged (%s): set aside as %s.damaged, starting anew",
                    self.path, exc, self.path.name)
        return True

    def _give_up(self, exc: Exception) -> None:
        self._broken = True
        log.warning("result cache %s cannot be used (%s): images are classified again",
                    self.path, exc)

    @staticmethod
    def _prune(db: sqlite3.Connection, max_bytes: int | None = None) -> None:
        """Drops the rows not used for ``MAX_AGE_DAYS`` and, over ``max_bytes`` (default
        ``MAX_BYTES``), the least recently used down to four fifths of it."""
        max_bytes = MAX_BYTES if max_bytes is None else max_bytes
        db.execute("DELETE FROM results WHERE used < ?", (time.time() - MAX_AGE_DAYS * 86400,))
        (total,) = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM results").fetchone()
        if total <= max_bytes:
            return
        excess, cutoff = total - max_bytes * 4 // 5, None
        for used, size in db.execute("SELECT used, bytes FROM results ORDER BY used"):
            excess -= size
            cutoff = used
            if excess <= 0:
                break
        db.execute("DELETE FROM results WHERE used <= ?", (cutoff,))

    def close(self) -> None:
        if self.hits or self.stored:
            log.info("result cache: %d results reused, %d stored", self.hits, self.stored)
        with self._lock:
            if self._db is not None:
                try:
                    self._db.close()
                except sqlite3.Error:
                    pass
                self._db = None

    # ---- reading and writing -----------------------------------------------------------------
    def lookup(self, items: Sequence[tuple[Hashable, Path, Stat | None]]
               ) -> tuple[list[Result], list[tuple[Hashable, Path, Stat | None]]]:
        """(hits as Results, misses) for (key, path, stat) items; a stored row counts only for
        the same size, modification time and sample (``file_sample``). Hits are marked used
        now."""
        hits: list[Result] = []
        misses = []
        with self._lock:
            db = self._connect()
            rows: dict[str, tuple] = {}
            wanted = [s[0] for _, _, s in items if s is not None]
            if db is not None and wanted:
                try:
                    for i in range(0, len(wanted), LOOKUP_CHUNK):
                        part = wanted[i:i + LOOKUP_CHUNK]
                        marks = ",".join("?" * len(part))
                        for row in db.execute(f"SELECT path, size, mtime, sample, data FROM "
                                              f"results WHERE model = ? AND path IN ({marks})",
                                              [self.model, *part]):
                            rows[row[0]] = row[1:]
                except sqlite3.Error as exc:
                    log.info("result cache: lookup failed (%s); classifying", exc)
                    rows = {}
            used = []
            for key, path, stat in items:
                row = rows.get(stat[0]) if stat is not None else None
                result = None
                if row is not None and tuple(row[:2]) == stat[1:] and \
                        file_sample(path, stat) == row[2]:
                    try:
                        result = unpack(row[3], key, path, self.class_names)
                    except Exception as exc:   # a damaged row: classified again, and replaced
                        log.info("result cache: damaged row for %s (%s)", path, exc)
                if result is None:
                    misses.append((key, path, stat))
                else:
                    hits.append(result)
                    used.append(stat[0])
            if used and db is not None:
                now = time.time()
                try:
                    with db:   # one transaction: a commit for each would write ~15x as much
                        db.execute("BEGIN")
                        db.executemany("UPDATE results SET used = ? WHERE model = ? AND "
                                       "path = ?", [(now, self.model, p) for p in used])
                except sqlite3.Error as exc:
                    log.info("result cache: cannot mark rows used (%s)", exc)
        self.hits += len(hits)
        return hits, misses

    def store(self, results: Iterable[tuple[Result, Stat]]) -> int:
        """Keeps the results (those without an error) under the stats their files had before
        they were read (a file that no longer has them is not kept); returns how many were
        stored."""
        rows = []
        now = time.time()
        for r, stat in results:
            if r.error is not None or r.probs is None or stat is None:
                continue
            sample = file_sample(r.path, stat)
            if sample is None:   # changed while it was classified: its result is not its own
                continue
            try:
                data = pack(r)
                rows.append((self.model, *stat, sample, now, len(data), data))
            except Exception as exc:   # pragma: no cover - a result this module cannot pack
                log.info("result cache: cannot store %s (%s)", r.path, exc)
        if not rows:
            return 0
        with self._lock:
            db = self._connect()
            if db is None:
                return 0
            try:
                with db:   # one transaction
                    db.execute("BEGIN")
                    db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                   rows)
            except sqlite3.Error as exc:
                log.info("result cache: cannot store %d results (%s)", len(rows), exc)
                return 0
        self.stored += len(rows)
        return len(rows)


def _is_damaged(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


# --------------------------------------------------------------------------------------------
# The worker's queue, asking the cache first

class CachedQueue:
    """A ``WorkQueue`` as a classifier pipeline sees it (``take``, ``wait``, ``len``), that hands
    on only the images the cache does not have: each one it does have goes straight to
    ``emit`` as a Result, judged again at ``threshold()`` (the setting in use now). Results of
    the images it handed on go through :meth:`stored` on their way out. ``misses`` counts the
    images handed on; the cache's ``hits`` those it had."""

    def __init__(self, queue: WorkQueue, cache: ResultCache,
                 emit: Callable[[list[Result]], None],
                 threshold: Callable[[], float | None] = lambda: None,
                 should_stop: Callable[[], bool] = lambda: False):
        self.queue = queue
        self.cache = cache
        self._emit = emit
        self._threshold = threshold
        self._should_stop = should_stop
        self._stats: dict[Hashable, Stat | None] = {}   # handed on, no result yet
        self._lock = threading.Lock()
        self.misses = 0

    def _look(self, batch: list[tuple[Hashable, Path]]
              ) -> list[tuple[Hashable, Path, Stat | None]]:
        """Emits the hits among ``batch``; returns the misses (all of it, should the cache
        fail in a way it does not expect: never a batch lost with its thread)."""
        items = [(k, p, file_stat(p)) for k, p in batch]
        try:
            hits, misses = self.cache.lookup(items)
        except Exception as exc:  # noqa: BLE001
            log.warning("result cache: lookup failed (%r); classifying", exc)
            return [(k, p, None) for k, p, _ in items]   # None: not stored afterwards either
        if hits:
            threshold = self._threshold()
            for r in hits:
                r.rejudge(threshold)
            self._emit(hits)
        return misses

    def take(self, n: int) -> list[tuple[Hashable, Path]]:
        """Up to ``n`` images to classify; cached ones met on the way are emitted. Where the
        cache had every image asked for, the next look takes ``LOOKUP_CHUNK`` at once (a folder
        opened again); images taken beyond ``n`` go back to the queue, behind what is on
        screen. Returns early (maybe nothing) when ``should_stop()``: a model switch or the
        window's closing waits for this thread."""
        out: list[tuple[Hashable, Path]] = []
        want = n
        while len(out) < n and not self._should_stop():
            batch, epoch = self.queue.take_marked(want)
            if not batch:
                break
            misses = self._look(batch)
            room = n - len(out)
            if len(misses) > room:
                self.queue.put_back([(k, p) for k, p, _ in misses[room:]], epoch)
            with self._lock:
                for k, p, stat in misses[:room]:
                    self._stats[k] = stat
                    out.append((k, p))
            want = LOOKUP_CHUNK if not misses else n - len(out)
        self.misses += len(out)
        return out

    def skim(self, should_stop: Callable[[], bool] | None = None) -> int:
        """Emits the cached results of what is queued now, before the classifier is ready (a
        child process loading its model); the rest go back to the queue, in their order.
        Stops at the first ``LOOKUP_CHUNK`` of which the cache has none (a folder opened for
        the first time). Returns how many came from the cache."""
        should_stop = should_stop or self._should_stop
        found = 0
        kept: list[tuple[Hashable, Path]] = []
        epoch = None
        try:
            while not should_stop():
                batch, now = self.queue.take_marked(LOOKUP_CHUNK)
                if epoch is not None and now != epoch:   # cleared meanwhile: that is given up
                    kept = []
                epoch = now
                if not batch:
                    break
                before = self.cache.hits
                kept += [(k, p) for k, p, _ in self._look(batch)]
                if self.cache.hits == before:
                    break
                found += self.cache.hits - before
        finally:
            if epoch is not None:
                self.queue.put_back(kept, epoch)
        return found

    def stored(self, results: list[Result]) -> list[Result]:
        """Stores the results of images handed on by ``take``; returns them."""
        with self._lock:
            pairs = [(r, self._stats.pop(r.key, None)) for r in results]
        try:
            self.cache.store(pairs)
        except Exception as exc:  # noqa: BLE001 - the results go on to the window regardless
            log.warning("result cache: cannot store (%r)", exc)
        return results

    def wait(self, timeout: float) -> bool:
        return self.queue.wait(timeout)

    def __len__(self) -> int:
        return len(self.queue)

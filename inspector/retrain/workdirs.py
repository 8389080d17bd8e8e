"""Work folders: a private temporary folder per wizard or CLI run, locked while its process
lives, and the clean-up of those that earlier runs left behind."""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .. import paths
from ..locks import try_lock


WORK_DIR_NAME = "retrain-tmp"
BUNDLE_NAME = "bundle"   # where a run's trained model waits for the library, in its work folder


# what a new model needs beside its folder: its model, exports and card are about the size of
# the model it starts from (12 MB for the bundled one); twice that, and this much more
SPACE_MARGIN = 32 * 2**20

LOCK_NAME = ".in-use.lock"
# a work folder whose run was given up (a cancelled wizard whose last step was still running):
# whatever it holds is deleted, never kept as a finished model by a later clean-up
DISCARDED_NAME = ".discarded"
_held: dict[Path, object] = {}   # work folders of this process -> their open, locked lock file


def _try_lock(f) -> bool:
    """Takes the exclusive lock on an open file; False when another process has it (or files
    cannot be locked here: then the folder is never taken for a dead session's)."""
    return try_lock(f.fileno()) is True


def work_dir(base: Path | None = None) -> Path:
    """A new private folder for one wizard session's temporary files, locked while this process
    lives so that no other session's clean-up deletes it (``remove_work_dir`` when done)."""
    base = base or paths.user_data_dir() / WORK_DIR_NAME
    base.mkdir(parents=True, exist_ok=True)
    d = base / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    d.mkdir()
    f = open(d / LOCK_NAME, "a+b")
    _try_lock(f)
    _held[d] = f
    return d


def _rmtree(d: Path) -> None:
    """``shutil.rmtree`` that also deletes read-only files (Windows refuses those: the
    attribute is cleared first), never a hard link's (clearing it would change the linked
    original, e.g. a user's image); what still cannot go stays, as with ignore_errors."""
    def retry(func, path, exc_info):
        try:
            st = os.lstat(path)
            if func is os.unlink and st.st_nlink == 1 and not st.st_mode & stat.S_IWRITE:
                os.chmod(path, stat.S_IWRITE | stat.S_IREAD)
                os.unlink(path)
        except OSError:
            pass

    shutil.rmtree(d, onerror=retry)


def remove_work_dir(d: Path) -> None:
    """Unlocks and deletes a folder made by ``work_dir``."""
    f = _held.pop(Path(d), None)
    if f is not None:
        f.close()
    _rmtree(d)


def remove_work_dir_after(d: Path, threads: Iterable[threading.Thread]) -> threading.Thread:
    """Deletes a folder made by ``work_dir`` once ``threads`` have ended, from a thread of its
    own: a cancelled wizard whose last step (an export, the unknown detector's fit) outlasted
    its wait may not pull the folder from under it. The folder is marked given up first, so
    that the clean-up of a later start deletes it, and keeps no model from it, should this
    process end before the threads do. Returns the thread that deletes it."""
    threads = [t for t in threads if t.is_alive()]
    try:
        (Path(d) / DISCARDED_NAME).touch()
    except OSError:
        pass

    def remove() -> None:
        for t in threads:
            t.join()
        # the lock and the mark go last: a clean-up that took the folder in between would
        # otherwise find a model and no mark, and keep what the user threw away
        with contextlib.suppress(OSError):
            for entry in list(Path(d).iterdir()):
                if entry.name in (LOCK_NAME, DISCARDED_NAME):
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    _rmtree(entry)
                else:
                    with contextlib.suppress(OSError):
                        entry.unlink()
        remove_work_dir(d)

    remover = threading.Thread(target=remove, daemon=True, name="remove-work-dir")
    remover.start()
    return remover


def clean_stale_work_dirs(base: Path | None = None, older_than_s: float = 6 * 3600,
                          keep: Callable[[Path], str] | None = None) -> list[str]:
    """Deletes temporary folders that earlier sessions left behind (a crash, a kill): those whose
    lock no running process holds, however old or new; a folder without a lock file only when
    it is older than ``older_than_s``.

    A finished model in such a folder (a ``bundle`` that training wrote whole: the run died
    after its training, before the model reached the library) is not deleted with it, unless
    its run was given up (``remove_work_dir_after``):
    ``keep(bundle)`` (default :func:`keep_in_library`) saves it and says how; a folder whose
    model could not be kept is left as it is. Returns what was said, one line a model."""
    base = base or paths.user_data_dir() / WORK_DIR_NAME
    if not base.is_dir():
        return []
    keep = keep or keep_in_library
    said: list[str] = []
    now = time.time()
    for d in sorted(base.iterdir()):
        if d in _held:
            continue
        try:
            if not d.is_dir():
                continue
            lock = d / LOCK_NAME
            if lock.exists():
                with open(lock, "a+b") as f:
                    if not _try_lock(f):
                        continue            # another wizard is using it
            elif now - d.stat().st_mtime <= older_than_s:
                continue
            kept_all = True
            given_up = (d / DISCARDED_NAME).exists()
            for bundle in ([] if given_up else finished_models(d)):
                try:
                    said.append(keep(bundle))
                except Exception as exc:   # noqa: BLE001 - never lost: the folder stays
                    kept_all = False
                    said.append(f"a model trained by an earlier run that did not finish is in "
                                f"{bundle}; it could not be kept ({exc}), so it is left there "
                                f"(python -m inspector.library add {bundle} adds it)")
            if kept_all:
                _rmtree(d)
        except OSError:
            pass
    return said


def finished_models(work: Path) -> list[Path]:
    """The whole bundles in a work folder: ``bundle`` (the command's) and ``*/bundle`` (the
    wizard's runs). Training writes a bundle whole or not at all, model card last
    (``training.bundle.write_bundle_atomic``)."""
    from training.bundle import CARD_FILE

    found = [work / BUNDLE_NAME] + sorted(work.glob(f"*/{BUNDLE_NAME}"))
    return [b for b in found if (b / CARD_FILE).is_file()]


def keep_in_library(bundle: Path, library=None) -> str:
    """A model that an earlier run trained and never saved goes to the model library, not in
    use, as the command does when its comparison is stopped; returns what to tell the user.
    Raises (BundleError, LibraryError, OSError) when the library cannot take it."""
    from training.bundle import read_card
    from training.card import ModelCard

    from ..library import ModelLibrary

    started = bundle.parent.name if bundle.parent.parent.name == WORK_DIR_NAME else \
        bundle.parent.parent.name
    path = (library or ModelLibrary()).add(bundle, move=True)
    weak = ModelCard.of(read_card(path)).usability_problems()
    use = (f"its own test figures say it is not usable ({'; '.join(weak)})" if weak else
           f"python -m inspector.library activate {path.name} uses it" if weak is not None else
           f"it has no test figures; python -m inspector.library activate {path.name} uses it")
    return (f"a model trained by an earlier run that did not finish (started {_when(started)}) "
            f"was kept as {path.name} in {path.parent}: not in use, not compared with the "
            f"current model; {use}; python -m inspector.library remove {path.name} discards it")


def _when(folder_name: str) -> str:
    """'2026-12-07 01:15' from a work folder's name (20261207-011500-abc123)."""
    try:
        t = time.strptime(folder_name[:15], "%Y%m%d-%H%M%S")
        return time.strftime("%Y-%m-%d %H:%M", t)
    except ValueError:
        return folder_name


def folder_size(folder: Path | None) -> int:
    """Bytes in a folder's files (0 when there is none or it cannot be read)."""
    total = 0
    if folder is None:
        return 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def space_problem(folder: Path, current_bundle: Path | None = None) -> str | None:
    """Said before a training of minutes, not after it: a disk without room for the new model
    (about twice the model it starts from, and ``SPACE_MARGIN``) failed only when the trained
    model was written, with "No space left on device" naming no file (found by an audit).
    None when there is room, or when the free space cannot be read."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    need = 2 * folder_size(current_bundle) + SPACE_MARGIN
    if free >= need:
        return None
    mb = 2**20
    return (f"{folder}: {free / mb:.0f} MB free on its disk; the new model needs about "
            f"{need / mb:.0f} MB. Free some space there (or set STEEL_INSPECTOR_HOME to a folder "
            "on another disk) and start again")


@contextlib.contextmanager
def failures_named(folder: Path) -> Iterator[None]:
    """An operating-system error that names no file (a full disk while Keras or the exporter
    writes: "[Errno 28] No space left on device") is said with the folder the run writes in."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None or isinstance(exc, shutil.Error):
            raise
        raise OSError(exc.errno, f"{exc.strerror or exc} (writing in {folder})") from exc

"""Work folders: a private temporary folder per wizard or CLI run, locked while its process
lives, and the clean-up of those that earlier runs left behind."""
from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from .. import paths


WORK_DIR_NAME = "retrain-tmp"


LOCK_NAME = ".in-use.lock"
_held: dict[Path, object] = {}   # work folders of this process -> their open, locked lock file


def _try_lock(f) -> bool:
    """Takes an exclusive, non-blocking lock on an open file; False when another process has it.
    The operating system drops the lock when the process ends, however it ends."""
    try:
        if os.name == "nt":
            import msvcrt
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


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


def remove_work_dir(d: Path) -> None:
    """Unlocks and deletes a folder made by ``work_dir``."""
    f = _held.pop(Path(d), None)
    if f is not None:
        f.close()
    shutil.rmtree(d, ignore_errors=True)


def clean_stale_work_dirs(base: Path | None = None, older_than_s: float = 6 * 3600) -> None:
    """Deletes temporary folders that earlier sessions left behind (a crash, a kill): those whose
    lock no running process holds, however old or new; a folder without a lock file only when
    it is older than ``older_than_s``."""
    base = base or paths.user_data_dir() / WORK_DIR_NAME
    if not base.is_dir():
        return
    now = time.time()
    for d in base.iterdir():
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
                shutil.rmtree(d, ignore_errors=True)
            elif now - d.stat().st_mtime > older_than_s:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass

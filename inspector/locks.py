"""Advisory file locks without waiting, the same on Linux (flock) and Windows (msvcrt, the first
byte): the operating system lets go when the process ends, however it ends, so a lock that is
free again says its holder is gone. Used by the model library (its state, its hidden add and
remove folders) and the retraining work folders. Qt-free."""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys

log = logging.getLogger(__name__)

# errors that say another process holds the lock (anything else: files cannot be locked here)
LOCK_BUSY = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK}


def try_lock(fd: int) -> bool | None:
    """Takes the exclusive lock on an open file without waiting: True when taken, False when
    another process holds it, None where files cannot be locked (some network or FUSE file
    systems)."""
    try:
        if sys.platform == "win32":
            import msvcrt

            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in LOCK_BUSY:
            return False
        log.debug("files cannot be locked here (%s)", exc)
        return None


def unlock(fd: int) -> None:
    with contextlib.suppress(OSError):
        if sys.platform == "win32":
            import msvcrt

            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_UN)

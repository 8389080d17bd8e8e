"""Saving frames: snapshots for review and labelled frames for retraining, as new PNG files."""
from __future__ import annotations

import errno
import os
import threading
from datetime import datetime
from pathlib import Path

import numpy as np

from .sources import Source, quiet_cv2


# ---------------------------------------------------------------------------------------------
# Saving frames

def _png_bytes(image: np.ndarray) -> bytes:
    cv2 = quiet_cv2()
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(np.asarray(image)[..., ::-1]))
    if not ok:
        raise OSError("PNG encoding failed")
    return buf.tobytes()


# link() errors that are the save's own failure (a full disk or quota, a read-only or failing
# medium): any other means "no hard links here" (FAT and exFAT sticks: EPERM on Linux, and on
# Windows WinError 1 "Incorrect function", which Python gives as EINVAL; SMB shares: EOPNOTSUPP,
# WinError 50), and the frame is created under its name directly
_SAVE_FAILED = {getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EROFS", "EIO") if hasattr(errno, n)}


def _sync_folder(folder: Path) -> None:
    """The folder's entry for a new file made durable (POSIX; Windows has no folder handles)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_new(target: Path, data: bytes) -> None:
    """``data`` as the new file ``target`` (exclusive create), written through to the disk; a
    write that fails part-way (a full disk) leaves no file under that name."""
    with open(target, "xb") as f:
        try:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            f.close()
            try:
                target.unlink()
            except OSError:
                pass
            raise


def _link(tmp: Path, target: Path) -> bool:
    """``tmp`` linked as ``target``; False where the file system has no hard links (raises
    FileExistsError when the name is taken, and a save's own failure, ``_SAVE_FAILED``)."""
    try:
        os.link(tmp, target)
        return True
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno in _SAVE_FAILED:
            raise
        return False


def save_png_new(image: np.ndarray, folder: str | Path, stem: str) -> Path:
    """Writes ``image`` (RGB uint8) as ``folder/stem.png``, or ``stem-2.png``, ... : never over an
    existing file, and never a half-written file under the final name (written aside, then
    linked into place, which fails rather than replaces when the name is taken; on a file
    system without hard links, created exclusively and removed again if the write fails)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = _png_bytes(image)
    tmp = folder / f".{stem}.{os.getpid()}.{threading.get_ident()}.tmp"
    linked = True
    try:
        try:
            _write_new(tmp, data)
        except FileExistsError:   # a leftover of a crash with this process's id and thread
            tmp.unlink()
            _write_new(tmp, data)
        for n in range(1, 10000):
            target = folder / (f"{stem}.png" if n == 1 else f"{stem}-{n}.png")
            try:
                linked = linked and _link(tmp, target)
                if not linked:
                    _write_new(target, data)
            except FileExistsError:
                continue
            _sync_folder(folder)
            return target
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
    from ..paths import user_data_dir

    return user_data_dir() / "snapshots"


def save_snapshot(image: np.ndarray, source: Source, folder: str | Path | None = None,
                  when: datetime | None = None) -> Path:
    """A frame (or ROI) from ``source`` as a new PNG in the snapshots folder, named after
    ``when`` it was taken (default: now)."""
    return save_png_new(image, folder or snapshots_dir(), timestamp_stem(source.stem, when))


def save_labelled(image: np.ndarray, data_dir: str | Path, class_name: str,
                  source: Source, when: datetime | None = None) -> Path:
    """A frame (or ROI) as a new PNG in ``data_dir/class_name/`` (a training data layout). The
    class folder is made where needed; ``data_dir`` itself must exist: one on a drive or share
    that has gone would otherwise be made again on the local disk, and the frames saved where
    nobody looks for them."""
    if not class_name or any(c in class_name for c in "/\\") or class_name in (".", ".."):
        raise ValueError(f"{class_name!r} is not a usable class folder name")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data folder {data_dir} not found (a removed drive or share?)")
    folder = data_dir / class_name
    try:
        folder.mkdir(exist_ok=True)
    except FileExistsError:
        raise FileExistsError(f"{folder} is a file, not a class folder") from None
    return save_png_new(image, folder, timestamp_stem(source.stem, when))

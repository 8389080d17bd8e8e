"""Saving frames: snapshots for review and labelled frames for retraining, as new PNG files."""
from __future__ import annotations

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
    from ..paths import user_data_dir

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

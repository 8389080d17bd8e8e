"""The model bundle: the contract between training and the inspector app.

A bundle is a folder::

    model.keras        the Keras model (loads with safe_mode=True)
    model_card.json    name, version, classes, input size, metrics, training config, data set...
    history.csv        per-epoch training history (optional)
    confusion.png      confusion matrix on the bundle's test split (optional)
    split.json         which files were train / validation / test (optional)
    model_fp32.tflite, model_fp16.tflite, model_int8.tflite   exported models (optional)

Bundles are written atomically: everything goes into a hidden temporary folder beside the
target, which is renamed into place only when complete.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

from .card import ModelCard
from .litert import INSPECTION_INFO, KERNEL_FILE
from .openset import DETECTOR_FILE

MODEL_FILE = "model.keras"
CARD_FILE = "model_card.json"
SPLIT_FILE = "split.json"
TFLITE_FILES = {"tflite-fp32": "model_fp32.tflite", "tflite-fp16": "model_fp16.tflite",
                "tflite-int8": "model_int8.tflite"}


class BundleError(Exception):
    """A bundle that cannot be read; the message names the path and the problem."""


def library_versions() -> dict[str, str]:
    import platform
    versions = {"python": platform.python_version()}
    for mod in ("tensorflow", "keras", "numpy", "PIL"):
        try:
            m = __import__(mod)
            versions[mod if mod != "PIL" else "pillow"] = getattr(m, "__version__", "?")
        except Exception:  # pragma: no cover - optional
            pass
    return versions


def read_card(bundle_dir: str | Path) -> dict[str, Any]:
    path = Path(bundle_dir) / CARD_FILE
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):   # a file given where a folder is meant
        if not Path(bundle_dir).exists():
            raise BundleError(f"{bundle_dir}: no such folder") from None
        raise BundleError(f"{bundle_dir}: not a model bundle (no {CARD_FILE})") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: damaged model card ({exc})") from None
    except UnicodeDecodeError as exc:   # e.g. saved by an editor in a Windows code page
        raise BundleError(f"{path}: damaged model card (not UTF-8 text: byte {exc.object[exc.start]:#04x} "
                          f"at position {exc.start})") from None
    except OSError as exc:   # permission denied, a share gone, an I/O error
        raise BundleError(f"{path}: cannot read the model card ({exc.strerror or exc})") from None
    if not isinstance(card, dict):
        raise BundleError(f"{path}: damaged model card (not a JSON object)")
    for key in ("class_names", "input_size"):
        if key not in card:
            raise BundleError(f"{path}: model card lacks {key!r}")
    names, size = card["class_names"], card["input_size"]
    if not (isinstance(names, list) and len(names) >= 2
            and all(isinstance(c, str) and c for c in names)):
        raise BundleError(f"{path}: damaged model card (class_names must list at least two "
                          "class names)")
    if isinstance(size, bool) or not isinstance(size, (int, str)) or not str(size).isdecimal() \
            or int(size) < 1:
        raise BundleError(f"{path}: damaged model card (input_size {size!r} is not a size in "
                          "pixels)")
    return card


def read_split(bundle_dir: str | Path) -> dict[str, list[str]] | None:
    """What a bundle's ``split.json`` lists: train / validation / test -> file paths relative to
    the data folder it was trained on; None when the bundle has no split.json."""
    path = Path(bundle_dir) / SPLIT_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: damaged split file ({exc})") from None


# what a file browser leaves in an otherwise empty folder (any other file, hidden or not, counts)
_OS_LITTER = {".DS_Store", "Thumbs.db", "desktop.ini"}
# what a bundle holds (training writes them, export and calibrate add to them), besides the
# LiteRT files (*.tflite)
BUNDLE_FILES = {MODEL_FILE, CARD_FILE, SPLIT_FILE, "history.csv", "confusion.png",
                "test_report.json", INSPECTION_INFO, KERNEL_FILE, DETECTOR_FILE}


def _bundle_file(name: str) -> bool:
    """A bundle's own file, or litter (hidden names: a killed atomic write's temporary file,
    macOS ._*, NFS .nfs*) that goes with it."""
    return (name in BUNDLE_FILES or name in _OS_LITTER or name.startswith(".")
            or name.endswith(".tflite"))


def file_in_the_way(path: Path) -> Path:
    """The file that stands where a folder on the way to ``path`` should be (its parent when
    none is found: it came and went)."""
    return next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)


def check_bundle_target(target: str | Path, keep: tuple[str | Path, ...] = ()) -> None:
    """Raises BundleError unless a bundle may be written at ``target``: a new or empty folder,
    or an existing bundle (which the new one replaces). Never a file, a folder of anything else
    (a data folder, its parent: replacing it would delete what is in it), nor a folder that is,
    holds or lies inside one of ``keep`` (the training data)."""
    target = Path(target).resolve()   # real folders: "..", links
    for k in keep:
        k = Path(k).resolve()
        if target == k or target in k.parents or k in target.parents:
            raise BundleError(f"{target}: the output folder must not be, hold or lie inside "
                              f"{k}; choose another folder")
    if target.is_file():
        raise BundleError(f"{target}: is a file, not a model bundle folder; choose another path")
    if target.is_dir():
        names = [p.name for p in target.iterdir()]
        if any(n not in _OS_LITTER for n in names) and not (target / CARD_FILE).is_file():
            raise BundleError(f"{target}: holds files but is not a model bundle (no {CARD_FILE}); "
                              "writing the bundle would replace them: choose a new or empty "
                              "folder")
        foreign = sorted(n for n in names if not _bundle_file(n))
        if foreign:   # a report saved into the bundle, someone's notes: the new bundle
            # replaces the folder whole, so they would be deleted without a word
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                              else "")
            raise BundleError(f"{target}: holds files that are not part of a model bundle "
                              f"({shown}); the new bundle replaces the folder whole, so they "
                              "would be deleted: move them out, or choose another folder")
    try:   # the bundle is written beside the target first: that folder must take new files
        target.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryDirectory(dir=target.parent).cleanup()
    except (FileExistsError, NotADirectoryError):   # a file where a folder on the way should be
        raise BundleError(f"{target}: {file_in_the_way(target)} is a file, not a folder; choose "
                          "another path") from None
    except OSError as exc:
        raise BundleError(f"{target}: cannot write there ({exc.strerror or exc})") from None


STALE_PARTIAL_S = 3600.0   # a hidden .partial-/.old- folder this old was left by a killed run


def recover_interrupted(target: str | Path, older_than_s: float = STALE_PARTIAL_S) -> None:
    """What a ``write_bundle_atomic`` killed half-way (a power cut, a kill) left beside
    ``target``: the old bundle, renamed aside just before the new one was to take its place, is
    put back when ``target`` is missing and it is a whole bundle (a model card and the model);
    other ``.NAME.partial-*`` and ``.NAME.old-*`` folders older than ``older_than_s`` (another
    run may be writing right now) are deleted."""
    import glob

    target = Path(target).absolute()
    if not target.parent.is_dir():
        return
    now = time.time()

    def stale(p: Path) -> bool:
        try:
            return p.is_dir() and now - p.stat().st_mtime >= older_than_s
        except OSError:
            return False

    name = glob.escape(target.name)
    olds = sorted((p for p in target.parent.glob(f".{name}.old-*") if stale(p)),
                  key=lambda p: p.stat().st_mtime)
    if olds and not target.exists():
        try:
            read_card(olds[-1])
            if (olds[-1] / MODEL_FILE).is_file():
                os.replace(olds.pop(), target)
        except (BundleError, OSError):
            pass
    for p in olds + [p for p in target.parent.glob(f".{name}.partial-*") if stale(p)]:
        shutil.rmtree(p, ignore_errors=True)


def write_bundle_atomic(target: str | Path, fill: Callable[[Path], None]) -> Path:
    """Calls ``fill(tmp_dir)`` to write a bundle into a temporary folder beside ``target``, then
    moves it into place (replacing an existing bundle only after the new one is complete).
    If ``fill`` raises (or the run is cancelled), nothing at ``target`` changes. Refuses a
    target that is not a new or empty folder or an existing bundle (``check_bundle_target``)."""
    recover_interrupted(target)
    check_bundle_target(target)
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        fill(tmp)
        fsync_tree(tmp)
        if target.exists():
            from .cancel import signals_held

            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            # Ctrl+C between the two renames would leave no bundle at target (the old one set
            # aside until a later write an hour on): the swap is two renames, it finishes
            with signals_held():   # a Ctrl+C meanwhile waits until the old one is gone
                os.replace(target, old)
                os.utime(old)   # its age says when it was set aside (recover_interrupted)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def existing_mode(path: str | Path, default: int) -> int:
    """The permission bits of the file at ``path``, ``default`` when there is none."""
    import stat

    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return default


def replace_file_atomic(path: str | Path, data: bytes | Callable[[BinaryIO], None]) -> None:
    """Writes one file of a bundle (an export, an updated card) via a temporary file; ``data``
    its bytes, or a function that writes them to the open file (a large document written as
    it is made, never whole in memory)."""
    path = Path(path)
    _remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, existing_mode(path, 0o644))   # a replaced file keeps its permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


TEMP_SUFFIX = ".writing"     # the temporary file of replace_file_atomic: .NAME.XXXXXXXX.writing
STALE_TEMP_S = 6 * 3600      # one this old was left by a writer that died (a kill, a power cut)


def _remove_stale_temps(path: Path) -> None:
    """Deletes the temporary files that writers of ``path`` killed half-way left beside it (a
    crash audit found them piling up in export folders); a recent one may be another writer's
    at work, and stays."""
    now = time.time()
    try:
        for tmp in path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > STALE_TEMP_S:
                    tmp.unlink()
    except OSError:
        pass


def write_json(path: str | Path, obj: Any) -> None:
    replace_file_atomic(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8"))


def fsync_tree(folder: Path) -> None:
    """Flushes every file to disk and gives the usual permissions (temp files are private)."""
    os.chmod(folder, 0o755)
    for p in folder.rglob("*"):
        if p.is_file():
            os.chmod(p, 0o644)
            # opened for writing: on Windows os.fsync is _commit (FlushFileBuffers), which
            # refuses a read-only handle with EBADF (Linux flushes either)
            fd = os.open(p, os.O_RDWR | getattr(os, "O_BINARY", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


@dataclass
class Bundle:
    path: Path
    card: dict[str, Any]
    model: Any  # keras.Model

    @property
    def class_names(self) -> list[str]:
        return list(self.card["class_names"])

    @property
    def input_size(self) -> int:
        return int(self.card["input_size"])

    @property
    def title(self) -> str:
        return ModelCard.of(self.card).title

    @property
    def view(self):
        """The scale the model was trained at (training.card.TrainingView)."""
        return ModelCard.of(self.card).view


def load_bundle(bundle_dir: str | Path) -> Bundle:
    """Loads a bundle's Keras model (safe_mode=True, compile=False) and its model card."""
    bundle_dir = Path(bundle_dir)
    if bundle_dir.is_file() and bundle_dir.name == MODEL_FILE:
        bundle_dir = bundle_dir.parent
    card = read_card(bundle_dir)
    model_path = bundle_dir / MODEL_FILE
    if not model_path.exists():
        raise BundleError(f"{bundle_dir}: bundle has no {MODEL_FILE}")
    if not zipfile.is_zipfile(model_path):   # Keras would say "File not found"
        raise BundleError(f"{model_path}: damaged (not a .keras file); copy the bundle again "
                          "or train it again")
    import keras
    try:
        model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    except Exception as exc:
        raise BundleError(f"{model_path}: cannot load model ({type(exc).__name__}: {exc})") from None
    if model.output_shape[-1] != len(card["class_names"]):
        raise BundleError(f"{bundle_dir}: the model has {model.output_shape[-1]} outputs but the "
                          f"card names {len(card['class_names'])} classes")
    side = tuple(model.input_shape[1:3])
    if any(s is not None for s in side) and side != (int(card["input_size"]),) * 2:
        raise BundleError(f"{bundle_dir}: the model takes {side[0]}x{side[1]} images but its card "
                          f"says input_size {card['input_size']}; the card belongs to another "
                          "model")
    return Bundle(bundle_dir, card, model)

"""The user's model library: retrained model bundles kept as numbered versions, one of them in use.

Layout under ``paths.model_library_dir()``::

    ssdc-mininet-v1/      a model bundle (model.keras, model_card.json, ...)
    ssdc-mininet-v2/
    active.json           {"active": "ssdc-mininet-v2", "history": [null, "ssdc-mininet-v1"]}

``active`` null (or no ``active.json``) means the bundled model is in use; the bundled model is
never written to. Versions are added by copying (or moving) a finished bundle into a hidden
folder that is renamed into place; ``active.json`` is replaced atomically. Qt-free.

Command line::

    python -m inspector.library list
    python -m inspector.library add BUNDLE [--name NAME] [--activate]
    python -m inspector.library activate VERSION      (a folder name, v3, 3, or "bundled")
    python -m inspector.library rollback
    python -m inspector.library remove VERSION
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import stat
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from training.bundle import CARD_FILE, MODEL_FILE, BundleError, fsync_tree, read_card, write_json
from training.card import ModelCard, local_minute

from . import paths
from .locks import try_lock, unlock

log = logging.getLogger(__name__)

ACTIVE_FILE = "active.json"
LOCK_FILE = ".library.lock"   # held while active.json is read, changed and written
LOCK_WAIT_S = 30.0
BUNDLED = "bundled"
_VERSION_DIR = re.compile(r"^(?P<name>.+)-v(?P<number>\d+)$")
REMOVED_SUFFIX = ".removed"   # the marker a removed version leaves (".NAME-vN.removed")
STALE_WORK_S = 3600.0   # a hidden add or remove folder this old was left by a killed process


def _model_file_ok(bundle: Path) -> bool:
    try:
        _check_model_file(bundle)
        return True
    except BundleError:
        return False


def _check_model_file(bundle: Path) -> None:
    """Raises BundleError unless the bundle's model file is there and is a Keras archive (a
    zip): a file damaged in a copy is refused when it is added or chosen, not at the next start."""
    import zipfile

    model = bundle / MODEL_FILE
    if not model.is_file():
        raise BundleError(f"{bundle}: bundle has no {MODEL_FILE}")
    if not zipfile.is_zipfile(model):
        raise BundleError(f"{model}: damaged (not a Keras model archive)")
    _check_class_count(bundle)


def _check_class_count(bundle: Path) -> None:
    """Raises BundleError when the model's classifier gives another number of classes than its
    card names (files of two models put together, a hand-edited card): such a version was put
    into use, and every later start fell back to the bundled model. Read from the classifier's
    weights beside the export (no model is loaded); a bundle without them is not checked."""
    import numpy as np

    from training.litert import KERNEL_FILE

    kernel = bundle / KERNEL_FILE
    try:
        names = read_card(bundle).get("class_names")
        if not kernel.is_file() or not isinstance(names, list):
            return
        shape = np.load(kernel, allow_pickle=False, mmap_mode="r").shape
    except (OSError, ValueError):
        return   # an unreadable kernel: the load says what is wrong with it
    if len(shape) == 2 and shape[1] != len(names):
        raise BundleError(f"{bundle}: its model gives {shape[1]} classes, its model card names "
                          f"{len(names)}: the bundle's files come from different models")


class LibraryError(Exception):
    """A library operation that cannot be done; the message says why."""


def _first_copy_error(exc: shutil.Error) -> str:
    """``shutil.copytree``'s error says every file that failed as one Python list (a full disk:
    a thousand characters); the first failure says what went wrong."""
    failures = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
    if failures and isinstance(failures[0], tuple) and len(failures[0]) == 3:
        more = f"; {len(failures) - 1} more file(s) failed" if len(failures) > 1 else ""
        return f"{failures[0][2]}{more}"
    return str(exc)


def _is_link(path: str) -> bool:
    """A symbolic link, or on Windows a junction (a mount-point reparse point, which Python
    3.11's ``islink`` does not see and ``os.walk`` and ``copytree`` follow; other reparse
    points, such as deduplicated or compressed files, are ordinary files)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISLNK(st.st_mode) or (
        getattr(st, "st_reparse_tag", 0) == getattr(stat, "IO_REPARSE_TAG_MOUNT_POINT", -1))


def _links_inside(bundle: Path) -> list[Path]:
    """The links inside a bundle's folder (the folder itself may be one), links to folders not
    followed."""
    found = []
    for dirpath, dirnames, filenames in os.walk(bundle):
        links = [n for n in dirnames + filenames if _is_link(os.path.join(dirpath, n))]
        dirnames[:] = [n for n in dirnames if n not in links]   # not walked into
        found += [Path(dirpath) / n for n in links]
    return found


def _check_links(bundle: Path) -> list[Path]:
    """Raises LibraryError at a link to a folder inside the bundle (copying it could copy a whole
    drive, or go round a loop for ever); returns the links to files, which are copied as the
    files they point to."""
    links = _links_inside(bundle)
    for link in links:
        if link.is_dir():
            raise LibraryError(f"{link}: a link to a folder ({link.resolve()}) inside the "
                               f"bundle; a bundle holds its own files: copy that folder in, or "
                               f"remove the link")
    return links


class NotUsableError(LibraryError):
    """Activating a version whose own test figures say it is not usable (near chance, or a
    class it rarely finds); ``activate(..., force=True)`` uses it anyway."""

    def __init__(self, version: str, problems: list[str]):
        self.version, self.problems = version, list(problems)
        super().__init__(f"{version} is not usable: " + "; ".join(problems)
                         + ". It was kept to look at; use --force to put it into use anyway")


@dataclass
class ModelVersion:
    version: str   # folder name, e.g. "ssdc-mininet-v3"
    name: str      # "ssdc-mininet"
    number: int    # 3
    path: Path
    card: dict[str, Any]

    @property
    def created(self) -> str:
        return str(self.card.get("created", ""))

    @property
    def metrics(self) -> dict[str, Any]:
        return self.card.get("metrics") or {}

    @property
    def test_accuracy(self) -> float | None:
        return card_test_accuracy(self.card)

    @property
    def title(self) -> str:
        return f"{self.card.get('name', self.name)} v{self.number}"

    @property
    def class_names(self) -> list[str]:
        return list(self.card.get("class_names", []))


def card_test_accuracy(card: dict[str, Any]) -> float | None:
    return ModelCard.of(card).test_accuracy


# letters that Unicode's decomposition leaves as they are
_PLAIN = str.maketrans({"ł": "l", "đ": "d", "ø": "o", "ß": "ss", "æ": "ae", "œ": "oe", "ı": "i",
                        "þ": "th", "ð": "d"})
SLUG_LENGTH = 60


def slug(name: str) -> str:
    """A folder-name-safe form of a model name: "SSDC-MiniNet (plant 2)" -> "ssdc-mininet-plant-2";
    Latin accents are dropped ("Walcownia Łódź" -> "walcownia-lodz") and other scripts kept as
    written, marks and all ("氧化皮 2" -> "氧化皮-2", "ガラス" stays "ガラス", not "カラス"):
    keeping a-z and 0-9 alone made "walcownia-d" of the first and "model" of every Chinese name
    (a locale audit). At most ``SLUG_LENGTH`` characters. A library that holds versions under
    the name's slug before 2026-12-07 (``legacy_slug``) goes on numbering them (``next_path``)."""
    import unicodedata

    out = []
    for ch in unicodedata.normalize("NFC", name.casefold().translate(_PLAIN)):
        base = "".join(c for c in unicodedata.normalize("NFKD", ch)
                       if not unicodedata.combining(c))
        if base and base.isascii():   # a Latin letter with its accent: the letter
            out.append(base if base.isalnum() else "-")
        elif ch.isalnum() or unicodedata.category(ch).startswith("M"):
            out.append(ch)            # another script's letter or mark, as written
        else:
            out.append("-")
    s = re.sub(r"-+", "-", "".join(out)).strip("-")[:SLUG_LENGTH].strip("-")
    return s or "model"


def legacy_slug(name: str) -> str:
    """The slug before 2026-12-07: a-z and 0-9 only."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


class ModelLibrary:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else paths.model_library_dir()
        self._swept = False
        # why the record of the model in use could not be read, when it could not (the app then
        # starts with the bundled model and says this, not only in a log nobody sees)
        self.state_problem: str | None = None

    # ---- reading -----------------------------------------------------------------------------
    def scan(self) -> tuple[list[ModelVersion], list[tuple[str, Path, str]]]:
        """The version folders, each card read once: the readable ones (``versions``) and those
        whose model card cannot be read (``damaged_versions``)."""
        good: list[ModelVersion] = []
        damaged: list[tuple[str, Path, str]] = []
        if not self.root.is_dir():
            return good, damaged
        if not self._swept:
            self._swept = True
            self.sweep_interrupted()
        for d in self.root.iterdir():
            m = _VERSION_DIR.match(d.name)
            if not m or not d.is_dir() or d.name.startswith("."):
                continue
            try:
                good.append(ModelVersion(d.name, m["name"], int(m["number"]), d, read_card(d)))
            except BundleError as exc:
                damaged.append((d.name, d, str(exc)))
        good.sort(key=lambda v: (v.created, v.name, v.number))
        damaged.sort()
        return good, damaged

    def sweep_interrupted(self, older_than_s: float = STALE_WORK_S) -> list[Path]:
        """What an add or a remove killed half-way (a power cut, a kill) left in the library's
        hidden folders, older than ``older_than_s`` (another process may be at work on a newer
        one): a version being removed, or a copy being added (its source is still there), is
        deleted; a bundle moved in whole (``add(move=True)``: it may be the only copy of a
        retrained model), or an add of a version before 2026-12-07 (no lock file beside it:
        it may have been such a move), is added after all, or left for next time if that
        fails. Returns the versions added."""
        added: list[Path] = []
        now = time.time()
        for d in self.root.iterdir():
            m = _WORK_DIR.fullmatch(d.name)
            try:
                if not m or not d.is_dir():
                    continue
                state = _work_state(d)   # its process's lock says at once, where there is one
                if state == "live" or (state == "unknown" and
                                       now - d.stat().st_mtime < older_than_s):
                    continue
            except OSError:
                continue
            # before 2026-12-05 (269bde7) add(move=True) moved a bundle into ".NAME.adding-",
            # and before 2026-12-07 no add left a lock file: such a folder may be the only
            # copy of a retrained model, so it is finished as a move, never deleted (a copy of
            # those days cut short is then a spare version, or left here if it is no bundle)
            if m["what"] == "moving" or (m["what"] == "adding" and state == "unknown"
                                         and not _lock_of(d).exists()):
                try:
                    card = read_card(d)
                    _check_model_file(d)
                except BundleError as exc:
                    log.warning("%s: left by an interrupted add, not a bundle (%s)", d, exc)
                    continue   # never deleted: it was moved here, its source is gone
                try:
                    target = self.next_path(m["name"])
                    card.setdefault("library", {})["version"] = target.name
                    write_json(d / CARD_FILE, card)
                    os.rename(d, target)
                except OSError as exc:   # a full disk, another add took the number: next time
                    log.warning("%s: an interrupted add could not be finished (%s)", d, exc)
                    continue
                log.warning("%s: an interrupted add finished as %s", d, target.name)
                added.append(target)
                _remove_lock_of(d)
                continue
            shutil.rmtree(d, ignore_errors=True)
            _remove_lock_of(d)
        for lock in self.root.glob(".*.lock"):   # a lock file whose folder is gone
            folder = lock.with_name(lock.name[:-len(".lock")])
            if _WORK_DIR.fullmatch(folder.name) and not folder.exists() and \
                    _work_state(folder) == "dead":
                _remove_lock_of(folder)
        return added

    def versions(self) -> list[ModelVersion]:
        """The library's bundles, oldest first (by creation time, then number). Folders that are
        not readable bundles are skipped (``damaged_versions`` lists them)."""
        return self.scan()[0]

    def damaged_versions(self) -> list[tuple[str, Path, str]]:
        """Version folders whose model card cannot be read: (folder name, path, the problem),
        by name; shown (and removable) in the Models dialog instead of vanishing from it."""
        return self.scan()[1]

    def find(self, ref: str | Path) -> ModelVersion:
        """A version by folder name, path, "vN" or "N" (when only one model name has that
        number). Raises LibraryError."""
        versions = self.versions()
        text = str(ref).strip()
        for v in versions:
            if text == v.version or _same_path(text, v.path):
                return v
        m = re.fullmatch(r"v?(\d+)", text)
        if m:
            hits = [v for v in versions if v.number == int(m.group(1))]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise LibraryError(f"{text!r} is ambiguous: {', '.join(v.version for v in hits)}")
        known = ", ".join(v.version for v in versions) or "the library is empty"
        raise LibraryError(f"no model version {text!r} in {self.root} ({known})")

    @contextlib.contextmanager
    def _locked(self):
        """One change of the state at a time, across processes (two windows, a window and the
        command line): without it, two switches at once kept only one in the history, and a
        remove beside an activate of the same version could leave active.json naming a version
        that is gone. Best effort: where the lock file cannot be made (a read-only library),
        the change goes on unlocked and its own write says what is wrong."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            yield
            return
        try:
            _lock_file(fd)
            yield
        finally:
            unlock(fd)
            os.close(fd)

    def _state(self) -> dict[str, Any]:
        path = self.root / ACTIVE_FILE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"active": None, "history": []}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("%s: unreadable (%s); using the bundled model", path, exc)
            self.state_problem = (f"{path} cannot be read ({getattr(exc, 'strerror', None) or exc})"
                                  "; which library model was in use is not known")
            return {"active": None, "history": []}
        if not isinstance(state, dict):
            self.state_problem = f"{path} is damaged; which library model was in use is not known"
            return {"active": None, "history": []}
        history = state.get("history")
        active = state.get("active")
        if active is not None and not isinstance(active, str):   # a damaged file: as unreadable
            log.warning("%s: the model library's active version is %r, not a name; using the "
                        "bundled model",
                        path, active)
            self.state_problem = f"{path} is damaged; which library model was in use is not known"
            active = None
        return {"active": active or None,
                "history": [h for h in history if h is None or isinstance(h, str)]
                if isinstance(history, list) else []}

    def _save_state(self, active: str | None, history: list[str | None]) -> None:
        path = self.root / ACTIVE_FILE
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            write_json(path, {"active": active, "history": history[-50:]})
        except OSError as exc:   # a full or read-only disk, a folder in its place
            raise LibraryError(f"cannot save which model is in use to {path}: "
                               f"{exc.strerror or exc}") from exc

    def active_version(self) -> ModelVersion | None:
        """The version in use, or None for the bundled model (also when the active folder has
        gone)."""
        name = self._state()["active"]
        if not name:
            return None
        d = self.root / name
        try:
            card = read_card(d)
        except BundleError:
            return None
        m = _VERSION_DIR.match(name)
        return ModelVersion(name, m["name"] if m else name, int(m["number"]) if m else 0, d, card)

    def active_path(self) -> Path | None:
        """The bundle to load, or None: use the bundled model. A version that is active but
        damaged or gone is still returned: loading it then fails with a message that names it,
        and the app falls back to the bundled model saying so (``batch.startup_fallback``),
        instead of silently classifying with another model than the one chosen."""
        name = self._state()["active"]
        return self.root / name if name else None

    def resolved_active_path(self) -> Path:
        """The bundle to start from (retraining): the active version, or the bundled model
        when there is none or it cannot be read (said, naming it)."""
        v = self.active_version()
        if v is not None:
            return v.path
        damaged = self.active_path()
        if damaged is not None:
            log.warning("the active model %s cannot be read (damaged or removed); using the "
                        "bundled model", damaged)
        return paths.bundled_model_dir()

    # ---- changing ----------------------------------------------------------------------------
    def next_path(self, name: str = "ssdc-mininet") -> Path:
        """The folder the next version of ``name`` (a model name, or its slug) gets (e.g. train
        directly into it). A library that holds versions of it under the slug before 2026-12-07
        ("walcownia-d" for "Walcownia Łódź", "model" for a Chinese name) goes on with those."""
        new, old = slug(name), legacy_slug(name)
        numbers = {new: [0], old: [0]}
        if self.root.is_dir():
            for d in self.root.iterdir():
                # ".NAME-vN.removed": a removed version's number is not given again ("v2" in
                # notes and on other PCs would otherwise name two different models)
                m = _VERSION_DIR.match(d.name.lstrip(".").removesuffix(REMOVED_SUFFIX))
                if m and m["name"] in numbers:
                    numbers[m["name"]].append(int(m["number"]))
        # ("model", every name without a-z before, is no model's series)
        name = (old if old not in (new, "model") and max(numbers[old]) > 0
                and max(numbers[new]) == 0 else new)
        return self.root / f"{name}-v{max(numbers[name]) + 1}"

    def add(self, bundle_path: str | Path, name: str | None = None, move: bool = False) -> Path:
        """Puts a finished bundle into the library as the next version of ``name`` (default: the
        card's model name) and returns its folder. ``move`` moves instead of copying (the
        source then disappears). The new folder appears complete or not at all. A link to a
        file inside the bundle is copied as the file it points to; a link to a folder is
        refused (LibraryError)."""
        src = Path(bundle_path)
        card = read_card(src)  # raises BundleError naming the folder
        _check_model_file(src)
        file_links = _check_links(src)
        model_name = name or card.get("name") or "model"
        name = slug(model_name)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.moving-{uuid.uuid4().hex[:8]}"   # whole once moved
        guards = [_WorkGuard(tmp)]   # held until the version is in place (sweep_interrupted)
        try:
            moved = False
            # a moved link could point nowhere once moved; a bundle given as a link to its
            # folder would move the link, not the folder
            if move and not file_links and not _is_link(str(src)):
                try:
                    os.replace(src, tmp)
                    moved = True
                except OSError:  # another file system: copy
                    pass
            if not moved:   # a copy may be cut short; its source is still there
                tmp = tmp.with_name(f".{name}.adding-{uuid.uuid4().hex[:8]}")
                guards.append(_WorkGuard(tmp))
                try:
                    # not the source's permissions: a bundle on a CD or a write-protected stick
                    # is read-only, and its copy then could not take its card
                    shutil.copytree(src, tmp, copy_function=shutil.copyfile)
                    _make_writable(tmp)
                except shutil.Error as exc:   # its text: a list of every file that failed
                    raise LibraryError(f"{self.root}: cannot copy {src} into the library "
                                       f"({_first_copy_error(exc)})") from None
            for _ in range(1000):
                target = self.next_path(model_name)
                card["library"] = {"version": target.name,
                                   "added": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                   "source": str(src.absolute())}
                write_json(tmp / CARD_FILE, card)
                fsync_tree(tmp)
                try:
                    os.rename(tmp, target)  # fails if another process took this number
                except OSError:
                    if target.exists():
                        continue
                    raise
                if move and not moved:
                    shutil.rmtree(src, ignore_errors=True)
                return target
            raise LibraryError(f"{self.root}: could not find a free version folder for {name}")
        except BaseException:
            if tmp.exists():
                if move and moved and not src.exists():
                    os.replace(tmp, src)  # give the caller its bundle back
                else:
                    _make_writable(tmp)   # a read-only copy is not left behind for ever
                    shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            for g in guards:
                g.release()

    def activate(self, ref: str | Path | None, force: bool = False) -> Path | None:
        """Uses a library version from now on (``None`` or "bundled": the bundled model).
        Returns the bundle path to load (None: the bundled model). A version whose own test
        figures say it is not usable (``ModelCard.usability_problems``) is refused with
        NotUsableError unless ``force``."""
        with self._locked():
            return self._activate(ref, force)

    def _activate(self, ref: str | Path | None, force: bool) -> Path | None:
        state = self._state()
        if ref is None or str(ref) == BUNDLED or _same_path(str(ref), paths.bundled_model_dir()):
            new, path = None, None
        else:
            v = self.find(ref)
            new, path = v.version, v.path
            _check_model_file(path)
            try:
                problems = ModelCard.of(v.card).usability_problems() if not force else None
            except (TypeError, ValueError, AttributeError, KeyError) as exc:   # hand-edited
                raise LibraryError(f"{path / CARD_FILE}: damaged model card ({exc}); remove "
                                   "this version or copy its bundle in again") from None
            if problems:
                raise NotUsableError(v.version, problems)
        if new != state["active"]:
            self._save_state(new, state["history"] + [state["active"]])
        return path

    def active_name(self) -> str | None:
        """The active version's folder name as recorded (None: the bundled model), readable or
        not."""
        return self._state()["active"]

    def undo_activation(self, previous: str | None) -> None:
        """Makes ``previous`` (an ``active_name()``) active again after a switch whose model
        could not be loaded, dropping the switch from the history."""
        with self._locked():
            state = self._state()
            history = list(state["history"])
            if history and history[-1] == previous:
                history.pop()
            self._save_state(previous, history)

    def rollback(self) -> Path | None:
        """Goes back to the model that was in use before the current one (skipping removed
        versions) and returns its path (None: the bundled model). Raises LibraryError when
        there is nothing to go back to."""
        with self._locked():
            return self._rollback()

    def _rollback(self) -> Path | None:
        state = self._state()
        history = list(state["history"])
        current = state["active"]
        while history:
            prev = history.pop()
            if prev == current:
                continue
            if prev is None or ((self.root / prev / CARD_FILE).is_file()
                                and _model_file_ok(self.root / prev)):   # damaged: skipped
                self._save_state(prev, history)
                return self.root / prev if prev else None
        if current is not None:
            self._save_state(None, [])
            return None
        raise LibraryError("the bundled model is in use and there is no earlier model to roll "
                           "back to")

    def can_roll_back(self) -> bool:
        state = self._state()
        if state["active"] is not None:
            return True
        return any(p is not None and p != state["active"] and (self.root / p / CARD_FILE).is_file()
                   for p in state["history"])

    def remove(self, ref: str | Path) -> None:
        """Deletes a version (a damaged one too, by its folder name); refuses the one in use
        and the bundled model, which is part of the program."""
        if str(ref) == BUNDLED or _same_path(str(ref), paths.bundled_model_dir()):
            raise LibraryError("the bundled model is part of the program and cannot be removed; "
                               "only the library's versions can")
        try:
            v = self.find(ref)
        except LibraryError:
            damaged = {name: path for name, path, _ in self.damaged_versions()}
            if str(ref) not in damaged:
                raise
            v = ModelVersion(str(ref), str(ref), 0, damaged[str(ref)], {})
        trash = self.root / f".{v.version}.removing-{uuid.uuid4().hex[:8]}"
        guard = _WorkGuard(trash)
        try:
            with self._locked():   # not made active by another process between check and removal
                state = self._state()
                if state["active"] == v.version:
                    raise LibraryError(f"{v.version} is in use; switch to another model before "
                                       "removing it")
                if not v.path.exists():
                    raise LibraryError(f"{v.version} has been removed already")
                os.replace(v.path, trash)  # the version disappears at once, whole
                with contextlib.suppress(OSError):   # its number stays taken (next_path)
                    (self.root / f".{v.version}{REMOVED_SUFFIX}").touch()
                self._save_state(state["active"], [h for h in state["history"] if h != v.version])
            shutil.rmtree(trash, ignore_errors=True)
        finally:
            guard.release()


# the hidden folder of an add (moving: the bundle itself; adding: a copy) or a remove
_WORK_DIR = re.compile(r"\.(?P<name>.+)\.(?P<what>moving|adding|removing)-[0-9a-f]{8}")


def _make_writable(folder: Path) -> None:
    """Every folder and file under ``folder`` writable by its owner (a copy of a bundle from a
    read-only medium keeps its folders' permissions: shutil.copytree's copystat)."""
    import stat

    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [None, *dirnames, *filenames]:
            path = Path(dirpath) if name is None else Path(dirpath) / name
            with contextlib.suppress(OSError):
                mode = path.lstat().st_mode
                if not stat.S_ISLNK(mode) and not mode & stat.S_IWUSR:
                    path.chmod(stat.S_IMODE(mode) | stat.S_IWUSR
                               | (stat.S_IXUSR if stat.S_ISDIR(mode) else 0))


def _lock_file(fd: int) -> None:
    """Waits for the exclusive lock on an open file (at most LOCK_WAIT_S, then goes on: a
    process that hangs holding it must not stop every other one for good)."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        got = try_lock(fd)
        if got:
            return
        if got is None:   # a file system without locks (some network or FUSE home folders):
            log.warning("the model library cannot be locked; going on")   # waiting won't help
            return
        if time.monotonic() > deadline:
            log.warning("the model library's lock is held for over %.0f s; going on", LOCK_WAIT_S)
            return
        time.sleep(0.05)


class _WorkGuard:
    """A lock file beside a hidden work folder of an add or a remove (``<folder>.lock``), locked
    while its process works on it: the operating system lets go when the process ends however it
    ends, so that ``sweep_interrupted`` finishes a dead process's work at once instead of after
    ``STALE_WORK_S`` (it hid a moved-in model for an hour), and never touches a live one's."""

    def __init__(self, folder: Path):
        self.path = _lock_of(folder)
        self.fd: int | None = None
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try_lock(self.fd)
        except OSError:   # a read-only library: the add fails by itself, said there
            self.fd = None
        _held_here.add(self.path)

    def release(self) -> None:
        _held_here.discard(self.path)
        if self.fd is not None:
            unlock(self.fd)
            os.close(self.fd)
            self.fd = None
            with contextlib.suppress(OSError):
                self.path.unlink()


# the lock files this process holds: never opened again here (on NFS, Linux emulates flock
# with POSIX locks, which belong to the whole process, so a second look would see this
# process's own lock as free, and closing it would let go of it)
_held_here: set[Path] = set()


def _work_state(folder: Path) -> str:
    """"live" (its process holds its lock), "dead" (its lock file is there, unheld) or
    "unknown" (no lock file: an older version's, or a file system without locks)."""
    lock = _lock_of(folder)
    if lock in _held_here:
        return "live"
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return "unknown"
    try:
        got = try_lock(fd)
        if got:
            unlock(fd)
        return {True: "dead", False: "live"}.get(got, "unknown")
    finally:
        os.close(fd)


def _lock_of(folder: Path) -> Path:
    return folder.with_name(folder.name + ".lock")


def _remove_lock_of(folder: Path) -> None:
    with contextlib.suppress(OSError):
        _lock_of(folder).unlink()


def _same_path(text: str, path: Path) -> bool:
    try:
        return Path(text).expanduser().resolve() == Path(path).resolve()
    except (OSError, RuntimeError):
        return False


# ---- command line ----------------------------------------------------------------------------
def _pct(x: float | None) -> str:
    return f"{x * 100:.2f}%" if x is not None else "-"


def format_versions(lib: ModelLibrary) -> str:
    active = lib.active_name()   # as recorded: a damaged or removed one is named, not hidden
    rows = []
    bundled = paths.bundled_model_dir()
    try:
        bcard = read_card(bundled)
        btitle = f"{bcard.get('name', 'model')} {bcard.get('version', '')}".strip()
        bacc = card_test_accuracy(bcard)
    except BundleError:
        btitle, bacc = "(not installed)", None
    rows.append(("*" if active is None else " ", BUNDLED, btitle, _pct(bacc), "", str(bundled)))
    listed = set()
    for v in lib.versions():
        listed.add(v.version)
        mark = "*" if active == v.version else " "
        classes = len(v.class_names)
        rows.append((mark, v.version, f"{v.card.get('name', v.name)} ({classes} classes)",
                     _pct(v.test_accuracy), local_minute(v.created), str(v.path)))
    for name, path, _problem in lib.damaged_versions():
        listed.add(name)
        rows.append(("*" if active == name else " ", name,
                     "DAMAGED: cannot be used" + ("; the bundled model is used instead"
                                                  if active == name else ""), "-", "", str(path)))
    if active is not None and active not in listed:
        rows.append(("*", active, "GONE: the bundled model is used instead", "-", "",
                     str(lib.root / active)))
    head = ("", "VERSION", "MODEL", "TEST ACC", "CREATED", "PATH")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append("* = in use")
    return "\n".join(lines)


def main(argv=None) -> int:
    from training.console import utf8_stdout

    utf8_stdout()
    p = argparse.ArgumentParser(prog="python -m inspector.library",
                                description="The model library: retrained models and which one "
                                            "the inspector uses.")
    p.add_argument("--root", help=f"library folder (default: {paths.model_library_dir()})")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="list the bundled model and the library's versions")
    a = sub.add_parser("add", help="copy a bundle into the library as a new version")
    a.add_argument("bundle")
    a.add_argument("--name", help="model name for the version folder (default: the card's)")
    a.add_argument("--activate", action="store_true", help="use it from now on")
    c = sub.add_parser("activate", help="use a version from now on")
    c.add_argument("version", help='folder name, vN, N, or "bundled"')
    c.add_argument("--force", action="store_true",
                   help="use it even when its own test figures say it is not usable")
    sub.add_parser("rollback", help="go back to the model used before the current one")
    r = sub.add_parser("remove", help="delete a version (not the one in use)")
    r.add_argument("version")
    args = p.parse_args(argv)
    lib = ModelLibrary(args.root)
    try:
        if args.command == "list":
            print(format_versions(lib))
        elif args.command == "add":
            path = lib.add(args.bundle, args.name)
            print(f"added {path}")
            if args.activate:
                lib.activate(path.name)
                print(f"now using {path.name}")
        elif args.command == "activate":
            path = lib.activate(args.version, force=args.force)
            print(f"now using {path.name if path else 'the bundled model'}")
        elif args.command == "rollback":
            path = lib.rollback()
            print(f"rolled back; now using {path.name if path else 'the bundled model'}")
        elif args.command == "remove":
            lib.remove(args.version)
            print(f"removed {args.version}")
    except (LibraryError, BundleError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

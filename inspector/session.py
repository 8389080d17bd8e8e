"""A review session: the images under review, the model's predictions, the inspector's verdicts,
filters, sorting and a summary. Every verdict goes at once to the journal (inspector.journal),
and is reloaded when the folder is opened again. Qt-free.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from training.images import (IMAGE_SUFFIXES, OTHER_IMAGE_SUFFIXES, is_windows_reserved,
                             listing_problem, natural_key, other_images_text, walk_files)

# JOURNAL_NAME, JournalError and now_iso are the journal's; imported from here too.
from .journal import JOURNAL_NAME, JOURNAL_VERSION, Journal, JournalError, now_iso  # noqa: F401

UNSURE = "unsure"
UNKNOWN = "unknown"   # the label of an image the unknown detector flags (inspector.engine's)


def file_identity(path: Path) -> tuple[int, int] | None:
    """(size, modification time in ns), None when the file cannot be looked at."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return int(st.st_size), int(st.st_mtime_ns)


def changed_since_classified(items: Iterable[tuple[int, Path, str | None, bool,
                                                   tuple[int, int] | None]]
                             ) -> tuple[list[int], dict[int, tuple[int, int] | None]]:
    """(the indices whose file changed since it was classified, or is gone where it had a
    result; the size and time each file has now) for (index, path, classified_at, had_error,
    seen) items: a camera that reuses its file names (a ring buffer) writes new frames under
    names a folder already shows. A file looked at before (``seen``: its size and time then,
    from the file system's own clock) has changed when they differ; one looked at for the
    first time when it is newer than its result (a file server's clock ahead of this PC's then
    means one classification more, which the result cache makes cheap, and never again). A file
    gone whose error said so already is not changed by staying gone. One ``os.stat`` each (off
    the GUI thread for a whole folder)."""
    out, now = [], {}
    for i, path, when, had_error, seen in items:
        if not when:
            continue
        ident = now[i] = file_identity(path)
        if ident is None:
            changed = not had_error
        elif seen is not None:
            changed = ident != seen
        else:
            try:
                changed = ident[1] / 1e9 > datetime.fromisoformat(when).timestamp()
            except ValueError:
                changed = False
        if changed:
            out.append(i)
    return out, now


def scan_images(folder: str | Path, recursive: bool = True,
                problems: list[OSError] | None = None,
                others: list[str] | None = None) -> list[Path]:
    """Image files in a folder (by suffix), sorted by their path, optionally in sub-folders.
    Hidden files and folders (names starting with a dot) are skipped. A folder that cannot be
    listed is added to ``problems`` (training.images.listing_problem says it in words) when
    given, else raises its OSError. ``others``, when given, gets the paths of the files left
    out that are images of another format (``OTHER_IMAGE_SUFFIXES``; other files - results,
    notes - are ignored). (String operations, not pathlib, until the end: 20,000
    files are listed in a fraction of a second.)"""
    base = os.fspath(folder)
    found: list[tuple[str, str]] = []  # (path relative to the folder, full path)
    if recursive:   # sub-folders that are links are followed, each real folder once
        listed = list(walk_files(base, problems=problems))
    else:
        try:
            with os.scandir(base) as it:   # a broken link too: reading it names the problem
                listed = [(e.name, e.path) for e in it
                          if not e.name.startswith(".") and not e.is_dir()]
        except OSError as exc:
            if problems is None:
                raise
            problems.append(exc)
            listed = []
    for rel, full in listed:
        suffix = os.path.splitext(rel)[1].lower()
        if suffix in _SUFFIXES:
            found.append((rel, full))
        elif others is not None and suffix in OTHER_IMAGE_SUFFIXES:
            others.append(full)
    found.sort(key=lambda rf: natural_key(rf[0]))
    return [Path(full) for _, full in found]


_SUFFIXES = frozenset(IMAGE_SUFFIXES)


def known_at(unknown_score: float | None, threshold: float | None, judged: bool = True) -> bool:
    """The unknown detector's verdict for a stored score at a threshold (None: no detector,
    known): known when the score is at most the threshold, as the engine judges. Without a
    score the engine's own verdict ``judged`` stands (a blank image is unknown without a
    detector too)."""
    if unknown_score is None:
        return judged
    return threshold is None or bool(unknown_score <= threshold)


# --------------------------------------------------------------------------------------------
# Items, filters, the session


@dataclass(eq=False, slots=True)
class Verdict:
    label: str      # a class name, or UNSURE
    time: str


@dataclass(eq=False, slots=True)
class Item:
    path: Path
    probs: np.ndarray | None = None   # (classes,) once classified
    error: str | None = None          # why it could not be classified
    classified_at: str | None = None
    verdict: Verdict | None = None
    label_index: int | None = None    # argmax of probs, kept with them (sorting 20,000 images
    confidence: float | None = None   # must not call numpy 20,000 times)
    unknown_score: float | None = None  # the unknown detector's score (None: no detector)
    known: bool = True                  # False: flagged "unknown - not a known defect"
    padding: float = 0.0                # share of it (its deciding tile) that was padding
    seen: tuple[int, int] | None = None  # (size, mtime_ns) when last checked for a change

    def set_probs(self, probs: np.ndarray | None, unknown_score: float | None = None,
                  known: bool = True, padding: float | None = 0.0) -> None:
        self.unknown_score = None if unknown_score is None else float(unknown_score)
        self.padding = float(padding or 0.0)
        self.known = bool(known) or probs is None
        self.probs = None if probs is None else np.asarray(probs, np.float32).copy()
        if self.probs is None or not self.probs.size:
            self.label_index = self.confidence = None
        else:
            self.label_index = int(np.argmax(self.probs))
            self.confidence = float(self.probs[self.label_index])


class Sort(Enum):
    OPENED = "opened"
    CONFIDENCE_ASC = "confidence_asc"
    CONFIDENCE_DESC = "confidence_desc"
    PATH = "path"


@dataclass(frozen=True)
class Filter:
    predicted_class: str | None = None   # only images predicted as this class
    needs_review: bool = False           # only images below the confidence threshold
    overridden: bool = False             # only images whose verdict differs from the prediction
    unreviewed: bool = False             # only images without a verdict
    errors: bool = False                 # only images that could not be read
    unknown: bool = False                # only images flagged "unknown - not a known defect"

    @property
    def depends_on_predictions(self) -> bool:
        return bool(self.predicted_class or self.needs_review or self.overridden or self.errors
                    or self.unknown)


UNDO_DEPTH = 200   # verdicts of a session that Undo can give back, the latest first


@dataclass
class ReviewSession:
    """Images under review with predictions and verdicts. Indices into ``items`` are stable for
    the life of the session (images are only ever added)."""

    class_names: list[str] = field(default_factory=list)
    threshold: float = 0.8
    root: Path | None = None
    journal: Journal | None = None
    model_name: str = ""
    model_version: str = ""
    items: list[Item] = field(default_factory=list)

    def __post_init__(self):
        self._index: dict[str, int] = {os.path.abspath(it.path): i for i, it in enumerate(self.items)}
        self._journal_records: dict[str, dict] = {}
        # verdicts written here, in order: the number of the last write of each key
        # (``take_journal`` keeps a verdict written here after the journal was read)
        self._writes = 0
        self._written: dict[str, int] = {}
        # folders that could not be listed when it was opened, in words (their images are
        # missing: the window says so)
        self.listing_problems: list[str] = []
        self.left_out_note: str | None = None   # image files of other formats in it, in words
        # counts every change to images, predictions and verdicts: a view that shows them (the
        # summary) compares it, and the threshold, with what it last showed
        self.changes = 0
        # (index, the verdict it had) for each verdict given in this session, the latest last:
        # ``undo_verdict`` gives the last one back (a key pressed on the wrong image)
        self._undo: list[tuple[int, Verdict | None]] = []
        # _folder_groups: the first _grouped items by folder, and each folder's name
        self._groups: dict[str, list[int]] = {}
        self._folder_names: dict[Path, str] = {}
        self._grouped = 0

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open_folder(cls, folder: str | Path, recursive: bool = True, class_names: Sequence[str] = (),
                    threshold: float = 0.8, journal: bool = True) -> "ReviewSession":
        folder = Path(os.path.abspath(folder))
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not a folder")
        s = cls(list(class_names), threshold, root=folder,
                journal=Journal(folder) if journal else None)
        unlisted: list[OSError] = []
        others: list[str] = []
        paths = scan_images(folder, recursive, unlisted, others)
        s.listing_problems = [listing_problem(e) for e in unlisted]
        s.left_out_note = other_images_text(   # named within the folder: a status-bar line
            [os.path.relpath(f, folder) for f in others])
        s._load_journal({p.parent for p in paths})
        s.add_paths(paths)
        return s

    @classmethod
    def open_files(cls, paths: Iterable[str | Path], class_names: Sequence[str] = (),
                   threshold: float = 0.8, journal: bool = True) -> "ReviewSession":
        paths = [Path(os.path.abspath(p)) for p in paths]
        root = Path(os.path.commonpath([str(p.parent) for p in paths])) if paths else None
        s = cls(list(class_names), threshold, root=root,
                journal=Journal(root) if (journal and root is not None) else None)
        s._load_journal()
        s.add_paths(paths)
        return s

    def _load_journal(self, sub_folders: Iterable[Path] = ()) -> None:
        if self.journal is not None:
            self._journal_records = self.journal.load(sub_folders)

    def read_journal(self, sub_folders: Iterable[Path] = ()) -> tuple[dict[str, dict], int] | None:
        """The journal as it is now, with the number of this session's writes when the reading
        began (reads files only: for a background task); None without one. ``take_journal``
        applies it."""
        if self.journal is None:
            return None
        mark = self._writes
        return self.journal.load(sub_folders), mark

    def take_journal(self, read: tuple[dict[str, dict], int] | None) -> list[int]:
        """Verdicts given elsewhere since this session last read the journal (another window, a
        second inspector's PC on the same folder): where the journal's latest record for an
        image is not the one this session knows, the image takes its verdict. Without this a
        window kept, exported and offered for retraining the verdicts it had seen when it
        opened the folder, and its undo wrote an older verdict over a newer one (found by an
        audit). The journal's order decides, as when a folder is opened (``Journal.load``: a
        file's append order, never a clock: a PC whose clock runs behind must not lose). A
        verdict written here after the reading began stays. Returns the indices whose verdict
        changed; their undo entries are dropped."""
        if self.journal is None or read is None:
            return []
        records, mark = read
        later = {k for k, n in self._written.items() if n > mark}   # written here meanwhile
        changed = []
        for key, rec in records.items():   # the judged images only (not every image shown)
            known = self._journal_records.get(key)
            if key in later or (known is not None and (known.get("time"), known.get("verdict"))
                                == (rec.get("time"), rec.get("verdict"))):
                continue
            i = self._index.get(os.path.abspath(self.journal.resolve(key)))
            if i is None:
                continue
            it = self.items[i]
            label = rec.get("verdict")
            verdict = Verdict(str(label), str(rec.get("time", ""))) if label else None
            if (it.verdict.label if it.verdict else None) != (verdict.label if verdict else None):
                it.verdict = verdict
                changed.append(i)
        merged = dict(records)   # a record written here while the journal was read stays
        for key, known in self._journal_records.items():
            merged.setdefault(key, known)   # (a journal file unreadable now forgets nothing)
        for key in later:
            merged[key] = self._journal_records[key]
        self._journal_records = merged
        if changed:
            gone = set(changed)
            self._undo = [u for u in self._undo if u[0] not in gone]
            self.changes += 1
        return changed

    def add_paths(self, paths: Iterable[str | Path]) -> list[int]:
        """Adds images not yet in the session; returns the new items' indices."""
        new = []
        records = self._journal_records if self.journal is not None else None
        for p in paths:
            full = os.path.abspath(p)
            if full in self._index:
                continue
            item = Item(p if isinstance(p, Path) and str(p) == full else Path(full))
            if records:
                rec = records.get(self.journal.key(full))
                if rec and rec.get("verdict"):
                    item.verdict = Verdict(str(rec["verdict"]), str(rec.get("time", "")))
            self._index[full] = len(self.items)
            self.items.append(item)
            new.append(self._index[full])
        self.changes += bool(new)
        return new

    def index_of(self, path: str | Path) -> int | None:
        return self._index.get(os.path.abspath(path))

    def __len__(self) -> int:
        return len(self.items)

    # -- predictions -------------------------------------------------------------------------
    def set_model(self, class_names: Sequence[str], name: str = "", version: str = "") -> None:
        """A (new) model: predictions from the old one no longer apply."""
        self.class_names = list(class_names)
        self.model_name, self.model_version = name, version
        self.clear_predictions()

    def clear_predictions(self) -> None:
        self.forget_predictions(range(len(self.items)))

    def set_prediction(self, index: int, probs: np.ndarray, unknown_score: float | None = None,
                       known: bool = True, padding: float | None = 0.0,
                       when: str | None = None) -> None:
        """``padding``: the share of the image (of its deciding tile) that was padding around
        its surface (training.padding), for the caption and the export's ``note``; ``when``:
        the time to record (now), e.g. the one a CSV row of the same result already carries."""
        it = self.items[index]
        it.set_probs(probs, unknown_score, known, padding)
        it.error = None
        it.classified_at = when or now_iso()
        self.changes += 1

    def note_seen(self, seen: dict[int, tuple[int, int] | None]) -> None:
        """The files' size and time as a check for changes found them (``changed_since_classified``)."""
        for i, ident in seen.items():
            self.items[i].seen = ident

    def forget_predictions(self, indices: Iterable[int]) -> int:
        """The images at ``indices`` are to be classified again (their files changed); returns
        how many of them had a result. Their verdicts stay (they are the inspector's)."""
        forgotten = 0
        for i in indices:
            it = self.items[i]
            forgotten += it.probs is not None or it.error is not None
            it.set_probs(None)
            it.error = None
            it.classified_at = None
        self.changes += 1
        return forgotten

    def set_error(self, index: int, problem: str, when: str | None = None) -> None:
        it = self.items[index]
        it.set_probs(None)
        it.error = problem
        it.classified_at = when or now_iso()
        self.changes += 1

    def predicted_name(self, index: int) -> str | None:
        li = self.items[index].label_index
        if li is None:
            return None
        return self.class_names[li] if li < len(self.class_names) else str(li)

    def is_classified(self, index: int) -> bool:
        it = self.items[index]
        return it.probs is not None or it.error is not None

    def pending(self) -> list[int]:
        return [i for i, it in enumerate(self.items) if it.probs is None and it.error is None]

    def is_unknown(self, index: int) -> bool:
        """Classified and flagged by the unknown detector ("unknown - not a known defect")."""
        it = self.items[index]
        return it.probs is not None and not it.known

    def rejudge_unknown(self, threshold: float | None) -> list[int]:
        """Applies another unknown threshold to the stored scores (known = score <= threshold;
        no model run); returns the indices whose verdict changed. ``None``: no detector, all
        known."""
        changed = []
        for i, it in enumerate(self.items):
            if it.probs is None:
                continue
            known = known_at(it.unknown_score, threshold, it.known)
            if known != it.known:
                it.known = known
                changed.append(i)
        self.changes += bool(changed)
        return changed

    def unknown_share(self, indices: Iterable[int] | None = None) -> tuple[int, int]:
        """(images flagged unknown, images judged by a detector) among ``indices`` (default:
        all): the share an open folder shows against the model's validation rate."""
        idx = range(len(self.items)) if indices is None else indices
        flagged = judged = 0
        for i in idx:
            it = self.items[i]
            if it.probs is not None and it.unknown_score is not None:
                judged += 1
                flagged += not it.known
        return flagged, judged

    def needs_review(self, index: int) -> bool:
        c = self.items[index].confidence
        return c is not None and c < self.threshold

    def is_overridden(self, index: int) -> bool:
        """A verdict naming a class other than the model's: for an image flagged unknown, any
        class (the model named none), the closest one included."""
        it = self.items[index]
        if it.verdict is None or it.verdict.label == UNSURE:
            return False
        predicted = self.predicted_name(index)
        if predicted is not None and self.is_unknown(index):
            return True
        return predicted is not None and it.verdict.label != predicted

    # -- verdicts ----------------------------------------------------------------------------
    def set_verdict(self, index: int, label: str | None, new_class: bool = False,
                    _undoing: bool = False) -> Verdict | None:
        """Records the true class (a class name), UNSURE, or None to clear; journalled first, so
        that a verdict that cannot be saved is not shown as given (raises JournalError).
        ``new_class``: ``label`` may be a class the model does not have (typed in by the
        inspector for an image of a kind it does not know; see :func:`check_class_name`)."""
        if label is not None and label != UNSURE and self.class_names and label not in self.class_names:
            if not new_class:
                raise ValueError(f"unknown class {label!r}")
            if not _undoing:   # an undo gives back a name that was valid when it was given
                label = check_class_name(label, [*self.class_names, *self.new_class_names()])
        it = self.items[index]
        before = it.verdict
        verdict = Verdict(label, now_iso()) if label is not None else None
        if self.journal is not None:
            key = self.journal.key(it.path)
            rec = {"v": JOURNAL_VERSION, "path": key, "verdict": label,
                   "predicted": self.predicted_name(index), "confidence": it.confidence,
                   "model": self.model_title, "time": verdict.time if verdict else now_iso()}
            if it.probs is not None and it.unknown_score is not None:
                # what the model said of the image: flagged unknown, or one of its classes
                rec.update(known=bool(it.known), unknown_score=round(it.unknown_score, 4))
            self.journal.append(rec)
            self._journal_records[key] = rec
            self._writes += 1
            self._written[key] = self._writes
        it.verdict = verdict
        self.changes += 1
        if not _undoing:
            self._undo = [*self._undo[-(UNDO_DEPTH - 1):], (index, before)]
        return verdict

    def can_undo(self) -> bool:
        return bool(self._undo)

    def undo_verdict(self) -> int | None:
        """Gives the image of the last verdict of this session the verdict it had before (none,
        or an earlier one), recorded in the journal as any verdict is; returns its index, None
        when there is nothing to undo. Raises JournalError as ``set_verdict`` does (the undo
        is then kept for another try). The earlier verdict comes back as it was given, even if
        a class named since differs from it only in case."""
        if not self._undo:
            return None
        index, before = self._undo[-1]
        label = before.label if before is not None else None
        self.set_verdict(index, label, new_class=True, _undoing=True)
        self._undo.pop()
        return index

    def accept(self, index: int) -> Verdict | None:
        """Accepts the prediction as the true class (nothing happens while unclassified, nor for
        an image flagged unknown: its closest class is not the model's verdict, and accepting it
        would make a foreign image training data for that class)."""
        name = self.predicted_name(index)
        return None if name is None or self.is_unknown(index) else self.set_verdict(index, name)

    @property
    def model_title(self) -> str:
        return f"{self.model_name} {self.model_version}".strip()

    def new_class_names(self) -> list[str]:
        """Class names of verdicts that the model does not have (typed in for images of a kind
        it does not know), in the order first given."""
        known = set(self.class_names) | {UNSURE}
        names: dict[str, None] = {}
        for it in self.items:
            if it.verdict is not None and it.verdict.label not in known:
                names.setdefault(it.verdict.label, None)
        return list(names)

    def training_verdicts(self) -> list[tuple[Path, str]]:
        """(image path, true class name) for every verdict that names a class (not "unsure")."""
        return [(it.path, it.verdict.label) for it in self.items
                if it.verdict is not None and it.verdict.label != UNSURE]

    # -- filters, sorting --------------------------------------------------------------------
    def matches(self, index: int, f: Filter) -> bool:
        it = self.items[index]
        if f.predicted_class is not None and self.predicted_name(index) != f.predicted_class:
            return False
        if f.needs_review and not self.needs_review(index):
            return False
        if f.overridden and not self.is_overridden(index):
            return False
        if f.unreviewed and it.verdict is not None:
            return False
        if f.errors and it.error is None:
            return False
        if f.unknown and not self.is_unknown(index):
            return False
        return True

    def view(self, f: Filter = Filter(), sort: Sort = Sort.OPENED) -> list[int]:
        """Indices of the items that pass the filter, in the chosen order (unclassified images
        last when sorting by confidence)."""
        rows = [i for i in range(len(self.items)) if self.matches(i, f)]
        if sort is Sort.PATH:
            rows.sort(key=lambda i: natural_key(str(self.items[i].path)))
        elif sort in (Sort.CONFIDENCE_ASC, Sort.CONFIDENCE_DESC):
            sign = 1.0 if sort is Sort.CONFIDENCE_ASC else -1.0

            def key(i):
                c = self.items[i].confidence
                return (1, 0.0) if c is None else (0, sign * c)

            rows.sort(key=key)
        return rows

    # -- summary -----------------------------------------------------------------------------
    def summary(self, indices: Iterable[int] | None = None) -> dict:
        """Counts per predicted class and per verdict, overrides, mean confidence, ..."""
        idx = range(len(self.items)) if indices is None else list(indices)
        per_class = {c: 0 for c in self.class_names}
        verdicts: dict[str, int] = {}
        confs: list[float] = []
        n = errors = reviewed = overrides = unsure = accepted = review = unknown = 0
        judged = 0
        for i in idx:
            n += 1
            it = self.items[i]
            if it.error is not None:
                errors += 1
            name = self.predicted_name(i)
            if name is not None:
                if it.known:   # an image flagged unknown counts as unknown, not as its closest class
                    per_class[name] = per_class.get(name, 0) + 1
                confs.append(it.confidence)
                review += self.needs_review(i)
                unknown += not it.known
                judged += it.unknown_score is not None
            if it.verdict is not None:
                reviewed += 1
                verdicts[it.verdict.label] = verdicts.get(it.verdict.label, 0) + 1
                if it.verdict.label == UNSURE:
                    unsure += 1
                elif self.is_overridden(i):
                    overrides += 1
                elif name is not None:
                    accepted += 1
        return {
            "images": n,
            "classified": len(confs),
            "errors": errors,
            "per_class": per_class,
            "mean_confidence": float(np.mean(confs)) if confs else None,
            "needs_review": review,
            "threshold": self.threshold,
            "unknown": unknown,
            "unknown_judged": judged,
            "reviewed": reviewed,
            "verdicts": verdicts,
            "accepted": accepted,
            "overrides": overrides,
            "unsure": unsure,
        }

    def frozen_copy(self) -> ReviewSession:
        """A copy that later predictions and verdicts do not change (an export written in a
        background thread while classification and review go on): each item copied, the
        probability arrays shared (``Item.set_probs`` replaces them, never writes into them)."""
        return ReviewSession(list(self.class_names), self.threshold, self.root, None,
                             self.model_name, self.model_version,
                             [replace(it) for it in self.items])

    def _folder_groups(self) -> dict[str, list[int]]:
        """Item indices by folder (relative to the root), kept as images are added: an open
        summary refreshes while a folder is classified, and working out 30,000 images' folders
        anew each second took a tenth of a second of the window's time each (items are only
        ever added, and their paths do not change)."""
        for i in range(self._grouped, len(self.items)):
            parent = self.items[i].path.parent
            rel = self._folder_names.get(parent)
            if rel is None:
                try:
                    rel = (parent.relative_to(self.root).as_posix() or "."
                           if self.root is not None else parent.as_posix())
                except ValueError:
                    rel = parent.as_posix()
                if rel == ALL_FOLDERS:   # a sub-folder named so must not replace the totals
                    rel = f"./{rel}"
                self._folder_names[parent] = rel
            self._groups.setdefault(rel, []).append(i)
        self._grouped = len(self.items)
        return self._groups

    def folder_summaries(self) -> dict[str, dict]:
        """A summary per folder (relative to the session root; "." is the root itself), plus
        "(all)" for the whole session."""
        groups = self._folder_groups()
        out = {ALL_FOLDERS: self.summary()}
        for rel in sorted(groups, key=natural_key):
            out[rel] = self.summary(groups[rel])
        return out


ALL_FOLDERS = "(all)"   # folder_summaries' key of the whole session


def check_class_name(name: str, existing: Iterable[str] = ()) -> str:
    """A class name typed in by the inspector, stripped; raises ValueError when it cannot be a
    class (empty, "unsure"/"unknown", not usable as a folder name for retraining on Windows
    and Linux alike), or when it differs from one of ``existing`` only in upper and lower case
    (two folders that a Windows disk would merge into one). An exact match is that class."""
    name = str(name).strip()
    if not name:
        raise ValueError("a class name cannot be empty")
    if name.lower() in (UNSURE, UNKNOWN):
        raise ValueError(f"{name!r} is not a class: it is a verdict of its own")
    if (name.startswith(".") or name.endswith(".") or any(c in name for c in '/\\:*?"<>|')
            or any(ord(c) < 32 for c in name) or len(name) > 64
            or is_windows_reserved(name)):
        raise ValueError(f"{name!r} cannot be a class name (it must be usable as a folder name)")
    for other in existing:
        if other != name and other.lower() == name.lower():
            raise ValueError(f"{name!r} differs from the class {other!r} only in upper and "
                             f"lower case; use {other!r} or another name")
    return name

"""Labelled image folders: scanning, checking, splitting and loading. Qt-free.

A data folder has one sub-folder per class; every image file inside (recursively) belongs to
that class. Splits are stratified by class, use a fixed seed, and keep byte-identical images
on the same side of every split, so a duplicate can never leak from training into test.
"""
from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .bundle import SPLIT_FILE, read_split
from .cancel import Cancelled, Progress, ShouldStop, never, quiet
from .card import training_view
from .images import (OTHER_IMAGE_SUFFIXES, ImageReadError, class_folders, file_digest,
                     files_under, image_size, is_image_file, listing_problem, load_image,
                     other_images_text)
from .padding import fill_padding

log = logging.getLogger(__name__)


class DatasetError(Exception):
    """A data folder that cannot be used as it is; the message says why and names files."""


@dataclass
class Dataset:
    root: Path
    class_names: list[str]
    files: list[Path]
    labels: np.ndarray  # int64, index into class_names
    digests: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.files)

    def counts(self) -> dict[str, int]:
        c = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(c[i]) for i, name in enumerate(self.class_names)}

    def relative(self, i: int) -> str:
        return self.files[i].relative_to(self.root).as_posix()

    def list_hash(self) -> str:
        """A hash of the sorted relative file list with labels and content digests."""
        h = hashlib.sha256()
        for i in sorted(range(len(self)), key=self.relative):
            h.update(f"{self.relative(i)}\t{self.class_names[self.labels[i]]}\t"
                     f"{self.digests[i] if self.digests else ''}\n".encode())
        return h.hexdigest()

    def subset(self, idx: Sequence[int]) -> "Dataset":
        idx = list(idx)
        return Dataset(self.root, self.class_names, [self.files[i] for i in idx],
                       self.labels[idx], [self.digests[i] for i in idx] if self.digests else [])


def scan_dataset(root: str | Path, class_names: Sequence[str] | None = None,
                 with_digests: bool = True) -> Dataset:
    """Lists a data folder. ``class_names`` picks and orders the classes (default: all
    sub-folders, sorted). Raises DatasetError for a missing folder, fewer than two classes,
    a named class that is missing, or a class with no images."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: data folder not found")
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder (expected one sub-folder per class)")
    found = [p.name for p in class_folders(root)]
    if class_names is None:
        class_names = found
    else:
        class_names = list(class_names)
        missing = [c for c in class_names if c not in found]
        if missing:
            raise DatasetError(f"{root}: no sub-folder for class(es) {', '.join(missing)}")
    if len(class_names) < 2:
        raise DatasetError(
            f"{root}: found {len(class_names)} class folder(s) "
            f"({', '.join(class_names) or 'none'}); a classifier needs at least two, "
            "one sub-folder per class")
    files: list[Path] = []
    labels: list[int] = []
    empty = []
    others: list[Path] = []
    for ci, name in enumerate(class_names):
        try:
            listed = list(files_under(root / name))
        except OSError as exc:   # a folder that cannot be listed: never train without its images
            raise DatasetError(listing_problem(exc)) from None
        members = [p for p in listed if is_image_file(p)]
        others += [p for p in listed if p.suffix.lower() in OTHER_IMAGE_SUFFIXES]
        if not members:
            empty.append(name)
        files.extend(members)
        labels.extend([ci] * len(members))
    if empty:
        raise DatasetError(f"{root}: class folder(s) with no images "
                           f"(BMP, PNG, JPEG, TIFF): {', '.join(empty)}")
    if others:   # not without a word (train, cv, evaluate, robustness: on stderr)
        log.warning("%s: %s", root, other_images_text([str(p.relative_to(root)) for p in others]))
    digests = [_digest(p) for p in files] if with_digests else []
    return Dataset(root, list(class_names), files, np.asarray(labels, dtype=np.int64), digests)


def _digest(path: Path) -> str:
    """``file_digest``, or for a file that cannot be read (a broken link, a pipe, no
    permission) a digest of its own: it stays in the listing and its decoding names the
    problem, so that evaluate and robustness leave it out and say so, as they do for a damaged
    image, and training lists it with the rest (one broken link stopped them with a bare
    errno)."""
    try:
        return file_digest(path)
    except (OSError, ImageReadError):
        return "unreadable:" + str(path)


def image_sizes(ds: Dataset) -> np.ndarray:
    """Each file's own (height, width) from its header, (0, 0) where it cannot be read: for the
    card's record of the scale a model is trained at (``training.card.training_view``), known
    before the images are decoded."""
    sizes = np.zeros((len(ds), 2), dtype=np.int64)
    for i, path in enumerate(ds.files):
        sizes[i] = image_size(path) or (0, 0)
    return sizes


def dataset_view(ds: Dataset, input_size: int) -> dict:
    """The card's record of the scale and shape a model of ``input_size`` trained on ``ds``
    learns (``training.card.training_view``, from the files' headers: known before they are
    decoded, so that they are decoded as the model will read them)."""
    return training_view(image_sizes(ds), input_size)


def _decode_all(ds: Dataset, size: int, progress: Progress, should_stop: ShouldStop,
                square: bool = False
                ) -> tuple[np.ndarray, list[int], list[ImageReadError]]:
    """Every file decoded to size x size x 3 uint8 (padding around a frame's surface filled, as
    the app fills it before classifying: ``training.padding``; with ``square``, a non-square
    image made square by reflection first, as the app reads it for a model trained on square
    images: ``training.card.TrainingView``): the array, the indices read and the errors."""
    out = np.zeros((len(ds), size, size, 3), dtype=np.uint8)
    ok: list[int] = []
    errors: list[ImageReadError] = []
    for i, path in enumerate(ds.files):
        if should_stop():
            raise Cancelled("cancelled while reading images; nothing was written")
        try:
            out[i] = fill_padding(load_image(path, size, square))[0]
            ok.append(i)
        except ImageReadError as exc:
            errors.append(exc)
        if i % 50 == 0 or i == len(ds) - 1:
            progress((i + 1) / len(ds), f"reading images {i + 1}/{len(ds)}")
    return out, ok, errors


def load_arrays(ds: Dataset, size: int, progress: Progress = quiet,
                should_stop: ShouldStop = never, square: bool = False
                ) -> np.ndarray:
    """Decodes every image to size x size x 3 uint8 (``square``: see ``_decode_all``; a
    bundle's is ``Bundle.view.square``). The scale the images had is recorded by
    ``dataset_view`` (a pass over their headers). Unreadable files raise one DatasetError naming all of them (so a run never trains on a
    silently shortened data set)."""
    out, _, errors = _decode_all(ds, size, progress, should_stop, square)
    if errors:
        listed = "\n".join(f"  {e}" for e in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise DatasetError(f"{len(errors)} unreadable image file(s):\n{listed}{more}")
    return out


def load_readable(ds: Dataset, size: int, progress: Progress = quiet,
                  should_stop: ShouldStop = never, square: bool = False
                  ) -> tuple[Dataset, np.ndarray, list[ImageReadError]]:
    """For an evaluation: every readable image decoded, the unreadable ones left out and
    returned (to be named) - one bad file does not stop a report on all the others."""
    out, ok, errors = _decode_all(ds, size, progress, should_stop, square)
    if not ok:
        raise DatasetError(f"{ds.root}: none of its {len(ds)} image file(s) can be read, e.g. "
                           f"{errors[0]}" if errors else f"{ds.root}: no image files to read")
    return (ds, out, errors) if not errors else (ds.subset(ok), out[ok], errors)


def _groups(ds: Dataset) -> dict[str, list[int]]:
    """Indices grouped by content digest (each file is its own group without digests)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i in range(len(ds)):
        groups[ds.digests[i] if ds.digests else str(i)].append(i)
    return groups


def duplicate_groups(ds: Dataset) -> list[list[int]]:
    """Groups of two or more byte-identical files."""
    return [g for g in _groups(ds).values() if len(g) > 1]


def _groups_by_class(ds: Dataset, seed: int) -> list[list[list[int]]]:
    """For each class, its duplicate groups in a seeded random order. A group whose members
    carry different labels goes with its most common label."""
    rng = np.random.default_rng(seed)
    per_class: list[list[list[int]]] = [[] for _ in ds.class_names]
    groups = _groups(ds)
    for key in sorted(groups):
        members = groups[key]
        label = int(np.bincount(ds.labels[members]).argmax())
        per_class[label].append(members)
    for lst in per_class:
        order = rng.permutation(len(lst))
        lst[:] = [lst[j] for j in order]
    return per_class


def stratified_split(ds: Dataset, val_fraction: float = 1 / 12, test_fraction: float = 1 / 12,
                     seed: int = 1234) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/validation/test indices: per class, rounded fractions go to test and validation;
    duplicate groups stay whole. Every class gets at least one validation and one test image
    (where that fraction is non-zero) when it has images enough for one of each and one to
    train on."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError("validation and test fractions must be in [0, 1) and sum to less than 1")
    train, val, test = [], [], []
    for groups in _groups_by_class(ds, seed):
        n = sum(len(g) for g in groups)
        want_test = int(round(n * test_fraction))
        want_val = int(round(n * val_fraction))
        if n >= 1 + (val_fraction > 0) + (test_fraction > 0):   # one for training, at least
            want_test = max(want_test, 1 if test_fraction > 0 else 0)
            want_val = max(want_val, 1 if val_fraction > 0 else 0)
        t = v = 0
        for g in groups:
            if t < want_test:
                test.extend(g)
                t += len(g)
            elif v < want_val:
                val.extend(g)
                v += len(g)
            else:
                train.extend(g)
    def idx(lst):  # int64 even when empty (an empty float array cannot index)
        return np.array(sorted(lst), dtype=np.int64)

    return idx(train), idx(val), idx(test)


def bundle_split(ds: Dataset, bundle_dir: str | Path,
                 parts: Sequence[str] = ("train", "validation", "test")) -> list[np.ndarray]:
    """Indices into ``ds`` of the files a bundle's ``split.json`` lists under each of ``parts``
    (so that nothing is tested on images the bundle trained on). Raises DatasetError when the
    bundle has no split.json or some of its files are not in ``ds``."""
    split = read_split(bundle_dir)
    if split is None:
        raise DatasetError(f"{bundle_dir}: no {SPLIT_FILE}, so no {'/'.join(parts)} split")
    return split_indices(ds, split, parts)


def split_indices(ds: Dataset, split: Mapping[str, Sequence[str]],
                  parts: Sequence[str] = ("train", "validation", "test")) -> list[np.ndarray]:
    """Indices into ``ds`` of the files ``split`` (a bundle's split, training.bundle.read_split)
    lists under each of ``parts``. Raises DatasetError when some of them are not in ``ds``."""
    where = {ds.relative(i): i for i in range(len(ds))}
    out = []
    for part in parts:
        listed = split.get(part, [])
        missing = [r for r in listed if r not in where]
        if missing:
            raise DatasetError(f"{ds.root}: {len(missing)} file(s) of the bundle's {part} split "
                               f"are missing (e.g. {missing[0]})")
        out.append(np.array(sorted(where[r] for r in listed), dtype=np.int64))
    return out


def stratified_folds(ds: Dataset, k: int = 5, seed: int = 1234) -> list[np.ndarray]:
    """k disjoint index sets, stratified by class, duplicate groups kept whole."""
    if k < 2:
        raise ValueError("cross-validation needs at least two folds")
    folds: list[list[int]] = [[] for _ in range(k)]
    for ci, groups in enumerate(_groups_by_class(ds, seed)):
        if sum(len(g) for g in groups) < k:
            raise DatasetError(f"class {ds.class_names[ci]!r} has fewer images than the {k} folds")
        filled = [0] * k
        for g in sorted(groups, key=len, reverse=True):  # stable: keeps the seeded order
            target = min(range(k), key=lambda f: (filled[f], f))
            folds[target].extend(g)
            filled[target] += len(g)
    return [np.array(sorted(f), dtype=np.int64) for f in folds]

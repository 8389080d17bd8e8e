"""The retraining data: labelled images gathered from class folders and review verdicts,
counted, and staged into the one folder training reads."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Mapping, Sequence

from training.cancel import Cancelled, Progress, ShouldStop, never, quiet
from training.checks import ERROR, Problem, Report, Sample, scan_folder

from ..session import check_class_name


def gather_samples(folders: Sequence[str | Path] = (),
                   verdicts: Sequence[tuple[str | Path, str]] = (),
                   should_stop: ShouldStop = never) -> tuple[list[Sample], list[Problem]]:
    """Labelled images from class folders (one sub-folder per class) and review verdicts
    ((image path, true class name) pairs), with the problems of the folders' layout."""
    samples: list[Sample] = []
    problems: list[Problem] = []
    for folder in folders:
        s, p = scan_folder(folder, should_stop=should_stop)
        samples += s
        problems += p
    # a label as the review window takes a typed name: stripped ("roll mark " in a journal from
    # another PC or tool was a second class beside the folder "roll mark"), and refused where
    # it cannot be a folder name
    verdicts = [(p, str(label).strip()) for p, label in verdicts]

    def bad(label: str) -> bool:
        try:
            check_class_name(label)
            return False
        except ValueError:
            return True

    bad_names = sorted({label for _, label in verdicts if bad(label)})
    if bad_names:
        problems.append(Problem(ERROR, "bad-class-name", "review verdicts with class names that "
                                "cannot be classes (a class must be usable as a folder name): "
                                + ", ".join(repr(n) for n in bad_names),
                                [str(p) for p, label in verdicts if label in bad_names],
                                excludable=True))
    samples += [Sample(Path(p), str(label), "verdicts") for p, label in verdicts]
    return samples, problems


def training_folder(report: Report, folders: Sequence[str | Path], verdicts: Sequence,
                    exclude: Sequence[str] = ()) -> Path | None:
    """The folder to train on as it is, or None when the images must be staged first (several
    sources, review verdicts, or left-out files)."""
    if len(folders) == 1 and not verdicts and not set(exclude) & {str(s.path) for s in report.samples}:
        return Path(folders[0])
    return None


def stage_dataset(samples: Sequence[Sample], target: str | Path,
                  digests: Mapping[str, str] | None = None, progress: Progress = quiet,
                  should_stop: ShouldStop = never) -> tuple[Path, dict[str, str]]:
    """Assembles labelled images into one data folder (``target/<class>/<file>``) by hard links,
    or copies where links are impossible. Byte-identical files within a class (by ``digests``,
    path -> digest) are staged once. Returns the folder and a map staged path -> original."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    origin: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for i, s in enumerate(samples):
        if should_stop():
            raise Cancelled("cancelled while staging images")
        digest = (digests or {}).get(str(s.path))
        if digest is not None:
            if (s.label, digest) in seen:
                continue
            seen.add((s.label, digest))
        folder = target / s.label
        folder.mkdir(exist_ok=True)
        dst = folder / f"{i:06d}_{Path(s.path).name}"
        # a read-only file (Windows' attribute: a camera's, an archive's, a DVD's) is copied
        # without it, never linked: a link shares it, and Windows refuses to delete a read-only
        # file, so the work folder's removal (ignore_errors) left it there after every run
        if sys.platform == "win32" and not os.access(s.path, os.W_OK):
            shutil.copyfile(s.path, dst)   # contents only: not the read-only attribute
        else:
            try:
                os.link(s.path, dst)
            except OSError:
                shutil.copy2(s.path, dst)
        origin[str(dst)] = str(s.path)
        if i % 100 == 0 or i == len(samples) - 1:
            progress((i + 1) / len(samples), f"staging images {i + 1}/{len(samples)}")
    return target, origin


def count_samples(samples: Sequence[Sample]) -> dict[str, int]:
    """Images per class label, in the order the labels first appear."""
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.label] = counts.get(s.label, 0) + 1
    return counts


def sample_digests(report: Report | None) -> dict[str, str]:
    """Path -> content digest of every image the data check read (for ``stage_dataset``)."""
    return {p: i.digest for p, i in report.info.items()} if report else {}


def training_data(folder: Path | None, samples: Sequence[Sample], target: str | Path,
                  digests: Mapping[str, str] | None = None, progress: Progress = quiet,
                  should_stop: ShouldStop = never) -> tuple[Path, dict[str, str]]:
    """The folder training reads: ``folder`` as it is (from ``training_folder``), or, when that
    is None, the samples staged into ``target``. Returns it with the map staged -> original."""
    if folder is not None:
        return Path(folder), {}
    return stage_dataset(samples, target, digests, progress, should_stop)

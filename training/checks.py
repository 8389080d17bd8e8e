"""Checking labelled images before training: the problems a data set has, named file by file.

``find_problems`` reads every image once (header, pixels and a content digest) and reports, by
severity:

* errors (training cannot use the data as it is): no or one class, empty class folders,
  unreadable files, byte-identical images filed under two classes, classes with fewer than
  ``min_per_class`` images;
* warnings (training works, the result may disappoint): classes with few images, very unequal
  class sizes, non-square images, a property (file format, colour mode, size) that tells some
  classes apart by itself, so a model could learn it instead of the defect;
* notes: mixed sizes and colour modes, images enlarged to the model's input, duplicates within a
  class, files that are ignored.

Errors that name files (unreadable, conflicting duplicates) go away when those files are left
out (``Report.excludable_files``). Qt-free; ``python -m training check`` prints the report.
"""
from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .cancel import Cancelled, Progress, ShouldStop, never, quiet
from .card import training_view
from .images import (COLOUR_CHROMA, COLOUR_SHARE, ImageReadError, class_folders,
                     decode_image, file_digest, files_under, image_chroma, is_image_file,
                     is_windows_reserved, listing_problem, main_page, PILLOW_FORMATS)
from .transfer import median_side, native_input_size


ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)

MIN_PER_CLASS = 5          # below this a class cannot be split into train, validation and test
RECOMMENDED_PER_CLASS = 30  # below this the test figures of the class mean little
IMBALANCE_RATIO = 3.0       # largest class / smallest class above this is "very unequal"
LISTED_FILES = 10           # files named in a message before "... and N more"
# the inspector's verdicts of their own (inspector.session.UNSURE, UNKNOWN): a class of that
# name would read as one of them on every screen and in every export
VERDICT_WORDS = ("unknown", "unsure")


@dataclass(frozen=True)
class Sample:
    """One labelled image: its file, its class and where it came from (a folder, the verdicts)."""
    path: Path
    label: str
    source: str = ""


@dataclass
class Problem:
    severity: str   # "error", "warning" or "info"
    code: str       # stable identifier, e.g. "unreadable", "conflicting-duplicate", "too-few"
    message: str    # one line, names classes and counts
    files: list[str] = field(default_factory=list)  # the files concerned, when files are
    excludable: bool = False  # leaving out ``files`` resolves it

    def text(self) -> str:
        shown = "".join(f"\n    {f}" for f in self.files[:LISTED_FILES])
        more = (f"\n    ... and {len(self.files) - LISTED_FILES} more"
                if len(self.files) > LISTED_FILES else "")
        return f"{self.severity.upper()}: {self.message}{shown}{more}"


@dataclass
class ImageInfo:
    width: int
    height: int
    mode: str    # Pillow mode: "L", "RGB", "RGBA", "P", "I;16"...
    format: str  # Pillow format: "PNG", "JPEG", "BMP", "TIFF"
    digest: str
    chroma: float = 0.0   # training.images.image_chroma: 0 for grey pixels, even in an RGB file
    flat: bool = False    # every pixel the same value: nothing for the model to learn


@dataclass
class Report:
    source: str
    class_names: list[str]
    samples: list[Sample]                 # every image file found, readable or not
    info: dict[str, ImageInfo]            # readable files by str(path)
    problems: list[Problem]
    model_classes: list[str] | None = None  # the current model's classes, when given

    @property
    def counts(self) -> dict[str, int]:
        """Readable images per class (unreadable files are not counted)."""
        c = Counter(s.label for s in self.samples if str(s.path) in self.info)
        return {name: c.get(name, 0) for name in self.class_names}

    def of(self, severity: str) -> list[Problem]:
        return [p for p in self.problems if p.severity == severity]

    @property
    def errors(self) -> list[Problem]:
        return self.of(ERROR)

    @property
    def warnings(self) -> list[Problem]:
        return self.of(WARNING)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def excludable_files(self) -> set[str]:
        """Files whose leaving out resolves the file-level errors."""
        return {f for p in self.errors if p.excludable for f in p.files}

    @property
    def ok_without_excludable(self) -> bool:
        """True when every error goes away by leaving out the files it names."""
        return all(p.excludable for p in self.errors)

    def usable_samples(self, exclude: Iterable[str] = ()) -> list[Sample]:
        """Readable samples minus ``exclude`` (paths as strings)."""
        skip = set(exclude)
        return [s for s in self.samples if str(s.path) in self.info and str(s.path) not in skip]

    @property
    def same_classes(self) -> bool:
        """The data has exactly the current model's classes (fine-tuning keeps its head)."""
        return self.model_classes is not None and set(self.class_names) == set(self.model_classes)

    @property
    def new_classes(self) -> list[str]:
        if self.model_classes is None:
            return list(self.class_names)
        return [c for c in self.class_names if c not in self.model_classes]

    def training_class_names(self, exclude: Iterable[str] = ()) -> tuple[str, ...]:
        """Class order for TrainConfig.class_names: the model's order when the classes are the
        model's (so its classifier head is kept), otherwise sorted names. With ``exclude``
        (files left out), a class none of whose files is left drops out with them (a review
        verdict's class named "a/b", its files left out: training asked for its folder)."""
        exclude = set(exclude)
        kept = ({s.label for s in self.usable_samples(exclude)} if exclude
                else set(self.class_names))
        if self.model_classes is not None and kept == set(self.model_classes):
            return tuple(self.model_classes)
        return tuple(sorted(c for c in self.class_names if c in kept))

    def format(self) -> str:
        counts = self.counts
        unreadable = len(self.samples) - sum(counts.values())
        readable = (f" ({unreadable} unreadable, not counted below)" if unreadable > 0 else "")
        lines = [f"{self.source}: {len(self.samples)} image file(s){readable}, "
                 f"{len(self.class_names)} class(es)"]
        if counts:
            w = max(len(c) for c in counts) + 2
            for name, n in counts.items():
                mark = ""
                if self.model_classes is not None:
                    mark = "  (new class)" if name not in self.model_classes else ""
                lines.append(f"  {name:<{w}}{n:>6}{mark}")
        if self.model_classes is not None and len(self.class_names) >= 2:   # one: an error below
            if self.same_classes:
                lines.append("Same classes as the current model: it is fine-tuned.")
            else:
                lines.append("New classes: the current model's classifier head is rebuilt for "
                             f"{len(self.class_names)} classes.")
        n_err, n_warn = len(self.errors), len(self.warnings)
        lines.append(f"{n_err} error(s), {n_warn} warning(s), {len(self.of(INFO))} note(s)")
        lines.extend(p.text() for p in self.problems)
        return "\n".join(lines)


def _listed(names: Sequence[str], limit: int = 6) -> str:
    names = list(names)
    text = ", ".join(names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")


def scan_folder(root: str | Path, source: str = "",
                should_stop: ShouldStop = never) -> tuple[list[Sample], list[Problem]]:
    """The labelled images of a folder with one sub-folder per class (images found recursively),
    and the problems of its layout (missing folder, empty class folders, ignored files). Raises
    Cancelled (an InterruptedError) when ``should_stop()`` turns true (a huge folder chosen by mistake)."""
    root = Path(root)
    source = source or str(root)
    if not root.exists():
        return [], [Problem(ERROR, "missing-folder", f"{root}: folder not found")]
    if not root.is_dir():
        return [], [Problem(ERROR, "missing-folder",
                            f"{root}: not a folder (expected one sub-folder per class)")]
    samples: list[Sample] = []
    problems: list[Problem] = []
    try:
        loose = sorted(str(p) for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
        folders = class_folders(root)
    except OSError as exc:
        return [], [Problem(ERROR, "unlisted-folder", listing_problem(exc))]
    if loose:
        images_here = sum(is_image_file(Path(f)) for f in loose)
        hint = (f"; if {root.name} is one class's folder, give the folder that holds the class "
                f"folders ({root.parent})" if images_here and not folders else "")
        problems.append(Problem(INFO, "ignored-files",
                                f"{root}: {len(loose)} file(s) outside the class sub-folders are "
                                f"ignored{hint}", loose))
    ignored: list[str] = []
    empty: list[str] = []
    unlisted: list[OSError] = []
    # class folder -> its sub-folders, when all its images are in them
    nested: dict[str, set[str]] = {}
    for folder in folders:
        files = files_under(folder, should_stop, unlisted)
        images = [p for p in files if is_image_file(p)]
        ignored.extend(str(p) for p in files if not is_image_file(p))
        if not images:
            empty.append(str(folder))
        samples.extend(Sample(p, folder.name, source) for p in images)
        subs = [p.relative_to(folder).parts for p in images]
        if subs and all(len(parts) > 1 for parts in subs):
            nested[folder.name] = {parts[0] for parts in subs}
    problems.extend(_one_level_too_high(root, folders, nested))
    if unlisted:   # its images would be left out of training without a word
        problems.append(Problem(ERROR, "unlisted-folder",
                                f"{len(unlisted)} folder(s) cannot be listed: "
                                + "; ".join(listing_problem(e) for e in unlisted[:3])
                                + (" ..." if len(unlisted) > 3 else "")
                                + " - give this user access to them, or move them out",
                                [str(e.filename) for e in unlisted]))
    empty = [f for f in empty if f not in {str(e.filename) for e in unlisted}]
    if empty:
        problems.append(Problem(ERROR, "empty-class",
                                f"{len(empty)} class folder(s) without images (BMP, PNG, JPEG, "
                                "TIFF); add images or remove the folder(s)", empty))
    if ignored:
        problems.append(Problem(INFO, "ignored-files",
                                f"{len(ignored)} file(s) that are not images (BMP, PNG, JPEG, TIFF) "
                                "are ignored", ignored))
    return samples, problems


def _one_level_too_high(root: Path, folders: Sequence[Path],
                        nested: dict[str, set[str]]) -> list[Problem]:
    """A data folder one level above the class folders (``lines/line1/{pits,scale}``,
    ``lines/line2/{pits,scale}``) trains "line1" against "line2" without a word: said when every
    class folder keeps its images in sub-folders, and sub-folders of the same names recur in
    several of them."""
    if len(folders) < 2 or len(nested) < len(folders):
        return []
    seen: dict[str, int] = defaultdict(int)
    for subs in nested.values():
        for name in subs:
            # dates, shifts and coil numbers recur under every class (pits/2026-12-01/): those
            # sub-folders are not classes
            if sum(ch.isdigit() for ch in name) < 2:
                seen[name] += 1
    recurring = sorted(n for n, k in seen.items() if k >= 2)
    if len(recurring) < 2:
        return []
    return [Problem(WARNING, "nested-classes",
                    f"{root}: each class folder ({_listed(sorted(nested))}) keeps its images in "
                    f"sub-folders, named alike in several of them ({_listed(recurring)}); the "
                    f"classes trained are {_listed(sorted(nested))}. If the sub-folders are "
                    "the classes, give a folder with one sub-folder per class (one line's "
                    "folder, or the lines' images gathered by class)")]


def _read(path: Path, side: int = 200) -> ImageInfo:
    """Header, full decode (to catch damaged data) and digest; raises ImageReadError. The
    decode is training's own (``decode_image``), so a file the check passes is one training
    reads: a multi-page TIFF or an odd shape is named here, before the speed measurement and the
    staging, and ``--leave-out-bad-files`` can leave it out."""
    from PIL import Image

    arr = decode_image(path)   # raises ImageReadError with the usual wording for this file
    height, width = arr.shape[:2]
    try:
        with Image.open(path, formats=PILLOW_FORMATS) as img:
            img.seek(main_page(img)[0])   # the page training reads, not a thumbnail before it
            mode, fmt = img.mode, img.format or "?"
    except Exception:  # pragma: no cover - decoded above, so Pillow reads its header
        mode, fmt = "?", path.suffix.lstrip(".") or "?"
    if width < 1 or height < 1:
        raise ImageReadError(path, f"empty image ({width}x{height})")
    try:
        digest = file_digest(path)
    except OSError as exc:  # pragma: no cover - vanished between reads
        raise ImageReadError(path, f"cannot read the file ({exc})") from None
    return ImageInfo(width, height, mode, fmt.upper(), digest, image_chroma(arr, side),
                     bool(arr.min() == arr.max()))


def _mode_family(mode: str) -> str:
    if mode in ("1", "L", "I", "F") or mode.startswith("I;16"):
        return "grey" if mode in ("1", "L") else f"grey {mode}"
    return {"RGB": "colour", "RGBA": "colour with alpha", "P": "palette", "LA": "grey with alpha",
            "CMYK": "CMYK"}.get(mode, mode)


def _class_linked(values_by_class: dict[str, set[str]]) -> list[str]:
    """Classes whose values (formats, modes, sizes) no other class has."""
    linked = []
    for name, vals in values_by_class.items():
        others = set().union(*(v for n, v in values_by_class.items() if n != name))
        if vals and others and vals.isdisjoint(others):
            linked.append(name)
    return linked


def find_problems(source: str | Path | Sequence[Sample] | Sequence[tuple[str | Path, str]],
                  min_per_class: int = MIN_PER_CLASS, *,
                  recommended_per_class: int = RECOMMENDED_PER_CLASS,
                  imbalance_ratio: float = IMBALANCE_RATIO,
                  model_classes: Sequence[str] | None = None,
                  input_size: int | None = None, native: bool = False,
                  progress: Progress = quiet, should_stop: ShouldStop = never,
                  name: str | None = None) -> Report:
    """Checks a data folder (one sub-folder per class) or a list of labelled images
    (``Sample`` or ``(path, class name)`` pairs). Reads every image; raises Cancelled
    when ``should_stop()`` turns true. ``model_classes``: the current model's classes (the
    report then says whether they are kept); ``input_size``: the model's input side;
    ``native``: training runs at the images' own size when they are smaller than it (the
    retraining wizard: ``training.transfer.native_input_size``), so they are not enlarged.
    ``name``: what the report calls a list of images (the folders they came from)."""
    problems: list[Problem] = []
    if isinstance(source, (str, Path)):
        name = str(source)
        samples, problems = scan_folder(source, should_stop=should_stop)
    else:
        name = name or "selected images"
        samples = [s if isinstance(s, Sample) else Sample(Path(s[0]), str(s[1]), "list")
                   for s in source]
    # the same file listed twice under one class counts once
    seen: set[tuple[str, str]] = set()
    unique = []
    for s in samples:
        key = (str(Path(s.path).absolute()), s.label)
        if key not in seen:
            seen.add(key)
            unique.append(Sample(Path(s.path), s.label, s.source))
    samples = unique
    class_names = sorted({s.label for s in samples} | _empty_classes(problems))

    info: dict[str, ImageInfo] = {}
    unreadable: list[ImageReadError] = []
    for i, s in enumerate(samples):
        if should_stop():
            raise Cancelled("cancelled while checking images")
        try:
            info[str(s.path)] = _read(s.path, input_size or 200)
        except ImageReadError as exc:
            unreadable.append(exc)
        if i % 25 == 0 or i == len(samples) - 1:
            progress((i + 1) / len(samples), f"checking images {i + 1}/{len(samples)}")

    if not samples and not any(p.severity == ERROR for p in problems):
        problems.append(Problem(ERROR, "no-images", f"{name}: no images found (expected one "
                                                    "sub-folder per class with BMP, PNG, JPEG or "
                                                    "TIFF files)"))
    elif len(class_names) < 2 and samples:
        problems.append(Problem(ERROR, "one-class",
                                f"{name}: only one class ({_listed(class_names)}); a classifier "
                                "needs at least two, one sub-folder per class"))
    verdicts = [c for c in class_names if c.strip().lower() in VERDICT_WORDS]
    if verdicts:
        problems.append(Problem(
            ERROR, "verdict-name", f"class folder(s) named {_listed(verdicts)}: the inspector "
            "shows 'unknown' (not a class the model knows) and 'unsure' as verdicts of their own, "
            "so no class can be called that; rename the folder (e.g. 'other-defect')"))
    spaced = [c for c in class_names if c != c.strip() or is_windows_reserved(c)]
    if spaced:
        problems.append(Problem(
            WARNING, "spaced-name", "class folder name(s) with spaces at either end, or that "
            "Windows reserves (con, nul, com1, ...): " + _listed([repr(c) for c in spaced])
            + " (the class keeps the name, and Windows cannot copy such a folder; rename it)"))
    odd = [c for c in class_names if "," in c or any(ord(ch) < 32 for ch in c)
           or c[:1] in ("=", "+", "-", "@")]
    if odd:
        problems.append(Problem(
            WARNING, "odd-name", "class folder name(s) with a comma or a line break, or that "
            "begin with = + - or @: " + _listed([repr(c) for c in odd]) + " (the class keeps "
            "the name, but --classes of python -m training cannot name it, and exports write "
            "it after an apostrophe so that a spreadsheet does not run it as a formula; rename "
            "it)"))
    folded: dict[str, list[str]] = defaultdict(list)
    for c in class_names:   # NFC too: a folder name copied from a Mac is decomposed ("u" + "¨")
        folded[unicodedata.normalize("NFC", c).casefold()].append(c)
    clashes = [names for names in folded.values() if len(names) > 1]
    if clashes:   # typed names are refused so (inspector.session.check_class_name); folders too
        problems.append(Problem(
            ERROR, "case-name", "class names that differ only in upper and lower case (or in "
            "how an accent is stored): "
            + "; ".join(" and ".join(repr(n) for n in names) for names in clashes)
            + " (two classes of one defect to training, and one folder on Windows, where the "
              "staged images merge); rename one folder to match the other"))
    if unreadable:
        problems.append(Problem(
            ERROR, "unreadable", f"{len(unreadable)} file(s) cannot be read as images: "
            + "; ".join(f"{Path(e.path).parent.name}/{Path(e.path).name}: {e.problem}"
                       for e in unreadable[:3])
            + ("; ..." if len(unreadable) > 3 else ""),
            [e.path for e in unreadable], excludable=True))

    readable = [s for s in samples if str(s.path) in info]
    flat = [str(s.path) for s in readable if info[str(s.path)].flat]
    if flat:   # the app reads such an image as no class ("no contrast to classify")
        problems.append(Problem(
            WARNING, "blank", f"{len(flat)} image(s) have no contrast (every pixel the same value: "
            "a blank, dark or saturated frame, or a tiny image); the model learns nothing from "
            "them and the app reads such an image as no class: leave them out", flat))
    by_digest: dict[str, list[Sample]] = defaultdict(list)
    for s in readable:
        by_digest[info[str(s.path)].digest].append(s)
    conflicts = [g for g in by_digest.values() if len({s.label for s in g}) > 1]
    if conflicts:
        files = [str(s.path) for g in conflicts for s in g]
        first = conflicts[0]
        problems.append(Problem(
            ERROR, "conflicting-duplicate",
            f"{len(conflicts)} image(s) filed under two or more classes (byte-identical files), "
            f"e.g. {' = '.join(f'{s.label}/{Path(s.path).name}' for s in first[:3])}; "
            "keep each image in one class", files, excludable=True))
    same = [g for g in by_digest.values() if len(g) > 1 and len({s.label for s in g}) == 1]
    if same:
        problems.append(Problem(
            INFO, "duplicate", f"{sum(len(g) for g in same)} files are byte-identical copies "
            f"within their class ({len(same)} group(s)); each group is kept on one side of the "
            "train/test split", [str(s.path) for g in same for s in g]))

    counts = Counter(s.label for s in readable)
    conflicted = {str(s.path) for g in conflicts for s in g}
    usable = Counter(s.label for s in readable if str(s.path) not in conflicted)
    empty = _empty_classes(problems)
    few = [c for c in class_names if c not in empty and usable.get(c, 0) < min_per_class]
    # "usable": the class table's readable images less those filed under two classes
    but = " (not counting files filed under two classes)" if conflicted else ""
    if few:
        problems.append(Problem(
            ERROR, "too-few", f"class(es) with fewer than {min_per_class} usable images{but}: "
            + ", ".join(f"{c} ({usable.get(c, 0)})" for c in few)
            + "; every class needs images for training, validation and test"))
    some = [c for c in class_names
            if min_per_class <= usable.get(c, 0) < recommended_per_class]
    if some:
        problems.append(Problem(
            WARNING, "few", "class(es) with fewer than "
            f"{recommended_per_class} usable images{but}: "
            + ", ".join(f"{c} ({usable[c]})" for c in some)
            + "; the model and its test figures will be uncertain for them"))
    nonzero = {c: n for c, n in counts.items() if n > 0}
    if len(nonzero) >= 2:
        big = max(nonzero, key=nonzero.get)
        small = min(nonzero, key=nonzero.get)
        ratio = nonzero[big] / nonzero[small]
        if ratio > imbalance_ratio:
            problems.append(Problem(
                WARNING, "unequal", f"very unequal class sizes: {big} has {nonzero[big]} images, "
                f"{small} {nonzero[small]} ({ratio:.1f}x); the model may favour the large classes "
                "- add images to the small ones if you can"))

    if readable:
        problems.extend(_format_problems(readable, info, input_size, native))

    if model_classes is not None and class_names:
        missing = [c for c in model_classes if c not in class_names]
        added = set(class_names) - set(model_classes)
        if missing and set(class_names) & set(model_classes):
            # some of the current model's classes kept: a narrower model of the same line,
            # said more loudly when classes are added too (new images of a few classes and a
            # new one, the other classes' images forgotten), where it is easily missed
            problems.append(Problem(
                WARNING if added else INFO, "fewer-classes",
                f"the current model also knows {_listed(missing)}; the new model will know only "
                "the classes given here"
                + (" and will not be offered in its place; add folders of their images to keep "
                   "them" if added else "")))

    order = {s: i for i, s in enumerate(SEVERITIES)}
    problems.sort(key=lambda p: order[p.severity])
    return Report(name, class_names, samples, info, problems,
                  list(model_classes) if model_classes is not None else None)


def with_layout(report: Report, layout: Sequence[Problem]) -> Report:
    """``report`` with the folders' layout problems (``scan_folder``'s, gathered before the
    images were checked) among its own, errors first; its "no images found" is left out when
    the layout already says why (a folder not found: one error, not two)."""
    own = report.problems
    if any(p.severity == ERROR for p in layout):
        own = [p for p in own if p.code != "no-images"]
    order = {s: i for i, s in enumerate(SEVERITIES)}
    report.problems = sorted([*layout, *own], key=lambda p: order[p.severity])
    return report


def _empty_classes(problems: list[Problem]) -> set[str]:
    return {Path(f).name for p in problems if p.code == "empty-class" for f in p.files}


def _format_problems(readable: list[Sample], info: dict[str, ImageInfo],
                     input_size: int | None, native: bool = False) -> list[Problem]:
    out: list[Problem] = []
    props = {
        "file format": lambda i: i.format,
        "colour mode": lambda i: _mode_family(i.mode),
        "image size": lambda i: f"{i.width}x{i.height}",
    }
    for what, key in props.items():
        total = Counter(key(info[str(s.path)]) for s in readable)
        if len(total) < 2:
            continue
        by_class: dict[str, set[str]] = defaultdict(set)
        for s in readable:
            by_class[s.label].add(key(info[str(s.path)]))
        summary = ", ".join(f"{v} ({n})" for v, n in total.most_common(5))
        linked = _class_linked(by_class)
        if linked:
            out.append(Problem(
                WARNING, "class-linked-" + what.replace(" ", "-"),
                f"the {what} tells classes apart: "
                + "; ".join(f"{c}: {'/'.join(sorted(by_class[c]))}" for c in linked[:4])
                + f" (overall {summary}); the model may learn the {what} instead of the defect - "
                "mix them within classes or convert the images"))
        else:
            note = {"image size": "all are resized to the model's input",
                    "colour mode": "all are converted to RGB (grey copied to three channels)",
                    "file format": "all are decoded alike"}[what]
            out.append(Problem(INFO, "mixed-" + what.replace(" ", "-"),
                               f"mixed {what}s: {summary}; {note}"))
    in_colour = {str(s.path): info[str(s.path)].chroma >= COLOUR_CHROMA for s in readable}
    by_class: dict[str, set[str]] = defaultdict(set)
    for s in readable:
        by_class[s.label].add("colour" if in_colour[str(s.path)] else "grey")
    linked = _class_linked(by_class)
    if linked:   # e.g. a new class's images from another (grey) camera: colour would name it
        # says what the file modes' warning would (RGB against grey files), from the pixels
        out = [q for q in out if q.code != "class-linked-colour-mode"]
        out.append(Problem(
            WARNING, "class-linked-colour",
            "colour tells classes apart: " + "; ".join(
                f"{c}: {'/'.join(sorted(by_class[c]))}" for c in linked[:4])
            + " images only. If these classes come from different cameras, the model may learn "
            "the camera instead of the defect: mix colour and grey images within the classes or "
            "convert them all to grey. If the colour is the defect itself (rust, scale), ignore "
            "this", [str(s.path) for s in readable if s.label in linked]))
    colour = sum(in_colour.values())
    if readable and colour >= COLOUR_SHARE * len(readable):   # training.train.with_input_norm
        out.append(Problem(
            INFO, "colour", f"{colour} of {len(readable)} image(s) are in colour: the model will "
            "tell classes apart by colour too, an even tint over the whole image included; keep "
            "the camera's white balance as it was for these images, or retrain after changing "
            "it"))
    sides = [(info[str(s.path)].width, info[str(s.path)].height) for s in readable]
    odd = [str(s.path) for s, (w, h) in zip(readable, sides) if max(w, h) > 1.25 * min(w, h)]
    if odd:
        # as training reads them: made square by reflection or stretched, by the rule of the
        # model card's view (the app reads them the same way)
        view = training_view([(h, w) for w, h in sides], input_size or 200)
        how = ("are made square by reflection (the surface mirrored beyond their short sides) "
               "before they are resized, as the app reads them" if view["square"] else
               f"are stretched to a square input (the images' median long/short side is "
               f"{view['aspect']:.2f}:1, so the model learns them stretched and the app reads "
               "them the same way)")
        out.append(Problem(WARNING, "not-square", f"{len(odd)} image(s) are far from square and "
                                                  + how, odd))
    if input_size:
        small = [str(s.path) for s in readable
                 if max(info[str(s.path)].width, info[str(s.path)].height) < input_size]
        sizes = Counter(f"{info[f].width}x{info[f].height}" for f in small)
        listed = ", ".join(f"{k} ({n})" for k, n in sizes.most_common(3))
        side = median_side(sides)
        train_at = native_input_size(side, input_size) if native else input_size
        if train_at < input_size:
            # the wizard trains at the images' own size (whether or not any is smaller than the
            # input: 256x128 strips train at 128)
            how = ("the images' median shorter side, to a multiple of 8" if train_at <= side
                   else f"the smallest it trains at; the images' median shorter side is "
                   f"{side:g} px, so they are enlarged to it")
            out.append(Problem(
                INFO, "native-size", f"the model is trained at {train_at}x{train_at}, smaller "
                f"than its input ({input_size}x{input_size}): {how}; the app resizes every "
                "image to that" + (f" ({len(small)} smaller than the input: {listed})" if small
                                  else "")))
        elif small:
            out.append(Problem(
                INFO, "enlarged", f"{len(small)} image(s) are smaller than the model's input "
                f"({input_size}x{input_size}) and are enlarged: {listed}"))
    return out

"""The retraining wizard's logic without Qt: gathering labelled images, staging them into one
data folder, choosing default settings for a time budget, estimating the training time and
comparing the new model with the current one on the held-out images.

Training itself is ``training.train.train``; this module only prepares its inputs and reads its
outputs. ``python -m inspector.retrain --data DIR [--data ORIGINAL_DIR] [--activate]`` does what
the wizard does, with the same defaults, on a terminal.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from training.checks import ERROR, Problem, Report, Sample, scan_folder
from training.train import TrainConfig

from . import paths

Progress = Callable[[float, str], None]
ShouldStop = Callable[[], bool]

DEFAULT_BUDGET_SECONDS = 15 * 60   # the default epochs fit this much training on this machine
MIN_EPOCHS = 8
MAX_EPOCHS = 60
AUGMENT_OVERHEAD = 1.3             # fit() with augmentation vs. the bare train steps measured
EVAL_COST = 0.35                   # an inference costs about this fraction of a training step
READ_SECONDS = 0.004               # reading and resizing one image
FIXED_SECONDS = 25.0               # loading the model, tracing the first epoch, writing the bundle
WORK_DIR_NAME = "retrain-tmp"


def _quiet(fraction: float, message: str) -> None:
    pass


def _never() -> bool:
    return False


# ---- data ------------------------------------------------------------------------------------
def gather_samples(folders: Sequence[str | Path] = (),
                   verdicts: Sequence[tuple[str | Path, str]] = (),
                   should_stop: ShouldStop = _never) -> tuple[list[Sample], list[Problem]]:
    """Labelled images from class folders (one sub-folder per class) and review verdicts
    ((image path, true class name) pairs), with the problems of the folders' layout."""
    samples: list[Sample] = []
    problems: list[Problem] = []
    for folder in folders:
        s, p = scan_folder(folder, should_stop=should_stop)
        samples += s
        problems += p
    bad_names = sorted({label for _, label in verdicts
                        if not label or label.startswith(".") or "/" in label or "\\" in label})
    if bad_names:
        problems.append(Problem(ERROR, "bad-class-name", "review verdicts with class names that "
                                "cannot be folder names: " + ", ".join(repr(n) for n in bad_names),
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
                  digests: Mapping[str, str] | None = None, progress: Progress = _quiet,
                  should_stop: ShouldStop = _never) -> tuple[Path, dict[str, str]]:
    """Assembles labelled images into one data folder (``target/<class>/<file>``) by hard links,
    or copies where links are impossible. Byte-identical files within a class (by ``digests``,
    path -> digest) are staged once. Returns the folder and a map staged path -> original."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    origin: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for i, s in enumerate(samples):
        if should_stop():
            raise InterruptedError("cancelled while staging images")
        digest = (digests or {}).get(str(s.path))
        if digest is not None:
            if (s.label, digest) in seen:
                continue
            seen.add((s.label, digest))
        folder = target / s.label
        folder.mkdir(exist_ok=True)
        dst = folder / f"{i:06d}_{Path(s.path).name}"
        try:
            os.link(s.path, dst)
        except OSError:
            shutil.copy2(s.path, dst)
        origin[str(dst)] = str(s.path)
        if i % 100 == 0 or i == len(samples) - 1:
            progress((i + 1) / len(samples), f"staging images {i + 1}/{len(samples)}")
    return target, origin


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


# ---- settings --------------------------------------------------------------------------------
def split_counts(counts: Mapping[str, int], val_fraction: float,
                 test_fraction: float) -> tuple[int, int, int]:
    """Train, validation and test image counts as ``training.data.stratified_split`` makes them."""
    tr = va = te = 0
    for n in counts.values():
        t, v = int(round(n * test_fraction)), int(round(n * val_fraction))
        if n >= 3:
            t = max(t, 1 if test_fraction > 0 else 0)
            v = max(v, 1 if val_fraction > 0 else 0)
        t, v = min(t, n), min(v, max(0, n - t))
        tr, va, te = tr + n - t - v, va + v, te + t
    return tr, va, te


def epoch_seconds(counts: Mapping[str, int], config: TrainConfig, seconds_per_image: float) -> float:
    tr, va, _ = split_counts(counts, config.val_fraction, config.test_fraction)
    aug = AUGMENT_OVERHEAD if config.augment else 1.0
    return tr * seconds_per_image * aug + va * seconds_per_image * EVAL_COST


def estimate_seconds(counts: Mapping[str, int], config: TrainConfig,
                     seconds_per_image: float) -> float:
    """Wall-clock seconds for ``train()`` with ``config`` on a data set with these class counts,
    given the measured training time per image (at the config's input size)."""
    n = sum(counts.values())
    _, _, te = split_counts(counts, config.val_fraction, config.test_fraction)
    return (FIXED_SECONDS + n * READ_SECONDS + config.epochs * epoch_seconds(counts, config,
                                                                              seconds_per_image)
            + 2 * te * seconds_per_image * EVAL_COST)


def suggest_settings(counts: Mapping[str, int], seconds_per_image: float, *,
                     current_bundle: str | Path | None = None,
                     current_card: Mapping | None = None,
                     class_names: Sequence[str] | None = None,
                     from_scratch: bool = False,
                     budget_seconds: float = DEFAULT_BUDGET_SECONDS) -> TrainConfig:
    """Settings that work on a new data set without tuning: start from the current model (its
    input size; a new classifier head when the classes differ), the project's recipe, a larger
    held-out split for small data sets, and as many epochs as fit ``budget_seconds`` on this
    machine (between MIN_EPOCHS and MAX_EPOCHS)."""
    card = dict(current_card or {})
    if current_bundle is not None and not card:
        from training.bundle import BundleError, read_card
        try:
            card = read_card(current_bundle)
        except BundleError:
            card = {}
    input_size = int(card.get("input_size", 200))
    names = tuple(class_names) if class_names else tuple(sorted(counts))
    model_classes = card.get("class_names")
    fine_tune = not from_scratch and current_bundle is not None and bool(card)
    same = fine_tune and model_classes is not None and list(model_classes) == list(names)
    n = sum(counts.values())
    held_out = 0.1 if n < 3000 else 1 / 12
    base = TrainConfig()
    design = str(card.get("training", {}).get("config", {}).get("design") or base.design)
    config = replace(
        base,
        design=design if fine_tune else base.design,
        input_size=input_size,
        class_names=names,
        init_bundle=str(current_bundle) if fine_tune else None,
        # a kept head needs gentler steps than a new one or a model from scratch
        learning_rate=1e-3 if same else base.learning_rate,
        warmup_epochs=1 if same else base.warmup_epochs,
        val_fraction=held_out,
        test_fraction=held_out,
        batch_size=32 if n * (1 - 2 * held_out) >= 256 else 16,
        name=str(card.get("name") or base.name) if fine_tune else base.name,
        epochs=1,
    )
    per_epoch = max(epoch_seconds(counts, config, seconds_per_image), 1e-6)
    spare = budget_seconds - (estimate_seconds(counts, config, seconds_per_image) - per_epoch)
    lo = MIN_EPOCHS if fine_tune else 2 * MIN_EPOCHS
    hi = MAX_EPOCHS if fine_tune else 2 * MAX_EPOCHS
    epochs = int(min(hi, max(lo, math.floor(spare / per_epoch))))
    return replace(config, epochs=epochs)


def measure_seconds_per_image(config: TrainConfig, class_names: Sequence[str], steps: int = 3,
                              should_stop: ShouldStop = _never) -> float:
    """Times a few training steps of the model ``config`` starts from (after one untimed step
    that traces the graph) and returns seconds per training image on this machine."""
    import keras

    from training.train import build_initial_model

    model = build_initial_model(config, class_names)
    model.compile(optimizer=keras.optimizers.Adam(1e-4),
                  loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
    rng = np.random.default_rng(0)
    b = config.batch_size
    x = rng.integers(0, 256, (b, config.input_size, config.input_size, 3)).astype(np.float32)
    y = keras.utils.to_categorical(rng.integers(0, len(class_names), b), len(class_names))
    model.train_on_batch(x, y)
    took = []
    for _ in range(steps):
        if should_stop():
            raise InterruptedError("cancelled while measuring")
        t = time.perf_counter()
        model.train_on_batch(x, y)
        took.append(time.perf_counter() - t)
    return float(np.median(took)) / b


# ---- evaluation ------------------------------------------------------------------------------
@dataclass
class Misclassified:
    path: str            # the original file (not the staged link)
    true: str
    predicted: str
    confidence: float
    current_predicted: str | None = None  # the current model's answer, when comparable


@dataclass
class SplitEvaluation:
    report: dict                      # the new model on the test split
    current_report: dict | None       # the current model on the same images (same classes)
    misclassified: list[Misclassified] = field(default_factory=list)
    test_files: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def comparable(self) -> bool:
        return self.current_report is not None

    @property
    def better(self) -> bool:
        """Whether the new model should be put into use: at least as accurate as the current one
        on the same images, or (new classes) the current one cannot classify them at all."""
        if self.current_report is None:
            return self.report["count"] > 0
        return self.report["accuracy"] >= self.current_report["accuracy"]


def evaluate_split(new_bundle: str | Path, data_dir: str | Path,
                   current_bundle: str | Path | None = None,
                   origin: Mapping[str, str] | None = None, progress: Progress = _quiet,
                   should_stop: ShouldStop = _never) -> SplitEvaluation:
    """The new model and (when it has the same classes) the current one on the test images the
    new bundle's ``split.json`` lists, with the misclassified files. ``origin`` maps staged files
    back to the original ones for display."""
    from training.bundle import BundleError, load_bundle
    from training.images import load_image
    from training.metrics import classification_report
    from training.predict import KerasPredictor

    new_bundle, data_dir = Path(new_bundle), Path(data_dir)
    split = json.loads((new_bundle / "split.json").read_text(encoding="utf-8"))
    rel = list(split.get("test") or [])
    progress(0.05, "loading the new model")
    new = load_bundle(new_bundle)
    names = new.class_names
    files = [data_dir / r for r in rel]
    labels = np.array([names.index(Path(r).parts[0]) for r in rel], dtype=np.int64)

    def read(size: int, start: float, span: float) -> np.ndarray:
        out = np.zeros((len(files), size, size, 3), np.uint8)
        for i, f in enumerate(files):
            if should_stop():
                raise InterruptedError("cancelled while evaluating")
            out[i] = load_image(f, size)
            if i % 20 == 0:
                progress(start + span * (i + 1) / len(files), f"reading test images {i + 1}/{len(files)}")
        return out

    x = read(new.input_size, 0.1, 0.3)
    probs = KerasPredictor(new.model, names, new.input_size).predict(x)
    pred = probs.argmax(1)
    report = classification_report(labels, pred, names)

    current_report, cur_names, cur_pred, note = None, None, None, ""
    if current_bundle is not None:
        progress(0.5, "loading the current model")
        try:
            cur = load_bundle(current_bundle)
        except BundleError as exc:
            cur, note = None, f"the current model could not be loaded ({exc})"
        if cur is not None and set(cur.class_names) == set(names):
            xc = x if cur.input_size == new.input_size else read(cur.input_size, 0.55, 0.3)
            cp = KerasPredictor(cur.model, cur.class_names, cur.input_size).predict(xc).argmax(1)
            cur_names = cur.class_names
            cur_pred = np.array([names.index(cur_names[i]) for i in cp], dtype=np.int64)
            current_report = classification_report(labels, cur_pred, names)
        elif cur is not None:
            note = ("the current model knows other classes ("
                    f"{', '.join(cur.class_names)}), so it cannot be compared on these images")
    origin = origin or {}
    wrong = []
    for i in np.flatnonzero(pred != labels):
        wrong.append(Misclassified(
            origin.get(str(files[i]), str(files[i])), names[labels[i]], names[pred[i]],
            float(probs[i, pred[i]]),
            names[cur_pred[i]] if cur_pred is not None else None))
    progress(1.0, "evaluation done")
    return SplitEvaluation(report, current_report, wrong,
                           [origin.get(str(f), str(f)) for f in files], note)


def thumbnail(path: str | Path, size: int = 72) -> np.ndarray | None:
    """A small RGB copy of an image for display, or None when it cannot be read."""
    from training.images import ImageReadError, decode_image, resize_rgb

    try:
        return resize_rgb(decode_image(path), size)
    except ImageReadError:
        return None


# ---- command line: the wizard without windows ------------------------------------------------
def _config_command(data: str | Path, out: str, c: TrainConfig) -> str:
    """The ``python -m training train`` command line for a configuration."""
    parts = ["python -m training train", f"--data {data}", f"--out {out}",
             f"--epochs {c.epochs}", f"--batch {c.batch_size}", f"--lr {c.learning_rate:g}",
             f"--schedule {c.lr_schedule}", f"--label-smoothing {c.label_smoothing:g}",
             f"--val-fraction {c.val_fraction:g}", f"--test-fraction {c.test_fraction:g}",
             f"--seed {c.seed}", f"--classes {','.join(c.class_names or ())}", f"--name '{c.name}'"]
    if c.init_bundle:
        parts.append(f"--init {c.init_bundle}")
    else:
        parts.append(f"--design {c.design}")
    if not c.augment:
        parts.append("--no-augment")
    return " ".join(parts)


def main(argv=None) -> int:
    """``python -m inspector.retrain``: what the retraining wizard does, on a terminal - check
    the images, measure this PC, choose the default settings for the time budget, train, compare
    with the current model on the held-out images, and add the model to the library."""
    import argparse
    import sys

    from training.bundle import BundleError, read_card
    from training.checks import find_problems
    from training.cli import ConsoleProgress
    from training.data import DatasetError
    from training.images import ImageReadError
    from training.train import TrainingCancelled, train

    from .library import ModelLibrary

    p = argparse.ArgumentParser(prog="python -m inspector.retrain", description=main.__doc__)
    p.add_argument("--data", action="append", required=True,
                   help="folder with one sub-folder per class (repeat to merge folders, e.g. the "
                        "original training set)")
    p.add_argument("--current", help="the model to start from and compare with (default: the "
                                     "library's active model, else the bundled one)")
    p.add_argument("--scratch", action="store_true", help="train a new model from scratch")
    p.add_argument("--budget-min", type=float, default=DEFAULT_BUDGET_SECONDS / 60,
                   help="the default epochs fit this many minutes of training (default 15)")
    p.add_argument("--epochs", type=int, help="override the time-budgeted number of epochs")
    p.add_argument("--rate", type=float, metavar="IMAGES_PER_S",
                   help="assume this training speed instead of measuring it (reproduces the "
                        "defaults of an earlier run)")
    p.add_argument("--seed", type=int, help="split and initialisation seed (default: the "
                                             "recipe's); another seed gives another held-out split")
    p.add_argument("--min-per-class", type=int, default=5)
    p.add_argument("--leave-out-bad-files", action="store_true",
                   help="leave out unreadable and conflicting files instead of stopping")
    p.add_argument("--dry-run", action="store_true",
                   help="check, measure and print the settings and the time estimate only")
    p.add_argument("--name", help="model name for the library version (default: the current "
                                  "model's)")
    p.add_argument("--activate", action="store_true",
                   help="use the new model from now on if it is at least as good as the current "
                        "one on the same held-out images (or the classes are new)")
    args = p.parse_args(argv)
    library = ModelLibrary()
    progress = ConsoleProgress()
    current = Path(args.current) if args.current else library.resolved_active_path()
    try:
        card = read_card(current)
    except BundleError as exc:
        if args.current:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        card, current = None, None
    work = None
    try:
        samples, layout = gather_samples(args.data)
        report = find_problems(samples, args.min_per_class,
                               model_classes=card["class_names"] if card else None,
                               input_size=int(card["input_size"]) if card else 200,
                               progress=progress)
        order = (ERROR, "warning", "info")
        report.problems = sorted(layout + report.problems, key=lambda q: order.index(q.severity))
        report.source = " + ".join(args.data)
        print(report.format())
        exclude: set[str] = set()
        if not report.ok:
            if args.leave_out_bad_files and report.ok_without_excludable and not any(
                    p.severity == ERROR and not p.excludable for p in layout):
                exclude = report.excludable_files
                print(f"leaving out {len(exclude)} file(s) named in the errors")
            else:
                print("error: fix the errors above first", file=sys.stderr)
                return 2
        usable = report.usable_samples(exclude)
        counts: dict[str, int] = {}
        for s in usable:
            counts[s.label] = counts.get(s.label, 0) + 1
        names = report.training_class_names()
        scratch = args.scratch or card is None
        base = suggest_settings(counts, 1 / 70, current_bundle=current, current_card=card,
                                class_names=names, from_scratch=scratch)
        if args.rate:
            spi = 1 / args.rate
        else:
            progress(0.0, "measuring the training speed of this PC")
            spi = measure_seconds_per_image(replace(base, batch_size=16), names)
        config = suggest_settings(counts, spi, current_bundle=current, current_card=card,
                                  class_names=names, from_scratch=scratch,
                                  budget_seconds=args.budget_min * 60)
        if args.epochs:
            config = replace(config, epochs=args.epochs)
        if args.seed is not None:
            config = replace(config, seed=args.seed)
        config = replace(config, name=args.name or config.name,
                         version=time.strftime("%Y.%m.%d-%H%M"))
        est = estimate_seconds(counts, config, spi)
        print(f"measured {1 / spi:.0f} training images/s; {config.epochs} epochs, estimated "
              f"{est / 60:.1f} min; starting from {config.init_bundle or 'scratch'}")
        folder = training_folder(report, args.data, [], sorted(exclude))
        print("same as: " + _config_command(folder or "STAGED_FOLDER", "OUT", config))
        if args.dry_run:
            return 0
        clean_stale_work_dirs()
        work = work_dir()
        origin: dict[str, str] = {}
        if folder is None:
            folder, origin = stage_dataset(usable, work / "data",
                                           {k: v.digest for k, v in report.info.items()},
                                           progress)
        out = work / "bundle"
        result = train(folder, out, config, progress,
                       notes=f"retrained with python -m inspector.retrain from "
                             f"{', '.join(args.data)}")
        print(result.pop("_test_report_text", "no test split"))
        ev = evaluate_split(out, folder, current if card else None, origin)
        if ev.current_report is not None:
            print(f"current model on the same {ev.current_report['count']} images: "
                  f"{ev.current_report['accuracy'] * 100:.2f}%  (new: "
                  f"{ev.report['accuracy'] * 100:.2f}%)")
        elif ev.note:
            print(f"note: {ev.note}")
        path = library.add(out, name=config.name, move=True)
        print(f"saved as {path.name} in {path.parent}")
        if args.activate:
            if ev.better:
                library.activate(path.name)
                print(f"now using {path.name}")
            else:
                print(f"not activated: the new model is not better than {current}; "
                      f"python -m inspector.library activate {path.name} uses it anyway")
        return 0
    except (DatasetError, BundleError, ImageReadError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, TrainingCancelled, InterruptedError):
        print("\ncancelled; nothing was saved", file=sys.stderr)
        return 130
    finally:
        if work is not None:
            remove_work_dir(work)


if __name__ == "__main__":
    import sys

    sys.exit(main())

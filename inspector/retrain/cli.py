"""``python -m inspector.retrain`` (and ``inspector retrain``): the wizard's steps on a terminal,
with the same defaults and the same functions."""
from __future__ import annotations

import argparse
import contextlib
import functools
import math
import shlex
import shutil
import signal
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from training.card import ModelCard
from training.checks import ERROR, with_layout
from training.train import TrainConfig
from training.transfer import CHECK_EPOCHS, earliest_stop

from .data import count_samples, gather_samples, sample_digests, training_data, training_folder
from .defaults import (DEFAULT_BUDGET_SECONDS, STRETCH_EPOCHS, STRETCH_RATIO, estimate_seconds,
                       full_training_size, guess_seconds_per_image, measure_seconds_per_image,
                       median_side, model_full_size, seconds_per_image_at, SHORT_BUDGET_EPOCHS,
                       SHORT_BUDGET_SIZE, suggest_settings)
from .evaluation import evaluate_split, format_recalls
from .workdirs import (clean_stale_work_dirs, failures_named, remove_work_dir, space_problem,
                       work_dir)

NOT_USABLE_STATUS = 3   # exit status of --activate when the new model is not usable
SAVING_NOTICE = "stop asked: the trained model is being saved first (a few seconds)"

if TYPE_CHECKING:
    from ..library import ModelLibrary


# ---- command line: the wizard without windows ------------------------------------------------
def _config_command(data: str | Path, out: str, c: TrainConfig) -> str:
    """The ``python -m training train`` command line for a configuration."""
    q = shlex.quote
    parts = ["python -m training train", f"--data {q(str(data))}", f"--out {q(str(out))}",
             f"--epochs {c.epochs}", f"--batch {c.batch_size}", f"--lr {c.learning_rate:g}",
             f"--schedule {c.lr_schedule}", f"--label-smoothing {c.label_smoothing:g}",
             f"--val-fraction {c.val_fraction:g}", f"--test-fraction {c.test_fraction:g}",
             f"--seed {c.seed}", f"--classes {q(','.join(c.class_names or ()))}",
             f"--name {q(c.name)}"]
    if c.init_bundle:
        parts.append(f"--init {q(str(c.init_bundle))}")
    else:
        parts.append(f"--design {c.design}")
    if not c.augment:
        parts.append("--no-augment")
    parts.append(f"--size {c.input_size} --class-weighting {c.class_weighting} "
                 f"--patience {c.patience}")
    if c.time_budget_s > 0:
        parts.append(f"--time-budget-min {c.time_budget_s / 60:.2f}")
    if c.augment and c.augment_check:
        parts.append("--augment-check")
    if not c.head_first:
        parts.append("--no-head-first")
    if not c.export_int8:
        parts.append("--no-int8")
    if c.later_epoch_margin_images:
        parts.append(f"--later-epoch-margin {c.later_epoch_margin_images:g}")
    return " ".join(parts)


def _rates(text: str) -> list[float]:
    """An argparse type for ``--rate``: one training speed, or two separated by a comma (as a
    run with a short budget prints them: at the full size, then at the smaller size)."""
    parts = text.split(",")
    if len(parts) > 2:
        raise argparse.ArgumentTypeError(f"one or two speeds, not {len(parts)} (got {text})")
    rates = [_above_zero(float)(part.strip()) for part in parts]
    if len(rates) == 2 and rates[1] < rates[0]:
        # smaller images never train slower: "22,2" is a decimal comma (22.2), which made a
        # plan of 2 images/s at the smaller size and two hours (a locale audit)
        raise argparse.ArgumentTypeError(
            f"{text}: the second speed (at the smaller size) cannot be lower than the first; "
            f"write decimals with a point ({text.replace(',', '.')})")
    return rates


def _whole(low: int, high: int | None = None):
    """An argparse type: a whole number from ``low`` (to ``high``)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"must be at least {low} (got {text})" if high is None
                else f"must be from {low} to {high} (got {text})")
        return value
    return parse


def _above_zero(kind: type):
    """An argparse type: a number (``kind``) above zero."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {'whole number' if kind is int else 'number'}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be above 0 (got {text})")
        return value
    return parse


def _epochs_text(config: TrainConfig) -> str:
    """The training's length as the command states it before it starts, with the augmentation
    check's epochs (``training.train.fit``: with a time budget, a skipped check's epochs go to
    the training)."""
    checking = config.augment and config.augment_check
    third = (f" ({CHECK_EPOCHS} more with its light and pixel shifts alone if it is dropped)"
             if config.camera_only_probe else "")
    check = (f"a check of {CHECK_EPOCHS}+{CHECK_EPOCHS} epochs with and without the camera "
             f"augmentation{third}" if checking else "")
    if config.time_budget_s <= 0:
        return f"{config.epochs} epoch{'' if config.epochs == 1 else 's'}" + (f" after {check}" if checking else "")
    budget = (f"{config.time_budget_s / 60:.1f} min" if config.time_budget_s >= 60
              else f"{config.time_budget_s:.0f} s")
    return (f"{budget} of training (about {config.epochs} epochs"
            + (f" after {check}, or {config.epochs + 2 * CHECK_EPOCHS} when the new head already "
               "separates the classes and the check is skipped" if checking else "")
            + "; the schedule runs on the clock, so it ends on time if this PC's speed changes)")


def _kept_outside_library(bundle: Path, exc: BaseException) -> str:
    """The library could not take a trained model (a full disk, a file where its folder goes):
    the model is moved out of the temporary folder (which is deleted) into the user folder's
    ``kept-models``; returns what to tell the user."""
    from .. import paths

    kept = paths.user_data_dir() / "kept-models" / (time.strftime("%Y%m%d-%H%M%S-")
                                                     + uuid.uuid4().hex[:6])
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(bundle), str(kept))
        where = f"the trained model is kept in {kept} (python -m inspector.library add {kept} " \
                "adds it later)"
    except OSError:
        where = "the trained model could not be kept"
    return f"the library could not take the model ({exc}); {where}"


def _keep_unjudged(library: ModelLibrary, bundle: Path, config: TrainConfig,
                   exc: BaseException) -> int:
    """After the training, the comparison stopped (Ctrl+C, a signal) or failed: the trained
    model goes to the library, not in use, and the command says so; if the library cannot take
    it (a full disk), it is moved out of the temporary folder (which is deleted) and its folder
    named. Ctrl+C and the ending signals wait meanwhile. Returns the exit status (128 + the
    signal, 130 for Ctrl+C, else 2)."""
    from training.bundle import BundleError, read_card
    from training.cancel import Cancelled, Terminated, interrupted, signals_held
    from training.cli import unexpected_error
    from training.data import DatasetError
    from training.images import ImageReadError

    from ..library import LibraryError

    stopped = isinstance(exc, (KeyboardInterrupt, Cancelled))
    foreseen = isinstance(exc, (DatasetError, BundleError, ImageReadError, ValueError, OSError))
    what = ("stopped during the comparison with the current model" if stopped else
            "the comparison with the current model failed: "
            + (str(exc) if foreseen else unexpected_error(exc, "inspector retrain")))
    with signals_held(notice=SAVING_NOTICE):
        try:
            path = library.add(bundle, name=config.name, move=True)
            weak = ModelCard.of(read_card(path)).usability_problems()
            use = (f"its own test figures say it is not usable ({'; '.join(weak)}): "
                   f"python -m inspector.library activate --force {path.name} uses it anyway"
                   if weak else f"python -m inspector.library activate {path.name} uses it")
            said = (f"the trained model is saved as {path.name} in {path.parent} (not in use, not "
                    f"compared; {use}; python -m inspector.library remove {path.name} discards "
                    "it)")
        except (BundleError, LibraryError, OSError) as add_exc:
            said = _kept_outside_library(bundle, add_exc)
    with contextlib.suppress(OSError):   # the terminal may be gone (SIGHUP)
        print(f"\n{what}; {said}", file=sys.stderr)
    if isinstance(exc, Terminated):
        return 128 + exc.signum
    if isinstance(exc, Cancelled):   # a signal seen through should_stop: that signal's status
        return 128 + (interrupted() or signal.SIGINT)
    return 130 if stopped else 2


def _speed_text(speeds: dict[int, float], size: int, full: int, assumed: bool = False) -> str:
    """The training speeds the settings rest on, the full size's first: ``--rate`` with these
    figures reproduces the run. A size trained at without a speed of its own (``--rate`` with
    one figure) gets the one carried over to it."""
    def rate(s: int) -> str:
        return f"{1 / seconds_per_image_at(speeds, s):g}" if assumed and s in speeds \
            else f"{1 / seconds_per_image_at(speeds, s):.0f}"

    sizes = sorted(speeds, key=lambda s: (s != full, -s))
    return (("assumed (--rate) " if assumed else "measured ")
            + f"{rate(sizes[0])} training images/s at {sizes[0]}x{sizes[0]}"
            + "".join(f" and {rate(s)} at {s}x{s}" for s in sizes[1:])
            + (f", about {rate(size)} at {size}x{size}" if size not in speeds else ""))


def main(argv=None) -> int:
    """``python -m inspector.retrain``: what the retraining wizard does, on a terminal - check
    the images, measure this PC, choose the default settings for the time budget, train, compare
    with the current model on the held-out images, and add the model to the library."""
    from training.cancel import ends_as_interrupts

    with ends_as_interrupts():   # SIGTERM, SIGHUP: as Ctrl+C (the temporary folder goes)
        return _main(argv)


def _main(argv=None) -> int:
    from training.bundle import BundleError, read_card
    from training.checks import find_problems
    from training.cli import ConsoleProgress
    from training.data import DatasetError
    from training.images import ImageReadError
    from training.cancel import (Cancelled, Terminated, interrupted, raise_if_interrupted,
                                 signals_held, stop_asked)
    from training.tf_import import quiet_tensorflow_import
    from training.train import train

    from ..library import LibraryError, ModelLibrary

    quiet_tensorflow_import()   # its start-up notices kept off the terminal
    p = argparse.ArgumentParser(
        prog="inspector retrain", description=main.__doc__.replace("``", ""),
        epilog="exit status: 0 trained and saved (with --activate: in use, or said why not), "
               "1 an unexpected error (one line; the model is kept if it was saved), 2 the data, "
               "the model or the library stopped it (said why), 3 --activate refused an unusable "
               "model (it is saved, not in use), 130 cancelled with Ctrl+C (nothing saved unless "
               "it says so), 128 + the signal's number when stopped by another (143 SIGTERM)")
    p.add_argument("--data", action="append", required=True,
                   help="folder with one sub-folder per class (repeat to merge folders, e.g. the "
                        "original training set)")
    p.add_argument("--current", help="the model to start from and compare with (default: the "
                                     "library's active model, else the bundled one)")
    p.add_argument("--scratch", action="store_true", help="train a new model from scratch")
    p.add_argument("--budget-min", type=_above_zero(float), default=DEFAULT_BUDGET_SECONDS / 60,
                   help="the default epochs fit this many minutes of training (default 15); a "
                        f"fine-tune it buys fewer than {STRETCH_EPOCHS} epochs gets up to "
                        f"{STRETCH_RATIO:.3g} times as long, just enough for them (what such data "
                        "needed, docs/retraining.md)")
    p.add_argument("--exact-budget", action="store_true",
                   help="keep to --budget-min even when it buys fewer epochs than the data needs")
    p.add_argument("--epochs", type=_above_zero(int), help="override the time-budgeted number of epochs")
    p.add_argument("--size", type=_above_zero(int), metavar="PIXELS",
                   help="train at this size at most, rounded down to a multiple of 8 and not "
                        "below 32 (default: "
                        "the images' own size when smaller than the model's input, else the "
                        "model's; a fine-tune whose budget buys fewer than "
                        f"{SHORT_BUDGET_EPOCHS} epochs there trains at {SHORT_BUDGET_SIZE} "
                        "instead: on a slow PC a smaller size buys about three times the epochs "
                        "(magnetic tiles, 5-fold cv: 128 px for 40 epochs 90.6%% macro F1 "
                        "against 200 px for 15 84.8%%, docs/retraining.md)")
    p.add_argument("--rate", type=_rates, metavar="IMAGES_PER_S[,AT_SMALLER]",
                   help="assume this training speed at the full size (the model's input, or "
                        "the images' own when smaller) instead of measuring it, and the second "
                        "figure, if given, at the size a short budget trains at; with the "
                        "figures an earlier run printed, reproduces its defaults (to within "
                        "about an epoch)")
    p.add_argument("--seed", type=_whole(0, 2**32 - 1),
                   help="split and initialisation seed (default: the recipe's); another seed "
                        "gives another held-out split")
    p.add_argument("--min-per-class", type=_whole(3), default=5, metavar="N",
                   help="the fewest images a class may have (default: 5; at least 3: one each "
                        "to train, validate and test on)")
    p.add_argument("--leave-out-bad-files", action="store_true",
                   help="leave out unreadable and conflicting files instead of stopping")
    p.add_argument("--dry-run", action="store_true",
                   help="check, measure and print the settings and the time estimate only")
    p.add_argument("--name", help="model name for the library version (default: the current "
                                  "model's)")
    p.add_argument("--activate", action="store_true",
                   help="use the new model from now on if it is usable (macro F1 above chance, no "
                        "class recalled less than half as often as the median class) and at "
                        "least as good as the current one on the same held-out images (or the "
                        f"classes are new); an unusable model exits with status "
                        f"{NOT_USABLE_STATUS}")
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
    saved: Path | None = None   # the new model's library folder, once it is there
    in_use = False              # ... and once it is the model in use
    held = contextlib.ExitStack()
    try:
        # the size a fine-tune trains at by default (a model the short-budget rule trained at
        # 128 goes back to its images' scale)
        input_size = model_full_size(card) if card else 200
        samples, layout = gather_samples(args.data)
        report = find_problems(samples, args.min_per_class,
                               model_classes=card["class_names"] if card else None,
                               input_size=input_size, native=True,
                               progress=progress, name=" + ".join(args.data))
        with_layout(report, layout)
        report.source = " + ".join(args.data)
        print(report.format())
        exclude: set[str] = set()
        if not report.ok:
            # every error names files that can be left out (none is about the folder's layout)
            excludable = report.ok_without_excludable and not any(
                p.severity == ERROR and not p.excludable for p in layout)
            if args.leave_out_bad_files and excludable:
                exclude = report.excludable_files
                print(f"leaving out {len(exclude)} file(s) named in the errors")
            else:
                print("error: fix the errors above first"
                      + (f", or leave those {len(report.excludable_files)} file(s) out with "
                         "--leave-out-bad-files" if excludable and not args.leave_out_bad_files
                         else ""), file=sys.stderr)
                return 2
        usable = report.usable_samples(exclude)
        counts = count_samples(usable)
        names = report.training_class_names(exclude)
        scratch = args.scratch or card is None
        side = images_side = median_side(report)
        if args.size:   # as if the images were no larger: native_input_size rounds it to 8
            side = min(side or args.size, args.size)
        # --size: the user's size; --epochs: no budget to be short of
        auto_size = not args.size and not args.epochs
        full = full_training_size(card, side)
        suggest = functools.partial(suggest_settings, counts, current_bundle=current,
                                    current_card=card, class_names=names, from_scratch=scratch,
                                    image_side=side, smaller_when_short=auto_size,
                                    stretch=not args.exact_budget)
        budget = args.budget_min * 60
        extra = 0.0   # seconds spent measuring a second size
        if args.rate:
            speeds: dict[int, float] = {full: 1 / args.rate[0]}   # at the full size
            config = suggest(speeds, budget_seconds=budget)
            if len(args.rate) > 1 and config.input_size != full:   # the second measurement's
                speeds[config.input_size] = 1 / args.rate[1]
                config = suggest(speeds, budget_seconds=budget)
        else:
            # measured at the full size first; when a short budget then chooses a smaller size
            # (SHORT_BUDGET_SIZE), measured there too, its seconds out of the budget
            speeds = {}
            config = suggest(guess_seconds_per_image(full), budget_seconds=budget,
                             smaller_when_short=False)
            started = None
            while config.input_size not in speeds:
                size = config.input_size
                if speeds and started is None:
                    started = time.perf_counter()
                progress(0.0, f"measuring the training speed of this PC at {size}x{size}")
                speeds[size] = measure_seconds_per_image(replace(config, batch_size=16), names)
                extra = time.perf_counter() - started if started is not None else 0.0
                config = suggest(speeds, budget_seconds=budget - extra)
        spi = seconds_per_image_at(speeds, config.input_size)
        if args.epochs:   # exactly these epochs, not a time budget
            config = replace(config, epochs=args.epochs, time_budget_s=0.0)
        if args.seed is not None:
            config = replace(config, seed=args.seed)
        config = replace(config, name=args.name or config.name,
                         version=time.strftime("%Y.%m.%d-%H%M"))
        config.check()
        est = estimate_seconds(counts, config, spi) + extra
        print(_speed_text(speeds, config.input_size, full, assumed=bool(args.rate)) + "; "
              + _epochs_text(config)
              + f", estimated {est / 60:.1f} min in all"
              + (f" at most (stops early after {config.patience} epochs without a better "
                 f"validation score, not before epoch {earliest_stop(config.epochs)})"
                 if config.patience else "")
              + f"; starting from {config.init_bundle or 'scratch'}")
        notes = []
        if full < input_size:
            notes.append(f"training at {full}x{full}: " + (
                f"--size {args.size}" if args.size and args.size < (images_side or 1e9)
                else f"the images are small (median side {images_side:.0f} px)"))
        trained_at = int(card["input_size"]) if card else full
        if not scratch and config.input_size > trained_at and input_size > trained_at:
            notes.append(f"training at {config.input_size}x{config.input_size}, larger than "
                         f"the current model's {trained_at}x{trained_at}: it was trained "
                         f"smaller than its training images")
        if not args.epochs:
            exact = suggest(speeds, budget_seconds=budget - extra, stretch=False)
            if config.epochs > exact.epochs:
                notes.append(f"the data needs more epochs than {args.budget_min:g} min buy "
                             f"({exact.epochs}; a fine-tune needs about {STRETCH_EPOCHS}): "
                             f"{config.epochs} epochs, {est / 60:.1f} min "
                             f"(--exact-budget keeps {args.budget_min:g} min)")
            elif est > budget * STRETCH_RATIO:   # a budget shorter than the run's fixed costs
                notes.append(f"{args.budget_min:g} min are too short at this PC's speed: "
                             f"reading, checking, exporting and testing with the fewest epochs "
                             f"take {est / 60:.1f} min")
        if config.input_size < full:
            at_full = suggest(speeds, budget_seconds=budget - extra, smaller_when_short=False,
                              stretch=False)
            notes.append(f"a short budget: {at_full.epochs} epochs at {full}x{full}, so training "
                         f"at {config.input_size}x{config.input_size} for about {config.epochs} "
                         f"(--size {full} keeps {full}x{full})")
        if config.head_first and config.init_bundle and card and \
                list(card.get("class_names", [])) != list(names):
            notes.append("new classes: the new head is fitted first on frozen features")
        if config.class_weighting != "none" and counts and \
                max(counts.values()) > 1.5 * min(counts.values()):
            notes.append("unequal classes: balanced class weights"
                         + (" for the last third of the training"
                            if config.class_weighting == "deferred" else ""))
        if notes:
            print("; ".join(notes))
        folder = training_folder(report, args.data, [], sorted(exclude))
        print("same as: " + _config_command(folder or "STAGED_FOLDER", "OUT", config))
        if args.dry_run:
            return 0
        for kept in clean_stale_work_dirs():   # an earlier run's model is never lost with it
            print("note: " + kept)
        work = work_dir()
        room = space_problem(work, current)
        if room:
            print(f"error: {room}", file=sys.stderr)
            return 2
        raise_if_interrupted()   # a Ctrl+C that Python swallowed (in a destructor) still counts
        with failures_named(work):
            folder, origin = training_data(folder, usable, work / "data",
                                           sample_digests(report), progress)
            out = work / "bundle"
            result = train(folder, out, config, progress, should_stop=stop_asked,
                           notes=f"retrained with python -m inspector.retrain from "
                                 f"{', '.join(args.data)}")
        report_text = result.pop("_test_report_text", "no test split")
        try:
            raise_if_interrupted()   # the training is done: a stop from now on keeps the model
            ev = evaluate_split(out, folder, current if card else None, origin,
                                should_stop=stop_asked)
            raise_if_interrupted()
        except (KeyboardInterrupt, Exception) as exc:  # noqa: BLE001
            # the training is done: a stop or any failure of the comparison keeps the model
            return _keep_unjudged(library, out, config, exc)
        print("new model: " + format_recalls(ev.report))
        print(report_text)
        if ev.current_report is not None:
            print(f"current model on the same {ev.current_report['count']} images: "
                  + format_recalls(ev.current_report))
        elif ev.note:
            print(f"note: {ev.note}")
        problems = ev.problems
        # from saving on, the run finishes (seconds); a stop asked meanwhile is said and kept
        held.enter_context(signals_held(notice=SAVING_NOTICE))
        try:
            path = saved = library.add(out, name=config.name, move=True)
        except (BundleError, LibraryError, OSError) as exc:   # never lost with the work folder
            print(f"error: {_kept_outside_library(out, exc)}", file=sys.stderr)
            return 2
        activating = args.activate and not problems and ev.better   # said once, after
        print(f"saved as {path.name} in {path.parent}" + ("" if activating else " (not in use"
              + ("; not usable, so the library will not activate it without --force)"
                 if problems else f"; python -m inspector.library activate {path.name} uses it)")))
        model_card = ModelCard.of(result)
        for note in model_card.notes():
            print("note: " + note[:1].lower() + note[1:])
        note = model_card.export_failure_note()
        if note:
            # a staged training folder is gone after this command: the export needs its images
            again = (f"; to redo the export (after a software update, or to report the error): "
                     f"python -m training export --model {shlex.quote(str(path))} --format "
                     f"inspection --data {shlex.quote(str(folder))}" if not origin else "")
            print(note + again)
        if problems:
            print("WARNING: the new model is not usable: " + "; ".join(problems)
                  + ". Do not use it; more images of the weak classes, or a longer budget, "
                    "may help.")
        signum = interrupted()
        if signum is not None:   # asked to stop while the model was being saved: it is kept
            print(f"stopped after saving: {path.name} is kept, not in use", file=sys.stderr)
            return 128 + signum
        if args.activate:
            if problems:
                print(f"error: --activate refused: {path.name} is not usable ("
                      + "; ".join(problems) + "); the current model stays in use",
                      file=sys.stderr)
                return NOT_USABLE_STATUS
            if ev.better:
                library.activate(path.name)
                in_use = True
                print(f"now using {path.name}")
            else:
                print(f"not activated: the new model is not better than {current}; "
                      f"python -m inspector.library activate {path.name} uses it anyway")
        return 0
    except (KeyboardInterrupt, Cancelled) as exc:  # before OSError: Cancelled is an OSError
        # Cancelled: training saw a signal that the code it was in swallowed; that signal's
        signum = exc.signum if isinstance(exc, Terminated) else (interrupted() or signal.SIGINT)
        with contextlib.suppress(OSError):   # the terminal may be gone (SIGHUP)
            print(f"\n{'cancelled' if signum == signal.SIGINT else 'stopped'}; nothing was "
                  "saved", file=sys.stderr)
        return 128 + signum
    except Exception as exc:  # noqa: BLE001 - TensorFlow out of memory, a bug: one line here
        signum = interrupted()
        if signum is not None and saved is None:
            # a Ctrl+C that landed in Keras's graph building comes out as another error (a
            # TypeError from a layer's call; 1 of 31 interrupts in a crash audit): a stop
            with contextlib.suppress(OSError):
                print(f"\n{'cancelled' if signum == signal.SIGINT else 'stopped'}; nothing "
                      "was saved", file=sys.stderr)
            return 128 + signum
        if saved is not None:   # what failed came after the model was saved: it is kept
            with contextlib.suppress(OSError):
                print(f"{saved.name} is saved in {saved.parent}"
                      + (" and in use" if in_use else ", not in use"), file=sys.stderr)
        if isinstance(exc, (DatasetError, BundleError, LibraryError, ImageReadError, ValueError,
                            OSError)):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        from training.cli import unexpected_error

        print(f"error: {unexpected_error(exc, 'inspector retrain')}", file=sys.stderr)
        return 1
    finally:
        if work is not None:
            remove_work_dir(work)
        held.close()

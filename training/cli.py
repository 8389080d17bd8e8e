"""``python -m training``: train, evaluate, cross-validate, export and compare SSDC-MiniNet."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from training.bundle import file_in_the_way, replace_file_atomic, write_json
from training.cancel import Terminated, ends_as_interrupts, interrupted, stop_asked
from training.shifts import CAMERAS
from training.provenance import record_step, shell_command
from training.tf_import import quiet_tensorflow_import

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FORMATS = ("tflite-fp32", "tflite-fp16", "tflite-int8", "inspection")


class ConsoleProgress:
    """A one-line progress bar on a terminal, plain lines otherwise (CI, pipes)."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr   # the current one
        self.tty = self.stream.isatty()
        self._last_line = ""
        self._last_time = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        if self.tty:
            bar = "#" * int(fraction * 30)
            self.stream.write(f"\r[{bar:<30}] {fraction * 100:5.1f}% {message[:90]:<90}")
            if fraction >= 1.0:
                self.stream.write("\n")
            self.stream.flush()
            return
        # Without a terminal: print epoch summaries and at most one line every 10 s otherwise.
        now = time.monotonic()
        if ("(" in message and "left)" in message) or fraction >= 1.0 or now - self._last_time > 10:
            if message != self._last_line:
                self.stream.write(f"{fraction * 100:5.1f}% {message}\n")
                self.stream.flush()
                self._last_line, self._last_time = message, now


def _floats(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}")


def _int_at_least(low: int):
    """An argparse type: a whole number >= ``low`` (a mistake is said before any work)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def _int_in(low: int, high: int):
    """An argparse type: a whole number from ``low`` to ``high``."""
    at_least = _int_at_least(low)

    def parse(text: str) -> int:
        value = at_least(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value
    return parse


def _float_in(low: float, high: float, high_open: bool = False):
    """An argparse type: a number in [low, high] (or [low, high) with ``high_open``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (low <= value and (value < high if high_open else value <= high)):
            raise argparse.ArgumentTypeError(
                f"must be from {low:g} to {high:g}{' (not included)' if high_open else ''}, "
                f"got {value:g}")
        return value
    return parse


def _add_config_args(p: argparse.ArgumentParser) -> None:
    from .train import INPUT_NORM_CHOICES, TrainConfig

    d = TrainConfig()
    g = p.add_argument_group("training options (defaults: the project's recipe, see docs/model.md)")
    g.add_argument("--design", choices=("A", "B"), default=d.design,
                   help="SSDC-MiniNet design: A regular (23,590 params), B exact fit (23,588)")
    g.add_argument("--epochs", type=int, default=d.epochs, help="epochs (default %(default)s)")
    g.add_argument("--batch", type=int, default=d.batch_size, help="batch size")
    g.add_argument("--lr", type=_floats, default=[d.learning_rate],
                   help="learning rate, or a comma-separated grid (e.g. 1e-2,1e-3,1e-4): one model "
                        "per rate, the best by validation accuracy is kept")
    g.add_argument("--schedule", choices=("cosine", "constant"), default=d.lr_schedule,
                   help="learning-rate schedule (the paper: constant)")
    g.add_argument("--label-smoothing", type=float, default=d.label_smoothing,
                   help="label smoothing of the cross-entropy (default %(default)s)")
    g.add_argument("--no-augment", action="store_true", help="turn augmentation off")
    g.add_argument("--rotation", type=float, default=d.rotation_degrees, help="degrees, +-")
    g.add_argument("--shift", type=float, default=d.shift_fraction, help="fraction, +-")
    g.add_argument("--no-geometry", action="store_true",
                   help="augment without turns, mirrors, rotation, shift or change of field of "
                        "view: only the camera's lighting, blur, noise and JPEG (for images "
                        "whose orientation and scale carry information; the wizard's augmentation "
                        "check falls back to it when the whole augmentation holds the classes back)")
    g.add_argument("--camera", choices=tuple(CAMERAS), default=d.camera,
                   help="ranges of the camera shifts (training.shifts.CAMERAS): standard (the "
                        "default, for fine-tuning), wide (1.2.0: --rotation 45 and a long run "
                        "from scratch), wide_blur (more blur: 1.3.0, fine-tuned from 1.2.0) or "
                        "wide_scale (more field of view: the bundled 1.4.0, fine-tuned from 1.3.0)")
    g.add_argument("--view-tiled", type=float, default=d.view_tiled, metavar="SHARE",
                   help="the share of the wider training views whose surround is other images "
                        "of the same class instead of the image's mirror (default: the camera's, "
                        "0; docs/robustness.md, \"A wider view that is not a mirror\")")
    g.add_argument("--filled", type=float, default=d.filled, metavar="SHARE",
                   help="the share of training images turned by software, up to 45 degrees, "
                        "their empty corners filled with black or another grey (default: the "
                        "camera's, 0; docs/robustness.md, \"Shifts made by other code, and corners "
                        "left empty\")")
    g.add_argument("--seed", type=int, default=d.seed,
                   help="seed of the split, the initial weights and the augmentation (default %(default)s)")
    g.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help="share of each class held out for validation (default %(default)s)")
    g.add_argument("--test-fraction", type=float, default=d.test_fraction,
                   help="share of each class held out for the test (default %(default)s)")
    g.add_argument("--classes", default=None,
                   help="comma-separated class list and order (default: all sub-folders, sorted)")
    g.add_argument("--init", metavar="BUNDLE", default=None,
                   help="start from this bundle's weights (fine-tuning); new classes get a new head")
    g.add_argument("--paper-recipe", action="store_true",
                   help="the paper's recipe: Adam 1e-3 constant, no label smoothing, no "
                        "brightness/contrast jitter")
    g.add_argument("--name", default=d.name, help="model name in the card (default %(default)s)")
    g.add_argument("--version", dest="model_version", default=d.version,
                   help="model version in the card (default %(default)s)")
    g.add_argument("--size", type=int, default=d.input_size,
                   help="input size in pixels (fine-tuning rebuilds the bundle's model at it)")
    g.add_argument("--class-weighting", choices=("balanced", "deferred", "none"),
                   default=d.class_weighting,
                   help="unequal classes: deferred (the default) weighs them equally for the "
                   "last third of the training, balanced throughout, none never")
    g.add_argument("--patience", type=int, default=d.patience,
                   help="stop after this many epochs without a better validation epoch (0: never)")
    g.add_argument("--time-budget-min", type=float, default=d.time_budget_s / 60,
                   help="end training on time: this many minutes, the learning-rate schedule on "
                        "the clock, --epochs the estimate (training.schedule; 0: exactly --epochs)")
    g.add_argument("--augment-check", action="store_true",
                   help="first train 2 epochs with the augmentation and 2 without, and drop it "
                        "when clean images are clearly better on validation (the wizard's "
                        "default for new classes)")
    g.add_argument("--val-shifted", type=int, default=d.val_shifted_copies, metavar="N",
                   help="choose the best epoch on the validation images plus N camera-shifted "
                        "copies of each (training.shifts.EVALUATED_CAMERA), not on clean images "
                        "alone; only when training with the camera shifts")
    g.add_argument("--consistency", type=float, default=d.consistency, metavar="W",
                   help="train on two augmented views of every image and add W times the "
                        "Jensen-Shannon divergence between their predictions to the loss "
                        "(AugMix's consistency; an epoch takes about twice as long; 0: off)")
    g.add_argument("--consistency-teacher", choices=("views", "clean"),
                   default=d.consistency_teacher,
                   help="with --consistency: views, two independently augmented views "
                        "(symmetric); clean, the image without the camera shifts as the fixed "
                        "target of the same image through a random camera")
    g.add_argument("--mixup", type=float, default=d.mixup, metavar="ALPHA",
                   help="blend each training batch with a shuffled copy of itself, images and "
                        "labels, by a weight drawn from Beta(ALPHA, ALPHA) (mixup; 0: off)")
    g.add_argument("--input-norm", choices=INPUT_NORM_CHOICES, default=d.input_norm,
                   help="standardize: the model divides out each image's brightness and contrast "
                        "(each colour channel's mean, so also an even colour cast); "
                        "standardize_colour: the same with one mean for the three channels, so "
                        "an image's overall colour reaches the network; auto (the default): "
                        "standardize_colour when a tenth or more of the training images are in "
                        "colour, else standardize (the same on grey images); rescale: 0..255 to "
                        "-1..1 as in the 1.0 bundle")
    g.add_argument("--no-head-first", action="store_true",
                   help="with --init and new classes: skip fitting the new head first")
    g.add_argument("--later-epoch-margin", type=float, default=d.later_epoch_margin_images,
                   metavar="IMAGES",
                   help="keep the latest epoch within this many validation images' worth of the "
                        "best validation score, not the best alone (the wizard's default: 1; "
                        "0: the best)")
    g.add_argument("--freeze-early", action="store_true",
                   help="when fine-tuning (--init, or a later --then stage): keep the start "
                        "model's weights in the layers at the input's full and half resolution "
                        "(design A: the stem, the first two blocks and the first SE block); "
                        "steps take 0.6 of the time (ignored from scratch; not the wizard's "
                        "default: docs/retraining.md)")
    g.add_argument("--no-int8", action="store_true",
                   help="leave the int8 file out of the LiteRT export (the wizard's default: it "
                        "runs slower than fp32 on the CPUs measured; export adds it later)")


def _config(args):
    from .train import PAPER_RECIPE, TrainConfig

    base = PAPER_RECIPE if args.paper_recipe else TrainConfig()
    kw = dict(design=args.design, epochs=args.epochs, batch_size=args.batch,
              learning_rate=args.lr[0], augment=not args.no_augment, seed=args.seed,
              val_fraction=args.val_fraction, test_fraction=args.test_fraction,
              class_names=tuple(c.strip() for c in args.classes.split(",")) if args.classes else None,
              init_bundle=args.init, name=args.name, version=args.model_version,
              rotation_degrees=args.rotation, shift_fraction=args.shift,
              geometry=not args.no_geometry)
    kw.update(input_size=args.size, class_weighting=args.class_weighting,
              patience=args.patience, head_first=not args.no_head_first,
              time_budget_s=args.time_budget_min * 60,
              augment_check=args.augment_check, val_shifted_copies=args.val_shifted,
              input_norm=args.input_norm, camera=args.camera, view_tiled=args.view_tiled,
              filled=args.filled,
              consistency=args.consistency, consistency_teacher=args.consistency_teacher,
              mixup=args.mixup, export_int8=not args.no_int8,
              later_epoch_margin_images=args.later_epoch_margin,
              freeze_early=args.freeze_early)
    if not args.paper_recipe:
        kw.update(lr_schedule=args.schedule, label_smoothing=args.label_smoothing)
    return replace(base, **kw)


def cmd_train(args) -> int:
    from .card import ModelCard
    from .train import train

    config = _config(args)
    card = train(args.data, args.out, config, ConsoleProgress(), should_stop=stop_asked,
                 lr_grid=args.lr if len(args.lr) > 1 else (), notes=args.notes or "",
                 command=shell_command(args.argv))
    if card.get("training", {}).get("lr_grid"):
        print("learning-rate grid (best validation accuracy):")
        for r in card["training"]["lr_grid"]:
            print(f"  lr {r['learning_rate']:<8g} {r['best_val_accuracy'] * 100:6.2f}%  "
                  f"(epoch {r['best_epoch']})")
        print(f"kept lr {card['training']['config']['learning_rate']:g}")
    print(card.pop("_test_report_text", "no test split"))
    print(f"bundle written to {args.out} ({card['parameters']:,} parameters, "
          f"{card['gflops']} GFLOPs, {card['training']['fit_seconds']:.0f} s of training)")
    model_card = ModelCard.of(card)
    for note in model_card.notes():
        print("note: " + note)
    note = model_card.export_failure_note()
    if note:
        print(f"{note}. To redo the export (after a software update, or to report the error): "
              f"python -m training export --model {shlex.quote(str(args.out))} --format "
              f"inspection --data {shlex.quote(str(args.data))}", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from .metrics import classification_report, format_report, save_confusion_png
    from .predict import open_predictor

    predictor = open_predictor(args.model)
    # --unknown: its detector and its images first, so that a problem is said before the work
    unknown = _unknown_inputs(args, predictor) if args.unknown else None
    ds, images = _evaluation_images(args, predictor)
    t = time.perf_counter()
    probs = predictor.predict(images)
    seconds = time.perf_counter() - t
    report = classification_report(ds.labels, probs.argmax(1), ds.class_names)
    report["model"] = str(args.model)
    if args.left_out:
        report["unreadable_left_out"] = args.left_out
    report["seconds_per_image"] = seconds / max(1, len(images))
    print(format_report(report, f"{args.model} on {args.data}"))
    print(f"{report['seconds_per_image'] * 1000:.2f} ms per image")
    if args.json:
        write_json(args.json, report)
    if args.png:
        save_confusion_png(report, args.png, f"{Path(args.model).name} on {Path(args.data).name}")
    if unknown is not None:
        report["unknown"] = _evaluate_unknown(args, predictor, ds, images, *unknown)
        if args.json:
            write_json(args.json, report)
    return LEFT_OUT_STATUS if args.left_out or getattr(args, "unknown_left_out", None) else 0


def _unknown_inputs(args, predictor):
    """``evaluate --unknown``'s detector and unknown images, (detector, images): the model must
    be a bundle's Keras model with a detector; unreadable unknown images are named and left out
    (recorded in the report), as the known ones are."""
    from .bundle import BundleError
    from .detect import load_detector
    from .unknown_eval import folder_images

    if predictor.kind != "keras":
        raise BundleError(f"{args.model}: --unknown needs the bundle folder (the detector reads "
                          "the Keras model's features)")
    bundle_dir = _bundle_dir(args.model)
    det = load_detector(bundle_dir)
    if det is None:
        raise BundleError(f"{bundle_dir}: this bundle has no unknown detector; fit one with "
                          f"python -m training calibrate --model {bundle_dir} --data DIR")
    unreadable: list = []
    _, images = folder_images(args.unknown, predictor.input_size, ConsoleProgress(), unreadable,
                              square=_reading(args.model, predictor.input_size))
    args.unknown_left_out = _warn_left_out(unreadable, "unknown image file(s) left out")
    return det, images


def _evaluate_unknown(args, predictor, ds, images, det, unknown_images) -> dict:
    from .detect import model_outputs
    from .unknown_eval import format_unknown_report, save_reliability, unknown_report

    bundle_dir = _bundle_dir(args.model)
    known = model_outputs(predictor.model, images)
    unknown = model_outputs(predictor.model, unknown_images)
    r = unknown_report(det, known, ds.labels, unknown)
    print(format_unknown_report(r, f"known: {args.data}; unknown: {args.unknown}"))
    if args.reliability_png:
        save_reliability(r, ds.labels, args.reliability_png, f"{bundle_dir.name} on {args.data}")
    r.pop("_probs")
    if args.unknown_left_out:
        r["unreadable_left_out"] = args.unknown_left_out
    return r


def cmd_openset(args) -> int:
    from .data import DatasetError
    from .openset_eval import format_openset, leave_one_class_out, rescore

    if args.rescore:
        if args.data or args.outputs:
            raise DatasetError("openset: --rescore reads a saved --outputs file; give it "
                               "without --data and --outputs")
        if not Path(args.rescore).is_file():
            raise DatasetError(f"{args.rescore}: no such file (an openset --outputs file)")
        result = rescore(args.rescore)
        print(format_openset(result))
        if args.json:
            write_json(args.json, result)
        return 0
    if not args.data:
        raise DatasetError("openset needs --data DIR (or --rescore OUTPUTS.npz)")

    config = _config(args)
    config.check()   # --epochs 0 and the like: said before the first model trains

    raw: dict = {}
    outputs: dict | None = {} if args.outputs else None
    previous = _openset_previous(args, config, raw, outputs) if args.resume else []

    def save(result):   # the arrays first: a class the JSON lists has its arrays saved
        if args.scores:
            _save_npz_atomic(args.scores, raw)
        if outputs:
            _save_npz_atomic(args.outputs, outputs)
        if args.json:
            write_json(args.json, result)
        files = [f for f in (args.json, args.scores, args.outputs) if f]
        if files:
            args.kept_on_cancel = _kept_text(f"{len(result['classes'])} left-out class(es)",
                                             files, resumable=bool(args.json))

    camera = "camera augmentation" if config.augment and config.camera_shifts else \
        "no camera augmentation"
    print(f"leave-one-class-out: one model per left-out class, each trained for "
          f"{config.epochs} epochs at {config.input_size}x{config.input_size} (learning rate "
          f"{config.learning_rate:g}, {camera}); the left-out class is the unknown", flush=True)
    result = leave_one_class_out(args.data, config, ConsoleProgress(),
                                 args.only.split(",") if args.only else None, save, raw, outputs,
                                 previous=previous)
    print(format_openset(result))
    save(result)
    return 0


def _openset_previous(args, config, raw: dict, outputs: dict | None) -> list[dict]:
    """``openset --resume``: the left-out classes an earlier run with the same settings finished
    (its --json rows); its --scores and --outputs arrays are read back into ``raw`` and
    ``outputs`` so that the files go on holding every class."""
    from .data import DatasetError

    earlier, ds = _resumable_report(args, "openset", config, "classes",
                                    lambda r: "left_out" in r)
    if earlier is None:
        return []
    rows = [r for r in earlier["classes"] if r["left_out"] in ds.class_names]
    done = {r["left_out"] for r in rows}
    for path, into in ((args.scores, raw), (args.outputs, outputs)):
        if not path or into is None:
            continue
        if not Path(path).exists():
            raise DatasetError(f"openset --resume: {path} is missing (the finished classes' "
                               "arrays would be lost); resume without it or give the run's file")
        try:
            with np.load(path) as z:
                into.update({k: z[k] for k in z.files if k.split("/", 1)[0] in done})
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: cannot be read ({exc}); cannot resume") from None
    print(f"resuming: left out already: {', '.join(r['left_out'] for r in rows)}",
          file=sys.stderr)
    args.kept_on_cancel = _kept_text(f"{len(rows)} left-out class(es)", [args.json], earlier=True)
    return rows


def _resumable_report(args, kind: str, config, rows_key: str, row_ok,
                      other_settings=lambda earlier: []) -> tuple[dict | None, object]:
    """The --json report of the run that ``cv --resume`` or ``openset --resume`` goes on from
    (None: there is none yet, the run starts afresh), checked as both need it: a report of this
    ``kind`` whose ``rows_key`` list holds rows ``row_ok`` accepts, written with the same
    settings (``config``, and what ``other_settings(earlier)`` names) on the same images.
    Returns it with the data folder as scanned now (None, None without a report). Raises
    DatasetError saying why it cannot resume."""
    from .data import DatasetError, scan_dataset

    if not args.json:
        raise DatasetError(f"{kind} --resume: give the --json file of the run to resume")
    if not Path(args.json).exists():
        return None, None
    try:
        earlier = json.loads(Path(args.json).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{args.json}: not a {kind} report ({exc}); cannot resume (without "
                           "--resume the run starts over and replaces it)") from None
    rows = earlier.get(rows_key) if isinstance(earlier, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and row_ok(r) for r in rows):
        raise DatasetError(f"{args.json}: not a {kind} report; cannot resume")
    differ = _settings_differ(earlier.get("config"), config) + other_settings(earlier)
    if differ:
        raise DatasetError(f"{args.json}: written by a run with other settings ("
                           + "; ".join(differ) + "); cannot resume")
    ds = scan_dataset(args.data, config.class_names)
    then = (earlier.get("dataset") or {}).get("file_list_sha256")
    if then and then != ds.list_hash():
        raise DatasetError(f"{args.json}: written for other images than those in {args.data} "
                           "now (files added, removed or renamed); cannot resume")
    return earlier, ds


def _kept_text(what: str, files: list[str], earlier: bool = False,
               resumable: bool = True) -> str:
    """What a stopped cv or openset says it kept (after "cancelled; ")."""
    return (f"the {what} finished {'earlier are still in' if earlier else 'are saved in'} "
            f"{', '.join(files)}"
            + ("; the same command with --resume goes on from there" if resumable else ""))


def cmd_calibrate(args) -> int:
    from .detect import calibrate_bundle

    det = calibrate_bundle(args.model, args.data, args.accept, ConsoleProgress(), args.method,
                           args.shifted_copies)
    sel = det.selection
    print("held-out-class AUROC of each candidate (validation split; the network saw every "
          "class, so these are optimistic and only rank the candidates):")
    for k, v in sorted(sel["mean_auroc"].items(), key=lambda kv: -kv[1]):
        print(f"  {k:<24} {v:.4f}")
    print(f"kept: {det.method}; temperature {det.temperature:.3f}; threshold {det.threshold:.4f} "
          f"accepts {sel['validation_accepted'] * 100:.1f}% of the validation images")
    from .detect import export_lacks
    from .litert import read_info

    info = read_info(args.model)
    if info is not None:
        # the export computes the previous detector's score in its graph: built again for this
        # one (a few seconds for fp32 and fp16, int8's calibration ~15 s)
        from .export import export_inspection

        print("exporting the inspection model again, with this detector's score in its graph")
        try:
            info = export_inspection(args.model, args.data, progress=ConsoleProgress())
        except Exception as exc:   # noqa: BLE001 - TensorFlow's converter errors too; the
            # detector itself is saved
            print(f"the export failed ({exc}); the app scores this detector in numpy until "
                  f"python -m training export --model {args.model} succeeds", file=sys.stderr)
            info = {"formats": {}}
        for f, e in info["formats"].items():
            score = e.get("score") or {}
            if score:
                print(f"inspection {f}: unknown score in the graph "
                      + ("(largest difference to numpy {:.2g})".format(score["max_score_diff"])
                         if score.get("usable") else f"not used: {score.get('reason')}"))
        info = read_info(args.model)
    record_step(args.model, "calibrate", shell_command(args.argv))
    missing = export_lacks(info, det)
    if missing:
        print(f"the bundle's LiteRT export lacks {', '.join(sorted(missing))}, which this "
              f"detector reads: the app runs it on TensorFlow until it is re-exported "
              f"(python -m training export --model {args.model}"
              + (f" --data {args.data})" if args.data else ")"))
    return 0


def _evaluation_images(args, predictor):
    """The labelled images an evaluation runs on: the data folder's classes must be the model's;
    with ``--split``, only the files the bundle's split.json lists under that part."""
    from . import data as data_mod

    ds = data_mod.scan_dataset(args.data, predictor.class_names
                               if getattr(args, "classes_from_model", False) else None)
    if ds.class_names != predictor.class_names:
        raise data_mod.DatasetError(
            f"{args.data}: classes {ds.class_names} differ from the model's {predictor.class_names}")
    if args.split:
        ds = ds.subset(data_mod.bundle_split(ds, _bundle_dir(args.model), [args.split])[0])
        if not len(ds):
            raise data_mod.DatasetError(
                f"{_bundle_dir(args.model)}: its {args.split} split is empty (the model was "
                f"trained without one); evaluate on the whole folder or another split")
    else:
        _warn_seen_images(ds, _bundle_dir(args.model))
    reading = _reading(args.model, predictor.input_size)
    ds, images, unreadable = data_mod.load_readable(ds, predictor.input_size, ConsoleProgress(),
                                                    square=reading)
    # named, left out, and recorded in the report: the rest is evaluated
    args.left_out = _warn_left_out(unreadable, "image file(s) left out of the evaluation")
    return ds, images


# the report is written, but on fewer images than the folder holds (as ``inspector classify``
# exits 2 when some files could not be read): a script sees it without reading stderr
LEFT_OUT_STATUS = 2


def _warn_left_out(unreadable: list, what: str) -> list[str]:
    """Names the unreadable files an evaluation leaves out (on stderr, the first 20) and returns
    them as the report records them."""
    if unreadable:
        listed = "\n".join(f"  {e}" for e in unreadable[:20])
        more = f"\n  ... and {len(unreadable) - 20} more" if len(unreadable) > 20 else ""
        print(f"warning: {len(unreadable)} unreadable {what}:\n{listed}{more}",
              file=sys.stderr, flush=True)
    return [str(e) for e in unreadable]


def _warn_seen_images(ds, bundle_dir: Path) -> int:
    """Says (on stderr) how many of the images evaluated are in the model's own training or
    validation split (by their path under the class folders): their accuracy overstates what
    the model does on new images. Returns that count."""
    from .bundle import BundleError, read_split

    try:
        split = read_split(bundle_dir) or {}
    except BundleError:
        return 0
    seen = set(split.get("train") or []) | set(split.get("validation") or [])
    n = sum(ds.relative(i) in seen for i in range(len(ds))) if seen else 0
    if n:
        print(f"note: {n} of these {len(ds)} images are in the model's own training or "
              "validation split, so their accuracy overstates what it does on new images; "
              "--split test evaluates only the images it held out", file=sys.stderr, flush=True)
    return n


def _bundle_dir(model: str | Path) -> Path:
    """The bundle folder of a model argument: the folder itself, or the folder of a file in it
    (``model.keras``, an export)."""
    model = Path(model)
    return model.parent if model.is_file() else model


def _reading(model: str | Path, size: int):
    """How the model reads a whole image (its card's ``view``, training.images.Reading):
    evaluations read it as the app does, a non-square image made square by reflection when the
    model learnt square images, and one smaller than its training images kept at their scale
    when they were all about one size (training.card.TrainingView)."""
    from .bundle import BundleError, read_card
    from .card import ModelCard, TrainingView

    try:
        return ModelCard.of(read_card(_bundle_dir(model))).view.reading
    except BundleError:   # an export on its own (of ``size``), no card to say: NEU's square images
        return TrainingView.unrecorded(size).reading


def cmd_robustness(args) -> int:
    from .predict import open_predictor
    from .robustness import (card_summary, evaluate_robustness, format_robustness, pick_families,
                             record_in_card, save_examples_png)

    bundle_dir = _bundle_dir(args.model)
    if args.card:  # before the evaluation, so that a file outside a bundle fails at once
        from .bundle import CARD_FILE, BundleError

        if not (bundle_dir / CARD_FILE).is_file():
            raise BundleError(f"{args.model}: --card needs a bundle folder or an export inside "
                              f"one (no {CARD_FILE} in {bundle_dir})")
    # the families first: a mistyped one is said before the model and the images are read
    families = pick_families([f.strip() for f in args.families.split(",") if f.strip()]
                             if args.families else None)
    predictor = open_predictor(args.model)
    ds, images = _evaluation_images(args, predictor)
    from .detect import judged

    predictor = judged(predictor, bundle_dir)   # with a detector: the share accepted as known
    result = evaluate_robustness(predictor, images, ds.labels, families, args.seed,
                                 ConsoleProgress())
    result["model"] = str(args.model)
    result["data"] = str(args.data)
    result["split"] = args.split
    if args.left_out:
        result["unreadable_left_out"] = args.left_out
    print(format_robustness(result, f"{args.model} on {args.data}"
                                    + (f" ({args.split} split)" if args.split else "")))
    if args.json:
        write_json(args.json, result)
    if args.card:
        model = Path(args.model)
        key = model.name if model.suffix == ".tflite" else "keras"  # model.keras: the bundle's
        command = shell_command(["robustness", "--model", str(args.model),
                                 "--data", str(args.data)]
                                + (["--split", args.split] if args.split else [])
                                + (["--families", args.families] if args.families else [])
                                + (["--seed", str(args.seed)] if args.seed else [])
                                + (["--classes-from-model"] if args.classes_from_model else []))
        record_in_card(bundle_dir, key, card_summary(result, command))
        record_step(bundle_dir, "robustness", shell_command(args.argv))
        print(f"recorded in {bundle_dir / 'model_card.json'} (robustness, {key})")
    if args.png:
        order = np.argsort(ds.labels, kind="stable")
        step = max(1, len(order) // len(families))
        save_examples_png(images[order[::step]], args.png, families, args.seed)
    return LEFT_OUT_STATUS if args.left_out else 0


def _stage_config(text: str):
    """A later stage of ``cv --then``: training options as ``train`` takes them (defaults: the
    project's recipe, not the stage before), fine-tuning the model of the stage before."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"--then {text!r}: {exc}") from None
    from .train import STAGE_FIXED

    p = argparse.ArgumentParser(prog="cv --then", add_help=False, allow_abbrev=False)
    _add_config_args(p)
    args, unknown = p.parse_known_args(words)
    if unknown:
        raise ValueError(f"--then {text!r}: not training options of this program: "
                         f"{' '.join(unknown)}")
    if len(args.lr) > 1:
        raise ValueError(f"--then {text!r}: one learning rate per stage (no grid)")
    config, default = _config(args), _config(p.parse_args([]))
    fixed = [k for k in ("init_bundle", *STAGE_FIXED) if getattr(config, k) != getattr(default, k)]
    if fixed:
        raise ValueError(f"--then {text!r}: {', '.join(fixed)} cannot change in a later stage "
                         "(each stage starts from the one before, on the same images)")
    return config


def _then_values(argv: list[str]) -> list[str]:
    """``--then VALUE`` as ``--then=VALUE``, so that argparse takes a value that starts with a
    dash (``--then --no-augment``, ``--then "--epochs=30"``) as the value, not as an option."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "--then" and i + 1 < len(argv):
            out.append("--then=" + argv[i + 1])
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _folds_chosen(text: str, folds: int) -> list[int]:
    """``--only 1,3`` as 0-based fold indices; a fold outside 1..folds is an error, said before
    any image is read (0 was taken as the last fold, and trained on its own test images)."""
    try:
        chosen = [int(f) for f in text.split(",") if f.strip()]
    except ValueError:
        raise ValueError(f"cv --only {text}: give fold numbers 1 to {folds}, e.g. --only 1,3") from None
    wrong = [f for f in chosen if not 1 <= f <= folds]
    if wrong or not chosen:
        raise ValueError(f"cv --only {text}: the folds are numbered 1 to {folds}")
    return [f - 1 for f in dict.fromkeys(chosen)]   # a fold named twice runs once


def _say_replaced(path: str) -> None:
    """Says, before the first fold, that an earlier cv report at ``path`` will be replaced (a
    forgotten --resume used to lose a night's folds without a word)."""
    try:
        earlier = json.loads(Path(path).read_text(encoding="utf-8"))
        done = earlier.get("folds_done") or [r.get("fold") for r in earlier.get("results", [])]
    except (OSError, ValueError, AttributeError, TypeError):
        return
    if done:
        print(f"note: {path} holds an earlier cv report (folds {done} done); this run replaces "
              "it after its first fold (--resume goes on from it instead)", file=sys.stderr)


def cmd_cv(args) -> int:
    from .data import DatasetError
    from .train import cross_validate, format_cv, later_stages

    config = _config(args)
    stages = later_stages(config, [_stage_config(text) for text in args.then or []])
    only = _folds_chosen(args.only, args.folds) if args.only else None

    def save(result: dict) -> None:  # after every fold, so a stopped run keeps what it finished
        if args.json:
            write_json(args.json, result)
            args.kept_on_cancel = _kept_text(f"{len(result['results'])} fold(s)", [args.json])

    def other_folds(earlier: dict) -> list[str]:
        recorded = earlier.get("stages", [])
        stages_differ = len(recorded) != len(stages) or any(
            _settings_differ(c, stage) for c, stage in zip(recorded, stages))
        return ([f"folds {earlier.get('folds')} (now {args.folds})"]
                if earlier.get("folds") != args.folds else []) + \
            (["the --then stages"] if stages_differ else [])

    def fold_row(r: dict) -> bool:   # what the summary reads of a finished fold
        def number(v) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)

        fold = r.get("fold")
        return (isinstance(fold, int) and not isinstance(fold, bool) and fold >= 1
                and number(r.get("accuracy")) and number(r.get("macro_f1")))

    previous = []
    earlier, _ = _resumable_report(args, "cv", config, "results", fold_row,
                                   other_folds) if args.resume else (None, None)
    if not args.resume and args.json:
        _say_replaced(args.json)
    if earlier is not None:
        previous = earlier["results"]
        folds = [r["fold"] for r in previous]
        if len(set(folds)) != len(folds) or max(folds, default=1) > args.folds:
            raise DatasetError(f"{args.json}: lists folds {folds} for {args.folds} folds; not a "
                               "report this command wrote, cannot resume")
        print(f"resuming: folds {folds} already done", file=sys.stderr)
        args.kept_on_cancel = _kept_text(f"{len(previous)} fold(s)", [args.json], earlier=True)
    result = cross_validate(args.data, config, args.folds, ConsoleProgress(),
                            should_stop=stop_asked, only_folds=only,
                            on_fold=save, previous=previous, stages=stages)
    print(format_cv(result))
    save(result)
    return 0


def cmd_export(args) -> int:
    from .export import export_bundle, export_inspection

    for fmt in args.format:
        if fmt == "inspection":
            info = export_inspection(args.model, args.data, progress=ConsoleProgress(),
                                     graph_score=not args.no_graph_score)
            for f, e in info["formats"].items():
                if f == "keras":
                    print(f"keras test accuracy {e['test_accuracy']:.2%}")
                elif not e.get("usable"):
                    print(f"inspection {f}: not usable ({e.get('reason')})")
                else:
                    acc = f", test accuracy {e['test_accuracy']:.2%}" if "test_accuracy" in e else ""
                    print(f"inspection {f}: {e['file']} ({e['bytes'] / 1024:.1f} KiB{acc}, "
                          f"largest probability difference to Keras {e['max_prob_diff']:.2g})")
            continue
        path, info = export_bundle(args.model, fmt, args.data, progress=ConsoleProgress())
        print(f"{fmt}: {path} ({info['bytes'] / 1024:.1f} KiB)")
    record_step(args.model, "export", shell_command(args.argv))
    return 0


def cmd_compare(args) -> int:
    from .compare import compare, format_table

    models = _model_names(args.models) or None
    weights = {k.strip(): v.strip() for k, _, v in (w.partition("=") for w in args.weights or ())}
    # (checked before: _compare_problem)
    result = compare(args.data, models=models, epochs=args.epochs, heavy_epochs=args.heavy_epochs,
                     train_limit=args.limit, weights=weights, seed=args.seed,
                     ssdc_bundle=args.bundle, progress=ConsoleProgress())
    print(format_table(result))
    if args.json:
        write_json(args.json, result)
    return 0


def cmd_info(args) -> int:
    from .flops import count_flops, count_params
    from .model import build_ssdc_mininet

    for design in args.design or ["A", "B"]:
        m = build_ssdc_mininet(design, args.classes, args.size)
        print(f"SSDC-MiniNet design {design}: {count_params(m):,} parameters, "
              f"{count_flops(m) / 1e9:.4f} GFLOPs at {args.size}x{args.size}x3, "
              f"{count_params(m) * 4 / 1e6:.3f} MB")
    return 0


def cmd_check(args) -> int:
    from .checks import find_problems

    report = find_problems(args.data, args.min_per_class, progress=ConsoleProgress())
    print(report.format())
    return 0 if report.ok else 2


def build_parser() -> argparse.ArgumentParser:
    from .train import MAX_INPUT_SIZE, MIN_INPUT_SIZE

    p = argparse.ArgumentParser(prog="python -m training", description=__doc__.replace("``", ""))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model on a data folder and write a bundle")
    t.add_argument("--data", required=True, help="folder with one sub-folder per class")
    t.add_argument("--out", required=True, help="bundle folder to write (atomically)")
    t.add_argument("--notes", default="", help="free text recorded in the model card")
    _add_config_args(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="accuracy, precision/recall/F1 and confusion matrix")
    e.add_argument("--model", required=True, help="bundle folder, or an exported .tflite file")
    e.add_argument("--data", required=True, help="folder with one sub-folder per class")
    e.add_argument("--json", help="write the report as JSON here")
    e.add_argument("--png", help="write the confusion matrix as a PNG here")
    e.add_argument("--split", choices=("train", "validation", "test"),
                   help="evaluate only this split of the bundle's own data (from its split.json)")
    e.add_argument("--classes-from-model", action="store_true",
                   help="use only the model's classes from the data folder")
    e.add_argument("--unknown", metavar="DIR",
                   help="a folder of images of other kinds: report AUROC, FPR at 95%% TPR, "
                        "acceptance, ECE and NLL before and after temperature scaling")
    e.add_argument("--reliability-png", help="with --unknown: write a reliability diagram here")
    e.set_defaults(func=cmd_evaluate)

    o = sub.add_parser("openset", help="leave-one-class-out evaluation of unknown detection")
    o.add_argument("--data", help="the data folder (each class in turn left out)")
    # the training options' --size under the name the docs give it (one destination: --size
    # was accepted and then overridden by this option's default, silently)
    o.add_argument("--input-size", dest="size", type=_int_at_least(16), default=200,
                   help="train the leave-one-out models at this size (the same as --size; "
                        "default 200, the bundled "
                        "model's; 128 is about 3x faster and scored lower: mean AUROC 0.87-0.93 "
                        "against 0.935-0.957 at 200, docs/unknown-detection.md)")
    o.add_argument("--only", help="comma-separated classes to leave out (default: each in turn)")
    o.add_argument("--json", help="write the results here (after every class)")
    o.add_argument("--resume", action="store_true",
                   help="go on from the --json (and --scores, --outputs) files of a stopped run "
                        "with the same settings: the classes it finished are not trained again")
    o.add_argument("--scores", help="write every candidate's scores (the sums' parts "
                                    "standardised as the detector does) here (.npz, after every "
                                    "class), to compare other combinations without training")
    o.add_argument("--outputs", help="write each left-out model's outputs (pooled features, "
                                     "logits of its training, validation, test and left-out "
                                     "images), k-NN bank and classifier here (.npz, after every "
                                     "class), to try new scores on the same models")
    o.add_argument("--rescore", help="no training: every candidate of today's detector on the "
                                     "models an --outputs file saved")
    _add_config_args(o)
    o.set_defaults(func=cmd_openset, epochs=20)   # 10 epochs at 128: mean AUROC 0.883

    k2 = sub.add_parser("calibrate", help="fit a bundle's temperature and unknown detector on its "
                                          "own training and validation split (weights stay)")
    k2.add_argument("--model", required=True, help="bundle folder")
    k2.add_argument("--data", help="the bundle's training data folder (default: from its card)")
    k2.add_argument("--accept", type=_float_in(0.5, 1.0), default=0.95,
                    help="share of validation images the threshold accepts (default 0.95)")
    k2.add_argument("--method", help="force this unknown score instead of the default")
    k2.add_argument("--shifted-copies", type=_int_at_least(0), default=None,
                    help="camera-shifted copies of each validation image in the temperature's "
                         "calibration set (default: training.detect.CALIBRATION_COPIES)")
    k2.set_defaults(func=cmd_calibrate)

    r = sub.add_parser("robustness", help="accuracy under camera shifts (blur, noise, JPEG, light, "
                                          "scale, rotation, bit depth), per family and severity")
    r.add_argument("--model", required=True, help="bundle folder, or an exported .tflite file")
    r.add_argument("--data", required=True, help="folder with one sub-folder per class")
    r.add_argument("--split", choices=("train", "validation", "test"),
                   help="evaluate only this split of the bundle's own data (from its split.json)")
    r.add_argument("--families", help="comma-separated shift families (default: the thirteen of "
                                      "the table; field_of_view_tiled and rotation_filled only "
                                      "when named)")
    r.add_argument("--seed", type=_int_at_least(0), default=0,
                   help="seed of the random parts of the shifts")
    r.add_argument("--json", help="write the results as JSON here")
    r.add_argument("--png", help="write a grid of example images per shift and severity here")
    r.add_argument("--classes-from-model", action="store_true",
                   help="use only the model's classes from the data folder")
    r.add_argument("--card", action="store_true",
                   help="record the table in the bundle's model card (section robustness; an "
                        "export inside a bundle folder under its file name)")
    r.set_defaults(func=cmd_robustness)

    c = sub.add_parser("cv", help="stratified k-fold cross-validation (mean ± std)")
    c.add_argument("--data", required=True, help="folder with one sub-folder per class")
    c.add_argument("--folds", type=_int_at_least(2), default=5, help="folds (default %(default)s)")
    c.add_argument("--only", help="run only these folds (1-based, comma-separated)")
    c.add_argument("--json", help="write the report here (after every fold)")
    c.add_argument("--resume", action="store_true",
                   help="keep the folds already in --json (same settings) and run the rest")
    c.add_argument("--then", action="append", metavar="OPTIONS",
                   help="a later stage of the recipe, fine-tuning the model of the stage before "
                        "on the same fold (as train --init does), e.g. --then \"--epochs 30 --lr "
                        "5e-4 --camera wide_blur\"; repeat for more stages. Its options default "
                        "to the project's recipe, not to the stage before")
    _add_config_args(c)
    c.set_defaults(func=cmd_cv)

    x = sub.add_parser("export", help="post-training quantization to LiteRT (TFLite) files; "
                                      "'inspection': the app's LiteRT models (all outputs)")
    x.add_argument("--model", required=True, help="bundle folder")
    x.add_argument("--format", nargs="+", choices=FORMATS, default=list(FORMATS),
                   help="formats to write (default: all four)")
    x.add_argument("--data", help="data folder for the int8 representative set (default: the "
                                  "bundle's own training split, from its model card)")
    x.add_argument("--no-graph-score", action="store_true",
                   help="inspection: leave the unknown score out of the graph (the app scores "
                        "in numpy; a baseline for benchmarks/bench_model.py --baseline)")
    x.set_defaults(func=cmd_export)

    m = sub.add_parser("compare", help="the paper's Table 1 on this machine")
    m.add_argument("--data", required=True)
    m.add_argument("--models", help="comma-separated subset (default: all)")
    m.add_argument("--bundle", help="use this trained SSDC-MiniNet bundle instead of training one")
    m.add_argument("--epochs", type=_int_at_least(1), default=50, help="epochs for the small models")
    m.add_argument("--heavy-epochs", type=_int_at_least(1), default=3,
                   help="epochs for DenseNet121, ResNet50, VGG-16, EfficientNetB0 and MobileNet 1.0")
    m.add_argument("--limit", type=_int_at_least(0), default=0,
                   help="train on at most this many images (0: all)")
    m.add_argument("--weights", nargs="*", metavar="MODEL=FILE",
                   help="local ImageNet weight files for the transfer-learning backbones")
    m.add_argument("--seed", type=_int_at_least(0), default=1234, help="default %(default)s")
    m.add_argument("--json", help="also write the table as JSON here")
    m.set_defaults(func=cmd_compare)

    i = sub.add_parser("info", help="parameters and GFLOPs of the SSDC-MiniNet designs (the "
                       "network alone; a trained bundle's card also counts its input "
                       "standardisation, 0.0006 GFLOPs more at 200 px)")
    i.add_argument("--design", nargs="*", choices=("A", "B"), help="designs (default: both)")
    i.add_argument("--classes", type=int, default=6, help="classes of the head (default %(default)s)")
    i.add_argument("--size", type=_int_in(MIN_INPUT_SIZE, MAX_INPUT_SIZE), default=200,
                   help=f"input size in pixels ({MIN_INPUT_SIZE} to {MAX_INPUT_SIZE}, as train "
                        "takes)")
    i.set_defaults(func=cmd_info)

    k = sub.add_parser("check", help="find problems in a data folder before training")
    k.add_argument("--data", required=True, help="folder with one sub-folder per class")
    k.add_argument("--min-per-class", type=_int_at_least(1), default=5,
                   help="fewer usable images in a class is an error (default 5)")
    k.set_defaults(func=cmd_check)
    return p


def _output_problem(args) -> str | None:
    """What is wrong with the output files asked for (a folder named, a parent that is a file,
    an image format that cannot be written), said before hours of work; their folders are
    created."""
    from PIL import Image

    for name in ("json", "png", "reliability_png", "scores", "outputs"):
        out = getattr(args, name, None)
        if not out:
            continue
        path = Path(out).absolute()
        option = "--" + name.replace("_", "-")
        if path.is_dir():
            return f"{option} {out}: is a folder; give a file name"
        if name in ("png", "reliability_png") and \
                Image.registered_extensions().get(path.suffix.lower()) not in Image.SAVE:
            return f"{option} {out}: give an image file name Pillow can write (e.g. .png)"
        try:   # the files are written via a temporary file beside them: probe that
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path.parent):
                pass
        except (FileExistsError, NotADirectoryError):
            return f"{option} {out}: {file_in_the_way(path)} is a file, not a folder"
        except OSError as exc:   # read-only (/sys, a write-protected share), full, no permission
            return f"{option} {out}: cannot write there ({exc.strerror or exc})"
    return None


def _save_npz_atomic(path: str, arrays: dict) -> None:
    """A compressed .npz written whole or not at all: a long run saves after every step, and an
    interruption while it writes keeps the previous file (``replace_file_atomic``)."""
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    replace_file_atomic(path, buf.getvalue())


def _as_compared(earlier: dict, now_norm) -> dict:
    """An earlier report's training configuration as resuming compares it with one whose
    input_norm is ``now_norm``: "standardize", the default of reports written before "auto"
    (2026-12-06), passes for "auto"; whether the images now choose the same is checked when
    they are read (``training.train.check_resumed_norm``)."""
    if earlier.get("input_norm") == "standardize" and now_norm == "auto":
        return {**earlier, "input_norm": "auto"}
    return earlier


def _settings_differ(earlier: dict | None, config) -> list[str]:
    """The training settings an earlier report's ``config`` has otherwise than ``config``, as
    "name earlier (now current)" (empty: the same)."""
    now = json.loads(json.dumps(config.describe()))
    if not isinstance(earlier, dict):
        return ["no settings recorded"]
    earlier = _as_compared(earlier, now.get("input_norm"))
    # a setting added since the report was written, left at its default, is not a difference
    default = json.loads(json.dumps(type(config)().describe()))
    return [f"{k} {earlier.get(k)!r} (now {now.get(k)!r})"
            for k in sorted(set(earlier) | set(now)) if earlier.get(k) != now.get(k)
            and not (k not in earlier and k in default and now.get(k) == default[k])]


def _looks_like_hdf5(path: str) -> bool:
    """Whether a file carries the HDF5 signature (at 0, 512, 1024... bytes: a user block may
    come first), as Keras's .h5 weights files do."""
    signature = b"\x89HDF\r\n\x1a\n"
    try:
        with open(path, "rb") as f:
            for offset in (0, 512, 1024, 2048, 4096):
                f.seek(offset)
                if f.read(8) == signature:
                    return True
    except OSError:
        return False
    return False


def _model_names(text: str | None) -> list[str]:
    """``compare --models``' comma-separated names (blanks dropped)."""
    return [m.strip() for m in (text or "").split(",") if m.strip()]


def _compare_problem(args) -> str | None:
    """``compare``'s models, weight files and bundle, checked before hours of training."""
    from .compare import ALL_MODELS, TRANSFER

    models = _model_names(args.models) or list(ALL_MODELS)
    if args.models is not None and not _model_names(args.models):
        return f"--models {args.models!r}: no model named; choose from {', '.join(ALL_MODELS)}"
    wrong = [m for m in models if m not in ALL_MODELS]
    if wrong:
        return f"--models: unknown model(s) {', '.join(wrong)}; choose from {', '.join(ALL_MODELS)}"
    for item in args.weights or ():
        name, eq, file = (part.strip() for part in item.partition("="))
        if not eq or not name or not file:
            return f"--weights {item}: expected MODEL=FILE, e.g. vgg16_tl=vgg16_notop.h5"
        if name not in TRANSFER:
            return (f"--weights {item}: {name} takes no ImageNet weights; only "
                    f"{', '.join(TRANSFER)} do")
        if name not in models:
            return f"--weights {item}: {name} is not among the models compared (--models)"
        if not Path(file).is_file():
            return f"--weights {item}: file not found"
        if not _looks_like_hdf5(file):
            return (f"--weights {item}: not a Keras weights file (HDF5, e.g. "
                    f"{name.split('_')[0]}_notop.h5)")
    named = [w.partition("=")[0].strip() for w in args.weights or ()]
    twice = sorted({n for n in named if named.count(n) > 1})
    if twice:
        return f"--weights: {', '.join(twice)} named more than once"
    if args.bundle and not Path(args.bundle).is_dir():
        return (f"--bundle {args.bundle}: a file, not a bundle folder"
                if Path(args.bundle).exists() else f"--bundle {args.bundle}: folder not found")
    return None


def _input_problem(args) -> str | None:
    """Options that contradict each other or name a folder that is not there, said first."""
    if args.func is cmd_compare:
        problem = _compare_problem(args)
        if problem:
            return problem
    unknown = getattr(args, "unknown", None)
    if getattr(args, "reliability_png", None) and not unknown:
        return "--reliability-png needs --unknown DIR (the diagram shows the unknown report's calibration)"
    if unknown and not Path(unknown).is_dir():
        return (f"--unknown {unknown}: a file, not a folder of images" if Path(unknown).exists()
                else f"--unknown {unknown}: folder not found")
    return None


def unexpected_error(exc: BaseException, command: str) -> str:
    """An error no check foresaw (TensorFlow out of memory, a bug), in one line for the user;
    the traceback goes to a file in the temporary folder, which the line names."""
    import tempfile
    import traceback

    text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    try:
        fd, path = tempfile.mkstemp(prefix="steel-inspector-error-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {command}\n")
            f.write("".join(traceback.format_exception(exc)))
    except OSError:
        return f"{text} (unexpected)"
    return f"{text} (unexpected; the details are in {path}: please send that file with a report)"


def main(argv=None) -> int:
    from .bundle import BundleError
    from .console import utf8_stdout
    from .data import DatasetError
    from .images import ImageReadError
    from .train import TrainingCancelled

    argv = list(sys.argv[1:] if argv is None else argv)
    utf8_stdout()
    quiet_tensorflow_import()   # its start-up notices kept off the terminal
    args = build_parser().parse_args(_then_values(argv))
    args.argv = argv
    try:
        problem = _output_problem(args) or _input_problem(args)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        with ends_as_interrupts():   # SIGTERM, SIGHUP: as Ctrl+C, nothing half-written is left
            status = args.func(args)
            if interrupted() is not None:   # it came while files were written, which finished
                print("a stop asked while files were being written came after they were "
                      "complete; the command finished", file=sys.stderr)
            return status
    except (KeyboardInterrupt, TrainingCancelled) as exc:  # first: a cancellation is an OSError
        kept = getattr(args, "kept_on_cancel", None)
        # a cancellation seen through should_stop: the signal that asked for it
        signum = exc.signum if isinstance(exc, Terminated) else (interrupted() or signal.SIGINT)
        with contextlib.suppress(OSError):   # the terminal may be gone (SIGHUP)
            print(f"\n{'cancelled' if signum == signal.SIGINT else 'stopped'}; "
                  f"{kept or 'nothing was written'}", file=sys.stderr)
        return 128 + signum
    except (DatasetError, BundleError, ImageReadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an output folder that is missing or read-only, a full disk
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - TensorFlow out of memory, a bug: one line here
        kept = getattr(args, "kept_on_cancel", None)
        print(f"error: {unexpected_error(exc, 'training ' + args.command)}"
              + (f"\n{kept}" if kept else ""), file=sys.stderr)
        return 1

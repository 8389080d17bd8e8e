"""Evaluating a new model against the current one on the same held-out images, and the
thumbnails of the images it gets wrong."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from training.cancel import Cancelled
# the rule of a usable model lives with the metrics, shared with the model library
from training.metrics import RECALL_RATIO, min_macro_f1, usefulness_problems  # noqa: F401

from .data import Progress, ShouldStop, never, quiet


def format_recalls(report: Mapping) -> str:
    """Macro F1 first, then each class's recall: the figures that show a lopsided model."""
    per = report.get("per_class", {})
    parts = [f"{n} {per[n]['recall'] * 100:.0f}%" for n in report.get("class_names", per)
             if n in per]
    return (f"macro F1 {report.get('macro_f1', 0) * 100:.1f}%; recall per class: "
            + ", ".join(parts) + f"; accuracy {report.get('accuracy', 0) * 100:.1f}% on "
            f"{report.get('count', 0)} held-out images")


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
    lost_classes: list[str] = field(default_factory=list)   # the current model's, not the new's

    @property
    def comparable(self) -> bool:
        return self.current_report is not None

    @property
    def problems(self) -> list[str]:
        """Why the new model is not usable (``usefulness_problems``); empty when it is."""
        return usefulness_problems(self.report)

    @property
    def usable(self) -> bool:
        return not self.problems

    @property
    def better(self) -> bool:
        """Whether the new model should be put into use: usable (not near chance, no class lost),
        knowing every class the current one knows, and with at least the current one's macro F1
        on the same images (the figure that leads: accuracy hides a lost rare class), or (new
        classes) the current one cannot classify them at all."""
        if not self.usable or self.lost_classes:   # it would stop finding those classes
            return False
        if self.current_report is None:
            return self.report["count"] > 0
        return self.report["macro_f1"] >= self.current_report["macro_f1"]


def evaluate_split(new_bundle: str | Path, data_dir: str | Path,
                   current_bundle: str | Path | None = None,
                   origin: Mapping[str, str] | None = None, progress: Progress = quiet,
                   should_stop: ShouldStop = never) -> SplitEvaluation:
    """The new model and (when it has the same classes) the current one on the test images the
    new bundle's ``split.json`` lists, with the misclassified files. ``origin`` maps staged files
    back to the original ones for display."""
    from training.bundle import BundleError, load_bundle, read_split
    from training.images import load_image
    from training.metrics import classification_report
    from training.predict import KerasPredictor

    new_bundle, data_dir = Path(new_bundle), Path(data_dir)
    split = read_split(new_bundle)
    if split is None:
        raise BundleError(f"{new_bundle}: no split.json, so no held-out images to compare on")
    rel = list(split.get("test") or [])
    progress(0.05, "loading the new model")
    new = load_bundle(new_bundle)
    names = new.class_names
    files = [data_dir / r for r in rel]
    labels = np.array([names.index(Path(r).parts[0]) for r in rel], dtype=np.int64)

    def read(size: int, square: bool, start: float, span: float) -> np.ndarray:
        """The test images as a model of ``size`` that learnt square images (or not) reads
        them: training.card.TrainingView."""
        out = np.zeros((len(files), size, size, 3), np.uint8)
        for i, f in enumerate(files):
            if should_stop():
                raise Cancelled("cancelled while evaluating")
            out[i] = load_image(f, size, square)
            if i % 20 == 0:
                progress(start + span * (i + 1) / len(files), f"reading test images {i + 1}/{len(files)}")
        return out

    x = read(new.input_size, new.view.reading, 0.1, 0.3)   # as the app reads each model
    probs = KerasPredictor(new.model, names, new.input_size).predict(x)
    pred = probs.argmax(1)
    report = classification_report(labels, pred, names)

    current_report, cur_names, cur_pred, note = None, None, None, ""
    lost_classes: list[str] = []
    if current_bundle is not None:
        progress(0.5, "loading the current model")
        try:
            cur = load_bundle(current_bundle)
        except BundleError as exc:
            cur, note = None, f"the current model could not be loaded ({exc})"
        if cur is not None and set(cur.class_names) == set(names):
            same = (cur.input_size, cur.view.reading) == (new.input_size, new.view.reading)
            xc = x if same else read(cur.input_size, cur.view.reading, 0.55, 0.3)
            cp = KerasPredictor(cur.model, cur.class_names, cur.input_size).predict(xc).argmax(1)
            cur_names = cur.class_names
            cur_pred = np.array([names.index(cur_names[i]) for i in cp], dtype=np.int64)
            current_report = classification_report(labels, cur_pred, names)
        elif cur is not None:
            note = ("the current model knows other classes ("
                    f"{', '.join(cur.class_names)}), so it cannot be compared on these images")
            lost = [c for c in cur.class_names if c not in names]
            # classes shared with the current model: the same line's model, narrowed (or
            # narrowed and extended: two of six classes kept and one new), not a model of
            # another task (a plant's own classes, none of the current one's)
            if lost and set(names) & set(cur.class_names):
                lost_classes = lost
                note += (f"; the new model does not know {', '.join(lost)}, so it is not "
                         "offered in its place")
    origin = origin or {}
    wrong = []
    for i in np.flatnonzero(pred != labels):
        wrong.append(Misclassified(
            origin.get(str(files[i]), str(files[i])), names[labels[i]], names[pred[i]],
            float(probs[i, pred[i]]),
            names[cur_pred[i]] if cur_pred is not None else None))
    progress(1.0, "evaluation done")
    return SplitEvaluation(report, current_report, wrong,
                           [origin.get(str(f), str(f)) for f in files], note, lost_classes)

"""Classification metrics and their presentation (table, JSON, confusion-matrix PNG). Qt-free."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def classification_report(y_true, y_pred, class_names: Sequence[str]) -> dict:
    """Accuracy, macro precision/recall/F1, per-class figures and the confusion matrix
    (rows: true class, columns: predicted class)."""
    n = len(class_names)
    cm = confusion_matrix(y_true, y_pred, n)
    tp = np.diag(cm).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    actual = cm.sum(axis=1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros(n), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(n), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n),
                   where=(precision + recall) > 0)
    total = int(cm.sum())
    return {
        "count": total,
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]),
                   "f1": float(f1[i]), "support": int(actual[i])}
            for i, name in enumerate(class_names)
        },
        "class_names": list(class_names),
        "confusion_matrix": cm.tolist(),
    }


def format_report(report: dict, title: str = "") -> str:
    names = report["class_names"]
    w = max(12, max(len(n) for n in names) + 2)
    lines = [title] if title else []
    lines.append(f"images {report['count']}   accuracy {report['accuracy'] * 100:.2f}%   "
                 f"macro P {report['macro_precision'] * 100:.2f}%  R {report['macro_recall'] * 100:.2f}%"
                 f"  F1 {report['macro_f1'] * 100:.2f}%")
    lines.append("")
    lines.append(f"{'class':<{w}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for name in names:
        pc = report["per_class"][name]
        lines.append(f"{name:<{w}}{pc['precision'] * 100:>9.2f}%{pc['recall'] * 100:>9.2f}%"
                     f"{pc['f1'] * 100:>9.2f}%{pc['support']:>9}")
    lines.append("")
    lines.append("confusion matrix (rows true, columns predicted)")
    abbrev = [n[:6] for n in names]
    lines.append(" " * w + "".join(f"{a:>8}" for a in abbrev))
    for name, row in zip(names, report["confusion_matrix"]):
        lines.append(f"{name:<{w}}" + "".join(f"{v:>8}" for v in row))
    return "\n".join(lines)


def save_confusion_png(report: dict, path: str | Path, title: str = "") -> None:
    """Draws the confusion matrix with Pillow (no plotting library needed)."""
    from PIL import Image, ImageDraw, ImageFont

    names = report["class_names"]
    cm = np.asarray(report["confusion_matrix"], dtype=float)
    n = len(names)
    cell, left, top = 64, 150, 70
    width, height = left + n * cell + 20, top + n * cell + 130
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    d.text((10, 10), title or "Confusion matrix", fill="black", font=font)
    d.text((10, 28), f"accuracy {report['accuracy'] * 100:.2f}% on {report['count']} images",
           fill="black", font=font)
    d.text((left, top - 18), "predicted ->", fill="gray", font=font)
    row_sums = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, row_sums, out=np.zeros_like(cm), where=row_sums > 0)
    for i in range(n):
        d.text((10, top + i * cell + cell // 2 - 6), names[i][:20], fill="black", font=font)
        for j in range(n):
            shade = int(255 - 200 * frac[i, j])
            colour = (shade, shade, 255) if i == j else (255, shade, shade)
            x0, y0 = left + j * cell, top + i * cell
            d.rectangle([x0, y0, x0 + cell - 2, y0 + cell - 2], fill=colour, outline="gray")
            d.text((x0 + cell // 2 - 8, y0 + cell // 2 - 6), str(int(cm[i, j])), fill="black",
                   font=font)
    for j in range(n):
        d.text((left + j * cell + 2, top + n * cell + 6 + (j % 2) * 14), names[j][:10],
               fill="black", font=font)
    d.text((10, top + n * cell + 50), "rows: true class", fill="gray", font=font)
    img.save(path)


# ---- is a model worth using? -----------------------------------------------------------------
RECALL_RATIO = 0.5    # a class recalled less than half as often as the median class is "lost"


def min_macro_f1(num_classes: int) -> float:
    """The macro F1 below which a model is no better than a guess: 2 / classes (twice the macro
    F1 of a uniform random guess), at most 0.5. A constant guess of the largest class scores
    below it on any split: its macro F1 is at most 2p / ((1 + p) * classes) < 1 / classes."""
    return min(0.5, 2.0 / max(1, num_classes))


def usefulness_problems(report: Mapping) -> list[str]:
    """Why a model must not be offered for use, from its report on held-out images (empty when
    it is usable). The rule: macro F1 below ``min_macro_f1(classes)`` (near chance), or a class
    with test images whose recall is below ``RECALL_RATIO`` times the median class recall (0% of
    a class is always below it unless the median is 0% too, which the macro F1 rule catches)."""
    names = list(report.get("class_names") or report.get("per_class", {}))
    per = report.get("per_class", {})
    recalls = {n: float(per[n]["recall"]) for n in names
               if n in per and int(per[n].get("support", 0)) > 0}
    if not recalls or not report.get("count"):
        return ["no held-out images to judge it on"]
    problems = []
    f1, floor = float(report.get("macro_f1", 0.0)), min_macro_f1(len(names))
    if f1 < floor:
        problems.append(f"macro F1 {f1 * 100:.1f}% is near chance (below {floor * 100:.0f}% for "
                        f"{len(names)} classes)")
    median = float(np.median(list(recalls.values())))
    lost = [n for n, r in recalls.items() if r < RECALL_RATIO * median or (r == 0 and median == 0)]
    if lost:
        problems.append("it rarely finds " + ", ".join(
            f"{n} (recall {recalls[n] * 100:.0f}%)" for n in lost)
            + f"; the median class recall is {median * 100:.0f}%")
    return problems


def report_from_confusion(confusion, class_names: Sequence[str]) -> dict:
    """``classification_report`` rebuilt from a confusion matrix (rows: true, columns:
    predicted), as a model card stores its test split's."""
    cm = np.asarray(confusion, np.int64)
    true = np.repeat(np.arange(len(cm)), cm.sum(axis=1))
    pred = np.concatenate([np.repeat(np.arange(len(cm)), row) for row in cm]) if len(cm) else \
        np.zeros(0, np.int64)
    return classification_report(true, pred, class_names)


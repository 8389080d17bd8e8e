"""Classification metrics and their presentation (table, JSON, confusion-matrix PNG). Qt-free."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

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

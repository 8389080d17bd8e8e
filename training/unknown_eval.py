"""``python -m training evaluate --unknown DIR``: how well a bundle's unknown detector and
temperature work on known images (a data folder of its classes) and on a folder of images of
other kinds. Qt-free."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .calibration import auroc, ece, fpr_at_tpr, nll, save_reliability_png, softmax
from .openset import UnknownDetector

CONFIDENT = 0.8


def folder_images(folder: str | Path, size: int, progress=lambda f, m: None,
                  unreadable: list | None = None, square: bool = False
                  ) -> tuple[list, np.ndarray]:
    """Every image file under a folder (any layout), decoded to the model input (``square``:
    a non-square image made square by reflection first, as the app reads it for a model
    trained on square images, ``TrainingView.square``). With a list for ``unreadable``, files
    that cannot be read are left out and added to it (as ``ImageReadError``s); without one,
    the first stops it."""
    from .data import Dataset, DatasetError, load_arrays, load_readable
    from .images import files_under, is_image_file, listing_problem

    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder of unknown images not found")
    try:
        files = [p for p in files_under(folder) if is_image_file(p)]
    except OSError as exc:
        raise DatasetError(listing_problem(exc)) from None
    if not files:
        raise DatasetError(f"{folder}: no image files (BMP, PNG, JPEG, TIFF) inside")
    ds = Dataset(folder, ["unknown"], files, np.zeros(len(files), np.int64))
    if unreadable is None:
        images = load_arrays(ds, size, progress, square=square)
        return files, images
    ds, images, errors = load_readable(ds, size, progress, square=square)
    unreadable.extend(errors)
    return list(ds.files), images


def unknown_report(det: UnknownDetector, known: dict, labels: np.ndarray, unknown: dict) -> dict:
    """The issue's figures from the model outputs of known (labelled) and unknown images."""
    s_known_all = det.all_scores(known)
    s_unknown_all = det.all_scores(unknown)
    sk, su = s_known_all[det.method], s_unknown_all[det.method]
    p_before = softmax(known["logits"], 1.0)
    p_after = det.probabilities(known["logits"])
    pu = det.probabilities(unknown["logits"])
    acc_k = det.known(sk)
    acc_u = det.known(su)
    correct = p_after.argmax(1) == labels
    return {
        "method": det.method, "temperature": det.temperature, "threshold": det.threshold,
        "accept_validation": det.accept,
        "known_images": int(len(labels)), "unknown_images": int(len(su)),
        "auroc": auroc(sk, su),
        "fpr_at_95_tpr": fpr_at_tpr(sk, su, 0.95),
        "unknown_confident_and_accepted": float(((pu.max(1) >= CONFIDENT) & acc_u).mean()),
        "unknown_confident_before": float((softmax(unknown["logits"], 1.0).max(1) >= CONFIDENT).mean()),
        "unknown_flagged": float((~acc_u).mean()),
        "known_accepted": float(acc_k.mean()),
        "accuracy_on_accepted_known": float(correct[acc_k].mean()) if acc_k.any() else None,
        "accuracy_all_known": float(correct.mean()),
        "ece_before": ece(p_before, labels), "ece_after": ece(p_after, labels),
        "nll_before": nll(known["logits"], labels, 1.0),
        "nll_after": nll(known["logits"], labels, det.temperature),
        "mean_confidence_after": float(p_after.max(1).mean()),
        "candidates": {k: {"auroc": auroc(s_known_all[k], s_unknown_all[k]),
                           "fpr_at_95_tpr": fpr_at_tpr(s_known_all[k], s_unknown_all[k])}
                       for k in s_known_all},
        "_probs": (p_before, p_after),
    }


def format_unknown_report(r: dict, title: str = "") -> str:
    lines = [title] if title else []
    acc = r["accuracy_on_accepted_known"]
    lines += [
        f"unknown detector: {r['method']}, temperature {r['temperature']:.3f}, threshold accepts "
        f"{r['accept_validation'] * 100:.0f}% of validation images",
        f"known {r['known_images']} images, unknown {r['unknown_images']} images",
        f"AUROC {r['auroc']:.4f}   FPR at 95% TPR {r['fpr_at_95_tpr'] * 100:.1f}%",
        f"unknown images labelled >= {CONFIDENT:.0%} and not flagged: "
        f"{r['unknown_confident_and_accepted'] * 100:.1f}% (>= {CONFIDENT:.0%} before, no "
        f"detector: {r['unknown_confident_before'] * 100:.1f}%); flagged {r['unknown_flagged'] * 100:.1f}%",
        f"known images accepted {r['known_accepted'] * 100:.1f}%, accuracy on them "
        + (f"{acc * 100:.2f}%" if acc is not None else "n/a")
        + f" (all: {r['accuracy_all_known'] * 100:.2f}%)",
        f"ECE {r['ece_before'] * 100:.2f}% -> {r['ece_after'] * 100:.2f}%   NLL "
        f"{r['nll_before']:.4f} -> {r['nll_after']:.4f}   mean confidence "
        f"{r['mean_confidence_after'] * 100:.1f}%",
        "candidates (AUROC, FPR at 95% TPR): " + ", ".join(
            f"{k} {v['auroc']:.3f}/{v['fpr_at_95_tpr'] * 100:.0f}%" for k, v in r["candidates"].items()),
    ]
    return "\n".join(lines)


def save_reliability(r: dict, labels: np.ndarray, path: str | Path, title: str = "") -> Path:
    before, after = r["_probs"]
    return save_reliability_png(before, after, labels, path, title=title)

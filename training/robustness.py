"""Robustness evaluation: a model's accuracy on images shifted the way a plant camera shifts them
(``training.shifts.FAMILIES``), per family and severity, with a PNG grid of examples. Qt-free.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .cancel import Progress, quiet
from .metrics import classification_report
from .shifts import FAMILIES, FAMILY_BY_NAME, Family, shift_rng


def pick_families(names: Sequence[str] | None) -> list[Family]:
    if not names:
        return list(FAMILIES)
    unknown = [n for n in names if n not in FAMILY_BY_NAME]
    if unknown:
        raise ValueError(f"unknown shift famil{'ies' if len(unknown) > 1 else 'y'} "
                         f"{', '.join(unknown)}; choose from {', '.join(FAMILY_BY_NAME)}")
    return [FAMILY_BY_NAME[n] for n in names]


def shifted(images: np.ndarray, family: Family, severity: float, seed: int) -> np.ndarray:
    """Every image under one shift, each with its own reproducible generator."""
    return np.stack([family.apply(img, severity, shift_rng(seed, family.name, severity, i))
                     for i, img in enumerate(images)])


def evaluate_robustness(predictor, images: np.ndarray, labels: np.ndarray,
                        families: Sequence[Family] = FAMILIES, seed: int = 0,
                        progress: Progress = quiet) -> dict:
    """Accuracy (and macro F1) on the clean images and on every family x severity. ``predictor``
    has ``predict(uint8 images) -> probabilities`` and ``class_names``; one that also has
    ``judge(uint8 images) -> (probabilities, known)`` (``training.detect.KnownJudge``: a bundle
    with an unknown detector) adds the share of images accepted as known (``known``) and the
    accuracy on them."""
    names = list(predictor.class_names)
    jobs = [(f, s) for f in families for s in f.severities]
    judge = getattr(predictor, "judge", None)

    def score(x):
        probs, known = judge(x) if judge else (predictor.predict(x), None)
        pred = probs.argmax(1)
        rep = classification_report(labels, pred, names)
        r = {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"],
             "recall": {n: rep["per_class"][n]["recall"] for n in names}}
        if known is not None:
            r["known"] = float(np.mean(known))
            r["accuracy_on_known"] = (float(np.mean(pred[known] == labels[known]))
                                      if known.any() else None)
        return r

    clean = score(images)
    rows = []
    for k, (fam, sev) in enumerate(jobs):
        progress(k / len(jobs), f"{fam.name} {sev:g} ({k + 1}/{len(jobs)})")
        r = score(shifted(images, fam, sev, seed))
        rows.append({"family": fam.name, "severity": sev, "unit": fam.unit, **r})
    per_family = {}
    for fam in families:
        accs = [r["accuracy"] for r in rows if r["family"] == fam.name]
        per_family[fam.name] = {"what": fam.what, "unit": fam.unit,
                                "mean_accuracy": float(np.mean(accs)),
                                "min_accuracy": float(np.min(accs))}
        if judge:
            known = [r["known"] for r in rows if r["family"] == fam.name]
            per_family[fam.name].update(mean_known=float(np.mean(known)),
                                        min_known=float(np.min(known)))
    progress(1.0, "done")
    result = {
        "images": int(len(images)),
        "seed": seed,
        "clean": clean,
        "shifts": rows,
        "families": per_family,
        "mean_shifted_accuracy": float(np.mean([r["accuracy"] for r in rows])) if rows else None,
        "worst_family": min(per_family, key=lambda n: per_family[n]["min_accuracy"])
        if per_family else None,
    }
    if judge and rows:
        result["mean_shifted_known"] = float(np.mean([r["known"] for r in rows]))
    return result


# the card entries' figures that depend on the bundle's unknown detector (card_summary)
KNOWN_KEYS = ("clean_known", "mean_shifted_known", "known", "accuracy_on_known")


def forget_known(card: dict) -> None:
    """Drops the detector-dependent figures of every robustness entry of ``card`` (a new
    detector makes them stale; the accuracies stay)."""
    for entry in (card.get("robustness") or {}).values():
        for key in KNOWN_KEYS:
            entry.pop(key, None)


def card_summary(result: dict, command: str) -> dict:
    """The compact table the model card keeps (``robustness`` section, one entry per evaluated
    file): accuracy per family and severity, the clean and mean figures, how many unreadable
    files were left out (when any), and how to measure it again."""
    per_severity: dict[str, dict[str, float]] = {}
    known: dict[str, dict[str, float]] = {}
    right: dict[str, dict[str, float | None]] = {}
    for r in result["shifts"]:
        sev = f"{r['severity']:g}"
        per_severity.setdefault(r["family"], {})[sev] = round(r["accuracy"], 4)
        if "known" in r:
            known.setdefault(r["family"], {})[sev] = round(r["known"], 4)
            a = r.get("accuracy_on_known")
            right.setdefault(r["family"], {})[sev] = None if a is None else round(a, 4)
    extra = {}
    if known:
        extra = {"clean_known": round(result["clean"]["known"], 4),
                 "mean_shifted_known": round(result["mean_shifted_known"], 4), "known": known,
                 "accuracy_on_known": right}
    return {
        "split": result.get("split"), "images": result["images"], "seed": result["seed"],
        "clean_accuracy": round(result["clean"]["accuracy"], 4),
        "mean_shifted_accuracy": (round(result["mean_shifted_accuracy"], 4)
                                  if result["mean_shifted_accuracy"] is not None else None),
        "worst_family": result["worst_family"],
        "min_accuracy": {n: round(f["min_accuracy"], 4) for n, f in result["families"].items()},
        "accuracy": per_severity,
        **extra,
        **({"unreadable_left_out": len(result["unreadable_left_out"])}
           if result.get("unreadable_left_out") else {}),
        "command": command,
    }


def record_in_card(bundle_dir: str | Path, key: str, summary: dict) -> None:
    """Writes ``summary`` into the bundle's model card under ``robustness[key]`` (``keras`` for
    the bundle's own model, the file name for an export), replacing the card atomically."""
    from .bundle import CARD_FILE, read_card, write_json

    card = read_card(bundle_dir)
    card.setdefault("robustness", {})[key] = summary
    write_json(Path(bundle_dir) / CARD_FILE, card)


def format_robustness(result: dict, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"{result['images']} images; clean accuracy {result['clean']['accuracy'] * 100:.2f}%"
                 f"; mean over all shifts {result['mean_shifted_accuracy'] * 100:.2f}%")
    families = result["families"]
    rows = {name: [r for r in result["shifts"] if r["family"] == name] for name in families}
    sevs = {name: ", ".join(f"{r['severity']:g}" for r in rows[name]) + " " + fam["unit"]
            for name, fam in families.items()}
    # columns as wide as their longest entry: no name runs into its severities
    nw = max([len("family"), *map(len, families)]) + 2
    sw = max([len("severity"), *map(len, sevs.values())])
    lines.append(f"{'family':<{nw}}{'severity':>{sw}}  {'accuracy per severity':<40}{'min':>8}")
    for name, fam in families.items():
        acc = " ".join(f"{r['accuracy'] * 100:5.1f}" for r in rows[name])
        lines.append(f"{name:<{nw}}{sevs[name]:>{sw}}  {acc:<40}{fam['min_accuracy'] * 100:7.1f}%")
    if "mean_shifted_known" in result:
        lines += ["", f"accepted as known (the unknown detector): clean "
                      f"{result['clean']['known'] * 100:.1f}%; mean over all shifts "
                      f"{result['mean_shifted_known'] * 100:.1f}%",
                  f"{'family':<{nw}}{'':>{sw}}  {'known per severity':<40}{'min':>8}"]
        for name, fam in families.items():
            known = " ".join(f"{r['known'] * 100:5.1f}" for r in rows[name])
            lines.append(f"{name:<{nw}}{'':>{sw}}  {known:<40}{fam['min_known'] * 100:7.1f}%")
        right = [r["accuracy_on_known"] for r in result["shifts"]
                 if r.get("accuracy_on_known") is not None]
        if right:
            lines.append(f"accuracy on the images accepted as known: {min(right) * 100:.1f}% "
                         f"at the worst shift")
    return "\n".join(lines)


def save_examples_png(images: np.ndarray, path: str | Path, families: Sequence[Family] = FAMILIES,
                      seed: int = 0, tile: int = 120) -> Path:
    """One row per family: the clean image, then the image at each severity, labelled, so a
    person can judge whether the severities look like a real camera's."""
    from PIL import Image, ImageDraw

    cols = 1 + max(len(f.severities) for f in families)
    label_h = 14
    sheet = Image.new("RGB", (cols * tile + 110, len(families) * (tile + label_h) + 4), "white")
    draw = ImageDraw.Draw(sheet)
    for r, fam in enumerate(families):
        img = images[r % len(images)]
        y = r * (tile + label_h) + 2
        draw.text((4, y + tile // 2), fam.name, fill="black")
        cells = [("clean", img)] + [(f"{s:g}", fam.apply(img, s, shift_rng(seed, fam.name, s, 0)))
                                    for s in fam.severities]
        for c, (text, im) in enumerate(cells):
            x = 110 + c * tile
            sheet.paste(Image.fromarray(im).resize((tile - 4, tile - 4)), (x, y))
            draw.text((x, y + tile - 3), text, fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path

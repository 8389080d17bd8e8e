"""Does test-time augmentation pay for its time? Classifies a bundle's test split under every
camera shift of ``python -m training robustness`` (same images, same seed) once plainly and
once averaged over several views of each image, and reports the accuracy per shift and the mean
for each set of views:

* ``dihedral-K``: the first K of the eight 90-degree turns and mirrors (the model was trained on
  all eight, so each view is one it knows);
* ``scales-...``: the image and copies at other fields of view (``training.shifts.field_of_view``),
  for a camera whose distance is not known.

The views' log-probabilities are averaged. Each extra view costs one more forward pass, so a
set of K views runs at 1/K of the plain speed.

    python benchmarks/bench_tta.py --model resources/ssdc-mininet \\
        --data ../shared/datasets/neu-cls [--split test] [--json docs/results/bench_tta.json]

Qt-free; TensorFlow or LiteRT computes the model's outputs (``training.predict``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VIEW_SETS: dict[str, tuple[str, tuple]] = {
    "plain": ("dihedral", (0,)),
    "dihedral-2": ("dihedral", (0, 4)),
    "dihedral-4": ("dihedral", (0, 1, 2, 3)),
    "dihedral-8": ("dihedral", tuple(range(8))),
    "scales-1+0.8+1.25": ("scale", (1.0, 0.8, 1.25)),
    "scales-1+0.67+1.5": ("scale", (1.0, 0.67, 1.5)),
    "scales-1+0.67": ("scale", (1.0, 0.67)),
}


def view(images: np.ndarray, kind: str, arg) -> np.ndarray:
    """One view of every image: a dihedral turn (0-3 turns by 90 degrees, 4-7 also mirrored) or
    a field of view."""
    from training.shifts import field_of_view

    if kind == "dihedral":
        v = np.rot90(images, arg % 4, axes=(1, 2))
        return np.ascontiguousarray(v[:, :, ::-1] if arg >= 4 else v)
    return np.stack([field_of_view(img, arg) for img in images])


def measure(model: str, data: str, split: str, seed: int = 0) -> dict:
    from training.cli import _evaluation_images   # the images `training robustness` reads
    from training.predict import open_predictor
    from training.robustness import shifted
    from training.shifts import FAMILIES

    predictor = open_predictor(model)
    ds, images = _evaluation_images(argparse.Namespace(model=model, data=data, split=split),
                                    predictor)
    labels = ds.labels
    views = {(kind, a) for kind, args in VIEW_SETS.values() for a in args}
    rows = []
    jobs = [("clean", 0.0)] + [(f.name, s) for f in FAMILIES for s in f.severities]
    fams = {f.name: f for f in FAMILIES}
    for name, sev in jobs:
        x = images if name == "clean" else shifted(images, fams[name], sev, seed)
        logp = {v: np.log(np.clip(predictor.predict(view(x, *v)), 1e-7, 1.0)) for v in views}
        row = {"family": name, "severity": sev}
        for set_name, (kind, args) in VIEW_SETS.items():
            mean = np.mean([logp[(kind, a)] for a in args], axis=0)
            row[set_name] = float(np.mean(mean.argmax(1) == labels))
        rows.append(row)
        print(f"{name:14s} {sev:6g} " + " ".join(f"{row[s]:.3f}" for s in VIEW_SETS), flush=True)
    shifted_rows = rows[1:]
    summary = {s: {"clean": rows[0][s],
                   "mean_shifted": float(np.mean([r[s] for r in shifted_rows])),
                   "worst_shift": min(shifted_rows, key=lambda r: r[s])[s],
                   "forward_passes": len(VIEW_SETS[s][1])} for s in VIEW_SETS}
    return {"model": model, "data": data, "split": split, "images": int(len(labels)),
            "seed": seed, "view_sets": {k: [v[0], list(v[1])] for k, v in VIEW_SETS.items()},
            "summary": summary, "shifts": rows}


def main(argv=None) -> int:
    from benchmarks.common import split_parser

    args = split_parser(__doc__).parse_args(argv)
    result = measure(args.model, args.data, args.split, args.seed)
    print(f"\n{'views':22s} {'passes':>6s} {'clean':>7s} {'mean':>7s} {'worst':>7s}")
    for name, s in result["summary"].items():
        print(f"{name:22s} {s['forward_passes']:6d} {s['clean']:7.1%} {s['mean_shifted']:7.2%} "
              f"{s['worst_shift']:7.1%}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does a model read a wider view as the surface at a smaller scale, or has it learnt the mirror?

A 200x200 image can only be made into a wider view by making up the surface around it. The
robustness table (``python -m training robustness``) reflects the image at its borders, as the
training recipe does. This benchmark classifies a bundle's test split with the surround made up
three ways, at the same fields of view, and further and closer views past the table's:

* ``mirror``: reflected at the borders (the table's ``field_of_view``);
* ``repeated``: the image itself repeated, each copy mirrored at random, never turned
  (``field_of_view_tiled``, which ``robustness --families`` also evaluates);
* ``same class``: other test images of the same class around it (``training.shifts.
  wider_surround``), the closest a 200x200 data set comes to more of the same surface (the
  image repeated where it is its class's only one).

Each image and severity has its own seeded generator, so a table is reproducible. A bundle with
an unknown detector also gets the share of images accepted as known and the accuracy on them.

    python benchmarks/bench_wider_view.py --model resources/ssdc-mininet \\
        --data ../shared/datasets/neu-cls [--split test] [--json docs/results/bench_wider_view.json]

Qt-free; TensorFlow or LiteRT computes the model's outputs (``training.predict``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VIEWS = (1.5, 2.0, 2.5)
SURROUNDS = ("mirror", "repeated", "same class")
CLOSER = (0.8, 0.67, 0.5)   # the centre enlarged: no surround to make up


def wider(images: np.ndarray, labels: np.ndarray, surround: str, factor: float,
          seed: int) -> np.ndarray:
    """Every image at ``factor`` times the field of view, its surround made up as named."""
    from training.shifts import field_of_view, shift_rng, wider_surround

    out = []
    for i, img in enumerate(images):
        rng = shift_rng(seed, f"wider-{surround}", factor, i)
        if surround == "mirror":
            out.append(field_of_view(img, factor))
            continue
        others = None   # "repeated", or an image that is its class's only one
        if surround == "same class":
            pool = np.flatnonzero((labels == labels[i]) & (np.arange(len(labels)) != i))
            if len(pool):
                def others(rng=rng, pool=pool):
                    return images[pool[rng.integers(len(pool))]]
        out.append(field_of_view(img, factor, surround=wider_surround(img, factor, rng, others)))
    return np.stack(out)


def measure(model: str, data: str, split: str, seed: int = 0) -> dict:
    from benchmarks.common import judged_split
    from training.shifts import field_of_view

    labels, images, score = judged_split(model, data, split)
    known_rows: dict = {}

    def accuracy(x, key):
        r = score(x)
        if "known" in r:
            known_rows[key] = {k: r[k] for k in ("known", "accuracy_on_known")}
        return r["accuracy"]

    result = {"model": model, "data": data, "split": split, "images": int(len(labels)),
              "seed": seed, "clean": accuracy(images, "clean"), "wider": {}, "closer": {}}
    for surround in SURROUNDS:
        result["wider"][surround] = {
            f"{f:g}": accuracy(wider(images, labels, surround, f, seed), f"{surround} x{f:g}")
            for f in VIEWS}
        print(f"{surround:12s} " + "  ".join(
            f"x{k} {v:6.1%}" for k, v in result["wider"][surround].items()), flush=True)
    result["closer"] = {f"{f:g}": accuracy(np.stack([field_of_view(img, f) for img in images]),
                                           f"closer x{f:g}") for f in CLOSER}
    print("closer       " + "  ".join(f"x{k} {v:6.1%}" for k, v in result["closer"].items()))
    if known_rows:   # the unknown verdict: the share accepted as known, and right among them
        result["accepted_as_known"] = known_rows
        for key, r in known_rows.items():
            on = "-" if r["accuracy_on_known"] is None else f"{r['accuracy_on_known']:.1%}"
            print(f"  {key:18s} accepted {r['known']:6.1%}, right among them {on}")
    return result


def main(argv=None) -> int:
    from benchmarks.common import split_main

    return split_main(__doc__, measure, argv)


if __name__ == "__main__":
    raise SystemExit(main())

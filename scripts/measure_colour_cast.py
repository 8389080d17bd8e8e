"""Bundled model on the NEU test split seen by a colour camera (white balance off, chroma noise, a
cast) and with colour that no camera makes (rust-like spots, a colour map): read in colour as the
engine reads it, with a per-image grey-world white balance, and converted to grey (luma) first;
accuracy and the share accepted as known. docs/robustness.md, "A colour camera's white balance".

    .venv/bin/python scripts/measure_colour_cast.py

Each shift draws from its own seeded generator, so every row is reproducible on its own.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def gains(g):
    return lambda x, rng: x * np.array(g, np.float32)


def chroma_noise(sigma):
    return lambda x, rng: x + rng.normal(0, sigma, x.shape).astype(np.float32)


def cast(offset):
    return lambda x, rng: x + np.array(offset, np.float32)


def colour_map(x, rng):
    """A foreign colour texture: the grey image through a colour map."""
    import cv2

    return cv2.applyColorMap(x[..., 0].astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1] \
        .astype(np.float32)


def rust_spots(x, rng):
    """Six reddish discs (6-18 px radius) on the grey surface."""
    out = x.copy()
    h, w = x.shape[:2]
    yy, xx = np.ogrid[:h, :w]
    for _ in range(6):
        cy, cx, r = rng.integers(20, h - 20), rng.integers(20, w - 20), rng.integers(6, 18)
        m = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        out[m] = out[m] * np.array([1.3, 0.8, 0.6], np.float32)
    return out


SHIFTS = {
    "none": lambda x, rng: x,
    "white balance warm x1.1/1/0.9": gains((1.1, 1.0, 0.9)),
    "white balance warm x1.25/1/0.8": gains((1.25, 1.0, 0.8)),
    "white balance cool x0.85/1/1.15": gains((0.85, 1.0, 1.15)),
    "chroma noise sigma 4": chroma_noise(4),
    "chroma noise sigma 8": chroma_noise(8),
    "cast +20 red, -10 blue": cast((20, 0, -10)),
    "foreign: colour map": colour_map,
    "foreign: rust-like spots": rust_spots,
}


def read(z: np.ndarray, mode: str) -> np.ndarray:
    """The shifted image as read: in colour, balanced to its grey mean, or as grey (luma)."""
    z = np.clip(z, 0, 255)
    if mode == "grey world":
        m = z.reshape(-1, 3).mean(0)
        z = np.clip(z * (m.mean() / np.maximum(m, 1e-6)), 0, 255)
    elif mode == "grey":
        z = np.repeat((z @ LUMA)[..., None], 3, 2)
    return np.round(z).astype(np.uint8)


def main() -> int:
    from PIL import Image

    from inspector.engine import load_classifier
    from training.bundle import read_split

    bundle = ROOT / "resources" / "ssdc-mininet"
    clf = load_classifier(bundle)
    neu = ROOT.parent / "shared" / "datasets" / "neu-cls"
    test = read_split(bundle)["test"]
    names = list(clf.class_names)
    images = [np.asarray(Image.open(neu / r).convert("RGB"), np.float32) for r in test]
    y = np.array([names.index(r.split("/")[0]) for r in test])
    for k, (name, shift) in enumerate(SHIFTS.items()):
        for mode in ("colour", "grey world", "grey"):
            rng = np.random.default_rng(k)   # the same draws for every way of reading
            x = np.stack([clf.prepare(read(shift(im.copy(), rng), mode)) for im in images])
            v = clf.judge(x)
            right = np.asarray(v.probs).argmax(1) == y
            print(f"{name:32s} {mode:10s} right {right.mean():6.1%}  accepted as known "
                  f"{np.mean(v.known):6.1%}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

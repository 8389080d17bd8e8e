"""Makes a synthetic "plant" data set of steel-strip surface defects that NEU does not have, to
check the retraining wizard's default settings on classes the bundled model has never seen.

Seven classes of procedurally drawn defects on a textured, unevenly lit steel background,
128x128 pixels, colour, saved as a mix of JPEG and PNG, with unequal class sizes (the shape of
the published seven-class hot-rolled strip benchmark: 63 to 397 images per class, 1,360 in
all). Each image draws its background, lighting, noise, defect size, count, contrast and angle
at random, and a quarter of them carry a faint mark of another class, so classes overlap at
low contrast and the task is not trivial.

    python benchmarks/make_plant_dataset.py OUT_DIR [--seed 7] [--scale 1.0] [--level hard]

Nothing here is a data set image: it is generated, and OUT_DIR stays outside the repository.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 128
COUNTS = {  # images per class, unequal on purpose
    "roll_print": 203,
    "sheet_ash": 122,
    "plate_oxide": 63,
    "temper_oxide": 203,
    "red_scale": 397,
    "slag_inclusion": 238,
    "scratch": 134,
}


def _smooth_noise(rng: np.random.Generator, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled bicubically."""
    coarse = rng.random((cells, cells)).astype(np.float32)
    img = Image.fromarray((coarse * 255).astype(np.uint8)).resize((SIZE, SIZE), Image.BICUBIC)
    return np.asarray(img, np.float32) / 255.0


def _background(rng: np.random.Generator) -> np.ndarray:
    """Grey-blue steel with rolling-direction grain, uneven lighting and sensor noise (H, W, 3)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    base = rng.uniform(90, 170)
    grain = rng.normal(0, rng.uniform(2, 6), (SIZE, 1)).repeat(SIZE, axis=1)  # along the strip
    light = rng.uniform(-25, 25) * (xx - 0.5) + rng.uniform(-25, 25) * (yy - 0.5)
    grey = base + grain + light + 18 * (_smooth_noise(rng, 6) - 0.5)
    tint = np.array([rng.uniform(0.95, 1.0), rng.uniform(0.97, 1.02), rng.uniform(1.0, 1.08)])
    return grey[..., None] * tint[None, None, :]


def _ellipse_mask(cx, cy, rx, ry, angle) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    c, s = np.cos(angle), np.sin(angle)
    u, v = (xx - cx) * c + (yy - cy) * s, -(xx - cx) * s + (yy - cy) * c
    return np.clip(1.5 - np.sqrt((u / rx) ** 2 + (v / ry) ** 2), 0, 1)


def _line_mask(x0, y0, x1, y1, width) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / max(dx * dx + dy * dy, 1e-6), 0, 1)
    d = np.hypot(xx - (x0 + t * dx), yy - (y0 + t * dy))
    return np.clip(1.0 - d / width, 0, 1)


LEVELS = {  # contrast of the defect, chance and contrast of a mark of another class, noise
    "normal": dict(contrast=(0.35, 1.0), other_p=0.25, other=(0.1, 0.25), noise=(3, 9)),
    "hard": dict(contrast=(0.15, 0.7), other_p=0.6, other=(0.15, 0.45), noise=(5, 16)),
}


def draw(label: str, rng: np.random.Generator, level: str = "normal") -> np.ndarray:
    v = LEVELS[level]
    img = _background(rng)
    # faint defects overlap with neighbouring classes
    _defect(img, label, rng, contrast=rng.uniform(*v["contrast"]))
    if rng.random() < v["other_p"]:  # a faint mark of another kind, as on real strip
        other = rng.choice([k for k in COUNTS if k != label])
        _defect(img, str(other), rng, contrast=rng.uniform(*v["other"]))
    img += rng.normal(0, rng.uniform(*v["noise"]), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _defect(img: np.ndarray, label: str, rng: np.random.Generator, contrast: float) -> None:
    """Draws one defect of class ``label`` into ``img`` (float, H x W x 3) in place."""
    grey = np.ones(3)
    if label == "roll_print":  # a regular lattice of shallow roll marks
        period = rng.uniform(18, 34)
        angle = rng.uniform(0, np.pi)
        r = rng.uniform(3, 6)
        ox, oy = rng.uniform(0, period, 2)
        m = np.zeros((SIZE, SIZE), np.float32)
        for gx in np.arange(-period, SIZE + period, period):
            for gy in np.arange(-period, SIZE + period, period * rng.uniform(0.9, 1.1)):
                m = np.maximum(m, _ellipse_mask(gx + ox, gy + oy, r * 1.6, r, angle))
        img -= (35 * contrast * m)[..., None] * grey
    elif label == "sheet_ash":  # many small grey flakes, scattered
        m = np.zeros((SIZE, SIZE), np.float32)
        for _ in range(rng.integers(15, 45)):
            cx, cy = rng.uniform(0, SIZE, 2)
            m = np.maximum(m, _ellipse_mask(cx, cy, rng.uniform(1.5, 4), rng.uniform(1, 2.5),
                                            rng.uniform(0, np.pi)) * rng.uniform(0.5, 1))
        img += (rng.choice([-1, 1]) * 40 * contrast * m)[..., None] * grey
    elif label == "plate_oxide":  # large dark irregular islands of scale
        field = _smooth_noise(rng, int(rng.integers(3, 6)))
        m = np.clip((field - rng.uniform(0.45, 0.6)) * 6, 0, 1)
        rough = _smooth_noise(rng, 24)
        img -= (50 * contrast * m * (0.7 + 0.6 * rough))[..., None] * grey
    elif label == "temper_oxide":  # streaks across the strip from uneven cooling
        yy = np.arange(SIZE, dtype=np.float32)[:, None]
        f = rng.uniform(0.08, 0.25)
        streak = np.sin(f * yy + rng.uniform(0, 6)) * (0.6 + 0.4 * _smooth_noise(rng, 5))
        if rng.random() < 0.5:
            streak = streak.T
        img -= (22 * contrast * streak)[..., None] * grey
    elif label == "red_scale":  # reddish-brown blotches of red iron oxide
        m = np.clip((_smooth_noise(rng, int(rng.integers(4, 9))) - rng.uniform(0.35, 0.55)) * 4,
                    0, 1)
        red = np.array([1.0, -0.35, -0.55]) * rng.uniform(25, 50) * contrast
        img += m[..., None] * red[None, None, :]
    elif label == "slag_inclusion":  # a few short dark elongated inclusions along the strip
        m = np.zeros((SIZE, SIZE), np.float32)
        for _ in range(rng.integers(1, 4)):
            cx, cy = rng.uniform(15, SIZE - 15, 2)
            m = np.maximum(m, _ellipse_mask(cx, cy, rng.uniform(8, 22), rng.uniform(1.5, 3.5),
                                            rng.normal(0, 0.25)))
        img -= (60 * contrast * m)[..., None] * grey
    elif label == "scratch":  # long thin lines at any angle, bright or dark
        m = np.zeros((SIZE, SIZE), np.float32)
        for _ in range(rng.integers(1, 3)):
            a = rng.uniform(0, np.pi)
            cx, cy = rng.uniform(30, SIZE - 30, 2)
            half = rng.uniform(40, 90)
            m = np.maximum(m, _line_mask(cx - half * np.cos(a), cy - half * np.sin(a),
                                         cx + half * np.cos(a), cy + half * np.sin(a),
                                         rng.uniform(1.0, 2.2)))
        img += (rng.choice([-1, 1]) * 45 * contrast * m)[..., None] * grey
    else:
        raise ValueError(label)


def make(out: Path, seed: int = 7, scale: float = 1.0, level: str = "normal") -> dict[str, int]:
    rng = np.random.default_rng(seed)
    counts = {k: max(3, int(round(v * scale))) for k, v in COUNTS.items()}
    for label, n in counts.items():
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            img = Image.fromarray(draw(label, rng, level))
            if k % 2:
                img.save(folder / f"{label}_{k:04d}.jpg", quality=int(rng.integers(80, 96)))
            else:
                img.save(folder / f"{label}_{k:04d}.png")
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--scale", type=float, default=1.0, help="multiply every class size")
    p.add_argument("--level", choices=sorted(LEVELS), default="normal",
                   help="hard: fainter defects, more and stronger marks of other classes, more noise")
    args = p.parse_args(argv)
    counts = make(Path(args.out), args.seed, args.scale, args.level)
    print(f"{sum(counts.values())} images in {len(counts)} classes under {args.out}: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

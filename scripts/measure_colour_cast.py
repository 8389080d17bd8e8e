"""Bundled model on the NEU test split seen by a colour camera (white balance off, chroma noise, a
cast) and with colour that no camera makes (rust-like spots, a colour map): read in colour as the
engine reads it, with a per-image grey-world white balance, and converted to grey (luma) first;
accuracy and the share accepted as known. docs/robustness.md, "A colour camera's white balance".

    .venv/bin/python scripts/measure_colour_cast.py
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import numpy as np
from PIL import Image
from inspector.engine import load_classifier
clf = load_classifier(ROOT / "resources" / "ssdc-mininet")
neu = ROOT.parent / "shared" / "datasets" / "neu-cls"
test = json.loads((ROOT / "resources" / "ssdc-mininet" / "split.json").read_text())["test"]
names = list(clf.class_names)
imgs = [np.asarray(Image.open(neu / r).convert("RGB"), np.float32) for r in test]
y = np.array([names.index(r.split("/")[0]) for r in test])
rng = np.random.default_rng(0)
wb = lambda g: (lambda x: np.clip(x * np.array(g, np.float32), 0, 255))
chroma = lambda sig: (lambda x: np.clip(x + rng.normal(0, sig, x.shape).astype(np.float32), 0, 255))
tint = lambda off: (lambda x: np.clip(x + np.array(off, np.float32), 0, 255))
def colourise(x):   # a foreign-looking colour texture: the grey image through a colour map
    import cv2
    g = x[..., 0].astype(np.uint8)
    return cv2.applyColorMap(g, cv2.COLORMAP_JET)[..., ::-1].astype(np.float32)
def rust_spots(x):  # local reddish blobs on the grey surface
    out = x.copy(); h, w = x.shape[:2]
    for _ in range(6):
        cy, cx, r = rng.integers(20, h - 20), rng.integers(20, w - 20), rng.integers(6, 18)
        yy, xx = np.ogrid[:h, :w]; m = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        out[m] = out[m] * np.array([1.3, 0.8, 0.6], np.float32)
    return np.clip(out, 0, 255)
shifts = {"none": lambda x: x, "wb warm 1.25/1/0.8": wb((1.25, 1.0, 0.8)), "wb cool 0.85/1/1.15": wb((0.85, 1.0, 1.15)),
          "chroma noise 8": chroma(8), "cast +20R -10B": tint((20, 0, -10)),
          "FOREIGN colour map": colourise, "FOREIGN rust spots": rust_spots}
luma = np.array([0.299, 0.587, 0.114], np.float32)
def greyworld(z):
    m = z.reshape(-1, 3).mean(0); return np.clip(z * (m.mean() / np.maximum(m, 1e-6)), 0, 255)
for name, f in shifts.items():
    for mode in ("rgb", "greyworld", "grey"):
        xs = []
        for im in imgs:
            z = f(im.copy())
            if mode == "grey": z = np.repeat((z @ luma)[..., None], 3, 2)
            if mode == "greyworld": z = greyworld(z)
            xs.append(clf.prepare(np.round(z).astype(np.uint8)))
        v = clf.judge(np.stack(xs)); p = np.asarray(v.probs).argmax(1)
        print(f"{name:22s} {mode:9s} acc {np.mean(p == y):.1%} accepted {np.mean(v.known):.1%}", flush=True)

"""Bundled model on the NEU test split seen by a colour camera (white balance off, chroma noise, a
cast), read in colour as the engine reads it and converted to grey (luma) first: accuracy and the
share accepted as known. docs/robustness.md, "A colour camera's white balance".

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
def wb(g):  # per-channel gains
    return lambda x: np.clip(x * np.array(g, np.float32), 0, 255)
def chroma(sig):
    return lambda x: np.clip(x + rng.normal(0, sig, x.shape).astype(np.float32), 0, 255)
def tint(off):
    return lambda x: np.clip(x + np.array(off, np.float32), 0, 255)
shifts = {"none": lambda x: x, "wb warm 1.1/1/0.9": wb((1.1, 1.0, 0.9)), "wb warm 1.25/1/0.8": wb((1.25, 1.0, 0.8)),
          "wb cool 0.85/1/1.15": wb((0.85, 1.0, 1.15)), "chroma noise 4": chroma(4), "chroma noise 8": chroma(8),
          "tint +20R -10B": tint((20, 0, -10))}
luma = np.array([0.299, 0.587, 0.114], np.float32)
for name, f in shifts.items():
    for grey in (False, True):
        xs = []
        for im in imgs:
            z = f(im.copy())
            if grey:
                z = np.repeat((z @ luma)[..., None], 3, 2)
            xs.append(clf.prepare(np.round(z).astype(np.uint8)))
        v = clf.judge(np.stack(xs))
        p = np.asarray(v.probs).argmax(1)
        print(f"{name:22s} {'grey' if grey else 'rgb ':4s} acc {np.mean(p == y):.1%} accepted {np.mean(v.known):.1%}", flush=True)

"""Shifts of the robustness table's kinds, made by other code: does a model hold to the kinds, or
to this project's own implementation of them?

The robustness table (``python -m training robustness``) makes every shift with
``training.shifts``, the module the training recipe augments with. An independent check will
make its own, with other libraries and other settings. This benchmark classifies a bundle's test
split under shifts made with Pillow's filters and enhancers and with numpy, at the issue's
settings (blur radius 1, noise sigma 8, contrast lowered by a third, JPEG 40, brightness +-25%,
a view twice as wide) and around them, plus kinds of the same families that the table does
not make: box and median blur, a camera with fewer pixels, sharpening (many cameras sharpen),
shot noise (Poisson: the noise grows with the light), images turned by software with black
corners (``PIL.Image.rotate``'s and ``cv2.warpAffine``'s default; the table's turn continues the
surface by reflection) and frames letterboxed onto a square (bars of black, grey or white);
the app fills such padding with the surface beside it before classifying (``training.padding``).
Each shift has its own seeded generator, so a table is reproducible. A bundle
with an unknown detector also gets the share of images accepted as known and the accuracy on
them.

    python benchmarks/bench_other_shifts.py --model resources/ssdc-mininet \\
        --data ../shared/datasets/neu-cls [--split test] \\
        [--json docs/results/bench_other_shifts.json]

Qt-free; TensorFlow or LiteRT computes the model's outputs (``training.predict``).
"""
from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

Shift = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _pil(a: np.ndarray):
    from PIL import Image

    return Image.fromarray(a)


def _back(p, like: np.ndarray) -> np.ndarray:
    return np.asarray(p.convert("RGB" if like.ndim == 3 else "L")).reshape(like.shape)


def _filter(make) -> Shift:
    return lambda a, rng: _back(_pil(a).filter(make()), a)


def _enhance(kind: str, factor: float) -> Shift:
    from PIL import ImageEnhance

    return lambda a, rng: _back(getattr(ImageEnhance, kind)(_pil(a)).enhance(factor), a)


def _jpeg(quality: int) -> Shift:
    from PIL import Image

    def shift(a, rng):
        buf = io.BytesIO()
        _pil(a).save(buf, "JPEG", quality=quality)
        return _back(Image.open(buf), a)
    return shift


def _grey_noise(a: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The same noise on every channel (a grey sensor's image stays grey)."""
    n = noise if a.ndim == 2 else noise[..., None]
    return np.clip(np.rint(a.astype(np.float64) + n), 0, 255).astype(np.uint8)


def _gauss_noise(sigma: float) -> Shift:
    return lambda a, rng: _grey_noise(a, rng.normal(0, sigma, a.shape[:2]))


def _shot_noise(photons: float) -> Shift:
    """Poisson noise: ``photons`` at full scale, so the noise grows with the light."""
    def shift(a, rng):
        lum = (a if a.ndim == 2 else a.mean(axis=2)).astype(np.float64)
        return _grey_noise(a, rng.poisson(lum / 255 * photons) / photons * 255 - lum)
    return shift


def _fewer_pixels(factor: float) -> Shift:
    from PIL import Image

    def shift(a, rng):
        h, w = a.shape[:2]
        small = _pil(a).resize((round(w / factor), round(h / factor)), Image.BILINEAR)
        return _back(small.resize((w, h), Image.BILINEAR), a)
    return shift


def _gamma(g: float) -> Shift:
    return lambda a, rng: np.rint(255 * (a / 255.0) ** g).astype(np.uint8)


def _wider(factor: float) -> Shift:
    """The view ``factor`` times as wide, the surface continued by reflection (numpy's pad),
    shrunk back by Pillow's default (bicubic)."""
    def shift(a, rng):
        h, w = a.shape[:2]
        t, s = round(h * (factor - 1) / 2), round(w * (factor - 1) / 2)
        pad = [(t, t), (s, s)] + [(0, 0)] * (a.ndim - 2)
        return _back(_pil(np.pad(a, pad, mode="reflect")).resize((w, h)), a)
    return shift


def _closer(factor: float) -> Shift:
    def shift(a, rng):
        h, w = a.shape[:2]
        ch, cw = round(h * factor), round(w * factor)
        y, x = (h - ch) // 2, (w - cw) // 2
        return _back(_pil(np.ascontiguousarray(a[y:y + ch, x:x + cw])).resize((w, h)), a)
    return shift


def _turned(degrees: float, corners: str) -> Shift:
    """Pillow's rotate: the corners black (its default), or the surface continued by reflection
    before the turn and cut back after it."""
    from PIL import Image

    def shift(a, rng):
        if corners == "black":
            return _back(_pil(a).rotate(degrees, resample=Image.BILINEAR), a)
        h, w = a.shape[:2]
        t, s = h // 3, w // 3
        big = np.pad(a, [(t, t), (s, s)] + [(0, 0)] * (a.ndim - 2), mode="reflect")
        turned = _back(_pil(big).rotate(degrees, resample=Image.BILINEAR), big)
        return turned[t:t + h, s:s + w]
    return shift


def _warped(degrees: float) -> Shift:
    """OpenCV's warpAffine about the centre, bilinear: its default border is black too."""
    import cv2

    def shift(a, rng):
        h, w = a.shape[:2]
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
        return cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_LINEAR)
    return shift


def _then_jpeg(shift: Shift, quality: int) -> Shift:
    """A shift, and the result saved as JPEG (a de-skewed frame stored compressed)."""
    jpeg = _jpeg(quality)
    return lambda a, rng: jpeg(shift(a, rng), rng)


def _letterboxed(share: float, value: int, axis: int) -> Shift:
    """A frame ``1 - share`` as tall (axis 0) or wide (axis 1) centred on a square of ``value``:
    letterboxing, or a smaller frame pasted on a canvas; its surface stays at its scale."""
    def shift(a, rng):
        n = a.shape[axis]
        t = round(n * share / 2)
        out = a.copy()
        index = [slice(None)] * a.ndim
        for part in (slice(0, t), slice(n - t, n)):
            index[axis] = part
            out[tuple(index)] = value
        return out
    return shift


def shifts() -> dict[str, Shift]:
    """Every shift by name: family, then the setting."""
    from PIL import ImageFilter

    out: dict[str, Shift] = {}
    for r in (0.5, 1, 1.5, 2):
        out[f"blur: Pillow Gaussian radius {r:g}"] = _filter(
            lambda r=r: ImageFilter.GaussianBlur(r))
    out["blur: box radius 1"] = _filter(lambda: ImageFilter.BoxBlur(1))
    out["blur: median 3x3"] = _filter(lambda: ImageFilter.MedianFilter(3))
    for f in (1.5, 2):
        out[f"blur: {f:g}x fewer pixels"] = _fewer_pixels(f)
    out["sharpened: Pillow sharpness 2"] = _enhance("Sharpness", 2.0)
    out["sharpened: Pillow sharpness 3"] = _enhance("Sharpness", 3.0)
    out["sharpened: unsharp mask 2 px 100%"] = _filter(
        lambda: ImageFilter.UnsharpMask(radius=2, percent=100, threshold=3))
    for s in (4, 8, 12, 16):
        out[f"noise: Gaussian sigma {s}"] = _gauss_noise(s)
    for p in (500, 200, 100):
        out[f"noise: shot, {p} photons at full scale"] = _shot_noise(p)
    for q in (20, 40, 60):
        out[f"JPEG: Pillow quality {q}"] = _jpeg(q)
    for c in (0.5, 0.67, 1.5):
        out[f"contrast: Pillow x{c:g}"] = _enhance("Contrast", c)
    for b in (0.6, 0.75, 1.25, 1.4):
        out[f"brightness: Pillow x{b:g}"] = _enhance("Brightness", b)
    for g in (0.5, 2.0):
        out[f"gamma: {g:g}"] = _gamma(g)
    for f in (1.5, 2):
        out[f"field of view: x{f:g}, numpy reflection, Pillow resize"] = _wider(f)
    for f in (0.75, 0.67):
        out[f"field of view: x{f:g}, Pillow resize"] = _closer(f)
    for d in (10, 30, 45):
        out[f"turned by software: {d} degrees, surface continued"] = _turned(d, "reflect")
    for d in (10, 30, 45):
        out[f"turned by software: {d} degrees, black corners"] = _turned(d, "black")
    for d in (3, 15, 40):
        out[f"turned by OpenCV: {d} degrees, black corners"] = _warped(d)
    for d, q in ((10, 90), (30, 75)):
        out[f"turned by software: {d} degrees, black corners, then JPEG {q}"] = _then_jpeg(
            _turned(d, "black"), q)
    out["letterboxed: black bars, 25% of the height"] = _letterboxed(0.25, 0, 0)
    out["letterboxed: grey (114) bars, 25% of the width"] = _letterboxed(0.25, 114, 1)
    out["letterboxed: white bars, 40% of the height"] = _letterboxed(0.4, 255, 0)
    return out


def measure(model: str, data: str, split: str, seed: int = 0) -> dict:
    from benchmarks.common import judged_split
    from training.shifts import shift_rng

    labels, images, row = judged_split(model, data, split)

    result = {"model": model, "data": data, "split": split, "images": int(len(labels)),
              "seed": seed, "clean": row(images), "shifts": {}}
    print(f"{'shift':58s} accuracy  accepted  right among them")
    for name, fn in shifts().items():
        x = np.stack([fn(img, shift_rng(seed, "other-" + name, 0, i))
                      for i, img in enumerate(images)])
        r = result["shifts"][name] = row(x)
        known = "" if "known" not in r else (
            f"  {r['known']:7.1%}  " + ("-" if r["accuracy_on_known"] is None
                                        else f"{r['accuracy_on_known']:7.1%}"))
        print(f"{name:58s} {r['accuracy']:7.1%}{known}", flush=True)
    acc = [r["accuracy"] for r in result["shifts"].values()]
    result["mean_accuracy"] = float(np.mean(acc))
    print(f"mean over {len(acc)} shifts {result['mean_accuracy']:.2%}")
    return result


def main(argv=None) -> int:
    from benchmarks.common import split_main

    return split_main(__doc__, measure, argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""The self-test's checks (no Qt): test images it makes itself, and the checks of the model, its
probabilities and attention maps. inspector.gui.selftest runs them with the window
(``inspector --self-test`` proves that an installed or frozen inspector works, then quits).

It starts the way the app starts (the main window first, the model loading in the background),
then checks, with images it makes itself in a temporary folder:

1. the model loads (the bundled SSDC-MiniNet, or ``--model BUNDLE``);
2. the headless pipeline (``inspector classify``'s) reads 8 images of several sizes, formats and
   depths (grey/colour, 8- and 16-bit, PNG/TIFF/JPEG/BMP) and gives finite probabilities that
   sum to 1;
3. one inspection gives a class activation map and SE block maps of a sane shape in 0..1, with
   the same probabilities as plain classification;
4. the window classifies the same images in its background workers and shows one with its maps,
   and keeps their results for the next time the folder is opened (inspector.result_cache).

Prints one line, ``self-test OK: ...`` (exit status 0) or ``self-test FAILED: <what>: <why>``
on stderr (exit status 1), never a traceback. The user's settings, model library and journals
are not touched (``STEEL_INSPECTOR_HOME`` points to the temporary folder meanwhile). With
``STEEL_INSPECTOR_SELFTEST_SCREENSHOT=shot.png`` it also saves the window as it was checked
(to look at a frozen build's fonts and icons).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .tiles import ClassifierLike, TileSettings

N_IMAGES = 8


class SelfTestError(Exception):
    """A check that failed; the message says what was expected and what was found."""


# --------------------------------------------------------------------------------------------
# Test images and checks (pure functions)


def texture(seed: int, height: int, width: int) -> np.ndarray:
    """A grey float image 0..255 with stripes at a seed-dependent angle, a blob and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    freq = rng.uniform(0.08, 0.5)
    img = 128 + 70 * np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)))
    cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
    img -= 60 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.08 * min(height, width)) ** 2))
    img += rng.normal(0, 10, (height, width))
    return np.clip(img, 0, 255)


def write_test_images(folder: Path) -> list[Path]:
    """Writes N_IMAGES images covering the formats an inspector meets; returns their paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)

    def grey8(seed, h, w):
        return Image.fromarray(texture(seed, h, w).astype(np.uint8), "L")

    def grey16(seed, h, w, scale=257.0):  # scale 16: a 12-bit camera's range in 16-bit pixels
        return Image.fromarray((texture(seed, h, w) * scale).astype(np.uint16))

    def rgb(seed, h, w):
        base = texture(seed, h, w)
        tint = np.stack([base * 1.0, base * 0.9, base * 0.8], axis=2)
        return Image.fromarray(tint.clip(0, 255).astype(np.uint8), "RGB")

    images = [
        ("01_grey8.png", grey8(1, 200, 200)),
        ("02_grey8.bmp", grey8(2, 128, 160)),
        ("03_grey16.png", grey16(3, 256, 256)),
        ("04_grey12in16.tif", grey16(4, 300, 220, scale=16.0)),
        ("05_colour.jpg", rgb(5, 480, 640)),
        ("06_colour.bmp", rgb(6, 200, 200)),
        ("07_colour_alpha.png", rgb(7, 96, 120).convert("RGBA")),
        ("08_grey8_large.tif", grey8(8, 1200, 1600)),
    ]
    paths = []
    for name, img in images[:N_IMAGES]:
        img.save(folder / name)
        paths.append(folder / name)
    return paths


def check_probabilities(probs, n_classes: int, what: str) -> np.ndarray:
    """Raises SelfTestError unless ``probs`` is (n_classes,) of finite values 0..1 summing to 1."""
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (n_classes,):
        raise SelfTestError(f"{what}: {p.shape} probabilities, expected ({n_classes},)")
    if not np.all(np.isfinite(p)):
        raise SelfTestError(f"{what}: probabilities are not finite ({p.round(4).tolist()})")
    if p.min() < -1e-6 or p.max() > 1 + 1e-6:
        raise SelfTestError(f"{what}: probabilities outside 0..1 ({p.round(4).tolist()})")
    if abs(p.sum() - 1.0) > 1e-3:
        raise SelfTestError(f"{what}: probabilities sum to {p.sum():.4f}, not 1")
    return p


def check_map(m, what: str, max_side: int) -> tuple[int, int]:
    """Raises SelfTestError unless ``m`` is a finite (h, w) map in 0..1, 2 <= h, w <= max_side."""
    a = np.asarray(m, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 2 or max(a.shape) > max_side:
        raise SelfTestError(f"{what}: map of shape {a.shape}, expected (h, w) with 2..{max_side}")
    if not np.all(np.isfinite(a)):
        raise SelfTestError(f"{what}: map has values that are not finite")
    if a.min() < -1e-6 or a.max() > 1 + 1e-6:
        raise SelfTestError(f"{what}: map outside 0..1 ({a.min():.3f}..{a.max():.3f})")
    return a.shape


def check_model(clf: ClassifierLike, paths: list[Path]) -> tuple[dict[str, np.ndarray], tuple[int, int]]:
    """The headless checks: every image classified by the batch pipeline, an in-memory 16-bit
    frame prepared, one inspection with its maps. Returns the probabilities per file name and the
    shape of the class activation map."""
    from .batch import classify_paths

    n = len(clf.class_names)
    if n < 2:
        raise SelfTestError(f"the model has {n} class(es)")
    probs: dict[str, np.ndarray] = {}
    # tiled as the command and the window tile by default (the 1600x1200 image is)
    for r in classify_paths(clf, paths, batch_size=4, workers=2, tiling=TileSettings()):
        if r.error is not None:
            raise SelfTestError(f"classifying {r.path.name}: {r.error}")
        probs[r.path.name] = check_probabilities(r.probs, n, f"classifying {r.path.name}")
    if len(probs) != len(paths):
        raise SelfTestError(f"classified {len(probs)} of {len(paths)} images")

    frame = (texture(11, 480, 640) * 257).astype(np.uint16)  # a 16-bit camera frame
    x = clf.prepare(frame)
    if x.shape != (clf.input_size, clf.input_size, 3) or x.dtype != np.uint8:
        raise SelfTestError(f"preparing a 16-bit frame gave {x.shape} {x.dtype}")
    check_probabilities(clf.classify(x[None])[0], n, "classifying a 16-bit frame")

    first = paths[0]
    ins = clf.inspect(clf.load(first))
    p = check_probabilities(ins.probs, n, f"inspecting {first.name}")
    if not np.allclose(p, probs[first.name], atol=2e-3):
        raise SelfTestError(f"inspecting {first.name}: probabilities differ from classification "
                            f"({p.round(3).tolist()} vs {probs[first.name].round(3).tolist()})")
    cam_shape = check_map(ins.cam(), f"class activation map of {first.name}", clf.input_size)
    if not ins.se_blocks:
        raise SelfTestError("the inspection has no SE blocks")
    for block in ins.se_blocks:
        check_map(block.feature_map, f"SE block {block.name} map", clf.input_size)
        w = np.asarray(block.weights)
        if w.ndim != 1 or not np.all(np.isfinite(w)) or w.min() < 0 or w.max() > 1:
            raise SelfTestError(f"SE block {block.name}: channel weights not in 0..1")
    return probs, cam_shape


def process_age() -> float | None:
    """Seconds since this process started (Linux, Windows), or None where unknown."""
    try:
        if sys.platform.startswith("linux"):
            with open("/proc/self/stat", encoding="ascii") as f:
                start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
            with open("/proc/uptime", encoding="ascii") as f:
                uptime = float(f.read().split()[0])
            return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
        if sys.platform == "win32":
            import ctypes
            from ctypes import wintypes

            k32 = ctypes.windll.kernel32
            k32.GetCurrentProcess.restype = wintypes.HANDLE
            times = [wintypes.FILETIME() for _ in range(4)]
            now = wintypes.FILETIME()
            if not k32.GetProcessTimes(k32.GetCurrentProcess(), *map(ctypes.byref, times)):
                return None
            k32.GetSystemTimeAsFileTime(ctypes.byref(now))

            def ticks(ft):
                return (ft.dwHighDateTime << 32) | ft.dwLowDateTime

            return max(0.0, (ticks(now) - ticks(times[0])) / 1e7)
    except Exception:
        return None
    return None


def needs_offscreen(environ=os.environ, platform: str = sys.platform) -> bool:
    """True on Linux without a display (a CI runner, ssh): Qt would abort without one."""
    return (platform.startswith("linux") and "QT_QPA_PLATFORM" not in environ
            and not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"))

"""Renders the main window offscreen with an attention overlay and saves it under
docs/screenshots/ (main_window.png: grid + SE block overlay; main_window_list.png: list + CAM).

    nice -n 19 .venv/bin/python scripts/screenshot_main_window.py [--bundle DIR] [--images DIR]

The README's: ``--bundle resources/ssdc-mininet --images DIR`` with DIR holding eight test-split
images of each class (the bundle's ``split.json``; copied to a temporary folder, not committed).

Without --bundle it trains a small stand-in bundle on synthetic 200x200 textures (tests/synth)
once, under /tmp, so that the maps and probabilities differ between images. The images shown
are the same synthetic textures: no data-set images are needed or committed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def make_folder(root: Path) -> Path:
    from synth import CLASSES, texture

    import shutil

    folder = root / "coil-2291"
    shutil.rmtree(folder, ignore_errors=True)  # no images left from an earlier --images run
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for k in range(8):
        for c, name in enumerate(CLASSES):
            img = texture(c, 200, seed=100 + k).astype(np.float32)
            if k % 4 == 3:  # some blurred, noisy ones: lower confidence, "needs review"
                img = 0.5 * img + 0.5 * texture((c + 1) % 6, 200, seed=k).astype(np.float32)
            img = img * rng.uniform(0.8, 1.1) + rng.normal(0, 6, img.shape)
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{name}_{k:02d}.bmp")
    return folder


def train_stand_in(out: Path, size: int = 200, epochs: int = 25) -> Path:
    """A briefly trained SSDC-MiniNet on the synthetic textures (so that its maps and
    probabilities mean something in a screenshot), with its LiteRT inspection model so that the
    window runs as it does with a real bundle; a minute on two cores."""
    import keras

    from synth import CLASSES, texture
    from training.bundle import CARD_FILE, MODEL_FILE, write_bundle_atomic, write_json
    from training.inspection_export import build_inspection, write_inspection
    from training.model import build_ssdc_mininet

    keras.utils.set_random_seed(0)
    model = build_ssdc_mininet("B", len(CLASSES), size)
    x = np.stack([np.repeat(texture(c, size, seed=k)[..., None], 3, axis=2)
                  for c in range(len(CLASSES)) for k in range(6)]).astype(np.float32)
    y = keras.utils.to_categorical(np.repeat(np.arange(len(CLASSES)), 6), len(CLASSES))
    model.compile(keras.optimizers.Adam(3e-3), "categorical_crossentropy")
    model.fit(x, y, batch_size=12, epochs=epochs, verbose=0)

    def fill(tmp: Path) -> None:
        model.save(tmp / MODEL_FILE)
        write_json(tmp / CARD_FILE, {"name": "Test-MiniNet", "version": "0.0.1",
                                     "class_names": list(CLASSES), "input_size": size,
                                     "parameters": int(model.count_params())})
        write_inspection(tmp, *build_inspection(model, test_images=x))   # LiteRT, as bundles have

    return write_bundle_atomic(out, fill)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", help="model bundle (e.g. resources/ssdc-mininet)")
    ap.add_argument("--images", help="a folder of images to show instead of synthetic textures "
                                     "(its files are copied to a temporary folder)")
    ap.add_argument("--pick", default="scratches", help="class of the image to select")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args()
    work = Path(tempfile.gettempdir()) / "inspector-screenshots"
    bundle = Path(args.bundle) if args.bundle else work / "stand-in-200"
    if not (bundle / "model_card.json").exists():
        print("training a stand-in bundle on synthetic 200x200 textures ...", flush=True)
        train_stand_in(bundle)
    import shutil

    shutil.rmtree(work / "home", ignore_errors=True)  # default settings: grid, 80 % threshold
    os.environ["STEEL_INSPECTOR_HOME"] = str(work / "home")
    if args.images:
        folder = work / "coil-2291"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(args.images, folder)
    else:
        folder = make_folder(work)
    for stale in folder.glob("*.jsonl"):
        stale.unlink()

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True)
    from inspector.session import UNSURE
    from shot_window import classified_window, wait

    w = classified_window(bundle, folder)
    s = w.session
    target = next((i for i in range(8, len(s)) if s.predicted_name(i) == args.pick
                   and not s.needs_review(i)), None)
    if target is None:   # five verdicts are given to the images before it
        raise SystemExit(f"no image after the eighth in {folder} is predicted {args.pick!r} "
                         "above the needs-review threshold: choose another --pick or folder")
    # a few verdicts just before it, as after some minutes of review: accepted, overridden, unsure
    for i, verdict in zip(range(target - 5, target), ("accept", "accept", "patches", UNSURE, "accept")):
        w.select(i)
        while w.shown_index() != i:   # a verdict goes only to the image on screen
            wait(w.inspection_shown, 10000)
        if verdict == "accept":
            w.accept_prediction()
        else:
            w.set_verdict(verdict, advance=False)
    w.select(target)
    while w.shown_index() != target:
        wait(w.inspection_shown, 10000)
    w.panel.set_source(w.classifier.se_block_names[-1])
    w.panel.set_opacity(0.55)
    for _ in range(20):
        app.processEvents()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(out / "main_window.png"))

    w._set_grid(False)
    w.set_filter("Needs review")
    r = w.thumb_model.rowCount()
    if not r:  # nothing below the threshold (a well-trained model): show the whole list
        w.set_filter("All images")
        r = w.thumb_model.rowCount()
    if r:
        idx = w.thumb_model.session_index(0)
        w.select(idx)
        while w.shown_index() != idx:
            wait(w.inspection_shown, 10000)
    w.panel.set_source("cam")
    for _ in range(20):
        app.processEvents()
    w.grab().save(str(out / "main_window_list.png"))
    print(f"saved {out / 'main_window.png'} and {out / 'main_window_list.png'}")
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

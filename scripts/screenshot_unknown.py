"""Renders the main window offscreen with images the model flags "unknown - not a known defect"
and saves docs/screenshots/main_window_unknown.png.

    nice -n 19 .venv/bin/python scripts/screenshot_unknown.py
    nice -n 19 .venv/bin/python scripts/screenshot_unknown.py --bundle resources/ssdc-mininet \
        --images DIR --select exp1_num_108719

Without ``--bundle``: uses the stand-in bundle of scripts/screenshot_main_window.py (trained once
under /tmp on synthetic textures), fits an unknown detector into a copy of it on more of those
textures (training.detect, as training does), and shows a folder of the textures mixed with
images of another kind (checkerboards with blotches) that no class covers.

With ``--bundle`` and ``--images``: that model on that folder (the README's screenshot: the
bundled model, NEU images Cr_10, Cr_100, Sc_1, Sc_10 and the magnetic tiles
blowhole/exp1_num_108719.jpg and exp1_num_108889.jpg), the image whose name holds ``--select``
shown, and Enter pressed on it (a flagged image has no class to accept: the status bar says so).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

SIZE = 200


def plant_like(seeds) -> tuple[np.ndarray, np.ndarray]:
    """Textures of the six classes drawn as make_folder draws them (brightness, noise), the
    detector's training and validation images."""
    from synth import texture

    rng = np.random.default_rng(11)
    x, y = [], []
    for c in range(6):
        for k in seeds:
            img = texture(c, SIZE, seed=k).astype(np.float32) * rng.uniform(0.8, 1.1)
            img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
            x.append(np.repeat(img[..., None], 3, axis=2))
            y.append(c)
    return np.stack(x), np.array(y)


def shoot_folder(bundle: Path, folder: Path, select: str) -> int:
    """The window with ``bundle`` on ``folder``, the image named like ``select`` shown and Enter
    pressed on it, saved as the README's screenshot."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from shot_window import classified_window, wait

    # a copy of the images' folder: the window writes its journal beside the images, and a
    # verdict journaled there by an earlier run (or by a user) must neither show nor be touched
    work = Path(tempfile.mkdtemp(prefix="inspector-shot-"))
    copy = work / folder.name
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("*.jsonl"))
    os.environ["STEEL_INSPECTOR_HOME"] = str(work / "home")
    app = QApplication.instance() or QApplication([])
    w = classified_window(bundle, copy, size=(1400, 860))
    s = w.session
    target = next((i for i in range(len(s)) if select in s.items[i].path.name), None)
    if target is None:
        raise SystemExit(f"no image in {folder} has {select!r} in its name")
    w.select(target)
    while w.shown_index() != target:
        wait(w.inspection_shown, 10000)
    for _ in range(30):
        app.processEvents()
    QTest.keyClick(w.list, Qt.Key.Key_Return)
    for _ in range(30):
        app.processEvents()
    out = ROOT / "docs" / "screenshots" / "main_window_unknown.png"
    w.grab().save(str(out))
    print(f"saved {out}; status bar: {w.statusBar().currentMessage()}")
    w.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, help="a model bundle (default: the synthetic stand-in)")
    ap.add_argument("--images", type=Path, help="with --bundle: the folder to open")
    ap.add_argument("--select", default="", help="with --bundle: show the image whose name holds this")
    args = ap.parse_args()
    if args.bundle:
        if not args.images:
            ap.error("--bundle needs --images")
        return shoot_folder(args.bundle, args.images, args.select)
    from screenshot_main_window import make_folder, train_stand_in
    from synth import foreign_image
    from training.bundle import load_bundle
    from training.detect import fit_model_detector, write_detector

    work = Path(tempfile.gettempdir()) / "inspector-screenshots"
    base = work / "stand-in-200"
    if not (base / "model_card.json").exists():
        print("training a stand-in bundle on synthetic 200x200 textures ...", flush=True)
        train_stand_in(base)
    bundle_dir = work / "stand-in-200-unknown"
    if not (bundle_dir / "unknown.npz").exists():
        shutil.rmtree(bundle_dir, ignore_errors=True)
        shutil.copytree(base, bundle_dir)
        model = load_bundle(bundle_dir).model
        x_train, y_train = plant_like(range(1000, 1016))
        x_val, y_val = plant_like(range(2000, 2006))
        write_detector(bundle_dir, fit_model_detector(model, x_train, y_train, x_val, y_val, 6))
    shutil.rmtree(work / "home", ignore_errors=True)
    os.environ["STEEL_INSPECTOR_HOME"] = str(work / "home")
    folder = make_folder(work / "unknown")
    for stale in folder.glob("*.jsonl"):
        stale.unlink()
    for k in range(6):
        Image.fromarray(foreign_image(SIZE, seed=k)).save(folder / f"red_scale_{k:02d}.bmp")

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from shot_window import classified_window, wait

    w = classified_window(bundle_dir, folder)
    s = w.session
    flagged = [i for i in range(len(s)) if s.is_unknown(i)]
    print(f"{len(flagged)} of {len(s)} flagged unknown: "
          + ", ".join(s.items[i].path.name for i in flagged))
    from inspector.session import Sort

    w.set_filter("All images", sort=Sort.PATH)
    target = next(i for i in flagged if "red_scale" in s.items[i].path.name)
    w.select(target)
    while w.shown_index() != target:
        wait(w.inspection_shown, 10000)
    w.list.scrollTo(w.thumb_model.index(w.thumb_model.row_of(target)))
    for _ in range(20):
        app.processEvents()
    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(out / "main_window_unknown.png"))
    print(f"saved {out / 'main_window_unknown.png'}")
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

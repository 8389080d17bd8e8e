"""Renders the live camera window offscreen and saves docs/screenshots/camera_window.png.

    .venv/bin/python scripts/screenshot_camera.py --images FOLDER [--bundle resources/ssdc-mininet]
        [--tiles N --out docs/screenshots/camera_window_tiles.png]

A 640x480 video is written from six images of FOLDER (tiled 3x2 at 200x200, each frame with
fresh sensor noise); the region of interest covers one tile, or with --tiles the six images
(the frame less its margin) are classified in tiles of N px. Without --images synthetic textures are used. Nothing is written to
the repository except the screenshot.
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

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def write_video(path: Path, images: list[np.ndarray], frames: int = 90) -> None:
    rng = np.random.default_rng(0)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
    for _ in range(frames):
        frame = np.full((480, 640), 40, np.uint8)
        for k, img in enumerate(images[:6]):
            r, c = divmod(k, 3)
            noisy = np.clip(img.astype(np.float32) + rng.normal(0, 2, img.shape), 0, 255)
            frame[40 + r * 200:40 + (r + 1) * 200, 20 + c * 200:20 + (c + 1) * 200] = noisy
        w.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    w.release()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default=str(ROOT / "resources" / "ssdc-mininet"))
    ap.add_argument("--images")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots" / "camera_window.png"))
    ap.add_argument("--size", default="1240x760", help="window size, WIDTHxHEIGHT")
    ap.add_argument("--tiles", type=int, default=0,
                    help="classify the whole frame in tiles of this side (no region)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="camera-shot-"))
    os.environ["STEEL_INSPECTOR_HOME"] = str(work / "home")
    from training.images import is_image_file, load_image

    if args.images:
        files = sorted(p for p in Path(args.images).iterdir() if is_image_file(p))
        picks = [files[i * len(files) // 6] for i in range(6)]
        images = [load_image(p, 200)[..., 0] for p in picks]
    else:
        from synth import texture

        images = [texture(k, 200, seed=1) for k in range(6)]
    video = work / "line.mp4"
    write_video(video, images)

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from inspector.camera import Roi, Source
    from inspector.engine import load_classifier
    from inspector.gui.camera_window import CameraWindow

    clf = load_classifier(args.bundle)
    win = CameraWindow(lambda: clf, camera_probe=lambda: [])
    win.resize(*(int(v) for v in args.size.lower().split("x")))
    win.show()
    win.overlay_check.setChecked(not args.tiles)
    if args.tiles:
        win.tile_check.setChecked(True)
        win.tile_spin.setValue(args.tiles)
    win.open_source(Source.file(video))
    # the six images without the frame's margin, or the middle image of the lower row
    win.set_roi(Roi(20, 40, 600, 400) if args.tiles else Roi(220, 240, 200, 200))
    win.set_data_folder(work / "data")

    def wait(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    wait(4000)
    win.set_paused(True)
    wait(300)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    win.grab().save(args.out)
    print(f"saved {args.out}")
    win.close()
    app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())

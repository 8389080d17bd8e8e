"""Renders the main window offscreen with a large image classified tile by tile and saves
docs/screenshots/main_window_tiles.png.

    nice -n 19 .venv/bin/python scripts/screenshot_tiles.py --data ../shared/datasets/neu-cls

The large image is a 1600x1200 mosaic of NEU rolled-in scale images (8x6 of them) with one
scratches image in it, classified by the bundled model at its own scale (200 px tiles,
overlap 0.25); the window shows the deciding tile. Needs the NEU images (not committed).
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

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def mosaic(data: Path, out: Path, base: str = "rolled-in_scale", odd: str = "scratches") -> Path:
    files = sorted((data / base).iterdir())[-48:]
    rows = []
    for r in range(6):
        rows.append(np.concatenate([np.asarray(Image.open(f).convert("L").resize((200, 200)))
                                    for f in files[r * 8:(r + 1) * 8]], axis=1))
    img = np.concatenate(rows, axis=0)
    img[700:900, 1100:1300] = np.asarray(Image.open(sorted((data / odd).iterdir())[-1])
                                         .convert("L").resize((200, 200)))
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(out / "strip_0001.png")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--out", default=ROOT / "docs" / "screenshots" / "main_window_tiles.png", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tiles-shot-"))
    os.environ["STEEL_INSPECTOR_HOME"] = str(tmp / "home")
    folder = mosaic(args.data, tmp / "line-3")

    from PySide6.QtWidgets import QApplication

    from shot_window import classified_window

    app = QApplication.instance() or QApplication([])
    w = classified_window(ROOT / "resources" / "ssdc-mininet", folder, (1500, 900))
    while not (w.shown_index() == 0 and w.panel.view.tile_grid is not None):
        app.processEvents()
    for _ in range(20):
        app.processEvents()
    w.grab().save(str(args.out))
    t = w.tiles_of(0)
    print(args.out, "verdict:", w.session.predicted_name(0), "deciding tile:", t.tiles[t.winner],
          t.label(t.winner), f"{t.confidence(t.winner):.3f}",
          {lab: [t.label(i) for i in range(len(t.tiles))].count(lab)
           for lab in set(t.label(i) for i in range(len(t.tiles)))})
    w.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

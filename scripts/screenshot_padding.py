"""Renders the main window offscreen with a de-skewed frame saved as JPEG (a NEU scratches image
turned by 20 degrees, its corners black, then JPEG quality 80) and saves
docs/screenshots/main_window_padding.png: the engine reads the surface beside the black corners
(training.padding) and the caption says so.

    nice -n 19 .venv/bin/python scripts/screenshot_padding.py --data ../shared/datasets/neu-cls

Needs the NEU images (not committed).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from PIL import Image  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--out", default=ROOT / "docs" / "screenshots" / "main_window_padding.png",
                    type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="padding-shot-"))
    os.environ["STEEL_INSPECTOR_HOME"] = str(tmp / "home")
    folder = tmp / "line-2"
    folder.mkdir()
    source = sorted((args.data / "scratches").iterdir())[-1]
    turned = Image.open(source).convert("L").rotate(20, resample=Image.BILINEAR)
    turned.save(folder / "scratches_deskewed.jpg", quality=80)

    from PySide6.QtWidgets import QApplication

    from shot_window import classified_window

    app = QApplication.instance() or QApplication([])
    w = classified_window(ROOT / "resources" / "ssdc-mininet", folder, (1480, 900))
    w.select(0)
    deadline = time.monotonic() + 30
    while w.shown_index() != 0 and time.monotonic() < deadline:
        app.processEvents()
    for _ in range(20):
        app.processEvents()
    w.grab().save(str(args.out))
    it = w.session.items[0]
    print(args.out, w.session.predicted_name(0), f"{it.confidence:.3f}",
          f"padding {it.padding:.3f}")
    w.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

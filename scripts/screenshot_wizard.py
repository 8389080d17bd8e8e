"""Screenshots of the retraining wizard and the model manager (docs/screenshots/wizard-*.png).

Runs the wizard offscreen on small synthetic images with a briefly trained 64x64 stand-in model
(a minute or two on 2 cores):

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshot_wizard.py
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
TMP = Path(tempfile.mkdtemp(prefix="wizard-shots-"))
os.environ["STEEL_INSPECTOR_HOME"] = str(TMP / "home")
OUT = ROOT / "docs" / "screenshots"


def wait(signal, ms: int = 600_000) -> None:
    """Training takes minutes: the screenshots' wait with a longer limit."""
    from shot_window import wait as wait_for

    wait_for(signal, ms)


def plant_data(root: Path) -> Path:
    """Five 'plant' classes at 128x128 with unequal sizes and the usual slips: an unreadable
    file, an image filed under two classes, one class saved only as JPEG."""
    from PIL import Image

    from synth import make_dataset

    names = ("edge_crack", "oil_stain", "roll_mark", "scale_pit", "weld_seam")
    make_dataset(root, classes=names, per_class=40, size=128)
    for name, keep in zip(names, (40, 34, 28, 22, 12)):
        for f in sorted((root / name).iterdir())[keep:]:
            f.unlink()
    for f in list((root / "weld_seam").iterdir()):
        Image.open(f).save(f.with_suffix(".jpg"), quality=92)
        f.unlink()
    (root / "oil_stain" / "IMG_2041.png").write_bytes(b"\x89PNG\r\n\x1a\n(cut off in transfer)")
    shutil.copy(root / "roll_mark" / "ro_3.png", root / "scale_pit" / "sc_from_camera2.png")
    return root


def main() -> int:
    import argparse

    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]
                            + f" Overwrites the wizard and model manager PNGs in {OUT}."
                            ).parse_args()   # --help says what it does instead of doing it
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    import inspector.gui  # noqa: F401  (installs the refcount guard)
    from inspector.gui.model_manager import ModelManagerDialog
    from inspector.gui.wizard import RetrainWizard
    from synth import make_bundle

    OUT.mkdir(parents=True, exist_ok=True)
    bundle = make_bundle(TMP / "current")
    data = plant_data(TMP / "plant")
    w = RetrainWizard(bundle)
    w.resize(1000, 760)
    w.show()
    page = w.data_page
    page.set_folder(data)
    wait(page.checked)
    w.grab().save(str(OUT / "wizard-data-problems.png"))
    page.exclude_box.setChecked(True)
    w.next()
    if w.seconds_per_image is None:
        wait(w.settings_page.measured)
    w.settings_page.advanced_toggle.setChecked(True)
    w.grab().save(str(OUT / "wizard-settings.png"))
    w.settings_page.advanced_toggle.setChecked(False)
    w.settings_page.epochs.setValue(14)
    w.next()
    wait(w.training_page.epoch_done)
    for _ in range(6):
        wait(w.training_page.epoch_done)
    w.grab().save(str(OUT / "wizard-training.png"))  # mid-run: curves, time left, Stop
    wait(w.training_page.finished)
    w.next()
    wait(w.evaluation_page.evaluated)
    w.grab().save(str(OUT / "wizard-evaluation.png"))
    w.next()
    w.grab().save(str(OUT / "wizard-finish.png"))
    w.accept()
    dlg = ModelManagerDialog()
    dlg.show()
    dlg.grab().save(str(OUT / "model-manager.png"))
    dlg.close()
    shutil.rmtree(TMP, ignore_errors=True)
    print(f"screenshots in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

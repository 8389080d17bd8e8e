"""The ``inspector`` command: ``inspector [PATH...] [--model BUNDLE]`` opens the window;
``inspector classify PATH... --out results.csv`` classifies without one (see inspector.batch)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inspector",
        description="Steel Inspector: review steel-surface images with SSDC-MiniNet.",
        epilog="Headless: inspector classify PATH... --out results.csv  (inspector classify -h)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="a folder or image files to open")
    p.add_argument("--model", metavar="BUNDLE", help="model bundle folder (default: the active "
                   "model of the library, else the bundled SSDC-MiniNet)")
    p.add_argument("--self-test", action="store_true",
                   help="start, load the model, classify a test image and quit (exit status 0 = OK)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if argv and argv[0] == "classify":
        from .batch import main as classify_main

        return classify_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.self_test:
        return self_test(args)
    return run_gui(args)


def run_gui(args: argparse.Namespace) -> int:
    from PySide6.QtWidgets import QApplication

    import pyqtgraph as pg

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Steel Inspector")
    app.setOrganizationName("steel-inspector")
    pg.setConfigOptions(antialias=True)

    from .gui.main_window import MainWindow

    window = MainWindow(model_path=args.model, paths=[Path(p) for p in args.paths])
    window.show()
    return app.exec()


def self_test(args: argparse.Namespace) -> int:
    """Hook for packaged builds: ``inspector --self-test`` (the packaging engineer may replace
    this with inspector.selftest.run(args)). Loads the model, classifies one synthetic image
    offscreen-safe, prints one line and returns 0, or prints the problem and returns 1."""
    try:
        from .selftest import run as packaged_self_test  # type: ignore[import-not-found]
    except ImportError:
        packaged_self_test = None
    if packaged_self_test is not None:
        return int(packaged_self_test(args))
    import numpy as np

    from .batch import startup_model_path
    from .engine import load_classifier

    try:
        clf = load_classifier(startup_model_path(args.model))
        probs = clf.classify(np.full((1, clf.input_size, clf.input_size, 3), 128, np.uint8))
    except Exception as exc:
        print(f"self-test FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"self-test OK: {clf.title}, {len(clf.class_names)} classes, {clf.device}, "
          f"probabilities sum {float(probs.sum()):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

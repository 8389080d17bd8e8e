"""The ``inspector`` command: ``inspector [PATH...] [--model BUNDLE]`` opens the window;
``inspector classify PATH... --out results.csv`` classifies without one (see inspector.batch);
``inspector retrain --data DIR`` retrains on a terminal (see inspector.retrain);
``inspector --self-test`` checks an installation (see inspector.gui.selftest).

The entry point: the one module outside inspector.gui that starts it."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inspector",
        description="Steel Inspector: review steel-surface images with SSDC-MiniNet.",
        epilog="Headless: inspector classify PATH... --out results.csv  (inspector classify -h); "
               "inspector retrain --data DIR  (inspector retrain -h)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="a folder or image files to open")
    p.add_argument("--model", metavar="BUNDLE", help="model bundle folder (default: the active "
                   "model of the library, else the bundled SSDC-MiniNet)")
    p.add_argument("--self-test", action="store_true",
                   help="start, load the model, classify test images headless and in the window, "
                   "quit; exit status 0 = OK (see inspector.gui.selftest)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if argv and argv[0] == "classify":
        from .batch import main as classify_main

        return classify_main(argv[1:])
    if argv and argv[0] == "retrain":  # the wizard's steps on a terminal (also when frozen)
        from .retrain import main as retrain_main

        return retrain_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.self_test:
        return self_test(args)
    return run_gui(args)


def run_gui(args: argparse.Namespace) -> int:
    from .gui.launch import run_window

    return run_window(args.paths, args.model)


def self_test(args: argparse.Namespace) -> int:
    """``inspector --self-test``: see inspector.gui.selftest (prints one line; 0 = OK)."""
    from .gui.selftest import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())

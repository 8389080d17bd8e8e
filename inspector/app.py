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
    p.add_argument("--version", action="store_true",
                   help="print the program's version and the bundled model's, and exit")
    p.add_argument("--self-test", action="store_true",
                   help="start, load the model, classify test images headless and in the window, "
                   "quit; exit status 0 = OK (see inspector.gui.selftest)")
    return p


def _version_text() -> str:
    """``inspector --version``: the program's and the bundled model's versions (no TensorFlow)."""
    import json

    from inspector import __version__
    from inspector.paths import bundled_model_dir

    try:
        card = json.loads((bundled_model_dir() / "model_card.json").read_text(encoding="utf-8"))
        model = f"{card.get('name', '?')} {card.get('version', '?')}"
    except (OSError, ValueError) as exc:
        model = f"not readable ({exc})"
    return f"Steel Inspector {__version__}; bundled model {model}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _windowed() and argv and (argv[0] in ("classify", "retrain") or
                                 any(a in ("-h", "--help", "--version") for a in argv)):
        return _tell_to_use_cli(argv[0] if argv[0] in ("classify", "retrain") else "")
    if argv and argv[0] in ("classify", "retrain"):
        from training.console import utf8_stdout

        utf8_stdout()
        return _command(argv[0], argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(_version_text())
        return 0
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        word = missing[0]
        if not any(sep in word for sep in "/\\.") and word == args.paths[0]:
            parser.error(f"unknown command {word!r}: the commands are classify and retrain "
                         "(inspector classify -h); anything else is a folder or image files "
                         "to open")
        parser.error("no such file or folder: " + ", ".join(missing))
    if args.self_test:
        return self_test(args)
    problem = display_problem()
    if problem:
        print(f"inspector: {problem}", file=sys.stderr)
        return 2
    return run_gui(args)


def _windowed() -> bool:
    """The windowed Windows executable (build.spec: ``inspector.exe``, console=False): no
    standard output or error at all (sys.stdout is None), and cmd.exe does not wait for it."""
    return sys.platform == "win32" and sys.stdout is None and sys.stderr is None


def _tell_to_use_cli(command: str) -> int:
    """A command given to the windowed executable: it would run unseen (classify without
    --out discarded its results; retrain failed on its progress bar), so it says where the
    command runs instead, in a message box, and ends."""
    import ctypes

    what = f"inspector-cli {command} ..." if command else "inspector-cli --help"
    ctypes.windll.user32.MessageBoxW(
        None, f"inspector.exe is the window and has no console.\n\nRun {what} from a "
        "Command Prompt in the same folder for the command line.", "Steel Inspector", 0x40)
    return 2


def _command(name: str, argv: list[str]) -> int:
    """``inspector classify`` or ``inspector retrain`` (the wizard's steps on a terminal, also
    when frozen). A Ctrl+C while their libraries load (a second or two; the commands handle it
    themselves after that) ends the run with one line, not a traceback; interrupted inside a
    C extension's start-up it surfaces as that extension's ImportError, told apart by the
    signal having come."""
    import signal

    came: list[int] = []

    def interrupt(signum, frame):
        came.append(signum)
        raise KeyboardInterrupt

    before = None
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:   # ignored (nohup &): stays so
        try:
            before = signal.signal(signal.SIGINT, interrupt)
        except (ValueError, OSError):   # not the main thread (a test): as it is
            pass
    try:
        try:
            if name == "classify":
                from .batch import main as run
            else:
                from .retrain import main as run
        finally:
            if before is not None:
                signal.signal(signal.SIGINT, before)
    except (KeyboardInterrupt, ImportError) as exc:
        if isinstance(exc, ImportError) and not came:
            raise
        print(f"\ninspector {name}: interrupted while starting", file=sys.stderr)
        return 130
    return run(argv)


def display_problem(env=None, platform: str | None = None) -> str | None:
    """Why the window cannot open here (a Linux session without a display, e.g. over SSH),
    said before Qt aborts the process; None where it can."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return ("no display to open the window on (DISPLAY is not set). Without a display: "
            "inspector classify PATH... --out results.csv, inspector retrain --data DIR")


def run_gui(args: argparse.Namespace) -> int:
    from .gui.launch import run_window

    return run_window(args.paths, args.model)


def self_test(args: argparse.Namespace) -> int:
    """``inspector --self-test``: see inspector.gui.selftest (prints one line; 0 = OK)."""
    from .gui.selftest import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())

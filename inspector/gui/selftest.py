"""``inspector --self-test`` with the window: starts the way the app starts (the main window
first, the model loading in the background), runs the checks of inspector.selftest headless and
in the window, prints one line and returns 0 (OK) or 1 (FAILED)."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .. import selftest as checks
from ..selftest import SelfTestError, needs_offscreen, process_age
from .launch import create_app

WINDOW_TIMEOUT_S = 60.0
MODEL_TIMEOUT_S = 300.0      # a first start on a slow machine (antivirus scanning the DLLs)
GUI_TIMEOUT_S = 120.0
SCREENSHOT_ENV = "STEEL_INSPECTOR_SELFTEST_SCREENSHOT"  # a PNG path: the window, once checked


# --------------------------------------------------------------------------------------------
# Running Qt without sleeping


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Runs the Qt event loop until ``condition()`` holds (checked every 10 ms) or the time is
    up; returns the seconds waited, raises SelfTestError on timeout."""
    from PySide6.QtCore import QEventLoop, QTimer

    start = time.perf_counter()
    if condition():
        return 0.0
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(10)
    poll.timeout.connect(lambda: condition() and loop.quit())
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    poll.start()
    deadline.start(int(timeout_s * 1000))
    loop.exec()
    poll.stop()
    deadline.stop()
    if not condition():
        raise SelfTestError(f"{what} (gave up after {timeout_s:.0f} s)")
    return time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# The self-test


def run(args: argparse.Namespace) -> int:
    """Runs the self-test; prints one line and returns 0 (OK) or 1 (FAILED)."""
    age_at_start = process_age()
    started = time.perf_counter()
    state = {"step": "starting"}
    old_home = os.environ.get("STEEL_INSPECTOR_HOME")
    try:
        with tempfile.TemporaryDirectory(prefix="steel-inspector-selftest-",
                                         ignore_cleanup_errors=True) as tmp:
            os.environ["STEEL_INSPECTOR_HOME"] = str(Path(tmp) / "home")
            summary = _run(args, Path(tmp), state)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}" if not isinstance(exc, SelfTestError) else str(exc)
        print(f"self-test FAILED: {state['step']}: {' '.join(detail.split())}", file=sys.stderr,
              flush=True)
        return 1
    finally:
        if old_home is None:
            os.environ.pop("STEEL_INSPECTOR_HOME", None)
        else:
            os.environ["STEEL_INSPECTOR_HOME"] = old_home
    shown, ready = summary["window_s"], summary["model_s"]

    def since_start(seconds: float) -> str:
        return (f" ({seconds + age_at_start:.2f} s after the program started)"
                if age_at_start is not None else "")

    print(f"self-test OK: {summary['title']}, {summary['classes']} classes, {summary['device']}, "
          f"{summary['images']} images (the window classifies {summary['where']}), "
          f"attention map {summary['cam'][0]}x{summary['cam'][1]}, "
          f"window shown in {shown:.2f} s{since_start(shown)}, "
          f"model ready in {ready:.2f} s{since_start(ready)}, "
          f"all done in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


def _run(args: argparse.Namespace, tmp: Path, state: dict) -> dict:
    def step(text: str) -> None:
        state["step"] = text

    t0 = time.perf_counter()
    step("starting Qt")
    if needs_offscreen():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    create_app()
    from ..paths import bundled_model_dir
    from .main_window import MainWindow
    from .settings import Settings

    model_path = Path(args.model) if getattr(args, "model", None) else bundled_model_dir()
    step("showing the main window")
    failures: list[str] = []
    window = MainWindow(model_path=model_path, settings=Settings(tmp / "settings.ini"))
    try:
        window.model_failed.connect(failures.append)
        window.show()
        handle = None

        def exposed() -> bool:
            nonlocal handle
            handle = handle or window.windowHandle()
            return window.isVisible() and handle is not None and handle.isExposed()

        wait_until(exposed, WINDOW_TIMEOUT_S, "the window did not appear")
        window_s = time.perf_counter() - t0

        step(f"loading the model {model_path}")
        wait_until(lambda: window.classifier is not None or bool(failures), MODEL_TIMEOUT_S,
                   "the model did not load")
        if window.classifier is None:
            raise SelfTestError(failures[0])
        clf = window.classifier
        model_s = time.perf_counter() - t0

        step("writing test images")
        paths = checks.write_test_images(tmp / "images")
        step("checking the model")
        probs, cam_shape = checks.check_model(clf, paths)

        step("classifying in the window")
        window.open_folder(tmp / "images")

        def gui_done() -> bool:
            s = window.session
            return (len(s) == len(paths) and all(s.is_classified(i) for i in range(len(s)))
                    and window.shown_index() is not None)

        wait_until(gui_done, GUI_TIMEOUT_S, "the window did not classify and show the images")
        if window.background.process_error:  # the frozen build's multiprocessing, say
            raise SelfTestError(f"the classification process failed: "
                                f"{window.background.process_error}")
        where = window.background.where
        from .. import result_cache

        cached = getattr(window.background._worker, "cached", None)
        if not result_cache.disabled() and (cached is None or not cached.cache.stored):
            raise SelfTestError("the window kept none of its results for the next time the "
                                "folder is opened (inspector.result_cache; its log says why)")
        s = window.session
        for i, item in enumerate(s.items):
            if item.error is not None:
                raise SelfTestError(f"{item.path.name}: {item.error}")
            p = probs.get(Path(item.path).name)
            if p is None or not np.allclose(item.probs, p, atol=2e-3):
                raise SelfTestError(f"{item.path.name}: the window's probabilities differ from "
                                    "the headless ones")
        shot = os.environ.get(SCREENSHOT_ENV)
        if shot:
            step(f"saving a screenshot to {shot}")
            if not window.grab().save(shot):
                raise SelfTestError(f"cannot write {shot}")
        step("closing the window")
    finally:
        window.close()
        window.deleteLater()
    return {"title": clf.title, "classes": len(clf.class_names), "device": clf.device,
            "images": len(paths), "cam": cam_shape, "window_s": window_s, "model_s": model_s,
            "where": where}

"""Opening a folder again: the window's time from opening a folder to the last image
classified (``seconds``: its ``classification_done``; ``every_result_in_s``: when every image
had its result, polled every 20 ms), the first time and again (a new window process, the same user data: what the next
shift sees), with the result cache (inspector.result_cache) and without it
(``STEEL_INSPECTOR_NO_RESULT_CACHE=1``, every image classified again as before 2026-12-07).

The folder holds ``--small`` NEU-sized 200x200 grey BMPs (textures of the six classes) and
``--frames`` large camera frames (``--frame-size`` px square, the same textures resized up, JPEG),
which the window classifies tile by tile at the model's own scale.

    python benchmarks/bench_reopen.py [--bundle DIR] [--small 1000] [--frames 20] \\
        [--frame-size 3000] [--json out.json]

Each open runs in a child process (offscreen), one after the other, sharing one temporary user
data folder. A benchmark, not a test: the times depend on the machine and its load; the ratio
of the re-open to the first open is what carries over to another machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def write_frames(folder: Path, n: int, size: int) -> None:
    from PIL import Image

    from synth import texture

    for i in range(n):
        p = folder / f"frame_{i:03d}.jpg"
        if not p.exists():
            Image.fromarray(texture(i % 6, 200, seed=1000 + i)).resize(
                (size, size), Image.BICUBIC).save(p, quality=90)


def child(bundle: Path, folder: Path, timeout_s: float) -> dict:
    from PySide6.QtCore import QEventLoop, QTimer

    from bench_inspector import loaded_window

    app, w = loaded_window(bundle, timeout_s)
    done = QEventLoop()
    all_in: list[float] = []   # when every image had its result (polled)

    def poll():
        s = w.session
        if not all_in and s is not None and len(s) and \
                all(s.is_classified(i) for i in range(len(s))):
            all_in.append(time.perf_counter() - t0)

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(20)
    w.classification_done.connect(done.quit)
    QTimer.singleShot(int(timeout_s * 1000), done.quit)
    t0 = time.perf_counter()
    w.open_folder(folder)
    done.exec()
    seconds = time.perf_counter() - t0
    poll()
    timer.stop()
    s = w.session
    classified = sum(s.is_classified(i) for i in range(len(s)))
    worker = w.background._worker
    cache = getattr(getattr(worker, "cached", None), "cache", None)
    out = {"seconds": round(seconds, 2),
           "every_result_in_s": round(all_in[0], 2) if all_in else None,
           "images": len(s), "classified": classified,
           "from_cache": None if cache is None else cache.hits,
           "where": w.background.where}
    w.close()
    app.processEvents()
    return out


def run_child(bundle: Path, folder: Path, home: str, timeout_s: float, cache: bool) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", STEEL_INSPECTOR_HOME=home)
    if not cache:
        env["STEEL_INSPECTOR_NO_RESULT_CACHE"] = "1"
    proc = subprocess.run([sys.executable, __file__, "--child", str(folder), "--bundle",
                           str(bundle), "--timeout", str(timeout_s)],
                          capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle")
    ap.add_argument("--workdir", help="where the images go (kept for reuse)")
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--frame-size", type=int, default=3000)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.bundle), Path(args.child), args.timeout)))
        return 0

    from bench_inspector import get_bundle, write_images

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-reopen-"))
    bundle = get_bundle(args, work)
    folder = work / f"folder-{args.small}-{args.frames}x{args.frame_size}"
    write_images(folder, args.small)
    write_frames(folder, args.frames, args.frame_size)
    results = {"bundle": str(bundle), "small_images": args.small, "frames": args.frames,
               "frame_size": args.frame_size}
    for cache in (False, True):
        home = tempfile.mkdtemp(prefix="bench-reopen-home-")
        name = "with_cache" if cache else "without_cache"
        first = run_child(bundle, folder, home, args.timeout, cache)
        again = run_child(bundle, folder, home, args.timeout, cache)
        results[name] = {"first_open": first, "opened_again": again,
                         "again_over_first": round(again["seconds"] / first["seconds"], 3)}
        print(f"{name}: first open {first['seconds']} s (every result in "
              f"{first['every_result_in_s']} s), again {again['seconds']} s "
              f"({again['every_result_in_s']} s; {again['from_cache']} from the cache)", flush=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

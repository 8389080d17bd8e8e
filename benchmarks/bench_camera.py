"""Live camera speed: classified frames per second and capture-to-result latency.

A 640x480 mp4v video (written here, 30 frames/s by default, replayed at its own rate like a
camera) feeds the same pipeline the camera window uses: FrameGrabber (newest frame only) -> one
inference thread (inspector.camera.inference_loop) on a 200x200 region of interest. Targets: every
frame of a 30 frames/s camera classified, median latency from capture to result with the
attention overlay <= 10 ms (the LiteRT runtime issue).

    python benchmarks/bench_camera.py [--bundle DIR] [--seconds 8] [--fps 30] [--json out.json]

Modes: ``roi`` (the headline: 200x200 ROI, no overlay), ``roi+cam`` (with the class activation
overlay, Classifier.inspect per frame), ``tiles`` (the whole 640x480 frame as 200-pixel tiles),
``window`` (the headline set-up inside the CameraWindow, offscreen, with its painting).
Uses resources/ssdc-mininet when it exists, otherwise a stand-in bundle with a 200x200 input
(tests/synth.make_bundle). A benchmark, not a test: numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

WIDTH, HEIGHT, FRAMES = 640, 480, 180
ROI_SIDE = 200
TARGET_FPS, TARGET_LATENCY_MS = 30.0, 10.0


def write_video(path: Path, fps: float) -> Path:
    """640x480 frames of the six classes' textures drifting sideways, as mp4v at ``fps``."""
    import cv2

    from synth import texture

    if path.exists():
        return path
    tiles = np.concatenate([texture(c, 160, seed=1) for c in range(6)], axis=1)  # 160 x 960
    band = np.concatenate([tiles, tiles[:, ::-1], tiles[::-1], tiles[::-1, ::-1]], axis=0)[:HEIGHT]
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (WIDTH, HEIGHT))
    if not w.isOpened():
        raise SystemExit(f"{path}: OpenCV cannot write mp4v here")
    for k in range(FRAMES):
        frame = np.roll(band, -2 * k, axis=1)[:, :WIDTH]
        w.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_GRAY2BGR))
    w.release()
    return path


def load_model(bundle: str | None, workdir: Path):
    from inspector.engine import load_classifier
    from inspector.paths import bundled_model_dir

    if bundle:
        path = Path(bundle)
    elif bundled_model_dir().is_dir():
        path = bundled_model_dir()
    else:
        from synth import make_bundle

        path = workdir / "stand-in-200"
        if not path.exists():
            print("no resources/ssdc-mininet: training a stand-in bundle (200x200 input) ...")
            make_bundle(path, input_size=200)
    clf = load_classifier(path)
    return clf, path


def summarise(name: str, results: list, grabber_stats, seconds: float) -> dict:
    lat = [r.latency * 1000.0 for r in results]
    done = [r.t_done for r in results]
    fps = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 2 else 0.0
    return {"mode": name, "results": len(results), "seconds": round(seconds, 2),
            "classified_fps": round(fps, 1),
            "latency_median_ms": round(statistics.median(lat), 1) if lat else None,
            # where the latency goes: capture to the start of the analysis (handing the frame
            # over), and the analysis itself (model input, inference, verdict, attention map)
            "wait_median_ms": round(statistics.median(
                [(r.t_start - r.frame.t_capture) * 1000.0 for r in results]), 2) if lat else None,
            "analysis_median_ms": round(statistics.median(
                [(r.t_done - r.t_start) * 1000.0 for r in results]), 2) if lat else None,
            "latency_p90_ms": round(float(np.percentile(lat, 90)), 1) if lat else None,
            "capture_fps": round(grabber_stats.capture_fps, 1),
            "captured": grabber_stats.captured, "dropped": grabber_stats.dropped}


def run_core(name: str, clf, video: Path, config, seconds: float, warmup: float = 1.0) -> dict:
    from inspector.camera import FrameGrabber, Source, inference_loop

    grabber = FrameGrabber(Source.file(video)).start()
    results: list = []
    stop = threading.Event()
    t_measure = time.monotonic() + warmup

    def emit(r):
        if r.frame.t_capture >= t_measure:
            results.append(r)

    worker = threading.Thread(target=inference_loop,
                              args=(grabber, lambda: clf, lambda: config, emit, stop.is_set))
    worker.start()
    stop.wait(warmup + seconds)
    stop.set()
    worker.join(10)
    stats = grabber.stats
    grabber.close()
    return summarise(name, results, stats, seconds)


def run_window(clf, video: Path, roi, seconds: float, warmup: float = 1.0) -> dict:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from inspector.camera import Source
    from inspector.gui.camera_window import CameraWindow

    app = QApplication.instance() or QApplication([])
    win = CameraWindow(lambda: clf, camera_probe=lambda: [])
    win.overlay_check.setChecked(False)
    win.tile_check.setChecked(False)
    win.resize(1180, 720)
    win.show()
    results: list = []
    t_measure = time.monotonic() + warmup
    win.result_ready.connect(lambda r: results.append(r) if r.frame.t_capture >= t_measure else None)
    win.open_source(Source.file(video))
    win.set_roi(roi)
    loop = QEventLoop()
    QTimer.singleShot(int((warmup + seconds) * 1000), loop.quit)
    loop.exec()
    stats = win._grabber.stats
    win.close()
    app.processEvents()
    return summarise("window", results, stats, seconds)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", help="model bundle (default: resources/ssdc-mininet or a stand-in)")
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "bench_camera"))
    ap.add_argument("--seconds", type=float, default=8.0, help="measured seconds per mode")
    ap.add_argument("--modes", default="roi,roi+cam,tiles,window")
    ap.add_argument("--fps", type=float, default=30.0, help="frames per second of the source")
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args(argv)
    # the camera window saves its source and region: in a home of its own, never the user's
    os.environ.setdefault("STEEL_INSPECTOR_HOME", tempfile.mkdtemp(prefix="bench-camera-home-"))

    from inspector.camera import OVERLAY_CAM, LiveConfig, Roi

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    video = write_video(workdir / f"line_{WIDTH}x{HEIGHT}_{args.fps:g}fps.mp4", args.fps)
    clf, bundle = load_model(args.bundle, workdir)
    roi = Roi((WIDTH - ROI_SIDE) // 2, (HEIGHT - ROI_SIDE) // 2, ROI_SIDE, ROI_SIDE)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0, 0, 0)
    print(f"model: {clf.title} ({bundle}), input {clf.input_size}x{clf.input_size}, {clf.device}")
    print(f"source: {video.name} ({WIDTH}x{HEIGHT}, {args.fps:g} frames/s, replayed in real time); "
          f"ROI {ROI_SIDE}x{ROI_SIDE}; CPU cores: {os.cpu_count()}; load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; niceness {os.nice(0)}")
    configs = {"roi": LiveConfig(roi=roi), "roi+cam": LiveConfig(roi=roi, overlay=OVERLAY_CAM),
               "tiles": LiveConfig(roi=None, tile=ROI_SIDE)}
    rows = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        if mode == "window":
            rows.append(run_window(clf, video, roi, args.seconds))
        elif mode in configs:
            rows.append(run_core(mode, clf, video, configs[mode], args.seconds))
        else:
            raise SystemExit(f"unknown mode {mode!r} (roi, roi+cam, tiles, window)")
        r = rows[-1]
        print(f"  {r['mode']:8s} classified {r['classified_fps']:5.1f}/s   latency median "
              f"{r['latency_median_ms']} ms (p90 {r['latency_p90_ms']}; waiting "
              f"{r['wait_median_ms']}, analysis {r['analysis_median_ms']})   captured "
              f"{r['capture_fps']:.1f}/s, dropped {r['dropped']} of {r['captured']}", flush=True)
    head = next((r for r in rows if r["mode"] == "roi+cam"),
                next((r for r in rows if r["mode"] == "roi"), None))
    if head:
        want_fps = min(TARGET_FPS, args.fps) * 0.95  # every frame, give or take the edges
        ok_fps = head["classified_fps"] >= want_fps
        ok_lat = (head["latency_median_ms"] or 1e9) <= TARGET_LATENCY_MS
        print(f"targets ({head['mode']}): >= {want_fps:g} classified frames/s: "
              f"{'met' if ok_fps else 'MISSED'} ({head['classified_fps']}); median latency <= "
              f"{TARGET_LATENCY_MS:g} ms: {'met' if ok_lat else 'MISSED'} "
              f"({head['latency_median_ms']} ms)")
        print(f"  (the source delivers {args.fps:g} frames/s, the ceiling; under other CPU load, "
              "e.g. a training run, the numbers are pessimistic)")
    if args.json:
        Path(args.json).write_text(json.dumps({"load_average": load, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Inspector speed and memory with NEU-sized images (200x200 grey BMPs written here):

1. ``inspector classify`` throughput, end to end in a fresh process as a user runs it
   (start-up, model loading, decoding, inference, CSV), against the app's own pure inference with
   the command's threads (target ratio >= 0.8) and against the bundle's Keras model's pure
   inference through TensorFlow (batch 32, in a child process, the same run; target >= 2.5x),
   and the model-ready time of ``load_classifier`` in a fresh process (target <= 0.5 s);
2. the GUI while a 5,000-image folder is classified (and the list is scrolled): the longest gap
   between 10 ms timer ticks on the GUI thread (target < 50 ms);
3. peak memory (RSS) of the GUI with 20,000 images opened, classified and scrolled through (and of
   its classification process, inspector.offload; the two added up)
   (target < 1 GB).

    nice -n 19 python benchmarks/bench_inspector.py [--bundle DIR] [--workdir DIR] [--json out.json]

With BENCH_STALL_DUMP=FILE set, the GUI children write every thread's stack to FILE whenever
the GUI thread misses a tick by 50 ms (BENCH_STALL_MS; faulthandler's watchdog needs no GIL): what blocked it.
With BENCH_GC_LOG=1 the GUI children's JSON lists every garbage collection of 5 ms or more
(``slow_collections``: [ms, generation, seconds after the folder was opened]).

Uses resources/ssdc-mininet when it exists, otherwise a stand-in bundle with a 200x200 input
(tests/synth.make_bundle). The GUI parts run in child processes (offscreen), so their memory is
their own. This is a benchmark, not a test: numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import faulthandler
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

import numpy as np  # noqa: E402

DISTINCT = 500  # distinct images written; the rest are hard links (same decode cost, less disk)


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's peak resident memory (default: this one's). VmHWM, not getrusage's
    ru_maxrss: on Linux a child inherits ru_maxrss from its parent across fork and exec, so it
    would report the parent's."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        if pid != "self":
            return float("nan")
    import resource  # other systems: the best available

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024.0 if sys.platform != "darwin" else 1024.0 ** 2)


def write_images(folder: Path, n: int) -> Path:
    """n 200x200 grey BMPs (textures of the six classes), written once and reused."""
    from PIL import Image

    from synth import texture

    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f".complete-{n}"
    if marker.exists():
        return folder
    for i in range(n):
        p = folder / f"img_{i:05d}.bmp"
        if p.exists():
            continue
        if i < DISTINCT:
            Image.fromarray(texture(i % 6, 200, seed=i)).save(p)
        else:
            src = folder / f"img_{i % DISTINCT:05d}.bmp"
            try:
                os.link(src, p)
            except OSError:
                p.write_bytes(src.read_bytes())
    marker.touch()
    return folder


def get_bundle(args, work: Path) -> Path:
    if args.bundle:
        return Path(args.bundle)
    real = ROOT / "resources" / "ssdc-mininet"
    if (real / "model_card.json").exists():
        return real
    stand_in = work / "stand-in-200"
    if not (stand_in / "model_card.json").exists():
        from synth import make_bundle

        print("making a stand-in bundle (200x200 input) ...", flush=True)
        make_bundle(stand_in, input_size=200)
    return stand_in


# ---------------------------------------------------------------------------------------------
# 1. headless throughput


def keras_pure_child(bundle: Path, folder: Path, batch: int, seconds: float) -> dict:
    """The bundle's Keras model through TensorFlow on the same images (a child process: TensorFlow
    and LiteRT stay apart), and the app's model-ready time in another fresh child."""
    import tensorflow as tf

    from training.bundle import load_bundle

    model = load_bundle(bundle).model
    size = int(model.input_shape[1])
    from training.images import load_image

    n = len(list(folder.glob("img_*.bmp")))
    x = np.stack([load_image(folder / f"img_{i:05d}.bmp", size) for i in range(min(batch * 4, n))])
    f = tf.function(lambda t: model(t, training=False))
    f(x[:batch].astype(np.float32))
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for k in range(0, len(x), batch):
            np.asarray(f(x[k:k + batch].astype(np.float32)))
            done += batch
    return {"keras_pure_img_s": done / (time.perf_counter() - t0)}


def model_ready_child(bundle: Path) -> dict:
    t0 = time.perf_counter()
    from inspector.engine import load_classifier

    clf = load_classifier(bundle)
    return {"model_ready_s": time.perf_counter() - t0, "device": clf.device,
            "tensorflow_loaded": "tensorflow" in sys.modules}


def child_json(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def throughput(bundle: Path, work: Path, n: int, batch: int, seconds: float = 3.0,
               rounds: int = 3) -> dict:
    from inspector import batch as batch_mod
    from inspector.engine import load_classifier

    folder = write_images(work / f"imgs-{n}", n)
    clf = load_classifier(bundle, num_threads=batch_mod.cli_threads())   # as the command does
    x = np.stack([clf.load(folder / f"img_{i:05d}.bmp") for i in range(min(batch * 4, n))])

    def pure():
        clf.classify(x[:batch])
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for k in range(0, len(x), batch):
                clf.classify(x[k:k + batch])
                done += len(x[k:k + batch])
        return done / (time.perf_counter() - t0)

    def command():
        """The command as a user runs it, in a fresh process: Python's start-up, the imports,
        the model's loading and format choice, and the classification with the command's own
        threads (``inspector.batch.cli_threads``)."""
        out = work / "results.csv"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "inspector", "classify", str(folder),
                               "--model", str(bundle), "--out", str(out), "--batch-size",
                               str(batch)], capture_output=True, text=True, cwd=str(ROOT),
                              timeout=max(600.0, n / 5))
        dt = time.perf_counter() - t0
        rows = len(out.read_text().splitlines()) - 1 if out.exists() else 0
        if proc.returncode != 0 or rows != n:
            raise RuntimeError(f"inspector classify: exit status {proc.returncode}, {rows} of "
                               f"{n} rows\n{proc.stderr[-2000:]}")
        # the format the command chose for itself (it times the formats as the parent did)
        devices.extend(ln.split(" on ", 1)[1] for ln in proc.stderr.splitlines()
                       if ln.startswith("model ") and " on " in ln)
        return n / dt

    # alternate the measurements (rounds, medians): the machine's load drifts
    pures, cmds, keras, devices = [], [], [], []
    for _ in range(rounds):
        pures.append(pure())
        cmds.append(command())
        keras.append(child_json("--bundle", str(bundle), "--keras-pure", str(folder),
                                "--batch", str(batch), "--seconds", str(seconds))["keras_pure_img_s"])
    ready = child_json("--bundle", str(bundle), "--model-ready")
    pure_rate, cmd_rate = float(np.median(pures)), float(np.median(cmds))
    keras_rate = float(np.median(keras))
    return {"images": n, "batch": batch, "model": clf.title, "device": clf.device,
            "command_devices": devices,
            "pure_inference_img_s": round(pure_rate, 1), "classify_img_s": round(cmd_rate, 1),
            "ratio": round(cmd_rate / pure_rate, 3),
            "keras_pure_img_s": round(keras_rate, 1),
            "ratio_to_keras": round(cmd_rate / keras_rate, 2),
            "model_ready_s": round(ready["model_ready_s"], 3),
            "tensorflow_loaded_by_app": ready["tensorflow_loaded"],
            "runs": {"pure": [round(x, 1) for x in pures], "classify": [round(x, 1) for x in cmds],
                     "keras_pure": [round(x, 1) for x in keras]}}


# ---------------------------------------------------------------------------------------------
# 2 and 3. the GUI (child processes)


def loaded_window(bundle: Path, timeout_s: float):
    """(the QApplication, a shown main window whose model has loaded), offscreen: the model
    loads in the background, as when the app starts."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from inspector.gui.main_window import MainWindow

    w = MainWindow(model_path=bundle)
    w.resize(1400, 860)
    w.show()
    loaded = QEventLoop()
    w.model_loaded.connect(loaded.quit)
    w.model_failed.connect(loaded.quit)
    QTimer.singleShot(int(timeout_s * 1000), loaded.quit)
    loaded.exec()
    if w.classifier is None:
        raise RuntimeError(f"cannot load {bundle}")
    return app, w


def gui_child(bundle: Path, folder: Path, scroll_all: bool, timeout_s: float) -> dict:
    home = tempfile.mkdtemp(prefix="bench-home-")
    os.environ["STEEL_INSPECTOR_HOME"] = home
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    app, w = loaded_window(bundle, timeout_s)
    app.processEvents()
    rss_model = peak_rss_mb()

    gaps: list[float] = []
    ends: list[float] = []   # when each gap ended, seconds after the folder was opened
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    stall_file = open(os.environ["BENCH_STALL_DUMP"], "w") if os.environ.get("BENCH_STALL_DUMP") else None
    stall_s = float(os.environ.get("BENCH_STALL_MS", "50")) / 1000 + 0.01

    collections: list[list[float]] = []   # [ms, generation, at s] of each collection >= 5 ms
    if os.environ.get("BENCH_GC_LOG", "0") not in ("", "0"):
        import gc
        import threading

        started = {}

        def on_gc(phase, info):
            key = threading.get_ident()
            if phase == "start":
                started[key] = time.perf_counter()
            elif key in started:
                ms = (time.perf_counter() - started.pop(key)) * 1000
                if ms >= 5:
                    collections.append([round(ms, 1), info["generation"],
                                        round(clock.nsecsElapsed() / 1e9, 2)])
        gc.callbacks.append(on_gc)

    def tick():
        now = clock.nsecsElapsed()
        gaps.append((now - last[0]) / 1e6)
        ends.append(now / 1e9)
        last[0] = now
        if stall_file is not None:  # every thread's stack when the next tick is 50 ms late
            faulthandler.dump_traceback_later(stall_s, file=stall_file)

    ticker = QTimer()
    ticker.setTimerType(ticker.timerType().PreciseTimer)
    ticker.setInterval(10)
    ticker.timeout.connect(tick)

    sb = w.list.verticalScrollBar()

    def scroll():  # a user paging through the grid while it is classified
        step = max(1, sb.pageStep())
        sb.setValue(sb.value() + step if sb.value() + step <= sb.maximum() else 0)

    scroller = QTimer()
    scroller.setInterval(150 if not scroll_all else 40)
    scroller.timeout.connect(scroll)

    finished = []
    done = QEventLoop()
    w.classification_done.connect(lambda: (finished.append(1), done.quit()))
    opened = QEventLoop()
    w.session_opened.connect(opened.quit)
    QTimer.singleShot(int(timeout_s * 1000), done.quit)
    QTimer.singleShot(int(timeout_s * 1000), opened.quit)
    t0 = time.perf_counter()
    clock.restart()
    last[0] = clock.nsecsElapsed()
    ticker.start()
    scroller.start()
    w.open_folder(folder)        # lists the folder in the background; ticks go on meanwhile
    opened.exec()
    t_open = time.perf_counter() - t0
    if not finished:
        done.exec()
    elapsed = time.perf_counter() - t0
    ticker.stop()
    if stall_file is not None:
        faulthandler.cancel_dump_traceback_later()
    classified = sum(1 for it in w.session.items if it.probs is not None)
    if scroll_all:  # scroll through every row once more, so that thumbnails cycle the cache
        loop = QEventLoop()

        def page():
            if sb.value() >= sb.maximum():
                loop.quit()
            else:
                sb.setValue(sb.value() + sb.pageStep())

        scroller.timeout.disconnect()
        scroller.timeout.connect(page)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        loop.exec()
    scroller.stop()
    g = np.array(gaps[1:] or [0.0])
    result = {"images": len(w.session), "classified": classified, "seconds": round(elapsed, 1),
              "open_folder_s": round(t_open, 3),
              "img_s": round(classified / max(elapsed, 1e-9), 1),
              "ticks": len(g), "max_gap_ms": round(float(g.max()), 1),
              "p99_gap_ms": round(float(np.percentile(g, 99)), 1),
              "gaps_over_50ms": int((g > 50).sum()),
              "longest_gaps": [[round(float(gaps[i]), 1), round(ends[i], 2)]  # [ms, at s]
                               for i in sorted(range(1, len(gaps)), key=gaps.__getitem__)[-5:][::-1]],
              "thumbnails_cached": len(w.thumb_model.cache),
              **({"slow_collections": collections} if collections else {}),
              "rss_after_model_mb": round(rss_model, 1), "peak_rss_mb": round(peak_rss_mb(), 1)}
    # the window's classification process (inspector.offload), while it is alive
    child = getattr(getattr(w.background, "_worker", None), "child", None)
    result["classify_process"] = child is not None and not getattr(w.background._worker, "child_error", None)
    result["child_peak_rss_mb"] = round(peak_rss_mb(child.pid), 1) if result["classify_process"] else 0.0
    result["total_peak_rss_mb"] = round(result["peak_rss_mb"] + result["child_peak_rss_mb"], 1)
    w.close()
    return result


def run_child(bundle: Path, folder: Path, scroll_all: bool, timeout_s: float) -> dict:
    cmd = [sys.executable, __file__, "--child", str(folder), "--bundle", str(bundle),
           "--timeout", str(timeout_s)] + (["--scroll-all"] if scroll_all else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"GUI child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle")
    ap.add_argument("--workdir", help="where images and the stand-in bundle go (kept for reuse)")
    ap.add_argument("--json", help="write the numbers here too")
    ap.add_argument("--throughput-images", type=int, default=2000)
    ap.add_argument("--gui-images", type=int, default=5000)
    ap.add_argument("--memory-images", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--skip", nargs="*", default=[], choices=["throughput", "gui", "memory"])
    ap.add_argument("--seconds", type=float, default=3.0, help="per pure-inference measurement")
    ap.add_argument("--rounds", type=int, default=3, help="throughput rounds (medians)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--keras-pure", help=argparse.SUPPRESS)
    ap.add_argument("--model-ready", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--scroll-all", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.keras_pure:
        print(json.dumps(keras_pure_child(Path(args.bundle), Path(args.keras_pure), args.batch,
                                          args.seconds)), flush=True)
        return 0
    if args.model_ready:
        print(json.dumps(model_ready_child(Path(args.bundle))), flush=True)
        return 0
    if args.child:
        print(json.dumps(gui_child(Path(args.bundle), Path(args.child), args.scroll_all, args.timeout)),
              flush=True)
        return 0

    work = Path(args.workdir or Path(tempfile.gettempdir()) / "bench-inspector")
    work.mkdir(parents=True, exist_ok=True)
    bundle = get_bundle(args, work)
    print(f"bundle: {bundle}\nworkdir: {work}\ncpus: {os.cpu_count()}", flush=True)
    results: dict = {"bundle": str(bundle), "cpus": os.cpu_count(),
                     "load_average_at_start": os.getloadavg()}
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

    if "throughput" not in args.skip:
        r = throughput(bundle, work, args.throughput_images, args.batch, args.seconds,
                       args.rounds)
        results["throughput"] = r
        print(f"[1] inspector classify: {r['classify_img_s']} img/s vs pure inference "
              f"{r['pure_inference_img_s']} img/s -> ratio {r['ratio']} (target >= 0.8) "
              f"[{r['images']} images, batch {r['batch']}, {r['device']}; the command chose: "
              f"{' / '.join(r['command_devices'])}]", flush=True)
        print(f"    vs the Keras model's pure inference (TensorFlow, batch {r['batch']}) "
              f"{r['keras_pure_img_s']} img/s -> {r['ratio_to_keras']}x (target >= 2.5x); "
              f"model ready {r['model_ready_s']} s in a fresh process (target <= 0.5 s; "
              f"TensorFlow loaded: {r['tensorflow_loaded_by_app']})", flush=True)
    if "gui" not in args.skip:
        folder = write_images(work / f"imgs-{args.gui_images}", args.gui_images)
        r = run_child(bundle, folder, False, args.timeout)
        results["gui"] = r
        print(f"[2] GUI, {r['images']} images classified in {r['seconds']} s ({r['img_s']} img/s) "
              f"while scrolling: longest gap between 10 ms ticks {r['max_gap_ms']} ms "
              f"(p99 {r['p99_gap_ms']} ms, {r['gaps_over_50ms']} gaps > 50 ms; target < 50 ms); "
              f"folder listed in {r['open_folder_s']} s (in the background)", flush=True)
    if "memory" not in args.skip:
        folder = write_images(work / f"imgs-{args.memory_images}", args.memory_images)
        r = run_child(bundle, folder, True, args.timeout)
        results["memory"] = r
        print(f"[3] GUI, {r['images']} images opened, classified and scrolled through: peak RSS "
              f"{r['peak_rss_mb']} MB (target < 1024 MB; {r['rss_after_model_mb']} MB after "
              f"loading the model; longest tick gap {r['max_gap_ms']} ms); with the "
              f"classification process's {r['child_peak_rss_mb']} MB: {r['total_peak_rss_mb']} MB",
              flush=True)
    results["load_average_at_end"] = os.getloadavg()
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (on {os.cpu_count()} CPUs; "
          "above that the GUI thread waits for a CPU, whatever the app does)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""inspector.gui.workers: TaskRunner runs a function off the GUI thread and reports its result,
its error or its progress by signal; arrays become QImages that own their pixels."""
import numpy as np
import pytest

from inspector.gui.workers import TaskRunner, as_grey_if_grey, make_thumbnail, qimage_from_array
from training.images import ImageReadError


@pytest.fixture
def runner(qtbot, qapp):
    r = TaskRunner()
    yield r
    r.drain()


def run(qtbot, runner, fn):
    got = {}
    progress = []
    task = runner.start(fn, done=lambda out: got.setdefault("done", out),
                        failed=lambda msg: got.setdefault("failed", msg),
                        progress=lambda f, m: progress.append((f, m)))
    qtbot.waitUntil(lambda: bool(got), timeout=10000)
    return task, got, progress


def test_a_result_and_progress_come_back(qtbot, runner):
    def fn(progress, should_stop):
        progress(0.5, "half")
        return 42

    task, got, progress = run(qtbot, runner, fn)
    assert got == {"done": 42}
    qtbot.waitUntil(lambda: progress == [(0.5, "half")], timeout=5000)
    assert task.finished.is_set()


def test_a_finished_task_is_freed(qtbot, runner):
    """Its own clean-up slot held the task (and the task its signals): a cycle the collector
    never freed, one finished task kept for every folder opened or model loaded."""
    import gc
    import weakref

    task, got, _ = run(qtbot, runner, lambda progress, should_stop: 1)
    ref = weakref.ref(task)
    qtbot.waitUntil(lambda: not runner._tasks, timeout=5000)
    runner.wait()   # its thread has let go of it too
    del task
    gc.collect()
    assert ref() is None


def test_expected_errors_say_only_their_message(qtbot, runner):
    def fn(progress, should_stop):
        raise ImageReadError("x.png", "truncated file")

    _, got, _ = run(qtbot, runner, fn)
    assert "x.png" in got["failed"] and not got["failed"].startswith("ImageReadError")


def test_unexpected_errors_name_their_type(qtbot, runner):
    def fn(progress, should_stop):
        raise KeyError("boom")

    _, got, _ = run(qtbot, runner, fn)
    assert got["failed"] == "KeyError: 'boom'"


def test_cancel_is_seen_by_should_stop_and_reported_as_cancelled(qtbot, runner):
    import threading

    started = threading.Event()

    def fn(progress, should_stop):
        started.set()
        while not should_stop():
            threading.Event().wait(0.01)
        return "stopped"

    got = {}
    task = runner.start(fn, done=lambda out: got.setdefault("done", out),
                        cancelled=lambda msg: got.setdefault("cancelled", msg))
    assert started.wait(5)
    task.cancel()
    qtbot.waitUntil(lambda: got == {"cancelled": "cancelled"}, timeout=5000)  # not its result


def test_arrays_become_qimages_that_own_their_pixels(qapp):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    img = qimage_from_array(grey)
    grey[:] = 0
    assert (img.width(), img.height()) == (4, 3) and img.pixelColor(3, 2).red() == 11
    rgb = np.zeros((2, 5, 3), np.uint8)
    rgb[..., 0] = 200
    assert qimage_from_array(rgb).pixelColor(0, 0).red() == 200
    assert qimage_from_array(np.zeros((2, 2, 4), np.uint8)).width() == 2
    with pytest.raises(ValueError):
        qimage_from_array(np.zeros((2, 2, 2), np.uint8))


def test_grey_rgb_is_kept_as_one_channel():
    g = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert np.array_equal(as_grey_if_grey(np.stack([g, g, g], axis=2)), g)
    colour = np.stack([g, g, g + 1], axis=2)
    assert as_grey_if_grey(colour).shape == (2, 3, 3)


def test_one_thumbnail_for_the_window_and_the_wizard(tmp_path):
    from PIL import Image

    from inspector.gui.wizard.common import read_thumbnail

    wide = np.zeros((40, 100, 3), np.uint8)
    wide[..., 0] = 200
    Image.fromarray(wide).save(tmp_path / "wide.png")
    t = make_thumbnail(tmp_path / "wide.png", 50)
    assert t.shape == (20, 50, 3) and t.dtype == np.uint8 and t[0, 0, 0] == 200  # aspect kept
    Image.fromarray(np.full((10, 10), 90, np.uint8)).save(tmp_path / "grey.png")
    assert make_thumbnail(tmp_path / "grey.png", 50).shape == (10, 10)  # grey, never enlarged
    (tmp_path / "bad.png").write_bytes(b"x")
    with pytest.raises(ImageReadError):
        make_thumbnail(tmp_path / "bad.png", 50)
    assert read_thumbnail(tmp_path / "bad.png") is None           # the wizard shows a grey square
    assert read_thumbnail(tmp_path / "wide.png").shape[1] == 72


def test_reports_and_cancellation_come_back_as_their_own_signals(qtbot, runner):
    from training.cancel import Cancelled

    records, got = [], {}

    def fn(progress, should_stop, report):
        report({"epoch": 1})
        raise Cancelled("cancelled while training")

    runner.start(fn, done=lambda out: got.setdefault("done", out),
                 failed=lambda msg: got.setdefault("failed", msg),
                 cancelled=lambda msg: got.setdefault("cancelled", msg), report=records.append)
    qtbot.waitUntil(lambda: bool(got), timeout=10000)
    assert got == {"cancelled": "cancelled while training"}
    assert records == [{"epoch": 1}]


def test_nothing_arrives_or_starts_after_drain(qtbot, qapp):
    import threading

    r = TaskRunner()
    release, got = threading.Event(), []
    task = r.start(lambda progress, should_stop: release.wait(5) and "late",
                   done=got.append, cancelled=got.append)
    release.set()
    assert r.drain(5000)
    later = r.start(lambda progress, should_stop: "never", done=got.append)
    qtbot.wait(100)
    assert got == [] and task.finished.is_set() and not later.finished.is_set()
    assert r.running == [] or all(t.finished.is_set() for t in r.running)


def test_waiting_for_a_task_that_cannot_stop_keeps_the_window_alive_and_says_so(qtbot, qapp):
    """The wizard closed during its export: the runner cancels at once, and the wait for the
    step under way shows a dialog while events go on (it sat frozen without a word)."""
    import threading

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QProgressDialog, QPushButton

    from inspector.gui.workers import wait_visibly

    r = TaskRunner()
    release = threading.Event()
    r.start(lambda progress, should_stop: release.wait(10))
    r.cancel_all()
    assert not r.idle()
    seen, ticks = [], []

    def look():
        ticks.append(1)
        boxes = [w for w in QApplication.topLevelWidgets()
                 if isinstance(w, QProgressDialog) and w.isVisible()]
        seen.extend(w.labelText() for w in boxes)
        if len(ticks) == 3:   # closed by its title bar's button: no cancel, so it waits on
            for w in boxes:
                w.close()
        if len(ticks) == 8:
            release.set()

    timer = QTimer(interval=50)
    timer.timeout.connect(look)
    timer.start()
    assert wait_visibly(None, "Closing", "Stopping: the export ends first", r.idle, grace_s=0.05)
    timer.stop()
    assert r.idle() and "Stopping: the export ends first" in seen
    # a wait given up by its button, or by its limit: False
    release.clear()
    r2 = TaskRunner()
    r2.start(lambda progress, should_stop: release.wait(10))
    QTimer.singleShot(200, lambda: [w.findChild(QPushButton).click()
                                    for w in QApplication.topLevelWidgets()
                                    if isinstance(w, QProgressDialog) and w.isVisible()])
    assert not wait_visibly(None, "Closing", "waiting", r2.idle, "Close without it", 0.05)
    assert not wait_visibly(None, "Closing", "waiting", r2.idle, limit_s=0.2)
    release.set()
    assert r2.wait(5000)


def test_a_page_run_ignores_what_an_earlier_run_still_sends():
    """Back, then Next before the stopped run has ended: its late "cancelled" is not the new
    run's outcome (the wizard's evaluation page said "evaluation failed (cancelled)")."""
    from inspector.gui.wizard.common import new_run

    class Page:
        pass

    page, got = Page(), []
    first = new_run(page)(got.append)
    second = new_run(page)(got.append)
    first("cancelled")
    second("done")
    assert got == ["done"]


def test_a_task_waiting_for_its_turn_is_not_started_once_drained(qtbot, qapp):
    """At most two tasks run at a time; one queued behind them and cancelled by ``drain`` never
    calls its function (a model load would not look at should_stop and lengthen the drain)."""
    import threading

    r = TaskRunner()
    release, calls = threading.Event(), []

    def blocking(progress, should_stop):
        calls.append("ran")
        release.wait(5)

    busy = [r.start(blocking) for _ in range(TaskRunner.MAX_RUNNING)]
    qtbot.waitUntil(lambda: len(calls) == TaskRunner.MAX_RUNNING, timeout=5000)
    queued = r.start(lambda progress, should_stop: calls.append("queued ran"))
    for t in busy + [queued]:
        t.cancel()
    release.set()
    assert r.drain(5000) and queued.finished.is_set()
    assert calls == ["ran"] * TaskRunner.MAX_RUNNING


def test_cancelled_is_the_interrupted_error_callers_already_catch():
    from training.cancel import Cancelled
    from training.data import Cancelled as DataCancelled
    from training.train import TrainingCancelled

    assert Cancelled is DataCancelled is TrainingCancelled
    assert issubclass(Cancelled, InterruptedError)


def test_preload_imports_off_the_calling_thread(monkeypatch):
    """The main window loads OpenCV in a background thread (its first overlay stalled the GUI)."""
    import sys
    import threading

    from inspector.gui.workers import preload_modules

    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    seen = []
    import importlib
    real = importlib.import_module
    monkeypatch.setattr(importlib, "import_module",
                        lambda name: (seen.append(threading.current_thread().name), real(name))[1])
    t = preload_modules("colorsys", "no_such_module_xyz")   # a missing one is not an error here
    t.join(10)
    assert not t.is_alive() and "colorsys" in sys.modules
    assert seen == ["preload", "preload"]


def test_the_inspection_of_a_non_square_image_lies_on_the_image(qtbot, tmp_path, classifier):
    """The window's inspection reads a non-square image as it is classified (made square by
    reflection for a model that learnt square images) and cuts its maps to the image."""
    from PIL import Image

    from inspector.attention import CAM, attention_map
    from inspector.gui.workers import InspectWorker
    from training.images import reflect_to_square

    rng = np.random.default_rng(3)
    img = rng.integers(0, 255, (40, 96, 3), dtype=np.uint8)          # 96 wide, 40 high
    Image.fromarray(img).save(tmp_path / "wide.png")
    w = InspectWorker()
    w.classifier = classifier                                         # input 64, NEU-like view
    w.start()
    try:
        with qtbot.waitSignal(w.inspected, timeout=20000) as blocker:
            w.request("k", tmp_path / "wide.png")
    finally:
        w.stop()
        w.wait(5000)
    ins = blocker.args[2]
    expected = classifier.inspect(classifier.prepare(reflect_to_square(img, 64)))
    np.testing.assert_allclose(ins.probs, expected.probs, atol=1e-4)
    assert ins.content == pytest.approx((28 / 96, 68 / 96, 0.0, 1.0))
    m = attention_map(ins, CAM)
    assert m.shape[0] < m.shape[1]                                    # the image's rows only


_TENSORFLOW_TASKS = '''
import os, sys
import numpy as np
from PySide6.QtWidgets import QApplication
from inspector.gui.workers import TaskRunner

app = QApplication([])
runner = TaskRunner()


def model():
    import keras
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3)(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))


def train(progress, should_stop):
    m = model()
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(np.zeros((8, 32, 32, 3), np.float32), np.zeros(8), epochs=1, verbose=0)
    return "trained"


def predict(progress, should_stop):
    return float(np.asarray(model()(np.zeros((2, 32, 32, 3), np.float32), training=False)).sum())


out = []
for fn in (train, predict, predict, train, predict):
    task = runner.start(fn, done=out.append, failed=out.append)
    while not task.finished.is_set():
        app.processEvents()
    app.processEvents()
print("results", out)
'''


def test_tensorflow_tasks_one_after_another_do_not_crash(tmp_path):
    """A task that calls TensorFlow after another task ran on the same reused QThreadPool thread
    crashed the program (the retraining wizard's evaluation after its training: SIGSEGV in
    pybind11's GIL handling, a deleted thread state); each task now has a thread of its own.
    In a child process, so that a crash fails this test instead of ending the run."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "tasks.py"
    script.write_text(_TENSORFLOW_TASKS)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "results ['trained', 2.0, 2.0, 'trained', 2.0]" in done.stdout

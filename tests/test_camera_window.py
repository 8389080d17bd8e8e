"""The live camera window, driven with qtbot: a video file the test writes stands in for a camera,
a fake capture injected through the window's factory for one that fails mid-stream."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from synth import PROB_ATOL
from inspector import camera as cam
from inspector.camera import CameraInfo, ReconnectPolicy, Roi, Source, SourceError, State

FAST = ReconnectPolicy(initial=0.02, factor=2.0, maximum=0.1, stall_timeout=2.0, open_timeout=2.0)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """A 160x120 mp4v video of textured frames (so that regions differ), 30 frames/s."""
    from synth import texture

    path = tmp_path_factory.mktemp("video") / "line.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (160, 120))
    for k in range(20):
        img = np.zeros((120, 160), np.uint8)
        for i in range(2):
            for j in range(2):
                img[i * 60:(i + 1) * 60, j * 80:(j + 1) * 80] = texture((i * 2 + j + k // 10) % 6,
                                                                        80, seed=k)[:60]
        w.write(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
    w.release()
    return path


@pytest.fixture
def make_window(qtbot, classifier):
    from inspector.gui.camera_window import CameraWindow

    made = []

    def make(provider=lambda: classifier, **kw):
        kw.setdefault("camera_probe", lambda: [])
        kw.setdefault("policy", FAST)
        win = CameraWindow(provider, **kw)
        qtbot.addWidget(win)
        win.show()
        made.append(win)
        return win

    yield make
    for win in made:
        win.close()


def _next_result(qtbot, win, check=lambda r: True, timeout=10000):
    box = []

    def ok(result):
        if check(result):
            box.append(result)
            return True
        return False

    with qtbot.waitSignal(win.result_ready, timeout=timeout, check_params_cb=ok):
        pass
    return box[0]


def test_video_file_is_classified_live_with_bars_for_the_roi(qtbot, make_window, classifier, video):
    win = make_window()
    win.overlay_check.setChecked(True)
    win.open_source(Source.file(video))
    # the source bar shows what was opened from code
    assert win.source_from_picker() == Source.file(video)
    first = _next_result(qtbot, win)
    assert first.roi == Roi(0, 0, 160, 120)  # no ROI yet: the whole frame
    roi = Roi(40, 20, 64, 64)
    win.set_roi(roi)
    r = _next_result(qtbot, win, lambda r: r.roi == roi)
    expected = classifier.inspect(classifier.prepare(roi.crop(r.frame.image))).probs
    np.testing.assert_allclose(win.chart.values(), expected, atol=PROB_ATOL)
    name = classifier.class_names[int(np.argmax(expected))]
    assert win.prediction_label.text().startswith(name)
    assert r.heat is not None and r.heat.shape == (64, 64)
    assert win.view.overlay is not None and win.view.overlay.width() == 64
    assert win.status().state is State.LIVE and "live" in win.status_text()
    # the overlay off: plain classification, no heat
    win.overlay_check.setChecked(False)
    r = _next_result(qtbot, win, lambda r: r.heat is None)
    np.testing.assert_allclose(win.chart.values(),
                               classifier.classify(classifier.prepare(roi.crop(r.frame.image)))[0],
                               atol=PROB_ATOL)
    qtbot.waitUntil(lambda: win.stats()["results"] >= 3)
    assert win.stats()["captured"] >= win.stats()["results"]
    # stopped: the last verdict stays, marked as not live
    win.stop_source()
    assert win.prediction_label.text().startswith("not live (last frame): ")
    assert "#888" in win.prediction_label.styleSheet()


def test_tiles_are_classified_and_shown_as_a_grid(qtbot, make_window, classifier, video):
    win = make_window()
    win.overlay_check.setChecked(False)
    win.tile_check.setChecked(True)
    win.tile_spin.setValue(64)
    seen = []   # the video goes on: the chart shows the latest result, not necessarily r
    win.result_ready.connect(seen.append)
    win.open_source(Source.file(video))
    r = _next_result(qtbot, win, lambda r: len(r.tiles) > 1)
    assert r.grid == (2, 3)  # 160x120 in 64-pixel tiles
    batch = np.stack([classifier.prepare(t.crop(r.frame.image)) for t in r.tiles])
    np.testing.assert_allclose(r.tile_probs, classifier.classify(batch), atol=PROB_ATOL)
    last = seen[-1]   # the chart shows the deciding tile's probabilities, drawn bold
    np.testing.assert_allclose(win.chart.values(), last.tile_probs[last.winner], atol=PROB_ATOL)
    assert "6 tiles" in win.detail_label.text() and "decides" in win.detail_label.text()


def test_tiny_tiles_are_capped_and_the_status_bar_says_so(qtbot, make_window, video):
    win = make_window()
    win.overlay_check.setChecked(False)
    win.tile_check.setChecked(True)
    win.tile_spin.setValue(16)  # 10 x 8 = 80 tiles on a 160x120 frame
    assert cam.tile_count(160, 120, 16) > cam.MAX_TILES
    win.open_source(Source.file(video))
    r = _next_result(qtbot, win, lambda r: len(r.tiles) > 1)
    used = cam.fit_tile(160, 120, 16)
    assert len(r.tiles) <= cam.MAX_TILES and r.tiles[0].w == used > 16
    text = win.statusBar().currentMessage()
    assert "Tiles of 16 px" in text and f"at most {cam.MAX_TILES}" in text and f"{used} px" in text


def test_stopped_workers_still_running_are_never_dropped(make_window):
    import types

    win = make_window()
    waited = []
    running = [types.SimpleNamespace(isRunning=lambda: True, wait=lambda ms: waited.append(ms))
               for _ in range(3)]
    done = [types.SimpleNamespace(isRunning=lambda: False) for _ in range(6)]
    win._old_workers = running + done
    win._prune_old_workers()
    assert all(any(w is r for w in win._old_workers) for r in running)
    assert len(win._old_workers) == 3 + 4  # the finished ones beyond the last four are let go
    # closing waits for those still running too, within the window's one time limit
    win.close()
    assert len(waited) == 3 and all(0 <= ms <= 5000 for ms in waited)
    win._old_workers = []


def test_roi_drawn_with_the_mouse_is_remembered_per_source(qtbot, make_window, video):
    win = make_window()
    win.square_check.setChecked(False)
    win.open_source(Source.file(video))
    qtbot.waitUntil(lambda: win.view.frame_size() == (160, 120))
    t = win.view.image_rect()
    s = t.width() / 160

    def at(x, y):
        return QPoint(int(t.x() + x * s + 0.5), int(t.y() + y * s + 0.5))

    qtbot.mousePress(win.view, Qt.MouseButton.LeftButton, pos=at(20, 10))
    qtbot.mouseMove(win.view, at(100, 90))
    qtbot.mouseRelease(win.view, Qt.MouseButton.LeftButton, pos=at(100, 90))
    roi = win.roi()
    assert roi is not None
    assert abs(roi.x - 20) <= 1 and abs(roi.y - 10) <= 1
    assert abs(roi.w - 80) <= 2 and abs(roi.h - 80) <= 2
    _next_result(qtbot, win, lambda r: r.roi == roi)
    win.close()

    again = make_window()
    again.open_source(Source.file(video))
    qtbot.waitUntil(lambda: again.roi() == roi)
    other = video.parent / "other.mp4"
    other.write_bytes(video.read_bytes())
    again.open_source(Source.file(other))  # another source: its own (no) ROI
    qtbot.waitUntil(lambda: again.view.frame_size() == (160, 120))
    assert again.roi() is None


def test_snapshot_emits_an_existing_png_of_the_roi(qtbot, make_window, video):
    win = make_window()
    win.open_source(Source.file(video))
    win.set_roi(Roi(10, 10, 50, 40))
    _next_result(qtbot, win)
    with qtbot.waitSignal(win.snapshot_taken, timeout=5000) as sig:
        win.snapshot_action.trigger()
    path = Path(sig.args[0])
    assert path.exists() and path.parent == cam.snapshots_dir() and path.suffix == ".png"
    assert cv2.imread(str(path)).shape == (40, 50, 3)
    win.roi_only_check.setChecked(False)
    with qtbot.waitSignal(win.snapshot_taken, timeout=5000) as sig2:
        win.snapshot()
    assert Path(sig2.args[0]) != path and cv2.imread(sig2.args[0]).shape == (120, 160, 3)


def test_a_snapshot_is_saved_without_holding_up_the_window_and_not_lost_on_close(
        qtbot, make_window, video, monkeypatch):
    win = make_window()
    win.open_source(Source.file(video))
    _next_result(qtbot, win)
    release = threading.Event()
    real = cam.save_snapshot

    def slow_save(*args, **kwargs):   # a 16-megapixel PNG on a slow disk
        assert release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(cam, "save_snapshot", slow_save)
    before = set(cam.snapshots_dir().glob("*.png")) if cam.snapshots_dir().is_dir() else set()
    with qtbot.assertNotEmitted(win.snapshot_taken, wait=50):
        assert win.snapshot()   # returns while the frame is still being written
    assert win.saves_pending() == 1 and "Saving snapshot" in win.statusBar().currentMessage()
    assert not win.snapshot_action.autoRepeat()   # a held S is one frame
    from inspector.gui.camera_window.window import MAX_PENDING_SAVES

    for _ in range(MAX_PENDING_SAVES - 1):
        assert win.snapshot()
    assert not win.snapshot()   # the disk is behind: refused and said, not queued without end
    assert "Not taken: still saving" in win.statusBar().currentMessage()
    taken = []
    win.snapshot_taken.connect(taken.append)
    threading.Timer(0.2, release.set).start()
    win.close()   # waits for the saves and lists them
    assert len(taken) == len(set(taken)) == MAX_PENDING_SAVES
    assert all(Path(t).exists() and Path(t) not in before for t in taken)
    assert win.saves_pending() == 0


def test_a_save_that_outlasts_the_close_of_a_deleted_window_is_still_written(
        qtbot, classifier, video, monkeypatch, caplog):
    """The app deletes the camera window on close; a frame still being written then (a slow
    disk, past SAVE_CLOSE_WAIT_S) is written all the same and its end reaches no deleted
    object."""
    from PySide6.QtCore import QEvent

    from inspector.gui.camera_window import CameraWindow, window as camera_window

    monkeypatch.setattr(camera_window, "SAVE_CLOSE_WAIT_S", 0.1)
    win = CameraWindow(lambda: classifier, camera_probe=lambda: [], policy=FAST)
    win.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    win.show()
    win.open_source(Source.file(video))
    _next_result(qtbot, win)
    release = threading.Event()
    real = cam.save_snapshot
    written = []

    def slow_save(*args, **kwargs):
        assert release.wait(10)
        written.append(real(*args, **kwargs))
        return written[-1]

    monkeypatch.setattr(cam, "save_snapshot", slow_save)
    assert win.snapshot()
    saver = win._saver
    destroyed = []
    win.destroyed.connect(lambda: destroyed.append(True))
    win.close()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert destroyed
    release.set()
    saver.shutdown(wait=True)
    QApplication.processEvents()   # the relay's late signal: dropped, no deleted window called
    assert len(written) == 1 and written[0].exists()
    assert "exception calling callback" not in caplog.text


def _keep_gui_busy_until(condition, timeout: float = 10.0) -> None:
    """Blocks the GUI thread (no events processed) while the worker goes on: a GUI thread that
    falls behind the analysis, as under a loaded CPU."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.005)


def test_a_result_and_its_frame_are_on_screen_together(qtbot, make_window, video):
    win = make_window()
    win._display_timer.stop()  # the display timer has not ticked yet when the first result comes
    win.open_source(Source.file(video))
    r = _next_result(qtbot, win)
    assert win.view.frame_size() == (160, 120) and win.shown_frame.index >= r.frame.index
    with qtbot.waitSignal(win.snapshot_taken, timeout=5000):
        win.snapshot_action.trigger()  # a result on screen: a frame to save
    # a late result of a model just replaced by another with the same class names is not
    # shown as the new one's (nor counted in its unknown share)
    from dataclasses import replace

    assert win._is_current(r) and not win._is_current(replace(r, model_key=id(object())))


def test_a_busy_gui_shows_the_newest_result_for_the_current_roi(qtbot, make_window, classifier,
                                                                video):
    win = make_window()
    win.overlay_check.setChecked(False)
    win.open_source(Source.file(video))
    first = Roi(0, 0, 96, 96)
    win.set_roi(first)
    _next_result(qtbot, win, lambda r: r.roi == first)
    grabber = win.grabber
    taken = grabber.stats.taken
    _keep_gui_busy_until(lambda: grabber.stats.taken >= taken + 3)  # results for `first` wait
    second = Roi(40, 20, 64, 64)
    win.set_roi(second)
    QApplication.processEvents()
    # what was computed for the old region is not shown over the new one
    assert win.view.result is None or win.view.result.roi == second
    shown = _next_result(qtbot, win, lambda r: r.roi == second).frame.index
    taken = grabber.stats.taken
    _keep_gui_busy_until(lambda: grabber.stats.taken >= taken + 3)  # several results pile up
    bars = []

    def newer(result) -> bool:
        # the bars as they stand when the result is announced: a newer result may be shown
        # before the wait returns (Qt delivers the posted events of one pass after quit())
        bars.append(win.chart.values())
        return result.frame.index > shown

    r = _next_result(qtbot, win, newer)
    # the bars show the result just announced (not one of a backlog processed with it)
    expected = classifier.classify(classifier.prepare(second.crop(r.frame.image)))[0]
    np.testing.assert_allclose(bars[-1], expected, atol=PROB_ATOL)
    assert win.stats()["results"] >= 5  # results passed over still count as classified


def test_shift_number_files_the_frame_under_a_class(qtbot, make_window, classifier, video, tmp_path):
    win = make_window()
    win.open_source(Source.file(video))
    _next_result(qtbot, win)
    assert not win.save_labelled(0)  # no data folder yet: a message, nothing written
    assert "data folder" in win.statusBar().currentMessage()
    (tmp_path / "data").mkdir()   # chosen in a folder dialog: it exists
    win.set_data_folder(tmp_path / "data")
    win.activateWindow()
    win.setFocus()
    with qtbot.waitSignal(win.sample_saved, timeout=5000) as sig:
        qtbot.keyClick(win, Qt.Key.Key_3, Qt.KeyboardModifier.ShiftModifier)
    path, name = Path(sig.args[0]), sig.args[1]
    assert name == classifier.class_names[2]
    assert path.parent == tmp_path / "data" / name and path.exists()
    with qtbot.waitSignal(win.sample_saved, timeout=5000) as sig2:
        assert win.save_labelled(2)
    second = Path(sig2.args[0])
    assert second != path and path.exists() and second.exists()  # never over the first
    moved = tmp_path / "elsewhere"   # the stick pulled: said, and not made again here
    (tmp_path / "data").rename(moved)
    with qtbot.assertNotEmitted(win.sample_saved, wait=100):
        assert win.save_labelled(2)   # taken; the saving thread finds the folder gone
        qtbot.waitUntil(lambda: win.saves_pending() == 0, timeout=5000)
    assert "not found" in win.statusBar().currentMessage() and not (tmp_path / "data").exists()
    (moved).rename(tmp_path / "data")
    # a key for each of up to nine classes, as in the review window (a 7-class plant model)
    assert len(win.label_actions) == 9
    assert [a.isEnabled() for a in win.label_actions] == [
        i < len(classifier.class_names) for i in range(9)]


class _Flaky:
    """A camera that delivers a few frames, then drops out mid-stream."""

    def __init__(self, frames: int):
        self.frames = frames
        self.tick = threading.Event()

    def read(self):
        self.tick.wait(0.01)  # ~100 frames/s
        if self.frames <= 0:
            return False, None
        self.frames -= 1
        return True, np.full((48, 64, 3), 120, np.uint8)

    def release(self):
        pass


def test_a_failing_source_shows_the_fault_and_reconnects(qtbot, make_window, classifier):
    captures = [_Flaky(5), SourceError("Stream rtsp://op:****@cam7/live cannot be opened"),
                _Flaky(10 ** 6)]
    calls = []

    def factory(source):
        calls.append(source)
        item = captures.pop(0) if captures else _Flaky(10 ** 6)
        if isinstance(item, Exception):
            raise item
        return item

    win = make_window(capture_factory=factory)
    statuses = []
    win.status_changed.connect(statuses.append)
    win.open_source(Source.url("rtsp://op:pa55word@cam7/live"))
    assert "pa55word" not in win.url_edit.text() and "****" in win.url_edit.text()
    qtbot.waitUntil(lambda: any(s.state is State.RECONNECTING for s in statuses), timeout=10000)
    fault = next(s for s in statuses if s.state is State.RECONNECTING)
    assert "disconnected" in fault.message and "reconnecting in" in fault.message
    assert "rtsp://op:****@cam7/live" in fault.message
    qtbot.waitUntil(lambda: [s.state for s in statuses].count(State.LIVE) >= 2, timeout=10000)
    _next_result(qtbot, win, lambda r: r.frame.index > 5)  # results flow again
    assert len(calls) == 3
    assert all("pa55word" not in s.message for s in statuses)
    assert "pa55word" not in win.status_text() and "pa55word" not in win.windowTitle()
    win.close()
    from inspector.settings import settings_path

    saved = settings_path().read_text()
    assert "[camera]" in saved and "pa55word" not in saved  # nor in the settings file


def test_a_lost_camera_and_a_failing_model_do_not_look_live(qtbot, make_window, classifier):
    """While the camera reconnects, the last frame's verdict was shown as a live one and the
    rates stayed at their last values; a model failing on every frame was said for 8 s and then
    looked like a live feed; a message ("Snapshot saved") hid the stream's state."""
    from inspector.camera import live
    from inspector.gui.camera_window.window import STALE_PREFIX

    lost = threading.Event()

    class _Lost(_Flaky):
        def read(self):
            if self.frames <= 0:
                lost.set()
            return super().read()

    opened = []

    def factory(source):
        opened.append(source)
        if len(opened) > 1 and not ok_again.is_set():
            raise SourceError("camera 7 cannot be opened")
        return _Lost(40 if len(opened) == 1 else 10 ** 6)

    ok_again = threading.Event()
    slow = cam.ReconnectPolicy(initial=0.3, factor=1.0, maximum=0.3, stall_timeout=2.0,
                               open_timeout=2.0)
    win = make_window(capture_factory=factory, policy=slow)
    win.open_source(Source.url("rtsp://cam7/live"))
    _next_result(qtbot, win)
    win.snapshot()   # a message in the status bar: the state stays visible beside it
    assert win.state_label.isVisible()
    qtbot.waitUntil(lambda: win.status().state is State.RECONNECTING, timeout=10000)
    assert win.prediction_label.text().startswith(STALE_PREFIX)
    assert "reconnecting" in win.view.banner and win.state_label.isVisible()
    qtbot.waitUntil(lambda: win.stats()["capture_fps"] == 0.0, timeout=8000)   # not the old rate
    ok_again.set()
    qtbot.waitUntil(lambda: win.status().state is State.LIVE, timeout=10000)
    _next_result(qtbot, win)   # a result of the live stream: a live verdict again
    assert not win.prediction_label.text().startswith(STALE_PREFIX) and win.view.banner == ""

    real = live.analyse
    calls = []

    def failing(*a, **k):
        calls.append(1)
        raise RuntimeError("Interpreter failed to invoke")

    live.analyse = failing
    try:
        qtbot.waitUntil(lambda: "analysis failing since" in win.status_text(), timeout=8000)
        assert "Interpreter failed" in win.status_text() and "rtsp://cam7/live" in win.status_text()
        assert win.prediction_label.text().startswith(STALE_PREFIX)
        assert win.view.banner.startswith("not analysed")
        assert not win._drawing_on_result()   # the feed stays live, marked
        qtbot.waitUntil(lambda: win.stats()["classified_fps"] == 0.0, timeout=8000)
    finally:
        live.analyse = real
    _next_result(qtbot, win)
    assert "failing" not in win.status_text() and win.view.banner == ""
    assert not win.prediction_label.text().startswith(STALE_PREFIX)


def test_the_picture_under_a_tile_grid_is_the_frame_it_was_read_from(qtbot, make_window, video):
    """A model slower than the camera: the grid and the overlay were drawn on frames up to 30
    newer than the one they were computed from."""
    win = make_window()
    win.tile_check.setChecked(True)
    win.tile_spin.setValue(48)
    win.open_source(Source.file(video))
    for _ in range(4):
        r = _next_result(qtbot, win, lambda r: len(r.tiles) > 1)
        for _ in range(2):   # display ticks after the result must not put newer frames under it
            with qtbot.waitSignal(win._display_timer.timeout, timeout=2000):
                pass
        assert win._drawing_on_result()
        shown = win.shown_frame
        assert shown.index == win.view.result.frame.index


class _StuckAfter(_Flaky):
    """A network camera whose driver stops returning from read() after a few frames."""

    def __init__(self, frames: int):
        super().__init__(frames)
        self.stuck = threading.Event()
        self.release_driver = threading.Event()

    def read(self):
        if self.frames <= 0:
            self.stuck.set()
            self.release_driver.wait(30)
        return super().read()


def test_stop_does_not_wait_for_a_reader_stuck_in_the_driver(qtbot, make_window):
    from inspector.gui.camera_window.window import STOP_WAIT_S

    cap = _StuckAfter(3)
    win = make_window(capture_factory=lambda source: cap)
    win.open_source(Source.url("rtsp://cam9/live"))
    qtbot.waitUntil(cap.stuck.is_set, timeout=10000)
    grabber = win._grabber
    t0 = time.monotonic()
    win.stop_source()
    waited = time.monotonic() - t0
    try:
        # the GUI thread waited about STOP_WAIT_S for the reader (before: 3 s more), then left
        # it to return on its own
        assert waited < 4 * STOP_WAIT_S
        assert not grabber.join(0.0) and win.status().state is State.STOPPED
    finally:
        cap.release_driver.set()
    assert grabber.join(5.0)


def test_pause_freezes_and_close_joins_the_threads(qtbot, make_window, video):
    win = make_window()
    win.open_source(Source.file(video))
    _next_result(qtbot, win)
    win.pause_action.trigger()
    assert win.is_paused() and win.pause_button.text() == "Resume"
    shown, captured, dropped = win.shown_frame, win.stats()["captured"], win.stats()["dropped"]
    # frames keep arriving (the source is still read, events are processed meanwhile) ...
    qtbot.waitUntil(lambda: win.stats()["captured"] >= captured + 4)
    assert win.shown_frame is shown  # ... but the picture stays
    assert win.stats()["dropped"] <= dropped + 1  # skipped while paused: not counted as dropped
    # paused, and a source opened: it shows live (a pause does not carry over to it)
    win.open_source(Source.file(video))
    assert not win.is_paused() and win.pause_button.text() == "Pause"
    _next_result(qtbot, win)
    grabber, worker = win.grabber, win.inference
    win.close()
    assert worker.isFinished()
    assert not grabber.running and grabber.join(0)
    assert win.status().state is State.STOPPED


def test_camera_list_and_bad_input_messages(qtbot, make_window, tmp_path):
    win = make_window(camera_probe=lambda: [CameraInfo(0, 640, 480), CameraInfo(2, 0, 0)])
    qtbot.waitUntil(lambda: win.camera_indices() == [0, 2])
    assert win.camera_combo.itemText(0) == "Camera 0 (640x480)"
    none = make_window(camera_probe=lambda: [])
    qtbot.waitUntil(lambda: none.camera_combo.itemText(0) == "No camera found")
    assert none.source_from_picker() is None  # a message instead of opening nothing
    none.open_source(Source.camera(3))            # opened from code: the picker shows it
    assert none.source_from_picker() == Source.camera(3)
    none.open_source(Source.file(tmp_path / "missing.mp4"))
    qtbot.waitUntil(lambda: none.status().state is State.FAILED)
    assert "missing.mp4: file not found" in none.status_text()


def test_without_a_model_the_feed_is_shown_but_not_classified(qtbot, make_window, video):
    win = make_window(provider=lambda: None)
    win.open_source(Source.file(video))
    qtbot.waitUntil(lambda: win.shown_frame is not None)
    assert win.prediction_label.text() == "No model"
    assert win.stats()["results"] == 0


def test_cameras_can_be_found_again_after_the_window_was_closed(qtbot, make_window):
    calls = []
    win = make_window(camera_probe=lambda: calls.append(1) or [CameraInfo(1, 640, 480)])
    qtbot.waitUntil(lambda: win.camera_indices() == [1])
    win.close()
    win.show()
    win.refresh_cameras()
    qtbot.waitUntil(lambda: len(calls) == 2 and win.camera_indices() == [1])
    assert win.refresh_button.isEnabled()


def test_camera_settings_that_cannot_be_saved_are_said(make_window, tmp_path):
    """The camera window wrote through a settings store of its own, which told nobody when the
    file could not be written: its source, overlay and region came back as they were."""
    from inspector.gui.settings import Settings

    (tmp_path / "settings.ini").mkdir()          # a folder where the file goes
    store = Settings(tmp_path / "settings.ini")
    said = []
    store.on_unsaved = said.append
    win = make_window(settings=store)
    win.close()
    assert len(said) == 1 and str(tmp_path / "settings.ini") in said[0]


def test_space_presses_the_focused_control_and_ctrl_w_closes(make_window, qtbot):
    """Space on a focused button or check box paused the stream instead of pressing it, and the
    window's Close answered only Ctrl+F4 (the first of the platform's Close keys)."""
    win = make_window()
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    assert win.view.hasFocus()                             # the frame has the keys at first
    before = win.overlay_check.isChecked()
    win.overlay_check.setFocus()
    qtbot.waitUntil(win.overlay_check.hasFocus, timeout=5000)
    qtbot.keyClick(win.overlay_check, Qt.Key.Key_Space)
    assert win.overlay_check.isChecked() != before and not win.pause_action.isChecked()
    win.view.setFocus()                                    # a click on the frame
    qtbot.waitUntil(win.view.hasFocus, timeout=5000)
    qtbot.keyClick(win.view, Qt.Key.Key_Space)            # there Space pauses
    assert win.pause_action.isChecked()
    assert "(Space)" in win.pause_button.toolTip() and "(S)" in win.snapshot_button.toolTip()
    qtbot.keyClick(win, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    assert not win.isVisible()

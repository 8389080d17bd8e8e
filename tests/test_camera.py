"""The Qt-free live camera core: sources, the newest-frame grabber, reconnects, ROI and tiling,
URL masking, live analysis and saving frames. Sources are small files the tests write and fake
captures injected through the grabber's factory."""
from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from synth import PROB_ATOL
from inspector import camera as cam
from inspector.camera import (CameraInfo, FolderCapture, FrameGrabber, LiveConfig, ReconnectPolicy,
                              Roi, Source, SourceError, SourceKind, State, mask_url, tile_grid)

FAST = ReconnectPolicy(initial=0.01, factor=2.0, maximum=0.04, stall_timeout=0.3, open_timeout=2.0,
                       stable_after=0.0)


# ---------------------------------------------------------------------------------------------
# Small sources written by the tests

def write_video(path: Path, frames: int = 12, size=(96, 72), fps: float = 30.0) -> Path:
    """An mp4v video whose frame k is a flat grey of level 20 * k (BGR == RGB for grey)."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert w.isOpened()
    for k in range(frames):
        w.write(np.full((size[1], size[0], 3), 20 * k, np.uint8))
    w.release()
    return path


def write_sequence(folder: Path, frames: int = 5, size=(40, 30)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(frames):
        cv2.imwrite(str(folder / f"f_{k:04d}.png"), np.full((size[1], size[0], 3), 40 * k, np.uint8))
    return folder


_FAKES: list["FakeCapture"] = []


class FakeCapture:
    """A capture that hands out the frames it is given (a queue), then fails or blocks."""

    def __init__(self, levels=(), then: str = "fail", size=(32, 24), interval: float = 0.0):
        """``levels``: grey level of each frame (None: endless); ``interval``: seconds between
        frames, like a camera's frame rate."""
        _FAKES.append(self)
        self.levels = itertools.cycle(range(250)) if levels is None else iter(list(levels))
        self.interval = interval
        self.then = then            # "fail": read() returns False; "block": waits for `unblock`
        self.size = size
        self.unblock = threading.Event()
        self.released = threading.Event()
        self.gate: threading.Semaphore | None = None  # when set, each read waits for a release

    def read(self):
        if self.gate is not None:
            self.gate.acquire(timeout=10)
        if self.interval:
            self.unblock.wait(self.interval)
        level = next(self.levels, None)
        if level is not None:
            return True, np.full((self.size[1], self.size[0], 3), level, np.uint8)
        if self.then == "block":
            self.unblock.wait(10)
            return True, np.full((self.size[1], self.size[0], 3), 99, np.uint8)
        return False, None

    def release(self):
        self.released.set()


class Factory:
    """Hands out prepared captures (or raises prepared errors) in order; counts calls."""

    def __init__(self, *items):
        self.items = list(items)
        self.calls = 0

    def __call__(self, source):
        self.calls += 1
        item = self.items.pop(0) if self.items else FakeCapture(None, interval=0.005)
        if isinstance(item, Exception):
            raise item
        return item


class StatusLog:
    def __init__(self):
        self.items: list[cam.StreamStatus] = []
        self.cond = threading.Condition()

    def __call__(self, status):
        with self.cond:
            self.items.append(status)
            self.cond.notify_all()

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.items), timeout)

    def states(self):
        return [s.state for s in self.items]


@pytest.fixture
def grabbers():
    made: list[FrameGrabber] = []
    yield made
    for f in _FAKES:  # let reads that block for the test's sake return
        f.unblock.set()
        if f.gate is not None:
            f.gate.release(10000)
    _FAKES.clear()
    for g in made:
        assert g.close(5.0), "grabber threads did not end"


# ---------------------------------------------------------------------------------------------
# URL masking

@pytest.mark.parametrize("url, shown", [
    ("rtsp://user:secret@host/stream", "rtsp://user:****@host/stream"),
    ("rtsp://admin:s3cr3t@10.0.0.7:554/Streaming/Channels/101",
     "rtsp://admin:****@10.0.0.7:554/Streaming/Channels/101"),
    ("rtsp://user:p@ss/w:rd@cam:554/live", "rtsp://user:****@cam:554/live"),
    ("http://cam/snap.cgi?user=admin&password=hunter22&res=1",
     "http://cam/snap.cgi?user=admin&password=****&res=1"),
    ("rtsp://u:abc@h/s?token=xyz", "rtsp://u:****@h/s?token=****"),
    ("rtsp://host:554/stream", "rtsp://host:554/stream"),
    ("rtsp://user@host/stream", "rtsp://user@host/stream"),
    ("/videos/line 3.mp4", "/videos/line 3.mp4"),
])
def test_mask_url(url, shown):
    assert mask_url(url) == shown


def test_a_url_the_video_back_end_cannot_stream_is_said_at_once():
    """A scheme the video back end does not open (smb://, a typo such as rstp://) used to
    reconnect for ever with the generic "cannot be opened" message."""
    from inspector.camera import url_problem

    assert url_problem("rtsp://u:pw@cam/live") is None and url_problem("HTTPS://cam/m.mjpg") is None
    assert url_problem("ftp://nas/line3.mp4") is None
    said = url_problem("rstp://op:secret@cam/live")
    assert "rstp:// is not a stream" in said and "secret" not in said and "rtsp://" in said
    assert "not a URL" in url_problem("cam-3.local/live")


def test_source_never_shows_the_password():
    s = Source.url("rtsp://op:Tr0ub4dor@line3-cam.local:554/h264")
    for text in (s.display, s.key, s.stem, s.scrub(f"could not open {s.target}: Tr0ub4dor")):
        assert "Tr0ub4dor" not in text
    assert s.display == "rtsp://op:****@line3-cam.local:554/h264"
    assert s.stem == "line3-cam.local"
    assert Source.camera(2).display == "camera 2" and Source.camera(2).is_live
    assert not Source.file("/x/a.mp4").is_live and Source.file("/x/a.mp4").stem == "a"


# ---------------------------------------------------------------------------------------------
# ROI and tiling

def test_roi_from_points_square_and_clamp():
    assert Roi.from_points(50, 40, 10, 100) == Roi(10, 40, 40, 60)
    assert Roi.from_points(50, 40, 10, 100, square=True) == Roi(10, 40, 40, 40)
    assert Roi.from_points(10, 10, 30, 5, square=True) == Roi(10, 5, 5, 5)
    assert Roi(-10, 20, 50, 500).clamp(100, 80) == Roi(0, 20, 40, 60)
    assert Roi(200, 0, 10, 10).clamp(100, 80) is None
    img = np.arange(12 * 10).reshape(12, 10)
    assert Roi(2, 3, 4, 5).crop(img).shape == (5, 4)


def test_roi_text_round_trip_and_scaling():
    roi = Roi(100, 50, 200, 200)
    text = roi.to_text(640, 480)
    assert Roi.from_text(text, 640, 480) == roi
    assert Roi.from_text(text, 320, 240) == Roi(50, 25, 100, 100)
    assert Roi.from_text("garbage", 640, 480) is None


@pytest.mark.parametrize("w, h, tile", [(200, 200, 200), (640, 200, 200), (450, 330, 100),
                                        (150, 90, 200), (201, 200, 200)])
def test_tile_grid_covers_roi_with_full_tiles(w, h, tile):
    roi = Roi(7, 11, w, h)
    tiles, rows, cols = tile_grid(roi, tile)
    assert len(tiles) == rows * cols
    assert cols == max(1, -(-w // tile)) and rows == max(1, -(-h // tile))
    cover = np.zeros((h, w), bool)
    for t in tiles:
        assert (t.w, t.h) == (min(tile, w), min(tile, h))
        assert t.x >= roi.x and t.y >= roi.y
        assert t.x + t.w <= roi.x + roi.w and t.y + t.h <= roi.y + roi.h
        cover[t.y - roi.y:t.y - roi.y + t.h, t.x - roi.x:t.x - roi.x + t.w] = True
    assert cover.all()
    # row-major order
    assert [t.y for t in tiles] == sorted(t.y for t in tiles)


def test_reconnect_delays_grow_and_are_capped():
    p = ReconnectPolicy(initial=0.5, factor=2.0, maximum=4.0)
    assert [p.delay(a) for a in range(0, 7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_to_rgb_handles_bgr_grey_bgra_and_16_bit():
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 2] = 255  # red in OpenCV's order
    assert cam.to_rgb(bgr)[0, 0].tolist() == [255, 0, 0]
    assert cam.to_rgb(np.full((2, 3), 7, np.uint8)).shape == (2, 3, 3)
    assert cam.to_rgb(np.zeros((2, 3, 4), np.uint8)).shape == (2, 3, 3)
    assert cam.to_rgb(np.full((2, 2), 65535, np.uint16))[0, 0, 0] == 255
    # every layout gives contiguous RGB with the right values, a view's strides included
    bgra = np.dstack([np.full((4, 5), v, np.uint8) for v in (10, 20, 30, 40)])
    for frame, rgb in [(bgra, [30, 20, 10]), (bgra[:, ::2, :3], [30, 20, 10]),
                       (np.full((4, 5, 1), 9, np.uint8), [9, 9, 9])]:
        out = cam.to_rgb(frame)
        assert out.flags.c_contiguous and out.dtype == np.uint8 and out.shape[2] == 3
        assert out[0, 0].tolist() == rgb and out.shape[:2] == frame.shape[:2]
    with pytest.raises(ValueError, match="empty frame"):
        cam.to_rgb(np.zeros((0, 640, 3), np.uint8))


def test_12_bit_frames_are_scaled_to_the_sensor_full_scale(tmp_path):
    ramp = (np.arange(64, dtype=np.uint16) * 65).reshape(8, 8)  # 0..4095: 12-bit data
    assert ramp.max() == 4095
    rgb = cam.to_rgb(ramp)
    assert rgb.max() == 255 and rgb[0, 0, 0] == 0
    assert cam.to_rgb(np.full((2, 2), 1023, np.uint16))[0, 0, 0] == 255  # 10-bit white
    # an image sequence of 12-bit PNGs is read at full depth, not truncated to black
    for k in range(2):
        assert cv2.imwrite(str(tmp_path / f"f{k}.png"), ramp)
    cv2.imwrite(str(tmp_path / "f2.webp"), np.zeros((8, 8, 3), np.uint8))  # not for review
    cap = FolderCapture(tmp_path)
    assert [p.name for p in cap.files] == ["f0.png", "f1.png"]
    ok, frame = cap.read()
    assert ok and frame.dtype == np.uint16
    bright = cam.to_rgb(frame)
    assert bright.shape == (8, 8, 3) and bright.max() == 255 and bright.mean() > 100


# ---------------------------------------------------------------------------------------------
# Opening sources

def test_probe_cameras_tolerates_none_and_broken_drivers():
    class Cap:
        def __init__(self, i):
            if i == 5:
                raise RuntimeError("driver crashed")
            self.i = i

        def isOpened(self):
            return self.i in (1, 3)

        def get(self, prop):
            return {3: 640, 4: 480}.get(prop, 0)

        def release(self):
            pass

    assert cam.probe_cameras(opener=Cap) == [CameraInfo(1, 640, 480), CameraInfo(3, 640, 480)]
    assert isinstance(cam.probe_cameras(), list)  # this machine has no camera: no exception


def test_open_capture_gives_clear_messages(tmp_path):
    with pytest.raises(SourceError, match="file not found") as e:
        cam.open_capture(Source.file(tmp_path / "missing.mp4"))
    assert e.value.permanent and "missing.mp4" in str(e.value)
    (tmp_path / "fake.mp4").write_bytes(b"not a video")
    with pytest.raises(SourceError, match="fake.mp4: not a video"):
        cam.open_capture(Source.file(tmp_path / "fake.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images in this folder"):
        cam.open_capture(Source.sequence(tmp_path / "empty"))
    with pytest.raises(SourceError, match="no images match"):
        cam.open_capture(Source.sequence(tmp_path / "empty" / "f_%04d.png"))


def test_a_sequence_pattern_is_listed_and_read_by_python(tmp_path):
    """OpenCV's image-sequence reader cannot open a non-ASCII path on Windows and reads 16-bit
    frames as 8-bit: a pattern is listed in Python (printf's rules) and read as a folder is."""
    from PIL import Image

    from inspector.camera.sources import pattern_files

    folder = tmp_path / "Łódź_nagrania"
    folder.mkdir()
    for k in (10, 2, 1):
        Image.fromarray(np.full((6, 8), 1000 * k, np.uint16)).save(folder / f"f_{k:04d}.png")
    for name in ("f_00003.png", "f_3.png", "g_0004.png", "f_0005.txt"):
        (folder / name).write_bytes(b"")
    assert [p.name for p in pattern_files(folder / "f_%04d.png")] == [
        "f_0001.png", "f_0002.png", "f_0010.png"]
    cap = cam.open_capture(cam.Source.sequence(folder / "f_%04d.png"))
    frames = [cap.read()[1] for _ in range(3)]
    assert [f.dtype for f in frames] == [np.uint16] * 3          # OpenCV's reader: 8-bit
    assert [int(f.max()) for f in frames] == [1000, 2000, 10000]
    assert cap.read() == (False, None)


def test_a_video_under_a_non_ascii_path_gets_its_short_name_on_windows(tmp_path):
    from inspector.camera.sources import video_path

    path = tmp_path / "Nagrania Łódź" / "line.mp4"
    assert video_path(path, platform="linux") == str(path)
    assert video_path(tmp_path / "line.mp4", platform="win32") == str(tmp_path / "line.mp4")
    assert video_path(path, platform="win32",
                      short_name=lambda p: "D:\\NAGRAN~1\\line.mp4") == "D:\\NAGRAN~1\\line.mp4"
    with pytest.raises(SourceError, match="move or rename it") as no_short:
        video_path(path, platform="win32", short_name=lambda p: "")
    assert no_short.value.permanent and str(path) in str(no_short.value)


def test_folder_capture_natural_order_and_skips_damaged_files(tmp_path):
    for name, level in (("f2.png", 20), ("f10.png", 100), ("f1.png", 10)):
        cv2.imwrite(str(tmp_path / name), np.full((4, 4, 3), level, np.uint8))
    (tmp_path / "f3.png").write_bytes(b"broken")
    cap = FolderCapture(tmp_path)
    levels = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        levels.append(int(img[0, 0, 0]))
    assert levels == [10, 20, 100]
    assert cap.skipped == [str(tmp_path / "f3.png")]


# ---------------------------------------------------------------------------------------------
# The grabber with real files

def _drain(grabber: FrameGrabber, until_state: State, timeout: float = 10.0) -> list[int]:
    """Takes frames until the grabber reaches ``until_state``; returns their grey levels."""
    levels = []
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        f = grabber.latest(timeout=0.05)
        if f is not None:
            levels.append(int(f.image[0, 0, 0]))
        elif grabber.status.state is until_state:
            f = grabber.latest(timeout=0)
            if f is not None:
                levels.append(int(f.image[0, 0, 0]))
            return levels
    raise AssertionError(f"no {until_state} within {timeout} s (now {grabber.status})")


def test_video_file_plays_to_the_end(tmp_path, grabbers):
    video = write_video(tmp_path / "line.mp4", frames=12)
    log = StatusLog()
    g = FrameGrabber(Source.file(video, loop=False, realtime=False), on_status=log)
    grabbers.append(g)
    g.start()
    levels = _drain(g, State.FINISHED)
    assert log.states()[:2] == [State.CONNECTING, State.LIVE]
    assert log.states()[-1] is State.FINISHED
    st = g.stats
    assert st.captured == 12 and st.taken + st.dropped == 12
    assert levels == sorted(levels) and levels[-1] == pytest.approx(220, abs=6)  # mp4v is lossy


def test_video_file_replays_at_its_frame_rate_and_loops(tmp_path, grabbers):
    video = write_video(tmp_path / "line.mp4", frames=6, fps=30)
    g = FrameGrabber(Source.file(video), policy=FAST)  # realtime, loop: like a camera
    grabbers.append(g)
    g.start()
    seen = []
    while len(seen) < 15:  # more frames than the file has: it started again
        f = g.latest(timeout=2.0)
        assert f is not None, g.status
        seen.append(f)
    assert g.stats.connections >= 2
    span = seen[-1].t_capture - seen[0].t_capture
    assert span >= 14 / 30 * 0.8  # paced, not decoded as fast as possible
    assert g.status.state is State.LIVE


@pytest.mark.parametrize("as_pattern", [True, False])
def test_image_sequence(tmp_path, grabbers, as_pattern):
    folder = write_sequence(tmp_path / "seq", frames=5)
    target = folder / "f_%04d.png" if as_pattern else folder
    g = FrameGrabber(Source.sequence(target, loop=False, realtime=False))
    grabbers.append(g)
    g.start()
    # take every frame: hold the source back until each one was taken
    levels = _drain(g, State.FINISHED)
    assert g.stats.captured == 5
    assert levels == sorted(levels) and levels[-1] == 160


def test_a_looping_sequence_names_its_unreadable_files_once(tmp_path, grabbers, caplog):
    import threading

    folder = write_sequence(tmp_path / "seq", frames=4)
    (folder / "f_0002.png").write_bytes(b"broken")
    noted, passes = threading.Event(), []

    def on_status(status):
        passes.append(status.message)
        if "unreadable" in status.message:
            noted.set()

    g = FrameGrabber(Source.sequence(folder, loop=True, realtime=False), on_status=on_status)
    grabbers.append(g)
    with caplog.at_level("WARNING"):
        g.start()
        deadline = time.monotonic() + 20
        # take the frames (the sequence plays on as they are taken) until three passes are done
        while not (noted.is_set() and g.stats.connections >= 3) and time.monotonic() < deadline:
            g.latest(0.5)
        assert noted.is_set() and g.stats.connections >= 3, passes
    assert "1 unreadable file(s) skipped (f_0002.png" in g.status.message
    assert g.status.state is State.LIVE
    assert caplog.text.count("f_0002.png") == 1          # named once, not at every pass


def test_missing_file_fails_once_with_a_clear_message(tmp_path, grabbers):
    factory_calls = []

    def factory(src):
        factory_calls.append(src)
        return cam.open_capture(src)

    g = FrameGrabber(Source.file(tmp_path / "gone.mp4"), factory=factory, policy=FAST)
    grabbers.append(g)
    g.start()
    assert g.wait_for_state(State.FAILED, 5)
    assert "gone.mp4: file not found" in g.status.message
    assert g.join(2) and len(factory_calls) == 1  # permanent: no retries


# ---------------------------------------------------------------------------------------------
# Newest frame, drops, reconnects, stalls (fake captures)

def test_keeps_only_the_newest_frame_and_counts_drops(grabbers):
    cap = FakeCapture(range(200), then="block")
    cap.gate = threading.Semaphore(0)
    patient = ReconnectPolicy(stall_timeout=30)  # the test holds frames back for a while
    g = FrameGrabber(Source.camera(0), factory=Factory(cap), policy=patient)
    grabbers.append(g)
    g.start()
    cap.gate.release(5)  # five frames arrive while nobody takes any
    assert _wait(lambda: g.stats.captured == 5)
    f = g.latest(timeout=1)
    assert f.index == 4 and f.image[0, 0, 0] == 4
    assert g.stats.dropped == 4 and g.latest(timeout=0.01) is None  # nothing newer yet
    g.counting_drops = False  # a paused consumer: skipped frames are not dropped ones
    cap.gate.release(3)
    assert _wait(lambda: g.stats.captured == 8)
    g.counting_drops = True
    cap.gate.release(1)
    assert _wait(lambda: g.stats.captured == 9)
    assert g.latest(timeout=1).index == 8
    assert g.stats.dropped == 4
    assert g.peek().index == 8  # peeking does not take


def _wait(predicate, timeout: float = 5.0) -> bool:
    """Polls ``predicate`` (state owned by another thread) until true or ``timeout``."""
    import time

    deadline, tick = time.monotonic() + timeout, threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.005)
    return True


def test_reconnects_with_back_off_after_open_failure_and_disconnect(grabbers):
    url = "rtsp://op:hunter22@cam/live"
    first_good = FakeCapture([10, 11, 12], then="fail")   # three frames, then disconnects
    factory = Factory(SourceError(f"Stream {mask_url(url)} cannot be opened"), first_good)
    log = StatusLog()
    g = FrameGrabber(Source.url(url), factory=factory, policy=FAST, on_status=log)
    grabbers.append(g)
    g.start()
    # open fails -> retry -> live -> disconnect -> retry (back-off starts again) -> live
    assert log.wait_for(lambda items: [s.state for s in items].count(State.LIVE) >= 2)
    states = log.states()
    assert states[:5] == [State.CONNECTING, State.RECONNECTING, State.LIVE, State.RECONNECTING,
                          State.LIVE]
    faults = [s for s in log.items if s.state is State.RECONNECTING]
    assert [f.attempt for f in faults] == [1, 1] and faults[0].retry_in == FAST.delay(1)
    assert "cannot be opened" in faults[0].message and "reconnecting in" in faults[0].message
    assert "disconnected" in faults[1].message
    assert factory.calls == 3 and g.stats.connections == 2
    assert all("hunter22" not in s.message for s in log.items)
    f = g.latest(timeout=2)
    assert f is not None and f.image[0, 0, 0] not in (10, 11, 12)  # from the new connection


def test_back_off_grows_for_a_stream_that_drops_after_a_frame(grabbers):
    """A connection that sends a frame and drops has not worked: the back-off keeps growing
    (it starts again only after ``stable_after`` seconds live)."""
    import dataclasses

    policy = dataclasses.replace(FAST, stable_after=60.0)
    flaky = [FakeCapture([k], then="fail") for k in range(4)]
    log = StatusLog()
    g = FrameGrabber(Source.url("rtsp://cam/live"), factory=Factory(*flaky), policy=policy,
                     on_status=log)
    grabbers.append(g)
    g.start()
    assert log.wait_for(lambda items: [s.state for s in items].count(State.RECONNECTING) >= 4)
    faults = [s for s in log.items if s.state is State.RECONNECTING]
    assert [f.attempt for f in faults[:4]] == [1, 2, 3, 4]


def test_back_off_grows_while_the_camera_stays_away(grabbers):
    errors = [SourceError("Camera 0 cannot be opened") for _ in range(4)]
    log = StatusLog()
    g = FrameGrabber(Source.camera(0), factory=Factory(*errors), policy=FAST, on_status=log)
    grabbers.append(g)
    g.start()
    assert log.wait_for(lambda items: items and items[-1].state is State.LIVE)
    faults = [s for s in log.items if s.state is State.RECONNECTING]
    assert [f.attempt for f in faults] == [1, 2, 3, 4]
    assert [f.retry_in for f in faults] == [0.01, 0.02, 0.04, 0.04]  # capped


def test_a_stalled_source_is_abandoned_and_reopened(grabbers):
    stuck = FakeCapture([5], then="block")  # one frame, then read() hangs
    log = StatusLog()
    g = FrameGrabber(Source.camera(1), factory=Factory(stuck), policy=FAST, on_status=log)
    grabbers.append(g)
    g.start()
    assert log.wait_for(lambda items: State.RECONNECTING in [s.state for s in items])
    stall = next(s for s in log.items if s.state is State.RECONNECTING)
    assert "no frame for 0.3 s" in stall.message
    assert log.wait_for(lambda items: items[-1].state is State.LIVE and len(items) >= 4)
    stuck.unblock.set()  # the abandoned read returns at last ...
    assert stuck.released.wait(5)  # ... and the old reader releases its capture
    f = g.latest(timeout=2)
    assert f is not None and f.image[0, 0, 0] != 99  # its late frame was not published


def test_a_new_reader_of_the_same_camera_waits_for_the_old_one_to_let_go(grabbers):
    """A camera opens once: a reader left inside the driver by Stop still holds it, so the next
    grabber of the same source opens it only after the old one has ended."""
    stuck = FakeCapture([5], then="block")
    old = FrameGrabber(Source.camera(1), factory=Factory(stuck), policy=FAST)
    grabbers.append(old)
    old.start()
    assert old.latest(timeout=5) is not None
    old.stop()
    assert not old.join(0.1)              # its reader is inside read()
    opened = threading.Event()

    def factory(source):
        assert stuck.released.is_set(), "opened while the old reader still held the camera"
        opened.set()
        return FakeCapture(None, interval=0.005)

    new = FrameGrabber(Source.camera(1), factory=factory, policy=FAST, after=old)
    grabbers.append(new)
    new.start()
    assert not opened.wait(0.3)           # still waiting for the old reader
    stuck.unblock.set()                   # the driver returns at last
    assert opened.wait(5) and new.latest(timeout=5) is not None


def test_a_read_that_raises_counts_as_a_disconnect(grabbers):
    class Exploding(FakeCapture):
        def read(self):
            raise RuntimeError("USB gone")

    log = StatusLog()
    g = FrameGrabber(Source.camera(0), factory=Factory(Exploding()), policy=FAST, on_status=log)
    grabbers.append(g)
    g.start()
    assert log.wait_for(lambda items: items and items[-1].state is State.LIVE)
    assert any("USB gone" in s.message for s in log.items if s.state is State.RECONNECTING)


def test_stop_ends_the_threads_even_while_reconnecting():
    g = FrameGrabber(Source.camera(0), factory=Factory(*[SourceError("no")] * 50),
                     policy=ReconnectPolicy(initial=30, maximum=30))
    g.start()
    assert g.wait_for_state(State.RECONNECTING, 5)
    assert g.close(2.0)
    assert g.status.state is State.STOPPED


# ---------------------------------------------------------------------------------------------
# Analysis

def _frame(image, index=0, t=0.0):
    return cam.Frame(np.ascontiguousarray(image), index, t)


@pytest.fixture(scope="module")
def scene():
    from synth import texture

    img = np.zeros((120, 160), np.uint8)
    for i in range(2):
        for j in range(3):
            img[i * 60:(i + 1) * 60, j * 53:(j + 1) * 53] = texture(i * 3 + j, 60, seed=1)[:, :53]
    return np.repeat(img[..., None], 3, axis=2)


class _CountingModel:
    """A stand-in model that records its calls (tiny inputs: the tile count is what matters)."""
    class_names = ["a", "b"]
    input_size = 4

    def __init__(self):
        self.batches, self.inspected = [], 0

    def prepare(self, arr):
        return np.zeros((4, 4, 3), np.float32)

    def classify(self, images):
        self.batches.append(len(images))
        return np.tile(np.array([[0.25, 0.75]], np.float32), (len(images), 1))

    def inspect(self, image, maps=None):
        import types
        self.inspected += 1
        return types.SimpleNamespace(probs=np.array([0.25, 0.75], np.float32),
                                     cam=lambda: np.ones((2, 2), np.float32), se_blocks=[])


def test_tiles_are_capped_and_classified_in_chunks():
    assert cam.fit_tile(100, 100, 50) == 50
    for w, h, tile in ((1000, 800, 16), (4096, 3000, 16), (5000, 20, 1), (64, 64, 1)):
        t = cam.fit_tile(w, h, tile)
        assert cam.tile_count(w, h, t) <= cam.MAX_TILES < cam.tile_count(w, h, t - 1)
    frame = _frame(np.zeros((800, 1000, 3), np.uint8))
    assert cam.tile_count(1000, 800, 16) > 3000  # what the user asked for
    m = _CountingModel()
    r = cam.analyse(m, frame, LiveConfig(tile=16))
    assert len(r.tiles) <= cam.MAX_TILES and r.tile_probs.shape == (len(r.tiles), 2)
    assert max(m.batches) <= cam.CLASSIFY_CHUNK and sum(m.batches) == len(r.tiles)
    assert len(m.batches) == -(-len(r.tiles) // cam.CLASSIFY_CHUNK)
    r = cam.analyse(m, frame, LiveConfig(tile=16, overlay=cam.OVERLAY_CAM))
    assert m.inspected == len(r.tiles) <= cam.MAX_TILES and r.heat.shape == (800, 1000)


def test_a_region_within_one_tile_is_read_whole_at_the_models_scale():
    """With tiles on, a region no larger than one tile is read as the review window reads an
    image no larger than its tiles: whole, a smaller one kept at the model's scale
    (inspector.tiles.as_trained), not enlarged as a lone tile would be."""
    class Recording(_CountingModel):
        input_size = 32          # no view record: one size, 32 px

        def prepare(self, arr):
            self.shapes.append(np.asarray(arr).shape)
            return np.zeros((32, 32, 3), np.float32)

    rng = np.random.default_rng(5)
    frame = _frame(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8))
    m = Recording()
    m.shapes = []
    cam.analyse(m, frame, LiveConfig(tile=32))
    assert m.shapes == [(32, 32, 3)]                 # 20 px in a 32 px square, not 20 px alone
    m.shapes = []
    cam.analyse(m, _frame(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), LiveConfig(tile=32))
    assert len(m.shapes) > 1 and set(m.shapes) == {(32, 32, 3)}   # tiles of a larger region


class _PatchModel:
    """A stand-in with a defect-free class: a tile is "scratch" where it holds a bright patch,
    "good" elsewhere, and blank (no contrast: even probabilities, unknown, score +inf) where it
    is one flat colour."""
    class_names = ["good", "scratch"]
    input_size = 8

    def prepare(self, arr):
        return np.asarray(arr, np.float32)

    def judge(self, images):
        import types
        probs, scores = [], []
        for x in images:
            if np.ptp(x) == 0:
                probs.append([0.5, 0.5])
                scores.append(np.inf)
            else:
                probs.append([0.1, 0.9] if x.max() > 200 else [0.95, 0.05])
                scores.append(1.0)
        scores = np.asarray(scores)
        return types.SimpleNamespace(probs=np.asarray(probs, np.float32), unknown_scores=scores,
                                     known=scores <= 5.0, padding=None)


def test_a_live_frame_is_judged_by_its_deciding_tile_as_in_the_review_window():
    rng = np.random.default_rng(3)
    img = rng.integers(60, 120, (64, 160, 3)).astype(np.uint8)   # good surface
    img[:, 128:] = 0                                             # a blank margin
    img[40:50, 40:50] = 250                                      # one small defect
    r = cam.analyse(_PatchModel(), _frame(img), LiveConfig(tile=32))
    assert r.grid == (2, 5)
    labels = r.tile_labels
    assert labels.count(1) == 1 and len(r.unknown_tiles) == 2    # the patch, the margin's tiles
    # the mean of the tiles would say "good"; the defect tile decides, the blank margin does not
    assert r.tile_probs.mean(axis=0).argmax() == 0
    assert r.winner == labels.index(1) and r.label_name == "scratch" and r.known
    assert r.verdict_text == "scratch  90.0%"
    # a frame all blank is unknown, and says why
    blank = cam.analyse(_PatchModel(), _frame(np.zeros((64, 64, 3), np.uint8)), LiveConfig(tile=32))
    assert not blank.known and "no contrast" in blank.verdict_text


def test_analyse_roi_gives_the_classifiers_probabilities(classifier, scene):
    roi = Roi(30, 20, 64, 64)
    r = cam.analyse(classifier, _frame(scene), LiveConfig(roi=roi))
    expected = classifier.classify(classifier.prepare(roi.crop(scene)))[0]
    np.testing.assert_allclose(r.probs, expected, atol=PROB_ATOL)
    assert r.roi == roi and r.tiles == [roi] and r.heat is None
    assert r.label == int(np.argmax(expected)) and r.class_names == classifier.class_names


def test_analyse_tiles_and_attention(classifier, scene):
    roi = Roi(0, 0, 160, 100)
    r = cam.analyse(classifier, _frame(scene), LiveConfig(roi=roi, tile=64, overlay="cam"))
    assert r.grid == (2, 3) and len(r.tiles) == 6
    for t, p in zip(r.tiles, r.tile_probs):
        ins = classifier.inspect(classifier.prepare(t.crop(scene)))
        np.testing.assert_allclose(p, ins.probs, atol=PROB_ATOL)
    # the frame's verdict is its most confident tile's (this stand-in has no defect-free class)
    assert r.winner == int(np.argmax(r.tile_probs.max(axis=1)))
    np.testing.assert_array_equal(r.probs, r.tile_probs[r.winner])
    assert r.heat.shape == (100, 160) and 0 <= r.heat.min() and r.heat.max() <= 1
    se = cam.analyse(classifier, _frame(scene), LiveConfig(roi=Roi(0, 0, 64, 64), overlay="se1"))
    assert se.heat.shape == (64, 64)
    with pytest.raises(ValueError, match="unknown attention map"):
        cam.analyse(classifier, _frame(scene), LiveConfig(overlay="nope"))


def test_a_non_square_roi_is_read_as_the_model_learnt_square_images(classifier, scene):
    from inspector.attention import CAM, attention_map
    from inspector.engine import upsample
    from training.images import crop_to_box, reflect_to_square, square_box

    roi = Roi(10, 10, 96, 40)
    r = cam.analyse(classifier, _frame(scene), LiveConfig(roi=roi, overlay="cam"))
    x = classifier.prepare(reflect_to_square(roi.crop(scene), classifier.input_size))  # not stretched
    ins = classifier.inspect(x)
    np.testing.assert_allclose(r.probs, ins.probs, atol=PROB_ATOL)
    # the overlay is the map over the region itself, not over its reflections
    expected = upsample(crop_to_box(attention_map(ins, CAM), square_box(40, 96)), 40, 96)
    assert r.heat.shape == (40, 96)
    np.testing.assert_allclose(r.heat, expected, atol=0.05)


def test_analyse_roi_outside_a_smaller_frame_falls_back_to_the_whole_frame(classifier, scene):
    r = cam.analyse(classifier, _frame(scene[:50, :50]), LiveConfig(roi=Roi(100, 80, 40, 40)))
    assert r.roi == Roi(0, 0, 50, 50)


class SlowModel:
    """A stand-in model that takes a while per call (to make the consumer slower than the
    source) and answers class 0."""

    class_names = ["a", "b"]
    input_size = 8

    def __init__(self, seconds):
        self.seconds = seconds
        self.calls = 0

    def prepare(self, arr):
        return arr[:8, :8]

    def classify(self, images):
        self.calls += 1
        threading.Event().wait(self.seconds)  # simulated inference time
        return np.tile([[0.7, 0.3]], (len(images), 1))

    def inspect(self, image, maps=None):  # pragma: no cover - not used here
        raise NotImplementedError


def test_inference_loop_drops_frames_instead_of_queueing(grabbers):
    cap = FakeCapture(None, interval=0.002)  # a 500 frames/s camera
    g = FrameGrabber(Source.camera(0), factory=Factory(cap), policy=FAST)
    grabbers.append(g)
    g.start()
    results = []
    done = threading.Event()

    def emit(r):
        results.append(r)
        if len(results) >= 5:
            done.set()

    model = SlowModel(0.03)
    t = threading.Thread(target=cam.inference_loop,
                         args=(g, lambda: model, lambda: LiveConfig(), emit, done.is_set))
    t.start()
    assert done.wait(10)
    t.join(5)
    assert not t.is_alive()
    idx = [r.frame.index for r in results]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    # each result is of a frame that was newest when the model got free: many skipped between
    assert g.stats.dropped > 0 and max(np.diff(idx)) > 1
    assert all(r.latency >= 0.03 for r in results)


def test_inference_loop_reports_errors_and_goes_on(grabbers):
    cap = FakeCapture(None, interval=0.005)
    g = FrameGrabber(Source.camera(0), factory=Factory(cap), policy=FAST)
    grabbers.append(g)
    g.start()
    errors, results = [], []
    stop = threading.Event()

    class Flaky(SlowModel):
        def classify(self, images):
            self.calls += 1
            if self.calls <= 2:
                raise RuntimeError("out of memory")
            return super().classify(images)

    def emit(r):
        results.append(r)
        stop.set()

    model = Flaky(0.0)
    worker = threading.Thread(target=cam.inference_loop,
                              args=(g, lambda: model, lambda: LiveConfig(), emit, stop.is_set),
                              kwargs={"on_error": errors.append})
    worker.start()
    assert stop.wait(10)
    worker.join(5)
    assert errors == ["analysis failed: out of memory"]  # once, not per frame
    assert results


# ---------------------------------------------------------------------------------------------
# Saving frames

def test_saving_never_overwrites(tmp_path):
    img = np.zeros((5, 6, 3), np.uint8)
    img[..., 0] = 200  # red
    existing = tmp_path / "snap.png"
    existing.write_bytes(b"keep me")
    paths = [cam.save_png_new(img, tmp_path, "snap") for _ in range(3)]
    assert [p.name for p in paths] == ["snap-2.png", "snap-3.png", "snap-4.png"]
    assert existing.read_bytes() == b"keep me"
    back = cv2.imread(str(paths[0]))[..., ::-1]
    assert back.shape == (5, 6, 3) and back[0, 0].tolist() == [200, 0, 0]
    assert not list(tmp_path.glob(".*tmp"))  # no leftovers


def test_snapshot_and_labelled_folders(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    src = Source.url("rtsp://a:secret@cam9/x")
    snap = cam.save_snapshot(img, src)
    assert snap.parent == cam.snapshots_dir() and snap.exists()
    assert snap.name.startswith("cam9_") and "secret" not in snap.name
    with pytest.raises(FileNotFoundError, match="data folder .* not found"):
        # a data folder on a removed drive is not made again on the local disk
        cam.save_labelled(img, tmp_path / "data", "scratches", src)
    assert not (tmp_path / "data").exists()
    (tmp_path / "data").mkdir()
    p = cam.save_labelled(img, tmp_path / "data", "scratches", src)
    assert p.parent == tmp_path / "data" / "scratches" and p.exists()
    with pytest.raises(ValueError):
        cam.save_labelled(img, tmp_path / "data", "../escape", src)


def test_saving_without_hard_links_leaves_no_broken_file(tmp_path, monkeypatch):
    """FAT/exFAT sticks and some shares refuse hard links: the frame is written under its name
    directly, and a write that fails part-way (a full stick) leaves neither that file nor the
    temporary one. A full disk at the link is the save's failure, not a reason to write a
    second copy."""
    import errno
    import os

    from inspector.camera import saving

    img = np.full((8, 8, 3), 90, np.uint8)

    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(saving.os, "link", no_links)
    first = cam.save_png_new(img, tmp_path, "snap")
    assert first.name == "snap.png" and cv2.imread(str(first)) is not None

    def windows_exfat(src, dst):   # WinError 1 "Incorrect function", which Python maps to EINVAL
        raise OSError(errno.EINVAL, "Incorrect function")

    monkeypatch.setattr(saving.os, "link", windows_exfat)
    second = cam.save_png_new(img, tmp_path, "snap")
    assert second.name == "snap-2.png" and cv2.imread(str(second)) is not None
    second.unlink()
    monkeypatch.setattr(saving.os, "link", no_links)

    real_fsync, calls = os.fsync, []

    def full_at_second(fd):   # the temporary file syncs, the copy under its name does not
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(saving.os, "fsync", full_at_second)
    with pytest.raises(OSError, match="No space"):
        cam.save_png_new(img, tmp_path, "snap")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.png"]

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(saving.os, "fsync", real_fsync)
    monkeypatch.setattr(saving.os, "link", disk_full)
    with pytest.raises(OSError, match="No space"):
        cam.save_png_new(img, tmp_path, "snap")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.png"]


def test_a_twelve_bit_streams_frames_keep_one_brightness():
    """Scaled frame by frame, a frame whose brightest pixel was 1,000 was divided by 1,023 and
    the next (1,030) by 4,095: the same scene four times darker from one frame to the next."""
    from inspector.camera.sources import StreamScale, to_rgb

    rng = np.random.default_rng(0)
    scene = rng.integers(400, 800, (24, 32)).astype(np.uint16)
    a, b = scene.copy(), scene.copy()
    a[0, 0], b[0, 0] = 1000, 1030
    scale = StreamScale()
    first = to_rgb(a, scale(a))   # the only one read at the smaller scale: nothing said more yet
    means = [float(to_rgb(f, scale(f)).mean()) for f in (b, a, b, a)]
    assert max(means) - min(means) < 1 and means[0] < float(first.mean()) / 3
    per_frame = [float(to_rgb(f).mean()) for f in (b, a)]   # what the stream saw before
    assert per_frame[1] - per_frame[0] > 100
    assert scale(np.zeros((2, 2), np.uint8)) is None and scale.full == 4095.0


def test_an_image_sequence_reads_each_file_as_review_does():
    """The stream's one full scale is a camera's: a sequence of 12-bit files is read file by file,
    as review and training read them."""
    from inspector.camera.grabber import FrameGrabber

    frame = np.full((4, 4), 1000, np.uint16)
    assert FrameGrabber(Source.sequence("x"))._scale(frame) is None
    assert FrameGrabber(Source.camera(0))._scale(frame) == 1023.0


def test_source_kinds_are_distinct_for_settings():
    keys = {Source.camera(0).key, Source.url("rtsp://h/0").key, Source.file("0").key,
            Source.sequence("0").key}
    assert len(keys) == 4
    assert SourceKind("camera") is SourceKind.CAMERA


def test_a_region_that_does_not_fit_a_frame_is_said(classifier):
    roi = Roi(150, 150, 100, 80)                     # drawn on a 320x240 frame
    big = cam.analyse(classifier, _frame(np.zeros((240, 320, 3), np.uint8)), LiveConfig(roi=roi))
    assert big.region_text == "region 100×80 px"
    cut = cam.analyse(classifier, _frame(np.zeros((200, 200, 3), np.uint8)), LiveConfig(roi=roi))
    assert cut.roi == Roi(150, 150, 50, 50)
    assert cut.region_text == "region 50×50 px (the region is cut to this 200×200 px frame)"
    small = cam.analyse(classifier, _frame(np.zeros((48, 64, 3), np.uint8)), LiveConfig(roi=roi))
    assert small.region_text == "whole frame 64×48 px (the region lies outside this frame)"

"""The live camera window: opens sources, runs the live loop on the GUI side, pauses, takes
snapshots and files labelled frames."""
from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMainWindow

from ... import camera as cam
from ...camera import (CameraInfo, ClassifierLike, Frame, FrameGrabber, LiveConfig, LiveResult, LiveStats,
                       ReconnectPolicy, Roi, Source, State, StreamStatus)
from ...tiles import model_view
from ..charts import on_palette
from ..image_view import colorize
from ..settings import Settings
from ..workers import Task, TaskRunner, wait_visibly
from .settings import DISPLAY_INTERVAL_MS, LABEL_KEYS, STATS_INTERVAL_MS, camera_settings, roi_key
from .inference import InferenceThread
from .controls import CameraControls, STATE_COLOURS

# the live verdict once the stream has ended: the last frame's, no longer live
STALE_PREFIX = "not live (last frame): "
# how long Stop, or another source opened, waits in all on the GUI thread for the old source's
# threads (the window stays frozen meanwhile; a thread still busy then finishes on its own);
# closing the window waits longer, so that the threads have ended before the program may exit
STOP_WAIT_S = 0.5
CLOSE_WAIT_S = 5.0
# how long closing the window waits for frames still being saved (a 16-megapixel PNG takes about a
# second to encode on a slow PC); one still unsaved then is written all the same, but not listed
SAVE_CLOSE_WAIT_S = 20.0
# frames taken but not written yet, at most: one more is refused, said, until the disk catches up
# (each holds its frame: 48 MB at 16 megapixels)
MAX_PENDING_SAVES = 4

log = logging.getLogger(__name__)

# analyses still running when their window closed, held until they end (a running QThread that
# is destroyed aborts the program); pruned at every close
_LINGERING: list = []


def _linger(workers: list) -> None:
    _LINGERING[:] = [w for w in _LINGERING if w.isRunning()] + list(workers)


class _SaveRelay(QObject):
    """Carries a finished save from the saving thread to the window: a QObject of its own, so
    that a save ending while the window is being deleted signals an object that is still there
    (Qt drops the connection to the deleted window)."""
    finished = Signal(object)   # the save's Future


class CameraWindow(CameraControls, QMainWindow):
    """Live classification of a camera feed.

    ``classifier_provider`` returns the app's current Classifier (or None while none is loaded);
    it is asked again every few hundred milliseconds, so a model switched in the main window is
    picked up. ``snapshot_taken(path)`` reports each snapshot PNG for the review list.
    ``capture_factory``, ``policy`` and ``camera_probe`` exist for tests and special set-ups.
    """

    snapshot_taken = Signal(str)
    sample_saved = Signal(str, str)            # path, class name (labelled data folder)
    result_ready = Signal(object)              # LiveResult, after the window has shown it
    status_changed = Signal(object)            # StreamStatus
    _grabber_status = Signal(object, object)   # (grabber, StreamStatus) from the grabber thread

    def __init__(self, classifier_provider: Callable[[], ClassifierLike | None], parent=None, *,
                 capture_factory: cam.CaptureFactory | None = None,
                 policy: ReconnectPolicy | None = None,
                 camera_probe: Callable[[], list[CameraInfo]] | None = None,
                 settings: Settings | None = None):
        super().__init__(parent)
        self.setWindowTitle("Live camera — Steel Inspector")
        self._provider = classifier_provider
        self._factory = capture_factory
        self._policy = policy or ReconnectPolicy()
        self._probe = camera_probe or cam.probe_cameras
        self._settings = camera_settings(settings)
        self._model: ClassifierLike | None = None
        self._model_known = False
        self._source: Source | None = None
        self._grabber: FrameGrabber | None = None
        self._worker: InferenceThread | None = None
        self._old_workers: list[InferenceThread] = []
        self._stopped_grabber: FrameGrabber | None = None   # its reader may still hold a camera
        self._config = LiveConfig()
        self._paused = False
        self._shown: Frame | None = None          # the frame on screen
        self._result: LiveResult | None = None
        self._stats = LiveStats()
        self._unknown_rate = cam.UnknownRate()
        self._analysis_error: str | None = None   # since the last result: "HH:MM: why"
        self._status = StreamStatus(State.IDLE, "No source open")
        self._pending_roi = False                # restore the saved ROI at the first frame
        self._roi_unsaved = False                # a ROI set before the first frame
        self._tasks = TaskRunner(self)               # the camera probe
        # snapshots and labelled frames are encoded and written in a thread of their own, one
        # after another (a 16-megapixel frame's PNG took the window's thread about a second)
        self._saver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frame-save")
        self._saves: dict[Future, Callable[[Future], None]] = {}
        self._save_relay = _SaveRelay()
        self._save_relay.finished.connect(self._deliver_save)
        self._probe_task: Task | None = None
        self._url_secret = ""                    # the URL as typed (the field shows it masked)
        self._data_folder = str(self._settings.get("data_folder", "") or "")
        self._tile_user_set = False
        self._tile_note = None                    # (tile, w, h, used) last said in the status bar
        colorize(np.zeros((1, 1), np.float32))   # build the colour table on this thread

        self._build_ui()
        self._build_actions()
        self._restore_settings()
        self._grabber_status.connect(self._on_grabber_status)

        self._display_timer = QTimer(self)
        self._display_timer.setInterval(DISPLAY_INTERVAL_MS)
        self._display_timer.timeout.connect(self._show_newest)
        self._display_timer.start()
        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(STATS_INTERVAL_MS)
        self._stats_timer.timeout.connect(self._tick)
        self._stats_timer.start()
        self._refresh_model()
        self.refresh_cameras()
        app = QApplication.instance()
        if app is not None:  # the app quitting with this window open still ends its threads
            app.aboutToQuit.connect(self._stop_at_quit)   # a method: let go when deleted

    def _stop_at_quit(self) -> None:
        self.stop_source(CLOSE_WAIT_S)

    # ---- model ---------------------------------------------------------------------------
    def _refresh_model(self) -> None:
        try:
            model = self._provider()
        except Exception:  # noqa: BLE001 - the provider belongs to someone else
            log.exception("classifier provider failed")
            model = None
        if model is self._model and self._model_known:
            return
        self._model, self._model_known = model, True
        if self._worker is not None:
            self._worker.model = model
        if self._grabber is not None:  # without a model nothing is taken: nothing is dropped
            self._grabber.counting_drops = not self._paused and model is not None
        names = list(getattr(model, "class_names", []) or [])
        self.chart.set_classes(names)
        self._unknown_rate.reset()
        self.prediction_label.setStyleSheet("")
        self._result = None
        self.view.set_result(None, None)
        current = self.overlay_combo.currentData() or self._saved_overlay_mode
        self.overlay_combo.blockSignals(True)
        self.overlay_combo.clear()
        self.overlay_combo.addItem("Class activation map", cam.OVERLAY_CAM)
        for name in (getattr(model, "se_block_names", []) or []):
            self.overlay_combo.addItem(f"SE block {name[2:]} feature map", name)
        idx = max(0, self.overlay_combo.findData(current))
        self.overlay_combo.setCurrentIndex(idx)
        self.overlay_combo.blockSignals(False)
        if model is not None and not self._tile_user_set:
            self.tile_spin.blockSignals(True)
            self.tile_spin.setValue(int(model_view(model).tile))
            self.tile_spin.blockSignals(False)
        for i, a in enumerate(self.label_actions):
            if i < len(names):
                a.setText(f"Save as {names[i]}")
                a.setEnabled(True)
            else:
                a.setText(f"Save as class {i + 1}")
                a.setEnabled(False)
        keys = ", ".join(f"Shift+{i + 1} {n}" for i, n in enumerate(names[:LABEL_KEYS]))
        self.collect_hint.setText(f"Keys file the frame under a class: {keys}" if names else
                                  "Load a model to file frames under its classes.")
        if model is None:
            self.prediction_label.setText("No model")
            self.detail_label.setText("Load a model in the main window; the feed is shown meanwhile.")
        else:
            self.prediction_label.setText("—")
            self.detail_label.setText(f"{getattr(model, 'title', 'model')} · input "
                                      f"{model.input_size}×{model.input_size}")
        self._config_changed()


    def open_source(self, source: Source) -> None:
        """Stops the current source (if any) and starts reading ``source``."""
        self.stop_source()
        if self._paused:   # a source opened is shown live (a pause before it froze nothing)
            self.set_paused(False)
        self._show_in_picker(source)
        self._source = source
        self._stats = LiveStats()
        self._analysis_error = None
        self._shown = None
        self._result = None
        self._pending_roi = True
        self._roi_unsaved = False
        self.view.roi = None
        self.view.set_result(None, None)
        self.view.set_frame(None)
        self.view.set_message(f"Opening {source.display}…")
        self.view.setFocus()   # the live keys (Space, S, O) work at once, not on the Open button
        self._config = replace(self._config, roi=None)
        holder: list[FrameGrabber] = []
        previous, self._stopped_grabber = self._stopped_grabber, None
        grabber = FrameGrabber(source, factory=self._factory, policy=self._policy,
                               on_status=lambda st: self._grabber_status.emit(holder[0], st),
                               after=previous if previous is not None and previous.source == source
                               and not previous.join(0.0) else None)
        holder.append(grabber)
        worker = InferenceThread(grabber)  # no Qt parent: only stop_source() ends it
        worker.model = self._model
        worker.config = self._config
        worker.paused = self._paused
        grabber.counting_drops = not self._paused and self._model is not None
        worker.result_ready.connect(self._on_result)
        # a stopped analysis's late failure is not the new source's
        worker.failed.connect(lambda m, w=worker: w is self._worker and self._on_analysis_failed(m))
        self._grabber, self._worker = grabber, worker
        grabber.start()
        worker.start()
        self.setWindowTitle(f"Live camera — {source.display} — Steel Inspector")
        self._config_changed()

    def stop_source(self, wait_s: float = STOP_WAIT_S) -> None:
        """Stops reading and analysing; waits up to ``wait_s`` seconds in all on the GUI thread
        for its threads and for analyses stopped earlier that still run. One that takes longer
        (an analysis of a large tiled frame on a slow PC, a reader stuck inside a network
        camera's driver) is left to finish on its own: it holds nothing of this window, its late
        results are dropped, a stopped analysis thread is kept until it has ended
        (``_prune_old_workers``), and the next reader of the same source waits for the old one
        to let go of it (``FrameGrabber``'s ``after``)."""
        worker, grabber = self._worker, self._grabber
        self._worker = self._grabber = None
        if worker is not None:
            worker.stop()
        if grabber is not None:
            grabber.stop()
        deadline = time.monotonic() + wait_s
        if worker is not None:
            self._old_workers.append(worker)  # keep the wrapper until its queued results drain
        for old in reversed(self._old_workers):   # this one first, then any still running
            left = max(0.0, deadline - time.monotonic())
            if old.isRunning() and not old.wait(int(left * 1000)):
                log.info("a live analysis did not stop within %g s; left to finish", wait_s)
        self._prune_old_workers()
        if grabber is not None:
            if not grabber.join(max(0.0, deadline - time.monotonic())):
                # the next grabber of the same source waits for it (FrameGrabber's ``after``)
                self._stopped_grabber = grabber
                log.warning("%s: a reader thread is still inside the driver; left behind",
                            grabber.source.display)
        if self._source is not None and self._status.state not in (State.FAILED, State.FINISHED):
            self._set_status(StreamStatus(State.STOPPED, f"{self._source.display}: stopped"))

    def _prune_old_workers(self) -> None:
        """Keeps the last few stopped workers (their queued results may still arrive) and any
        that has not finished yet (destroying a running QThread aborts the program)."""
        old = self._old_workers
        self._old_workers = [w for w in old[:-4] if w.isRunning()] + old[-4:]

    # ---- ROI, tiles, overlay ------------------------------------------------------------------
    def set_roi(self, roi: Roi | None, remember: bool = True) -> None:
        """Sets the region the model sees (frame pixels; None: the whole frame)."""
        w, h = self.view.frame_size()
        if roi is not None and w and h:
            roi = roi.clamp(w, h)
        if remember:
            self._pending_roi = False  # a ROI chosen now wins over the one saved for the source
            self._roi_unsaved = not (w and h)
        self.view.roi = roi
        if roi != self._config.roi:
            self.view.set_result(None, None)  # the old region's labels and overlay no longer fit
        self._config = replace(self._config, roi=roi)
        self._push_config()
        self.roi_label.setText(f"Region: {roi.w}×{roi.h} px at ({roi.x}, {roi.y})" if roi else
                               "Region: whole frame (drag on the frame to choose one)")
        if remember and self._source is not None:
            key = roi_key(self._source)
            if roi is None:
                self._settings.remove(key)
            elif w and h:
                self._settings.set(key, roi.to_text(w, h))
        self.view.update()

    def clear_roi(self) -> None:
        self.set_roi(None)

    def roi(self) -> Roi | None:
        return self._config.roi

    def _square_changed(self, on: bool) -> None:
        self.view.square = on

    def _tile_spin_changed(self, _v: int) -> None:
        self._tile_user_set = True
        self._config_changed()

    def _config_changed(self, *_a) -> None:
        overlay = (self.overlay_combo.currentData() or cam.OVERLAY_CAM) \
            if self.overlay_check.isChecked() else None
        tile = self.tile_spin.value() if self.tile_check.isChecked() else None
        if tile != self._config.tile:
            self.view.set_result(None, None)  # the old grid no longer fits
        self._config = replace(self._config, overlay=overlay, tile=tile)
        self.overlay_combo.setEnabled(self.overlay_check.isChecked())
        self.tile_spin.setEnabled(self.tile_check.isChecked())
        self.view.show_overlay = overlay is not None
        self.colour_bar.setVisible(overlay is not None)
        self._push_config()
        self._note_tile_limit()
        self.view.update()

    def _note_tile_limit(self, roi: Roi | None = None) -> None:
        """Says in the status bar when the chosen tile size would make more than
        ``cam.MAX_TILES`` tiles (the analysis then uses the smallest tile size that fits)."""
        tile = self._config.tile
        if not tile:
            self._tile_note = None
            return
        if roi is None:
            roi = self._config.roi
            if roi is None and self._shown is not None:
                roi = Roi(0, 0, self._shown.width, self._shown.height)
        if roi is None:
            return
        used = cam.fit_tile(roi.w, roi.h, tile)
        note = (tile, roi.w, roi.h, used)
        if used == tile or note == self._tile_note:
            return
        self._tile_note = note
        self._show_message(f"Tiles of {tile} px would make {cam.tile_count(roi.w, roi.h, tile)} "
                           f"tiles in this {roi.w}×{roi.h} px region (at most {cam.MAX_TILES}): "
                           f"using {used} px tiles")

    def _push_config(self) -> None:
        if self._worker is not None:
            self._worker.config = self._config

    # ---- live loop (GUI side) ------------------------------------------------------------------
    def _show_newest(self) -> None:
        g = self._grabber
        if g is None or self._paused:
            return
        frame = g.peek()
        if frame is None or (self._shown is not None and frame.index == self._shown.index):
            return
        if self._drawing_on_result():
            return   # _on_result shows each analysed frame with what is drawn on it
        self._display(frame)

    def _drawing_on_result(self) -> bool:
        """Whether the picture carries a result's overlay or tile grid, which belong to the
        analysed frame: with a model slower than the camera, a newer frame under them put the
        bold "scratches" tile on other steel (23 frames newer at 2 results a second on a 30 fps
        feed). The picture then changes with each result; without them it shows every frame.
        Not while the analysis is failing: the feed is then shown live, marked not analysed."""
        res = self.view.result
        return (res is not None and self._analysis_error is None and not self._paused
                and self._model is not None
                and ((self.view.show_overlay and self.view.overlay is not None)
                     or len(res.tiles) > 1))

    def _display(self, frame: Frame) -> None:
        """Puts ``frame`` on screen (the frame snapshots and labelled saves take)."""
        self._shown = frame
        self.view.set_frame(frame.image)
        if self._pending_roi:
            self._pending_roi = False
            text = self._settings.get(roi_key(self._source), None)
            roi = Roi.from_text(text, frame.width, frame.height) if text else None
            self.set_roi(roi, remember=False)
        elif self._roi_unsaved:  # chosen before the first frame: saved now that its size is known
            self._roi_unsaved = False
            self.set_roi(self._config.roi)

    def _on_result(self, worker: InferenceThread) -> None:
        newest, timings = worker.take()  # always taken: the worker announces only into an empty box
        if newest is None or self._paused or worker is not self._worker:
            return  # paused, or a late result of a stopped source
        for t_done, latency in timings:
            self._stats.record(t_done, latency)
        result, overlay = newest
        if self._shown is None or result.frame.index > self._shown.index:
            # the display timer has not shown this frame yet: show it now, so that a result is
            # never on screen without its frame (a snapshot right after it saves that frame)
            self._display(result.frame)
        if not self._is_current(result):
            return  # computed for a region, tiling, overlay or model since changed
        if self._analysis_error is not None:
            self._analysis_error = None
            self._show_state()   # the stream's own state again
        self._result = result
        self._note_tile_limit(result.roi)
        self.chart.set_values(result.probs)
        tiles = len(result.tiles)
        self._unknown_rate.record(result)
        self._show_verdict(result)
        self.detail_label.setText(
            (f"{tiles} tiles ({result.grid[0]}×{result.grid[1]}), the bold one decides"
             if tiles > 1 else result.region_text)
            + f" · latency {result.latency * 1000:.0f} ms")
        self.view.set_result(result, overlay)
        if self._drawing_on_result() and self._shown.index != result.frame.index:
            # a newer frame went on screen before this result (the first, say) came: the grid
            # and the overlay are drawn on the frame they were computed from
            self._display(result.frame)
        if self._status.state is not State.LIVE:   # a late result of a frame read before the
            self._show_state()                     # stream was lost: still not a live verdict
        self.result_ready.emit(result)

    def _is_current(self, result: LiveResult) -> bool:
        """Whether ``result`` was computed with the settings and classes chosen now (the worker
        may have finished the previous ROI's frame after ``set_roi``)."""
        if result.config is not None and result.config != self._config:
            return False
        names = list(getattr(self._model, "class_names", []) or [])
        return (self._model is not None and list(result.class_names) == names
                and result.model_key in (0, id(self._model)))

    def _on_analysis_failed(self, message: str) -> None:
        """A failing analysis is a lasting state, not an 8-second message: the verdict of the
        last good frame is marked not live and the status says since when and why, until a
        frame is analysed again (the loop reports a repeated error once)."""
        from datetime import datetime

        source = self._source.display if self._source is not None else "the source"
        self._analysis_error = f"{datetime.now():%H:%M:%S}: {source}: {message}"
        self._show_message(message)
        self._show_state()

    def _tick(self) -> None:
        self._refresh_model()
        self._show_unknown_rate()
        g = self._grabber
        if g is None:
            self.stats_label.setText("")
            return
        s = g.stats
        self.stats_label.setText(
            f"Classified: {self._stats.fps:5.1f} frames/s    captured: {s.capture_fps:5.1f}/s\n"
            f"Latency (capture → result): {self._stats.latency_median * 1000:4.0f} ms median\n"
            f"Dropped (model busy): {s.dropped}    frames: {s.captured}")

    @property
    def shown_frame(self) -> Frame | None:
        """The frame on screen now."""
        return self._shown

    @property
    def grabber(self) -> FrameGrabber | None:
        """The grabber of the open source (None when none is open)."""
        return self._grabber

    @property
    def inference(self) -> InferenceThread | None:
        """The worker analysing the open source (None when none is open)."""
        return self._worker

    def stats(self) -> dict:
        g = self._grabber
        gs = g.stats if g is not None else None
        return {"classified_fps": self._stats.fps, "latency_median": self._stats.latency_median,
                "results": self._stats.count, "dropped": gs.dropped if gs else 0,
                "captured": gs.captured if gs else 0, "capture_fps": gs.capture_fps if gs else 0.0}

    def _on_grabber_status(self, grabber: FrameGrabber, status: StreamStatus) -> None:
        if grabber is self._grabber:
            self._set_status(status)

    def _set_status(self, status: StreamStatus) -> None:
        self._status = status
        self._show_state()
        self.status_changed.emit(status)

    def _show_state(self) -> None:
        """The stream's state in the status bar, over the picture and on the verdict."""
        status = self._status
        failing = status.state is State.LIVE and self._analysis_error is not None
        text = f"{status.message} · analysis failing since {self._analysis_error}" if failing \
            else status.message
        colour = STATE_COLOURS.get(State.FAILED if failing else status.state, "#555")
        colour = on_palette(colour, self.state_label.palette())   # a dark theme too
        self.state_label.setStyleSheet(f"color: {colour}; font-weight: bold")
        self.state_label.setText(text)
        self.state_label.setToolTip(text)
        if self._shown is None or status.state in (State.FAILED,):
            self.view.set_message(status.message)
        live = status.state is State.LIVE and not failing
        # over the picture while it is not a live, analysed one (a lost camera kept showing its
        # last frame, and the verdict its last verdict, as if live)
        self.view.set_banner("" if live or self._shown is None else
                             ("not analysed: " + self._analysis_error if failing
                              else status.message))
        verdict = self.prediction_label.text()
        if (not live and status.state is not State.IDLE and self._shown is not None
                and verdict not in ("", "—") and not verdict.startswith(STALE_PREFIX)):
            # the last frame's verdict stays readable, but not as a live one
            self.prediction_label.setText(f"{STALE_PREFIX}{verdict}")
            self.prediction_label.setStyleSheet(
                f"color: {on_palette('#888', self.prediction_label.palette())}")

    def status(self) -> StreamStatus:
        return self._status

    def status_text(self) -> str:
        return self.state_label.text()

    def _show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    # ---- pause, snapshot, labelled save ------------------------------------------------------------
    def set_paused(self, paused: bool) -> None:
        """Freezes the picture and stops analysing; the source keeps being read (so nothing is
        stale on resume), and frames skipped while paused are not counted as dropped."""
        self._paused = bool(paused)
        if self.pause_button.isChecked() != self._paused:
            self.pause_button.setChecked(self._paused)
        if self._worker is not None:
            self._worker.paused = self._paused
        if self._grabber is not None:
            self._grabber.counting_drops = not self._paused and self._model is not None
        if self._paused and self._result is not None:
            # show the analysed frame, so that picture, overlay and bars belong together
            self._shown = self._result.frame
            self.view.set_frame(self._shown.image)
        if not self._paused:
            self._stats.reset()
        self.pause_button.setText("Resume" if self._paused else "Pause")

    def is_paused(self) -> bool:
        return self._paused

    def _image_to_save(self) -> np.ndarray | None:
        frame = self._shown
        if frame is None:
            self._show_message("Nothing to save yet: no frame has arrived.")
            return None
        roi = self._config.roi
        if self.roi_only_check.isChecked() and roi is not None:
            roi = roi.clamp(frame.width, frame.height)
            if roi is not None:
                return roi.crop(frame.image).copy()
        return frame.image

    def _save_frame(self, write: Callable[[], Path], saving: str, not_saved: str,
                    saved: Callable[[Path], None]) -> None:
        """``write()`` in the saving thread, ``saving`` said meanwhile; then, in the GUI thread,
        ``saved(path)``, or ``not_saved: why`` said."""
        def deliver(future: Future) -> None:
            exc = future.exception()
            if exc is not None:
                self._show_message(f"{not_saved}: {getattr(exc, 'strerror', None) or exc}")
                return
            saved(future.result())

        self._show_message(saving)
        future = self._saver.submit(write)
        self._saves[future] = deliver
        relay = self._save_relay   # held by the callback: alive after the window has gone
        future.add_done_callback(lambda f, r=relay: r.finished.emit(f))

    def _saving_too_much(self) -> bool:
        """Says so when MAX_PENDING_SAVES frames still wait for the disk."""
        if len(self._saves) < MAX_PENDING_SAVES:
            return False
        self._show_message(f"Not taken: still saving the last {len(self._saves)} frames "
                           "(the disk is slower than the key); try again in a moment.")
        return True

    def _deliver_save(self, future: Future) -> None:
        deliver = self._saves.pop(future, None)
        if deliver is not None:   # not delivered yet (closing delivers what is pending at once)
            deliver(future)

    def _finish_saves(self, wait_s: float) -> None:
        """Waits up to ``wait_s`` seconds for the frames still being saved, saying so in a
        dialog after a moment, and delivers them in order (their messages, ``snapshot_taken``
        and ``sample_saved``)."""
        if self._saves:
            wait_visibly(self, "Closing the live camera",
                         f"Saving {len(self._saves)} frame(s) taken…",
                         lambda: all(f.done() for f in self._saves), limit_s=wait_s)
        for future in list(self._saves):
            if not future.done():
                log.warning("closing: %d frame(s) still being saved; they are written, "
                            "but not added to the review list", len(self._saves))
                return
            self._deliver_save(future)

    def saves_pending(self) -> int:
        """Frames taken but not saved yet."""
        return len(self._saves)

    def snapshot(self) -> bool:
        """Saves the frame on screen (or its region) as a new PNG in the snapshots folder, in the
        background, and then emits ``snapshot_taken(path)`` (or says why it was not saved).
        Returns whether a frame was taken."""
        if self._saving_too_much():
            return False
        image = self._image_to_save()
        if image is None or self._source is None:
            return False
        source, when = self._source, datetime.now()

        def saved(path: Path) -> None:
            self._show_message(f"Snapshot saved: {path}")
            self.snapshot_taken.emit(str(path))

        self._save_frame(lambda: cam.save_snapshot(image, source, when=when), "Saving snapshot…",
                         f"Snapshot not saved: {cam.snapshots_dir()}", saved)
        return True

    def save_labelled(self, class_index: int) -> bool:
        """Saves the frame on screen (or its region) into ``data folder/<class>/``, in the
        background, and then emits ``sample_saved(path, class)`` (or says why it was not saved).
        Returns whether a frame was taken."""
        names = list(getattr(self._model, "class_names", []) or
                     (self._result.class_names if self._result else []))
        if class_index >= len(names):
            self._show_message(f"No class {class_index + 1}: load a model first.")
            return False
        if not self._data_folder:
            self._show_message("Choose a labelled data folder first (Collect ▸ Choose data folder…).")
            return False
        if self._saving_too_much():
            return False
        image = self._image_to_save()
        if image is None or self._source is None:
            return False
        name, folder, source, when = names[class_index], self._data_folder, self._source, datetime.now()

        def saved(path: Path) -> None:
            self._show_message(f"Saved as {name}: {path}")
            self.sample_saved.emit(str(path), name)

        self._save_frame(lambda: cam.save_labelled(image, folder, name, source, when=when),
                         f"Saving as {name}…", f"Not saved into {folder}/{name}", saved)
        return True

    # ---- closing ------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 (Qt)
        self._display_timer.stop()
        self._stats_timer.stop()
        self.stop_source(CLOSE_WAIT_S)
        # closed, the window is deleted (its opener's WA_DeleteOnClose): an analysis that has not
        # ended yet is held here until it has (destroying a running QThread aborts the program)
        _linger([w for w in self._old_workers if w.isRunning()])
        self._finish_saves(SAVE_CLOSE_WAIT_S)   # a frame taken is listed, not lost with the window
        if self.testAttribute(Qt.WidgetAttribute.WA_DeleteOnClose):
            self._saver.shutdown(wait=False)   # one still saving ends on its own
            self._tasks.drain(5000)   # deleted once closed: a late probe result reaches nothing
        else:
            self._tasks.wait(5000)    # the camera probe; the window may be shown again
        try:
            if self.camera_combo.currentData() is not None:
                self._settings.set("camera_index", int(self.camera_combo.currentData()))
            self._save_settings()
        except Exception:  # noqa: BLE001 - settings must never keep the window from closing
            log.exception("camera settings not saved")
        super().closeEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.view.setFocus()
        if not self._display_timer.isActive():
            self._display_timer.start()
            self._stats_timer.start()

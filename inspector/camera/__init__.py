"""The live camera, Qt-free: sources, a newest-frame grabber with reconnects, ROI and tiling,
live analysis of a frame, saving snapshots, and masking passwords in stream URLs.

The pieces, in the order a frame meets them:

* :class:`Source` says what to open (camera index, stream URL, video file, image sequence);
  :func:`open_capture` opens it through OpenCV (or :class:`FolderCapture` for a folder of images).
* :class:`FrameGrabber` reads it in its own threads and keeps only the newest frame: a consumer
  that is slower than the source gets the latest frame, the ones it missed are counted as dropped.
  Open failures, disconnects and stalls (no frame for ``stall_timeout`` seconds) are reported and
  retried with capped exponential back-off (:class:`ReconnectPolicy`).
* :func:`analyse` classifies the region of interest of one frame (whole, or as model-sized tiles)
  and optionally computes an attention map; :func:`inference_loop` pulls newest frames and analyses
  them one at a time, for a worker thread to run.

Anything that shows or logs a source goes through :func:`mask_url` (``Source.display``), so stream
passwords never reach the screen or a log.

Modules, in that order: urls, sources, grabber, live, saving (ROI and tiles: inspector.tiles); every public name is
imported here, so ``from inspector.camera import X`` works for all of them.
"""
from __future__ import annotations

from .urls import MASK, SCHEME, STREAM_SCHEMES, mask_url, secrets_in, url_problem
from .sources import (DEFAULT_SEQUENCE_FPS, MAX_CAMERA_INDEX, CameraInfo, Capture, CaptureFactory,
                      FolderCapture, Source, SourceError, SourceKind, open_capture, probe_cameras,
                      quiet_cv2, to_rgb)
from .grabber import Frame, FrameGrabber, GrabberStats, ReconnectPolicy, State, StreamStatus
from ..tiles import CLASSIFY_CHUNK, MAX_TILES, ClassifierLike, Roi, fit_tile, tile_count, tile_grid
from .live import (OVERLAY_CAM, LiveConfig, LiveResult, LiveStats, UnknownRate,
                   analyse, inference_loop)
from .saving import save_labelled, save_png_new, save_snapshot, snapshots_dir, timestamp_stem

__all__ = [
    "CLASSIFY_CHUNK", "CameraInfo", "Capture", "CaptureFactory", "ClassifierLike",
    "DEFAULT_SEQUENCE_FPS", "FolderCapture", "Frame", "FrameGrabber", "GrabberStats", "LiveConfig",
    "LiveResult", "LiveStats", "MASK", "MAX_CAMERA_INDEX", "MAX_TILES", "OVERLAY_CAM",
    "ReconnectPolicy", "Roi", "SCHEME", "Source", "SourceError", "SourceKind", "State",
    "StreamStatus", "analyse", "fit_tile", "inference_loop", "mask_url", "open_capture",
    "probe_cameras", "quiet_cv2", "save_labelled", "save_png_new", "save_snapshot",
    "secrets_in", "snapshots_dir", "tile_count", "tile_grid", "timestamp_stem", "to_rgb",
    "UnknownRate", "STREAM_SCHEMES", "url_problem",
]

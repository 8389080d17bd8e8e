"""The live camera window (a package): pick a source (camera, stream URL, video file, image
sequence), draw a region of interest, and watch it classified live with the class-probability
bars and an optional attention overlay; pause, take snapshots for review, or file frames under a
class for retraining.

Everything that takes time runs elsewhere: :class:`inspector.camera.FrameGrabber` reads the source
in its own threads and keeps only the newest frame; one :class:`InferenceThread` (a QThread)
analyses newest frames one at a time and keeps only its newest result for the window, which it
announces by signal (results never queue up behind a busy GUI thread). This package only arranges
widgets and forwards signals: settings, inference, frame_view, controls (widgets and the source
picker) and window.
"""
from __future__ import annotations

from .frame_view import FrameView
from .inference import InferenceThread
from .window import CameraWindow

__all__ = ["CameraWindow", "FrameView", "InferenceThread"]

"""The camera window's settings: the app's settings file, under a "camera/" group (per-source keys
are dynamic, which the app's Key enum does not cover)."""
from __future__ import annotations

import hashlib

from ...camera import Source
from ..settings import Settings, SettingsGroup


DISPLAY_INTERVAL_MS = 30   # newest frame to the screen at most ~33 times a second
STATS_INTERVAL_MS = 250
OVERLAY_OPACITY = 0.5
MIN_ROI_SIDE = 8           # a drag smaller than this (frame pixels) is a click, not a ROI
LABEL_KEYS = 9             # Shift+1 .. Shift+9 file the frame under class 1..9 (as keys 1-9 judge)


# ---------------------------------------------------------------------------------------------
# Settings: the app's INI file, under a "camera/" group (per-source keys are dynamic, which the
# app's Key enum does not cover).

def camera_settings(store: Settings | None = None) -> SettingsGroup:
    """The "camera/" group of ``store``: the main window's, so that a file that cannot be
    written is said there once, as for its own settings (a store of its own without one)."""
    return (store or Settings()).group("camera")


def roi_key(source: Source) -> str:
    """The settings key of a source's region of interest (a hash: URLs may hold passwords)."""
    return "roi/" + hashlib.sha1(source.key.encode("utf-8")).hexdigest()[:16]

"""Where things live: the bundled model (also inside a PyInstaller build) and the user's data
(model library, settings, journals). Qt-free."""
from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "steel-inspector"
BUNDLED_MODEL_NAME = "ssdc-mininet"


def resources_dir() -> Path:
    """``resources/`` of the source tree, or its copy inside a frozen (PyInstaller) build."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def bundled_model_dir() -> Path:
    return resources_dir() / BUNDLED_MODEL_NAME


def user_data_dir() -> Path:
    """Per-user data folder; ``STEEL_INSPECTOR_HOME`` overrides it (tests, portable installs)."""
    override = os.environ.get("STEEL_INSPECTOR_HOME")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / APP_NAME


def model_library_dir() -> Path:
    return user_data_dir() / "models"

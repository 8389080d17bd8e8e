"""The app's persistent settings: one wrapper over QSettings with a Key enum and typed reads.

Settings live in an INI file in the user data folder (``settings.ini`` under
inspector.paths.user_data_dir(), which ``STEEL_INSPECTOR_HOME`` overrides), so tests and portable
installs keep them beside the rest of the user's data.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from .paths import user_data_dir

SETTINGS_FILE = "settings.ini"


class Key(Enum):
    """(settings key, type, default) of every setting the app keeps."""

    THRESHOLD = ("review/threshold", float, 0.8)
    OVERLAY_OPACITY = ("view/overlay_opacity", float, 0.5)
    OVERLAY_SOURCE = ("view/overlay_source", str, "cam")
    GRID_VIEW = ("view/grid", bool, True)
    LAST_FOLDER = ("files/last_folder", str, "")
    RECURSIVE = ("files/recursive", bool, True)
    LAST_EXPORT_FOLDER = ("files/last_export_folder", str, "")
    WINDOW_GEOMETRY = ("window/geometry", bytes, b"")
    WINDOW_STATE = ("window/state", bytes, b"")
    SPLITTER_STATE = ("window/splitter", bytes, b"")

    def __init__(self, path: str, type_: type, default: Any):
        self.path, self.type, self.default = path, type_, default


def settings_path() -> Path:
    return user_data_dir() / SETTINGS_FILE


class Settings:
    """Typed access to QSettings. ``get`` converts what the INI file holds (strings) back to the
    key's type and falls back to the default when the stored value is missing or damaged."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else settings_path()
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)

    def get(self, key: Key) -> Any:
        raw = self._qs.value(key.path, None)
        if raw is None:
            return key.default
        try:
            return _convert(raw, key.type)
        except (TypeError, ValueError):
            return key.default

    def get_float(self, key: Key) -> float:
        return float(self.get(key))

    def get_bool(self, key: Key) -> bool:
        return bool(self.get(key))

    def get_str(self, key: Key) -> str:
        return str(self.get(key))

    def get_bytes(self, key: Key) -> bytes:
        return bytes(self.get(key))

    def set(self, key: Key, value: Any) -> None:
        if key.type is bytes:
            value = QByteArray(bytes(value))
        elif key.type is bool:
            value = bool(value)
        elif key.type is float:
            value = float(value)
        elif key.type is str:
            value = str(value)
        self._qs.setValue(key.path, value)

    def remove(self, key: Key) -> None:
        self._qs.remove(key.path)

    def sync(self) -> None:
        self._qs.sync()


def _convert(raw: Any, type_: type) -> Any:
    if type_ is bool:
        if isinstance(raw, str):
            if raw.lower() in ("true", "1", "yes", "on"):
                return True
            if raw.lower() in ("false", "0", "no", "off", ""):
                return False
            raise ValueError(raw)
        return bool(raw)
    if type_ is float:
        return float(raw)
    if type_ is bytes:
        if isinstance(raw, QByteArray):
            return bytes(raw.data())
        if isinstance(raw, (bytes, bytearray)):
            return bytes(raw)
        raise TypeError(type(raw))
    if type_ is str:
        return "" if raw is None else str(raw)
    return type_(raw)

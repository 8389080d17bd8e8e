"""The settings store: the one writer of ``settings.ini`` (QSettings, INI format), with typed
reads of the keys in inspector.settings and groups of dynamic keys (the camera window's)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QByteArray, QCoreApplication, QSettings, QTimer

from ..settings import Key, parse_bool, parse_setting, settings_path


SAVE_DELAY_MS = 500


class Settings:
    """Typed access to QSettings. ``get`` converts what the INI file holds (strings) back to the
    key's type and falls back to the default when the stored value is missing or damaged."""

    # called once when changes cannot be saved, with the reason (the main window shows it)
    on_unsaved: Callable[[str], None] | None = None

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else settings_path()
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)
        self._told = False
        self._pending = False   # changes waiting for their write (``_soon``)

    def _saved(self) -> None:
        """Writes the changes now and, when the file refuses them (read-only, a folder in its
        place, a full disk), says so once: a setting changed that comes back at the next start
        as it was, without a word, is a setting lost."""
        self._qs.sync()
        status = self._qs.status()
        if status == QSettings.Status.NoError:
            return
        if self.on_unsaved is None or self._told:
            return
        self._told = True
        self.on_unsaved(f"{self.path}: "
                        + ("cannot be written (read-only, a folder in its place, or a full disk)"
                           if status == QSettings.Status.AccessError else
                           "damaged, so it is not written over")
                        + "; changed settings last only until the program closes")

    def get(self, key: Key) -> Any:
        raw = self._qs.value(key.path, None)
        if raw is None:
            return key.default
        if isinstance(raw, QByteArray):
            raw = bytes(raw.data())
        try:
            return parse_setting(raw, key)
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
        if self._qs.value(key.path, None) != value:
            self._qs.setValue(key.path, value)
            self._soon()

    def remove(self, key: Key) -> None:
        self._qs.remove(key.path)
        self._soon()

    def _soon(self) -> None:
        """Writes the changes after SAVE_DELAY_MS, once for a run of them (a slider dragged
        through twenty values is one write, off the moment of each step); at once without an
        event loop. ``sync`` writes at once (the window's close)."""
        if QCoreApplication.instance() is None:
            self._saved()
        elif not self._pending:
            self._pending = True
            QTimer.singleShot(SAVE_DELAY_MS, self._write_pending)

    def _write_pending(self) -> None:
        if self._pending:
            self._pending = False
            self._saved()

    def sync(self) -> None:
        self._pending = False
        self._saved()

    def group(self, name: str) -> SettingsGroup:
        """Keys under ``name/`` that are not in the Key enum (made at run time, e.g. one per
        camera source), read with the same parsing."""
        return SettingsGroup(self, name)


class SettingsGroup:
    """Untyped keys under one group of the settings file; typed reads take their default."""

    def __init__(self, owner: Settings, name: str):
        self._owner, self._qs, self._prefix = owner, owner._qs, name.rstrip("/") + "/"

    def get(self, key: str, default: Any = None) -> Any:
        return self._qs.value(self._prefix + key, default)

    def get_bool(self, key: str, default: bool) -> bool:
        v = self.get(key, None)
        if v is None:
            return default
        try:
            return parse_bool(v)
        except ValueError:
            return default

    def get_int(self, key: str, default: int) -> int:
        try:
            return int(self.get(key, default))
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value: Any) -> None:
        self._qs.setValue(self._prefix + key, value)

    def remove(self, key: str) -> None:
        self._qs.remove(self._prefix + key)

    def sync(self) -> None:
        self._owner._saved()

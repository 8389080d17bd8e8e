"""The app's settings as data: every key with its type and default, and the one reading of
stored text as a value (no Qt; the store that writes ``settings.ini`` is inspector.gui.settings).

Settings live in an INI file in the user data folder (``settings.ini`` under
inspector.paths.user_data_dir(), which ``STEEL_INSPECTOR_HOME`` overrides), so tests and portable
installs keep them beside the rest of the user's data.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

from .paths import user_data_dir

SETTINGS_FILE = "settings.ini"
# the window's "Accept as known" range, percent of the model's known validation images; a
# stored share outside it is used clamped into it, by the window and by inspector classify alike
ACCEPT_RANGE = (80, 100)
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})


class Key(Enum):
    """(settings key, type, default) of every setting the app keeps."""

    THRESHOLD = ("review/threshold", float, 0.8)
    # the unknown threshold as the share of the model's known validation images accepted;
    # 0: the model's own (its bundle's, 95% unless fitted otherwise)
    UNKNOWN_ACCEPT = ("review/unknown_accept", float, 0.0)
    OVERLAY_OPACITY = ("view/overlay_opacity", float, 0.5)
    OVERLAY_SOURCE = ("view/overlay_source", str, "cam")
    GRID_VIEW = ("view/grid", bool, True)
    LAST_FOLDER = ("files/last_folder", str, "")
    RECURSIVE = ("files/recursive", bool, True)
    LAST_EXPORT_FOLDER = ("files/last_export_folder", str, "")
    # CSV exports for Excel on this PC (a byte-order mark; ";" and "," where numbers take a
    # decimal comma) instead of the plain CSV that scripts read: the last choice of the dialog
    CSV_FOR_EXCEL = ("files/csv_for_excel", bool, False)
    WINDOW_GEOMETRY = ("window/geometry", bytes, b"")
    WINDOW_STATE = ("window/state", bytes, b"")
    SPLITTER_STATE = ("window/splitter", bytes, b"")

    def __init__(self, path: str, type_: type, default: Any):
        self.path, self.type, self.default = path, type_, default


def settings_path() -> Path:
    return user_data_dir() / SETTINGS_FILE


def parse_bool(raw: Any) -> bool:
    """A stored bool: the words an INI file may hold (true/1/yes/on, false/0/no/off, empty), any
    case; a value that is not text is truthy or not. Raises ValueError on other text."""
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(raw)
    return bool(raw)


def parse_value(raw: Any, type_: type) -> Any:
    """``raw`` (what the store read) as ``type_``; raises TypeError or ValueError when it cannot
    be one (the caller falls back to the default). Bytes must already be bytes."""
    if type_ is bool:
        return parse_bool(raw)
    if type_ is float:
        return float(raw)   # not finite (nan, inf): parse_setting's range refuses it
    if type_ is bytes:
        if isinstance(raw, (bytes, bytearray)):
            return bytes(raw)
        raise TypeError(type(raw))
    if type_ is str:
        return "" if raw is None else str(raw)
    return type_(raw)


def parse_setting(raw: Any, key: Key) -> Any:
    """``raw`` as ``key``'s value; raises TypeError or ValueError when it cannot be one. Every
    number the app keeps is a share between 0 and 1 (a confidence, a share of images accepted,
    an opacity): a value outside, or not finite (``nan``, ``inf`` in a hand-edited file), is
    damaged, and the callers fall back to the default (a ``nan`` threshold used to stop the
    window from starting)."""
    value = parse_value(raw, key.type)
    if key.type is float and not 0.0 <= value <= 1.0:
        raise ValueError(raw)
    return value


def read_group_value(group: str, name: str, path: str | Path | None = None) -> str | None:
    """The text of a key the window made at run time (``[group] name=...``, e.g. a folder's tile
    settings), read without Qt; None when the file or the key is missing."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str   # keys keep their case, as QSettings writes them
    try:
        parser.read(Path(path) if path else settings_path(), encoding="utf-8")
        raw = parser.get(group, name, fallback=None)
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    return None if raw is None else raw.strip().strip('"')


def read_setting(key: Key, path: str | Path | None = None) -> Any:
    """One setting as the window saved it, read without Qt (for the command line, e.g. the
    *Accept as known* share that ``inspector classify`` applies as the window does): the key's
    default when the file, the key or a readable value is missing."""
    section, _, name = key.path.partition("/")
    raw = read_group_value(section, name, path)
    try:
        return key.default if raw is None else parse_setting(raw, key)
    except (TypeError, ValueError):
        return key.default


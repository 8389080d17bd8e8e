"""Settings: the keys and the one bool parsing (inspector.settings, no Qt), and the one store
that writes settings.ini (inspector.gui.settings): round trips, damaged values, groups."""
from pathlib import Path

import pytest

from inspector.gui.settings import Settings
from inspector.settings import Key, parse_bool, parse_value, read_setting, settings_path


@pytest.mark.parametrize("word,value", [("true", True), ("True", True), ("1", True), ("yes", True),
                                        ("on", True), ("false", False), ("0", False), ("no", False),
                                        ("OFF", False), ("", False), (True, True), (0, False)])
def test_bool_words(word, value):
    assert parse_bool(word) is value


def test_other_text_is_no_bool():
    with pytest.raises(ValueError):
        parse_bool("maybe")
    with pytest.raises(ValueError):
        parse_value("x", float)
    with pytest.raises(TypeError):
        parse_value("not bytes", bytes)


def test_settings_live_in_the_user_data_folder():
    assert settings_path() == Path(__import__("os").environ["STEEL_INSPECTOR_HOME"]) / "settings.ini"
    assert Settings().path == settings_path()


def test_every_key_round_trips_through_the_file(tmp_path):
    path = tmp_path / "settings.ini"
    values = {Key.THRESHOLD: 0.37, Key.UNKNOWN_ACCEPT: 0.9, Key.OVERLAY_OPACITY: 0.9,
              Key.OVERLAY_SOURCE: "se2",
              Key.GRID_VIEW: False, Key.LAST_FOLDER: str(tmp_path / "a, b"), Key.RECURSIVE: False,
              Key.LAST_EXPORT_FOLDER: "", Key.CSV_FOR_EXCEL: True,
              Key.WINDOW_GEOMETRY: b"\x00\x01geometry\xff",
              Key.WINDOW_STATE: b"", Key.SPLITTER_STATE: bytes(range(256))}
    assert set(values) == set(Key)
    s = Settings(path)
    for key, value in values.items():
        s.set(key, value)
    s.sync()
    again = Settings(path)
    for key, value in values.items():
        assert again.get(key) == value, key


def test_missing_and_damaged_values_give_the_default(tmp_path):
    path = tmp_path / "settings.ini"
    path.write_text("[review]\nthreshold=lots\n[view]\ngrid=perhaps\n")
    s = Settings(path)
    assert s.get_float(Key.THRESHOLD) == Key.THRESHOLD.default
    assert s.get_bool(Key.GRID_VIEW) is Key.GRID_VIEW.default
    assert s.get_str(Key.LAST_FOLDER) == ""
    s.set(Key.THRESHOLD, 0.5)
    s.remove(Key.THRESHOLD)
    assert s.get(Key.THRESHOLD) == Key.THRESHOLD.default


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "1e300", "-5", "1.01"])
def test_numbers_out_of_their_range_are_damaged_values(tmp_path, raw):
    """Every number kept is a share from 0 to 1; a hand-edited ``threshold=nan`` used to stop
    the window from starting (round(nan * 100)) and ``unknown_accept=inf`` left it stuck."""
    path = tmp_path / "settings.ini"
    path.write_text(f"[review]\nthreshold={raw}\nunknown_accept={raw}\n"
                    f"[view]\noverlay_opacity={raw}\n")
    s = Settings(path)
    for key in (Key.THRESHOLD, Key.UNKNOWN_ACCEPT, Key.OVERLAY_OPACITY):
        assert s.get_float(key) == key.default, key
        assert read_setting(key, path) == key.default, key    # what `inspector classify` reads


def test_a_group_of_dynamic_keys_shares_the_file_and_the_parsing(tmp_path):
    path = tmp_path / "settings.ini"
    s = Settings(path)
    g = s.group("camera")
    g.set("overlay", False)
    g.set("tile_size", 96)
    g.set("roi/abc", "1,2,3,4")
    s.set(Key.RECURSIVE, False)
    g.sync()
    text = path.read_text()
    assert "[camera]" in text and "[files]" in text
    g2 = Settings(path).group("camera")
    assert g2.get_bool("overlay", True) is False
    assert g2.get_bool("missing", True) is True
    assert g2.get_int("tile_size", 0) == 96
    assert g2.get("roi/abc") == "1,2,3,4"
    path.write_text(path.read_text().replace("tile_size=96", "tile_size=big")
                    .replace("overlay=false", "overlay=perhaps"))
    g3 = Settings(path).group("camera")
    assert g3.get_int("tile_size", 7) == 7 and g3.get_bool("overlay", True) is True
    g3.remove("roi/abc")
    assert g3.get("roi/abc") is None

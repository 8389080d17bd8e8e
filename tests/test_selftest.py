"""``inspector --self-test`` (inspector.selftest) on the stand-in bundle: a pass prints one line,
a failure prints one line naming the step and the cause (no traceback), and neither touches the
user's data."""
import os
import re

import numpy as np
import pytest

from inspector import selftest
from inspector.app import main
from training.images import decode_image

OK_LINE = re.compile(r"^self-test OK: Test-MiniNet 0\.0\.1, 6 classes, CPU, LiteRT fp32 \([^)]*\), "
                     r"8 images \(the window classifies in a child process\), "
                     r"attention map (\d+)x(\d+), window shown in \d+\.\d\d s"
                     r"( \(\d+\.\d\d s after the program started\))?, "
                     r"model ready in \d+\.\d\d s"
                     r"( \(\d+\.\d\d s after the program started\))?, all done in \d+\.\d s$")


def main_windows():
    from PySide6.QtWidgets import QApplication

    from inspector.gui.main_window import MainWindow

    return [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]


@pytest.mark.slow
def test_self_test_passes_and_leaves_user_data_alone(qapp, stand_in_bundle, capsys, tmp_path):
    home = os.environ["STEEL_INSPECTOR_HOME"]
    assert main(["--self-test", "--model", str(stand_in_bundle)]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    m = OK_LINE.match(lines[0])
    assert m, lines[0]
    # the stand-in model takes 64x64 pixels: its last feature maps are 16x16 or smaller
    assert 2 <= int(m.group(1)) <= 16 and 2 <= int(m.group(2)) <= 16
    assert "FAILED" not in err and "Traceback" not in err
    assert os.environ["STEEL_INSPECTOR_HOME"] == home
    assert not os.path.exists(home)  # no settings, library or journal written for the user
    assert main_windows() == []


@pytest.mark.slow
def test_missing_model_fails_in_one_line(qapp, tmp_path, capsys):
    missing = tmp_path / "no-such-bundle"
    assert main(["--self-test", "--model", str(missing)]) == 1
    out, err = capsys.readouterr()
    assert "self-test OK" not in out
    failed = [line for line in err.splitlines() if line.startswith("self-test FAILED")]
    assert len(failed) == 1, err
    assert failed[0].startswith(f"self-test FAILED: loading the model {missing}: ")
    assert "no-such-bundle" in failed[0].split(": ", 2)[2]  # the cause names the folder too
    assert "Traceback" not in err
    assert main_windows() == []


@pytest.mark.slow
def test_unexpected_error_is_reported_with_its_step_and_type(qapp, stand_in_bundle, capsys,
                                                             monkeypatch):
    def broken(clf, paths):
        raise ValueError("the model returned\nnothing")

    monkeypatch.setattr(selftest, "check_model", broken)
    assert main(["--self-test", "--model", str(stand_in_bundle)]) == 1
    _, err = capsys.readouterr()
    assert "self-test FAILED: checking the model: ValueError: the model returned nothing\n" in err
    assert "Traceback" not in err
    assert main_windows() == []


def test_test_images_cover_depths_formats_and_sizes(tmp_path):
    from PIL import Image

    paths = selftest.write_test_images(tmp_path)
    assert len(paths) == selftest.N_IMAGES == 8
    modes, sizes = set(), set()
    for p in paths:
        with Image.open(p) as img:
            modes.add(img.mode)
            sizes.add(img.size)
        arr = decode_image(p)
        assert arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.uint8
        assert arr.std() > 2  # a texture, not a flat image (12-bit data decodes dark)
    assert {"L", "RGB", "RGBA"} <= modes and modes & {"I;16", "I;16B", "I"}
    assert {p.suffix for p in paths} == {".png", ".bmp", ".tif", ".jpg"}
    assert len(sizes) >= 6


def test_probability_checks():
    ok = np.array([0.1, 0.2, 0.7], np.float32)
    assert np.allclose(selftest.check_probabilities(ok, 3, "x"), ok)
    bad = {
        "not finite": np.array([np.nan, 0.5, 0.5]),
        "sum to 1.2000": np.array([0.2, 0.3, 0.7]),
        "outside 0..1": np.array([-0.5, 0.5, 1.0]),
        "expected (3,)": np.array([0.5, 0.5]),
    }
    for problem, p in bad.items():
        with pytest.raises(selftest.SelfTestError, match=re.escape(problem)):
            selftest.check_probabilities(p, 3, "image.png")


def test_map_checks():
    assert selftest.check_map(np.linspace(0, 1, 50 * 40).reshape(50, 40), "cam", 200) == (50, 40)
    for problem, m in {"shape (4, 4, 3)": np.zeros((4, 4, 3)),
                       "expected (h, w) with 2..8": np.zeros((9, 9)),
                       "not finite": np.full((4, 4), np.inf),
                       "outside 0..1": np.full((4, 4), 2.0)}.items():
        with pytest.raises(selftest.SelfTestError, match=re.escape(problem)):
            selftest.check_map(m, "cam", 8)


def test_offscreen_only_without_a_display():
    assert selftest.needs_offscreen({}, "linux")
    assert not selftest.needs_offscreen({"DISPLAY": ":0"}, "linux")
    assert not selftest.needs_offscreen({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not selftest.needs_offscreen({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not selftest.needs_offscreen({}, "win32")


def test_process_age_is_plausible():
    age = selftest.process_age()
    if age is not None:  # Linux and Windows
        assert 0 < age < 24 * 3600


def test_a_mistyped_command_or_a_missing_display_is_said_not_a_qt_abort(capsys):
    from inspector.app import display_problem

    with pytest.raises(SystemExit) as e:
        main(["clasify", "some/folder"])
    assert e.value.code == 2
    assert "unknown command 'clasify'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["no/such/folder"])
    assert "no such file or folder: no/such/folder" in capsys.readouterr().err
    assert "DISPLAY is not set" in display_problem({}, "linux")
    assert display_problem({"DISPLAY": ":0"}, "linux") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({}, "win32") is None

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def stand_in_bundle(tmp_path_factory):
    """An untrained six-class SSDC-MiniNet bundle, made once per test session."""
    from synth import make_bundle

    return make_bundle(tmp_path_factory.mktemp("bundle") / "test-bundle")


@pytest.fixture(scope="session")
def classifier(stand_in_bundle):
    from inspector.engine import load_classifier

    return load_classifier(stand_in_bundle)


@pytest.fixture(autouse=True)
def _large_screen(monkeypatch):
    """Windows open on a 1920x1080 screen, not the offscreen platform's own 800x800: at the
    size they ask for (inspector.gui.screen clips a first size to the screen); the tests of
    small screens make their own (tests/test_screen.py). (Not the platform's ``configfile``:
    Qt splits its argument at every ":", a Windows path's drive letter too.)"""
    from PySide6.QtCore import QSize

    from inspector.gui import screen

    monkeypatch.setattr(screen, "available_size", lambda widget=None: QSize(1920, 1040))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """User data (settings, model library, journals) goes to a temporary folder in every test."""
    monkeypatch.setenv("STEEL_INSPECTOR_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def detector_bundle(stand_in_bundle, tmp_path_factory):
    """A copy of the stand-in bundle with an unknown detector fitted on synthetic textures of
    its six classes (tests/synth.py): what ``train()`` writes into every new bundle."""
    import shutil

    from synth import detector_images
    from training.bundle import load_bundle
    from training.detect import fit_model_detector, write_detector

    out = tmp_path_factory.mktemp("detector") / "test-bundle"
    shutil.copytree(stand_in_bundle, out)
    bundle = load_bundle(out)
    n = len(bundle.class_names)
    # 10 a class: too few for the virtual logit (tests/test_unknown.py fits one on more), so
    # this detector uses the sum without it, whose scores these textures spread well
    x_train, y_train = detector_images(range(n), range(100, 110))
    x_val, y_val = detector_images(range(n), range(200, 205))
    det = fit_model_detector(bundle.model, x_train, y_train, x_val, y_val, n)
    write_detector(out, det)
    return out


@pytest.fixture(scope="session")
def _unknown_classifier(detector_bundle):
    from inspector.engine import load_classifier

    return load_classifier(detector_bundle)


@pytest.fixture
def unknown_classifier(_unknown_classifier):
    """The stand-in classifier with an unknown detector, at its bundle's acceptance (restored
    after every test: tests share it)."""
    clf = _unknown_classifier
    clf.set_accept(clf.detector.accept)
    yield clf
    clf.set_accept(clf.detector.accept)


@pytest.fixture(autouse=True)
def _fp32_export_only(request, monkeypatch):
    """A model trained in a test (``training.train.train``) gets the LiteRT inspection export in
    fp32 and in colour only, unless the test is marked ``full_export``. Each further conversion
    (fp16, int8 and the grey twins) takes 5-10 s on two cores, four more for every model trained:
    most of the time of the tests that train. Calls from anywhere else (the tests of the export
    itself, ``python -m training export``) are left alone."""
    if request.node.get_closest_marker("full_export"):
        return
    from training import inspection_export

    full = inspection_export.build_inspection

    def from_training_fp32_only(*args, **kwargs):
        callers = (sys._getframe(n).f_globals.get("__name__") for n in range(1, 4))
        if "training.train" not in callers:   # (a test's spy may stand in between)
            return full(*args, **kwargs)
        kwargs["formats_wanted"] = ("fp32",)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(inspection_export, "GREY_FORMATS", ())
            return full(*args, **kwargs)

    monkeypatch.setattr(inspection_export, "build_inspection", from_training_fp32_only)

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
def _isolated_home(tmp_path, monkeypatch):
    """User data (settings, model library, journals) goes to a temporary folder in every test."""
    monkeypatch.setenv("STEEL_INSPECTOR_HOME", str(tmp_path / "home"))

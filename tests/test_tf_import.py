"""TensorFlow's start-up notices stay off the terminal; standard error still works after."""
import subprocess
import sys
from pathlib import Path

import pytest

from training.tf_import import cpu_runs_tensorflow

ROOT = Path(__file__).resolve().parents[1]


def _python(*lines: str) -> subprocess.CompletedProcess:
    """These lines run by a new Python process in the repository."""
    return subprocess.run([sys.executable, "-c", "\n".join(lines)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_a_cpu_without_avx2_imports_as_before():
    """Where TensorFlow would abort for want of an instruction set, its reason must show."""
    assert cpu_runs_tensorflow({"AVX": True, "AVX2": True, "FMA3": True})
    assert not cpu_runs_tensorflow({"AVX": True, "AVX2": False, "FMA3": True})
    assert not cpu_runs_tensorflow({})


@pytest.mark.skipif(not cpu_runs_tensorflow(), reason="imports without silencing on this CPU")
def test_the_first_import_of_tensorflow_is_silenced_and_nothing_else():
    out = _python("import sys",
                  "from training.tf_import import quiet_tensorflow_import",
                  "quiet_tensorflow_import()",
                  "quiet_tensorflow_import()",      # arranged once
                  "import importlib.util",
                  "assert importlib.util.find_spec('tensorflow')",   # a lookup does not use it up
                  "print('before', file=sys.stderr, flush=True)",
                  "import keras",                    # imports TensorFlow itself
                  "import tensorflow as tf",
                  "print(tf.constant(2).numpy() * 3)",
                  "import importlib.resources",      # the package's loader still reads its files
                  "assert importlib.resources.files('tensorflow').joinpath('__init__.py').is_file()",
                  "assert tf.__spec__.loader.is_package('tensorflow')",
                  "from training.tf_import import _QuietFinder",
                  "assert not any(isinstance(f, _QuietFinder) for f in sys.meta_path)",
                  "print('after', file=sys.stderr, flush=True)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "6"
    # TensorFlow 2.21 writes four lines of notices on this import (on CPUs where it uses oneDNN)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert lines == ["before", "after"], out.stderr


def test_nothing_is_imported_until_asked():
    out = _python("import sys",
                  "from training.tf_import import quiet_tensorflow_import",
                  "quiet_tensorflow_import()",
                  "import numpy",
                  "print('tensorflow' in sys.modules)")
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_the_packaged_executable_keeps_tensorflows_warnings_off_the_terminal(monkeypatch):
    import logging

    from training.tf_import import quiet_tensorflow_import

    logger = logging.getLogger("tensorflow")
    monkeypatch.setattr(logger, "level", logging.WARNING)   # restored after the test
    quiet_tensorflow_import()
    assert logger.level == logging.WARNING   # a source checkout keeps them
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    quiet_tensorflow_import()
    assert logger.level == logging.ERROR


def test_tensorflows_retracing_notice_is_dropped_and_its_other_warnings_kept(caplog):
    """The notice is TensorFlow's advice to its programmers, not news for a user: it appeared
    among ``inspector retrain``'s lines after the augmentation check's predictions."""
    import logging

    from training.tf_import import quiet_tensorflow_import

    quiet_tensorflow_import()
    quiet_tensorflow_import()   # one filter, however often it is called
    log = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        log.warning("5 out of the last 7 calls to <function f at 0x7f> triggered tf.function "
                    "retracing. Tracing is expensive and ...")
        log.warning("a warning that still shows")
    assert [r.getMessage() for r in caplog.records] == ["a warning that still shows"]
    assert sum(type(f).__name__ == "RetracingNoticeFilter" for f in log.filters) == 1

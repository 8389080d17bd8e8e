"""TensorFlow's start-up notices stay off the terminal; standard error still works after."""
import subprocess
import sys
from pathlib import Path

import pytest

from training.tf_import import cpu_runs_tensorflow

ROOT = Path(__file__).resolve().parents[1]


def test_a_cpu_without_avx2_imports_as_before():
    """Where TensorFlow would abort for want of an instruction set, its reason must show."""
    assert cpu_runs_tensorflow({"AVX": True, "AVX2": True, "FMA3": True})
    assert not cpu_runs_tensorflow({"AVX": True, "AVX2": False, "FMA3": True})
    assert not cpu_runs_tensorflow({})


@pytest.mark.skipif(not cpu_runs_tensorflow(), reason="imports without silencing on this CPU")
def test_the_first_import_of_tensorflow_is_silenced_and_nothing_else():
    code = ("import sys\n"
            "from training.tf_import import quiet_tensorflow_import\n"
            "quiet_tensorflow_import()\n"
            "quiet_tensorflow_import()\n"      # arranged once
            "import importlib.util\n"
            "assert importlib.util.find_spec('tensorflow')\n"   # a lookup does not use it up
            "print('before', file=sys.stderr, flush=True)\n"
            "import keras\n"                    # imports TensorFlow itself
            "import tensorflow as tf\n"
            "print(tf.constant(2).numpy() * 3)\n"
            "import importlib.resources\n"      # the package's loader still reads its files
            "assert importlib.resources.files('tensorflow').joinpath('__init__.py').is_file()\n"
            "assert tf.__spec__.loader.is_package('tensorflow')\n"
            "from training.tf_import import _QuietFinder\n"
            "assert not any(isinstance(f, _QuietFinder) for f in sys.meta_path)\n"
            "print('after', file=sys.stderr, flush=True)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "6"
    # TensorFlow 2.21 writes four lines of notices on this import (on CPUs where it uses oneDNN)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert lines == ["before", "after"], out.stderr


def test_nothing_is_imported_until_asked():
    code = ("import sys\n"
            "from training.tf_import import quiet_tensorflow_import\n"
            "quiet_tensorflow_import()\n"
            "import numpy\n"
            "print('tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
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

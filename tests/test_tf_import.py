"""TensorFlow's start-up notices stay off the terminal; standard error still works after."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_tensorflow_silences_only_the_import():
    code = ("import sys\n"
            "from training.tf_import import import_tensorflow\n"
            "print('before', file=sys.stderr, flush=True)\n"
            "import_tensorflow()\n"
            "import_tensorflow()\n"   # a second call is a no-op
            "print('tensorflow' in sys.modules)\n"
            "print('after', file=sys.stderr, flush=True)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
    # TensorFlow 2.21 writes four lines of notices on this import (on CPUs where it uses oneDNN)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert lines == ["before", "after"], out.stderr


"""Imports TensorFlow without its start-up chatter on the terminal.

TensorFlow 2.21 writes, on every import, two notices from its C++ logging straight to the
process's standard error ("WARNING: All log messages before absl::InitializeLog() ..." and
"oneDNN custom operations are on ..."), twice each; ``TF_CPP_MIN_LOG_LEVEL`` no longer filters
them (tensorflow/tensorflow#100442). A user of ``inspector retrain`` or ``python -m training``
read them as warnings about their data. The commands import TensorFlow through
``import_tensorflow`` before their first use of it, with file descriptor 2 pointed at the null
device for the import alone: a Python error in the import still raises, and everything written
to standard error before and after it still shows. Qt-free."""
from __future__ import annotations

import os
import sys


def import_tensorflow() -> None:
    """Imports TensorFlow (once; a no-op when it is already imported) with standard error
    silenced at the file-descriptor level for the import's duration. Where standard error is
    not a file descriptor (a windowed executable), it simply imports."""
    if "tensorflow" in sys.modules:
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):
        import tensorflow  # noqa: F401
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)

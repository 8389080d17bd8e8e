"""TensorFlow imported without its start-up chatter on the terminal, whenever it is imported.

TensorFlow 2.21 writes, on every import, two notices from its C++ logging straight to the
process's standard error ("WARNING: All log messages before absl::InitializeLog() ..." and
"oneDNN custom operations are on ..."), twice each; ``TF_CPP_MIN_LOG_LEVEL`` no longer filters
them (tensorflow/tensorflow#100442). Among ``inspector retrain``'s and ``python -m training``'s
own lines they read like warnings about the user's data. The commands call
``quiet_tensorflow_import`` at their start: when TensorFlow is first imported (by Keras, or by
the command itself, and only if it is: a LiteRT-only evaluation never loads it), file
descriptor 2 points at the null device while its package initialises. A Python error in the
import still raises, and everything written to standard error before and after still shows.

On a CPU without the instructions TensorFlow's wheels are built for, the import writes why
("compiled to use AVX instructions, but these aren't available on your machine") and aborts
the process, which no later code could repeat; office PCs with Pentium or Celeron processors can
lack AVX. So the import is silenced only where numpy reports AVX, AVX2 and FMA; elsewhere it
imports as before, its notices and that reason on the terminal. Qt-free."""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys

# the instruction sets TensorFlow's x86 wheels are compiled for (at most), as numpy names them
NEEDED_CPU_FEATURES = ("AVX", "AVX2", "FMA3")


def cpu_runs_tensorflow(features: dict | None = None) -> bool:
    """Whether numpy's CPU dispatch reports every one of ``NEEDED_CPU_FEATURES`` (False when it
    cannot tell)."""
    if features is None:
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return False
    return all(features.get(name) for name in NEEDED_CPU_FEATURES)


@contextlib.contextmanager
def stderr_silenced():
    """File descriptor 2 pointed at the null device for the block (C++ writes go there too).
    Where standard error is not a file descriptor (a windowed executable), nothing changes."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietLoader(importlib.abc.Loader):
    """The package's own loader, its module run with standard error silenced; the finder
    leaves ``sys.meta_path`` once the package has been run."""

    def __init__(self, real: importlib.abc.Loader, finder: "_QuietFinder"):
        self.real = real
        self.finder = finder

    def create_module(self, spec):
        return self.real.create_module(spec)

    def __getattr__(self, name: str):
        # what else the package's own loader offers (resource readers, get_data, is_package):
        # the package keeps this loader as its __loader__ and __spec__.loader
        return getattr(self.real, name)

    def exec_module(self, module) -> None:
        try:
            with stderr_silenced():
                self.real.exec_module(module)
        finally:
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(self.finder)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` through the other finders and hands back its spec with the quiet
    loader. A lookup alone (``importlib.util.find_spec``, as ``inspector.runtime`` asks whether
    TensorFlow is there) does not use it up: it stays until the package is run."""

    def __init__(self):
        self._finding = False

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or self._finding:
            return None
        self._finding = True   # the other finders, not this one again
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._finding = False
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self)
        return spec


class RetracingNoticeFilter(logging.Filter):
    """Drops TensorFlow's "... triggered tf.function retracing ..." warning, keeps the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def quiet_tensorflow_import() -> None:
    """From now on, TensorFlow's first import in this process is silenced (see the module's
    description). A no-op when it is already imported, already arranged, or the CPU may lack
    what TensorFlow needs (``cpu_runs_tensorflow``).

    In the packaged executable TensorFlow's Python warnings are kept off the terminal as well:
    AutoGraph cannot read the packaged sources and said so, three lines at a time, 14 times in a
    one-epoch ``inspector-cli retrain`` (each export's signatures), which a user can do nothing
    about. Its errors still show.

    In the commands that call this, TensorFlow's notice that a function "triggered tf.function retracing" is dropped
    (``RetracingNoticeFilter``): the training's checks call ``predict`` on freshly compiled
    models, one per probe and stage, by design, and the notice (eight lines of advice for
    TensorFlow programmers) appeared among ``inspector retrain``'s lines after its augmentation
    check."""
    tf_log = logging.getLogger("tensorflow")
    if not any(isinstance(f, RetracingNoticeFilter) for f in tf_log.filters):
        tf_log.addFilter(RetracingNoticeFilter())
    if getattr(sys, "frozen", False):
        tf_log.setLevel(logging.ERROR)
    if "tensorflow" in sys.modules or not cpu_runs_tensorflow():
        return
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())

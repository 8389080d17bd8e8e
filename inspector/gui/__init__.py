"""The desktop GUI (PySide6 + pyqtgraph). Only this package imports Qt (the import contracts in
pyproject.toml, checked by ``lint-imports`` in .ci/run, keep it so); it arranges widgets and
forwards signals to the Qt-free core in inspector/ (engine, camera, session, batch, report,
retrain).

PySide6 is pinned to 6.11.3: 6.12.0 drops references to None and True on every signal emitted
from Python, which aborts a long session on CPython 3.11 (see the README)."""

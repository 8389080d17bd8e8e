"""The desktop GUI (PySide6 + pyqtgraph). Only this package imports Qt; it arranges widgets and
forwards signals to the Qt-free core in inspector/ (engine, session, batch, report).

Importing it installs the guard against the PySide6 6.12.0 reference-count bug (see
refcount_guard), so that every window of the app - and every test that imports one - is safe."""
from .refcount_guard import install as _install_refcount_guard

_install_refcount_guard()

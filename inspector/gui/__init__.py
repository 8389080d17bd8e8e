"""The desktop GUI (PySide6 + pyqtgraph). Only this package imports Qt; it arranges widgets and
forwards signals to the Qt-free core in inspector/ (engine, session, batch, report)."""

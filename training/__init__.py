"""SSDC-MiniNet: model, data, training, evaluation and export. Qt-free."""
__version__ = "1.0.0"

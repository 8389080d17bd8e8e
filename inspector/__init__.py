"""Steel Inspector: review steel-surface images with SSDC-MiniNet (the app; the layers are in
docs/architecture.md)."""

__version__ = "1.0.0"   # the same as pyproject.toml's (tests/test_inspector_batch.py checks)

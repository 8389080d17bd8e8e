"""Steel Inspector: review steel-surface images with SSDC-MiniNet (the app; the layers are in
docs/architecture.md)."""

"""One module per method. Each exposes plain functions ``run(..., progress, cancel)``."""

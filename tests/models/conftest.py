"""Fixtures shared by these tests."""

from fake_hub import make_hub  # noqa: F401 - a local fake of the model hub

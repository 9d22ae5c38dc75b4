"""Test-wide isolation: offscreen Qt, no network, user folders under a temporary home."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["OVPAINT_HOME"] = tempfile.mkdtemp(prefix="ovpaint-test-home-")
os.environ.pop("OVPAINT_MODELS", None)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_manager():
    """One tiny-profile ModelManager for the whole session (models build once)."""
    from ovpaint.models.manager import ModelManager

    return ModelManager(profile="tiny", device="cpu")

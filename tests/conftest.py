"""Test-wide isolation: offscreen Qt, no network, user folders under a temporary home; tests
marked ``gpu`` skip without CUDA, ``real_weights`` tests take ``real_manager`` (skipped, saying
which model is missing, where the weights are not installed)."""

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
    """One tiny-profile ModelManager for the whole session (models build once), computing in
    fp32 as the self-test's tiny models do: what a test sees must not depend on the precision
    this machine measured fastest (the measured choice's wiring is tested with
    ``fixed_precision``)."""
    from ovpaint.models.manager import ModelManager

    return ModelManager(profile="tiny", device="cpu", dtype="fp32")


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(no_gpu)


@pytest.fixture(scope="session")
def real_manager():
    """A ModelManager on the user's installed real weights (CLIP and SAM2), or a skip that
    names what is missing. The test home is empty: OVPAINT_REAL_MODEL_DIR points at weights."""
    from ovpaint.core.errors import ModelUnavailable
    from ovpaint.core.settings import Settings
    from ovpaint.models.manager import ModelManager

    folder = os.environ.get("OVPAINT_REAL_MODEL_DIR", "")
    if not folder:
        pytest.skip("real weights: set OVPAINT_REAL_MODEL_DIR to a folder of downloaded models")
    manager = ModelManager(profile="real", settings=Settings(values={"model_dir": folder}))
    try:
        for role in ("clip", "sam2"):
            manager.check_available(role)
    except ModelUnavailable as exc:
        pytest.skip(f"real weights: {exc}")
    return manager

"""Loading a parity fixture (SCLIP's or NACLIP's format): the ``.npz`` with open_clip weights
and arrays, the ``.json`` beside it with the architecture and the run's settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from ovpaint.models.clip_loader import ClipBundle, build_clip_from_openai_config, tokenizer

REPO = Path(__file__).resolve().parents[3]


def fixture_path(variable: str, name: str) -> Path:
    """The fixture named by ``variable`` in the environment, else ``../shared/fixtures/name``
    beside the repository."""
    return Path(os.environ.get(variable, REPO.parent / "shared" / "fixtures" / name))


def load_parity_fixture(path: Path, model_id: str) -> tuple[dict, ClipBundle, dict]:
    """(the .json, the CLIP bundle with the fixture's weights and normalisation, the arrays)."""
    z = np.load(path, allow_pickle=False)
    cfg = json.loads(path.with_suffix(".json").read_text("utf-8"))
    model = build_clip_from_openai_config(cfg["clip_config_openai_style"])
    state = {
        k[len("weight/") :]: torch.from_numpy(z[k].astype(np.float32))
        for k in z.files
        if k.startswith("weight/")
    }
    model.load_state_dict(state, strict=True)
    model.eval()
    pre = cfg["preprocess"]
    mean = tuple(v / 255.0 for v in pre["mean_0_255"])
    std = tuple(v / 255.0 for v in pre["std_0_255"])
    bundle = ClipBundle(
        model, tokenizer(cfg["clip_config_openai_style"]["context_length"]), model_id, mean, std
    )
    arrays = {k: z[k] for k in z.files if not k.startswith("weight/")}
    return cfg, bundle, arrays


def fixture_names(cfg: dict) -> list[str]:
    """Every class's names, flattened in order (the rows of ``text_features``)."""
    return [n for names in cfg["class_names"] for n in names]


def check_name_class(cfg: dict, arrays: dict) -> None:
    """``name_class`` in the arrays maps each name to its class as the ``.json`` lists them."""
    owner = [i for i, names in enumerate(cfg["class_names"]) for _ in names]
    assert list(arrays["name_class"]) == owner


def check_text_features(cfg: dict, bundle: ClipBundle, arrays: dict, cache_dir, atol: float):
    """Our 80-template text features of the fixture's names against its ``text_features``."""
    from ovpaint.pipelines.text import TextEncoder

    got = TextEncoder(bundle, "openai80", cache_dir=cache_dir).encode(fixture_names(cfg)).numpy()
    assert got.shape == arrays["text_features"].shape
    np.testing.assert_allclose(got, arrays["text_features"], atol=atol, rtol=0)

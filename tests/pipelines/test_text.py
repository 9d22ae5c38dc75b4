"""Text embeddings: causal truncation is exact, caches hit, template sets, normalisation."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from ovpaint.core.errors import BadInput
from ovpaint.models.clip_loader import build_tiny
from ovpaint.pipelines.text import FOUR_TEMPLATES, TextEncoder, template_set, text_encoder_for


@pytest.fixture(scope="module")
def clip():
    return build_tiny(seed=3)


def test_truncated_equals_padded_77_tokens(clip, tmp_path):
    enc = TextEncoder(clip, "openai80", cache_dir=tmp_path)
    names = ["dog", "person in a red shirt", "日本語の猫", "a" * 150]
    fast = enc._compute(names, truncate=True)
    naive = enc.encode_naive(names).numpy()
    np.testing.assert_allclose(np.stack(fast), naive, atol=1e-6, rtol=0)


def test_mean_of_normalised_templates(clip, tmp_path):
    enc = TextEncoder(clip, ["a photo of a {}.", "a drawing of a {}."], cache_dir=tmp_path)
    got = enc.encode(["cat"])[0]
    with torch.no_grad():
        t = clip.model.encode_text(clip.tokenizer(["a photo of a cat.", "a drawing of a cat."]))
    t = torch.nn.functional.normalize(t, dim=-1).mean(0)
    np.testing.assert_allclose(got.numpy(), (t / t.norm()).numpy(), atol=1e-6)
    assert abs(float(got.norm()) - 1) < 1e-5


def test_memory_and_disk_cache(clip, tmp_path):
    enc = TextEncoder(clip, "four", cache_dir=tmp_path)
    first = enc.encode(["tree", "sky", "tree"])
    assert first.shape == (3, 64) and first.dtype == torch.float32
    assert torch.equal(first[0], first[2])
    t0 = time.perf_counter()
    again = enc.encode(["sky"])
    assert time.perf_counter() - t0 < 0.5  # sanity only; speed is measured by ovpaint perf
    assert torch.equal(again[0], first[1])
    files = list(tmp_path.rglob("*.npy"))
    assert len(files) == 2
    fresh = TextEncoder(clip, "four", cache_dir=tmp_path)
    fresh._compute = None  # a disk hit must not run the model
    assert torch.equal(fresh.encode(["tree"])[0], first[0])


def test_damaged_disk_cache_is_recomputed(clip, tmp_path):
    enc = TextEncoder(clip, "four", cache_dir=tmp_path)
    ref = enc.encode(["road"])
    for f in tmp_path.rglob("*.npy"):
        f.write_bytes(b"garbage")
    fresh = TextEncoder(clip, "four", cache_dir=tmp_path)
    assert torch.allclose(fresh.encode(["road"]), ref, atol=1e-6)


def test_other_weights_do_not_share_cache(tmp_path):
    a = TextEncoder(build_tiny(seed=1), "four", cache_dir=tmp_path)
    b = TextEncoder(build_tiny(seed=2), "four", cache_dir=tmp_path)
    assert a.cache_dir != b.cache_dir
    assert not torch.allclose(a.encode(["dog"]), b.encode(["dog"]))


def test_template_sets():
    key, items = template_set("openai80")
    assert key == "openai80" and len(items) == 80 and all("{}" in t for t in items)
    key, items = template_set("four")
    assert items == FOUR_TEMPLATES and set(items) <= set(template_set("openai80")[1])
    with pytest.raises(BadInput):
        template_set("nonsense")
    with pytest.raises(BadInput):
        template_set(["no placeholder"])


def test_encoder_per_manager_is_shared(tiny_manager):
    a = text_encoder_for(tiny_manager, "four")
    assert text_encoder_for(tiny_manager, "four") is a
    assert text_encoder_for(tiny_manager, "openai80") is not a
    assert a.encode([]).shape[0] == 0

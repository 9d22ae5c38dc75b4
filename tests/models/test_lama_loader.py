"""LaMa weights: the tiny generator, and real files in the layouts published conversions use
(bare, ``generator.``-prefixed with training entries, ``model.``-wrapped), never unpickled;
bad files are refused with the file and the keys named, and nothing is loaded half-way."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ovpaint.core.errors import ModelUnavailable
from ovpaint.core.settings import Settings
from ovpaint.models import lama_loader
from ovpaint.models.lama import LamaConfig, LamaGenerator
from ovpaint.models.manager import ModelManager
from ovpaint.models.registry import get_spec
from ovpaint.models.store import ModelStore

SMALL = {"ngf": 8, "n_blocks": 1}


def _spec(config=SMALL):
    return dataclasses.replace(get_spec("big-lama"), arch={"config": dict(config)})


def _weights(seed=1, config=SMALL) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    generator = LamaGenerator(LamaConfig(**config))
    for m in generator.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
    return {k: v.clone() for k, v in generator.state_dict().items()}


def _same(generator, state) -> bool:
    got = generator.state_dict()
    return all(torch.equal(got[k], state[k].to(got[k].dtype)) for k in state)


def test_tiny_is_seeded_and_runs():
    a, b, c = (lama_loader.build_tiny(s) for s in (0, 0, 1))
    assert a.model_id == "tiny-lama" and a.generator.channels_last_tail
    assert _same(a.generator, b.generator.state_dict())
    assert not _same(a.generator, c.generator.state_dict())
    with torch.inference_mode():
        out = a.generator(torch.rand(1, 4, 40, 56))
    assert out.shape == (1, 3, 40, 56) and torch.isfinite(out).all()
    assert 0 < out.min() and out.max() < 1


@pytest.mark.parametrize(
    "layout",
    ["bare", "generator", "wrapped", "training"],
)
def test_published_layouts_load(tmp_path, layout):
    state = _weights()
    if layout == "generator":
        tensors = {f"generator.{k}": v for k, v in state.items()}
    elif layout == "wrapped":
        tensors = {f"model.{k}": v for k, v in state.items()}
    elif layout == "training":  # a training checkpoint's entries, with what export drops
        tensors = {f"generator.{k}": v for k, v in state.items()}
        tensors["discriminator.model0.0.weight"] = torch.zeros(3, 3)
        tensors["loss_resnet_pl.impl.conv1.weight"] = torch.zeros(2)
    else:
        tensors = dict(state)
    path = tmp_path / "lama.safetensors"
    save_file(tensors, str(path))
    bundle = lama_loader.load_real(_spec(), path, torch.device("cpu"), torch.float32)
    assert _same(bundle.generator, state)
    assert bundle.generator.channels_last_tail and not bundle.generator.training


def test_half_precision_files_and_absent_counters_are_fine(tmp_path):
    state = _weights()
    tensors = {
        k: v.half() if v.is_floating_point() else v
        for k, v in state.items()
        if not k.endswith("num_batches_tracked")
    }
    path = tmp_path / "fp16.safetensors"
    save_file(tensors, str(path))
    bundle = lama_loader.load_real(_spec(), path, torch.device("cpu"), torch.float16)
    assert bundle.dtype == torch.float32  # Fourier units need fp32 whatever the manager asks
    w = bundle.generator.state_dict()["model.1.ffc.convl2l.weight"]
    assert torch.equal(w, state["model.1.ffc.convl2l.weight"].half().float())


def test_plain_tensor_dict_through_weights_only(tmp_path):
    state = _weights()
    path = tmp_path / "lama.pt"
    torch.save({"state_dict": {f"generator.{k}": v for k, v in state.items()}}, path)
    bundle = lama_loader.load_real(_spec(), path, torch.device("cpu"), torch.float32)
    assert _same(bundle.generator, state)


class _NotATensor:
    pass


def test_pickled_objects_are_never_unpickled(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model.1.ffc.convl2l.weight": _NotATensor()}, path)
    with pytest.raises(ModelUnavailable, match="evil.pt could not be read"):
        lama_loader.read_tensors(path)


def test_wrong_shapes_missing_and_unexpected_keys_are_named(tmp_path):
    state = _weights()
    state["model.1.ffc.convl2l.weight"] = torch.zeros(8, 4, 5, 5)
    del state["model.5.conv1.ffc.convg2g.fu.conv_layer.weight"]
    state["model.99.weight"] = torch.zeros(1)
    path = tmp_path / "odd.safetensors"
    save_file(state, str(path))
    with pytest.raises(ModelUnavailable) as err:
        lama_loader.load_real(_spec(), path, torch.device("cpu"), torch.float32)
    text = str(err.value)
    assert str(path) in text
    assert "1 missing (model.5.conv1.ffc.convg2g.fu.conv_layer.weight)" in text
    assert "1 unexpected (model.99.weight)" in text
    assert "model.1.ffc.convl2l.weight (file [8, 4, 5, 5], expected [8, 4, 7, 7])" in text


def test_another_width_is_refused_not_loaded_in_part(tmp_path):
    path = tmp_path / "wide.safetensors"
    save_file(_weights(config={"ngf": 16, "n_blocks": 1}), str(path))
    with pytest.raises(ModelUnavailable, match="with the wrong shape"):
        lama_loader.load_real(_spec(), path, torch.device("cpu"), torch.float32)


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "could not be read"),
        (b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage", "could not be read"),
        (np.random.default_rng(0).bytes(4096), "could not be read"),
    ],
)
def test_corrupt_files_name_the_file(tmp_path, content, match):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)
    with pytest.raises(ModelUnavailable, match=match) as err:
        lama_loader.load_real(_spec(), path, torch.device("cpu"), torch.float32)
    assert str(path) in str(err.value)


def test_other_models_and_two_generators_are_told_apart(tmp_path):
    other = tmp_path / "clip.safetensors"
    save_file({"visual.conv1.weight": torch.zeros(2, 3)}, str(other))
    with pytest.raises(ModelUnavailable, match="no LaMa generator weights"):
        lama_loader.load_real(_spec(), other, torch.device("cpu"), torch.float32)
    state = _weights()
    both = {f"generator.{k}": v for k, v in state.items()}
    both.update({f"generator_average.{k}": v.clone() for k, v in state.items()})
    path = tmp_path / "two.safetensors"
    save_file(both, str(path))
    with pytest.raises(ModelUnavailable, match="more than one generator") as err:
        lama_loader.load_real(_spec(), path, torch.device("cpu"), torch.float32)
    assert "'generator.'" in str(err.value) and "'generator_average.'" in str(err.value)


def test_a_file_far_over_the_size_of_big_lama_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.safetensors"
    save_file(_weights(), str(path))
    monkeypatch.setattr(lama_loader, "MAX_WEIGHTS_BYTES", path.stat().st_size - 1)
    with pytest.raises(ModelUnavailable, match="not a big-lama generator file"):
        lama_loader.read_tensors(path)


def test_the_manager_loads_released_big_lama_layout_from_a_local_copy(tmp_path):
    """The registered big-lama entry, a full-size generator file in the training-checkpoint
    naming, through the ModelManager as a user's local copy; a broken copy afterwards is
    refused and the manager holds no half-loaded model."""
    state = _weights(seed=3, config={})
    path = tmp_path / "big-lama.safetensors"
    save_file({f"generator.{k}": v for k, v in state.items()}, str(path))
    settings = Settings()
    store = ModelStore(tmp_path / "models")
    manager = ModelManager(profile="real", device="cpu", settings=settings, store=store)
    spec = manager.spec("lama")
    assert spec.id == "big-lama" and spec.files[0].path.endswith(".safetensors")
    store.overrides[spec.id] = str(path)
    manager.check_available("lama")
    with manager.use("lama") as bundle:
        assert bundle.model_id == "big-lama"
        assert sum(p.numel() for p in bundle.generator.parameters()) == 50_975_875
        assert _same(bundle.generator, state)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(path.read_bytes()[: 1 << 20])
    fresh = ModelManager(
        profile="real", device="cpu", settings=settings, store=ModelStore(tmp_path / "m2")
    )
    fresh.store.overrides[spec.id] = str(broken)
    with pytest.raises(ModelUnavailable, match="broken.safetensors"):
        fresh.get("lama")
    assert fresh.device_of("lama") is None


def test_big_lama_downloads_like_the_other_models_and_is_checked_when_loaded(
    tmp_path, make_hub, monkeypatch
):
    """The registered entry through the downloader (a local fake hub: size and sha256 from
    its LFS metadata), then the manager: a file of another width is refused by name."""
    from huggingface_hub import constants

    from ovpaint.models import download as dl

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    spec = get_spec("big-lama")
    payload = tmp_path / "payload.safetensors"
    save_file({f"generator.{k}": v for k, v in _weights().items()}, str(payload))
    (pinned,) = spec.files
    hub = make_hub(spec.repo, {pinned.path: payload.read_bytes()}, lfs={pinned.path})
    store = ModelStore(tmp_path / "models")
    result = dl.download(spec, store, source=dl.HubSource(endpoint=hub.url, token=""))
    assert result.path == store.folder(spec) / pinned.path
    assert dl.verify(spec, store).state == "ok"
    manager = ModelManager(profile="real", device="cpu", settings=Settings(), store=store)
    manager.check_available("lama")
    with pytest.raises(ModelUnavailable, match="big-lama.safetensors does not match"):
        manager.get("lama")

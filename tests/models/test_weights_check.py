"""Weights are checked when imported: the format (a pickle or a truncated file named
.safetensors is refused) and the names and shapes of the architecture they are for."""

from __future__ import annotations

import pickle

import pytest
import torch

from ovpaint.core.errors import BadInput
from ovpaint.core.settings import Settings
from ovpaint.models import download as dl
from ovpaint.models.registry import get_spec
from ovpaint.models.weights_check import check_weights, safetensors_shapes
from tests.weight_files import (
    inpaint_folder,
    tiny_clip_file,
    tiny_clip_spec,
    tiny_sam2_file,
    tiny_sam2_spec,
)


class Payload:
    def __reduce__(self):  # what a malicious pickle does when loaded
        return (print, ("code ran",))


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    return tiny_clip_file(tmp_path_factory.mktemp("clip") / "clip.safetensors")


@pytest.fixture(scope="module")
def sam_file(tmp_path_factory):
    return tiny_sam2_file(tmp_path_factory.mktemp("sam") / "sam2.1_hiera_tiny.pt")


def test_matching_weights_are_accepted(clip_file, sam_file, tmp_path):
    settings = Settings(tmp_path / "settings.json")
    assert dl.import_local(tiny_clip_spec(), clip_file, settings) == clip_file.resolve()
    assert dl.import_local(tiny_sam2_spec(), sam_file.parent, settings) == sam_file.parent.resolve()
    assert dl.import_local(get_spec("sd2-inpaint"), inpaint_folder(tmp_path / "sd"), settings)
    assert set(settings["local_model_paths"]) == {"clip-vit-b16", "sam2.1-tiny", "sd2-inpaint"}


def test_pickle_named_safetensors_is_refused(tmp_path):
    fake = tmp_path / "model.safetensors"
    fake.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(BadInput, match="not a safetensors file"):
        dl.import_local(tiny_clip_spec(), fake, Settings(tmp_path / "s.json"))
    torch.save({"w": torch.zeros(3)}, fake)  # a torch zip renamed
    with pytest.raises(BadInput, match="not a safetensors file"):
        dl.import_local(tiny_clip_spec(), fake, Settings(tmp_path / "s.json"))
    assert not (tmp_path / "s.json").exists()


def test_truncated_safetensors_is_refused(clip_file, tmp_path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(clip_file.read_bytes()[:-1000])
    with pytest.raises(BadInput, match="truncated"):
        dl.import_local(tiny_clip_spec(), cut, Settings(tmp_path / "s.json"))


def test_damaged_header_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "x.safetensors"
    save_file({"a": torch.zeros(4)}, str(path))
    data = path.read_bytes()
    assert b'"shape":[4]' in data
    path.write_bytes(data.replace(b'"shape":[4]', b'"shape":[5]'))  # says 5 floats, holds 4
    with pytest.raises(BadInput, match="damaged"):
        safetensors_shapes(path)


def test_weights_of_another_model_are_refused(clip_file, sam_file, tmp_path):
    with pytest.raises(BadInput, match="does not match"):
        check_weights(tiny_sam2_spec(), clip_file)  # found by name in a folder? still refused
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"visual.conv1.weight": torch.zeros(2, 3, 16, 16)}, str(other))
    with pytest.raises(BadInput, match="does not match"):
        check_weights(tiny_clip_spec(), other)


def test_sam2_pickle_checkpoint_is_refused(tmp_path):
    legacy = tmp_path / "sam2.1_hiera_tiny.pt"
    legacy.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(BadInput, match="zip-format"):
        dl.import_local(tiny_sam2_spec(), legacy, Settings(tmp_path / "s.json"))
    torch.save({"model": {"x": torch.zeros(2)}}, legacy)
    with pytest.raises(BadInput, match="does not match"):
        dl.import_local(tiny_sam2_spec(), legacy, Settings(tmp_path / "s.json"))


def test_diffusers_folder_that_is_not_inpainting_is_refused(tmp_path):
    with pytest.raises(BadInput, match="not an inpainting model"):
        check_weights(get_spec("sd2-inpaint"), inpaint_folder(tmp_path / "sd", unet_channels=4))
    folder = inpaint_folder(tmp_path / "sd2")
    weights = folder / "vae" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4])
    with pytest.raises(BadInput, match="truncated"):
        check_weights(get_spec("sd2-inpaint"), folder)


def test_lama_weights_are_checked_by_its_own_rules(tmp_path):
    from tests.weight_files import tiny_lama_file, tiny_lama_spec

    settings = Settings(tmp_path / "s.json")
    good = tiny_lama_file(tmp_path / "big-lama.safetensors")
    assert dl.import_local(tiny_lama_spec(), good, settings) == good.resolve()
    renamed = tmp_path / "other.safetensors"
    renamed.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(BadInput, match="not a safetensors file"):
        dl.import_local(tiny_lama_spec(), renamed, settings)
    with pytest.raises(BadInput, match="does not match the LaMa generator"):
        dl.import_local(get_spec("big-lama"), good, settings)  # tiny weights, full-size spec

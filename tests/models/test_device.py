"""Device and dtype choice, and plain words when a GPU exists but torch cannot use it."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from ovpaint.core.errors import BadInput
from ovpaint.models import device as devices


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: False)


def test_auto_is_cpu_fp32_here(no_cuda, monkeypatch):
    monkeypatch.setattr(devices, "_nvidia_gpu_present", lambda: False)
    choice = devices.choose("auto", "auto")
    assert choice.device.type == "cpu" and choice.dtype == torch.float32 and choice.note == ""
    assert choice.describe() == "cpu / fp32"


def test_dtype_rules_on_cpu(no_cuda):
    cpu = torch.device("cpu")
    assert devices.choose_dtype("auto", cpu) == torch.float32
    assert devices.choose_dtype("bf16", cpu) == torch.bfloat16
    assert devices.choose_dtype("FP32", cpu) == torch.float32
    with pytest.raises(BadInput, match="fp16 is not supported"):
        devices.choose("cpu", "fp16")
    with pytest.raises(BadInput, match="Unknown dtype"):
        devices.choose_dtype("int8", cpu)
    assert devices.choose_dtype("auto", torch.device("cuda")) == torch.float16


def test_unavailable_devices_are_bad_input(no_cuda, monkeypatch):
    monkeypatch.setattr(devices, "_nvidia_gpu_present", lambda: False)
    with pytest.raises(BadInput, match="--device cuda .* no CUDA GPU"):
        devices.choose("cuda")
    with pytest.raises(BadInput, match="MPS"):
        devices.choose("mps")
    with pytest.raises(BadInput, match="Unknown device"):
        devices.choose("tpu")


def test_gpu_present_but_unusable_is_said_plainly(no_cuda, monkeypatch):
    monkeypatch.setattr(devices, "_nvidia_gpu_present", lambda: True)
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    note = devices.gpu_unusable_note()
    assert "NVIDIA GPU is present" in note and "CUDA 12.8" in note and "driver" in note
    choice = devices.choose("auto")
    assert choice.device.type == "cpu" and choice.note == note
    assert note in choice.describe()
    with pytest.raises(BadInput, match="NVIDIA GPU is present"):
        devices.choose("cuda")
    monkeypatch.setattr(torch.version, "cuda", None)
    assert "no CUDA support" in devices.gpu_unusable_note()


def test_nvidia_smi_detection(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA GeForce GTX 1060 6GB (UUID: GPU-1)'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert devices._nvidia_gpu_present()
    fake.write_text("#!/bin/sh\necho 'No devices were found'\nexit 6\n")
    assert not devices._nvidia_gpu_present()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert not devices._nvidia_gpu_present()


def test_out_of_memory_recognised():
    assert devices.is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate"))
    assert not devices.is_out_of_memory(RuntimeError("shape mismatch"))
    assert devices.gpu_free_bytes(torch.device("cpu")) is None


def test_fast_bf16_needs_native_bf16_units_not_just_avx512(monkeypatch):
    import torch

    from ovpaint.models import device

    monkeypatch.setattr(
        torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False
    )  # true on any AVX512 CPU: must not decide
    for avx512_bf16, amx, expected in (
        (False, False, False),
        (True, False, True),
        (False, True, True),
    ):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        device.cpu_has_fast_bf16.cache_clear()
        assert device.cpu_has_fast_bf16() is expected
    device.cpu_has_fast_bf16.cache_clear()

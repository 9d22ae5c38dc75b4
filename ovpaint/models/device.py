"""Device and dtype choice, with plain words when a GPU exists but torch cannot use it."""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

import torch

from ovpaint.core.errors import BadInput

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    dtype: torch.dtype
    note: str = ""  # shown to the user (e.g. "NVIDIA GPU present but this torch has no CUDA")

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES[self.dtype]

    @property
    def device_name(self) -> str:
        """The device in plain words: "cpu", "mps" or the GPU's name."""
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return self.device.type

    def describe(self) -> str:
        text = f"{self.device_name} / {self.dtype_name}"
        if self.device.type == "cuda":
            text = f"{self.device_name} ({self.dtype_name})"
        return text + (f" — {self.note}" if self.note else "")


def _nvidia_gpu_present() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def gpu_unusable_note() -> str:
    """Say plainly why a present NVIDIA GPU is not used, or '' when there is nothing to say."""
    if torch.cuda.is_available() or not _nvidia_gpu_present():
        return ""
    if torch.version.cuda is None:
        return "an NVIDIA GPU is present but this torch build has no CUDA support; running on CPU"
    return (
        f"an NVIDIA GPU is present but torch (CUDA {torch.version.cuda}) cannot use it — "
        "the driver is probably too old; running on CPU"
    )


def choose_device(requested: str = "auto") -> tuple[torch.device, str]:
    requested = (requested or "auto").lower()
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda"), ""
        if mps_available():
            return torch.device("mps"), ""
        return torch.device("cpu"), gpu_unusable_note()
    if requested == "cuda":
        if not torch.cuda.is_available():
            note = gpu_unusable_note() or "no CUDA GPU is available"
            raise BadInput(f"--device cuda was asked for, but {note}.")
        return torch.device("cuda"), ""
    if requested == "mps":
        if not mps_available():
            raise BadInput("--device mps was asked for, but Apple MPS is not available.")
        return torch.device("mps"), ""
    if requested == "cpu":
        return torch.device("cpu"), ""
    raise BadInput(f"Unknown device '{requested}'. Use auto, cpu, cuda or mps.")


def choose_dtype(requested: str, device: torch.device) -> torch.dtype:
    """fp16 on CUDA, fp32 on CPU and MPS unless asked otherwise."""
    requested = (requested or "auto").lower()
    if requested == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if requested not in DTYPES:
        raise BadInput(f"Unknown dtype '{requested}'. Use auto, fp32, bf16 or fp16.")
    if requested == "fp16" and device.type == "cpu":
        raise BadInput("fp16 is not supported for computing on the CPU; use bf16 or fp32.")
    return DTYPES[requested]


def choose(device: str = "auto", dtype: str = "auto") -> DeviceChoice:
    dev, note = choose_device(device)
    return DeviceChoice(dev, choose_dtype(dtype, dev), note)


def gpu_free_bytes(device: torch.device) -> int | None:
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def cpu_is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


@lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """bf16 instructions (AVX512-BF16 or AMX). Without them an x86 CPU emulates bf16, so it is
    not worth timing; with them it may still be slower than fp32 (0.6× on one Intel Xeon), so
    this only decides which precisions the calibration times (``models/calibration.py``), never
    which one runs. oneDNN's own bf16 flag is also true on plain AVX512, so it is not asked.
    Asked of torch's CPU feature probe, else of /proc/cpuinfo."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        pass
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            flags = fh.read(200_000)
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags

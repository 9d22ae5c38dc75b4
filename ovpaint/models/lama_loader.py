"""LaMa loading: converted big-lama generator weights (safetensors, or a plain tensor dict read
with ``torch.load(weights_only=True)``), or the tiny offline generator.

Published conversions name the generator's tensors differently: bare (``model.<N>....``),
as in the training checkpoint (``generator.model.<N>....``, next to ``discriminator.*`` and
``loss_*`` entries that are dropped), or under another wrapper (``model.model.<N>....``). The
wrapper is found from the ``model.<N>.`` part every generator key has, and everything is
checked against the generator built here before a single tensor is copied: missing,
unexpected and wrong-shape keys are reported with the file's name, and nothing is loaded
half-way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ovpaint.core.errors import ModelUnavailable
from ovpaint.models.lama import LamaConfig, LamaGenerator
from ovpaint.models.protocols import Derived

TINY_CONFIG = LamaConfig(ngf=8, n_blocks=2)
MAX_WEIGHTS_BYTES = 1_000_000_000  # big-lama is 204 MB in fp32; anything far larger is not it
_GENERATOR_KEY = re.compile(r"(?:^|\.)(model\.\d+\..+)$")
_DROPPED = ("discriminator.", "loss_")
_LISTED = 4  # keys named per kind of problem


@dataclass
class LamaBundle:
    generator: LamaGenerator
    model_id: str
    derived: Derived = field(default_factory=Derived, init=False, repr=False, compare=False)

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.generator.parameters()).dtype

    def to_device(self, device: torch.device) -> None:
        self.generator.to(device)

    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.generator.parameters())


def build_tiny(
    seed: int = 0, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> LamaBundle:
    """big-lama's architecture at a fraction of the width and depth, seeded random weights;
    BatchNorm statistics are drawn too, so eval-mode normalisation is not the identity."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = LamaGenerator(TINY_CONFIG)
        with torch.no_grad():
            for module in generator.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.2, 0.2)
                    module.running_var.uniform_(0.5, 2.0)
    generator.prepare_for_inference()
    return LamaBundle(generator.to(device), "tiny-lama")


def load_real(spec, path: Path, device: torch.device, dtype: torch.dtype) -> LamaBundle:
    """Build the generator of ``spec``, check the file's tensors against it, then load.

    The generator stays in fp32 whatever the manager's dtype: its Fourier units need fp32
    (cuFFT's half precision takes power-of-two sizes only) and 51 M parameters fit anywhere."""
    path = Path(path)
    generator = LamaGenerator(LamaConfig(**spec.arch.get("config", {})))
    state = generator_state(read_tensors(path), path)
    check_state(generator, state, path)
    generator.load_state_dict(state, strict=True)
    generator.prepare_for_inference()
    return LamaBundle(generator.to(device), spec.id)


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, never unpickling anything."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelUnavailable(f"Cannot read the LaMa weights {path}: {exc}") from exc
    if size > MAX_WEIGHTS_BYTES:
        raise ModelUnavailable(
            f"{path} is {size / 1e9:.1f} GB; LaMa generator weights are about 0.2 GB. "
            "It is not a big-lama generator file."
        )
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            data = load_file(str(path), device="cpu")
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
        raise ModelUnavailable(
            f"The LaMa weights {path} could not be read ({type(exc).__name__}: {exc}). The file "
            "may be corrupt or not a tensor file; download it again or choose another copy."
        ) from exc
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]  # a training checkpoint saved as plain tensors
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()
    ):
        raise ModelUnavailable(f"{path} does not hold a dictionary of named tensors.")
    return data


def generator_state(tensors: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """The generator's entries under bare ``model.<N>....`` names: training-only entries
    dropped, the one wrapper prefix found and stripped; other keys are kept (and reported as
    unexpected by :func:`check_state`)."""
    kept = {k: v for k, v in tensors.items() if not k.startswith(_DROPPED)}
    prefixes: dict[str, int] = {}
    for key in kept:
        match = _GENERATOR_KEY.search(key)
        if match:
            prefix = key[: match.start(1)]
            prefixes[prefix] = prefixes.get(prefix, 0) + 1
    if not prefixes:
        raise ModelUnavailable(
            f"{path} holds no LaMa generator weights (no 'model.<N>.' tensors among "
            f"{len(tensors)} entries, e.g. {_sample(tensors)})."
        )
    if len(prefixes) > 1:
        found = ", ".join(f"'{p or '(none)'}' ({n} tensors)" for p, n in sorted(prefixes.items()))
        raise ModelUnavailable(
            f"{path} holds more than one generator ({found}); export a single generator."
        )
    (prefix,) = prefixes
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in kept.items()}


def check_state(
    generator: torch.nn.Module, state: dict[str, torch.Tensor], path: Path
) -> dict[str, torch.Tensor]:
    """Make ``state`` exactly what ``generator`` takes, or say why it cannot. BatchNorm's
    ``num_batches_tracked`` counters (unused in eval mode) may be absent; floating tensors
    are cast to the generator's dtype; nothing is copied into the generator here."""
    expected = generator.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} (file {list(state[k].shape)}, expected {list(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    not_float = [
        k
        for k, v in expected.items()
        if k in state and v.is_floating_point() and not state[k].is_floating_point()
    ]
    problems = []
    for label, keys in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("with the wrong shape", wrong),
        ("not floating point", not_float),
    ):
        if keys:
            problems.append(f"{len(keys)} {label} ({_listed(keys)})")
    if problems:
        raise ModelUnavailable(
            f"{path} does not match the LaMa generator ({_describe(generator)}): "
            + "; ".join(problems)
            + ". Is it a big-lama generator file?"
        )
    for key, value in expected.items():
        if key not in state:
            state[key] = value.clone()
        elif value.is_floating_point():
            state[key] = state[key].to(value.dtype)
    return state


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LISTED])
    return shown + (f", … {len(keys) - _LISTED} more" if len(keys) > _LISTED else "")


def _sample(tensors: dict) -> str:
    return _listed(list(tensors)) if tensors else "none"


def _describe(generator: torch.nn.Module) -> str:
    config = getattr(generator, "config", None)
    if config is None:
        return type(generator).__name__
    return f"ngf {config.ngf}, {config.n_blocks} blocks"

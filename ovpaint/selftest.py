"""The installation self-test: every engine stage on the tiny profile, in a throw-away home.

``ovpaint selftest`` runs it, and ``ovpaint-app --self-test`` runs it after driving the real
window. It is what a release build is checked with and what a user runs when an installation
misbehaves: it needs no download and no GPU, and exits 0 only if every check passed.

Each check proves something a broken installation gets wrong: the bundled resources are found,
the tiny CLIP, SAM2 and Stable Diffusion models build (open_clip's vocabulary, sam2's yaml
configs and diffusers' lazy classes are all present), a generated image is segmented by text
and by a click, it is inpainted by every registered engine (Stable Diffusion, OpenCV, ...) with
the pixels away from the mask byte for byte unchanged, and the results survive a PNG round
trip. The digests of the
outputs let a build compare a frozen bundle with the source install it was made from.

Nothing is written outside a temporary folder: :func:`isolated_home` points every user folder
(settings, recovery files, logs, the model cache) there for the run and removes it afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# every variable ovpaint.core.paths reads: all of them move into the temporary home
HOME_VARIABLES = (
    "OVPAINT_HOME",
    "OVPAINT_CACHE_DIR",
    "OVPAINT_CONFIG_DIR",
    "OVPAINT_DATA_DIR",
    "OVPAINT_MODEL_DIR",
)
PROMPT = "sky, dog"
CLICK = (64, 70)  # on the dog of :func:`scene`
INPAINT_STEPS = 2
INPAINT_SEED = 7
REACH_PX = 32  # an inpainting may blend this far around its mask (4x the default dilation)


@dataclass
class Check:
    name: str
    ok: bool
    seconds: float
    detail: str = ""
    digest: str | None = None  # sha256 of the check's output bytes, when it has one


@dataclass
class SelfTestReport:
    checks: list[Check] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "info": self.info, "checks": [asdict(c) for c in self.checks]}


class CheckFailed(Exception):
    """A check's own verdict (as opposed to an error while running it)."""


class SelfTest:
    """Runs checks one by one; a failing check is recorded with its reason and the run goes on,
    so one report names every broken part at once."""

    def __init__(self, on_check: Callable[[Check], None] | None = None) -> None:
        self.report = SelfTestReport()
        self.on_check = on_check

    def check(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn``; its return value is (value, detail[, digest]) or a detail string."""
        t0 = time.perf_counter()
        value, detail, digest, ok = None, "", None, True
        try:
            out = fn()
            if isinstance(out, tuple):
                value, detail, *rest = out
                digest = rest[0] if rest else None
            else:
                detail = "" if out is None else str(out)
        except CheckFailed as exc:
            ok, detail = False, str(exc)
        except Exception as exc:  # noqa: BLE001 - the report names it; the run goes on
            ok = False
            detail = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        check = Check(name, ok, round(time.perf_counter() - t0, 3), detail, digest)
        self.report.checks.append(check)
        if self.on_check is not None:
            self.on_check(check)
        return value

    @property
    def ok(self) -> bool:
        return self.report.ok


def require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for array in arrays:
        a = np.ascontiguousarray(array)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@contextlib.contextmanager
def isolated_home(prefix: str = "ovpaint-selftest-") -> Iterator[Path]:
    """A temporary folder holding every user folder for the duration; removed afterwards and
    the environment restored."""
    extra = ("HF_HUB_OFFLINE", "TORCHINDUCTOR_CACHE_DIR")
    saved = {name: os.environ.get(name) for name in (*HOME_VARIABLES, *extra)}
    home = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        for name in HOME_VARIABLES:
            os.environ.pop(name, None)
        os.environ["OVPAINT_HOME"] = str(home)
        os.environ["HF_HUB_OFFLINE"] = "1"  # the tiny profile never needs the network
        # importing torch._dynamo (transformers does) creates torch's compile cache folder
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(home / "torch")
        yield home
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(home, ignore_errors=True)


def scene(height: int = 96, width: int = 128) -> np.ndarray:
    """A generated photo-like image: sky, ground, a brown blob (the 'dog'), mild noise."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[: height // 2] = (110, 160, 230)
    rgb[height // 2 :] = (70, 140, 60)
    rgb[dog_mask(height, width)] = (120, 80, 40)
    rng = np.random.default_rng(3)
    noisy = rgb.astype(np.int16) + rng.integers(-8, 9, rgb.shape, dtype=np.int16)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def dog_mask(height: int = 96, width: int = 128) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return ((yy - height * 0.72) / (height * 0.13)) ** 2 + (
        (xx - width * 0.5) / (width * 0.15)
    ) ** 2 < 1


def runtime_info(manager) -> dict[str, Any]:
    import platform
    import sys

    import torch

    from ovpaint import __version__

    info = {
        "ovpaint": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": bool(torch.cuda.is_available()),
        **manager.compute_summary().report_fields(),
        "frozen": bool(getattr(sys, "frozen", False)),
    }
    return info


def _check_resources() -> str:
    from ovpaint.core.paths import read_list, resource, resources_dir

    names = read_list(resource("classes", "voc21.txt"))
    require(len(names) == 21, f"voc21.txt lists {len(names)} classes, not 21")
    return f"{resources_dir()}"


def _check_torch_libraries() -> str:
    """A CUDA build must carry its CUDA libraries even where no GPU is present (cuDNN loads
    without one); a CPU build has nothing to load."""
    import torch

    if torch.version.cuda is None:
        return "CPU build of torch"
    version = torch.backends.cudnn.version()
    require(version is not None, "cuDNN did not load")
    return f"CUDA {torch.version.cuda}, cuDNN {version}"


def _check_model(manager, role: str) -> str:
    bundle = manager.get(role)
    return f"{manager.model_id(role)} on {manager.device_of(role)}, {bundle.nbytes():,} bytes"


def _check_segment_text(manager, rgb: np.ndarray):
    from ovpaint.pipelines.segmentation.segment import segment

    result = segment(rgb, PROMPT, method="refined", manager=manager)
    require(result.labels.shape == rgb.shape[:2], f"labels are {result.labels.shape}")
    require(result.classes == ["background", "sky", "dog"], f"classes are {result.classes}")
    require(
        int(result.labels.min()) >= 0 and int(result.labels.max()) < len(result.classes),
        "labels outside the class range",
    )
    areas = ", ".join(f"{name} {px} px" for name, px in result.areas().items())
    return result, f"refined: {areas}", digest(result.labels)


def _check_segment_click(manager, rgb: np.ndarray):
    from ovpaint.pipelines.segmentation.interactive import segment_from_clicks
    from ovpaint.pipelines.session import ImageSession

    result = segment_from_clicks(ImageSession(rgb), manager, [(*CLICK, True)], None, name="dog")
    require(result.labels.shape == rgb.shape[:2], f"mask is {result.labels.shape}")
    require(set(np.unique(result.labels)) <= {0, 1}, "a click mask must be 0/1")
    return result, f"{int(result.labels.sum())} px", digest(result.labels)


def _check_inpaint(manager, rgb: np.ndarray, engine: str):
    from ovpaint.core.masks import grow
    from ovpaint.pipelines.inpainting.inpaint import InpaintSettings, inpaint

    mask = dog_mask(*rgb.shape[:2])
    settings = InpaintSettings(
        mode="remove", steps=INPAINT_STEPS, seed=INPAINT_SEED, engine=engine
    ).validated()
    before = rgb.copy()
    result = inpaint(rgb, mask, settings, manager=manager)
    out = result.image
    require(np.array_equal(rgb, before), "the input image was modified")
    require(out.shape == rgb.shape and out.dtype == np.uint8, f"output is {out.shape}")
    far = ~grow(mask, REACH_PX)
    require(np.array_equal(out[far], rgb[far]), "pixels outside the mask changed")
    changed = int((out != rgb).any(axis=2).sum())
    require(changed > 0, "nothing changed inside the mask")
    return out, f"{changed} px changed near the mask, none beyond {REACH_PX} px", digest(out)


def _check_round_trip(folder: Path, labels: np.ndarray, rgb: np.ndarray) -> str:
    from ovpaint.core.image_io import load_image, save_image
    from ovpaint.core.masks import load_label_png, save_label_png

    label_path = save_label_png(folder / "labels.png", labels)
    require(np.array_equal(load_label_png(label_path), labels), "label PNG differs when read")
    image_path = save_image(folder / "inpainted.png", rgb)
    require(np.array_equal(load_image(image_path).rgb, rgb), "image PNG differs when read")
    return f"{label_path.name}, {image_path.name}"


def run_engine_checks(test: SelfTest, manager, folder: Path) -> None:
    """Every engine stage on ``manager``'s models (the tiny ones), writing only in ``folder``:
    each model role and each inpainting engine the installation registers."""
    from ovpaint.models.registry import roles
    from ovpaint.pipelines.inpainting.inpaint import ENGINES

    rgb = scene()
    test.report.info.update(runtime_info(manager))
    test.check("resources", _check_resources)
    test.check("torch libraries", _check_torch_libraries)
    for role in roles():
        test.check(f"load {role}", lambda role=role: _check_model(manager, role))
    segmented = test.check("segment by text", lambda: _check_segment_text(manager, rgb))
    test.check("segment by click", lambda: _check_segment_click(manager, rgb))
    painted = None
    for engine in ENGINES:
        out = test.check(f"inpaint ({engine})", lambda e=engine: _check_inpaint(manager, rgb, e))
        painted = out if painted is None else painted
    if segmented is not None and painted is not None:
        test.check(
            "write and read PNG", lambda: _check_round_trip(folder, segmented.labels, painted)
        )
    # the precisions the checks ran in (the stored measurement is read, never redone)
    test.report.info.update(manager.compute_summary().report_fields())


def tiny_manager(device: str | None = None, dtype: str | None = None):
    """The tiny models in fp32 unless a dtype is named: the outputs' digests must not depend
    on which precision this machine measured fastest (nor the check spend time measuring)."""
    from ovpaint.core.settings import Settings
    from ovpaint.models.manager import manager_from_options

    return manager_from_options("tiny", device, dtype or "fp32", Settings.load())


def format_check(check: Check) -> str:
    mark = "ok  " if check.ok else "FAIL"
    first, *rest = (check.detail or "").splitlines() or [""]
    line = f"{mark} {check.name:<28} {check.seconds:7.2f} s  {first}"
    if not check.ok and rest:
        line += "\n" + "\n".join("       " + r for r in rest)
    return line

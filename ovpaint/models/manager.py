"""ModelManager: one place that loads, places and serialises the models.

- Lazy: nothing loads until a pipeline asks for a role ("clip", "sam2", "inpaint", ...: the
  registered model families, :mod:`ovpaint.models.registry`).
- Device and dtype: cuda > mps > cpu unless overridden. Weights are fp32 on a CPU; each
  workload's compute precision (and on CUDA a model's storage precision) is the one measured
  fastest on this machine (``models/calibration.py``) unless ``--dtype``/settings say otherwise.
- Serialised: ``with manager.use("sam2") as sam:`` holds that model's lock, so two worker
  threads never run one model at once; different models may run side by side.
- Offload: on a GPU, before a model is placed, idle models are moved to the CPU until the
  resident total fits the memory budget (setting ``gpu_memory_budget_gb``; 0 = automatic),
  so CLIP → SAM2 → SD inpainting runs on a 6 GB card.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ovpaint.core.errors import BadInput, ModelUnavailable, OutOfMemory
from ovpaint.core.settings import Settings
from ovpaint.models import device as devices
from ovpaint.models.calibration import Calibrator, Workload, workloads
from ovpaint.models.fixes import unavailable
from ovpaint.models.precision_summary import AS_COMPUTED, ComputeSummary, stored_precision
from ovpaint.models.protocols import Bundle
from ovpaint.models.registry import FAMILIES, ModelSpec, family, get_spec, roles
from ovpaint.models.store import ModelStore

PROFILES = ("real", "tiny")


def _workload_of(role: str) -> Workload | None:
    """The calibrated workload whose precision decides how a role's model computes."""
    return next((w for w in workloads().values() if w.role == role), None)


GPU_MARGIN_BYTES = 1_000_000_000  # left free for activations when the budget is automatic


@dataclass
class ModelState:
    role: str
    model_id: str
    title: str
    state: str  # "missing" | "installed" | "loaded" | "tiny"
    device: str | None = None
    dtype: str | None = None
    nbytes: int | None = None
    in_use: bool = False


class _Slot:
    def __init__(self, role: str, model_id: str, bundle: Bundle, dtype: torch.dtype) -> None:
        self.role = role
        self.model_id = model_id
        self.bundle = bundle
        self.dtype = dtype
        self.lock = threading.RLock()
        self.users = 0

    @property
    def device(self) -> torch.device:
        return self.bundle.device


class ModelManager:
    def __init__(
        self,
        profile: str = "real",
        device: str = "auto",
        dtype: str = "auto",
        settings: Settings | None = None,
        store: ModelStore | None = None,
        seed: int = 0,
        calibrator: Calibrator | None = None,
    ) -> None:
        if profile not in PROFILES:
            raise BadInput(f"Unknown model profile '{profile}'. Use 'real' or 'tiny'.")
        self.profile = profile
        self.settings = settings or Settings()
        self.choice = devices.choose(device, dtype)
        self.requested_dtype = (dtype or "auto").lower()
        self.calibrator = calibrator or Calibrator(allow_int8=bool(self.settings["int8_vit"]))
        self.store = store or ModelStore.from_settings(self.settings)
        self.seed = seed
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.RLock()  # guards _slots and placement decisions
        self._load_locks: dict[str, threading.Lock] = {}
        self._ran: dict[str, str] = {}  # workload -> the precision precision() last gave it

    # ----------------------------------------------------------------- description
    @property
    def device(self) -> torch.device:
        return self.choice.device

    @property
    def dtype(self) -> torch.dtype:
        return self.choice.dtype

    @property
    def is_tiny(self) -> bool:
        return self.profile == "tiny"

    def banner(self) -> str:
        """One line for status bars and CLI summaries: the device, the weights' dtype and each
        workload's compute precision; says plainly when weights are fake. Reads the stored
        calibration (not on a UI thread); never measures."""
        return self.compute_summary().text()

    def precision(self, workload: str, *, progress: Any = None, cancel: Any = None) -> str:
        """The compute precision of ``workload``: ``--dtype``/the dtype setting when given,
        else the one measured fastest on this machine (measured now if it never was)."""
        if self.requested_dtype != "auto":
            return devices.DTYPE_NAMES[self.dtype]
        chosen = self.calibrator.choice(workload, self.device, progress=progress, cancel=cancel)
        with self._lock:
            self._ran[workload] = chosen
        return chosen

    def known_precisions(self, *, stored: bool = True) -> dict[str, str]:
        """Each workload's compute precision as far as it is known without measuring: with
        ``--dtype``/the dtype setting, that one for every workload; else what each workload
        was last given by :meth:`precision`, and (``stored``) this machine's stored choice for
        the others. ``stored`` reads the calibration file; nothing is ever measured here."""
        if self.requested_dtype != "auto":
            return {name: devices.DTYPE_NAMES[self.dtype] for name in sorted(workloads())}
        known = stored_precision(self.calibrator, self.device).choices() if stored else {}
        with self._lock:
            known.update(self._ran)
        return dict(sorted(known.items()))

    def compute_summary(self, *, stored: bool = True) -> ComputeSummary:
        """The device and the precisions of :meth:`known_precisions`, for status bars and
        reports (``stored`` as there)."""
        forced = None if self.requested_dtype == "auto" else self.choice.dtype_name
        # on a GPU with auto, each model is stored in its workload's measured precision
        weights = AS_COMPUTED if forced is None and self.device.type == "cuda" else None
        return ComputeSummary(
            self.choice.device_name,
            weights or self.choice.dtype_name,
            self.known_precisions(stored=stored),
            forced,
            self.choice.note,
            self.is_tiny,
        )

    def storage_dtype(self, role: str) -> torch.dtype:
        """The dtype a role's weights load in: on a GPU with ``auto``, the measured precision
        of the workload that role's model computes (a GPU without fast fp16 keeps fp32)."""
        if self.requested_dtype != "auto" or self.device.type != "cuda":
            return self.dtype
        owner = _workload_of(role)
        if owner is None:
            return self.dtype
        return devices.DTYPES.get(self.precision(owner.name), self.dtype)

    def model_id(self, role: str) -> str:
        chosen = FAMILIES.get(role)
        if chosen is None:
            raise KeyError(role)
        if self.is_tiny:
            return f"tiny-{role}"
        return self.settings[chosen.setting] or chosen.default_model(self.device.type)

    def spec(self, role: str) -> ModelSpec | None:
        return None if self.is_tiny else get_spec(self.model_id(role))

    def check_available(self, role: str) -> None:
        """Raise ModelUnavailable with the fix, before any work starts."""
        if self.is_tiny or role in self._slots:
            return
        spec = self.spec(role)
        self.store.require(spec)

    def states(self) -> list[ModelState]:
        out = []
        for role in roles():
            model_id = self.model_id(role)
            slot = self._slots.get(role)
            if self.is_tiny:
                title, state = f"tiny {role} (random weights)", "tiny"
            else:
                spec = get_spec(model_id)
                title = spec.title
                state = "installed" if self.store.installed_path(spec) else "missing"
            if slot is not None:
                dtype = devices.DTYPE_NAMES.get(slot.dtype, str(slot.dtype))
                if getattr(slot.bundle, "unet_bf16", False):
                    dtype += " (UNet bf16)"
                out.append(
                    ModelState(
                        role,
                        model_id,
                        title,
                        "loaded",
                        str(slot.device),
                        dtype,
                        slot.bundle.nbytes(),
                        slot.users > 0,
                    )
                )
            else:
                out.append(ModelState(role, model_id, title, state))
        return out

    # ----------------------------------------------------------------- loading
    def _load(self, role: str) -> _Slot:
        loader = family(role).loader()
        dtype = self.storage_dtype(role)
        if self.is_tiny:
            bundle = loader.build_tiny(self.seed)  # on the CPU, in fp32
            self._tune(role, loader, bundle)
            return _Slot(role, self.model_id(role), bundle, torch.float32)
        spec = self.spec(role)
        path = self.store.require(spec)
        try:
            bundle = loader.load_real(spec, path, torch.device("cpu"), dtype)
        except (ModelUnavailable, BadInput):
            raise
        except Exception as exc:  # noqa: BLE001 - a broken file must not become a traceback
            detail = str(exc).replace("$", "$$")
            raise unavailable(
                f"Could not load '{spec.title}' from {path}: {detail}. The file may be corrupt "
                "or of another model; $verify.",
                spec.id,
            ) from exc
        self._tune(role, loader, bundle)
        return _Slot(role, spec.id, bundle, dtype)

    def measure_for(self, role: str, *, progress: Any = None, cancel: Any = None) -> None:
        """Measure the precision that loading ``role``'s model will ask for, now (with
        progress) rather than silently inside the load; nothing when the load will not ask
        (a named dtype, or CPU tuning switched off)."""
        owner = _workload_of(role)
        if owner is None or self.requested_dtype != "auto":
            return
        setting = family(role).cpu_tuning
        if self.device.type == "cuda" or (
            self.device.type == "cpu" and setting and self.settings[setting]
        ):
            self.precision(owner.name, progress=progress, cancel=cancel)

    def _tune(self, role: str, loader: Any, bundle: Bundle) -> None:
        """The family's speed-ups for computing on the CPU (the inpainting UNet in bf16), when
        its setting allows them and its workload was measured faster in bf16 here."""
        setting = family(role).cpu_tuning
        owner = _workload_of(role)
        if setting and owner and self.device.type == "cpu" and self.settings[setting]:
            loader.tune_for_cpu(bundle, self.precision(owner.name))

    def _slot(self, role: str) -> _Slot:
        # Loading can take half a minute (SD from disk): hold only this role's load lock, so
        # models already loaded stay usable and placeable meanwhile.
        with self._lock:
            slot = self._slots.get(role)
            if slot is not None:
                return slot
            load_lock = self._load_locks.setdefault(role, threading.Lock())
        with load_lock:
            with self._lock:
                slot = self._slots.get(role)
            if slot is None:
                slot = self._load(role)
                with self._lock:
                    self._slots[role] = slot
            return slot

    def get(self, role: str) -> Any:
        """The loaded bundle, without placing or locking it (for inspection and its caches)."""
        return self._slot(role).bundle

    # ----------------------------------------------------------------- placement
    def gpu_budget_bytes(self) -> int | None:
        if self.device.type != "cuda":
            return None
        configured = float(self.settings["gpu_memory_budget_gb"] or 0.0)
        if configured > 0:
            return int(configured * 1e9)
        free = devices.gpu_free_bytes(self.device) or 0
        resident = sum(s.bundle.nbytes() for s in self._slots.values() if s.device.type == "cuda")
        return max(0, free + resident - GPU_MARGIN_BYTES)

    def _on_compute_device(self, slot: _Slot) -> bool:
        # torch reports "cuda:0" for parameters placed with "cuda": compare type and index.
        here, want = slot.device, self.device
        return here.type == want.type and (want.index is None or here.index == want.index)

    def _place(self, slot: _Slot) -> None:
        if self.device.type == "cpu" or self._on_compute_device(slot):
            return
        budget = self.gpu_budget_bytes()
        if budget is not None:
            need = slot.bundle.nbytes()
            resident = [
                s
                for s in self._slots.values()
                if s is not slot and s.device.type == self.device.type
            ]
            total = need + sum(s.bundle.nbytes() for s in resident)
            for other in sorted(resident, key=lambda s: s.users):
                if total <= budget:
                    break
                if other.users == 0:
                    other.bundle.to_device(torch.device("cpu"))
                    total -= other.bundle.nbytes()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        try:
            slot.bundle.to_device(self.device)
        except Exception as exc:  # noqa: BLE001
            if devices.is_out_of_memory(exc):
                slot.bundle.to_device(torch.device("cpu"))
                raise OutOfMemory(
                    f"Not enough GPU memory to place {slot.model_id}. Close other GPU programs, "
                    "lower the memory budget or use --device cpu."
                ) from exc
            raise

    @contextmanager
    def use(self, role: str) -> Iterator[Any]:
        """Hold the model of ``role`` on the compute device for the duration of the block."""
        slot = self._slot(role)
        with slot.lock:
            with self._lock:
                slot.users += 1
                try:
                    self._place(slot)
                except BaseException:
                    slot.users -= 1
                    raise
            try:
                yield slot.bundle
            finally:
                with self._lock:
                    slot.users -= 1

    def offload(self, keep: tuple[str, ...] = ()) -> None:
        """Move idle models not in ``keep`` to the CPU, freeing GPU memory."""
        with self._lock:
            for role, slot in self._slots.items():
                if role not in keep and slot.users == 0 and slot.device.type != "cpu":
                    slot.bundle.to_device(torch.device("cpu"))
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def release(self, role: str) -> None:
        """Forget a loaded model entirely (it reloads on next use)."""
        with self._lock:
            slot = self._slots.get(role)
            if slot is not None and slot.users == 0:
                del self._slots[role]
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()

    def use_local_weights(self, spec: ModelSpec, path: str, settings: Settings) -> Path:
        """Use a local copy of ``spec``'s weights from now on: checked, remembered in the
        settings and in this manager's store, and a copy of it already loaded from other files
        is dropped, so the next use loads the new ones."""
        from ovpaint.models.download import import_local

        chosen = import_local(spec, path, settings)
        self.store.overrides[spec.id] = str(chosen)
        with self._lock:
            stale = [role for role, slot in self._slots.items() if slot.model_id == spec.id]
        for role in stale:
            self.release(role)
        return chosen

    def device_of(self, role: str) -> str | None:
        slot = self._slots.get(role)
        return None if slot is None else str(slot.device)


def manager_from_options(
    models: str | None, device: str | None, dtype: str | None, settings: Settings | None = None
) -> ModelManager:
    """Build a manager from CLI-style options, falling back to settings and OVPAINT_MODELS."""
    import os

    settings = settings or Settings.load()
    profile = models or os.environ.get("OVPAINT_MODELS") or settings["model_profile"]
    return ModelManager(
        profile=profile,
        device=device or settings["device"],
        dtype=dtype or settings["dtype"],
        settings=settings,
    )

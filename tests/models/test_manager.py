"""ModelManager: lazy loading, the offline message, GPU placement under a budget with offload,
release, and serialised access from threads. There is no GPU here, so placement is tested with
fake bundles on a manager that believes its device is CUDA; real tensors are moved by the same
``to_device`` calls (checked on the tiny models, on the CPU)."""

from __future__ import annotations

import threading

import pytest
import torch

from ovpaint.core.errors import BadInput, ModelUnavailable, OutOfMemory
from ovpaint.core.settings import Settings
from ovpaint.models import manager as manager_mod
from ovpaint.models.device import DeviceChoice
from ovpaint.models.manager import ModelManager, _Slot, manager_from_options
from ovpaint.models.store import ModelStore
from tests.weight_files import inpaint_folder

GB = 1_000_000_000


class FakeBundle:
    """Records every move; reports 'cuda:0' after a move to 'cuda', as real tensors do."""

    def __init__(self, name: str, nbytes: int, log: list, fail_on_gpu: bool = False) -> None:
        self.name = name
        self._nbytes = nbytes
        self._device = torch.device("cpu")
        self.log = log
        self.fail_on_gpu = fail_on_gpu

    @property
    def device(self) -> torch.device:
        return self._device

    def to_device(self, device: torch.device) -> None:
        device = torch.device(device)
        if device.type == "cuda" and self.fail_on_gpu:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.log.append((self.name, device.type))
        self._device = torch.device("cuda", 0) if device.type == "cuda" else device

    def nbytes(self) -> int:
        return self._nbytes


@pytest.fixture
def gpu_manager(monkeypatch):
    """A manager whose compute device is (fake) CUDA with a configured budget."""
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)

    def make(budget_gb: float, sizes: dict[str, int], failing: tuple[str, ...] = ()):
        settings = Settings(values={"gpu_memory_budget_gb": budget_gb})
        manager = ModelManager(profile="tiny", device="cpu", settings=settings)
        manager.choice = DeviceChoice(torch.device("cuda"), torch.float16)
        log: list = []
        loads: list = []

        def load(role: str) -> _Slot:
            loads.append(role)
            bundle = FakeBundle(role, sizes[role], log, fail_on_gpu=role in failing)
            return _Slot(role, f"fake-{role}", bundle, torch.float16)

        monkeypatch.setattr(manager, "_load", load)
        return manager, log, loads

    return make


SIZES = {"clip": 600_000_000, "sam2": 300_000_000, "inpaint": 500_000_000}


def test_lazy_loading_and_reuse(gpu_manager):
    manager, log, loads = gpu_manager(10.0, SIZES)
    assert loads == [] and manager.device_of("clip") is None
    with manager.use("clip") as clip:
        assert clip.device.type == "cuda"
    with manager.use("clip"):
        pass
    assert loads == ["clip"] and log == [("clip", "cuda")]  # placed once, not moved again
    assert manager.device_of("clip") == "cuda:0"


def test_idle_models_over_budget_are_offloaded(gpu_manager):
    manager, log, _ = gpu_manager(1.0, SIZES)
    with manager.use("clip"):
        pass
    with manager.use("sam2"):
        pass
    assert log == [("clip", "cuda"), ("sam2", "cuda")]  # 0.9 GB fits the 1 GB budget
    with manager.use("inpaint") as sd:
        assert sd.device.type == "cuda"
    # 0.6 + 0.3 + 0.5 > 1: the first idle model leaves, then 0.8 fits
    assert log[2:] == [("clip", "cpu"), ("inpaint", "cuda")]
    assert manager.device_of("sam2") == "cuda:0" and manager.device_of("clip") == "cpu"
    states = {s.role: s for s in manager.states()}
    assert states["clip"].device == "cpu" and states["inpaint"].device == "cuda:0"
    assert states["inpaint"].state == "loaded" and states["inpaint"].nbytes == SIZES["inpaint"]


def test_models_in_use_are_never_offloaded(gpu_manager):
    manager, log, _ = gpu_manager(1.0, SIZES)
    with manager.use("clip") as clip:
        with manager.use("inpaint"):  # over budget, but CLIP is busy: it stays
            assert clip.device.type == "cuda"
            assert {s.role: s.in_use for s in manager.states()} == {
                "clip": True,
                "sam2": False,
                "inpaint": True,
                "lama": False,
            }
        manager.offload()  # CLIP is still in use: only the idle inpainting model moves
        assert clip.device.type == "cuda"
        assert manager.device_of("inpaint") == "cpu"
        manager.release("clip")  # refused while in use
        assert manager.device_of("clip") == "cuda:0"
    assert ("clip", "cpu") not in log


def test_offload_keep_and_release(gpu_manager):
    manager, log, loads = gpu_manager(10.0, SIZES)
    for role in ("clip", "sam2", "inpaint"):
        with manager.use(role):
            pass
    manager.offload(keep=("sam2",))
    assert [manager.device_of(r) for r in ("clip", "sam2", "inpaint")] == ["cpu", "cuda:0", "cpu"]
    manager.release("sam2")
    assert manager.device_of("sam2") is None
    with manager.use("sam2"):
        pass
    assert loads.count("sam2") == 2  # released models load again on next use


def test_out_of_memory_leaves_model_on_cpu(gpu_manager):
    manager, _log, _ = gpu_manager(10.0, SIZES, failing=("inpaint",))
    with pytest.raises(OutOfMemory, match="--device cpu"):
        with manager.use("inpaint"):
            pass
    assert manager.device_of("inpaint") == "cpu"
    assert not any(s.in_use for s in manager.states())


def test_automatic_budget_is_free_memory_plus_resident_minus_margin(gpu_manager, monkeypatch):
    manager, _log, _ = gpu_manager(0.0, SIZES)
    monkeypatch.setattr(manager_mod.devices, "gpu_free_bytes", lambda device: 3 * GB)
    assert manager.gpu_budget_bytes() == 3 * GB - manager_mod.GPU_MARGIN_BYTES
    with manager.use("clip"):
        pass
    assert manager.gpu_budget_bytes() == 3 * GB + SIZES["clip"] - manager_mod.GPU_MARGIN_BYTES
    assert ModelManager(profile="tiny", device="cpu").gpu_budget_bytes() is None


def test_one_model_is_used_by_one_thread_at_a_time(gpu_manager):
    manager, _log, _ = gpu_manager(10.0, SIZES)
    inside_a, leave_a, order = threading.Event(), threading.Event(), []

    def first():
        with manager.use("clip"):
            order.append("a in")
            inside_a.set()
            leave_a.wait(10)
            order.append("a out")

    def second():
        inside_a.wait(10)
        with manager.use("clip"):
            order.append("b in")

    def other_model():
        inside_a.wait(10)
        with manager.use("sam2"):  # a different model is not blocked by CLIP's user
            order.append("sam2 in")

    threads = [threading.Thread(target=f) for f in (first, second, other_model)]
    for t in threads:
        t.start()
    threads[2].join(10)
    assert "sam2 in" in order and "b in" not in order  # B still waits for A
    leave_a.set()
    for t in threads:
        t.join(10)
    assert order.index("a out") < order.index("b in")


def test_real_profile_without_weights_names_the_fix():
    manager = ModelManager(profile="real", device="cpu", store=None)
    with pytest.raises(ModelUnavailable) as err:
        with manager.use("clip"):
            pass
    text = str(err.value)
    assert "clip-vit-b16" in text and "`ovpaint models download clip-vit-b16`" in text
    assert "--models tiny" in text
    with pytest.raises(ModelUnavailable, match="ovpaint models download sam2.1-tiny"):
        manager.check_available("sam2")  # CPU default: the tiny SAM2
    assert {s.role: s.state for s in manager.states()} == {
        "clip": "missing",
        "sam2": "missing",
        "inpaint": "missing",
        "lama": "missing",
    }


def test_local_path_that_vanished_is_reported(tmp_path):
    gone = tmp_path / "gone.safetensors"
    settings = Settings(values={"local_model_paths": {"clip-vit-b16": str(gone)}})
    manager = ModelManager(
        profile="real",
        device="cpu",
        settings=settings,
        store=ModelStore(tmp_path / "m", settings["local_model_paths"]),
    )
    with pytest.raises(ModelUnavailable, match="no longer exists"):
        manager.check_available("clip")


def test_settings_choose_models_and_folders(tmp_path, monkeypatch):
    monkeypatch.delenv("OVPAINT_MODEL_DIR", raising=False)
    settings = Settings(values={"sam2_model": "sam2.1-large", "model_dir": str(tmp_path / "w")})
    manager = ModelManager(profile="real", device="cpu", settings=settings)
    assert manager.model_id("sam2") == "sam2.1-large"
    assert manager.store.root == tmp_path / "w"
    monkeypatch.setenv("OVPAINT_MODEL_DIR", str(tmp_path / "env"))
    assert ModelStore.from_settings(settings).root == tmp_path / "env"


def test_profiles_and_options(monkeypatch):
    with pytest.raises(BadInput, match="Unknown model profile"):
        ModelManager(profile="huge")
    monkeypatch.setenv("OVPAINT_MODELS", "tiny")
    manager = manager_from_options(None, "cpu", None, settings=Settings())
    assert manager.is_tiny and manager.model_id("clip") == "tiny-clip"
    assert "TINY TEST MODELS" in manager.banner()
    assert manager_from_options("real", "cpu", None, settings=Settings()).profile == "real"


def test_tiny_models_really_move_with_to_device(tiny_manager):
    """The bundles' to_device moves every parameter (here CPU -> meta -> fresh CPU copy)."""
    bundle = tiny_manager.get("clip")
    assert {p.device.type for p in bundle.model.parameters()} == {"cpu"}
    with tiny_manager.use("clip") as used:
        assert used is bundle and tiny_manager.device_of("clip") == "cpu"
    from ovpaint.models import clip_loader

    other = clip_loader.build_tiny(0)
    other.to_device(torch.device("meta"))
    assert {p.device.type for p in other.model.parameters()} == {"meta"}
    assert other.device.type == "meta" and other.nbytes() == bundle.nbytes()


def test_loading_one_model_does_not_block_using_another(monkeypatch):
    """A slow load (SD from disk) holds only its own role's lock."""
    import threading

    from ovpaint.models.manager import ModelManager

    manager = ModelManager(profile="tiny", device="cpu")
    with manager.use("clip"):
        pass
    started, release = threading.Event(), threading.Event()
    real_load = manager._load

    def slow_load(role):
        if role == "sam2":
            started.set()
            release.wait(10)
        return real_load(role)

    monkeypatch.setattr(manager, "_load", slow_load)
    loader = threading.Thread(target=lambda: manager.get("sam2"))
    loader.start()
    assert started.wait(10)
    done = threading.Event()

    def use_clip():
        with manager.use("clip"):
            done.set()

    user = threading.Thread(target=use_clip)
    user.start()
    user.join(5)
    was_free = done.is_set()
    release.set()
    loader.join(30)
    assert was_free, "using a loaded model waited for another model's load"
    assert manager.get("sam2") is manager.get("sam2")


def test_local_weights_replace_a_loaded_copy(tmp_path):
    """Choosing local weights is remembered in the settings and the manager's store, and a
    copy of that model already in memory is dropped so the next use loads the new files."""
    settings = Settings(tmp_path / "settings.json")
    manager = ModelManager(profile="real", device="cpu", settings=settings)
    spec = manager.spec("inpaint")
    manager._slots["inpaint"] = _Slot("inpaint", spec.id, object(), torch.float32)
    manager._slots["sam2"] = _Slot("sam2", "sam2.1-tiny", object(), torch.float32)
    weights = inpaint_folder(tmp_path / "my-sd")
    chosen = manager.use_local_weights(spec, str(weights), settings)
    assert chosen == weights.resolve()
    assert manager.store.installed_path(spec) == weights.resolve()
    assert Settings.load(tmp_path / "settings.json")["local_model_paths"][spec.id] == str(chosen)
    assert "inpaint" not in manager._slots and "sam2" in manager._slots

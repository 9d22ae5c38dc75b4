"""Each extension point takes one registration, and every front-end lists what was registered:
a toy method appears in the CLI's ``--help``, runs from the CLI with its own typed settings,
and shows in the app's method lists (prompt box, batch and benchmark tabs); a toy model family
appears in ``ovpaint models``, loads through the manager (tiny and from local weights), has its
setting, and shows in the app's model dialog; a toy dataset appears in ``ovpaint benchmark``
and the benchmark dialog, and is scored end to end (with the toy method) from both."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from ovpaint.cli import main
from ovpaint.core import settings as core_settings
from ovpaint.core.errors import ModelUnavailable
from ovpaint.core.masks import load_label_png
from ovpaint.eval import datasets
from ovpaint.models import registry
from ovpaint.models.protocols import Derived
from ovpaint.pipelines.result import BACKGROUND, SegmentationResult
from ovpaint.pipelines.segmentation import methods, settings


@dataclass
class BrightSettings:
    level: int = 128


def run_bright(session, queries, models, segment_settings, *, progress=None, cancel=None):
    """Pixels at least ``bright.level`` bright are the first class (a query named background,
    as benchmarks send, is the background)."""
    level = segment_settings["bright"].level
    labels = (session.image.mean(-1) >= level).astype(np.int32)
    names = [q.name for q in queries if q.name != BACKGROUND]
    return SegmentationResult(labels, [BACKGROUND, *names], method="bright")


@pytest.fixture
def restored():
    """Registry tables given to it get back their contents (in place) after the test."""
    saved: list[tuple[dict, dict]] = []
    yield lambda *tables: saved.extend((t, dict(t)) for t in tables)
    for table, content in saved:
        table.clear()
        table.update(content)


@pytest.fixture
def toy_method(restored):
    """The toy method, registered with one call and unregistered after the test."""
    restored(methods.METHODS, settings.SECTIONS)
    settings.declare_ranges(BrightSettings, level=(0, 255))
    return methods.register_method(
        methods.Method(
            "bright",
            "Brightness",
            "pixels above a brightness level (toy)",
            methods.DENSE,
            (),
            run_bright,
            {"bright": BrightSettings},
            cost=0.01,
        )
    )


def test_toy_method_is_in_the_cli_help_and_runs_with_its_settings(
    toy_method, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps help at hyphens otherwise
    for command in ("segment", "batch", "benchmark"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "bright: pixels above a brightness level (toy)" in text
        assert "bright" in text.split("sections:")[1]
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, 10:] = 120
    image[:, 20:] = 250
    photo, out = tmp_path / "in.png", tmp_path / "labels.png"
    Image.fromarray(image).save(photo)
    argv = ["--models", "tiny", "segment", str(photo), "--prompt", "lamp", "--method", "bright"]
    assert main([*argv, "--out", str(out), "--set", "bright.level=100"]) == 0
    assert (load_label_png(out) == (image.mean(-1) >= 100)).all()
    assert main([*argv, "--out", str(out), "--set", "bright.level=200"]) == 0
    assert (load_label_png(out) == (image.mean(-1) >= 200)).all()
    assert main([*argv, "--out", str(out), "--set", "bright.levle=1"]) == 2
    assert "bright.levle" in capsys.readouterr().err
    assert main([*argv, "--out", str(out), "--set", "bright.level=300"]) == 2
    assert "bright.level must be from 0 to 255" in capsys.readouterr().err


def test_toy_method_is_in_the_app_method_lists(toy_method, qtbot, tiny_manager):
    pytest.importorskip("PySide6")
    from PySide6.QtCore import Qt

    from ovpaint.app.main_window import MainWindow
    from ovpaint.core.settings import Settings

    window = MainWindow(tiny_manager, settings=Settings())
    qtbot.addWidget(window)
    window.open_batch_dialog()
    panel, dialog = window.prompt, window._batch_dialog
    for combo in (panel.method, dialog.batch_method):
        index = combo.findData("bright")
        assert index >= 0
        tip = combo.itemData(index, Qt.ItemDataRole.ToolTipRole)
        assert tip.startswith("Brightness: pixels above a brightness level")
    items = [dialog.bench_methods.item(i) for i in range(dialog.bench_methods.count())]
    (bright,) = [i for i in items if i.data(Qt.ItemDataRole.UserRole) == "bright"]
    assert bright.toolTip().startswith("Brightness: pixels above a brightness level")
    assert panel.method.currentData() == methods.DEFAULT_METHOD
    assert dialog.benchmark_methods() == [methods.DEFAULT_BENCHMARK_METHOD]


def test_registration_refuses_a_clash_and_a_bad_record(toy_method):
    with pytest.raises(ValueError, match="already"):

        @dataclass
        class Other:
            level: int = 1

        methods.register_method(
            methods.Method("other", "O", "o", methods.DENSE, (), run_bright, {"bright": Other})
        )
    with pytest.raises(ValueError, match="kind"):
        methods.register_method(methods.Method("x", "X", "x", "magic", (), run_bright))
    with pytest.raises(TypeError, match="defaults"):

        @dataclass
        class NoDefault:
            level: int

        methods.register_method(
            methods.Method("y", "Y", "y", methods.DENSE, (), run_bright, {"y": NoDefault})
        )


# --------------------------------------------------------------------------- a toy model family
@dataclass
class ToyBundle:
    model: torch.nn.Module
    model_id: str
    derived: Derived = field(default_factory=Derived, init=False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to_device(self, device: torch.device) -> None:
        self.model.to(device)

    def nbytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())


def _toy_build_tiny(seed: int = 0) -> ToyBundle:
    torch.manual_seed(seed)
    return ToyBundle(torch.nn.Linear(3, 2), "tiny-toy")


def _toy_load_real(spec, weights, device, dtype) -> ToyBundle:
    from safetensors.torch import load_file

    model = torch.nn.Linear(3, 2)
    model.load_state_dict(load_file(str(weights)), strict=True)
    return ToyBundle(model.to(device, dtype), spec.id)


TOY_LOADER = SimpleNamespace(build_tiny=_toy_build_tiny, load_real=_toy_load_real)


@pytest.fixture
def toy_family(restored):
    """The toy family, registered with one call and unregistered after the test."""
    restored(registry.FAMILIES, core_settings.SETTINGS_BY_NAME)

    def spec(model_id: str, title: str) -> registry.ModelSpec:
        file = registry.ModelFile("toy.safetensors")
        return registry.ModelSpec(model_id, "toy", title, "toys/" + model_id, 1000, files=(file,))

    return registry.register_family(
        registry.ModelFamily(
            "toy",
            "Toy linear model",
            (spec("toy-small", "Toy small"), spec("toy-big", "Toy big")),
            default_cpu="toy-small",
            default_gpu="toy-big",
            loader=lambda: TOY_LOADER,
        )
    )


def test_toy_family_is_listed_by_the_cli(toy_family, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("OVPAINT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps help at hyphens otherwise
    with pytest.raises(SystemExit):
        main(["models", "download", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "toy (Toy linear model): toy-small, toy-big" in text
    assert main(["models", "list", "--json", "--device", "cpu"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    assert rows["toy-small"]["role"] == "toy" and rows["toy-small"]["default"]
    assert not rows["toy-big"]["default"] and rows["toy-big"]["state"] == "missing"


def test_toy_family_loads_through_the_manager(toy_family, tmp_path):
    from safetensors.torch import save_file

    from ovpaint.core.settings import Settings
    from ovpaint.models.manager import ModelManager

    tiny = ModelManager(profile="tiny", device="cpu")
    with tiny.use("toy") as bundle:
        assert isinstance(bundle, ToyBundle) and bundle.model_id == "tiny-toy"
    assert "toy" in [s.role for s in tiny.states()]

    chosen = Settings(values={"toy_model": "toy-big", "model_dir": str(tmp_path / "models")})
    real = ModelManager(profile="real", device="cpu", settings=chosen)
    assert real.model_id("toy") == "toy-big"
    with pytest.raises(ModelUnavailable, match="ovpaint models download toy-big"):
        real.check_available("toy")
    weights = {"weight": torch.full((2, 3), 0.5), "bias": torch.zeros(2)}
    save_file(weights, str(tmp_path / "toy.safetensors"))
    real.use_local_weights(real.spec("toy"), str(tmp_path / "toy.safetensors"), chosen)
    with real.use("toy") as bundle:
        assert bundle.model_id == "toy-big"
        assert torch.equal(bundle.model.weight, weights["weight"])


def test_toy_family_is_in_the_app_model_dialog(toy_family, qtbot, tiny_manager):
    pytest.importorskip("PySide6")
    from PySide6.QtCore import Qt

    from ovpaint.app.model_dialog import ModelDialog
    from ovpaint.app.workers import WorkerPool
    from ovpaint.core.settings import Settings

    UserRole = Qt.ItemDataRole.UserRole  # noqa: N806 - Qt's name
    dialog = ModelDialog(tiny_manager, Settings(), WorkerPool())
    qtbot.addWidget(dialog)
    table = dialog.table
    roles = [table.item(r, 0).data(UserRole) for r in range(table.rowCount())]
    assert roles[-1] == "toy" and {"clip", "sam2", "inpaint"} <= set(roles)
    assert table.item(table.rowCount() - 1, 0).text() == toy_family.title  # what it is for


def test_a_family_whose_defaults_are_not_its_models_is_refused(toy_family):
    with pytest.raises(ValueError, match="defaults"):
        registry.register_family(
            registry.ModelFamily(
                "toy2", "T", toy_family.models, "toy-small", "nope", lambda: TOY_LOADER
            )
        )


# --------------------------------------------------------------------------- a toy dataset
class ToyShapes(datasets.Dataset):
    """``images/*.png`` and ``labels/*.png`` (0 background, 1 lamp)."""

    key = "toyshapes"
    title = "Toy shapes"
    num_classes = 2
    background_id = 0

    def _read_classes(self):
        return [
            datasets.DatasetClass("background", ("background",)),
            datasets.DatasetClass("lamp", ("lamp",)),
        ]

    def _list_samples(self):
        images, labels = self.root / "images", self.root / "labels"

        def label_for(stem):
            path = labels / f"{stem}.png"
            return path if path.exists() else None

        return datasets._pair_by_stem(images, labels, label_for)


@pytest.fixture
def toy_dataset(restored, tmp_path):
    """The toy dataset (registered with one call) and a split of it on disk whose lamps are
    the pixels at least 100 bright."""
    from ovpaint.core.masks import save_label_png

    restored(datasets.DATASETS)
    datasets.register_dataset(
        datasets.DatasetSpec(
            ToyShapes,
            "all images",
            aliases=("toys",),
            presets={"bright": {"bright": {"level": 100}}},
        )
    )
    rng = np.random.default_rng(0)
    for i in range(3):
        image = rng.integers(0, 90, (24, 32, 3)).astype(np.uint8)
        image[4 + i : 14 + i, 5:20] = rng.integers(150, 256, (10, 15, 3))
        (tmp_path / "toys" / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "toys" / "images" / f"s{i}.png")
        labels = (image.mean(-1) >= 100).astype(np.uint8)
        save_label_png(tmp_path / "toys" / "labels" / f"s{i}.png", labels)
    return tmp_path / "toys"


def test_toy_dataset_is_in_the_cli_and_scored_with_its_preset(
    toy_method, toy_dataset, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        main(["benchmark", "--help"])
    assert "toyshapes (Toy shapes (all images); also toys)" in capsys.readouterr().out
    argv = ["--models", "tiny", "benchmark", "--dataset", "toys", "--root", str(toy_dataset)]
    out = tmp_path / "report.json"
    assert main([*argv, "--method", "bright", "--out", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert report["dataset"] == "toyshapes" and report["metrics"]["mIoU"] == 1.0
    assert report["settings"] == {"bright": {"level": 100}}  # the dataset's preset for it
    other = tmp_path / "other.json"
    argv += ["--method", "bright", "--out", str(other), "--quiet", "--set", "bright.level=250"]
    assert main(argv) == 0
    assert json.loads(other.read_text())["metrics"]["mIoU"] < 0.9


def test_toy_dataset_is_in_the_benchmark_dialog_and_runs_there(
    toy_method, toy_dataset, qtbot, tiny_manager, tmp_path
):
    pytest.importorskip("PySide6")
    from ovpaint.app.batch_dialog import BatchDialog

    dialog = BatchDialog(tiny_manager)
    qtbot.addWidget(dialog)
    index = dialog.dataset_combo.findData("toyshapes")
    assert dialog.dataset_combo.itemText(index) == "Toy shapes (all images)"
    dialog.tabs.setCurrentIndex(1)
    dialog.dataset_combo.setCurrentIndex(index)
    dialog.set_benchmark_methods(["bright"])
    dialog.root_edit.setText(str(toy_dataset))
    dialog.report_edit.setText(str(tmp_path / "dialog.json"))
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.running, timeout=30_000)
    assert "Toy shapes · bright · 3 images: mIoU 100.00" in dialog.status.text()

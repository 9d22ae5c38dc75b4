"""`ovpaint models ...`, global CLI behaviour (help, bad usage, exit codes) and `ovpaint perf`,
run in-process against a local fake hub (HF_ENDPOINT) and a private OVPAINT_HOME."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ovpaint.cli import main
from ovpaint.models import download as dl
from tests.weight_files import inpaint_folder

CLI = "import sys; from ovpaint.cli import main; sys.exit(main())"
SAM_REPO, SAM_FILE = "facebook/sam2.1-hiera-tiny", "sam2.1_hiera_tiny.pt"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OVPAINT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OVPAINT_MODEL_DIR", raising=False)
    monkeypatch.setattr(dl, "CHUNK_BYTES", 64 * 1024)
    return tmp_path / "home"


@pytest.fixture
def sam_hub(make_hub, monkeypatch):
    from huggingface_hub import constants

    data = np.random.default_rng(0).integers(0, 256, 1_500_000, dtype=np.uint8).tobytes()
    hub = make_hub(SAM_REPO, {SAM_FILE: data}, lfs={SAM_FILE})
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", "")
    return hub, data


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_and_bad_usage_one_line(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["--help"])
    assert ex.value.code == 0
    out = capsys.readouterr().out
    for word in ("segment", "inpaint", "batch", "benchmark", "perf", "models", "--models"):
        assert word in out
    for argv in (
        ["--device", "tpu"],
        ["frobnicate"],
        ["models", "download"],
        ["models", "list", "--bogus"],
    ):
        with pytest.raises(SystemExit) as ex:
            main(argv)
        err = capsys.readouterr().err
        assert ex.value.code == 2, argv
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (argv, err)
    code, _, err = _run(capsys, "models")
    assert code == 2 and len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, "models", "download", "no-such-model")
    assert code == 2 and "Unknown model 'no-such-model'" in err


def test_list_marks_defaults_and_states(capsys, tmp_path):
    code, out, _ = _run(capsys, "models", "list", "--json", "--device", "cpu")
    assert code == 0
    data = json.loads(out)
    rows = {r["id"]: r for r in data["models"]}
    assert data["device"] == "cpu" and data["model_dir"].startswith(str(tmp_path))
    assert {k for k, r in rows.items() if r["default"]} == {
        "clip-vit-b16",
        "sam2.1-tiny",
        "sd2-inpaint",
        "big-lama",
    }
    assert all(r["state"] == "missing" and r["path"] is None for r in rows.values())
    assert rows["sam2.1-large"]["size_bytes"] > rows["sam2.1-tiny"]["size_bytes"]
    code, out, _ = _run(capsys, "models", "list")
    assert code == 0 and "* sam2.1-tiny" in out and "  sam2.1-large" in out


def test_import_then_list_and_verify(capsys, tmp_path):
    weights = inpaint_folder(tmp_path / "my-sd")
    code, out, _ = _run(capsys, "models", "import", "sd2-inpaint", str(weights))
    assert code == 0 and str(weights) in out
    rows = {r["id"]: r for r in json.loads(_run(capsys, "models", "list", "--json")[1])["models"]}
    assert rows["sd2-inpaint"]["state"] == "local"
    assert rows["sd2-inpaint"]["path"] == str(weights)
    code, out, _ = _run(capsys, "models", "verify")
    assert code == 0 and "sd2-inpaint: local" in out
    shutil.rmtree(weights)
    code, out, err = _run(capsys, "models", "verify", "sd2-inpaint")
    assert code == 3 and "sd2-inpaint" in err
    pickle = tmp_path / "model.bin"
    pickle.write_bytes(b"x")
    code, _, err = _run(capsys, "models", "import", "clip-vit-b16", str(pickle))
    assert code == 2 and "pickle" in err
    renamed = tmp_path / "model.safetensors"  # a pickle under a weights name
    renamed.write_bytes(b"\x80\x04\x95" + b"\0" * 64)
    code, _, err = _run(capsys, "models", "import", "clip-vit-b16", str(renamed))
    assert code == 2 and "not a safetensors file" in err


def test_download_progress_cancel_resume_verify(capsys, sam_hub, monkeypatch, home):
    hub, data = sam_hub
    real_add = dl._Meter.add

    def interrupt_after_half(self, n, **kwargs):
        real_add(self, n, **kwargs)
        if self.transferred >= 700_000:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of the transfer

    monkeypatch.setattr(dl._Meter, "add", interrupt_after_half)
    code, out, err = _run(capsys, "models", "download", "sam2.1-tiny")
    assert code == 130 and "Run the same command again to resume" in err
    folder = home / "cache" / "models" / "sam2.1-tiny"
    part = folder / (SAM_FILE + ".part")
    kept = part.stat().st_size
    assert 0 < kept < len(data) and not (folder / "ovpaint-manifest.json").exists()
    rows = {r["id"]: r for r in json.loads(_run(capsys, "models", "list", "--json")[1])["models"]}
    assert rows["sam2.1-tiny"]["state"] == "missing" and rows["sam2.1-tiny"]["partial"]

    monkeypatch.setattr(dl._Meter, "add", real_add)
    code, out, err = _run(capsys, "models", "download", "sam2.1-tiny")
    assert code == 0 and "installed at" in out
    assert hub.file_requests(SAM_FILE)[-1]["range"] == f"bytes={kept}-"
    assert "B/s" in err or "MB" in err or "kB" in err  # the tqdm byte bar was drawn
    got = (folder / SAM_FILE).read_bytes()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    rows = {r["id"]: r for r in json.loads(_run(capsys, "models", "list", "--json")[1])["models"]}
    assert rows["sam2.1-tiny"]["state"] == "installed"
    assert _run(capsys, "models", "verify", "sam2.1-tiny")[0] == 0
    code, out, _ = _run(capsys, "models", "download", "sam2.1-tiny")
    assert code == 0 and "already installed" in out

    (folder / SAM_FILE).write_bytes(b"\0" * len(data))
    code, out, err = _run(capsys, "models", "verify", "sam2.1-tiny")
    assert code == 3 and "corrupt" in err and "--force" in err


def test_missing_model_maps_to_exit_3_one_line(tmp_path):
    """The manager's ModelUnavailable reaches the user as one line and exit 3."""
    code = (
        "import sys\n"
        "from ovpaint.cli import main\n"
        "from ovpaint.models.manager import ModelManager\n"
        "import ovpaint.cli.models as m\n"
        "def run(args):\n"
        "    with ModelManager(profile='real', device='cpu').use('clip'):\n"
        "        pass\n"
        "m.run = run\n"
        "sys.exit(main(['models', 'list']))\n"
    )
    import os

    env = dict(os.environ, OVPAINT_HOME=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 3, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "`ovpaint models download clip-vit-b16`" in proc.stderr


def test_perf_quick_foundation_json(capsys, tmp_path):
    out_json = tmp_path / "perf.json"
    code, out, _ = _run(capsys, "perf", "--quick", "--only", "foundation", "--json", str(out_json))
    assert code == 0
    data = json.loads(out_json.read_text())
    assert data["machine"]["torch"] and data["machine"]["device"] == "cpu"
    names = [s["name"] for s in data["stages"]]
    assert any("JPEG" in n for n in names) and "build tiny CLIP" in names
    assert all(s["error"] is None and s["median_s"] > 0 for s in data["stages"])
    assert "build tiny SAM2" in out


def test_perf_machine_stages_bound_the_speedups(capsys, tmp_path):
    out_json = tmp_path / "perf.json"
    code, out, _ = _run(capsys, "perf", "--quick", "--only", "machine", "--json", str(out_json))
    assert code == 0
    stages = json.loads(out_json.read_text())["stages"]
    assert len(stages) == 4 and all(s["error"] is None for s in stages)
    compared = [s for s in stages if s["baseline"]]
    assert len(compared) == 2 and all(s["speedup"] > 0 for s in compared)
    assert "int8" in out
    # a fresh calibration: each workload's measured choice and ratios, stored for the product
    [calibration] = [s for s in stages if "calibration" in s["name"]]
    for workload in ("dense", "scoring", "decoder", "unet"):
        assert f"{workload}: " in calibration["note"]
    code, out, _ = _run(capsys, "models", "list")
    assert code == 0 and "not measured" not in out and "dense" in out

"""Downloads against a local fake hub: progress, cancel, resume, corruption, offline mode."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from ovpaint.core.errors import BadInput, Cancelled, ModelUnavailable
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.core.settings import Settings
from ovpaint.models import download as dl
from ovpaint.models.registry import ModelFile, ModelSpec, get_spec
from ovpaint.models.store import ModelStore
from tests.weight_files import inpaint_folder, tiny_clip_file, tiny_clip_spec

MB = 1 << 20
CLI = "import sys; from ovpaint.cli import main; sys.exit(main())"


def _blob(n: int, seed: int = 0) -> bytes:
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


SINGLE = ModelSpec(
    id="test-clip",
    role="clip",
    title="Test CLIP",
    repo="org/test-clip",
    approx_bytes=3 * MB,
    files=(ModelFile("open_clip_model.safetensors"),),
)
FOLDER = ModelSpec(
    id="test-inpaint",
    role="inpaint",
    title="Test inpaint",
    repo="org/inpaint",
    approx_bytes=2 * MB,
    allow_patterns=("model_index.json", "unet/config.json", "unet/*.safetensors", "unet/*.bin"),
)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Small chunks so a few-MB file gives many progress events and cancel points."""
    monkeypatch.setattr(dl, "CHUNK_BYTES", 64 * 1024)
    monkeypatch.setattr(dl, "PROGRESS_INTERVAL_S", 0.0)


@pytest.fixture
def online(monkeypatch):
    """Let huggingface_hub talk to the fake hub (the suite runs with HF_HUB_OFFLINE=1)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def _store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "models")


def _single_hub(make_hub, data: bytes, **kwargs):
    return make_hub(
        SINGLE.repo,
        {"open_clip_model.safetensors": data, "README.md": b"hi"},
        lfs={"open_clip_model.safetensors"},
        **kwargs,
    )


def _source(hub, token: str = "") -> dl.HubSource:
    return dl.HubSource(endpoint=hub.url, token=token)


def test_download_single_file_progress_and_manifest(tmp_path, make_hub, online):
    data = _blob(3 * MB + 123)
    hub = _single_hub(make_hub, data)
    store = _store(tmp_path)
    events = []
    progress = Progress()
    progress.subscribe(events.append)

    result = dl.download(SINGLE, store, progress=progress, source=_source(hub, "secret"))

    target = store.folder(SINGLE) / "open_clip_model.safetensors"
    assert result.path == target
    assert target.read_bytes() == data
    assert not target.with_name(target.name + ".part").exists()
    # progress: one stage with the right total, bytes never going back, ending at the total
    done = [e.done for e in events]
    assert all(e.total == len(data) for e in events)
    assert done == sorted(done) and done[-1] == len(data) and len(done) > 5
    assert any("/s" in e.message for e in events[1:])  # speed is reported
    # manifest written with the real hash; the store sees the model as installed
    manifest = json.loads(store.manifest_path(SINGLE).read_text())
    assert manifest["revision"] == "0123456789abcdef0123456789abcdef01234567"
    assert manifest["files"] == [
        {
            "path": "open_clip_model.safetensors",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    ]
    assert store.downloaded_path(SINGLE) == target
    # URLs point at the resolved commit; only the listed file was fetched; token was sent
    file_reqs = hub.file_requests("open_clip_model.safetensors")
    assert len(file_reqs) == 1 and "/resolve/0123456789abcdef" in file_reqs[0]["path"]
    assert file_reqs[0]["auth"] == "Bearer secret"
    assert not hub.file_requests("README.md")
    # a second call finds it installed and transfers nothing
    again = dl.download(SINGLE, store, source=_source(hub))
    assert again.already_installed and len(hub.file_requests("open_clip_model.safetensors")) == 1
    assert dl.verify(SINGLE, store).state == "ok"


def test_cancel_keeps_part_and_writes_no_manifest_then_resume(tmp_path, make_hub, online):
    data = _blob(3 * MB, seed=1)
    hub = _single_hub(make_hub, data)
    store = _store(tmp_path)
    cancel = CancelToken()
    progress = Progress()
    progress.subscribe(lambda e: cancel.cancel() if e.done >= MB else None)

    with pytest.raises(Cancelled):
        dl.download(SINGLE, store, progress=progress, cancel=cancel, source=_source(hub))

    target = store.folder(SINGLE) / "open_clip_model.safetensors"
    part = target.with_name(target.name + ".part")
    assert not store.manifest_path(SINGLE).exists() and not target.exists()
    kept = part.stat().st_size
    assert MB <= kept < len(data)
    assert part.read_bytes() == data[:kept]
    assert store.downloaded_path(SINGLE) is None

    events = []
    progress = Progress()
    progress.subscribe(events.append)
    result = dl.download(SINGLE, store, progress=progress, source=_source(hub))
    assert hub.file_requests("open_clip_model.safetensors")[-1]["range"] == f"bytes={kept}-"
    assert target.read_bytes() == data and not part.exists()
    assert result.bytes_downloaded == len(data) - kept  # only the rest went over the wire
    assert [e.done for e in events] == sorted(e.done for e in events)
    assert events[-1].done == len(data)
    assert store.read_manifest(SINGLE)["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()


def test_broken_connection_is_resumed_by_the_next_run(tmp_path, make_hub, online):
    data = _blob(2 * MB + 77, seed=2)
    hub = _single_hub(make_hub, data, drop_after={"open_clip_model.safetensors": MB + 5})
    store = _store(tmp_path)

    with pytest.raises(ModelUnavailable, match="Run the same command again to resume"):
        dl.download(SINGLE, store, source=_source(hub), retries=0)
    part = store.folder(SINGLE) / "open_clip_model.safetensors.part"
    kept = part.stat().st_size  # whole chunks received before the break
    assert 0 < kept <= MB + 5 and part.read_bytes() == data[:kept]
    assert not store.manifest_path(SINGLE).exists()

    dl.download(SINGLE, store, source=_source(hub), retries=0)
    assert hub.file_requests("open_clip_model.safetensors")[-1]["range"] == f"bytes={kept}-"
    got = (store.folder(SINGLE) / "open_clip_model.safetensors").read_bytes()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


def test_broken_connection_retried_within_one_run(tmp_path, make_hub, online):
    data = _blob(2 * MB, seed=3)
    hub = _single_hub(make_hub, data, drop_after={"open_clip_model.safetensors": 700_000})
    store = _store(tmp_path)
    events = []
    progress = Progress()
    progress.subscribe(events.append)
    dl.download(SINGLE, store, source=_source(hub), retries=2, progress=progress)
    ranges = [r["range"] for r in hub.file_requests("open_clip_model.safetensors")]
    assert len(ranges) == 2 and ranges[0] is None
    assert 0 < int(ranges[1].split("=")[1].rstrip("-")) <= 700_000
    assert (store.folder(SINGLE) / "open_clip_model.safetensors").read_bytes() == data
    assert events[-1].done == len(data) == events[-1].total
    assert [e.done for e in events] == sorted(e.done for e in events)


def test_server_ignoring_range_restarts_cleanly(tmp_path, make_hub, online):
    data = _blob(MB, seed=4)
    hub = _single_hub(make_hub, data, ignore_range=True)
    store = _store(tmp_path)
    part = store.folder(SINGLE) / "open_clip_model.safetensors.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:1000])
    dl.download(SINGLE, store, source=_source(hub))
    assert hub.file_requests("open_clip_model.safetensors")[0]["range"] == "bytes=1000-"
    assert (store.folder(SINGLE) / "open_clip_model.safetensors").read_bytes() == data


def test_stale_part_longer_than_file_or_not_a_prefix(tmp_path, make_hub, online):
    data = _blob(MB, seed=5)
    hub = _single_hub(make_hub, data)
    store = _store(tmp_path)
    part = store.folder(SINGLE) / "open_clip_model.safetensors.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * (2 * MB))  # longer than the file: discarded
    dl.download(SINGLE, store, source=_source(hub))
    assert (store.folder(SINGLE) / "open_clip_model.safetensors").read_bytes() == data

    # a part of garbage resumes, then fails the hash: deleted, error, no manifest
    other = _store(tmp_path / "b")
    part = other.folder(SINGLE) / "open_clip_model.safetensors.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 1000)
    with pytest.raises(ModelUnavailable, match="corrupt"):
        dl.download(SINGLE, other, source=_source(hub))
    assert not part.exists() and not other.manifest_path(SINGLE).exists()
    dl.download(SINGLE, other, source=_source(hub))  # and the next run starts clean
    assert dl.verify(SINGLE, other).state == "ok"


def test_corrupt_bytes_are_detected_and_removed(tmp_path, make_hub, online):
    data = _blob(MB, seed=6)
    bad = bytearray(data)
    bad[12345] ^= 0xFF
    hub = _single_hub(make_hub, data, served_bytes={"open_clip_model.safetensors": bytes(bad)})
    store = _store(tmp_path)
    with pytest.raises(ModelUnavailable) as err:
        dl.download(SINGLE, store, source=_source(hub))
    assert "open_clip_model.safetensors is corrupt" in str(err.value)
    folder = store.folder(SINGLE)
    assert not (folder / "open_clip_model.safetensors").exists()
    assert not (folder / "open_clip_model.safetensors.part").exists()
    assert not store.manifest_path(SINGLE).exists()


def test_registry_pin_wins_over_hub_metadata(tmp_path, make_hub, online):
    data = _blob(1000, seed=7)
    pinned = ModelSpec(
        id="pinned",
        role="clip",
        title="Pinned",
        repo=SINGLE.repo,
        approx_bytes=1000,
        files=(ModelFile("open_clip_model.safetensors", 1000, "ab" * 32),),
    )
    hub = _single_hub(make_hub, data)
    with pytest.raises(ModelUnavailable, match="corrupt"):
        dl.download(pinned, _store(tmp_path), source=_source(hub))


def test_folder_model_uses_patterns_and_skips_pickles(tmp_path, make_hub, online):
    files = {
        "model_index.json": b'{"_class_name": "StableDiffusionInpaintPipeline"}',
        "unet/config.json": b"{}",
        "unet/diffusion_pytorch_model.safetensors": _blob(300_000, seed=8),
        "unet/diffusion_pytorch_model.bin": _blob(1000, seed=9),
        "vae/diffusion_pytorch_model.safetensors": _blob(1000, seed=10),
        "README.md": b"readme",
    }
    hub = make_hub(
        FOLDER.repo, files, lfs={k for k in files if k.endswith((".safetensors", ".bin"))}
    )
    store = _store(tmp_path)
    result = dl.download(FOLDER, store, source=_source(hub))
    assert result.path == store.folder(FOLDER)
    got = sorted(e["path"] for e in store.read_manifest(FOLDER)["files"])
    assert got == [
        "model_index.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
    ]
    for path in got:
        assert (store.folder(FOLDER) / path).read_bytes() == files[path]
    assert not hub.file_requests("unet/diffusion_pytorch_model.bin")


def test_folder_without_safetensors_is_refused():
    listing = {"model_index.json": (10, None), "unet/diffusion_pytorch_model.bin": (5, "a")}
    with pytest.raises(ModelUnavailable, match="safetensors"):
        dl.select_files(FOLDER, listing)


def test_missing_file_in_repo_is_clear(tmp_path, make_hub, online):
    hub = make_hub(SINGLE.repo, {"other.safetensors": b"x"})
    with pytest.raises(ModelUnavailable, match="has no file open_clip_model.safetensors"):
        dl.download(SINGLE, _store(tmp_path), source=_source(hub))


def test_unknown_repo_and_unreachable_hub_are_one_message(tmp_path, make_hub, online):
    hub = make_hub("org/other", {"a": b"x"})
    with pytest.raises(ModelUnavailable) as err:
        dl.download(SINGLE, _store(tmp_path), source=_source(hub))
    assert "test-clip" in str(err.value) or "org/test-clip" in str(err.value)
    with pytest.raises(ModelUnavailable, match="ovpaint models import test-clip"):
        dl.download(
            SINGLE, _store(tmp_path), source=dl.HubSource(endpoint="http://127.0.0.1:9", token="")
        )


def test_offline_mode_is_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = get_spec("sam2.1-tiny")
    with pytest.raises(ModelUnavailable) as err:
        dl.download(spec, _store(tmp_path))
    text = str(err.value)
    assert "sam2.1-tiny" in text and "HF_HUB_OFFLINE" in text
    assert "ovpaint models import sam2.1-tiny" in text


def test_offline_cli_exit_3_one_line(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", OVPAINT_HOME=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-c", CLI, "models", "download", "clip-vit-b16"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "clip-vit-b16" in lines[0] and "HF_HUB_OFFLINE" in lines[0]


def test_disk_space_is_checked_before_downloading(tmp_path, make_hub, online, monkeypatch):
    from collections import namedtuple

    hub = _single_hub(make_hub, _blob(MB))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda p: usage(10, 10, 100))
    from ovpaint.core.errors import DiskFull

    with pytest.raises(DiskFull, match="Not enough disk space"):
        dl.download(SINGLE, _store(tmp_path), source=_source(hub))
    assert not hub.file_requests("open_clip_model.safetensors")


# ----------------------------------------------------------------------------- verify


def _installed(tmp_path, make_hub) -> tuple[ModelStore, bytes]:
    data = _blob(200_000, seed=11)
    hub = _single_hub(make_hub, data)
    store = _store(tmp_path)
    dl.download(SINGLE, store, source=_source(hub))
    return store, data


def test_verify_reports_corrupt_and_missing(tmp_path, make_hub, online):
    store, data = _installed(tmp_path, make_hub)
    target = store.folder(SINGLE) / "open_clip_model.safetensors"
    assert dl.verify(SINGLE, store).ok
    target.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, one bit flipped
    report = dl.verify(SINGLE, store)
    assert report.state == "corrupt" and report.corrupt == ["open_clip_model.safetensors"]
    assert "--force" in report.message
    target.unlink()
    report = dl.verify(SINGLE, store)
    assert report.missing == ["open_clip_model.safetensors"] and not report.ok
    assert store.downloaded_path(SINGLE) is None
    assert dl.verify(get_spec("sam2.1-tiny"), store).state == "missing"


def test_force_redownloads_a_corrupt_file(tmp_path, make_hub, online):
    data = _blob(200_000, seed=12)
    hub = _single_hub(make_hub, data)
    store = _store(tmp_path)
    dl.download(SINGLE, store, source=_source(hub))
    target = store.folder(SINGLE) / "open_clip_model.safetensors"
    target.write_bytes(b"\0" * len(data))
    dl.download(SINGLE, store, source=_source(hub), force=True)
    assert target.read_bytes() == data and dl.verify(SINGLE, store).ok


# ----------------------------------------------------------------------------- import


def test_import_local_single_file_and_folder(tmp_path):
    settings = Settings(tmp_path / "settings.json")
    weights = tiny_clip_file(tmp_path / "mine.safetensors")
    spec = tiny_clip_spec()
    assert dl.import_local(spec, weights, settings) == weights.resolve()
    saved = json.loads((tmp_path / "settings.json").read_text())
    assert saved["local_model_paths"] == {"clip-vit-b16": str(weights.resolve())}
    store = ModelStore(tmp_path / "models", overrides=settings["local_model_paths"])
    assert store.require(spec) == weights.resolve()
    assert dl.verify(spec, store).state == "local"

    sam = tmp_path / "sam"
    sam.mkdir()
    (sam / "sam2.1_hiera_tiny.pt").write_bytes(b"x")
    assert dl.check_local(get_spec("sam2.1-tiny"), sam) == sam / "sam2.1_hiera_tiny.pt"
    with pytest.raises(BadInput, match="zip-format"):  # found in the folder, then checked
        dl.import_local(get_spec("sam2.1-tiny"), sam, settings)

    sd = inpaint_folder(tmp_path / "sd")
    assert dl.import_local(get_spec("sd2-inpaint"), sd, settings) == sd.resolve()
    assert set(Settings.load(tmp_path / "settings.json")["local_model_paths"]) == {
        "clip-vit-b16",
        "sd2-inpaint",
    }


@pytest.mark.parametrize(
    "name, model, message",
    [
        ("model.bin", "clip-vit-b16", "pickle"),
        ("model.ckpt", "sd2-inpaint", "diffusers folder"),
        ("model.pt", "clip-vit-b16", "pickle"),
        ("model.ckpt", "sam2.1-tiny", "pickle"),
        ("notes.txt", "clip-vit-b16", "not a weights file"),
    ],
)
def test_import_refuses_wrong_or_pickle_files(tmp_path, name, model, message):
    path = tmp_path / name
    path.write_bytes(b"x")
    settings = Settings(tmp_path / "settings.json")
    with pytest.raises(BadInput, match=message):
        dl.import_local(get_spec(model), path, settings)
    assert settings["local_model_paths"] == {}
    assert not (tmp_path / "settings.json").exists()


def test_import_refuses_missing_and_pickle_only_folders(tmp_path):
    settings = Settings(tmp_path / "settings.json")
    with pytest.raises(BadInput, match="No such file"):
        dl.import_local(get_spec("clip-vit-b16"), tmp_path / "absent", settings)
    sd = tmp_path / "sd"
    (sd / "unet").mkdir(parents=True)
    with pytest.raises(BadInput, match="model_index.json"):
        dl.import_local(get_spec("sd2-inpaint"), sd, settings)
    (sd / "model_index.json").write_text("{}")
    (sd / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(BadInput, match="no .safetensors"):
        dl.import_local(get_spec("sd2-inpaint"), sd, settings)
    with pytest.raises(BadInput, match="does not contain"):
        dl.import_local(get_spec("clip-vit-b16"), sd, settings)


def test_second_concurrent_download_of_one_model_is_refused(tmp_path, make_hub, online):
    from filelock import FileLock

    data = _blob(100_000, seed=13)
    hub = _single_hub(make_hub, data)
    store = _store(tmp_path)
    store.folder(SINGLE).mkdir(parents=True)
    with FileLock(str(store.folder(SINGLE) / ".ovpaint-download.lock")):
        with pytest.raises(ModelUnavailable, match="already being downloaded"):
            dl.download(SINGLE, store, source=_source(hub))
    assert not hub.file_requests("open_clip_model.safetensors")
    dl.download(SINGLE, store, source=_source(hub))  # free again once the other one ends
    assert dl.verify(SINGLE, store).ok


def test_server_errors_are_retried_and_then_reported(tmp_path, make_hub, online):
    data = _blob(50_000, seed=14)
    hub = _single_hub(make_hub, data, fail_first={"open_clip_model.safetensors": 503})
    store = _store(tmp_path)
    dl.download(SINGLE, store, source=_source(hub), retries=1)
    assert len(hub.file_requests("open_clip_model.safetensors")) == 2
    assert dl.verify(SINGLE, store).ok
    hub.fail_first["open_clip_model.safetensors"] = 502
    with pytest.raises(ModelUnavailable, match="broke off"):
        dl.download(SINGLE, _store(tmp_path / "b"), source=_source(hub), retries=0)
    hub.fail_first["open_clip_model.safetensors"] = 404
    with pytest.raises(ModelUnavailable, match="HTTP 404"):
        dl.download(SINGLE, _store(tmp_path / "c"), source=_source(hub), retries=3)

"""Projects: save and reopen give identical layers; damage is one clear error; atomic."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from ovpaint.core import project
from ovpaint.core.document import Document, ImageLayer
from ovpaint.core.errors import BadInput, Cancelled
from ovpaint.core.jobs import CancelToken


def _doc():
    rng = np.random.default_rng(1)
    doc = Document(
        rng.integers(0, 256, (30, 50, 3), dtype=np.uint8),
        alpha=rng.integers(0, 256, (30, 50), dtype=np.uint8),
        path="/photos/a.jpg",
    )
    hard = rng.random((30, 50)) > 0.5
    soft = rng.integers(0, 256, (30, 50), dtype=np.uint8)
    doc.layers.append(doc.new_mask_layer("sky", hard, method="dense"))
    doc.layers.append(doc.new_mask_layer("dog", soft))
    doc.layers.append(
        ImageLayer(
            name="inpaint: cat",
            rgb=rng.integers(0, 256, (8, 9, 3), dtype=np.uint8),
            alpha=rng.integers(0, 256, (8, 9), dtype=np.uint8),
            x=3,
            y=4,
            role="inpaint",
            meta={"seed": 7, "prompt": "a cat"},
        )
    )
    doc.set_property(doc.layers[1], "visible", False)
    doc.set_property(doc.layers[0], "opacity", 0.25)
    doc.layers.select(doc.layers[2])
    return doc


def _assert_same(a: Document, b: Document):
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.alpha, b.alpha)
    assert a.path == b.path
    assert len(a.layers) == len(b.layers)
    for x, y in zip(a.layers, b.layers, strict=True):
        assert (x.kind, x.name, x.visible, x.opacity, x.id, x.meta) == (
            y.kind,
            y.name,
            y.visible,
            y.opacity,
            y.id,
            y.meta,
        )
        if x.kind == "mask":
            assert x.mask.dtype == y.mask.dtype and np.array_equal(x.mask, y.mask)
            assert tuple(x.color) == tuple(y.color)
        else:
            assert np.array_equal(x.rgb, y.rgb) and np.array_equal(x.alpha, y.alpha)
            assert (x.x, x.y, x.role) == (y.x, y.y, y.role)
    assert (a.layers.selected.id if a.layers.selected else None) == (
        b.layers.selected.id if b.layers.selected else None
    )


@pytest.mark.parametrize("name", ["p.ovpaint", "folder_project"])
def test_round_trip_is_exact(tmp_path, name):
    doc = _doc()
    target = tmp_path / name
    project.save_project(doc, target)
    again = project.load_project(target)
    _assert_same(doc, again)
    assert not again.dirty
    project.save_project(again, target)  # overwriting an existing project works too
    _assert_same(doc, project.load_project(target))


def test_no_pickle_only_png_and_json(tmp_path):
    target = project.save_project(_doc(), tmp_path / "p.ovpaint")
    with zipfile.ZipFile(target) as zf:
        names = zf.namelist()
        info = json.loads(zf.read("project.json"))
    assert all(n.endswith((".png", ".json")) for n in names)
    assert info["format"] == "ovpaint-project" and len(info["layers"]) == 3


def test_cancel_leaves_previous_project(tmp_path):
    target = tmp_path / "p.ovpaint"
    project.save_project(_doc(), target)
    before = target.read_bytes()
    token = CancelToken()
    token.cancel()
    doc = _doc()
    doc.layers.remove(doc.layers[0])
    with pytest.raises(Cancelled):
        project.save_project(doc, target, cancel=token)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.ovpaint"]  # no temporary left behind


def test_damaged_projects_give_one_clear_error(tmp_path):
    bad = tmp_path / "x.ovpaint"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(BadInput, match="not an ovpaint project"):
        project.load_project(bad)
    target = project.save_project(_doc(), tmp_path / "p.ovpaint")
    data = {}
    with zipfile.ZipFile(target) as zf:
        for n in zf.namelist():
            data[n] = zf.read(n)
    data["layers/000-mask.png"] = b"\x89PNG broken"
    broken = tmp_path / "broken.ovpaint"
    with zipfile.ZipFile(broken, "w") as zf:
        for n, b in data.items():
            zf.writestr(n, b)
    with pytest.raises(BadInput, match="corrupt"):
        project.load_project(broken)
    evil = json.loads(data["project.json"])
    evil["layers"][0]["mask"] = "../../etc/passwd"
    data["project.json"] = json.dumps(evil).encode()
    with zipfile.ZipFile(tmp_path / "evil.ovpaint", "w") as zf:
        for n, b in data.items():
            zf.writestr(n, b)
    with pytest.raises(BadInput, match="unsafe"):
        project.load_project(tmp_path / "evil.ovpaint")


def test_recovery_file_cycle(tmp_path):
    slot = project.RecoverySlot(tmp_path)
    assert project.find_recovery(tmp_path) is None
    doc = _doc()
    slot.write(project.snapshot(doc))
    assert project.find_recovery(tmp_path) is None  # its window is still open
    _assert_same(doc, project.load_project(slot.path))
    slot.clear()
    assert not slot.path.exists() and project.find_recovery(tmp_path) is None

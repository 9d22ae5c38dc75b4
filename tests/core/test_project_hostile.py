"""Projects from someone else: crafted manifests, bombs, links and pipes are one clear error;
a folder project's save always leaves a loadable project and keeps the user's other files;
every window has its own autosave copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile

import numpy as np
import pytest

from ovpaint.core import project
from ovpaint.core.document import Document, ImageLayer
from ovpaint.core.errors import BadInput


def _doc(h=30, w=50):
    rng = np.random.default_rng(5)
    doc = Document(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), path="/photos/a.jpg")
    doc.layers.append(doc.new_mask_layer("sky", rng.random((h, w)) > 0.5))
    doc.layers.append(
        ImageLayer(
            name="patch",
            rgb=rng.integers(0, 256, (8, 9, 3), dtype=np.uint8),
            x=3,
            y=4,
            role="inpaint",
        )
    )
    return doc


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _crafted(tmp_path, edit, name="crafted.ovpaint"):
    """A saved project whose project.json was changed by ``edit(info)`` (or replaced by the
    bytes it returns)."""
    members = _members(project.save_project(_doc(), tmp_path / "good.ovpaint"))
    info = json.loads(members["project.json"])
    changed = edit(info)
    members["project.json"] = changed if isinstance(changed, bytes) else json.dumps(info).encode()
    return _write_zip(tmp_path / name, members)


def _set(layer_index, **values):
    def edit(info):
        info["layers"][layer_index].update(values)

    return edit


CRAFTED = {
    "colour of one component": (_set(0, color=[255]), "colour"),
    "colour out of range": (_set(0, color=[300, 0, -1]), "colour"),
    "colour of text": (_set(0, color=["red", 0, 0]), "colour"),
    "opacity NaN": (
        lambda i: json.dumps(i).replace('"opacity": 1.0', '"opacity": NaN').encode(),
        "JSON",
    ),
    "opacity 1e308": (_set(0, opacity=1e308), "opacity"),
    "opacity overflowing": (
        lambda i: json.dumps(i).replace('"opacity": 1.0', '"opacity": 1e999').encode(),
        "out of range",
    ),
    "offset 1e15": (_set(1, x=10**15), "x must be"),
    "offset infinite": (
        lambda i: json.dumps(i).replace('"x": 3', '"x": Infinity').encode(),
        "JSON",
    ),
    "visible not a flag": (_set(0, visible="no"), "visible"),
    "unknown kind": (_set(0, kind="script"), "kind"),
    "name not text": (_set(0, name={"a": 1}), "name"),
    "deeply nested meta": (
        lambda i: (
            json.dumps(i).replace('"meta": {}', '"meta": ' + "[" * 5000 + "]" * 5000, 1).encode()
        ),
        "nested",
    ),
    "20000 layers": (lambda i: i.update(layers=[i["layers"][0]] * 20000), "layers"),
    "width of 1e15": (lambda i: i.update(width=10**15), "width"),
    "huge integer": (
        lambda i: json.dumps(i).replace('"height": 30', '"height": ' + "9" * 5000).encode(),
        "JSON",
    ),
    "image layer larger than the project": (None, "larger than the project"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_manifest_is_one_clear_error(tmp_path, case):
    edit, message = CRAFTED[case]
    if edit is None:  # an image layer whose pixels do not fit the 50×30 project
        members = _members(project.save_project(_doc(), tmp_path / "good.ovpaint"))
        info = json.loads(members["project.json"])
        members[info["layers"][1]["image"]] = project._png_bytes(np.zeros((31, 51, 3), np.uint8))
        path = _write_zip(tmp_path / "crafted.ovpaint", members)
    else:
        path = _crafted(tmp_path, edit)
    with pytest.raises(BadInput, match=message):
        project.load_project(path)


def test_duplicate_ids_get_fresh_ones(tmp_path):
    def edit(info):
        info["layers"][1]["id"] = info["layers"][0]["id"]

    doc = project.load_project(_crafted(tmp_path, edit))
    ids = [layer.id for layer in doc.layers]
    assert len(set(ids)) == 2


def test_zip_bomb_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """A member that expands to far more than any layer of the project's size can take is
    refused from the zip directory, without reading it."""
    members = _members(project.save_project(_doc(), tmp_path / "good.ovpaint"))
    info = json.loads(members["project.json"])
    path = tmp_path / "bomb.ovpaint"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            if name != info["layers"][0]["mask"]:
                zf.writestr(name, data)
        with zf.open(info["layers"][0]["mask"], "w", force_zip64=True) as fh:
            chunk = b"\0" * (1 << 20)
            for _ in range(64):  # 64 MB of zeros: a 30×50 mask is a few KB
                fh.write(chunk)
    assert path.stat().st_size < 1 << 20
    read_sizes = []
    real_read = zipfile.ZipExtFile.read

    def counting_read(self, n=-1):
        data = real_read(self, n)
        read_sizes.append(len(data))
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    with pytest.raises(BadInput, match="larger than"):
        project.load_project(path)
    assert sum(read_sizes) < 1 << 20


def _folder_project(tmp_path):
    target = tmp_path / "proj"
    project.save_project(_doc(), target)
    info = json.loads((target / "project.json").read_text())
    return target, info


def test_folder_layer_linked_to_dev_zero_is_refused(tmp_path):
    target, info = _folder_project(tmp_path)
    member = target / info["layers"][0]["mask"]
    member.unlink()
    member.symlink_to("/dev/zero")
    with pytest.raises(BadInput, match="outside"):
        project.load_project(target)


def test_folder_layer_that_is_a_fifo_does_not_hang(tmp_path):
    target, info = _folder_project(tmp_path)
    member = target / info["layers"][0]["mask"]
    member.unlink()
    os.mkfifo(member)
    result: list = []
    thread = threading.Thread(
        target=lambda: result.append(_error_of(lambda: project.load_project(target))),
        daemon=True,
    )
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "reading a FIFO layer hangs"
    assert "pipe" in result[0]


def _error_of(fn):
    try:
        fn()
    except BadInput as exc:
        return str(exc)
    return "no error"


@pytest.mark.parametrize("what", ["layer", "layers folder", "project.json"])
def test_folder_links_out_of_the_project_are_refused(tmp_path, what):
    target, info = _folder_project(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    if what == "layer":
        member = target / info["layers"][0]["mask"]
        (outside / "secret.png").write_bytes(member.read_bytes())
        member.unlink()
        member.symlink_to(outside / "secret.png")
    elif what == "layers folder":
        (target / "layers").rename(outside / "layers")
        (target / "layers").symlink_to(outside / "layers")
    else:
        (target / "project.json").rename(outside / "project.json")
        (target / "project.json").symlink_to(outside / "project.json")
    with pytest.raises(BadInput, match="outside"):
        project.load_project(target)


def test_folder_resave_does_not_embed_or_write_through_links(tmp_path):
    target, _info = _folder_project(tmp_path)
    outside = tmp_path / "elsewhere"
    (target / "layers").rename(outside)
    (target / "layers").symlink_to(outside)
    before = sorted(p.name for p in outside.iterdir())
    with pytest.raises(BadInput, match="link"):
        project.save_project(_doc(), target)
    assert sorted(p.name for p in outside.iterdir()) == before


def test_folder_resave_keeps_the_users_files_and_drops_only_old_layers(tmp_path):
    target, _ = _folder_project(tmp_path)
    (target / "notes.txt").write_text("mine")
    (target / "layers" / "reference.png").write_bytes(b"mine too")
    doc = project.load_project(target)
    doc.layers.remove(doc.layers[0])
    project.save_project(doc, target)
    assert (target / "notes.txt").read_text() == "mine"
    assert (target / "layers" / "reference.png").read_bytes() == b"mine too"
    info = json.loads((target / "project.json").read_text())
    used = {info["image"]} | {e["image"] for e in info["layers"]}
    ours = {p.relative_to(target).as_posix() for p in target.rglob("*.png")}
    assert ours - used == {"layers/reference.png"}  # the removed layer's file went, no other
    assert len(project.load_project(target).layers) == 1


KILL_AT = """
import os, sys
sys.path.insert(0, {root!r})
from ovpaint.core import project, fileio
doc = project.load_project({target!r})
doc.layers.remove(doc.layers[0])
calls = [0]
real = fileio.os.replace
def replace(a, b):
    calls[0] += 1
    if calls[0] == {n}:
        os._exit(9)  # killed in the middle of the save
    return real(a, b)
fileio.os.replace = replace
project.os.replace = replace
project.save_project(doc, {target!r})
"""


def test_folder_save_killed_at_every_step_leaves_a_loadable_project(tmp_path):
    """Kill the save before each of its renames: the folder holds the old project or the
    new one, complete, never a hidden copy only."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for n in range(1, 6):
        target, _ = _folder_project(tmp_path / f"run{n}")
        code = KILL_AT.format(root=root, target=str(target), n=n)
        subprocess.run([sys.executable, "-c", code], check=False, timeout=120)
        doc = project.load_project(target)  # never a half project
        assert len(doc.layers) in (1, 2)
        assert not [p for p in (tmp_path / f"run{n}").iterdir() if p.name.startswith(".")]
        project.save_project(doc, target)  # the next save removes what the killed one left
        assert not [p for p in target.rglob("*") if p.name.startswith(".")]
        info = json.loads((target / "project.json").read_text())
        used = {info["image"]} | {e.get("mask") or e.get("image") for e in info["layers"]}
        assert {p.relative_to(target).as_posix() for p in target.rglob("*.png")} == used


def test_two_windows_keep_their_own_recovery_copies(tmp_path):
    first, second = project.RecoverySlot(tmp_path), project.RecoverySlot(tmp_path)
    a, b = _doc(), _doc(20, 20)
    first.write(a)
    second.write(b)
    assert first.path != second.path
    assert project.find_recoveries(tmp_path) == []  # both owners are alive
    second.clear()  # a clean exit of one ...
    assert first.path.exists()  # ... leaves the other's copy
    assert project.load_project(first.path).shape == a.shape


RECOVERY_CHILD = """
import os, sys
sys.path.insert(0, {root!r})
import numpy as np
from pathlib import Path
from ovpaint.core import project
from ovpaint.core.document import Document
slot = project.RecoverySlot(Path({folder!r}))
slot.write(Document(np.zeros((7, 9, 3), np.uint8)))
os._exit(9)  # a crash: the copy stays, its lock goes with the process
"""


def test_a_crashed_instances_copy_is_offered_once(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    mine = project.RecoverySlot(tmp_path)
    mine.write(_doc())
    code = RECOVERY_CHILD.format(root=root, folder=str(tmp_path))
    subprocess.run([sys.executable, "-c", code], check=False, timeout=120)
    found = project.find_recoveries(tmp_path)
    assert len(found) == 1 and found[0] != mine.path  # not the live window's copy
    taker = project.RecoverySlot(tmp_path)
    adopted = taker.adopt(found[0])
    assert project.load_project(adopted).shape == (7, 9)
    assert project.find_recoveries(tmp_path) == []  # now the taker's own copy


KILLED_ZIP_SAVE = """
import os, sys
sys.path.insert(0, {root!r})
from ovpaint.core import project
doc = project.load_project({target!r})
calls = [0]
real = project._png_bytes
def png(arr):
    calls[0] += 1
    if calls[0] == 2:
        os._exit(9)  # killed while the zip is being written
    return real(arr)
project._png_bytes = png
project.save_project(doc, {target!r})
"""


def test_killed_saves_leave_nothing_after_the_next_save(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    folder = tmp_path / "work"
    folder.mkdir()
    target = folder / "p.ovpaint"  # made by an earlier session
    shutil.copyfile(project.save_project(_doc(), tmp_path / "first.ovpaint"), target)
    for _ in range(3):
        code = KILLED_ZIP_SAVE.format(root=root, target=str(target))
        subprocess.run([sys.executable, "-c", code], check=False, timeout=120)
    # each save removed the one the save before it left: they never pile up
    assert len([p for p in folder.iterdir() if p.name.endswith(".part")]) == 1
    user_file = folder / ".p.ovpaint.notes.part"  # not ours: not a temporary's name
    user_file.write_text("mine")
    project.save_project(project.load_project(target), target)  # the next session's save
    assert sorted(p.name for p in folder.iterdir()) == [".p.ovpaint.notes.part", "p.ovpaint"]


def test_folders_left_by_killed_saves_of_older_versions_are_removed(tmp_path):
    target, _ = _folder_project(tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    leftovers = [tmp_path / ".proj.ab12cd34", tmp_path / f".proj.old-{int(dead.stdout)}"]
    for folder in leftovers:
        (folder / "layers").mkdir(parents=True)
        (folder / "project.json").write_text("{}")
        (folder / "image.png").write_bytes(b"png")
        (folder / "layers" / "000-mask.png").write_bytes(b"png")
    keep = tmp_path / ".proj.zz99yy88"  # holds a file that is not ours
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    hours_ago = time.time() - 2 * 3600
    for folder in [*leftovers, keep]:
        os.utime(folder, (hours_ago, hours_ago))
    project.save_project(project.load_project(target), target)
    assert not any(f.exists() for f in leftovers)
    assert (keep / "notes.txt").read_text() == "mine"


def test_missing_project_names_where_an_interrupted_save_left_it(tmp_path):
    (tmp_path / ".proj.old-123" / "layers").mkdir(parents=True)
    with pytest.raises(BadInput, match=r"\.proj\.old-123"):
        project.load_project(tmp_path / "proj")

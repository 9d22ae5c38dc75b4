"""The build's contracts that can be checked without building: the spec's exclusions are there
and justified, the bundle's entry points exist, build.sh runs the README's smoke commands, the
build tools are pinned, and the ELF reader that finds the glibc floor reads what binutils reads.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "ovpaint.spec"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"packaging_{name}", PACKAGING / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def _spec_table(name: str) -> dict[str, str]:
    for node in ast.parse(SPEC.read_text("utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"the spec has no {name}")


def _matches(table: dict[str, str], path: str) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in table)


def test_every_exclusion_is_justified():
    for name in ("EXCLUDED_MODULES", "EXCLUDED_FILES", "HOST_LIBRARIES"):
        table = _spec_table(name)
        assert table, name
        for key, reason in table.items():
            assert isinstance(reason, str) and len(reason.split()) >= 2, (name, key)


def test_triton_and_the_gtk_theme_are_left_out():
    modules, files = _spec_table("EXCLUDED_MODULES"), _spec_table("EXCLUDED_FILES")
    assert "triton" in modules
    assert _matches(files, "triton/backends/nvidia/bin/ptxas")
    assert _matches(files, "PySide6/Qt/plugins/platformthemes/libqgtk3.so")
    # what the bundle must keep is not caught by a pattern
    for kept in (
        "PySide6/Qt/plugins/platforms/libqxcb.so",
        "PySide6/Qt/plugins/platforms/libqoffscreen.so",
        "nvidia/cu13/lib/libcublas.so.13",
        "nvidia/cu13/lib/libnvrtc.so.13",
        "nvidia/cudnn/lib/libcudnn.so.9",
        "torch/lib/libtorch_cuda.so",
    ):
        assert not _matches(files, kept), kept
    text = SPEC.read_text("utf-8")
    assert "excludes=sorted(EXCLUDED_MODULES)" in text
    assert "_excluded_file(" in text and "_host_library(" in text


def test_host_libraries_cover_the_floor_raisers_but_not_pythons_own():
    host = _spec_table("HOST_LIBRARIES")
    for soname in ("libstdc++.so.6", "libexpat.so.1", "libfontconfig.so.1", "libglib-2.0.so.0"):
        assert _matches(host, soname), soname
    for soname in ("libssl.so.3", "libcrypto.so.3", "libffi.so.8", "libpython3.11.so.1.0"):
        assert not _matches(host, soname), soname


def test_one_analysis_and_a_launcher_for_both_programs():
    text = SPEC.read_text("utf-8")
    assert text.count("Analysis(") == 1
    assert '"launcher.py"' in text and "BUNDLE(" in text and "windows_version_file()" in text
    # the .app starts the windowed app and is not a background-only agent
    assert '"CFBundleExecutable": "ovpaint-app"' in text and '"LSBackgroundOnly": False' in text
    assert 'executable("ovpaint-app", console=False)' in text
    launcher = _load("launcher")
    assert launcher.program("/opt/ovpaint/ovpaint-app", "/opt/ovpaint/ovpaint") == "app"
    assert launcher.program("ovpaint-app", "") == "app"
    assert launcher.program("/x/ovpaint", "/x/ovpaint") == "cli"
    assert launcher.program("ovpaint", "C:/Program Files/ovpaint/OVPAINT-APP.EXE") == "app"
    assert launcher.program("", "C:/Program Files/ovpaint/ovpaint.exe") == "cli"


def test_the_self_test_entry_points_exist():
    from ovpaint.app.launch import parse_args
    from ovpaint.cli import build_parser

    args = build_parser().parse_args(["selftest", "--json"])
    assert args.json and callable(args._run)
    assert args._run.__module__ == "ovpaint.cli.selftest"
    assert parse_args(["--self-test"]).self_test is True
    assert parse_args([]).self_test is False


def _smoke_block() -> list[str]:
    text = (PACKAGING / "README.md").read_text("utf-8")
    block = re.search(r"## Smoke test of a build.*?```bash\n(.*?)```", text, re.S)
    assert block
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_smoke_test_runs_both_self_tests_and_build_sh_runs_it():
    lines = _smoke_block()
    assert any(re.search(r'"\$BUNDLE/ovpaint" selftest$', line) for line in lines)
    assert any(
        line.startswith("QT_QPA_PLATFORM=offscreen ") and line.endswith('ovpaint-app" --self-test')
        for line in lines
    )
    assert not any(line.startswith("timeout ") for line in lines)  # an exit code that means it
    smoke = _load("smoke")
    assert smoke.smoke_commands() == lines
    build = (PACKAGING / "build.sh").read_text("utf-8")
    assert 'packaging/smoke.py "$RUN_BUNDLE" --source-python' in build
    assert "elf_report.py" in build and "sha256sum" in build
    assert (PACKAGING / "build.sh").stat().st_mode & 0o111


def test_the_release_workflow_runs_build_sh_on_linux():
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text("utf-8")
    assert "manylinux_2_28" in workflow
    assert "packaging/build.sh" in workflow
    assert "MAX_GLIBC=2.28" in workflow
    assert "PYTHON=/opt/venv/bin/python packaging/build.sh" in workflow
    # Qt 6.10+ wheels need glibc 2.34: the 2.28 build pins the last manylinux_2_28 PySide6
    assert "(PySide6_Essentials|shiboken6)==.*/\\1==6.9.3/" in workflow
    for job in ("linux:", "windows:", "macos:", "release:"):
        assert f"\n  {job}\n" in workflow, job
    assert workflow.count("python.exe packaging/smoke.py dist/ovpaint ") == 1  # Windows
    assert "python packaging/smoke.py dist/ovpaint.app/Contents/MacOS" in workflow
    assert "tags:" in workflow


def test_build_tools_are_pinned_and_an_optional_extra():
    pins = dict(
        line.split("==")
        for line in (PACKAGING / "constraints.txt").read_text().splitlines()
        if "==" in line
    )
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", pins["pyinstaller"])
    assert re.fullmatch(r"\d{4}\.\d+", pins["pyinstaller-hooks-contrib"])
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    package = project["optional-dependencies"]["package"]
    assert {re.split(r"[<>=!]", p)[0] for p in package} >= {
        "pyinstaller",
        "pyinstaller-hooks-contrib",
    }
    assert not any(d.lower().startswith("pyinstaller") for d in project["dependencies"])


def test_smoke_manifest_sees_a_write(tmp_path):
    smoke = _load("smoke")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.so").write_bytes(b"x")
    before = smoke.manifest(tmp_path)
    assert smoke.manifest(tmp_path) == before
    (tmp_path / "lib" / "__pycache__").mkdir()
    assert set(smoke.manifest(tmp_path)) - set(before) == {"lib/__pycache__"}


def test_the_desktop_entry_starts_the_app():
    entry = (PACKAGING / "linux" / "ovpaint.desktop").read_text("utf-8")
    fields = dict(line.split("=", 1) for line in entry.splitlines() if "=" in line)
    assert fields["Type"] == "Application" and fields["Icon"] == "ovpaint"
    assert fields["Exec"].split()[0] == "ovpaint-app"
    assert fields["Terminal"] == "false"


# ------------------------------------------------------------------ the ELF reader
elf_report = _load("elf_report")


def _some_elf_files() -> list[Path]:
    import numpy

    found = sorted(Path(numpy.__file__).parent.rglob("*.so"))[:3]
    return found + [Path(sys.executable).resolve()]


@pytest.mark.skipif(not shutil.which("readelf"), reason="binutils' readelf is not installed")
def test_elf_reader_agrees_with_readelf():
    for path in _some_elf_files():
        info = elf_report.read_elf(path)
        out = subprocess.run(
            ["readelf", "-d", "-V", "-W", str(path)], capture_output=True, text=True, check=True
        ).stdout
        assert info.needed == re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", out), path
        section = out.split("Version needs section", 1)[1] if "Version needs" in out else ""
        theirs = set(re.findall(r"Name: (\S+)\s+Flags", section))
        assert set().union(*info.versions.values()) == theirs, path


def test_elf_reader_rejects_other_files(tmp_path):
    text = tmp_path / "a.txt"
    text.write_text("not an ELF file")
    with pytest.raises(elf_report.NotElf):
        elf_report.read_elf(text)


def test_version_keys():
    assert elf_report.version_key("GLIBC_2.28", "GLIBC_") == (2, 28)
    assert elf_report.version_key("GLIBC_2.2.5", "GLIBC_") == (2, 2, 5)
    assert elf_report.version_key("GLIBC_PRIVATE", "GLIBC_") is None
    assert elf_report.version_key("GLIBCXX_3.4.29", "GLIBC_") is None
    assert elf_report.version_key("GLIBC_2.9", "GLIBC_") < elf_report.version_key(
        "GLIBC_2.28", "GLIBC_"
    )


def test_scan_finds_the_floor_and_what_the_host_must_provide(tmp_path):
    import PySide6

    plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqminimal.so"
    if not plugin.exists():
        pytest.skip("no Qt plugin to scan")
    bundle = tmp_path / "bundle"
    (bundle / "plugins").mkdir(parents=True)
    shutil.copy(plugin, bundle / "plugins" / plugin.name)
    needed = elf_report.read_elf(plugin).needed
    qt_libs = [lib for lib in needed if lib.startswith("libQt6")]
    assert qt_libs

    report = elf_report.scan(bundle, host_patterns=[])
    assert report["elf_files"] == 1
    assert set(report["unexpected"]) == set(qt_libs) | {
        lib
        for lib in needed
        if not any(fnmatch.fnmatch(lib, p) for p in elf_report.SYSTEM_LIBRARIES)
        and not lib.startswith("libQt6")
    }
    assert report["glibc"]["files"] == ["plugins/libqminimal.so"]
    floor = elf_report.version_key("GLIBC_" + report["glibc"]["version"], "GLIBC_")
    assert floor >= (2, 2, 5)

    # a library the bundle carries is not needed from the host; an allowed one is not unexpected
    (bundle / qt_libs[0]).write_bytes(b"placeholder")
    report = elf_report.scan(bundle, host_patterns=["libQt6*"])
    assert qt_libs[0] not in report["from_host"]
    assert not any(lib.startswith("libQt6") for lib in report["unexpected"])


def test_floors_by_package_and_without_the_gui(tmp_path):
    import PySide6

    qt = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqminimal.so"
    if not qt.exists():
        pytest.skip("no Qt plugin to scan")
    numpy_lib = _some_elf_files()[0]
    bundle = tmp_path / "bundle"
    for dest, src in (("_internal/PySide6/x/" + qt.name, qt), ("_internal/numpy/a.so", numpy_lib)):
        (bundle / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, bundle / dest)
    report = elf_report.scan(bundle, host_patterns=["*"])
    assert set(report["by_part"]) == {"PySide6", "numpy"}
    assert report["glibc_without_gui"]["files"] == ["_internal/numpy/a.so"]
    assert report["glibc_without_gui"]["version"] == report["by_part"]["numpy"]["glibc"]
    assert elf_report.part_of("_internal/torch/lib/x.so") == "torch"
    assert elf_report.part_of("_internal/libpython3.11.so.1.0") == "(top level)"
    assert elf_report.above("2.34", "2.28") and not elf_report.above("2.28", "2.28")


def test_the_app_icon_renders(tmp_path):
    done = subprocess.run(
        [sys.executable, str(PACKAGING / "render_icons.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert done.returncode == 0, done.stderr
    from PIL import Image

    for size in (16, 256):
        image = Image.open(tmp_path / "hicolor" / f"{size}x{size}" / "apps" / "ovpaint.png")
        assert image.size == (size, size) and image.mode == "RGBA"
        alpha = image.getchannel("A")
        assert alpha.getextrema() == (0, 255)  # transparent corners, an opaque card
    assert (tmp_path / "hicolor" / "scalable" / "apps" / "ovpaint.svg").is_file()
    assert Image.open(tmp_path / "ovpaint.png").size == (1024, 1024)


def test_the_host_libraries_are_read_from_the_spec():
    patterns = elf_report.host_library_patterns(SPEC)
    assert patterns == list(_spec_table("HOST_LIBRARIES"))

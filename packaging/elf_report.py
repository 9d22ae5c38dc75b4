"""What a Linux bundle needs from the system it runs on, read from its ELF files.

For every ELF file in a folder: the symbol versions it needs (``.gnu.version_r``) and the
libraries it links (``DT_NEEDED``). Reports the oldest glibc (and libstdc++) the bundle can run
with, which files set that floor, the same without the Qt GUI libraries (what the command line
loads), the floor of each package, and every library the bundle does not carry itself; fails if
one of those is neither part of the C library or the GPU driver nor listed in the spec's
``HOST_LIBRARIES`` (something the host may not have), or if a floor is above ``--max-glibc``
(``--max-glibc-cli`` for the part without Qt).

    python packaging/elf_report.py dist/ovpaint [--max-glibc 2.34] [--max-glibc-cli 2.28]

Pure Python (no binutils), reading only headers and the two sections, so it scans a
multi-gigabyte bundle in seconds.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SHT_DYNAMIC = 6
SHT_GNU_VERNEED = 0x6FFFFFFE
DT_NEEDED = 1

# The GUI toolkit: loaded by the app only, never by the command line.
GUI_PARTS = ("PySide6", "shiboken6")

# Provided by every system: the C library and the loader, and what only the GPU driver can
# provide (PyInstaller never bundles these either).
SYSTEM_LIBRARIES = (
    "ld-linux*.so.*",
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libanl.so.1",
    "libcrypt.so.1",
    "libnsl.so.1",
    "libcuda.so.1",
    "libnvidia-*.so*",
    "libGL.so.1",
    "libGLX.so.0",
    "libEGL.so.1",
    "libOpenGL.so.0",
    "libGLESv2.so.2",
    "libxcb.so.1",
    "libxcb-dri*.so.*",
)


@dataclass
class ElfInfo:
    path: str
    needed: list[str] = field(default_factory=list)
    versions: dict[str, set[str]] = field(default_factory=dict)  # library -> version names


class NotElf(Exception):
    pass


def read_elf(path: str | os.PathLike) -> ElfInfo:
    """DT_NEEDED and the needed symbol versions of one ELF file (section headers only)."""
    with open(path, "rb") as f:
        ident = f.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            raise NotElf(path)
        is64 = ident[4] == 2
        endian = "<" if ident[5] == 1 else ">"
        header = f.read(48 if is64 else 36)
        if is64:
            shoff, shentsize, shnum, _ = (
                struct.unpack_from(endian + "Q", header, 24)[0],
                *struct.unpack_from(endian + "HHH", header, 42),
            )
        else:
            shoff, shentsize, shnum, _ = (
                struct.unpack_from(endian + "I", header, 16)[0],
                *struct.unpack_from(endian + "HHH", header, 30),
            )
        sections = []
        if shoff and shnum:
            f.seek(shoff)
            table = f.read(shentsize * shnum)
            fmt = endian + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII")
            for i in range(shnum):
                fields = struct.unpack_from(fmt, table, i * shentsize)
                # name, type, flags, addr, offset, size, link, info, align, entsize
                sections.append(fields)

        def read_section(index: int) -> bytes:
            _, _, _, _, offset, size, *_ = sections[index]
            f.seek(offset)
            return f.read(size)

        def string(table: bytes, offset: int) -> str:
            end = table.find(b"\0", offset)
            return table[offset : end if end >= 0 else None].decode("utf-8", "replace")

        info = ElfInfo(str(path))
        for section in sections:
            kind, link, count = section[1], section[6], section[7]
            if kind == SHT_DYNAMIC:
                data, strings = read_section(sections.index(section)), read_section(link)
                entry = struct.Struct(endian + ("qQ" if is64 else "iI"))
                for tag, value in entry.iter_unpack(data[: len(data) // entry.size * entry.size]):
                    if tag == DT_NEEDED:
                        info.needed.append(string(strings, value))
                    elif tag == 0:
                        break
            elif kind == SHT_GNU_VERNEED:
                data, strings = read_section(sections.index(section)), read_section(link)
                offset = 0
                for _ in range(count):
                    _, cnt, file_off, aux, next_off = struct.unpack_from(
                        endian + "HHIII", data, offset
                    )
                    library = string(strings, file_off)
                    names = info.versions.setdefault(library, set())
                    aux_off = offset + aux
                    for _ in range(cnt):
                        _, _, _, name_off, aux_next = struct.unpack_from(
                            endian + "IHHII", data, aux_off
                        )
                        names.add(string(strings, name_off))
                        if not aux_next:
                            break
                        aux_off += aux_next
                    if not next_off:
                        break
                    offset += next_off
        return info


def version_key(name: str, prefix: str) -> tuple[int, ...] | None:
    """``GLIBC_2.34`` -> (2, 34) for prefix ``GLIBC_``; None for other names (GLIBC_PRIVATE)."""
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    if not re.fullmatch(r"\d+(\.\d+)*", rest):
        return None
    return tuple(int(p) for p in rest.split("."))


def elf_files(root: Path) -> Iterable[Path]:
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            with open(path, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    yield path


def host_library_patterns(spec: Path) -> list[str]:
    """The keys of ``HOST_LIBRARIES`` in the spec (read, not executed)."""
    tree = ast.parse(spec.read_text("utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "HOST_LIBRARIES" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise ValueError(f"{spec} defines no HOST_LIBRARIES")


@dataclass
class Floor:
    version: str | None
    files: list[str]


def _floor(infos: list[ElfInfo], prefix: str, root: Path) -> Floor:
    best: tuple[int, ...] | None = None
    files: list[str] = []
    for info in infos:
        keys = [
            k
            for names in info.versions.values()
            for k in (version_key(n, prefix) for n in names)
            if k is not None
        ]
        if not keys:
            continue
        top = max(keys)
        rel = os.path.relpath(info.path, root)
        if best is None or top > best:
            best, files = top, [rel]
        elif top == best:
            files.append(rel)
    return Floor(None if best is None else ".".join(map(str, best)), sorted(files))


def part_of(path: str) -> str:
    """The package a bundled file belongs to: the first folder below the contents folder."""
    parts = Path(path).parts
    if parts and parts[0] == "_internal":
        parts = parts[1:]
    return parts[0] if len(parts) > 1 else "(top level)"


def scan(root: Path, host_patterns: list[str]) -> dict:
    infos, errors = [], []
    for path in elf_files(root):
        try:
            infos.append(read_elf(path))
        except (OSError, struct.error, NotElf) as exc:
            errors.append(f"{path}: {exc}")
    present = {p.name for p in root.rglob("*")}
    allowed = list(SYSTEM_LIBRARIES) + list(host_patterns)
    from_host: dict[str, list[str]] = {}
    for info in infos:
        for lib in info.needed:
            if lib not in present:
                from_host.setdefault(lib, []).append(os.path.relpath(info.path, root))
    unexpected = {
        lib: sorted(users)
        for lib, users in from_host.items()
        if not any(fnmatch.fnmatch(lib, p) for p in allowed)
    }
    parts: dict[str, list[ElfInfo]] = {}
    for info in infos:
        parts.setdefault(part_of(os.path.relpath(info.path, root)), []).append(info)
    by_part = {
        name: {
            "glibc": _floor(members, "GLIBC_", root).version,
            "glibcxx": _floor(members, "GLIBCXX_", root).version,
        }
        for name, members in parts.items()
    }
    without_gui = [i for name, m in parts.items() if name not in GUI_PARTS for i in m]
    return {
        "root": str(root),
        "elf_files": len(infos),
        "glibc": _floor(infos, "GLIBC_", root).__dict__,
        "glibc_without_gui": _floor(without_gui, "GLIBC_", root).__dict__,
        "glibcxx_without_gui": _floor(without_gui, "GLIBCXX_", root).__dict__,
        "by_part": dict(
            sorted(
                by_part.items(),
                key=lambda kv: version_key("GLIBC_" + (kv[1]["glibc"] or "0"), "GLIBC_"),
                reverse=True,
            )
        ),
        "glibcxx": _floor(infos, "GLIBCXX_", root).__dict__,
        "cxxabi": _floor(infos, "CXXABI_", root).__dict__,
        "from_host": {lib: len(users) for lib, users in sorted(from_host.items())},
        "unexpected": unexpected,
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument(
        "--spec", type=Path, default=Path(__file__).resolve().parent / "ovpaint.spec"
    )
    parser.add_argument("--max-glibc", default=None, help="fail above this glibc, e.g. 2.34")
    parser.add_argument(
        "--max-glibc-cli", default=None, help="the same for the part without Qt, e.g. 2.28"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    report = scan(args.bundle, host_library_patterns(args.spec))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), "utf-8")
    glibc = report["glibc"]
    print(f"ELF files: {report['elf_files']}")
    print(f"minimum glibc: {glibc['version']}  (needed by {len(glibc['files'])} files:")
    for name in glibc["files"][:8]:
        print(f"    {name}")
    if len(glibc["files"]) > 8:
        print(f"    ... {len(glibc['files']) - 8} more")
    print("  )")
    for key, label in (("glibcxx", "libstdc++ (GLIBCXX)"), ("cxxabi", "C++ ABI (CXXABI)")):
        floor = report[key]
        print(f"minimum {label}: {floor['version']}  ({', '.join(floor['files'][:3])})")
    cli, cli_cxx = report["glibc_without_gui"], report["glibcxx_without_gui"]
    print(
        f"without the Qt GUI (the command line): glibc {cli['version']} "
        f"({', '.join(cli['files'][:3])}), GLIBCXX {cli_cxx['version']}"
    )
    print("by package (glibc, GLIBCXX):")
    for name, floors in list(report["by_part"].items())[:12]:
        print(f"    {name:<36} {floors['glibc'] or '-':>6} {floors['glibcxx'] or '-':>8}")
    print("from the host: " + ", ".join(report["from_host"]))
    failed = False
    if report["unexpected"]:
        failed = True
        print("ERROR: needed from the host but not known to be there:", file=sys.stderr)
        for lib, users in report["unexpected"].items():
            print(f"    {lib}  (by {', '.join(users[:3])})", file=sys.stderr)
    if report["errors"]:
        failed = True
        print("ERROR: unreadable ELF files:", *report["errors"], sep="\n    ", file=sys.stderr)
    for limit, floor, what in (
        (args.max_glibc, glibc["version"], "the bundle"),
        (args.max_glibc_cli, cli["version"], "the part without Qt"),
    ):
        if limit and floor and above(floor, limit):
            failed = True
            print(f"ERROR: {what} needs glibc {floor} > {limit}", file=sys.stderr)
    return 1 if failed else 0


def above(version: str, limit: str) -> bool:
    return version_key(f"GLIBC_{version}", "GLIBC_") > version_key(f"GLIBC_{limit}", "GLIBC_")


if __name__ == "__main__":
    sys.exit(main())

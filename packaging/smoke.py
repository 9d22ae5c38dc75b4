"""Check a built bundle as a user meets it, on any OS: run each command of packaging/README.md's
smoke-test block from another directory with a bare environment, compare the bundle's
self-test outputs with the source install's, and fail if anything was written into the bundle.

    python packaging/smoke.py BUNDLE_DIR [--source-python PYTHON] [--extra 'COMMAND' ...]

``BUNDLE_DIR`` holds the executables (``dist/ovpaint``, or ``ovpaint.app/Contents/MacOS``);
``--manifest-root`` is the folder watched for writes (default: BUNDLE_DIR; the whole ``.app`` on
macOS). The commands are bash (Git Bash on Windows), with ``$BUNDLE`` set. User folders (home,
temp, app data) point into a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"
TIMEOUT_S = 900


def smoke_commands(readme: Path = README) -> list[str]:
    text = readme.read_text("utf-8")
    block = re.search(r"## Smoke test of a build.*?```bash\n(.*?)```", text, re.S)
    if not block:
        raise SystemExit(f"{readme} has no smoke-test block")
    return [
        line
        for line in block.group(1).splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def manifest(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` with its kind, size and modification time."""
    entries = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            entries[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    st = root.stat()
    entries["."] = (st.st_mode, 0, st.st_mtime_ns)
    return entries


def bare_env(bundle: Path, scratch: Path) -> dict[str, str]:
    """A minimal environment, as a desktop session or a service would start the program, with
    every user folder inside ``scratch``."""
    home, tmp = scratch / "home", scratch / "tmp"
    home.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    env = {"BUNDLE": str(bundle), "HOME": str(home), "TMPDIR": str(tmp), "LANG": "C.UTF-8"}
    if sys.platform == "win32":
        system_root = os.environ.get("SYSTEMROOT", r"C:\Windows")
        bash_dir = str(Path(shutil.which("bash") or "bash").parent)
        env.update(
            PATH=os.pathsep.join([bash_dir, rf"{system_root}\System32", system_root]),
            SYSTEMROOT=system_root,
            TEMP=str(tmp),
            TMP=str(tmp),
            USERPROFILE=str(home),
            APPDATA=str(home / "AppData" / "Roaming"),
            LOCALAPPDATA=str(home / "AppData" / "Local"),
        )
    else:
        env["PATH"] = "/usr/bin:/bin"
        if os.environ.get("DISPLAY"):
            env["DISPLAY"] = os.environ["DISPLAY"]
    return env


def run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S
    )


def digests(report: dict) -> dict[str, str]:
    return {c["name"]: c["digest"] for c in report["checks"] if c["digest"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--manifest-root", type=Path, default=None)
    parser.add_argument("--source-python", default=None, help="compare with this source install")
    parser.add_argument("--extra", action="append", default=[], help="another command to run")
    args = parser.parse_args(argv)
    bundle = args.bundle.resolve()
    watched = (args.manifest_root or bundle).resolve()
    exe = ".exe" if sys.platform == "win32" else ""
    if not (bundle / f"ovpaint{exe}").exists():
        raise SystemExit(f"no ovpaint{exe} in {bundle}")
    before = manifest(watched)
    scratch = Path(tempfile.mkdtemp(prefix="ovpaint-smoke-"))
    failures = []
    try:
        elsewhere = scratch / "elsewhere"
        elsewhere.mkdir()
        env = bare_env(bundle, scratch)
        for command in smoke_commands() + args.extra:
            print(f"$ {command}", flush=True)
            done = run(["bash", "-o", "pipefail", "-c", command], env, elsewhere)
            print(done.stdout[-4000:], done.stderr[-4000:], sep="", end="", flush=True)
            if done.returncode != 0:
                failures.append(f"exit {done.returncode}: {command}")
                break
        if not failures and args.source_python:
            print("-- the bundle's self-test outputs against the source install's", flush=True)
            frozen = run([str(bundle / f"ovpaint{exe}"), "selftest", "--json"], env, elsewhere)
            source_env = dict(env, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
            source = run(
                [args.source_python, "-m", "ovpaint.cli", "selftest", "--json"],
                source_env,
                elsewhere,
            )
            if frozen.returncode or source.returncode:
                failures.append(
                    f"self-test --json: bundle exit {frozen.returncode}, source exit "
                    f"{source.returncode}\n{frozen.stderr[-2000:]}\n{source.stderr[-2000:]}"
                )
            else:
                a, b = json.loads(frozen.stdout), json.loads(source.stdout)
                if not a["info"]["frozen"] or b["info"]["frozen"]:
                    failures.append("the bundle's self-test did not run frozen")
                elif digests(a) != digests(b):
                    failures.append(f"outputs differ: bundle {digests(a)} source {digests(b)}")
                else:
                    print(f"{len(digests(a))} outputs identical", flush=True)
    except subprocess.TimeoutExpired as exc:
        failures.append(f"timed out after {TIMEOUT_S} s: {exc.cmd}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    after = manifest(watched)
    changed = sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
    if changed:
        failures.append("written into the bundle: " + ", ".join(changed[:20]))
    else:
        print(f"nothing written into the bundle ({len(after)} entries unchanged)")
    for failure in failures:
        print(f"smoke.py: FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Build the Linux bundle, check it as a user would meet it, and archive it.
#
#   packaging/build.sh                 # from any directory; the repository is this script's ../
#   PYTHON=/path/to/venv/bin/python packaging/build.sh    # build with an existing environment
#
# Steps: (1) an environment: $PYTHON, or .venv/ in the repository, created when missing with
# `pip install -c packaging/constraints.txt -e '.[package]'`; (2) PyInstaller with
# packaging/ovpaint.spec -> dist/ovpaint/; (3) the bundle is moved to a temporary folder and
# packaging/smoke.py runs every command of packaging/README.md's smoke-test block from another
# directory with a bare environment (the self-tests among them; the app's also under Xvfb when
# xvfb-run exists, and the CLI's as the unprivileged user `nobody` when run as root), checks
# that the self-test's output digests equal the source install's (4) and that nothing was
# written into the bundle; (5) packaging/elf_report.py reports the oldest glibc it needs and checks that every library it
# takes from the host is a known one; (6) dist/ovpaint-<version>-linux-x86_64[-cuda].tar.zst and
# its .sha256; an archive over 2 GiB (the CUDA variant) is also split into parts that each fit
# a GitHub release asset, with one .sha256 for all of them.
#
# Variables: PYTHON (above); MAX_GLIBC (fail if the bundle needs a newer glibc; the release
# build in the manylinux_2_28 container sets 2.28), MAX_GLIBC_CLI (the same for the part without
# Qt, which the command line loads); ZSTD_LEVEL (default 6: level 10 is 2.7% smaller and 4x slower); KEEP_BUNDLE=0 to
# delete dist/ovpaint after archiving. The CPU or CUDA variant follows the installed torch
# (packaging/README.md says how a release gets the CPU-only wheel).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"
START=$SECONDS
phase() { printf '\n== %s  (%ds)\n' "$1" $((SECONDS - START)); }
fail() { printf 'build.sh: FAILED: %s\n' "$*" >&2; exit 1; }

DIST="$ROOT/dist"
WORK="$ROOT/build"
BUNDLE="$DIST/ovpaint"
ZSTD_LEVEL=${ZSTD_LEVEL:-6}
SPLIT_BYTES=$((1900 * 1024 * 1024))   # GitHub release assets must stay under 2 GiB

phase "environment"
if [ -z "${PYTHON:-}" ]; then
    PYTHON="$ROOT/.venv/bin/python"
    if [ ! -x "$PYTHON" ]; then
        python3 -m venv "$ROOT/.venv"
        "$ROOT/.venv/bin/pip" install -c packaging/constraints.txt -e '.[package]'
    fi
fi
export PYTHONPATH="$ROOT"   # this tree's ovpaint, even in an environment installed from another
"$PYTHON" - "$ROOT" <<'EOF' || fail "the environment does not import this tree's ovpaint"
import pathlib, sys
import ovpaint, PyInstaller
root = pathlib.Path(sys.argv[1])
assert pathlib.Path(ovpaint.__file__).resolve().is_relative_to(root), ovpaint.__file__
print(f"python {sys.version.split()[0]}, PyInstaller {PyInstaller.__version__}, ovpaint {ovpaint.__file__}")
EOF
VERSION=$("$PYTHON" -c 'import ovpaint; print(ovpaint.__version__)')
VARIANT=$("$PYTHON" -c 'import torch; print("cuda" if torch.version.cuda else "cpu")')
SUFFIX=$([ "$VARIANT" = cuda ] && echo "-cuda" || true)
ARCHIVE="$DIST/ovpaint-$VERSION-linux-x86_64$SUFFIX.tar.zst"
echo "ovpaint $VERSION, $VARIANT variant -> $ARCHIVE"
for tool in zstd tar sha256sum; do command -v $tool >/dev/null || fail "$tool is needed"; done

phase "build (PyInstaller)"
rm -rf "$BUNDLE" "$WORK/ovpaint"
BUILD_START=$SECONDS
nice -n "${NICE:-19}" "$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" packaging/ovpaint.spec
BUILD_SECONDS=$((SECONDS - BUILD_START))
[ -x "$BUNDLE/ovpaint" ] || fail "no $BUNDLE/ovpaint"
[ -L "$BUNDLE/ovpaint-app" ] || fail "no ovpaint-app link"

phase "smoke tests: moved bundle, another directory, bare environment"
T=$(mktemp -d /tmp/ovpaint-check.XXXXXX)
chmod 755 "$T"
RUN_BUNDLE="$BUNDLE"
if [ "$(stat -c %d "$DIST")" = "$(stat -c %d "$T")" ]; then
    mv "$BUNDLE" "$T/ovpaint"     # a rename: nothing may depend on where it was built
    RUN_BUNDLE="$T/ovpaint"
fi
restore() { if [ "$RUN_BUNDLE" != "$BUNDLE" ]; then mv "$RUN_BUNDLE" "$BUNDLE"; fi; RUN_BUNDLE="$BUNDLE"; }
trap 'restore; rm -rf "$T"' EXIT
EXTRA=()
if command -v xvfb-run >/dev/null; then   # a real X server: the xcb plugin and host X libraries
    EXTRA+=(--extra 'xvfb-run -a -s "-screen 0 1280x1024x24" "$BUNDLE/ovpaint-app" --self-test')
else
    echo "(no xvfb-run: the app's self-test runs on the offscreen platform only)"
fi
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
    EXTRA+=(--extra 'd=$(mktemp -d -p /tmp) && chown nobody "$d" && cd "$d" && setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups env HOME="$d" TMPDIR="$d" "$BUNDLE/ovpaint" selftest; rc=$?; rm -rf "$d"; exit $rc')
fi
"$PYTHON" packaging/smoke.py "$RUN_BUNDLE" --source-python "$PYTHON" "${EXTRA[@]}" \
    || fail "smoke tests"
restore
trap 'rm -rf "$T"' EXIT

phase "what the bundle needs from the host"
"$PYTHON" packaging/elf_report.py "$BUNDLE" --json "$DIST/elf-report.json" \
    ${MAX_GLIBC:+--max-glibc "$MAX_GLIBC"} ${MAX_GLIBC_CLI:+--max-glibc-cli "$MAX_GLIBC_CLI"} \
    || fail "elf_report"

phase "archive"
BYTES=$(du -sb "$BUNDLE" | cut -f1)
FILES=$(find "$BUNDLE" -type f | wc -l)
rm -f "$ARCHIVE" "$ARCHIVE".sha256 "$ARCHIVE".part-* "$ARCHIVE".parts.sha256
EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" \
    -C "$DIST" -cf - ovpaint \
    | zstd -q -T0 "-$ZSTD_LEVEL" --long=27 -o "$ARCHIVE"
(cd "$DIST" && sha256sum "$(basename "$ARCHIVE")" > "$(basename "$ARCHIVE").sha256")
zstd -dc --long=27 "$ARCHIVE" | tar -tf - > "$T/listing"
for member in ovpaint/ovpaint ovpaint/ovpaint-app ovpaint/ovpaint.desktop \
              ovpaint/install-desktop-entry.sh; do
    grep -qx "$member" "$T/listing" || fail "$member missing from the archive"
done
grep -q '^ovpaint/share/icons/hicolor/.*/apps/ovpaint\.\(png\|svg\)$' "$T/listing" \
    || fail "no icon in the archive"
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$BUNDLE/ovpaint.desktop" || fail "desktop entry"
fi
ARCHIVE_BYTES=$(stat -c %s "$ARCHIVE")
if [ "$ARCHIVE_BYTES" -gt "$SPLIT_BYTES" ]; then
    split -b "$SPLIT_BYTES" -d -a 2 "$ARCHIVE" "$ARCHIVE.part-"
    (cd "$DIST" && sha256sum "$(basename "$ARCHIVE")".part-* > "$(basename "$ARCHIVE").parts.sha256")
    echo "split into $(ls "$ARCHIVE".part-* | wc -l) parts of at most $((SPLIT_BYTES >> 20)) MiB:"
    echo "  cat $(basename "$ARCHIVE").part-* > $(basename "$ARCHIVE") && sha256sum -c $(basename "$ARCHIVE").sha256"
fi
if [ "${KEEP_BUNDLE:-1}" = 0 ]; then rm -rf "$BUNDLE"; fi

phase "summary"
GLIBC=$("$PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["glibc"]["version"], "(without Qt, the command line:", r["glibc_without_gui"]["version"] + ")")' "$DIST/elf-report.json")
cat <<EOF
ovpaint $VERSION ($VARIANT)
bundle:        $(numfmt --to=iec --suffix=B "$BYTES") ($BYTES bytes) in $FILES files
minimum glibc: $GLIBC
archive:       $ARCHIVE ($(numfmt --to=iec --suffix=B "$ARCHIVE_BYTES"))
sha256:        $(cut -d' ' -f1 "$ARCHIVE.sha256")
PyInstaller:   ${BUILD_SECONDS}s; everything: $((SECONDS - START))s
EOF

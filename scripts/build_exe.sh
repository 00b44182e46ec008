#!/usr/bin/env bash
# Build the one-file executable dist/batchdesk (dist\batchdesk.exe on Windows) from batchdesk.spec.
#
# Run it from anywhere, with the environment that has batchdesk and its dependencies installed
# active (e.g. `. .venv/bin/activate && scripts/build_exe.sh`): PyInstaller freezes the Python and the
# packages it runs under. Installs pyinstaller==6.22.* into that environment if it is missing.
# DIST_DIR and BUILD_DIR (default dist/ and build/) move the output and PyInstaller's work folder
# (tests/test_packaged.py builds into a temp dir). See docs/packaging.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python}"
PYINSTALLER_SPEC="pyinstaller==6.22.*"
DIST_DIR="${DIST_DIR:-dist}"
BUILD_DIR="${BUILD_DIR:-build}"

if ! "$PYTHON" -c 'import sys, PyInstaller; sys.exit(0 if PyInstaller.__version__.startswith("6.22.") else 1)' 2>/dev/null; then
    echo "installing $PYINSTALLER_SPEC into $("$PYTHON" -c 'import sys; print(sys.prefix)')" >&2
    "$PYTHON" -m pip install --quiet "$PYINSTALLER_SPEC"
fi

start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --distpath "$DIST_DIR" --workpath "$BUILD_DIR" batchdesk.spec
end=$(date +%s)

exe="$DIST_DIR/batchdesk"
[ -f "$exe" ] || exe="$DIST_DIR/batchdesk.exe"
if [ ! -f "$exe" ]; then
    echo "build_exe.sh: no executable in $DIST_DIR/" >&2
    exit 1
fi
bytes=$(wc -c < "$exe" | tr -d ' ')
echo "built $exe: $bytes bytes ($(( (bytes + 524288) / 1048576 )) MiB) in $(( end - start )) s"

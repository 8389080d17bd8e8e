#!/usr/bin/env bash
# Builds the one-folder program (dist/inspector: `inspector` and `inspector-cli`) and proves that
# the frozen build works: its self-test (model, images, attention maps, the window offscreen) and
# `inspector-cli classify` on a folder. Fails on a non-zero exit, a traceback in their output or a
# bundle over MAX_BUNDLE_MB (default 1300, i.e. 1.3 GB). Linux and Windows (Git Bash); run scripts/setup.sh
# first, or set PY to a Python that has the app's dependencies.
#   bash scripts/build.sh      -> dist/inspector, build/selftest-window.png (the window as checked)
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_BUNDLE_MB=${MAX_BUNDLE_MB:-1300}

if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python
  elif [ -x .venv/Scripts/python.exe ]; then PY=.venv/Scripts/python.exe
  else bash scripts/setup.sh; PY=.venv/bin/python
  fi
fi
EXE=""
case "$(uname -s)" in MINGW*|MSYS*|CYGWIN*) EXE=".exe" ;; esac
CLI="dist/inspector/inspector-cli$EXE"

echo "== installing the build tools (pyproject's build extra)"
mkdir -p build
"$PY" -m pip install -q -e ".[build]" >build/pip-build-extra.log 2>&1 \
  || { cat build/pip-build-extra.log; exit 1; }

echo "== pyinstaller build.spec"
start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --log-level WARN build.spec
echo "built in $(( $(date +%s) - start )) s"
for exe in inspector inspector-cli; do
  [ -x "dist/inspector/$exe$EXE" ] || { echo "missing dist/inspector/$exe$EXE" >&2; exit 1; }
done

# Runs the frozen program, shows its output, fails on a bad exit status or a traceback.
run_frozen() {
  local log=build/frozen-run.log status=0
  "$@" >"$log" 2>&1 || status=$?
  grep -v -e "oneDNN custom operations" -e "absl::InitializeLog" -e "propagateSizeHints" "$log" || true
  if [ "$status" -ne 0 ]; then echo "FAILED (exit status $status): $*" >&2; exit 1; fi
  if grep -q "Traceback" "$log"; then echo "FAILED (traceback in the output): $*" >&2; exit 1; fi
}

echo "== frozen self-test"
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
STEEL_INSPECTOR_SELFTEST_SCREENSHOT=build/selftest-window.png run_frozen "$CLI" --self-test

echo "== frozen inspector-cli classify"
images=build/classify-check
rm -rf "$images"
"$PY" -c "import sys; sys.path.insert(0, 'tests'); from synth import make_dataset, CLASSES; \
make_dataset('$images/data', CLASSES, per_class=3, size=200, fmt='bmp')"
STEEL_INSPECTOR_HOME="$images/home" run_frozen "$CLI" classify "$images/data" --out "$images/results.csv" -q
"$PY" - "$images/results.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
bad = [r["path"] + ": " + r["error"] for r in rows if r["error"] or not r["label"]]
if len(rows) != 18 or bad:
    sys.exit(f"FAILED: classify wrote {len(rows)} rows (expected 18); errors: {bad}")
print(f"classify: {len(rows)} images, no errors")
EOF

mb=$(( $(du -sb dist/inspector | cut -f1) / 1000000 ))
echo "== dist/inspector: $mb MB (du -sh: $(du -sh dist/inspector | cut -f1))"
if [ "$mb" -gt "$MAX_BUNDLE_MB" ]; then
  echo "FAILED: the bundle is $mb MB, more than MAX_BUNDLE_MB=$MAX_BUNDLE_MB" >&2; exit 1
fi

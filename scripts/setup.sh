#!/usr/bin/env bash
# Set up radsynth on a fresh Debian machine: the Debian packages that hold the demo data and
# the DICOM validator, a virtual environment with the CPU build of PyTorch, and radsynth
# itself in editable mode, then the inference traces of the shipped models in the user's cache.
# Idempotent: a second run checks a stamp and that the traces are fresh (~2 s), then returns.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(mricron-data insighttoolkit5-examples invesalius-examples dicom3tools)
# `setup.sh --test` adds what the tests run for real: an Orthanc PACS with its DICOMweb plugin
# (started on loopback by the tests) and Chromium for the web page's browser tests.
if [ "${1:-}" = "--test" ]; then
  DEBIAN_PACKAGES+=(orthanc orthanc-dicomweb chromium)
fi
TORCH_VERSION=2.13.0
PYRADIOMICS_VERSION=3.0.1
VENV=.venv
STAMP="$VENV/.setup-stamp"

stamp_now=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The traces (radsynth.models.export) live in $RADSYNTH_CACHE or ~/.cache/radsynth, not in the
# package, so they are checked on every run, stamp or not: a fresh cache or new weights get
# them built (about a minute), fresh ones are skipped.
build_traces() { "$VENV/bin/python" scripts/export_models.py; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$stamp_now" ]; then
  build_traces
  exit 0
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
# The CPU build first and pinned: left to the resolver, torch comes as a multi-GB CUDA build.
"${PIP[@]}" "torch==$TORCH_VERSION"
# pyradiomics (the eval extra's radiomics features) ships only a source archive whose build
# imports numpy: build it against the environment's numpy instead of an isolated one, before
# radsynth's extras ask for it (then pip finds it installed and builds nothing).
"${PIP[@]}" setuptools wheel "numpy>=1.26"
"${PIP[@]}" --no-build-isolation "pyradiomics==$PYRADIOMICS_VERSION"
# Every extra, so `make demo` and `make test` have all of radsynth (pyproject.toml says what each holds).
"${PIP[@]}" -e ".[dev,eval,education,data,serve]"
echo "$stamp_now" > "$STAMP"
build_traces
echo "setup: ready ($VENV)"

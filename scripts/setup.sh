#!/usr/bin/env bash
# Create .venv and install mmrag with its test and server extras. Idempotent and quick when
# nothing changed (a stamp file tracks pyproject.toml).
#
# torch and torchvision come from PyPI as a matching pair. uv is used because it installs the
# multi-GB CUDA wheels in seconds and ignores pip's machine-local find-links (whose CPU-only torch
# has no matching torchvision). If uv cannot be had, pip runs with that config switched off.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
EXTRAS=${MMRAG_EXTRAS:-dev,server}
VENV=.venv
STAMP=$VENV/.mmrag-installed

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

# System tools that optional features use (the tests use them when they are there): LibreOffice
# converts Office documents to PDF, Tesseract reads text without a text layer (OCR). Best effort,
# Debian/Ubuntu as root only; MMRAG_NO_SYSTEM_PACKAGES=1 skips it.
SYSTEM_PACKAGES=""
command -v soffice >/dev/null 2>&1 \
  || SYSTEM_PACKAGES="libreoffice-writer-nogui libreoffice-impress-nogui libreoffice-calc-nogui"
command -v tesseract >/dev/null 2>&1 || SYSTEM_PACKAGES="$SYSTEM_PACKAGES tesseract-ocr"
if [ -z "${MMRAG_NO_SYSTEM_PACKAGES:-}" ] && [ -n "$SYSTEM_PACKAGES" ] \
   && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "setup: installing $SYSTEM_PACKAGES"
  # shellcheck disable=SC2086
  { apt-get install -y -qq --no-install-recommends $SYSTEM_PACKAGES >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 \
         && apt-get install -y -qq --no-install-recommends $SYSTEM_PACKAGES >/dev/null 2>&1; }; } \
    || echo "setup: could not install $SYSTEM_PACKAGES; Office documents and OCR tests are skipped"
fi

if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ] && [ "$(cat "$STAMP")" = "$EXTRAS" ]; then
  exit 0
fi

echo "setup: installing mmrag[$EXTRAS] into $VENV (first run downloads torch: a few minutes)"
if "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1 \
   && [ -x "$VENV/bin/uv" ]; then
  "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" -e ".[$EXTRAS]"
else
  echo "setup: uv unavailable, falling back to pip"
  env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null \
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]"
fi
"$VENV/bin/python" - <<'PY'
import torch, torchvision  # fail loudly here if the pair does not match
torchvision.ops.nms  # noqa: B018 - the op that a mismatched pair fails to register
print(f"setup: torch {torch.__version__}, torchvision {torchvision.__version__}")
PY
echo "$EXTRAS" > "$STAMP"

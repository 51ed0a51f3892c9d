#!/usr/bin/env bash
# Run uv, installing it first (into .local/uv-venv, from PyPI) where the machine has none.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v uv >/dev/null 2>&1; then exec uv "$@"; fi
if [ ! -x .local/uv-venv/bin/uv ]; then
  if ! python3 -c "import ensurepip" >/dev/null 2>&1; then  # Debian splits venv out
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
  fi
  python3 -m venv .local/uv-venv
  .local/uv-venv/bin/pip install -q uv
fi
exec .local/uv-venv/bin/uv "$@"

#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for tinylm-edge: the Python training stack from Debian's
# packages (no PyPI), headless Chromium for the playground test, clang + lld for the kernels, and
# the npm dependencies. Idempotent and quick when everything is there: `npm test` runs it first.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  python3-torch python3-numpy python3-onnx python3-pytest python3-pyflakes
  libopenblas0-pthread   # without it torch uses the reference BLAS and trains 15–35× slower
  chromium               # headless browser for the playground end-to-end test
  clang lld              # build the WASM SIMD kernels (CI checks the committed .wasm rebuilds byte for byte)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm ci only when node_modules is missing or older than package-lock.json.
node scripts/ensure-deps.mjs

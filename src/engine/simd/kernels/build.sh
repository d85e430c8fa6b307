#!/usr/bin/env bash
# Build the decoder kernels: C → one WebAssembly SIMD128 module, no libc, memory imported from JS.
# Debian 12's clang 14 + lld. The output is committed; CI rebuilds it and checks the bytes match.
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-../kernels.wasm}"
clang --target=wasm32 -O3 -msimd128 -mbulk-memory -nostdlib -ffreestanding -fno-builtin-memset \
  -fvisibility=hidden -g0 -ffile-prefix-map="$PWD"=. \
  -Wl,--no-entry -Wl,--export-dynamic -Wl,--import-memory -Wl,--export=__heap_base -Wl,--strip-all -Wl,-z,stack-size=65536 \
  -Wl,--initial-memory=131072 \
  -o "$out" attention.c forward.c matmul.c ops.c

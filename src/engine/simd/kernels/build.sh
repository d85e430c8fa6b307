#!/usr/bin/env bash
# Build the decoder kernels: C → one WebAssembly SIMD128 module, no libc, memory imported from JS.
# Debian 12's clang 14 + lld. The output is committed; CI rebuilds it and checks the bytes match.
#   build.sh [OUT]              → ../kernels.wasm (or OUT)
#   build.sh --profile OUT      → the same with per-stage timers (imports env.now), for npm run bench
#   build.sh --threads [OUT]    → ../kernels-threads.wasm: a shared memory, and threads.c's second
#                                 thread for the matrix products (THREADS=2 on Node)
set -euo pipefail
cd "$(dirname "$0")"
extra=()
out=../kernels.wasm
if [ "${1:-}" = "--profile" ]; then
  extra=(-DTINYLM_PROFILE -Wl,--allow-undefined)
  shift
elif [ "${1:-}" = "--threads" ]; then
  # Each thread's instance needs a stack of its own: __stack_pointer is exported for the helper to set.
  extra=(-DTINYLM_THREADS -matomics -mmutable-globals -Wl,--shared-memory -Wl,--max-memory=4294967296 -Wl,--export=__stack_pointer)
  out=../kernels-threads.wasm
  shift
fi
out="${1:-$out}"
clang --target=wasm32 -O3 -msimd128 -mbulk-memory -nostdlib -ffreestanding -fno-builtin-memset \
  -fvisibility=hidden -g0 -ffile-prefix-map="$PWD"=. "${extra[@]}" \
  -Wl,--no-entry -Wl,--export-dynamic -Wl,--import-memory -Wl,--export=__heap_base -Wl,--strip-all -Wl,-z,stack-size=65536 \
  -Wl,--initial-memory=131072 \
  -o "$out" attention.c forward.c matmul.c ops.c threads.c

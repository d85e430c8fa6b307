#!/usr/bin/env bash
# The shipped model v2 (issue 28) in ONE command on the lent GPU machine (1 GPU, PyTorch 2.x + CUDA,
# no network), with build/gpu built here and carried along (docs/ablations.md, "The shipped model v2"):
#   bash scripts/model-v2-on-gpu.sh OUT_DIR [--total-s 540] [--tokens 150e6] [--parent-tokens 8e6] [--config FILE]
# build/gpu is unpacked into build/study (skipped if that was done already), then configs/model-v2.toml
# runs: the parent, inheritance, the student. The study driver plans both arms from the logged
# training rates to end before the deadline (scaling their tokens down if need be) and stops whatever
# still runs at it; collect then brings back, before --total-s, the student's weights in bf16 (its
# final.pt, else its newest checkpoint: shipped.json says which) and every log. An arm finished by an
# earlier call is not run again.
# OUT_DIR gets 6 files: unpack.log, study.log, study.tar.xz, shipped.json, shipped.pt.part0/1 (≤ 15 MiB).
# The tests run this script at a tiny scale on the CPU (scripts/tinylm/tests/test_model_v2.py).
set -uo pipefail
usage="usage: model-v2-on-gpu.sh OUT_DIR [--total-s S] [--tokens N] [--parent-tokens N] [--config FILE]"
out=${1:?$usage}
shift
total=540 tokens=150e6 parent_tokens=8e6 config=configs/model-v2.toml
while [ $# -gt 0 ]; do
  case $1 in
    --total-s) total=$2 ;;
    --tokens) tokens=$2 ;;
    --parent-tokens) parent_tokens=$2 ;;
    --config) config=$2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift 2
done
py=${PYTHON:-python3}
collect_s=30  # kept for collect after the deadline: a tar.xz of the logs, the weights in bf16 (~28 MB)
export PYTHONUNBUFFERED=1
mkdir -p "$out"
[ -d build/gpu ] || { echo "build/gpu is missing: build it here and carry it (docs/ablations.md)" >&2; exit 1; }
$py -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")' \
    2>&1 | tee "$out/study.log"
$py -m scripts.tinylm.travel unpack build/gpu --out build/study 2>&1 | tee "$out/unpack.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
budget=$(( total - SECONDS - collect_s ))
[ "$budget" -gt 0 ] || budget=1
# The driver stops its arms at the budget itself; timeout (its whole process group) is for a driver that hangs.
timeout -k 5 $(( budget + 10 )) $py -m scripts.tinylm.study run "$config" --budget-s "$budget" \
    --tokens parent="$parent_tokens" inherit-taylor="$tokens" --no-zero-shot 2>&1 | tee -a "$out/study.log"
left=$(( total - SECONDS ))
timeout -k 2 $(( left > 5 ? left : 5 )) $py -m scripts.tinylm.study collect "$config" "$out" 2>&1 | tee -a "$out/study.log"
status=${PIPESTATUS[0]}
echo "model-v2-on-gpu: ${SECONDS} s" | tee -a "$out/study.log"
[ -f "$out/shipped.json" ] && [ "$status" -eq 0 ]

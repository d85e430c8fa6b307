#!/usr/bin/env bash
# The GPU run behind docs/ablations.md and model/ (one command on the lent H100/H200):
#   bash scripts/study-on-gpu.sh OUT_DIR [TOTAL_S [study run options...]]
# Needs build/gpu (here: /usr/bin/python3 -m scripts.tinylm.travel pack) and python3 with torch ≥ 2 + CUDA.
# Writes to OUT_DIR: unpack.log, study.log, study.tar.xz (results, configs, logs, plots) and the
# shipped arm's final.pt (weights in bf16) in 15 MiB parts. Back on the CPU, score them on all the
# held-out text and the zero-shot tasks (pass --no-zero-shot here to keep the GPU on training):
#   /usr/bin/python3 -m scripts.tinylm.study score OUT_DIR --data ... --tokenizer ... --tasks ...
set -uo pipefail
out=${1:?usage: study-on-gpu.sh OUT_DIR [TOTAL_S]}
total=${2:-570}
shift $(( $# < 2 ? $# : 2 ))
export PYTHONUNBUFFERED=1
mkdir -p "$out"
nvidia-smi -L
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
python3 -m scripts.tinylm.travel unpack build/gpu --out build/study 2>&1 | tee "$out/unpack.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
budget=$(( total - SECONDS - 40 ))  # leave time for the report and collecting the results
python3 -m scripts.tinylm.study run configs/study.toml --budget-s "$budget" "$@" 2>&1 | tee "$out/study.log"
python3 -m scripts.tinylm.study report configs/study.toml --plots runs/study/plots > runs/study/report.md 2>&1
python3 -m scripts.tinylm.study collect configs/study.toml "$out"
cat runs/study/report.md

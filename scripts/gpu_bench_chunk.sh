#!/usr/bin/env bash
# Advance the GPU bench (`csl_nb bench --device cuda`, BENCH_GPU) by one chunk on a GPU that is at hand for a few minutes.
# Runs already kept in REPORT/logs are skipped; JOBS runs train at once and a run starts only if it should end within MINUTES;
# each finished run is kept in REPORT/logs. REPORT (logs and the partial report) is packed into $OUT/bench-gpu.tar.gz.
# Back on your machine: `tar -xzf bench-gpu.tar.gz` in the repo root, then
# `csl_nb bench --device cuda --from-logs --report nbs/results/bench-gpu --set progress=false workers=0 channels_last=true`.
# Usage: [OUT=folder] scripts/gpu_bench_chunk.sh [seconds for all of it, default 520] [jobs, default 8]
set -u
out=${OUT:-gpu-bench}; seconds=${1:-520}; jobs=${2:-8}; report=nbs/results/bench-gpu
minutes=$(python3 -c "print(round(($seconds - 30) / 60, 1))")   # 30 s for the report and the packing
mkdir -p "$out" "$report"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 CSL_NB_CACHE=${CSL_NB_CACHE:-/tmp/csl-nb-cache}
trap 'tar -czf "$out/bench-gpu.tar.gz" "$report"' EXIT
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
  echo "CPU cores: $(nproc); jobs: $jobs; minutes: $minutes"; } 2>&1 | tee "$report/chunk-env.txt"
timeout "$seconds" python3 -m csl_nb.cli bench --device cuda --jobs "$jobs" --minutes "$minutes" --out /tmp/bench-gpu-runs \
  --report "$report" --set progress=false workers=0 channels_last=true 2>&1 | tee "$out/bench.log"
echo "bench exit status ${PIPESTATUS[0]}; runs kept: $(find "$report/logs" -name log.jsonl 2>/dev/null | wc -l)"

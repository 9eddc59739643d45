#!/usr/bin/env bash
# The GPU checks in one run on one GPU (about 9 minutes on an H200): the selector's speed against its reference, full-size
# training steps of the paper configs in fp32 and bf16, and `csl_nb regime --device cuda` (the GPU candidates, 12 runs at once).
# Everything lands in $OUT/gpu-check.tar.gz (default OUT: gpu-check). Usage: [OUT=folder] scripts/gpu_check.sh [seconds for all of it, default 560]
set -u
out=${OUT:-gpu-check}; work=${WORK:-/tmp/gpu-check}; total=${1:-560}; started=$(date +%s)
mkdir -p "$out" "$work/report"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 CSL_NB_CACHE="$work/cache"
stamp() { echo "[$(date +%T)] $*"; }
pack() {
  stamp "packing"
  (cd "$work" && find runs -name log.jsonl -o -name config.yaml 2>/dev/null | tar -czf report/run-logs.tar.gz -T - 2>/dev/null)
  tar -czf "$out/gpu-check.tar.gz" -C "$work" report
}
trap pack EXIT
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, torch.cuda.get_device_name())"
  echo "CPU cores: $(nproc)"; } 2>&1 | tee "$work/report/env.txt"

stamp "smoke: 3 steps of each method on the GPU (stops here if one fails)"
for method in csl unimatch threshold supervised; do
  python3 -m csl_nb.cli train --config embedded --method $method --out "$work/smoke/$method" --set device=cuda epochs=1 \
    iters_per_epoch=3 embedded.unlabeled=16 embedded.val=16 progress=false channels_last=true > "$work/report/smoke-$method.log" 2>&1 \
    || { echo "smoke $method failed:"; tail -25 "$work/report/smoke-$method.log"; exit 1; }
  tail -1 "$work/report/smoke-$method.log" | cut -c1-200
done

stamp "generating the GPU candidates' data sets in the background"
python3 - > "$work/report/data.log" 2>&1 <<'PY' &
from concurrent.futures import ProcessPoolExecutor
from csl_nb.embedded import EmbeddedSpec, embedded_benchmark
specs = [EmbeddedSpec(labeled=l, unlabeled=u, classes="groups") for l, u in [(60, 1000), (3000, 1000), (30, 1000), (60, 3000), (3000, 3000)]]
with ProcessPoolExecutor(len(specs)) as pool: print(list(pool.map(embedded_benchmark, specs, [None] * len(specs), [False] * len(specs))))
PY
data=$!

stamp "selector speed (cuda)"
timeout 90 python3 -m csl_nb.speed selector --devices cuda --repeats 5 --out "$work/report/speed" 2>&1 | tail -8
for amp in none bf16; do
  stamp "full-size steps, amp $amp"
  timeout 80 python3 -m csl_nb.speed memory --full-steps 4 --amp $amp --out "$work/report/steps-$amp" 2>&1 | tail -6
done

wait $data; regime_seconds=$((total - ($(date +%s) - started) - 15)); stamp "data sets ready"; tail -1 "$work/report/data.log" | cut -c1-300
stamp "regime on the GPU candidates, 12 runs at once, ${regime_seconds}s at most"
OMP_NUM_THREADS=1 timeout "$regime_seconds" python3 -m csl_nb.cli regime --device cuda --jobs 12 --out "$work/runs" \
  --report "$work/report/regime" --set progress=false workers=0 channels_last=true > "$work/report/regime.log" 2>&1
echo "regime exit status $?"; tail -15 "$work/report/regime.log"
stamp "done"

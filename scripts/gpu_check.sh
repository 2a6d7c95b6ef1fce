#!/usr/bin/env bash
# One-shot GPU check for the inference backends (issue 5). Run from the repository root on a CUDA machine:
#     OUT=/some/dir bash scripts/gpu_check.sh
# Writes into $OUT: env.txt (GPU, versions), gpu_tests.txt (CUDA test subset), parity.json (fp32 vs fp16/bf16),
# bench.json + bench.txt (streamfill bench at 256/384/512), and summary.txt. Every step runs even if an
# earlier one fails; the exit status is non-zero if any step failed. Engines are cached under $OUT/cache
# unless STREAMFILL_CACHE is set. Uses random generator weights (speed and parity do not depend on them).
set -u
OUT="${OUT:-./gpu_check_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export STREAMFILL_CACHE="${STREAMFILL_CACHE:-$OUT/cache}"
STEP_TIMEOUT="${STEP_TIMEOUT:-240}"
status=0
step() {  # step NAME CMD... : run with a timeout, log its exit status
    local name="$1"; shift
    local t0=$SECONDS
    timeout "$STEP_TIMEOUT" "$@"
    local rc=$?
    echo "$name: rc=$rc, $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
    [ "$rc" -eq 0 ] || status=1
}
: > "$OUT/summary.txt"

{
    nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv 2>&1
    "$PY" - <<'PY'
import importlib.metadata as m, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0))
for p in ("onnxruntime", "onnxruntime-gpu", "torch-tensorrt", "tensorrt", "triton", "av", "opencv-python-headless",
          "safetensors", "numpy"):
    try:
        print(p, m.version(p))
    except m.PackageNotFoundError:
        print(p, "absent")
PY
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# 1. CUDA test subset (strict: fails without a GPU), including the slow compile/TensorRT tests.
step gpu_tests env STREAMFILL_GPU_TESTS=1 "$PY" -m pytest -m gpu tests/test_backends_gpu.py -q -rA -s \
    > "$OUT/gpu_tests.txt" 2>&1

# 2. fp32 vs fp16/bf16 parity of the official-width generator at 256/512 (no NaN, mean abs diff stated).
step parity "$PY" - > "$OUT/parity.json" 2> "$OUT/parity.err" <<'PY'
import json, numpy as np, torch
from streamfill.backends.neural import DTYPES, InpaintGraph, TorchExecutor
from streamfill.eval.bench import sample_crops
from streamfill.model import Generator, ModelConfig
torch.manual_seed(0)
graph = InpaintGraph(Generator(ModelConfig()).eval().cuda()).eval()
rows = []
for size in (256, 512):
    images, masks = sample_crops(size, 4)
    ref = TorchExecutor("cuda", torch.float32).run(graph, images, masks, as_float=True)
    for prec in ("fp16", "bf16"):
        got = TorchExecutor("cuda", DTYPES[prec], autocast=True, channels_last=True).run(
            graph, images, masks, as_float=True)
        d = np.abs(got - ref)
        rows.append({"size": size, "precision": prec, "nan_or_inf": int((~np.isfinite(got)).sum()),
                     "mean_abs_diff": float(np.nanmean(d)), "max_abs_diff": float(np.nanmax(d))})
print(json.dumps(rows, indent=1))
PY
cat "$OUT/parity.json"

# 3. torch.compile (CUDA graphs) built ahead of time through `streamfill compile` (random weights file).
"$PY" -c "import torch; from streamfill.model import Generator, ModelConfig, save_generator; torch.manual_seed(0); \
save_generator(Generator(ModelConfig()), '$OUT/random.safetensors', {'note': 'random, gpu_check only'})"
step compile "$PY" -m streamfill compile --engine compile --size 256 --precision fp16 --max-batch 4 \
    --weights "$OUT/random.safetensors" > "$OUT/compile.txt" 2>&1

# 4. streamfill bench at 256/384/512, batch 1 and 4: every available GPU backend, eager fp32 as baseline.
ENGINES=(--engine torch --engine compile)
"$PY" -c "import torch_tensorrt" 2>/dev/null && ENGINES+=(--engine tensorrt)
step bench_fp16 "$PY" -m streamfill bench --random-weights "${ENGINES[@]}" --precision fp16 \
    --size 256 --size 384 --size 512 --batch 1 --batch 4 --runs 20 --warmup 3 --frames 50 --json \
    > "$OUT/bench.json" 2> "$OUT/bench.err"
step bench_fp32 "$PY" -m streamfill bench --random-weights --engine torch --precision fp32 \
    --size 256 --size 384 --size 512 --batch 1 --runs 20 --warmup 3 --no-clip > "$OUT/bench_fp32.txt" 2>&1
cat "$OUT/summary.txt"
exit $status

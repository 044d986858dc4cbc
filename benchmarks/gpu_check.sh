#!/usr/bin/env bash
# One run on a GPU machine: device facts, the kernel tests on the device, the
# GPU/CPU agreement and determinism check, then the benchmark (docs/gpu.md).
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh
#
# Run from anywhere; about 6 minutes (10 at most: every step has a timeout). Results
# go to $OUT (default ./gpu_check_out), 10 files at most:
#   summary.txt      device, versions, every step's status and time, the tables
#   tests_tpb8.txt   tests/cuda_sim on the device, 8 threads per block, 3 slots
#   tests_device.txt tests/cuda_sim/test_gpu_device.py at the default block size
#   check.json/.txt  python -m benchmarks.gpu --check (float64, every mode)
#   gpu.json         python -m benchmarks.gpu (the figures for docs/gpu.md)
#   bench.txt        its log and table
#   regcap.json      full batch / batch 4096 without the register cap (an experiment)
#   gpu_grid.json/.txt python -m benchmarks.gpu_grid (the grid search on the GPU)
# Each step runs under its own timeout and may fail without stopping the others.
# GPU_ONLY=1 (a second run on the same kind of machine): leave out the CPU and PyTorch
# contenders, the CPU kernel warm-up and the register experiment, with shorter step
# limits (about 5 minutes).
# PYTHONPATH may already hold a site folder (e.g. a NumPy wheel numba-cuda can use);
# the repository root is added to it.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/gpu_check_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$ROOT"
export PYTHONUNBUFFERED=1
START=$(date +%s)
GPU_ONLY="${GPU_ONLY:-0}"
if [ "$GPU_ONLY" = 1 ]; then
    T_TESTS=90; T_CHECK=50; T_BENCH=140; T_EXTRA=0; BENCH_ARGS="--skip-cpu --skip-torch"
    T_GRID=90; GRID_ARGS="--skip-cpu"
else
    T_TESTS=130; T_CHECK=80; T_BENCH=190; T_EXTRA=330; BENCH_ARGS=""
    T_GRID=150; GRID_ARGS=""
fi
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo $(( $(date +%s) - START )); }

# numba-cuda 0.30 does not import with NumPy 2.5 (np.row_stack is gone): use a NumPy
# wheel carried in .whl/ when the one installed fails
if ! "$PY" -c "import numba.cuda" >/dev/null 2>&1 && ls "$ROOT"/.whl/numpy-*.whl >/dev/null 2>&1; then
    say "numba.cuda fails to import: installing $(ls "$ROOT"/.whl/numpy-*.whl) to /tmp/site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$ROOT"/.whl/numpy-*.whl
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi

step() {  # step NAME SECONDS LOGFILE COMMAND...: run, record status and time
    local name=$1 limit=$2 log=$3
    shift 3
    local t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
    local rc=$?
    say "== step $name: exit $rc$([ $rc -eq 124 ] && echo ' (TIMEOUT)') in $(( $(date +%s) - t0 )) s (at $(elapsed) s)"
    return $rc
}

say "== (a) device and versions ($(date -u +%FT%TZ))"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1
  nvidia-smi 2>&1 | head -20
  echo "cores: $(nproc)"
  "$PY" - <<'PYEOF' 2>&1
import importlib, platform
print("python", platform.python_version())
for mod in ("numpy", "numba", "numba_cuda", "scipy", "sklearn", "torch", "cupy"):
    try:
        m = importlib.import_module(mod)
        print(mod, getattr(m, "__version__", "?"))
    except Exception as exc:
        print(mod, "unavailable:", type(exc).__name__, exc)
try:
    from numba import cuda
    dev = cuda.get_current_device()
    print("device", dev.name, "cc", dev.compute_capability,
          "SMs", dev.MULTIPROCESSOR_COUNT)
    from numba.cuda.cudadrv.libs import get_cudalib
    print("cudadevrt (grid sync link):", get_cudalib("cudadevrt", static=True))
except Exception as exc:
    print("numba.cuda:", type(exc).__name__, exc)
PYEOF
} >> "$SUMMARY" 2>&1
cat "$SUMMARY"

# CPU kernels for the benchmark's float32 fits, compiled into Numba's cache meanwhile
WARMUP=""
if [ "$GPU_ONLY" != 1 ]; then
    timeout 240 "$PY" -c "import fastgd; fastgd.warmup(dtypes=('float32',), sparse=False, fortran=False)" \
        > /dev/null 2>&1 &
    WARMUP=$!
fi

say "== (b) kernel tests on the device (two runs side by side)"
step tests_tpb8 "$T_TESTS" "$OUT/tests_tpb8.txt" env FASTGD_TEST_REAL_GPU=1 FASTGD_CUDA_TPB=8 \
    FASTGD_CUDA_MAX_BLOCKS=3 "$PY" -m pytest tests/cuda_sim -q -n 0 -p no:cacheprovider -rfEs \
    --ignore=tests/cuda_sim/test_gpu_device.py &
B1=$!
step tests_device "$T_TESTS" "$OUT/tests_device.txt" env FASTGD_TEST_REAL_GPU=1 \
    "$PY" -m pytest tests/cuda_sim/test_gpu_device.py -q -n 0 -p no:cacheprovider -rfEs -s &
B2=$!
wait $B1; wait $B2
tail -n 4 "$OUT/tests_tpb8.txt" "$OUT/tests_device.txt" | tee -a "$SUMMARY"

say "== (d) GPU/CPU agreement (float64) and determinism"
step check "$T_CHECK" "$OUT/check.txt" "$PY" -m benchmarks.gpu --check --out "$OUT/check.json"
grep -E "check|summary" "$OUT/check.txt" | tail -n 20 | tee -a "$SUMMARY"

[ -n "$WARMUP" ] && wait $WARMUP
say "== (c) benchmark (1M x 100 and 4M x 100 float32)"
# shellcheck disable=SC2086
step benchmark "$T_BENCH" "$OUT/bench.txt" "$PY" -m benchmarks.gpu $BENCH_ARGS --out "$OUT/gpu.json"

if [ "$(elapsed)" -lt "$T_EXTRA" ]; then
    say "== (e) experiment: no register cap (FASTGD_CUDA_MAX_REGISTERS=0), 4M x 100"
    step regcap 45 "$OUT/regcap.txt.tmp" env FASTGD_CUDA_MAX_REGISTERS=0 "$PY" -m benchmarks.gpu \
        --sizes 4000000x100 --batches full,4096 --modes step,cooperative --skip-cpu \
        --skip-torch --out "$OUT/regcap.json"
    grep "fastgd GPU" "$OUT/regcap.txt.tmp" | tee -a "$SUMMARY"
    rm -f "$OUT/regcap.txt.tmp"
else
    say "== (e) skipped (time)"
fi

say "== (f) grid search on the GPU (1M x 100 float64, 32 candidates x (3 + 1))"
# shellcheck disable=SC2086
step gpu_grid "$T_GRID" "$OUT/gpu_grid.txt" "$PY" -m benchmarks.gpu_grid $GRID_ARGS \
    --out "$OUT/gpu_grid.json"
tail -n 8 "$OUT/gpu_grid.txt" | tee -a "$SUMMARY"

say "== done in $(elapsed) s; benchmark table (from gpu.json, also if it was cut short):"
"$PY" -m benchmarks.gpu --render "$OUT/gpu.json" 2>&1 | tee -a "$SUMMARY"

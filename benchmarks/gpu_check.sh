#!/usr/bin/env bash
# One run on a CUDA machine, from the repository root, gdlab not installed:
#   OUT=/some/empty/dir bash benchmarks/gpu_check.sh
# 1. the machine (nvidia-smi, Python, torch, Triton, a C compiler for Triton) and that
#    `import gdlab` pulls in neither optuna nor vega_datasets   -> $OUT/env.txt
# 2. tests/test_cuda.py (fused == reference on CUDA, fit CUDA == CPU, tune's CUDA memory
#    check and out-of-memory)                                   -> $OUT/pytest_cuda.txt
# 3. benchmarks/step.py --device cuda: Adam, Momentum, RMSProp at 128M parameters and
#    ResNet-50's shapes against torch, share of the copy bandwidth, compile cost
#                                                               -> $OUT/step_cuda.md
# 4. benchmarks/gpu_tune.py: `gdlab tune batch-size`'s CUDA memory check (issue #7)
#                                                               -> $OUT/tune_cuda.txt, .json
# Each part has its own time limit; one that fails or hangs does not stop the others.
# 5. gdlab sweep --device cuda (vectorized grid on the GPU)    -> $OUT/sweep_cuda.txt
# $OUT/summary.txt: each part's exit status and seconds. About 3-4 minutes on an H100; at
# most 45 + 140 + 110 + 60 s (the parts' limits) and a few seconds more.
set -uo pipefail
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
OUT=${OUT:-$(mktemp -d)}
export PY=${PYTHON:-python3}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
START=$SECONDS

# part NAME LIMIT_S LOG COMMAND...: run COMMAND under `timeout`, output to the console and LOG
part() {
    local name=$1 limit=$2 log=$3 start=$SECONDS rc
    shift 3
    echo
    echo "=================== $name (limit ${limit} s) ==================="
    timeout -k 15 "$limit" "$@" 2>&1 | tee -a "$log"
    rc=$?
    [ "$rc" = 124 ] && echo "!!! $name: timed out after $limit s" | tee -a "$log"
    echo "$name: exit $rc, $((SECONDS - start)) s" | tee -a "$SUMMARY"
}

env_info() {
    nvidia-smi -L
    nvidia-smi --query-gpu=name,memory.total,memory.used,clocks.max.memory,driver_version \
        --format=csv
    echo "nproc: $(nproc)"
    for cc in gcc cc clang; do echo "$cc: $(command -v $cc || echo missing)"; done
    "$PY" - <<'EOF'
import platform, sys
import torch
print(f"python {platform.python_version()} ({sys.executable})")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
      f"{torch.backends.cudnn.version()}, cuda available: {torch.cuda.is_available()}")
try:
    import triton
    print(f"triton {triton.__version__}")
except ImportError as error:
    print(f"triton: {error}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device 0: {p.name}, {p.total_memory / 2**30:.1f} GiB, {p.multi_processor_count} SMs, "
          f"capability {p.major}.{p.minor}")
import gdlab, gdlab.cli, gdlab.cli.tune, gdlab.lab.tune  # noqa: E401,F401
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"optuna", "vega_datasets",
                                                         "sqlalchemy", "alembic", "pandas"})
print(f"gdlab {gdlab.__version__} from {gdlab.__file__}; eagerly imported optional "
      f"packages: {heavy or 'none'}")
import os, sysconfig, time
header = os.path.join(sysconfig.get_paths()["include"], "Python.h")
print(f"Python.h (Triton builds its launcher with it): {os.path.exists(header)} ({header})")
if torch.cuda.is_available():  # does torch.compile reach Triton here? (and warms its cache)
    start = time.perf_counter()
    try:
        y = torch.compile(lambda x: x * 2 + 1, fullgraph=True)(torch.ones(4, device="cuda"))
        torch.cuda.synchronize()
        print(f"torch.compile on cuda: works ({time.perf_counter() - start:.1f} s), {y.tolist()}")
    except Exception as error:
        print(f"torch.compile on cuda: FAILS: {type(error).__name__}: "
              f"{' '.join(str(error).split())[:1500]}")
EOF
}

export -f env_info
part "1. machine" 45 "$OUT/env.txt" bash -c env_info
part "2. tests/test_cuda.py" 140 "$OUT/pytest_cuda.txt" \
    "$PY" -m pytest tests/test_cuda.py -v -rA --durations=8 -p no:cacheprovider
part "3. benchmarks/step.py --device cuda" 110 "$OUT/step_cuda.md" \
    "$PY" benchmarks/step.py --device cuda
part "4. benchmarks/gpu_tune.py" 60 "$OUT/tune_cuda.txt" \
    "$PY" benchmarks/gpu_tune.py --json "$OUT/tune_cuda.json"
part "5. gdlab sweep --device cuda" 60 "$OUT/sweep_cuda.txt" \
    "$PY" -m gdlab.cli sweep --device cuda --layers 2,5,2,1 --method grid --lr 1e-3:1e-1 \
    --beta1 0.8,0.9 --batch-size 32,64 --epochs 5 --out /tmp/gdlab-sweep-cuda

echo
echo "=================== key results ==================="
grep -E '^(GPU |name|NVIDIA|python|torch|triton|device 0|gdlab|gcc|cc|Python.h|!!!)' \
    "$OUT/env.txt"
echo
grep -E '^(=+ .* =+|[0-9]+ (passed|failed|skipped|error)|FAILED|ERROR|SKIPPED)' \
    "$OUT/pytest_cuda.txt" | tail -25
echo
grep -E '^(#|\||Memory|First|Timing|Shares|!!!|Traceback|[A-Za-z.]*Error|.*error:)' \
    "$OUT/step_cuda.md"
echo
grep -E '^(#|\||rank|---|  +[0-9—]|skipped|budget|first pass|NOTE|!!!|torch\.cuda)' \
    "$OUT/tune_cuda.txt"
grep -E '(Error|error:)' "$OUT/tune_cuda.txt" | tail -5
echo
tail -4 "$OUT/sweep_cuda.txt"
echo
echo "total: $((SECONDS - START)) s"
cat "$SUMMARY"
ls -la "$OUT"

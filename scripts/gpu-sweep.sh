#!/usr/bin/env bash
# Times the CUDA convolution tiles under forced plans, for deciding the backend's tiling rule
# (`plan` in crates/cuda/src/backend.rs) on a lent GPU machine. Run after scripts/gpu-build.sh,
# with the device tool: command `bash scripts/gpu-sweep.sh`, carry [".gpu-bin"], timeout_s 600
# (about 5 minutes with the default plans).
#
# First the CUDA backend tests under each forced plan (they run the tile and split-K
# combinations the tests' small shapes do not reach by default), then, for each plan, the
# batch-32 convolutions of benches/kernels.rs (ResNet-50's 3×3 and 1×1 layers, forward and
# backward-data; f32 unless GPU_SWEEP_FILTER says otherwise). Logs go to
# ${GPU_SWEEP_LOGS:-/tmp/gradcam-gpu-sweep} (sweep-tests.log, sweep-kernels.log), and where $OUT
# is set into one archive, $OUT/gpu-sweep.tgz; the exit status is non-zero when a test or a
# bench failed, and the last line names the plans that did.
# Knobs: GPU_SWEEP_PLANS (default "auto 128:0 128:2 128:4 128:8 64:2": `auto` is the backend's
# own plan; TILE:SLICES forces the tile size, 64 or 128 — 128 only where a GEMM has more than
# 64 rows — and, unless SLICES is 0, the number of depth slices), GPU_SWEEP_FILTER (criterion
# filter), GPU_SWEEP_TEST_PLANS (the plans the backend tests run under; default all of them,
# "" for none).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/gpu-env.sh
out="${GPU_SWEEP_LOGS:-/tmp/gradcam-gpu-sweep}"
mkdir -p "$out"
: >"$out/sweep-tests.log"
: >"$out/sweep-kernels.log"
export GRADCAM_REQUIRE_CUDA=1
plans="${GPU_SWEEP_PLANS:-auto 128:0 128:2 128:4 128:8 64:2}"
filter="${GPU_SWEEP_FILTER:-cuda:[^(]*/conv.*b32 (forward|backward-data)\$}"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader |
  tee "$out/sweep-machine.txt"
status=0
failed=""
valid=""
for v in $plans; do
  case "$v" in
    auto | 64:[0-9]* | 128:[0-9]*) valid="$valid $v" ;;
    *) echo "bad plan '$v' (auto, 64:N or 128:N)"; status=1; failed="$failed $v" ;;
  esac
done
env_of() { # tile:slices → the variables that force it (none for auto)
  [ "$1" = auto ] && return 0
  echo "GRADCAM_CUDA_TILE=${1%:*}"
  [ "${1#*:}" = 0 ] || echo "GRADCAM_CUDA_SPLITS=${1#*:}"
}
test_plans=""
for v in ${GPU_SWEEP_TEST_PLANS-$valid}; do
  case " $valid " in
    *" $v "*) test_plans="$test_plans $v" ;;
    *) echo "test plan '$v' is not among the plans ($valid)"; status=1; failed="$failed tests:$v" ;;
  esac
done
for v in $test_plans; do
  echo "== CUDA backend tests, plan $v: $(env_of "$v" | tr '\n' ' ')" | tee -a "$out/sweep-tests.log"
  env $(env_of "$v") timeout 120 "$bin/backends" --test-threads 1 cuda 2>&1 |
    tee -a "$out/sweep-tests.log" | grep -E "test result|FAILED|panicked" ||
    { status=1; failed="$failed tests:$v"; }
done
for v in $valid; do
  echo "== kernels, plan $v: $(env_of "$v" | tr '\n' ' ')" | tee -a "$out/sweep-kernels.log"
  env $(env_of "$v") timeout 120 "$bin/kernels" --bench --noplot --warm-up-time 0.3 \
    --measurement-time 0.7 "$filter" 2>&1 | tee -a "$out/sweep-kernels.log" |
    grep -E "^kernels|time:" | grep -v "%" | paste - - | sed 's/  */ /g; s/kernels\/cuda:[^/]*\///' ||
    { status=1; failed="$failed kernels:$v"; }
done
if [ -n "${OUT:-}" ] && [ "$OUT" != "$out" ]; then
  tar czf "$OUT/gpu-sweep.tgz" -C "$out" . && echo "logs: \$OUT/gpu-sweep.tgz"
fi
echo "failed plans:${failed:- none}"
exit $status

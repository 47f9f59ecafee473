#!/usr/bin/env bash
# Times the CUDA convolution tiles under forced plans, for deciding the backend's tiling rule
# (`plan` in crates/cuda/src/backend.rs) on a lent GPU machine. Run after scripts/gpu-build.sh,
# like scripts/gpu-check.sh (same carry: [".gpu-bin", ".gl", ".whl"]); a few minutes.
#
# First the CUDA backend tests with each forced plan (what runs the tile and split-K
# combinations the tests' small shapes do not reach by default), then, for each plan, the
# batch-32 convolutions of benches/kernels.rs (ResNet-50's 3×3 and 1×1 layers, forward and
# backward-data, f32 unless GPU_SWEEP_FILTER says otherwise). Logs go to ${OUT:-/tmp/gradcam-gpu}.
# Knobs: GPU_SWEEP_PLANS (default "auto 64:0 128:0 128:2 128:4 128:6 128:8 64:2 64:4": `auto` is
# the backend's own plan, TILE:SLICES forces the tile size and, unless SLICES is 0, the number
# of depth slices), GPU_SWEEP_FILTER (criterion filter).
set -uo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
out="${OUT:-/tmp/gradcam-gpu}"
mkdir -p "$out"
bin="$root/.gpu-bin"
# (Only where /work/main is not a real folder: run elsewhere, ln would put a link inside it.)
if [ "$root" != /work/main ] && { [ -L /work/main ] || [ ! -e /work/main ]; }; then
  mkdir -p /work && ln -sfn "$root" /work/main
fi
export GRADCAM_REQUIRE_CUDA=1
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
  /usr/local/cuda-13.0/targets/x86_64-linux/lib; do
  [ -e "$d/libnvrtc.so.13" ] || [ -e "$d/libnvrtc.so" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}" && break
done
plans="${GPU_SWEEP_PLANS:-auto 64:0 128:0 128:2 128:4 128:6 128:8 64:2 64:4}"
filter="${GPU_SWEEP_FILTER:-cuda:[^(]*/conv.*b32 (forward|backward-data)\$}"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$out/sweep-machine.txt"
status=0
env_of() { # tile:slices → the variables that force it (none for auto)
  [ "$1" = auto ] && return 0
  local t=${1%:*} s=${1#*:}
  echo "GRADCAM_CUDA_TILE=$t"
  [ "$s" = 0 ] || echo "GRADCAM_CUDA_SPLITS=$s"
}
for v in $plans; do
  echo "== CUDA backend tests, plan $v: $(env_of "$v" | tr '\n' ' ')"
  env $(env_of "$v") timeout 120 "$bin/backends" --test-threads 1 cuda 2>&1 |
    tee "$out/sweep-test-$v.log" | grep -E "test result|FAILED|panicked" || status=1
done
for v in $plans; do
  echo "== kernels, plan $v: $(env_of "$v" | tr '\n' ' ')"
  env $(env_of "$v") timeout 120 "$bin/kernels" --bench --noplot --warm-up-time 0.3 \
    --measurement-time 0.7 "$filter" 2>&1 | tee "$out/sweep-kernels-$v.log" |
    grep -E "^kernels|time:" | grep -v "%" | paste - - | sed 's/  */ /g; s/kernels\///'
done
exit $status

#!/usr/bin/env bash
# The one GPU script: on a machine with a GPU (the device tool's lent H100/H200), in one call,
# build, check every backend's kernels against the CPU backend on the GPU, run the fixtures on
# it, and time the kernels and end-to-end explanations. Prints a short report and writes the
# logs to ${OUT:-/tmp/gradcam-gpu}. Record card, date and figures in docs/PERFORMANCE.md.
#
# Vulkan on the lent machines: per the device README, carry `.gl` (Debian's libvulkan1 and GL
# packages, downloaded once on the dev machine) and this script unpacks them before running.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/gradcam-gpu}"
mkdir -p "$out"
if compgen -G ".gl/*.deb" >/dev/null; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export WGPU_BACKEND=vulkan GRADCAM_REQUIRE_WGPU=1 XDG_RUNTIME_DIR=/tmp
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
date -u +%Y-%m-%dT%H:%MZ | tee -a "$out/gpu.txt"

status=0
echo "== build (release)"
cargo build --release --workspace --all-targets 2>&1 | tail -3 || status=1
echo "== every primitive on the GPU against the CPU backend, and the fixtures"
cargo test --release --test backends --test fixtures_library 2>&1 | tee "$out/tests.log" | grep -E "test result|FAILED|panicked|adapter" || status=1
echo "== kernel and end-to-end timings (criterion, 10 samples)"
cargo bench --bench kernels -- --noplot 2>&1 | tee "$out/kernels.log" | grep -E "^kernels|time:|thrpt:" | paste - - - | sed 's/  */ /g'
cargo bench --bench explain -- --noplot 2>&1 | tee "$out/explain.log" | grep -E "^resnet50|time:|thrpt:" | paste - - - | sed 's/  */ /g'
if python3 -c "import torch, pytorch_grad_cam" 2>/dev/null; then
  echo "== agreement with PyTorch + pytorch-grad-cam (resnet50)"
  python3 scripts/compare_pytorch.py --arch resnet50 --gradcam target/release/gradcam | tee "$out/pytorch.log" || status=1
fi
exit $status

#!/usr/bin/env bash
# Where an explanation's time goes on a lent GPU: `gradcam bench --profile` on resnet50 (the
# forward and the guided backward op by op, each op followed by a device wait) at batch 1 and
# 32, on CUDA in f32 and TF32; then, where the machine has Nsight Systems, its per-kernel
# summary of batch-1 and batch-32 Guided Grad-CAM (launch gaps included). Needs only
# `.gpu-bin/gradcam` (scripts/gpu-build.sh). Output in ${OUT:-/tmp/gradcam-gpu}.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/gpu-env.sh
out="${OUT:-/tmp/gradcam-gpu}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/machine.txt"
for b in ${GPU_PROFILE_BACKENDS:-cuda cuda-tf32}; do
  for n in 1 32; do
    timeout 120 "$bin/gradcam" bench --arch resnet50 --backend "$b" --batch "$n" --reps 10 \
      --method forward,gradcam,guided-backprop,guided-gradcam --profile 2>&1 | tee -a "$out/profile.txt"
  done
done
nsys=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
if [ -n "$nsys" ]; then
  for n in 1 32; do
    timeout 120 "$nsys" profile -o "$out/guided-b$n" --force-overwrite true \
      "$bin/gradcam" bench --arch resnet50 --backend cuda --batch "$n" --reps 5 --method guided-gradcam >/dev/null 2>&1
    timeout 60 "$nsys" stats -q --report cuda_gpu_kern_sum --format csv "$out/guided-b$n.nsys-rep" \
      >"$out/kernels-b$n.csv" 2>/dev/null && head -25 "$out/kernels-b$n.csv" | cut -c1-200
    rm -f "$out/guided-b$n.nsys-rep" "$out/guided-b$n.sqlite"
  done
else
  echo "no nsys on this machine"
fi

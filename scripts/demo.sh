#!/usr/bin/env bash
# The main job on the bundled model: Grad-CAM and Guided Grad-CAM of a small ResNet (the
# mini_resnet reference case) on its reference input, pictures and tensors in out/.
set -euo pipefail
cd "$(dirname "$0")/.."
case_dir=tests/data/fixtures/mini_resnet
cargo run --release -q -p gradcam-cli -- explain --arch resnet \
  --weights "$case_dir/weights.safetensors" --input "$case_dir/reference.safetensors:input" \
  --method gradcam,guided-gradcam --out out/ --save-tensors out/explanation.safetensors
echo "pictures: $(pwd)/out/*.png"

#!/usr/bin/env bash
# The README's first command on a fresh machine, the evaluation's small run, and the demo
# model's reproducibility: runs scripts/demo.sh and `gradcam eval --quick`, then retrains the
# demo model from its seed with `gradcam train-demo` and checks the result is the committed
# weights file, byte for byte. Used by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/demo.sh
test -s demo-out/summary.json
ls demo-out/*.panel.png
# The paper's measurements, small (the full run regenerates docs/EVALUATION.md).
quick="$(mktemp -d)"
./target/release/gradcam eval --quick --out "$quick"
test -s "$quick/EVALUATION.md" && ls "$quick"/eval/*.csv "$quick"/eval/*.png
retrained="$(mktemp -d)/demo.safetensors"
./target/release/gradcam train-demo --threads 2 --eval-scenes 200 --out "$retrained"
if cmp "$retrained" crates/demo/weights/demo.safetensors; then
  echo "train-demo reproduced crates/demo/weights/demo.safetensors bit for bit"
else
  echo "train-demo did not reproduce crates/demo/weights/demo.safetensors" >&2
  exit 1
fi

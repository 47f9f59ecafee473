#!/usr/bin/env bash
# The main job on the built-in demo model: `gradcam demo` explains a generated two-object scene
# with the demo CNN the project trained itself; panels and pictures go to demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p gradcam-cli -- demo --out demo-out
echo "pictures: $(pwd)/demo-out/*.panel.png"

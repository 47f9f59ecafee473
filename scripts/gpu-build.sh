#!/usr/bin/env bash
# Prepares a call of scripts/gpu-check.sh (or gpu-sweep.sh, gpu-profile.sh) on a lent GPU
# machine, which has no Rust toolchain and no network: builds the release binaries they run (the
# CLI, the backend and fixture tests, the kernel benches) here and packs them into
# `.gpu-bin/bin.tar.xz`; fetches Debian's Vulkan loader into `.gl/` and the pytorch-grad-cam
# wheels into `.whl/` once. All three folders are git-ignored
# and travel with the call: `carry: [".gpu-bin", ".gl", ".whl"]`.
#
# Usage: scripts/gpu-build.sh [cargo feature list, default "wgpu cuda"]
set -euo pipefail
cd "$(dirname "$0")/.."
features="${1:-wgpu cuda}"
if [ ! -d .gl ]; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update >/dev/null
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
if [ ! -d .whl ]; then
  python3 -m pip download -q --no-deps -d .whl ttach==0.0.3
  python3 -m pip wheel -q --no-deps -w .whl grad-cam==1.5.7
fi
rm -rf .gpu-bin && mkdir -p .gpu-bin
# Test and bench executables, found through cargo's JSON messages.
tests=(--test backends --test fixtures_library --test compile --test fixtures_cli
  --test products --test onnx_models)
cargo test --release --workspace --features "$features" --no-run --message-format=json \
  "${tests[@]}" |
  python3 -c '
import json, sys, shutil
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        shutil.copy(m["executable"], ".gpu-bin/" + m["target"]["name"])
        print("  test", m["target"]["name"])
'
cargo bench --workspace --features "$features" --no-run --message-format=json --bench kernels |
  python3 -c '
import json, sys, shutil
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "kernels":
        shutil.copy(m["executable"], ".gpu-bin/kernels")
        print("  bench kernels")
'
cargo build --release -p gradcam-cli --features "$features"
cp target/release/gradcam .gpu-bin/
strip .gpu-bin/*
# Packed: the working tree and what a call carries may not pass 64 MiB together (the binaries
# are ~55 MB, ~10 MB packed). The GPU scripts unpack it first.
pack="${TMPDIR:-/tmp}/gradcam-gpu-bin.tar.xz"
tar cJf "$pack" -C .gpu-bin . && rm -f .gpu-bin/* && mv "$pack" .gpu-bin/bin.tar.xz
du -sh .gpu-bin .gl .whl

#!/usr/bin/env bash
# The one GPU script. On a lent GPU machine (the device tool's H100/H200: no Rust, no network), in
# one call: checks every backend's primitives against the CPU backend on the GPU (CUDA in f32
# and TF32, and wgpu on the GPU's Vulkan), runs the fixture cases there, checks resnet50 against
# PyTorch + pytorch-grad-cam, then times end-to-end explanations against PyTorch on the same GPU,
# the forward op by op, the kernels against cuDNN, and the card's FP32 throughput
# (scripts/gpu_peak.py); prints a short table of each. Logs and JSON lines go to
# ${GPU_CHECK_LOGS:-/tmp/gradcam-gpu}, and where $OUT is set (the device tool's folder, which
# returns at most 8 files) into one archive, $OUT/gpu-check.tgz. Record card, date and figures
# in docs/PERFORMANCE.md.
#
# Prepare on the development machine with scripts/gpu-build.sh, then call the device tool with
#   command: bash scripts/gpu-check.sh     carry: [".gpu-bin", ".gl", ".whl"]
# Knobs: GPU_CHECK_BACKENDS (default "cuda cuda-tf32 wgpu"), GPU_CHECK_KERNELS (criterion
# filter, default "kernels/(cuda|wgpu)"), GPU_CHECK_PROFILE=0 to skip the op-by-op profile,
# GPU_CHECK_CUDNN=0 to skip cuDNN's timings, GPU_CHECK_PEAK=0 to skip the FP32 peak,
# GPU_CHECK_PYTORCH_METHODS (default forward,gradcam,guided-gradcam), GPU_CHECK_QUICK=1 for
# batch 1 only and no kernel benches, cuDNN or peak. GPU_CHECK_BASELINE=FILE (relative to the
# repository root: a bin.tar.xz that scripts/gpu-build.sh packed from another commit, copied
# into a carried, git-ignored folder such as .gpu-base/): resnet50 end to end on CUDA (f32),
# that build and this one interleaved, two rounds at batch 1 and 32 (batch 1 only when quick;
# ab.jsonl).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/gpu-env.sh
out="${GPU_CHECK_LOGS:-/tmp/gradcam-gpu}"
mkdir -p "$out"
quick="${GPU_CHECK_QUICK:-0}"
backends="${GPU_CHECK_BACKENDS:-cuda cuda-tf32 wgpu}"
kernels="${GPU_CHECK_KERNELS:-kernels/(cuda|wgpu)}"

# Vulkan loader and the NVIDIA ICD (device README), and the wheels.
if compgen -G ".gl/*.deb" >/dev/null; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export WGPU_BACKEND=vulkan GRADCAM_REQUIRE_WGPU=1 GRADCAM_REQUIRE_CUDA=1 XDG_RUNTIME_DIR=/tmp

{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  date -u +%Y-%m-%dT%H:%MZ
  nproc
  find /usr/local/cuda* /opt -name 'libnvrtc.so*' 2>/dev/null | head -5
} 2>&1 | tee "$out/machine.txt"

status=0
step() { echo "== $*"; }
has() { case " $backends " in *" $1 "*) return 0 ;; esac; return 1; }
filter=""
has wgpu || filter="cuda"
step "every primitive on the GPU against the CPU backend (tests/backends.rs), NVRTC compile test"
# products / onnx_models: graphs with products of computed tensors, channel splits and
# shuffles, explained on each backend against the CPU and against PyTorch's references.
for t in backends compile products onnx_models; do
  [ -x "$bin/$t" ] || continue
  f=""; [ "$t" = backends ] && f="$filter"
  timeout 300 "$bin/$t" --test-threads 1 $f 2>&1 | tee "$out/test-$t.log" |
    grep -E "test result|FAILED|panicked|notice|TF32" || status=1
done
if has cuda && [ -x "$bin/backends" ]; then
  step "out of device memory (fills the GPU: alone)"
  timeout 120 "$bin/backends" --ignored --exact cuda_out_of_memory_is_an_error --nocapture 2>&1 |
    tee "$out/test-oom.log" | grep -E "test result|FAILED|panicked|after .* maps" || status=1
fi
step "the fixture cases on the GPU (tests/fixtures_library.rs), and through the CLI"
timeout 300 "$bin/fixtures_library" --test-threads 1 $filter 2>&1 | tee "$out/test-fixtures.log" |
  grep -E "test result|FAILED|panicked|notice" || status=1
# The CLI test runs the binary cargo built it with: /work/main/target/release/gradcam.
mkdir -p /work/main/target/release && cp "$bin/gradcam" /work/main/target/release/gradcam
cli_filter="on_cuda"; has wgpu && cli_filter="on_cuda on_wgpu"
timeout 300 "$bin/fixtures_cli" --test-threads 4 $cli_filter 2>&1 | tee "$out/test-fixtures-cli.log" |
  grep -E "test result|FAILED|panicked|notice" || status=1

if python3 -c "import torch, pytorch_grad_cam" 2>/dev/null; then
  step "resnet50 against PyTorch + pytorch-grad-cam (torch on this machine's CPU)"
  for b in cpu $backends; do
    [ "$b" = wgpu ] && continue
    note=""; [ "$b" = cuda-tf32 ] && note=" (TF32: rounding beyond the f32 tolerances is expected)"
    echo "-- --backend $b$note"
    trace=""; [ "$b" = cuda ] && trace="--trace cpu"
    OUT="$out" timeout 120 python3 scripts/compare_pytorch.py --arch resnet50 --backend "$b" $trace \
      --gradcam "$bin/gradcam" 2>&1 | tee -a "$out/pytorch.log" | tail -30
  done
fi

step "end to end: resnet50, 224, gradcam bench vs PyTorch + pytorch-grad-cam"
methods=forward,gradcam,guided-gradcam
batches="1 32"; [ "$quick" = 1 ] && batches=1
: >"$out/bench.jsonl"
for batch in $batches; do
  reps=20; [ "$batch" -gt 1 ] && reps=10
  for b in $backends; do
    # wgpu on NVIDIA's Vulkan: batch 1 only (at batch 1 its host work sets the pace,
    # docs/PERFORMANCE.md; its kernels are timed at batch 32 below).
    [ "$b" = wgpu ] && [ "$batch" -gt 1 ] && continue
    timeout 180 "$bin/gradcam" bench --arch resnet50 --backend "$b" --method $methods \
      --batch "$batch" --reps $reps --json 2>>"$out/bench.err" | tee -a "$out/bench.jsonl" >/dev/null || status=1
  done
  PYTHONUNBUFFERED=1 timeout 180 python3 scripts/bench_pytorch.py --device cuda --arch resnet50 \
    --batch "$batch" --reps $reps --method "${GPU_CHECK_PYTORCH_METHODS:-$methods}" 2>>"$out/bench.err" |
    tee -a "$out/bench.jsonl" >/dev/null || status=1
done
tail -5 "$out/bench.err"
python3 - "$out/bench.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"{'backend':<40} {'method':<15} {'batch':>5} {'ms/img':>9} {'median ms':>10}")
for r in rows:
    print(f"{r['backend'][:40]:<40} {r['method']:<15} {r['batch']:>5} {r['ms_per_image']:>9.3f} {r['median_ms']:>10.3f}")
PY

if [ -n "${GPU_CHECK_BASELINE:-}" ] && has cuda; then
  step "resnet50 on CUDA, the baseline build ($GPU_CHECK_BASELINE) and this one interleaved"
  mkdir -p /tmp/baseline
  tar xJf "$GPU_CHECK_BASELINE" -C /tmp/baseline ./gradcam ||
    { echo "cannot unpack the baseline's gradcam from $GPU_CHECK_BASELINE"; status=1; }
  : >"$out/ab.jsonl"
  for round in 1 2; do
    for batch in $batches; do
      [ -x /tmp/baseline/gradcam ] || break 2
      reps=20; [ "$batch" -gt 1 ] && reps=10
      for build in baseline this; do
        exe="$bin/gradcam"; [ "$build" = baseline ] && exe=/tmp/baseline/gradcam
        timeout 120 "$exe" bench --arch resnet50 --backend cuda --method $methods \
          --batch "$batch" --reps $reps --json 2>>"$out/bench.err" |
          sed "s/^{/{\"build\":\"$build\",\"round\":$round,/" >>"$out/ab.jsonl" || status=1
      done
    done
  done
  python3 - "$out/ab.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"{'method':<15} {'batch':>5} {'baseline ms/img':>24} {'this ms/img':>24} {'this/base':>9}")
for key in sorted({(r["method"], r["batch"]) for r in rows}, key=lambda k: (k[1], k[0])):
    t = {b: [r["ms_per_image"] for r in rows if (r["method"], r["batch"]) == key and r["build"] == b]
         for b in ("baseline", "this")}
    f = lambda v: " ".join(f"{x:.3f}" for x in v)
    ratio = (sum(t["this"]) / len(t["this"])) / (sum(t["baseline"]) / len(t["baseline"])) if t["this"] and t["baseline"] else float("nan")
    print(f"{key[0]:<15} {key[1]:>5} {f(t['baseline']):>24} {f(t['this']):>24} {ratio:>9.3f}")
PY
fi

if has wgpu; then
  # The wgpu convolutions split their depth where the tiles are few (crates/wgpu/src/splitk.rs;
  # H200, 2026-11-28: resnet50 forward 6.5 ms split, 9.1 unsplit): the same at batch 1 without
  # the split, to compare.
  step "wgpu, resnet50 batch 1, without split-K (GRADCAM_WGPU_SPLITS=1; the default is above)"
  GRADCAM_WGPU_SPLITS=1 timeout 180 "$bin/gradcam" bench --arch resnet50 --backend wgpu \
    --method $methods --batch 1 --reps 20 --json 2>>"$out/bench.err" |
    tee "$out/wgpu-unsplit.jsonl" | cut -c1-200 || status=1
  # Dispatches are submitted in batches (crates/wgpu/src/batch.rs; written after the H200 found
  # the host issuing 5.0 ms of a 5.35 ms forward): each submitted alone, then batches of 8, to
  # compare with the default above.
  step "wgpu backend tests in batches of 2 (GRADCAM_WGPU_BATCH=2: the uniform ring reused across many submissions)"
  GRADCAM_WGPU_BATCH=2 timeout 300 "$bin/backends" --test-threads 1 wgpu 2>&1 |
    tee "$out/test-backends-wgpu-batch2.log" | grep -E "test result|FAILED|panicked" || status=1
  for n in 1 8; do
    step "wgpu, resnet50 batch 1, GRADCAM_WGPU_BATCH=$n (dispatches per submission)"
    GRADCAM_WGPU_BATCH=$n timeout 180 "$bin/gradcam" bench --arch resnet50 --backend wgpu \
      --method $methods --batch 1 --reps 20 --json 2>>"$out/bench.err" |
      tee "$out/wgpu-batch$n.jsonl" | cut -c1-200 || status=1
  done
fi

if [ "${GPU_CHECK_PROFILE:-1}" = 1 ]; then
  step "where the forward's time goes, op by op (batch 1, then 32)"
  for b in $backends; do
    for batch in 1 32; do
      [ "$b" = wgpu ] && [ "$batch" -gt 1 ] && continue
      timeout 120 "$bin/gradcam" bench --arch resnet50 --backend "$b" --method forward --batch "$batch" \
        --reps 5 --profile 2>&1 | tail -n +2 | head -12 | tee -a "$out/profile.txt"
    done
  done
fi

if [ "$quick" != 1 ] && [ -x "$bin/kernels" ]; then
  step "kernels (criterion; 'elements' are FLOPs for convs and GEMMs)"
  timeout 300 "$bin/kernels" --bench --noplot --warm-up-time 0.5 --measurement-time 1 \
    "$kernels" 2>&1 | tee "$out/kernels.log" |
    grep -E "^kernels|time:|thrpt:" | paste - - - | sed 's/  */ /g; s/kernels\///; s/NVIDIA //' |
    awk -F'\t' '{split($2,t,"[][]"); split($3,r,"[][]"); print $1 " |" t[2] " |" r[2]}' |
    cut -c1-140 || status=1
fi
if [ "$quick" != 1 ] && [ "${GPU_CHECK_CUDNN:-1}" = 1 ]; then
  step "cuDNN on the same convolutions (TF32 off, then on)"
  PYTHONUNBUFFERED=1 timeout 120 python3 scripts/conv_cudnn.py --json "$out/cudnn.jsonl" 2>&1
fi
if [ "$quick" != 1 ] && [ "${GPU_CHECK_PEAK:-1}" = 1 ]; then
  step "the card's FP32 throughput: an FMA loop, cuBLAS SGEMM (TF32 off, then on)"
  PYTHONUNBUFFERED=1 timeout 120 python3 scripts/gpu_peak.py --json "$out/peak.jsonl" 2>&1
fi
if [ -n "${OUT:-}" ] && [ "$OUT" != "$out" ]; then
  tar czf "$OUT/gpu-check.tgz" -C "$out" . && echo "logs: \$OUT/gpu-check.tgz"
fi
exit $status

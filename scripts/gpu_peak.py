#!/usr/bin/env python3
"""Measures the GPU's FP32 throughput, the figure our convolution kernels are held against: an
FMA loop (eight independent chains per element, compiled at run time through PyTorch's
jiterator, which uses NVRTC) and cuBLAS's SGEMM at 8192³ with TF32 off, then on. CUDA events,
warm-up, median of --reps. Prints one line per measurement (TFLOP/s). Optional tooling for
scripts/gpu-check.sh; never needed by CI or the tests.
"""
import argparse, json
import torch
from conv_cudnn import time_ms  # CUDA events, warm-up, median (same folder)

ITERS = 512
CHAINS = 8
FMA_LOOP = """
template <typename T> T fma_peak(T x) {
  T a0 = x, a1 = x + T(1), a2 = x + T(2), a3 = x + T(3);
  T a4 = x + T(4), a5 = x + T(5), a6 = x + T(6), a7 = x + T(7);
  const T m = T(0.999999), c = T(1e-7);
  for (int i = 0; i < ITERS; ++i) {
    a0 = a0 * m + c; a1 = a1 * m + c; a2 = a2 * m + c; a3 = a3 * m + c;
    a4 = a4 * m + c; a5 = a5 * m + c; a6 = a6 * m + c; a7 = a7 * m + c;
  }
  return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
""".replace("ITERS", str(ITERS))


def report(out, what, flops, ms):
    r = {"device": torch.cuda.get_device_name(), "what": what, "ms": ms,
         "tflops": flops / ms / 1e9}
    print(f"{what:<40} {ms:9.3f} ms {r['tflops']:8.2f} TFLOP/s")
    if out:
        print(json.dumps(r), file=out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--json", help="also write one JSON object per line to this file")
    a = ap.parse_args()
    out = open(a.json, "w") if a.json else None
    try:
        from torch.cuda import jiterator
        fn = jiterator._create_jit_fn(FMA_LOOP)
        x = torch.rand(1 << 24, device="cuda")
        ms = time_ms(lambda: fn(x), a.reps)
        report(out, "FMA loop (jiterator)", 2 * CHAINS * ITERS * x.numel(), ms)
    except Exception as e:  # an older or newer PyTorch without this private API
        print(f"FMA loop skipped: {type(e).__name__}: {e}")
    n = 8192
    g = torch.Generator(device="cuda").manual_seed(0)
    p = torch.randn(n, n, device="cuda", generator=g)
    q = torch.randn(n, n, device="cuda", generator=g)
    for tf32 in (False, True):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        ms = time_ms(lambda: torch.mm(p, q), a.reps)
        report(out, f"cuBLAS SGEMM {n}^3, tf32={tf32}", 2 * n**3, ms)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Times cuDNN (through PyTorch) on the convolutions benches/kernels.rs times on a GPU, forward
and backward-data, with TF32 off (the f32 reference our kernels are held to) and on. CUDA events,
warm-up, median of --reps. Prints one line per case: GFLOP/s and ms. Optional tooling for
scripts/gpu-check.sh; never needed by CI or the tests.
"""
import argparse, json, statistics
import torch

CASES = [  # label, x, w, padding (stride 1), as in benches/kernels.rs
    ("conv3x3 256ch 14x14", (1, 256, 14, 14), (256, 256, 3, 3), 1),
    ("conv1x1 1024->256 14x14", (1, 1024, 14, 14), (256, 1024, 1, 1), 0),
    ("conv3x3 64ch 56x56 b32", (32, 64, 56, 56), (64, 64, 3, 3), 1),
    ("conv3x3 128ch 28x28 b32", (32, 128, 28, 28), (128, 128, 3, 3), 1),
    ("conv3x3 256ch 14x14 b32", (32, 256, 14, 14), (256, 256, 3, 3), 1),
    ("conv3x3 512ch 7x7 b32", (32, 512, 7, 7), (512, 512, 3, 3), 1),
    ("conv1x1 1024->256 14x14 b32", (32, 1024, 14, 14), (256, 1024, 1, 1), 0),
    ("conv1x1 2048->512 7x7 b32", (32, 2048, 7, 7), (512, 2048, 1, 1), 0),
    ("conv1x1 512->2048 7x7 b32", (32, 512, 7, 7), (2048, 512, 1, 1), 0),
]


def time_ms(f, reps):
    for _ in range(3):
        f()
    torch.cuda.synchronize()
    t = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        f()
        e.record()
        e.synchronize()
        t.append(s.elapsed_time(e))
    return statistics.median(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--json", help="also write one JSON object per line to this file")
    a = ap.parse_args()
    out = open(a.json, "w") if a.json else None
    torch.backends.cudnn.benchmark = True
    g = torch.Generator(device="cuda").manual_seed(0)
    for tf32 in (False, True):
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        for label, xs, ws, pad in CASES:
            x = torch.randn(xs, device="cuda", generator=g)
            w = torch.randn(ws, device="cuda", generator=g)
            y = torch.nn.functional.conv2d(x, w, padding=pad)
            dy = torch.randn(y.shape, device="cuda", generator=g)
            flops = 2 * y.numel() * ws[1] * ws[2] * ws[3]
            fwd = time_ms(lambda: torch.nn.functional.conv2d(x, w, padding=pad), a.reps)
            bwd = time_ms(lambda: torch.nn.grad.conv2d_input(xs, w, dy, padding=pad), a.reps)
            for what, ms in (("forward", fwd), ("backward-data", bwd)):
                r = {"backend": f"cudnn {torch.backends.cudnn.version()}", "tf32": tf32,
                     "kernel": f"{label} {what}", "ms": ms, "gflops": flops / ms / 1e6}
                print(f"tf32={str(tf32):<5} {r['kernel']:<44} {ms:8.3f} ms {r['gflops']:9.0f} GFLOP/s")
                if out:
                    print(json.dumps(r), file=out)


if __name__ == "__main__":
    main()

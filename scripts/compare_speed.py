#!/usr/bin/env python3
"""CPU speed side by side: gradcam, PyTorch + pytorch-grad-cam and ONNX Runtime, in one run.

Optional tooling, never needed by CI or the tests. Needs torch, torchvision, grad-cam,
safetensors, onnx and onnxruntime, and a release build of the CLI (`cargo build --release -p
gradcam-cli`):

    python3 scripts/compare_speed.py --arch resnet18,resnet50,vgg16 --threads 2 --reps 10

For each architecture it draws seeded random torchvision weights once, saves them as safetensors
(for gradcam and PyTorch) and exports them to ONNX (for ONNX Runtime: opset 17, intra-op
threads = --threads, inter-op 1, every graph optimisation). Every (tool, method) pair runs in
its own process, started from this small one (which never imports torch: a child's peak
resident set starts from its parent's at fork), so its peak RSS is its own (read with wait4).
Each tool times its
own seeded random input of the same shape (dense convolutions do not depend on the values);
gradcam and PyTorch explain class 0. Prints the medians, the ratios against gradcam and the
peak RSS, and `--json FILE` keeps every raw record. `--backends cpu,cpu-winograd` times both
CPU variants (a row each, ratios against that row).
"""
import argparse, json, os, subprocess, sys, tempfile, time, statistics

HERE = os.path.dirname(os.path.abspath(__file__))
METHODS = ["forward", "gradcam", "guided-backprop", "guided-gradcam"]


def run(cmd):
    """Runs `cmd`, returns (JSON lines of its stdout, its peak RSS in MiB); (None, None) when it
    failed (the error's last line printed)."""
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        err = p.stderr.read().decode()
        if p.returncode != 0:
            print(f"  {' '.join(cmd)} failed ({p.returncode}): {err.strip().splitlines()[-1:]}", file=sys.stderr)
            return None, None
        out.seek(0)
        lines = [json.loads(l) for l in out.read().decode().splitlines() if l.startswith("{")]
    return lines, ru.ru_maxrss / 1024.0


def ort_child(a):
    """Times ONNX Runtime's forward of --ort-model (run in its own process)."""
    import numpy as np, onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(a.ort_model, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((a.batch, 3, a.size, a.size), dtype=np.float32)
    for _ in range(a.warmup):
        s.run(None, {name: x})
    t = []
    for _ in range(a.reps):
        st = time.perf_counter()
        s.run(None, {name: x})
        t.append((time.perf_counter() - st) * 1e3)
    med = statistics.median(t)
    print(json.dumps({"method": "forward", "backend": f"onnxruntime {ort.__version__}", "median_ms": med,
                      "min_ms": min(t), "max_ms": max(t), "ms_per_image": med / a.batch}))


def export_child(a):
    """Writes the weights and the ONNX export (run in its own process)."""
    export(a.export, a.size, a.export_dir)


def export(arch, size, d):
    import torch, torchvision
    from safetensors.torch import save_file
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None).eval()
    st = os.path.join(d, f"{arch}.safetensors")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, st)
    onnx_path = os.path.join(d, f"{arch}.onnx")
    torch.onnx.export(model, torch.randn(1, 3, size, size), onnx_path, opset_version=17, dynamo=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return st, onnx_path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet18,resnet50,vgg16")
    ap.add_argument("--method", default=",".join(METHODS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every (tool, method) this many times, interleaved, and report the median "
                         "of the rounds' medians (a noisy machine drifts between runs)")
    ap.add_argument("--gradcam", default=os.path.join(HERE, "..", "target", "release", "gradcam"))
    ap.add_argument("--backends", default="cpu",
                    help="gradcam backends to time, comma separated (cpu, cpu-winograd): one row each")
    ap.add_argument("--json", default=None, help="write every record to this file")
    ap.add_argument("--ort-model", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--export", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--export-dir", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.ort_model:
        return ort_child(a)
    if a.export:
        return export_child(a)
    common = ["--batch", str(a.batch), "--size", str(a.size), "--threads", str(a.threads),
              "--reps", str(a.reps), "--warmup", str(a.warmup)]
    records = []
    with tempfile.TemporaryDirectory() as d:
        for arch in a.arch.split(","):
            subprocess.run([sys.executable, __file__, "--export", arch, "--export-dir", d, "--size", str(a.size)],
                           check=True, stderr=subprocess.DEVNULL)
            st, onnx_path = os.path.join(d, f"{arch}.safetensors"), os.path.join(d, f"{arch}.onnx")
            for m in [m for _ in range(a.rounds) for m in a.method.split(",")]:
                for tool, cmd in [
                    ("gradcam" if be == "cpu" else f"gradcam {be}", [a.gradcam, "bench", "--arch", arch, "--weights", st, "--method", m, "--json",
                                       "--backend", be] + common)
                    for be in a.backends.split(",")
                ] + [
                    ("pytorch", [sys.executable, os.path.join(HERE, "bench_pytorch.py"), "--arch", arch, "--weights", st,
                                 "--method", m] + common),
                ] + ([("onnxruntime", [sys.executable, __file__, "--ort-model", onnx_path] + common)] if m == "forward" else []):
                    lines, rss = run(cmd)
                    if not lines:
                        continue
                    rec = dict(lines[-1], tool=tool, arch=arch, method=m, peak_rss_mib=rss)
                    records.append(rec)
                    print(f"  {arch:9} {m:16} {tool:12} {rec['ms_per_image']:9.2f} ms/img  peak RSS {rss:7.0f} MiB",
                          file=sys.stderr)
    print(f"\nbatch {a.batch}, {a.size}x{a.size}, {a.threads} threads, median of {a.reps} reps, "
          f"median over {a.rounds} interleaved round(s) "
          f"(ratio = other / gradcam: above 1, gradcam is faster)")
    print("| model | method | gradcam ms | PyTorch (+ pytorch-grad-cam) ms | ratio | ONNX Runtime ms | ratio "
          "| gradcam peak RSS MiB | PyTorch peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    by = {}
    for r in records:
        by.setdefault((r["arch"], r["method"], r["tool"]), []).append(r)
    by = {key: dict(rs[0], ms_per_image=statistics.median(x["ms_per_image"] for x in rs),
                    peak_rss_mib=max(x["peak_rss_mib"] for x in rs), rounds=len(rs))
          for key, rs in by.items()}
    backends = a.backends.split(",")
    for arch in a.arch.split(","):
        for m in a.method.split(","):
            for be in backends:
                tool = "gradcam" if be == "cpu" else f"gradcam {be}"
                g, p, o = (by.get((arch, m, t)) for t in (tool, "pytorch", "onnxruntime"))
                cell = lambda r: f"{r['ms_per_image']:.1f}" if r else "—"
                ratio = lambda r: f"{r['ms_per_image'] / g['ms_per_image']:.2f}×" if r and g else "—"
                rss = lambda r: f"{r['peak_rss_mib']:.0f}" if r else "—"
                label = m if len(backends) == 1 else f"{m} ({be})"
                print(f"| {arch} | {label} | {cell(g)} | {cell(p)} | {ratio(p)} | {cell(o)} | {ratio(o)} "
                      f"| {rss(g)} | {rss(p)} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(records, f, indent=1)


if __name__ == "__main__":
    main()

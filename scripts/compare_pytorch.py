#!/usr/bin/env python3
"""Checks `gradcam explain` against PyTorch + pytorch-grad-cam on a full-size torchvision model.

Never needed by CI or the tests (they use the small committed fixtures); this is for a machine
with torch, torchvision, grad-cam and safetensors installed:

    python3 scripts/compare_pytorch.py --arch resnet50 [--layer layer4.2] [--seed 0] [--batch 1]
    python3 scripts/compare_pytorch.py --arch efficientnet_b0 --onnx [dynamo]
    python3 scripts/compare_pytorch.py --arch resnet18 --seeds 0-29 --backend cpu,cpu-winograd --reference f64

It builds the torchvision model with seeded random weights (or `--weights FILE` from a
state dict), saves them as safetensors, runs pytorch-grad-cam's GradCAM and the guided
backprop of `GuidedBackpropReLUModel` on a seeded input, runs `gradcam explain --save-tensors`
on the same weights and input, and prints the relative L2 difference of every shared tensor
(and, as `cpu alone`, of the logits and Grad-CAM from `--method gradcam` alone, whose forward
the `cpu` backend runs by Winograd F(4×4): no backward reads its masks).
Exit status 1 if any of gradcam's exceeds the fixtures' tolerances.

Guided Backprop's rectifier masks are decided by the signs of the forward's values, so where a
random network has values within rounding of zero, any two f32 computations (two summation
orders, PyTorch's own two convolution paths) can differ there by far more than rounding. One
seed cannot tell a method that moves masks from bad luck: `--seeds A-B` runs every seed and
prints, per backend and tensor, in how many seeds the difference exceeded the tolerance, and in
how many Guided Backprop differed by more than 1e-5 (a mask differs: with the same masks it
agrees to about 1e-6). `--reference f64` compares against PyTorch in float64 instead, and adds
PyTorch's own float32 outputs as a row (`pytorch-f32`), the rate any f32 computation is held to.
"""
import argparse, copy, json, os, subprocess, sys, tempfile
import numpy as np
import torch, torchvision
from safetensors.torch import save_file, load_file
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.guided_backprop import GuidedBackpropReLUModel
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget


def module(model, path):
    for p in path.split("."):
        model = model[int(p)] if p.isdigit() else getattr(model, p)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--layer", default=None, help="target module path (default: the arch's usual one)")
    ap.add_argument("--weights", default=None, help="a state dict (.pth or .safetensors); default seeded random")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", default=None, metavar="A-B|A,B,..",
                    help="several seeds (weights and input), with a summary per backend and tensor")
    ap.add_argument("--backend", default="cpu",
                    help="gradcam's backend: cpu, cpu-exact, cpu-winograd, wgpu, cuda; several comma-separated")
    ap.add_argument("--reference", choices=["f32", "f64"], default="f32",
                    help="PyTorch's outputs in float32 (default) or float64 (then its float32 ones "
                         "are compared too, as `pytorch-f32`)")
    ap.add_argument("--onnx", nargs="?", const="torchscript", choices=["torchscript", "dynamo"],
                    help="explain the model exported to ONNX (the TorchScript exporter at opset 17, "
                         "or the dynamo exporter) with `--model`, at gradcam's default target layer, "
                         "instead of `--arch`")
    ap.add_argument("--trace", default=None, metavar="REF",
                    help="also trace Guided Backprop layer by layer against gradcam's REF backend "
                         "(`gradcam compare --rule guided`) and print where it first diverges")
    ap.add_argument("--gradcam", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "gradcam"))
    a = ap.parse_args()
    seeds = parse_seeds(a.seeds) if a.seeds else [a.seed]
    backends = a.backend.split(",")
    tol = {"logits": 1e-4, "guided_backprop": 1e-4, "gradcam": 1e-3, "guided_gradcam": 1e-3}
    rows = {}  # (backend, tensor) -> [error per seed]
    bad = False
    for seed in seeds:
        arch, layer, targets, errs = run_seed(a, seed, backends)
        print(f"{arch}, layer {layer}, batch {a.batch}, targets {targets}"
              + (f", seed {seed}" if a.seeds else "")
              + (", against PyTorch in float64" if a.reference == "f64" else ""))
        for name, e in errs.items():
            if len(errs) > 1:
                print(f" {name}")
            for k, err in e.items():
                ok = err < tol[k]
                bad |= not ok and name != "pytorch-f32"
                rows.setdefault((name, k), []).append(err)
                print(f"  {k:<16} relative L2 {err:.2e}  (tolerance {tol[k]:.0e}) {'ok' if ok else 'EXCEEDED'}")
        sys.stdout.flush()
    if len(seeds) > 1:
        print(f"\nover {len(seeds)} seeds ({a.seeds}): seeds beyond the tolerance; median and largest")
        for (name, k), v in rows.items():
            over = sum(e >= tol[k] for e in v)
            extra = ""
            if k == "guided_backprop":
                extra = f", a mask differs (> 1e-5) in {sum(e > 1e-5 for e in v)}"
            print(f"  {name:<14} {k:<16} {over:>3} of {len(v)}{extra}; median {np.median(v):.2e}, "
                  f"largest {max(v):.2e}")
    sys.exit(1 if bad else 0)


def parse_seeds(spec):
    """`A-B` (inclusive) or `A,B,...`."""
    if "-" in spec:
        lo, hi = map(int, spec.split("-"))
        return list(range(lo, hi + 1))
    return [int(v) for v in spec.split(",")]


def references(model, x, layer, targets, logits):
    """pytorch-grad-cam's Grad-CAM and Guided Backprop of `model` on `x` (in the model's dtype),
    beside the model's `logits` on `x`."""
    with GradCAM(model=model, target_layers=[module(model, layer)]) as cam:
        gradcam = cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
    gb = GuidedBackpropReLUModel(model=model, device="cpu")
    guided = np.stack([gb(x[i:i + 1], target_category=targets[i]).transpose(2, 0, 1)
                       for i in range(x.shape[0])])
    return {"logits": logits.numpy(), "gradcam": gradcam, "guided_backprop": guided,
            "guided_gradcam": guided * gradcam[:, None]}


def rel_l2(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def run_seed(a, seed, backends):
    """Seeded weights and input; PyTorch's references; each backend's relative L2 per tensor."""
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    model = getattr(torchvision.models, a.arch)(weights=None).eval()
    if a.weights:
        sd = load_file(a.weights) if a.weights.endswith(".safetensors") else torch.load(a.weights)
        model.load_state_dict(sd)
    layer = a.layer or {"resnet": "layer4", "vgg": "features.29", "squeezenet": "features.12",
                        "mobilenet": "features", "efficientnet": "features", "alexnet": "features.11",
                        "shufflenet": "conv5"}[
        next(k for k in ("resnet", "vgg", "squeezenet", "mobilenet", "efficientnet", "alexnet",
                         "shufflenet") if a.arch.startswith(k))]
    if layer == "layer4":
        layer = f"layer4.{len(model.layer4) - 1}"
    if layer == "features":  # the last block: mobilenet_v2/v3, efficientnet
        layer = f"features.{len(model.features) - 1}"
    x = torch.randn(a.batch, 3, a.size, a.size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        logits = model(x)
    targets = logits.argmax(1).tolist()
    # A copy taken before pytorch-grad-cam's guided backprop, which puts back one shared ReLU
    # module for every ReLU it swapped: a Grad-CAM hooked to a ReLU target (VGG's features.29)
    # on that model would see every ReLU's activations.
    pristine = copy.deepcopy(model) if a.reference == "f64" else None
    ref = references(model, x, layer, targets, logits)
    errs = {}
    if a.reference == "f64":
        f32 = ref
        pristine, x64 = pristine.double(), x.double()
        with torch.no_grad():
            logits64 = pristine(x64)
        ref = references(pristine, x64, layer, targets, logits64)
        errs["pytorch-f32"] = {k: rel_l2(f32[k], r) for k, r in ref.items()}

    with tempfile.TemporaryDirectory() as d:
        w, inp, out = (os.path.join(d, f) for f in ("w.safetensors", "x.safetensors", "out.safetensors"))
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, w)
        save_file({"input": x.contiguous()}, inp)
        model_args = ["--arch", a.arch, "--weights", w, "--layer", layer]
        if a.onnx:
            path = os.path.join(d, "model.onnx")
            if a.onnx == "dynamo":
                torch.onnx.export(model, (x,), path, dynamo=True, external_data=False)
            else:
                torch.onnx.export(model, x, path, opset_version=17, dynamo=False,
                                  input_names=["x"], dynamic_axes={"x": {0: "n"}})
            model_args = ["--model", path]  # gradcam's default target: the last block's output
        for backend in backends:
            cmd = [a.gradcam, "explain", *model_args, "--input", inp,
                   "--class", ",".join(map(str, targets)), "--method", "gradcam,guided-gradcam",
                   "--guided-relu-only", "--save-tensors", out, "--backend", backend]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            ours = {k: v.numpy() for k, v in load_file(out).items()}
            errs[backend] = {k: rel_l2(ours[k], r) for k, r in ref.items()}
            # Grad-CAM asked alone: no backward reads the forward's masks, so the CPU backend
            # may run its faster forward (Winograd F(4×4)); the row `BACKEND alone`. Only `cpu`
            # has such a forward: the others would repeat their row.
            if backend == "cpu":
                at = cmd.index("--method")
                subprocess.run(cmd[:at + 1] + ["gradcam"] + cmd[at + 2:], check=True,
                               stdout=subprocess.DEVNULL)
                alone = {k: v.numpy() for k, v in load_file(out).items()}
                errs["cpu alone"] = {k: rel_l2(alone[k], ref[k]) for k in ("logits", "gradcam")}
            if a.trace:
                trace(a, model_args, inp, targets, backend)
    arch = a.arch + (f" via ONNX ({a.onnx})" if a.onnx else "")
    return arch, layer, targets, errs


def trace(a, model_args, inp, targets, backend):
    """Guided Backprop layer by layer against gradcam's `a.trace` backend."""
    cmp = [a.gradcam, "compare", *model_args, "--input", inp,
           "--class", ",".join(map(str, targets)), "--method", "guided-backprop", "--guided-relu-only",
           "--rule", "guided", "--backends", f"{a.trace},{backend}", "--tol", "1e-5", "--json"]
    text = subprocess.run(cmp, stdout=subprocess.PIPE, check=False).stdout
    if os.environ.get("OUT"):  # the whole trace, beside gpu-check.sh's logs
        with open(os.path.join(os.environ["OUT"], f"trace-guided-{backend}.json"), "wb") as f:
            f.write(text)
    rep = json.loads(text)["backends"][0]
    print(f"guided trace, {backend} against {a.trace} (relative L2 per tensor, > 1e-5 shown):")
    rows = rep["rows"]
    for r in [r for r in rows if r["rel_l2"] is None or r["rel_l2"] > 1e-5][:24]:
        print(f"  {r['section']:<8} {r['name']:<40} {r['rel_l2'] if r['rel_l2'] is not None else 'missing'}")
    print(f"  first divergence: {rep['first_divergence']}")


if __name__ == "__main__":
    main()

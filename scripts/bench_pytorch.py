#!/usr/bin/env python3
"""Times PyTorch + pytorch-grad-cam on the same job as `gradcam bench`, for side-by-side ratios.

Optional tooling (torch, torchvision, grad-cam), never needed by CI or the tests:

    python3 scripts/bench_pytorch.py --arch resnet50 --batch 1 --size 224 --threads 2 --reps 10
    python3 scripts/bench_pytorch.py --device cuda --arch resnet50 --batch 32   # on a GPU

Random torchvision weights (the timing does not depend on their values), a seeded input,
class 0 explained, `--warmup` untimed runs, then the median/min/max of `--reps` runs. Prints
one JSON object per method with the same fields as `gradcam bench --json`. On `--device cuda` each
run ends with `torch.cuda.synchronize()`, so the time is the whole job's, as a caller sees it.
Where the target layer is a ReLU (VGG-16's `features.29`), Guided Grad-CAM's guided half runs on a
copy of the network: pytorch-grad-cam's `GuidedBackpropReLUModel` puts fresh ReLUs back after each call,
which drops GradCAM's hooks on the target (Guided Grad-CAM failed from its second run).
"""
import argparse, copy, json, statistics, time
import torch, torchvision
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.guided_backprop import GuidedBackpropReLUModel
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

LAYERS = {"resnet": lambda m: m.layer4[-1], "vgg": lambda m: m.features[29], "mobilenet": lambda m: m.features[18],
          "squeezenet": lambda m: m.features[12], "alexnet": lambda m: m.features[11]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--method", default="forward,gradcam,guided-backprop,guided-gradcam")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--weights", default=None, help="a torchvision state dict as safetensors (default: seeded random)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    model = getattr(torchvision.models, a.arch)(weights=None).eval()
    if a.weights:
        from safetensors.torch import load_file
        model.load_state_dict(load_file(a.weights))
    model = model.to(a.device)
    layer = next(f for k, f in LAYERS.items() if a.arch.startswith(k))(model)
    x = torch.randn(a.batch, 3, a.size, a.size).to(a.device)
    targets = [ClassifierOutputTarget(0)] * a.batch
    cam = GradCAM(model=model, target_layers=[layer])
    gb = GuidedBackpropReLUModel(model=model, device=a.device)
    # GuidedBackpropReLUModel swaps every nn.ReLU for its own module and back for a fresh
    # nn.ReLU, so a target layer that is a ReLU (VGG-16's features.29) loses GradCAM's hooks
    # after the first guided call ("'NoneType' object has no attribute 'shape'"): there Guided
    # Grad-CAM's guided half runs on a copy of the network (same weights; made only for it).
    gb_beside_cam = gb
    if "guided-gradcam" in a.method.split(",") and isinstance(layer, torch.nn.ReLU):
        gb_beside_cam = GuidedBackpropReLUModel(model=copy.deepcopy(model), device=a.device)
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)

    def guided(gb):
        return [gb(x[i:i + 1], target_category=0) for i in range(a.batch)]

    jobs = {
        "forward": lambda: model(x).detach(),
        "gradcam": lambda: cam(input_tensor=x, targets=targets),
        "guided-backprop": lambda: guided(gb),
        "guided-gradcam": lambda: (cam(input_tensor=x, targets=targets), guided(gb_beside_cam)),
    }
    for m in a.method.split(","):
        f = jobs[m]
        with torch.set_grad_enabled(m != "forward"):
            for _ in range(a.warmup):
                f()
            sync()
            t = []
            for _ in range(a.reps):
                s = time.perf_counter()
                f()
                sync()
                t.append((time.perf_counter() - s) * 1e3)
        med = statistics.median(t)
        print(json.dumps({"arch": a.arch, "method": m, "backend": f"pytorch {torch.__version__} {a.device}", "batch": a.batch,
                          "size": a.size, "threads": a.threads, "reps": a.reps, "median_ms": med, "min_ms": min(t),
                          "max_ms": max(t), "ms_per_image": med / a.batch}))


if __name__ == "__main__":
    main()

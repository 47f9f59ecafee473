#!/usr/bin/env python3
"""Checks the Caffe2-era model-zoo graphs of the ONNX test suite against ONNX Runtime with real
(random) weights: never needed by CI (tests/onnx_model_zoo.rs runs the graphs with the suite's
constant weights, whose outputs cannot tell the classes apart); needs onnx, onnxruntime, numpy
and a built `gradcam`.

    python3 scripts/check_model_zoo.py [--gradcam target/release/gradcam] [--seed 0]

Each `light_*.onnx` has its `ConstantOfShape` weight fills replaced by seeded random
initializers (He-scaled for matrices and kernels, uniform in [0.5, 1.5] for vectors: batch-norm
variances stay positive), ONNX Runtime computes the scores before the trailing softmax, and
`gradcam explain --model` (which leaves that softmax out) must give the same logits; the
relative L2 difference is printed per graph.
"""
import argparse, os, subprocess, sys, tempfile
import numpy as np
import onnx
import onnxruntime as ort
ort.set_default_logger_severity(3)
from onnx import numpy_helper


# Graphs the importer does not translate yet (a stride-1 average pool padded at one end only).
NOT_TRANSLATED = {"inception_v1"}


def randomize(m, rng):
    g = m.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    keep, inits = [], []
    for n in g.node:
        if n.op_type == "ConstantOfShape" and n.input and n.input[0] in consts:
            shape = tuple(int(v) for v in consts[n.input[0]])
            if len(shape) >= 2:
                w = rng.standard_normal(shape) * np.sqrt(2.0 / max(1, int(np.prod(shape[1:]))))
            else:
                w = rng.uniform(0.5, 1.5, shape)
            inits.append(numpy_helper.from_array(w.astype(np.float32), n.output[0]))
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    g.initializer.extend(inits)
    m.ir_version = max(m.ir_version, 4)  # initializers need not be listed as inputs
    # The scores before the trailing softmax, as a second output for ONNX Runtime.
    last = g.node[-1]
    if last.op_type == "Softmax":
        g.output.append(onnx.helper.make_tensor_value_info(last.input[0], onnx.TensorProto.FLOAT, None))
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gradcam", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "gradcam"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    light = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    bad = False
    for f in sorted(os.listdir(light)):
        if not f.endswith(".onnx"):
            continue
        name = f[len("light_"):-len(".onnx")]
        m = randomize(onnx.load(os.path.join(light, f)), np.random.default_rng(a.seed))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "model.onnx")
            onnx.save(m, path)
            x = np.random.default_rng(a.seed + 1).standard_normal((2, 3, 224, 224)).astype(np.float32)
            inits = {i.name for i in m.graph.initializer}
            feeds = {next(i.name for i in m.graph.input if i.name not in inits): x[:1]}
            try:
                sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
                ref = np.concatenate([sess.run(None, {k: x[i:i + 1] for k in feeds})[-1] for i in range(2)])
            except Exception as e:  # a graph ONNX Runtime refuses is not ours to check
                print(f"{name:<14} ONNX Runtime: {str(e).splitlines()[0][:100]}")
                continue
            np.save(os.path.join(d, "x.npy"), x)
            out = os.path.join(d, "out.safetensors")
            r = subprocess.run([a.gradcam, "explain", "--model", path, "--input", os.path.join(d, "x.npy"),
                                "--method", "gradcam", "--class", "7", "--save-tensors", out],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                print(f"{name:<14} gradcam: {r.stderr.strip().splitlines()[-1][:110]}")
                bad |= name not in NOT_TRANSLATED
                continue
            from safetensors.numpy import load_file
            ours = load_file(out)["logits"].reshape(ref.shape[0], -1)
            ref = ref.reshape(ref.shape[0], -1)
            rel = float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))
            bad |= rel > 1e-4
            print(f"{name:<14} logits relative L2 {rel:.2e} (std of the scores {ref.std():.3g})")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

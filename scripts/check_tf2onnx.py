#!/usr/bin/env python3
"""Checks Keras application models exported by tf2onnx against ONNX Runtime with random
weights: never needed by CI (tests/tf2onnx.rs runs a small TensorFlow model with references from
TensorFlow); needs tensorflow-cpu, tf2onnx, onnxruntime, numpy, safetensors and a built
`gradcam`.

    python3 scripts/check_tf2onnx.py [--gradcam target/release/gradcam] [--models ResNet50,...]

Each model (`weights=None`, random batch-norm statistics) is exported twice — NHWC input, and
`inputs_as_nchw` — ONNX Runtime computes the scores before the classifier's softmax, and
`gradcam explain --model` (which leaves the softmax out and takes NCHW images) must give the
same logits; the relative L2 difference is printed per model and file.
"""
import argparse, os, subprocess, sys, tempfile
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf
import tf2onnx
ort.set_default_logger_severity(3)

MODELS = {
    "ResNet50": (tf.keras.applications.ResNet50, 64),
    "MobileNetV2": (lambda **k: tf.keras.applications.MobileNetV2(alpha=0.35, **k), 96),
    "MobileNetV3Small": (lambda **k: tf.keras.applications.MobileNetV3Small(minimalistic=False, **k), 96),
    "EfficientNetB0": (tf.keras.applications.EfficientNetB0, 64),
    "DenseNet121": (tf.keras.applications.DenseNet121, 64),
    "InceptionV3": (tf.keras.applications.InceptionV3, 96),
    "Xception": (tf.keras.applications.Xception, 96),
    "VGG16": (tf.keras.applications.VGG16, 64),
}


def logits_output(m):
    """The classifier's softmax input as a second graph output."""
    for n in m.graph.node:
        if n.op_type == "Softmax" and n.output[0] == m.graph.output[0].name:
            m.graph.output.append(onnx.helper.make_tensor_value_info(n.input[0], onnx.TensorProto.FLOAT, None))
            return True
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gradcam", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "gradcam"))
    ap.add_argument("--models", default=",".join(MODELS))
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    bad = False
    for name in a.models.split(","):
        make, side = MODELS[name]
        tf.keras.backend.clear_session()
        model = make(input_shape=(side, side, 3), weights=None)
        for layer in model.layers:
            if isinstance(layer, tf.keras.layers.BatchNormalization):
                ws = layer.get_weights()
                if len(ws) == 4:
                    g, b, mu, var = ws
                    layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.1, b.shape),
                                       rng.normal(0, 0.1, mu.shape), rng.uniform(0.5, 1.5, var.shape)])
        x = rng.uniform(0, 255, (2, side, side, 3)).astype(np.float32)
        spec = (tf.TensorSpec((None, side, side, 3), tf.float32, name="input"),)
        for nchw in (False, True):
            label = f"{name}{' nchw' if nchw else ''}"
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "model.onnx")
                m, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=13,
                                                  inputs_as_nchw=["input"] if nchw else None)
                if not logits_output(m):
                    print(f"{label:<22} no trailing softmax to read the logits before")
                    continue
                onnx.save(m, path)
                sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
                feed = x.transpose(0, 3, 1, 2) if nchw else x
                ref = np.concatenate([sess.run(None, {"input": feed[i:i + 1]})[-1] for i in range(2)])
                np.save(os.path.join(d, "x.npy"), np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
                out = os.path.join(d, "out.safetensors")
                r = subprocess.run([a.gradcam, "explain", "--model", path, "--input", os.path.join(d, "x.npy"),
                                    "--method", "gradcam", "--class", "7", "--save-tensors", out],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if r.returncode != 0:
                    print(f"{label:<22} gradcam: {r.stderr.strip().splitlines()[-1][:160]}")
                    bad = True
                    continue
                from safetensors.numpy import load_file
                ours = load_file(out)["logits"].reshape(2, -1)
                ref = ref.reshape(2, -1)
                rel = float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))
                bad |= rel > 1e-4
                print(f"{label:<22} logits relative L2 {rel:.2e} (std of the scores {ref.std():.3g})")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

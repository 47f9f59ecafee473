#!/usr/bin/env python3
"""Makes the tf2onnx test case (tests/tf2onnx.rs): a small Keras CNN with random weights,
exported by tf2onnx twice — with its NHWC input (a Transpose to NCHW first) and with
`inputs_as_nchw` — and reference outputs computed by TensorFlow itself.

    python3 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu tf2onnx onnxruntime
    /tmp/tf/bin/python tests/data/tf2onnx/generate.py

The network has what TensorFlow models bring: `padding="same"` at stride 2 (pads one more row
and column at the end: asymmetric), a depthwise convolution, batch norm (exported as Mul and
Add), ReLU6 (Clip), a residual Add, global average pooling (Squeeze, MatMul) and a softmax on
the classifier. References (`reference.safetensors`): `input` [2, 3, 64, 64] (NCHW: the layout
gradcam takes), `logits` (the scores before the softmax), `gradcam` [2, 64, 64] (Grad-CAM at the last
convolution's output, by `tf.GradientTape` — weights the spatial mean of ∂score/∂A, ReLU of the
weighted sum, min-max normalised, resized to 64×64 bilinearly with half-pixel centres and normalised
again, as pytorch-grad-cam does) for the classes in `case.json`.
"""
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
import tf2onnx
import onnxruntime as ort
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
SIDE, CLASSES, TARGETS = 64, 10, [3, 7]
tf.random.set_seed(7)
rng = np.random.default_rng(7)

L = tf.keras.layers
i = tf.keras.Input((SIDE, SIDE, 3))
x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(i)
x = L.BatchNormalization()(x)
x = L.ReLU(6.0)(x)
y = L.DepthwiseConv2D(3, padding="same")(x)
y = L.BatchNormalization()(y)
y = L.ReLU()(y)
y = L.Conv2D(16, 1)(y)
x = L.Add()([x, y])
x = L.Conv2D(24, 3, strides=2, padding="same", activation="relu")(x)
x = L.Conv2D(32, 3, padding="same", activation="relu", name="last_conv")(x)
x = L.GlobalAveragePooling2D()(x)
x = L.Dense(CLASSES, activation="softmax", name="scores")(x)
model = tf.keras.Model(i, x)
for layer in model.layers:
    if isinstance(layer, L.BatchNormalization):
        g, b, mu, var = layer.get_weights()
        layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.1, b.shape),
                           rng.normal(0, 0.1, mu.shape), rng.uniform(0.5, 1.5, var.shape)])

# Scores before the softmax, and the last convolution's output.
dense = model.get_layer("scores")
features = tf.keras.Model(i, [model.get_layer("last_conv").output, dense.input])


def logits_and_cam(nhwc):
    with tf.GradientTape() as tape:
        a, pooled = features(nhwc)
        tape.watch(a)
        logits = tf.matmul(pooled, dense.kernel) + dense.bias
        score = tf.reduce_sum(tf.gather(logits, TARGETS, axis=1, batch_dims=0) * tf.eye(len(TARGETS)))
    grads = tape.gradient(score, a)  # [n, h, w, k]
    alpha = tf.reduce_mean(grads, axis=[1, 2], keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(alpha * a, axis=-1)).numpy()  # [n, h, w]
    out = []
    for c in cam:
        c = c - c.min()
        c = c / (1e-7 + c.max())
        r = tf.image.resize(c[None, :, :, None], (SIDE, SIDE), method="bilinear").numpy()[0, :, :, 0]
        # pytorch-grad-cam normalises again after resizing (`aggregate_multi_layers`).
        r = r - r.min()
        out.append(r / (1e-7 + r.max()))
    return logits.numpy(), np.stack(out)


x = rng.standard_normal((2, SIDE, SIDE, 3)).astype(np.float32)
logits, cam = logits_and_cam(tf.constant(x))
spec = (tf.TensorSpec((None, SIDE, SIDE, 3), tf.float32, name="input"),)
for nchw, name in [(False, "model.onnx"), (True, "model.nchw.onnx")]:
    path = os.path.join(HERE, name)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=13, output_path=path,
                               inputs_as_nchw=["input"] if nchw else None)
    # ONNX Runtime agrees with Keras on the file (softmax of our logits).
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = x.transpose(0, 3, 1, 2) if nchw else x
    probs = sess.run(None, {sess.get_inputs()[0].name: feed})[0]
    soft = np.exp(logits - logits.max(1, keepdims=True))
    soft /= soft.sum(1, keepdims=True)
    assert np.abs(probs - soft).max() < 1e-5, name
save_file({"input": np.ascontiguousarray(x.transpose(0, 3, 1, 2)), "logits": logits,
           "gradcam": cam.astype(np.float32)}, os.path.join(HERE, "reference.safetensors"))
with open(os.path.join(HERE, "case.json"), "w") as f:
    json.dump({"targets": TARGETS, "side": SIDE, "tensorflow": tf.__version__,
               "tf2onnx": tf2onnx.__version__, "opset": 13}, f, indent=1)
print("ok", tf.__version__, tf2onnx.__version__)

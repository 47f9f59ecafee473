#!/usr/bin/env python3
"""Makes the ONNX reference cases of models whose graphs go beyond plain convolution chains
(products of computed tensors, channel splits and shuffles): not from the shared fixtures,
written for this repository.

Three models with seeded random weights, in eval mode:
- `mobilenet_v3_small_025`: torchvision's mobilenet_v3_small(width_mult=0.25, num_classes=10):
  SE gates (ReLU, Hardsigmoid), HardSwish.
- `tiny_efficientnet`: conv + SiLU, a torchvision SqueezeExcitation with SiLU and a Sigmoid gate,
  a strided conv + SiLU, global pooling and a linear layer: swish exported as Sigmoid·Mul.
- `tiny_shufflenet`: a stem conv and three torchvision ShuffleNetV2 units (channel split as
  Slice or Split, concatenation, channel shuffle as Reshape·Transpose·Reshape), a 1×1 conv,
  global pooling and a linear layer.

Each folder gets `model.onnx` (TorchScript exporter, opset 17), `model.dynamo.onnx` (the dynamo
exporter) and `reference.safetensors`: `input` [2, 3, 64, 64], `logits`, pytorch-grad-cam 1.5.7's
`gradcam` (GradCAM on the last block, the rows' top-1 classes), `guided_backprop_pgc`
(GuidedBackpropReLUModel: the guided rule on nn.ReLU only) and `guided_gradcam` (their product);
`case.json` names the targets and the target module. Run with torch, torchvision, grad-cam,
onnx, onnxscript and safetensors installed:  python3 tests/data/onnx_models/generate.py
"""
import json, os
import numpy as np
import torch, torchvision
from torch import nn
from safetensors.numpy import save_file
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.guided_backprop import GuidedBackpropReLUModel
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torchvision.ops import Conv2dNormActivation, SqueezeExcitation

HERE = os.path.dirname(os.path.abspath(__file__))


class TinyShuffleNet(nn.Module):
    def __init__(self):
        super().__init__()
        from torchvision.models.shufflenetv2 import InvertedResidual
        self.features = nn.Sequential(
            Conv2dNormActivation(3, 12, stride=2),
            InvertedResidual(12, 24, 2),
            InvertedResidual(24, 24, 1),
            InvertedResidual(24, 24, 1),
            Conv2dNormActivation(24, 32, kernel_size=1),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(32, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class TinyEfficientNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            Conv2dNormActivation(3, 16, stride=2, activation_layer=nn.SiLU),
            SqueezeExcitation(16, 4, activation=nn.SiLU),
            Conv2dNormActivation(16, 32, stride=2, activation_layer=nn.SiLU),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(32, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def randomize_bn(model, g):
    # Non-trivial inference statistics, so that folding them is exercised.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def make(name, model, layer_index):
    out = os.path.join(HERE, name)
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    randomize_bn(model, g)
    model.eval()
    x = torch.randn(2, 3, 64, 64, generator=g)
    torch.onnx.export(model, x, os.path.join(out, "model.onnx"), opset_version=17, dynamo=False,
                      input_names=["input"], dynamic_axes={"input": {0: "n"}})
    torch.onnx.export(model, (x,), os.path.join(out, "model.dynamo.onnx"), dynamo=True,
                      external_data=False)
    with torch.no_grad():
        logits = model(x)
    targets = logits.argmax(1).tolist()
    layer = model.features[layer_index]
    with GradCAM(model=model, target_layers=[layer]) as cam:
        gradcam = cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
    gb = GuidedBackpropReLUModel(model=model, device="cpu")
    guided = np.stack([gb(x[i:i + 1], target_category=targets[i]).transpose(2, 0, 1)
                       for i in range(x.shape[0])])
    ref = {"input": x.numpy(), "logits": logits.numpy(), "gradcam": gradcam.astype(np.float32),
           "guided_backprop_pgc": guided.astype(np.float32),
           "guided_gradcam": (guided * gradcam[:, None]).astype(np.float32)}
    save_file({k: np.ascontiguousarray(v) for k, v in ref.items()},
              os.path.join(out, "reference.safetensors"))
    with open(os.path.join(out, "case.json"), "w") as f:
        json.dump({"targets": targets, "target_layer": f"features.{len(model.features) - 1}",
                   "torch": torch.__version__, "torchvision": torchvision.__version__,
                   "seed": 7}, f, indent=1)
    print(name, targets, {k: v.shape for k, v in ref.items()})


if __name__ == "__main__":
    torch.manual_seed(7)
    make("mobilenet_v3_small_025",
         torchvision.models.mobilenet_v3_small(width_mult=0.25, num_classes=10), -1)
    torch.manual_seed(7)
    make("tiny_efficientnet", TinyEfficientNet(), -1)
    torch.manual_seed(7)
    make("tiny_shufflenet", TinyShuffleNet(), -1)

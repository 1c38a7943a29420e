#!/usr/bin/python3
"""Makes the small PyTorch-exported models tests/engine/test-onnx.c checks the
pointwise, broadcasting and reduction ops with (engine/ops/unary.c,
binary.c, add.c, reduce-mean.c).

Run from this folder with Debian's python3-torch (PyTorch 1.13):
    /usr/bin/python3 make-act-models.py
It writes, for each model NAME: NAME.onnx, NAME.input.bin (float32, batch 2)
and NAME.output.bin (PyTorch's float32 outputs for that input):
  torch-mobile (opset 13): what mobile networks are made of: ReLU6 (Clip),
    Hardswish (HardSigmoid and Mul at opset 13), a squeeze-and-excitation
    gate (a Mul broadcasting [C, 1, 1] over [C, H, W]), SiLU (Sigmoid and
    Mul) and x.mean([2, 3]) (ReduceMean without keepdims);
  torch-mobile-14: the same at opset 14, where Hardswish is one HardSwish;
  torch-gelu (opset 13): input normalization inside the graph (Sub and Div
    by constants), the exact GELU (Div, Erf, Add, Mul, Mul), LeakyReLU,
    Hardtanh (Clip), Tanh, a layer scale (Mul by a [C, 1, 1] parameter) and
    nn.LayerNorm over the last axis, which opset 13 writes as ReduceMean,
    Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul and Add.
"""
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(14)


def randomize_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n) + 0.5
            m.bias.data = torch.randn(n) * 0.1
            m.running_mean = torch.randn(n) * 0.1
            m.running_var = torch.rand(n) + 0.5


class SqueezeExcite(nn.Module):
    def __init__(self, c, squeeze):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, c, 1)

    def forward(self, x):
        s = nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(self.pool(x)))))
        return x * s


class Mobile(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False),
                                nn.BatchNorm2d(8), nn.Hardswish())
        self.se = SqueezeExcite(8, 4)
        self.pw = nn.Sequential(nn.Conv2d(8, 12, 1, bias=False), nn.BatchNorm2d(12), nn.SiLU())
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = self.pw(self.se(self.dw(self.stem(x))))
        return self.fc(x.mean([2, 3]))


class Gelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.gamma = nn.Parameter(torch.rand(6, 1, 1) + 0.5)
        self.norm = nn.LayerNorm(8)
        self.norm.weight.data = torch.rand(8) + 0.5
        self.norm.bias.data = torch.randn(8) * 0.1
        self.fc = nn.Linear(6 * 8 * 8, 4)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = nn.functional.gelu(self.conv1(x))
        x = nn.functional.leaky_relu(x, 0.1)
        x = torch.tanh(nn.functional.hardtanh(self.conv2(x), -1.0, 2.0)) * self.gamma
        x = self.norm(x)
        return self.fc(torch.flatten(x, 1))


def export(name, model, shape, opset):
    randomize_bn(model)
    model.eval()
    x = torch.rand(*shape) * 2.0 - 0.5
    with torch.no_grad():
        y = model(x)
    torch.onnx.export(model, x, name + ".onnx", opset_version=opset, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}},
                      training=torch.onnx.TrainingMode.EVAL)
    x.numpy().astype(np.float32).tofile(name + ".input.bin")
    y.numpy().astype(np.float32).tofile(name + ".output.bin")


mobile = Mobile()
export("torch-mobile", mobile, (2, 3, 12, 12), 13)
export("torch-mobile-14", mobile, (2, 3, 12, 12), 14)
export("torch-gelu", Gelu(), (2, 3, 8, 8), 13)

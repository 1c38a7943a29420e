#!/usr/bin/python3
"""Makes the small PyTorch-exported models tests/engine/test-onnx.c imports.

Run from this folder with Debian's python3-torch (PyTorch 1.13):
    /usr/bin/python3 make-torch-models.py
It writes, for each model NAME: NAME.onnx, NAME.input.bin (float32, batch 2)
and NAME.output.bin (PyTorch's float32 outputs for that input). Both models
are in eval mode with random BatchNorm statistics, so BN matters.
"""
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(7)


def randomize_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n) + 0.5
            m.bias.data = torch.randn(n) * 0.1
            m.running_mean = torch.randn(n) * 0.1
            m.running_var = torch.rand(n) + 0.5


class Vgg(nn.Module):
    """Conv with and without bias, BN, ceil-mode max and average pooling,
    torch.flatten, Linear (Gemm), Dropout, and a Reshape with a constant."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
            nn.AvgPool2d(2),
        )
        self.fc1 = nn.Linear(24, 16)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        x = torch.flatten(self.features(x), 1)
        x = self.drop(torch.relu(self.fc1(x)))
        return self.fc2(x.reshape(-1, 16))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                       nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.short is None else self.short(x)))


class ResNet(nn.Module):
    """Residual Adds with identity and projection shortcuts, global average
    pooling, a linear layer written as MatMul + Add, and a final Softmax."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU())
        self.block1 = Block(8, 8, 1)
        self.block2 = Block(8, 12, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.w = nn.Parameter(torch.randn(12, 5) * 0.3)
        self.b = nn.Parameter(torch.randn(5) * 0.1)

    def forward(self, x):
        x = self.pool(self.block2(self.block1(self.stem(x))))
        x = torch.flatten(x, 1)
        return torch.softmax(torch.matmul(x, self.w) + self.b, dim=1)


class View(nn.Module):
    """x.view(x.size(0), -1): with a dynamic batch axis PyTorch exports the
    shape as Shape, Gather, Unsqueeze and Concat; with a fixed one, as a
    constant."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))


class Flatten(nn.Module):
    """torch.flatten(x, 1): an ONNX Flatten, nothing to fold."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


class Arith(nn.Module):
    """A reshape to [batch, features] whose features are computed from the
    sizes: with a dynamic batch axis, Shape, Gather, Mul, Sub, Div, Cast,
    Add, Unsqueeze and Concat on constants."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        c = x.size(1)
        features = torch.div(c * 4 - c, 3, rounding_mode="trunc") * (x.size(2) * x.size(3)) + (c - c)
        return self.fc(x.reshape(x.shape[0], features))


def export(name, model, shape, opset, training, dynamic=True):
    randomize_bn(model)
    model.eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        y = model(x)
    torch.onnx.export(model, x, name + ".onnx", opset_version=opset, input_names=["input"],
                      output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}} if dynamic else None,
                      training=training)
    x.numpy().astype(np.float32).tofile(name + ".input.bin")
    y.numpy().astype(np.float32).tofile(name + ".output.bin")


# BatchNormalization kept as nodes (PRESERVE), and folded into the convs (EVAL).
export("torch-vgg", Vgg(), (2, 1, 13, 13), 13, torch.onnx.TrainingMode.PRESERVE)
export("torch-resnet", ResNet(), (2, 3, 10, 10), 9, torch.onnx.TrainingMode.EVAL)
# Shape arithmetic folded at import, with a dynamic and with a fixed batch.
for dynamic in (True, False):
    suffix = "-dynamic" if dynamic else "-fixed"
    for name, model in (("view", View()), ("flatten", Flatten()), ("arith", Arith())):
        export("torch-" + name + suffix, model, (2, 1, 8, 8), 13, torch.onnx.TrainingMode.EVAL,
               dynamic)

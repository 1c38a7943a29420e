#!/usr/bin/python3
"""Makes the small PyTorch-exported models tests/engine/test-onnx.c checks the
data-movement ops with (engine/ops/concat.c, slice.c, transpose.c, gather.c,
reshape.c).

Run from this folder with Debian's python3-torch (PyTorch 1.13):
    /usr/bin/python3 make-shape-models.py
It writes, for each model NAME: NAME.onnx, NAME.input.bin (float32, batch 2)
and NAME.output.bin (PyTorch's float32 outputs for that input); the
-dynamic models have a dynamic batch axis, the -fixed ones do not.
  torch-concat: DenseNet's growing torch.cat of every earlier layer's
    features (Concat of 2, 3 and 4 inputs), a SqueezeNet fire module and a
    GoogLeNet-like block of four branches joined on the channels.
  torch-shuffle: a ShuffleNet v2 unit: x.chunk(2, dim=1) (Split), its
    channel shuffle (Reshape, Transpose, Reshape, with the batch computed
    from x.size() when dynamic) and torch.cat.
  torch-slice: slices with steps on H and W (Slice), a permute of H and W
    (Transpose), channels picked by an index list with two strides (Gather)
    and a reshape of [C, H, W] to [C, W, H] (Reshape).
"""
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(11)


def randomize_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n) + 0.5
            m.bias.data = torch.randn(n) * 0.1
            m.running_mean = torch.randn(n) * 0.1
            m.running_var = torch.rand(n) + 0.5


class Dense(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.layers = nn.ModuleList(
            [nn.Sequential(nn.BatchNorm2d(4 + 2 * i), nn.ReLU(), nn.Conv2d(4 + 2 * i, 2, 3, padding=1))
             for i in range(3)])
        self.fire_squeeze = nn.Conv2d(10, 3, 1)
        self.fire_e1 = nn.Conv2d(3, 4, 1)
        self.fire_e3 = nn.Conv2d(3, 4, 3, padding=1)
        self.b1 = nn.Conv2d(8, 2, 1)
        self.b2 = nn.Conv2d(8, 3, 3, padding=1)
        self.b3 = nn.Conv2d(8, 1, 5, padding=2)
        self.b4 = nn.MaxPool2d(3, 1, 1)
        self.fc = nn.Linear(14, 5)

    def forward(self, x):
        features = [self.stem(x)]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        x = torch.cat(features, 1)
        s = torch.relu(self.fire_squeeze(x))
        x = torch.relu(torch.cat([self.fire_e1(s), self.fire_e3(s)], 1))
        x = torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


def channel_shuffle(x, groups):
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(n, -1, h, w)


class Shuffle(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.branch = nn.Sequential(
            nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
            nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(4),
            nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.stem(x)
        a, b = x.chunk(2, dim=1)
        x = channel_shuffle(torch.cat((a, self.branch(b)), dim=1), 2)
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


class Slicing(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.fc = nn.Linear(2 * 3 * 4 + 6 * 3 * 4, 5)

    def forward(self, x):
        x = torch.relu(self.conv(x))  # [6, 8, 7]
        a = x[:, 1:5:2, 1::3, ::2]  # [2, 3, 4]
        b = x.permute(0, 1, 3, 2)[:, [4, 2, 0, 5, 3, 1]]  # [6, 7, 8]
        b = b[:, :, 1:5, 2:8:2].reshape(x.size(0), 6, 3, 4)  # [6, 4, 3] -> [6, 3, 4]
        return self.fc(torch.cat([torch.flatten(a, 1), torch.flatten(b, 1)], 1))


def export(model, name, dynamic):
    model.eval()
    x = torch.randn(2, 3, 8, 7)
    with torch.no_grad():
        y = model(x)
    torch.onnx.export(model, x, name + ".onnx", opset_version=13, input_names=["input"],
                      output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}} if dynamic else None)
    x.numpy().astype(np.float32).tofile(name + ".input.bin")
    y.numpy().astype(np.float32).tofile(name + ".output.bin")


for cls, name in [(Dense, "torch-concat"), (Shuffle, "torch-shuffle"), (Slicing, "torch-slice")]:
    model = cls()
    randomize_bn(model)
    export(model, name + "-fixed", False)
    export(model, name + "-dynamic", True)

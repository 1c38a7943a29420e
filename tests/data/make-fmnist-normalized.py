#!/usr/bin/python3
"""Makes the model tests/tools/test-normalize.sh evaluates: a small CNN trained
by PyTorch on Fashion-MNIST with its inputs normalized by mean 0.2860 and std
0.3530 (torchvision's Normalize), exported to ONNX without taskprune's
normalization metadata, as a user's own model would be.

Run from this folder with Debian's python3-torch (PyTorch 1.13) and
dataset-fashion-mnist:
    /usr/bin/python3 make-fmnist-normalized.py
It writes
    fmnist-normalized.onnx        the model (opset 13, dynamic batch axis)
    fmnist-normalized.confusion   PyTorch's confusion matrix on the 10000 test
                                  images (rows: true class, columns: predicted)
    fmnist-normalized-N.png       test images N = 0..15, as 8-bit grey PNG
    fmnist-normalized.predicted   PyTorch's class for each of those images
    fmnist-normalized.input.npy   test images 0..3, normalized: the model's input
    fmnist-normalized.output.npy  PyTorch's logits for them
"""
import gzip

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

DATA = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530
torch.manual_seed(3)
torch.set_num_threads(1)


def read(kind):
    with gzip.open(f"{DATA}/{kind}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(f"{DATA}/{kind}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels.astype(np.int64)


def normalize(images):
    """ToTensor then Normalize: pixels in 0..1, then (x - mean) / std."""
    return (torch.from_numpy(images.astype(np.float32)) / 255.0 - MEAN) / STD


model = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
)

train_x, train_y = read("train")
test_x, test_y = read("t10k")
x, y = normalize(train_x[:12000]), torch.from_numpy(train_y[:12000])
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(2):
    order = torch.randperm(len(x))
    for i in range(0, len(x), 64):
        batch = order[i:i + 64]
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        opt.step()
model.eval()

with torch.no_grad():
    predicted = model(normalize(test_x)).argmax(1).numpy()
confusion = np.zeros((10, 10), np.int64)
np.add.at(confusion, (test_y, predicted), 1)
np.savetxt("fmnist-normalized.confusion", confusion, fmt="%d")
print("PyTorch test accuracy %.2f%%" % (100 * np.trace(confusion) / len(test_y)))

for n in range(16):
    Image.fromarray(test_x[n, 0]).save(f"fmnist-normalized-{n}.png")
np.savetxt("fmnist-normalized.predicted", predicted[:16], fmt="%d")
with torch.no_grad():
    np.save("fmnist-normalized.input.npy", normalize(test_x[:4]).numpy())
    np.save("fmnist-normalized.output.npy", model(normalize(test_x[:4])).numpy())

torch.onnx.export(model, normalize(test_x[:2]), "fmnist-normalized.onnx", opset_version=13,
                  input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})

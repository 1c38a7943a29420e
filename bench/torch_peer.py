"""PyTorch's side of bench/run.py: the benchmark networks, built as taskprune's
zoo builds them, and a timing loop.

    python3 torch_peer.py NET TASK BATCH RUNS [--device cpu|cuda] [--threads N]

TASK is `infer` (eval mode, no autograd) or `train` (forward, cross-entropy,
backward, SGD step with momentum). Prints one JSON object: the parameter
count, every timed run in ms (after warm-up runs) and the peak RSS in KiB.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn

VGG11 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512]


def vgg11_fmnist():
    """VGG-11 for 1x28x28: conv 3x3 (no bias) + BN + ReLU, max-pool after
    convs 1, 2, 4 and 6, global average pool, Linear 512-512-10."""
    layers, c = [], 1
    for v in VGG11:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v),
                       nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Dropout(0.5),
                         nn.Linear(512, 10))


def resnet18_fmnist():
    """torchvision's ResNet-18 with a 3x3 stride-1 one-channel stem and no stem max-pool."""
    import torchvision  # here, so that VGG-11 alone needs torch alone (bench/gpu-peer.py)

    net = torchvision.models.resnet18(num_classes=10)
    net.conv1 = nn.Conv2d(1, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


NETS = {"vgg11-fmnist": vgg11_fmnist, "resnet18-fmnist": resnet18_fmnist}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("net", choices=sorted(NETS))
    parser.add_argument("task", choices=["infer", "train"])
    parser.add_argument("batch", type=int)
    parser.add_argument("runs", type=int)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    net = NETS[args.net]().to(device)
    x = torch.rand(args.batch, 1, 28, 28, device=device) * 2 - 1
    labels = torch.randint(0, 10, (args.batch,), device=device)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        if args.task == "train":
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), labels)
            loss.backward()
            optimizer.step()
            loss.item()
        else:
            with torch.inference_mode():
                net(x).cpu()
        if device.type == "cuda":
            torch.cuda.synchronize()

    net.train(args.task == "train")
    ms = []
    for r in range(args.warmup + args.runs):
        start = time.perf_counter()
        step()
        if r >= args.warmup:
            ms.append((time.perf_counter() - start) * 1000)
    print(json.dumps({
        "params": sum(p.numel() for p in net.parameters()),
        "ms": ms,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    main()

"""PyTorch's side of the GPU benchmark (tools/gpu-check.sh): VGG-11 for
Fashion-MNIST on a CUDA device, timed as `taskprune bench --backend cuda`
times it.

    python3 gpu-peer.py [--train 64,256] [--infer 1,256] [--runs 20] [--warmup 5] [--tf32]

The network is bench/torch_peer.py's vgg11-fmnist (9,489,866 parameters),
which needs torch alone (torchvision, which the GPU machine may lack, only
for ResNet-18). A
train step is forward, cross-entropy, backward and an SGD step with momentum;
inference runs in eval and inference mode and copies the logits to the host.
Each run ends with torch.cuda.synchronize(). Without --tf32, TF32 is off in
cuDNN and cuBLAS (both sides then compute in FP32, as the cuda backend does
by default); with it, PyTorch's defaults (TF32 convolutions) apply.

Prints one JSON object: the device, versions, the parameter count and, per
task and batch, every timed run in ms and their median.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn

from torch_peer import vgg11_fmnist

def batches(text):
    return [int(b) for b in text.split(",") if b]


def time_runs(step, warmup, runs):
    """Every timed run of step() in ms, after warmup untimed ones."""
    ms = []
    for r in range(warmup + runs):
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        if r >= warmup:
            ms.append((time.perf_counter() - start) * 1000)
    return ms


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=batches, default=[64, 256])
    parser.add_argument("--infer", type=batches, default=[1, 256])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--tf32", action="store_true")
    args = parser.parse_args()

    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.manual_seed(0)
    device = torch.device("cuda")
    net = vgg11_fmnist().to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    result = {
        "device": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version(),
        "tf32": args.tf32,
        "params": sum(p.numel() for p in net.parameters()),
        "train": {},
        "infer": {},
    }

    net.train()
    for batch in args.train:
        x = torch.rand(batch, 1, 28, 28, device=device) * 2 - 1
        labels = torch.randint(0, 10, (batch,), device=device)

        def train_step():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), labels)
            loss.backward()
            optimizer.step()
            loss.item()

        ms = time_runs(train_step, args.warmup, args.runs)
        result["train"][str(batch)] = {"p50_ms": statistics.median(ms), "ms": ms}

    net.eval()
    for batch in args.infer:
        x = torch.rand(batch, 1, 28, 28, device=device) * 2 - 1

        def infer():
            with torch.inference_mode():
                net(x).cpu()

        ms = time_runs(infer, args.warmup, args.runs)
        result["infer"][str(batch)] = {"p50_ms": statistics.median(ms), "ms": ms}
    print(json.dumps(result))


if __name__ == "__main__":
    main()

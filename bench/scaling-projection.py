#!/usr/bin/env python3
"""scaling-projection.py — the data-parallel projection of docs/scaling.md.

    python3 bench/scaling-projection.py GFLOPS_PER_CORE

From the effective training rate of one core measured on this machine
(GFLOP/s: 6 x MACs per image x images/s, forward + the two backward
products), a rank that is a 32-core node running 32 times that rate, and a
per-rank batch of 32 images at 224 x 224, it prints per model and network:
the bytes each rank sends per step in a ring all-reduce (2 (P-1)/P x the
fp32 gradient), the step time at 8, 64 and 512 ranks without overlap
(compute + communication) and with the communication overlapped with the
backward pass (two thirds of the compute; the last bucket, holding the
first layers' gradients, starts only when the backward pass ends, so its
all-reduce is never hidden), and the scaling efficiency of
each, and the compute per step a rank needs for 90% efficiency without
overlap (9 x comm) and with it (the larger of comm / (2/3 + 1/9) and 9 x
the last bucket's all-reduce): a faster rank (a GPU)
below that loses efficiency. Network: bandwidth per link and a per-message latency alpha; the
all-reduce runs in 16 MiB buckets (bucket-mib, engine/tp-grad-buckets.h),
2 (P-1) messages each.
"""
import sys

MODELS = [  # name, parameters, MACs per 224x224 image (torchvision's definitions)
    ("VGG-11", 132.86e6, 7.61e9),
    ("ResNet-18", 11.69e6, 1.82e9),
    ("ResNet-50", 25.56e6, 4.11e9),
]
NETWORKS = [("10 Gbit/s", 10e9 / 8, 30e-6), ("100 Gbit/s", 100e9 / 8, 5e-6)]
RANKS = [8, 64, 512]
BATCH = 32
CORES = 32
BUCKET = 16 << 20


def main():
    gflops_core = float(sys.argv[1]) if len(sys.argv) > 1 else 19.0
    rate = gflops_core * 1e9 * CORES
    print("| model | grad MB | net | P | sent/step MB | compute s | comm s | step s (no overlap) | eff. "
          "| step s (overlap) | eff. | 90% needs compute ≥ s (no overlap / overlap) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, params, macs in MODELS:
        grad = params * 4
        compute = BATCH * 6 * macs / rate
        backward = compute * 2 / 3
        buckets = -(-grad // BUCKET)
        for net, bw, alpha in NETWORKS:
            for p in RANKS:
                sent = 2 * (p - 1) / p * grad
                comm = sent / bw + buckets * 2 * (p - 1) * alpha
                plain = compute + comm
                last = min(grad, BUCKET) * 2 * (p - 1) / p / bw + 2 * (p - 1) * alpha
                overlap = compute + max(last, comm - backward)
                print(f"| {name} | {grad / 1e6:.0f} | {net} | {p} | {sent / 1e6:.0f} | "
                      f"{compute:.3f} | {comm:.3f} | {plain:.3f} | {compute / plain:.0%} | "
                      f"{overlap:.3f} | {compute / overlap:.0%} | "
                      f"{9 * comm:.2f} / {max(comm / (2 / 3 + 1 / 9), 9 * last):.2f} |")


if __name__ == "__main__":
    main()

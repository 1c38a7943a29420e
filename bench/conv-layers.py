#!/usr/bin/python3
"""Grouped and depthwise convolution layers: taskprune against ONNX Runtime, layer by layer.

Takes the convolutions with groups > 1 of torchvision's mobilenet_v2 and resnext50_32x4d at
3x224x224 (each distinct shape once, found by running the models in PyTorch; random weights),
plus one ordinary 3x3 convolution as the yardstick, and writes each as an ONNX file of that
single Conv. Then times inference of each file at each batch size in rounds that alternate
the peers: taskprune (`taskprune bench`), optionally another build's plugins (--baseline-plugins,
e.g. the commit before a change), and ONNX Runtime for node (bench/ort-peer.js). Prints per
layer and batch the median of every peer's runs as GFLOP/s (2 x MACs per image / time) and the
ratios new/baseline and taskprune/ONNX Runtime (times: below 1 is faster). With --training,
also times a training step of each layer (taskprune bench --training --layers on the Conv
followed by a small classifier) and prints the Conv's forward + backward GFLOP/s (6 x MACs).

Needs PyTorch and torchvision (Debian's python3-torch, python3-torchvision) to make the
files; --models DIR reuses files made before. See bench/README.md.
"""
import argparse
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import Bench  # noqa: E402  (bench/run.py: peers and environment)

# torchvision builder, name prefix
NETS = {"mobilenet_v2": "mbv2", "resnext50_32x4d": "rnx50"}
# the yardstick: an ordinary 3x3 convolution (in, out, k, stride, pad, groups, h, w)
ORDINARY = (128, 128, 3, 1, 1, 1, 28, 28)


def layer_shapes():
    """[(name, (in, out, k, stride, pad, groups, h, w))] of the grouped convolutions."""
    import torch
    import torchvision

    shapes = []
    for builder, prefix in NETS.items():
        model = getattr(torchvision.models, builder)().eval()
        seen = []

        def hook(conv, inputs, _output):
            if conv.groups > 1:
                h, w = inputs[0].shape[2:]
                shape = (conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride[0],
                         conv.padding[0], conv.groups, int(h), int(w))
                if shape not in seen:
                    seen.append(shape)

        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.register_forward_hook(hook)
        with torch.no_grad():
            model(torch.zeros(1, 3, 224, 224))
        shapes += [(f"{prefix}-{i}", s) for i, s in enumerate(seen)]
    return shapes + [("ordinary", ORDINARY)]


def export(folder, name, shape, classifier):
    """The ONNX file of one Conv (with classifier: then flatten and a 10-way linear layer)."""
    import torch

    cin, cout, k, stride, pad, groups, h, w = shape
    conv = torch.nn.Conv2d(cin, cout, k, stride, pad, groups=groups)
    model = torch.nn.Sequential(conv)
    if classifier:
        out = (h + 2 * pad - k) // stride + 1
        model = torch.nn.Sequential(conv, torch.nn.Flatten(), torch.nn.Linear(cout * out * out, 10))
    path = os.path.join(folder, f"{name}{'-train' if classifier else ''}.onnx")
    torch.onnx.export(model.eval(), torch.zeros(1, cin, h, w), path, opset_version=13,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return path


def macs(shape):
    cin, cout, k, stride, pad, groups, h, w = shape
    out = (h + 2 * pad - k) // stride + 1
    return cout * out * out * (cin // groups) * k * k


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per round (default 20)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every peer (default 2)")
    parser.add_argument("--batch", default="1,32", help="batch sizes (default 1,32)")
    parser.add_argument("--layers", help="comma-separated layer names (default: all)")
    parser.add_argument("--models", help="folder for the ONNX files (kept; made when missing)")
    parser.add_argument("--training", action="store_true", help="also time training steps")
    parser.add_argument("--baseline-plugins",
                        help="TASKPRUNE_PLUGIN_PATH of another build to time beside this one")
    parser.add_argument("--builddir", default=os.path.join(HERE, ".."),
                        help="the build tree (default: the source tree)")
    parser.add_argument("--taskprune", help="an installed taskprune instead of the build tree's")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="taskprune-conv-") as tmp:
        folder = args.models or tmp
        os.makedirs(folder, exist_ok=True)
        bench = Bench(args, tmp)
        shapes = layer_shapes()
        if args.layers:
            keep = args.layers.split(",")
            shapes = [(n, s) for n, s in shapes if n in keep]
        batches = [int(b) for b in args.batch.split(",")]
        peers = ["taskprune"] + (["baseline"] if args.baseline_plugins else []) + ["ort"]
        for name, shape in shapes:
            files = {c: os.path.join(folder, f"{name}{'-train' if c else ''}.onnx")
                     for c in (False, True)}
            for c, path in files.items():
                if not os.path.exists(path) and (not c or args.training):
                    export(folder, name, shape, c)
            results = {}
            for batch in batches:
                times = {p: [] for p in peers}
                train = {p: [] for p in peers if p != "ort"}
                for _ in range(args.rounds):
                    for p in peers:
                        times[p] += time_inference(bench, args, p, files[False], shape, batch)
                        if args.training and p != "ort":
                            train[p] += time_training(bench, args, p, files[True], batch)
                results[batch] = (times, train)
            report(name, shape, results, args)


def peer_env(bench, args, peer):
    env = dict(bench.env)
    if peer == "baseline":
        env["TASKPRUNE_PLUGIN_PATH"] = args.baseline_plugins
    return env


def time_inference(bench, args, peer, path, shape, batch):
    if peer == "ort":
        dims = f"{shape[0]},{shape[6]},{shape[7]}"
        d = bench.run_json(["node", os.path.join(HERE, "ort-peer.js"), path, str(batch),
                            str(args.runs), str(args.threads), dims], bench.ort_env)
        return d["ms"]
    d = bench.run_json([bench.taskprune, "bench", path, "--batch-size", str(batch), "--runs",
                        str(args.runs), "--threads", str(args.threads), "--json"],
                       peer_env(bench, args, peer))
    return d["batches"][0]["ms"]


def time_training(bench, args, peer, path, batch):
    """The Conv's forward + backward ms of each round (one figure: the per-layer times)."""
    d = bench.run_json([bench.taskprune, "bench", path, "--batch-size", str(batch), "--runs",
                        str(args.runs), "--threads", str(args.threads), "--json", "--training",
                        "--layers"], peer_env(bench, args, peer))
    conv = next(layer for layer in d["batches"][0]["layers"] if layer["op"] == "Conv")
    return [conv["forward_ms"] + conv["backward_ms"]]


def report(name, shape, results, args):
    cin, cout, k, stride, pad, groups, h, w = shape
    kind = "depthwise" if groups == cin else f"groups {groups}" if groups > 1 else "ordinary"
    print(f"{name}: {cin}->{cout} {k}x{k} stride {stride} pad {pad} {kind} on {h}x{w}, "
          f"{macs(shape) / 1e6:.2f} M MACs per image", flush=True)
    for batch, (times, train) in results.items():
        med = {p: statistics.median(ms) for p, ms in times.items()}
        rate = {p: 2 * macs(shape) * batch / (m * 1e6) for p, m in med.items()}
        line = f"  batch {batch:3d} GFLOP/s " + " ".join(f"{p} {rate[p]:6.1f}" for p in med)
        line += f"  taskprune/ort {med['taskprune'] / med['ort']:.2f}"
        if "baseline" in med:
            line += f"  new/baseline {med['taskprune'] / med['baseline']:.2f}"
        print(line, flush=True)
        if args.training:
            tmed = {p: statistics.median(ms) for p, ms in train.items()}
            line = f"  batch {batch:3d} train GFLOP/s " + " ".join(
                f"{p} {6 * macs(shape) * batch / (m * 1e6):6.1f}" for p, m in tmed.items())
            if "baseline" in tmed:
                line += f"  new/baseline {tmed['taskprune'] / tmed['baseline']:.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()

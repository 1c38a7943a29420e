#!/usr/bin/python3
"""Benchmarks taskprune against PyTorch and ONNX Runtime on this machine.

Builds the same networks in taskprune (`taskprune zoo`, written as ONNX, which
ONNX Runtime runs too) and in PyTorch (bench/torch_peer.py), then times every
figure in rounds that alternate the peers, so they share the machine's state:
the median of all timed runs after warm-up is each peer's figure. Prints the
ratio of taskprune to each peer, OpenBLAS's sgemm rate and the fraction of it
that each network and its convolution layers reach, the peak RSS of training,
the cost of scoring with each criterion against a forward+backward pass, and
how latency falls with MACs. See bench/README.md.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
NETS = {  # name: (zoo architecture, parameters, M MACs) as the issue defines them
    "vgg11-fmnist": ("vgg11", 9489866, 95.1),
    "resnet18-fmnist": ("resnet18", 11172810, 455.8),
}
CRITERIA = ["lrp", "taylor", "magnitude", "random"]
# (figure, target ratio of taskprune's time to the peer's)
TARGETS = {("train", 64, "pytorch"): 0.8, ("infer", 1, "ort"): 1.25, ("infer", 64, "ort"): 1.0}


def log(message):
    print(message, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp  # the models and the sgemm program, removed at the end
        builddir = os.path.abspath(args.builddir)
        self.taskprune = args.taskprune or os.path.join(builddir, "tools", "taskprune")
        self.env = dict(os.environ)
        if not args.taskprune:  # the build tree's plugins, as a CPU-only install has them:
            # loading the cuda plugin maps the CUDA libraries (about 150 MiB of RSS) even when
            # only the cpu backend runs
            dirs = ["backends/cpu/.libs", "plugins/.libs", "criteria/.libs"]
            self.env["TASKPRUNE_PLUGIN_PATH"] = ":".join(os.path.join(builddir, d) for d in dirs)
        self.torch_env = dict(self.env, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS=str(args.threads))
        self.ort_env = dict(self.env, NODE_PATH=os.path.join(HERE, "..", "tests", "ort", "node_modules"))

    def run_json(self, argv, env=None):
        result = subprocess.run(argv, env=env or self.env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"bench: {' '.join(argv)} failed:\n{result.stderr}")
        return json.loads(result.stdout)

    def zoo(self, arch, width=1.0):
        path = os.path.join(self.tmp, f"{arch}-w{width}.onnx")
        subprocess.run([self.taskprune, "zoo", arch, "--width", str(width), "-o", path],
                       env=self.env, check=True, capture_output=True)
        return path

    def taskprune_bench(self, model, task, batch, runs, *extra):
        argv = [self.taskprune, "bench", model, "--batch-size", str(batch), "--runs", str(runs),
                "--threads", str(self.args.threads), "--json", *extra]
        if task == "train":
            argv.append("--training")
        return self.run_json(argv)

    def peer(self, name, net, model, task, batch, runs):
        """One round of one peer: (list of ms, peak RSS KiB, parameters or None)."""
        if name == "taskprune":
            d = self.taskprune_bench(model, task, batch, runs)
            return d["batches"][0]["ms"], d["peak_rss_kib"], d["params"]
        if name == "pytorch":
            d = self.run_json([sys.executable, os.path.join(HERE, "torch_peer.py"), net, task,
                               str(batch), str(runs), "--threads", str(self.args.threads)],
                              self.torch_env)
            return d["ms"], d["peak_rss_kib"], d["params"]
        d = self.run_json(["node", os.path.join(HERE, "ort-peer.js"), model, str(batch), str(runs),
                           str(self.args.threads)], self.ort_env)
        return d["ms"], d["peak_rss_kib"], None

    def sgemm_rate(self):
        exe = os.path.join(self.tmp, "sgemm")
        if not os.path.exists(exe):
            subprocess.run(["cc", "-O2", os.path.join(HERE, "sgemm.c"), "-o", exe, "-lopenblas"],
                           check=True)
        n = str(self.args.sgemm_size)
        return self.run_json([exe, n, n, n, str(self.args.threads), "3"])["gflops"]


def figures_of(args):
    figures = [("train", b) for b in args.train_batch] + [("infer", b) for b in args.batch]
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default=",".join(NETS), help="comma-separated, from: " + ", ".join(NETS))
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (default 6)")
    parser.add_argument("--samples", type=int, default=18,
                        help="timed runs per figure and peer, over all rounds (default 18, >= 10)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every peer (default 2)")
    parser.add_argument("--batch", default="1,64", help="inference batch sizes (default 1,64)")
    parser.add_argument("--train-batch", default="64", help="training batch sizes (default 64)")
    parser.add_argument("--builddir", default=os.path.join(HERE, ".."),
                        help="taskprune build tree (default: this source tree)")
    parser.add_argument("--taskprune", help="an installed taskprune instead of the build tree's")
    parser.add_argument("--sgemm-size", type=int, default=2048, help="M = N = K of the sgemm yardstick")
    parser.add_argument("--no-score", action="store_true", help="skip the criteria's scoring cost")
    parser.add_argument("--json", help="also write every measurement to this file")
    args = parser.parse_args()
    args.batch = [int(b) for b in args.batch.split(",") if b]
    args.train_batch = [int(b) for b in args.train_batch.split(",") if b]
    with tempfile.TemporaryDirectory(prefix="taskprune-bench-") as tmp:
        report = measure(args, Bench(args, tmp))
    print_report(args, report)
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(report, f, indent=1)
        os.replace(args.json + ".tmp", args.json)


def measure(args, bench):
    """Every figure of every net, as the report print_report() reads."""
    report = {"threads": args.threads, "nets": {}, "sgemm_gflops": []}

    for net in args.nets.split(","):
        if net not in NETS:
            sys.exit(f"bench: unknown net '{net}' (known: {', '.join(NETS)})")
        arch, params, _ = NETS[net]
        model = bench.zoo(arch)
        figures = figures_of(args)
        small = bench.zoo(arch, 0.45) if net == "vgg11-fmnist" else None
        times = {}  # (task, batch, peer) -> [ms]
        rss = {}
        for r in range(args.rounds):
            log(f"{net}: round {r + 1} of {args.rounds}")
            report["sgemm_gflops"] += bench.sgemm_rate()
            for task, batch in figures:
                peers = ["taskprune", "pytorch"] + (["ort"] if task == "infer" else [])
                if r % 2:
                    peers.reverse()
                per_round = -(-args.samples // args.rounds) * (5 if batch == 1 else 1)
                for peer in peers:
                    ms, kib, n = bench.peer(peer, net, model, task, batch, per_round)
                    if n is not None and n != params:
                        sys.exit(f"bench: {peer}'s {net} has {n} parameters, not {params}")
                    times.setdefault((task, batch, peer), []).extend(ms)
                    rss[(task, peer)] = max(rss.get((task, peer), 0), kib)
                if small is not None and task == "infer":
                    d = bench.taskprune_bench(small, task, batch, per_round)
                    times.setdefault((task, batch, "taskprune-small"), []).extend(d["batches"][0]["ms"])
                    report.setdefault("small_macs", d["macs"])
        log(f"{net}: layers")
        layers = {task: bench.taskprune_bench(model, task, 64, 5, "--layers")
                  for task in ("infer", "train")}
        scores = None
        if not args.no_score:
            log(f"{net}: scoring")
            scores = bench.taskprune_bench(model, "infer", 64, 5, "--score", ",".join(CRITERIA))
        report["nets"][net] = {
            "times": {f"{t}:{b}:{p}": ms for (t, b, p), ms in times.items()},
            "peak_rss_kib": {f"{t}:{p}": k for (t, p), k in rss.items()},
            "layers": layers, "scores": scores, "macs": layers["infer"]["macs"],
        }
    return report


def conv_rate(layers, passes):
    """GFLOP/s of the Conv layers together, and of the slowest one."""
    batch = layers["batches"][0]
    rates, flops, ms = [], 0, 0
    for layer in batch["layers"]:
        if layer["op"] != "Conv":
            continue
        t = layer["forward_ms"] + layer.get("backward_ms", 0)
        f = 2 * passes * layer["macs"] * batch["batch"]
        rates.append(f / t / 1e6)
        flops, ms = flops + f, ms + t
    return flops / ms / 1e6, min(rates)


def print_report(args, report):
    sgemm = statistics.median(report["sgemm_gflops"])
    print(f"\nOpenBLAS sgemm {args.sgemm_size}^3, {args.threads} threads: {sgemm:.1f} GFLOP/s "
          f"(median of {len(report['sgemm_gflops'])})\n")
    print(f"{'net':16} {'figure':10} {'taskprune':>10} {'PyTorch':>10} {'ORT':>10} "
          f"{'tp/PyTorch':>10} {'tp/ORT':>8} {'target':>14} {'tp GFLOP/s':>10} {'of sgemm':>8}")
    for net, d in report["nets"].items():
        t = {k: statistics.median(v) for k, v in d["times"].items()}
        for task, batch in figures_of(args):
            tp = t[f"{task}:{batch}:taskprune"]
            pt = t.get(f"{task}:{batch}:pytorch")
            ort = t.get(f"{task}:{batch}:ort")
            targets = [f"{p} <= {x}" for (tt, b, p), x in TARGETS.items() if (tt, b) == (task, batch)]
            ok = all((tp / (pt if p == "pytorch" else ort)) <= x
                     for (tt, b, p), x in TARGETS.items() if (tt, b) == (task, batch))
            gf = 2 * (3 if task == "train" else 1) * d["macs"] * batch / tp / 1e6
            print(f"{net:16} {task + ' b' + str(batch):10} {tp:10.2f} {pt:10.2f} "
                  + (f"{ort:10.2f}" if ort else f"{'':10}")
                  + f" {tp / pt:10.2f} " + (f"{tp / ort:8.2f}" if ort else f"{'':8}")
                  + f" {(', '.join(targets) + (' ok' if ok else ' MISSED')) if targets else '':>14}"
                  + f" {gf:10.1f} {gf / sgemm:8.0%}")
        for task, passes in (("infer", 1), ("train", 3)):
            total, worst = conv_rate(d["layers"][task], passes)
            print(f"{'':16} conv layers, {task} b64: {total:.1f} GFLOP/s = {total / sgemm:.0%} of "
                  f"sgemm (slowest layer {worst / sgemm:.0%}; target >= 70%)")
        rss = d["peak_rss_kib"]
        print(f"{'':16} peak RSS training: taskprune {rss['train:taskprune'] / 1024:.0f} MiB, "
              f"PyTorch {rss['train:pytorch'] / 1024:.0f} MiB "
              f"(ratio {rss['train:taskprune'] / rss['train:pytorch']:.2f}; target <= 1)")
        if d["scores"]:
            for s in d["scores"]["batches"][0]["scores"]:
                target = {"lrp": " (target <= 2)", "taylor": " (target <= 1.2)"}.get(s["criterion"], "")
                print(f"{'':16} scoring 64 samples with {s['criterion']:9}: {s['score_ms']:9.2f} ms "
                      f"= {s['score_ms'] / s['pass_ms']:.2f}x forward+backward{target}")
        if f"infer:1:taskprune-small" in t:
            share = report["small_macs"] / d["macs"]
            for batch in args.batch:
                ratio = t[f"infer:{batch}:taskprune-small"] / t[f"infer:{batch}:taskprune"]
                print(f"{'':16} {share:.0%} of the MACs (width 0.45), infer b{batch}: "
                      f"{ratio:.0%} of the time (target <= 30% at 20%)")
        print()


if __name__ == "__main__":
    main()

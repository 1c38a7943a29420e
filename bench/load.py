#!/usr/bin/python3
"""Batch-1 latency on a busy machine: taskprune against ONNX Runtime under a controlled load.

For each load level L (busy processes, one per core taken), starts L processes that spin,
then times batch-1 inference of each net in rounds that alternate the peers: taskprune at
its default thread count, taskprune with one thread (-j 1), ONNX Runtime with --threads
intra-op threads, and optionally another taskprune build (--baseline, e.g. the commit
before a change). Stops the busy processes after each level. Prints, per net and load, the
median of every peer's runs and the ratios the CPU-speed targets name: taskprune's default
against ONNX Runtime (target <= 1.25 under one busy process) and against -j 1 (target: never
more than 10% slower, at every load). See bench/README.md.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import Bench, log  # noqa: E402  (bench/run.py: models, peers, environment)

NETS = {"vgg11-fmnist": "vgg11", "resnet18-fmnist": "resnet18", "lenet5-fmnist": "lenet5"}
SPIN = "while True: pass"


def start_load(n):
    """n busy processes, each spinning on one core until stopped."""
    procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]
    time.sleep(0.5)  # let them reach the scheduler's steady state
    return procs


def stop_load(procs):
    for p in procs:
        p.send_signal(signal.SIGKILL)
    for p in procs:
        p.wait()


def taskprune_ms(binary, env, model, runs, threads):
    argv = [binary, "bench", model, "--batch", "1", "--runs", str(runs), "--json"]
    if threads is not None:
        argv += ["--threads", str(threads)]
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"load.py: {' '.join(argv)} failed:\n{result.stderr}")
    return json.loads(result.stdout)["batches"][0]["ms"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="vgg11-fmnist,resnet18-fmnist",
                        help="comma-separated, from: " + ", ".join(NETS))
    parser.add_argument("--loads", default="0,1", help="busy processes per level (default 0,1)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--runs", type=int, default=100, help="timed runs per peer and round")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime's threads (default 2)")
    parser.add_argument("--builddir", default=os.path.join(HERE, ".."),
                        help="taskprune build tree (default: this source tree)")
    parser.add_argument("--taskprune", help="an installed taskprune instead of the build tree's")
    parser.add_argument("--baseline", help="another taskprune binary to time beside it (its "
                        "plugins: --baseline-plugins)")
    parser.add_argument("--baseline-plugins", help="TASKPRUNE_PLUGIN_PATH for --baseline")
    parser.add_argument("--json", help="also write every measurement to this file")
    args = parser.parse_args()
    args.sgemm_size = 0

    report = {"threads": args.threads, "cpus": len(os.sched_getaffinity(0)), "levels": []}
    with tempfile.TemporaryDirectory(prefix="taskprune-load-") as tmp:
        bench = Bench(args, tmp)
        peers = {
            "default": lambda m: taskprune_ms(bench.taskprune, bench.env, m, args.runs, None),
            "j1": lambda m: taskprune_ms(bench.taskprune, bench.env, m, args.runs, 1),
            "ort": lambda m: bench.peer("ort", None, m, "infer", 1, args.runs)[0],
        }
        if args.baseline:
            env = dict(bench.env)
            if args.baseline_plugins:
                env["TASKPRUNE_PLUGIN_PATH"] = args.baseline_plugins
            peers["baseline"] = lambda m: taskprune_ms(args.baseline, env, m, args.runs, None)
        models = {net: bench.zoo(NETS[net]) for net in args.nets.split(",")}
        for load in (int(x) for x in args.loads.split(",")):
            procs = start_load(load)
            try:
                for net, model in models.items():
                    times = {p: [] for p in peers}
                    for r in range(args.rounds):
                        log(f"load {load}, {net}: round {r + 1} of {args.rounds}")
                        order = list(peers) if r % 2 == 0 else list(reversed(peers))
                        for p in order:
                            times[p] += peers[p](model)
                    report["levels"].append({"load": load, "net": net, "ms": times})
            finally:
                stop_load(procs)
    print_report(report)
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(report, f, indent=1)
        os.replace(args.json + ".tmp", args.json)


def print_report(report):
    print(f"\nbatch-1 latency, ms (median); {report['cpus']} CPUs; ONNX Runtime on "
          f"{report['threads']} threads; load = busy processes beside it\n")
    peers = list(report["levels"][0]["ms"]) if report["levels"] else []
    print(f"{'net':16} {'load':>4} " + " ".join(f"{p:>9}" for p in peers)
          + f" {'dflt/ORT':>9} {'dflt/j1':>8}")
    for level in report["levels"]:
        med = {p: statistics.median(ms) for p, ms in level["ms"].items()}
        ort_ok = "" if level["load"] != 1 else (" ok" if med["default"] / med["ort"] <= 1.25 else " MISSED")
        j1_ok = " ok" if med["default"] <= 1.10 * med["j1"] else " MISSED"
        print(f"{level['net']:16} {level['load']:4} " + " ".join(f"{med[p]:9.2f}" for p in peers)
              + f" {med['default'] / med['ort']:9.2f}{ort_ok:7} {med['default'] / med['j1']:8.2f}{j1_ok}")
    print("\ntargets: default/ORT <= 1.25 at load 1; default/j1 <= 1.10 at every load")


if __name__ == "__main__":
    main()

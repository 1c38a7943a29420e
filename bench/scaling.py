#!/usr/bin/env python3
"""The tables of docs/scaling.md "Measured on this machine", in one command.

    python3 bench/scaling.py                  # both tables, 3 rounds
    python3 bench/scaling.py --tables overlap --rounds 5

Run from the source tree after `make` (configured with Open MPI), by hand,
never by `make check`. It trains VGG-11 at width 0.5 on the synthetic
dataset (10 classes x 100 images, 3 x 32 x 32) for one epoch of batch 32
and reads the images per second `taskprune train` prints; LRP scoring is one
pruning step of a pipeline on a model trained once beforehand (`[criterion]
plugin = lrp`, `samples = 40`: 400 images, fine-tuning off), images per
second from the step's `score` seconds in the report.

Tables (`--tables`):
  scaling  1 rank x 1 thread, 2 ranks x 1 thread, 1 rank x 2 threads:
           training and LRP scoring images/s.
  overlap  2 ranks x 1 thread, training only, gradient all-reduce started
           during the backward pass (overlap-comm = true) or after it, with
           buckets of 16 MiB (the default) and of 1 MiB (`--buckets`).
Every round runs each configuration once, in an order reversed every other
round; a cell is the median over rounds, followed by every round's value.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

DATA = ["-D", "classes=10", "-D", "samples=100", "-D", "height=32", "-D", "width=32",
        "-D", "channels=3"]
PIPELINE = """[model]
path = {model}
[dataset]
plugin = synthetic
classes = 10
samples = 100
height = 32
width = 32
channels = 3
[task]
classes = 0,1,2,3,4,5,6,7,8,9
[criterion]
plugin = lrp
samples = 40
[prune]
max-steps = 1
[finetune]
epochs = 0
[output]
model = {folder}/pruned.onnx
report = {folder}/report.json
"""
SCORED = 400  # 40 per class, 10 classes


def command(args, ranks, threads, words):
    taskprune = os.path.join(args.builddir, "tools", "taskprune")
    line = [taskprune] + words + ["-j", str(threads)]
    if ranks > 1:
        line = [args.mpirun, "--oversubscribe", "-np", str(ranks),
                "-x", "TASKPRUNE_PLUGIN_PATH"] + line
    return line


def run(line, env):
    done = subprocess.run(line, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)
    if done.returncode != 0:
        sys.exit("failed (exit %d): %s\n%s" % (done.returncode, " ".join(line), done.stdout))
    return done.stdout


def train(args, env, folder, ranks, threads, keys=()):
    words = ["train", "--arch", "vgg11", "--width", "0.5", "--dataset", "synthetic"] + DATA
    words += ["--epochs", "1", "-t", "batch-size=32", "-t", "validation-fraction=0"]
    for key in keys:
        words += ["-t", key]
    words += ["-o", os.path.join(folder, "trained.onnx")]
    out = run(command(args, ranks, threads, words), env)
    shutil.rmtree(os.path.join(folder, "trained.onnx.checkpoint"), ignore_errors=True)
    found = re.search(r"epoch 1/1: .* ([0-9.]+) images/s", out)
    if not found:
        sys.exit("no images/s in the output of taskprune train:\n" + out)
    return float(found.group(1))


def score(args, env, folder, ranks, threads, pipeline):
    run(command(args, ranks, threads, ["run", pipeline]), env)
    with open(os.path.join(folder, "report.json"), encoding="utf-8") as f:
        report = json.load(f)
    return SCORED / report["steps"][1]["score_s"]


def cell(values):
    return "**%.0f** (%s)" % (statistics.median(values), ", ".join("%.0f" % v for v in values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", default="scaling,overlap")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--buckets", default="16,1", help="bucket sizes in MiB (overlap table)")
    parser.add_argument("--builddir", default=".")
    parser.add_argument("--mpirun", default="mpirun")
    args = parser.parse_args()
    tables = args.tables.split(",")
    build = os.path.abspath(args.builddir)
    args.builddir = build
    env = dict(os.environ)
    env["TASKPRUNE_PLUGIN_PATH"] = ":".join(
        os.path.join(build, d, ".libs") for d in ("backends/cpu", "plugins", "criteria", "comms"))
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")

    configs = []  # (table, label, function)
    with tempfile.TemporaryDirectory(prefix="tp-scaling-") as folder:
        if "scaling" in tables:
            model = os.path.join(folder, "base.onnx")
            run(command(args, 1, 2, ["train", "--arch", "vgg11", "--width", "0.5", "--dataset",
                                     "synthetic"] + DATA + ["--epochs", "1", "-t",
                                                            "batch-size=32", "-o", model]), env)
            pipeline = os.path.join(folder, "lrp.ini")
            with open(pipeline, "w", encoding="utf-8") as f:
                f.write(PIPELINE.format(model=model, folder=folder))
            for ranks, threads in ((1, 1), (2, 1), (1, 2)):
                label = "%d rank%s × %d thread%s" % (ranks, "s" if ranks > 1 else "", threads,
                                                     "s" if threads > 1 else "")
                configs.append(("scaling", label, "training",
                                lambda r=ranks, t=threads: train(args, env, folder, r, t)))
                configs.append(("scaling", label, "LRP scoring",
                                lambda r=ranks, t=threads: score(args, env, folder, r, t,
                                                                 pipeline)))
        if "overlap" in tables:
            for mib in args.buckets.split(","):
                for overlap in ("true", "false"):
                    label = "%s MiB buckets, overlap-comm = %s" % (mib, overlap)
                    keys = ("overlap-comm=" + overlap, "bucket-mib=" + mib)
                    configs.append(("overlap", label, "training",
                                    lambda k=keys: train(args, env, folder, 2, 1, k)))
        results = {(c[0], c[1], c[2]): [] for c in configs}
        for r in range(args.rounds):
            for table, label, what, measure in configs if r % 2 == 0 else configs[::-1]:
                value = measure()
                results[(table, label, what)].append(value)
                print("round %d: %s, %s: %.1f images/s" % (r + 1, label, what, value),
                      file=sys.stderr, flush=True)

    print("load average at the end: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    for table in ("scaling", "overlap"):
        whats = [w for t, _, w in results if t == table]
        whats = sorted(set(whats), key=whats.index)
        labels = [l for t, l, _ in results if t == table]
        labels = sorted(set(labels), key=labels.index)
        if not labels:
            continue
        print()
        print("| configuration | " + " | ".join("%s, images/s (median; rounds)" % w
                                                for w in whats) + " |")
        print("|---" * (len(whats) + 1) + "|")
        for label in labels:
            print("| %s | " % label + " | ".join(cell(results[(table, label, w)])
                                                 for w in whats) + " |")


if __name__ == "__main__":
    main()

"""The GPU benchmark's summary (tools/gpu-run.sh): reads the rounds'
JSON from RESULTS and prints, per figure, taskprune's and PyTorch's median
over every timed run of every round, their ratio, PyTorch's TF32 median and
that ratio, and whether the issue's targets are met; writes RESULTS/bench.json.

    python3 gpu-summary.py RESULTS ROUNDS GPU

RESULTS holds, for each round r in 1..ROUNDS, torch-r.json (gpu-peer.py),
taskprune-train-r.json and taskprune-infer-r.json (`taskprune bench --json`),
and torch-tf32.json (gpu-peer.py --tf32). Exits 1 if the two networks'
parameter counts differ (the comparison would be meaningless).
"""
import json
import statistics
import sys

FIGURES = (("train", 64), ("train", 256), ("infer", 1), ("infer", 256))


def main():
    out, rounds, gpu = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    def load(name):
        with open(f"{out}/{name}") as f:
            return json.load(f)

    theirs = {"train": {}, "infer": {}}
    ours = {"train": {}, "infer": {}}
    for r in range(1, rounds + 1):
        peer = load(f"torch-{r}.json")
        for task in ("train", "infer"):
            for batch, v in peer[task].items():
                theirs[task].setdefault(int(batch), []).extend(v["ms"])
            for b in load(f"taskprune-{task}-{r}.json")["batches"]:
                ours[task].setdefault(b["batch"], []).extend(b["ms"])
    tf32 = load("torch-tf32.json")
    params = load("taskprune-train-1.json")["params"]
    if params != peer["params"]:
        print(f"FAIL: parameter counts differ: taskprune {params}, PyTorch {peer['params']}")
        sys.exit(1)

    print(f"GPU: {gpu}; PyTorch {peer['torch']}, cuDNN {peer['cudnn']}; "
          f"VGG-11 {params} parameters; medians of {rounds} alternating rounds")
    print(f"{'figure':<18}{'taskprune ms':>14}{'PyTorch ms':>12}{'ratio':>7}"
          f"{'PyTorch TF32 ms':>17}{'ratio':>7}")
    rows = []
    for task, batch in FIGURES:
        a = statistics.median(ours[task][batch])
        p = statistics.median(theirs[task][batch])
        p32 = tf32[task][str(batch)]["p50_ms"]
        rows.append({"task": task, "batch": batch, "taskprune_ms": a, "torch_ms": p,
                     "ratio": a / p, "torch_tf32_ms": p32, "ratio_tf32": a / p32})
        print(f"{task + ' batch ' + str(batch):<18}{a:>14.3f}{p:>12.3f}{a / p:>7.2f}"
              f"{p32:>17.3f}{a / p32:>7.2f}")
    train256, infer1 = rows[1], rows[2]
    targets = {"train batch 256 <= 1.5x PyTorch (FP32)": train256["ratio"] <= 1.5,
               "infer batch 1 <= PyTorch (FP32)": infer1["ratio"] <= 1.0}
    for name, met in targets.items():
        print(f"target {name}: {'met' if met else 'NOT met'}")
    with open(f"{out}/bench.json", "w") as f:
        json.dump({"gpu": gpu, "torch": peer["torch"], "cudnn": peer["cudnn"],
                   "params": params, "rows": rows, "targets": targets}, f, indent=1)


if __name__ == "__main__":
    main()

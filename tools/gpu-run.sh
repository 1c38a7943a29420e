#!/bin/sh
# run.sh — the GPU check, run on the GPU machine from a folder that
# tools/gpu-check.sh packed (this file is tools/gpu-run.sh there):
#
#   1. every packed program and plugin finds its shared objects;
#   2. the GPU tests: the backend conformance test (every kernel of every
#      backend against the reference, cuda included) and the parity test
#      (training steps of VGG-11 and ResNet-20, criterion rankings, a
#      pipeline, cuda against cpu);
#   3. the benchmark: VGG-11 (full width, BatchNorm, 1x28x28) train step at
#      batch 64 and 256 and inference at batch 1 and 256, taskprune's cuda
#      backend against PyTorch (bench/gpu-peer.py) on the same GPU, in
#      alternating rounds, FP32 on both sides; PyTorch's default TF32 once
#      for reference. Prints the medians and the ratios and writes
#      results/bench.json.
#
# Exit status: 0 when everything ran and passed, 1 when something failed,
# 77 when there is no CUDA device (the tests said "skipped" and the
# benchmark did not run: nothing GPU was checked). Logs go to results/.
# Under 5 minutes on an H100; ROUNDS (default 3) and RUNS (default 20) set
# the benchmark's size.
set -u

here=$(cd "$(dirname "$0")" && pwd)
out=$here/results
rounds=${ROUNDS:-3}
runs=${RUNS:-20}
LD_LIBRARY_PATH=$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
TASKPRUNE_PLUGIN_PATH=$here/plugins
CK_DEFAULT_TIMEOUT=600
export LD_LIBRARY_PATH TASKPRUNE_PLUGIN_PATH CK_DEFAULT_TIMEOUT
mkdir -p "$out"
status=0
start=$(date +%s)

say() {
    printf '== %s\n' "$*"
}

say "1. shared objects"
missing=0
for file in "$here"/bin/* "$here"/plugins/*.so; do
    ldd "$file" >"$out/ldd.txt" 2>&1
    if grep -q 'not found' "$out/ldd.txt"; then
        echo "$(basename "$file"): $(grep 'not found' "$out/ldd.txt" | awk '{ print $1 }' | tr '\n' ' ')not found"
        missing=1
    fi
done
ldd "$here/bin/taskprune" | grep -E 'glib|protobuf' | sed 's/^[[:space:]]*/  taskprune uses /'
ldd "$here/plugins/cuda.so" | grep -E 'cudart|cublas\.|cudnn\.' | sed 's/^[[:space:]]*/  cuda.so uses /'
if [ "$missing" -ne 0 ]; then
    echo "FAIL: shared objects are missing (install them, or pack them in lib/)"
    exit 1
fi
if command -v nvidia-smi >/dev/null 2>&1; then
    gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
fi
say "GPU: ${gpu:-none found by nvidia-smi}"

say "2. GPU tests"
run_test() {
    name=$1
    timeout 150 "$here/bin/$name" >"$out/$name.log" 2>&1
    rc=$?
    grep -E '^(skipped|SKIP|parity|pipeline|[0-9]+%)' "$out/$name.log" | sed 's/^/  /'
    case $rc in
    0) echo "PASS: $name" ;;
    77) echo "SKIP: $name" ;;
    *)
        echo "FAIL: $name (exit $rc; log: $out/$name.log)"
        grep -E ':[FE]:' "$out/$name.log" | head -20 | sed 's/^/  /'
        status=1
        ;;
    esac
    return $rc
}
run_test test-conformance
run_test test-cuda-parity
if [ $? -eq 77 ]; then
    say "no CUDA device: the GPU tests were skipped and the benchmark does not run"
    echo "SKIPPED: nothing GPU was checked on this machine ($(hostname))"
    exit 77
fi

say "3. benchmark: VGG-11 (full width, BatchNorm), taskprune cuda against PyTorch"
"$here/bin/taskprune" zoo vgg11 -o "$out/vgg11.onnx" || exit 1
peer=yes
if ! python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "FAIL: no python3 with a CUDA-enabled torch here: taskprune's side only, no ratios"
    peer=no
    status=1
fi
for round in $(seq 1 "$rounds"); do
    if [ "$peer" = yes ]; then
        timeout 60 python3 "$here/bench/gpu-peer.py" --runs "$runs" >"$out/torch-$round.json" ||
            status=1
    fi
    timeout 60 "$here/bin/taskprune" bench "$out/vgg11.onnx" --backend cuda --training \
        --batch-size 64,256 --runs "$runs" --json >"$out/taskprune-train-$round.json" || status=1
    timeout 60 "$here/bin/taskprune" bench "$out/vgg11.onnx" --backend cuda --batch-size 1,256 \
        --runs "$runs" --json >"$out/taskprune-infer-$round.json" || status=1
    echo "  round $round of $rounds done"
done
if [ "$peer" = yes ]; then
    timeout 60 python3 "$here/bench/gpu-peer.py" --runs "$runs" --tf32 >"$out/torch-tf32.json" ||
        status=1
    python3 "$here/bench/gpu-summary.py" "$out" "$rounds" "${gpu:-unknown}" || status=1
else
    grep -h '"p50_ms"' "$out"/taskprune-*-1.json | sed 's/^ */  taskprune /'
fi

say "done in $(($(date +%s) - start)) s; logs and bench.json in $out"
[ "$status" -eq 0 ] && echo "PASS: GPU check" || echo "FAIL: GPU check"
exit "$status"

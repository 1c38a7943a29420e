#!/bin/sh
# Data parallelism under `mpirun -np 2` (docs/scaling.md): the engine's
# training, scoring and evaluation against one process (test-mpi), a
# pipeline that resumes on 2 ranks from a checkpoint written by 1 to the
# bytes of a run that never stopped, and a rank killed mid-training: the job
# ends with an error on every rank and the last checkpoint resumes. Skips,
# saying why, without the mpi communicator or mpirun.
. "$(dirname "$0")/cli-test.sh"

if ! "$TASKPRUNE" plugins 2>/dev/null | grep -q '^  mpi '; then
    echo "skipped: no mpi communicator plugin (configure found no Open MPI: install libopenmpi-dev openmpi-bin)"
    exit 77
fi
if [ -z "${TP_MPIRUN:-}" ] || ! command -v "$TP_MPIRUN" >/dev/null; then
    echo "skipped: no mpirun (Debian: openmpi-bin)"
    exit 77
fi
# CI runs as root in a container with fewer cores than ranks.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Open MPI leaks at exit inside components it has already unloaded, which
# LeakSanitizer cannot attribute (so no suppression can name them): a
# sanitized build checks leaks everywhere but under mpirun.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
mpirun() { timeout 300 "$TP_MPIRUN" --oversubscribe -x TASKPRUNE_PLUGIN_PATH "$@"; }

# expect_mpi RANKS EXIT-STATUS PATTERN -- COMMAND...: taskprune COMMAND on RANKS processes.
expect_mpi() {
    ranks=$1 want=$2 pattern=$3
    shift 4
    mpirun -np "$ranks" "$TASKPRUNE" "$@" >"$out" 2>"$err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: mpirun -np $ranks taskprune $*: exit $got, want $want"; cat "$out" "$err"; status=1
    elif ! grep -q -- "$pattern" "$out" "$err"; then
        echo "FAIL: mpirun -np $ranks taskprune $*: no '$pattern' in:"; cat "$out" "$err"; status=1
    else
        echo "ok: mpirun -np $ranks taskprune $*"
    fi
}

if CK_FORK=no mpirun -np 2 "$TP_TEST_MPI" >"$out" 2>&1; then
    echo "ok: test-mpi on 2 ranks"
else
    echo "FAIL: test-mpi on 2 ranks"; cat "$out"; status=1
fi

# A pipeline: 2 ranks straight through, and 1 rank for one step then 2 ranks
# resuming, write the same model, byte for byte. Fine-tuning is off so the
# models depend on the scores alone, which every rank count sums to the
# same ranking (LRP over the samples, 3 per class).
data="--dataset synthetic -D classes=4 -D samples=40 -D height=16 -D width=16"
expect 0 "test accuracy" -- train --arch lenet5 --width 0.5 $data --epochs 2 -t batch-size=16 -o "$dir/base.onnx"
# The base model on the synthetic data, the head of every keyfile below.
base_groups() {
    printf '[model]\npath = %s\n[dataset]\nplugin = synthetic\nclasses = 4\nsamples = 40\n' "$dir/base.onnx"
    printf 'height = 16\nwidth = 16\n'
}
pipeline() { # FILE MAX-STEPS OUTPUT
    base_groups >"$1"
    cat >>"$1" <<INI
[task]
classes = 0,2
[criterion]
plugin = lrp
samples = 3
[prune]
step = 0.2
goal = 0.6
max-steps = $2
[finetune]
epochs = 0
[output]
model = $3
latency-runs = 1
INI
}
pipeline "$dir/p2.ini" 3 "$dir/p2.onnx"
expect_mpi 2 0 "parameters .*removed" -- run "$dir/p2.ini"
check "only rank 0 printed the table" test "$(grep -c 'parameters .*removed' "$out")" -eq 1
pipeline "$dir/p1.ini" 1 "$dir/p1.onnx"
expect 0 "parameters .*removed" -- run "$dir/p1.ini"
pipeline "$dir/p1.ini" 3 "$dir/p1.onnx"
expect_mpi 2 0 "parameters .*removed" -- run --resume "$dir/p1.ini"
check "2 ranks resuming 1 rank's checkpoint write the bytes of a 2-rank run" cmp -s "$dir/p1.onnx" "$dir/p2.onnx"

# A sweep on 2 ranks deals its 4 runs out (each rank makes 2, alone); the
# same sweep as a job array (--sweep-index per run, then --merge) compares
# the same: every column but the measured latencies.
sweep() { # FILE FOLDER
    base_groups >"$1"
    cat >>"$1" <<INI
[criterion]
samples = 3
[prune]
step = 0.25
goal = 0.5
[finetune]
steps = 2
[output]
model = $dir/unused.onnx
latency-runs = 1
[sweep]
criteria = magnitude,lrp
tasks = first=0,1;last=2,3
folder = $2
INI
}
sweep "$dir/sweep-mpi.ini" "$dir/sweep-mpi"
expect_mpi 2 0 "sweep done" -- run "$dir/sweep-mpi.ini"
check "the 2-rank sweep compares 4 runs" test "$(wc -l <"$dir/sweep-mpi/comparison.csv")" -eq 5
sweep "$dir/sweep-array.ini" "$dir/sweep-array"
expect 1 "run 0 (first / magnitude) has no result: .*first-magnitude.run.ini.*--sweep-index 0" -- run --merge "$dir/sweep-array.ini"
for i in 0 1 2 3; do
    expect 0 "sweep run $i done" -- run --sweep-index $i "$dir/sweep-array.ini"
done
expect 1 "sweep-index 4: the sweep has runs 0 to 3" -- run --sweep-index 4 "$dir/sweep-array.ini"
expect 0 "sweep done" -- run --merge "$dir/sweep-array.ini"
check "the merged comparison has a plot per task" test -s "$dir/sweep-array/first.svg" -a -s "$dir/sweep-array/last.svg"
cut -d, -f1-10 "$dir/sweep-mpi/comparison.csv" >"$dir/a.csv"
cut -d, -f1-10 "$dir/sweep-array/comparison.csv" >"$dir/b.csv"
check "the job array's comparison equals the 2-rank sweep's" cmp -s "$dir/a.csv" "$dir/b.csv"

# Training on 2 ranks, uninterrupted, for the bytes to resume to.
long="--arch lenet5 --width 0.5 --dataset synthetic -D classes=3 -D samples=600 -D height=24 -D width=24 --epochs 3 -t batch-size=8 -j 1"
expect_mpi 2 0 "test accuracy" -- train $long -o "$dir/whole.onnx"
check "only rank 0 wrote its lines" test "$(grep -c '^epoch 3/3' "$out")" -eq 1

# Kill rank 1 once the first epoch's checkpoint is there.
"$TP_MPIRUN" --oversubscribe -x TASKPRUNE_PLUGIN_PATH -np 2 "$TASKPRUNE" train $long \
    -o "$dir/cut.onnx" --checkpoint "$dir/cut.ckpt" >"$out" 2>"$err" &
job=$!
victim=
for _ in $(seq 600); do
    if [ -f "$dir/cut.ckpt/state.ini" ]; then
        for pid in $(pgrep -P $job); do
            if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then
                victim=$pid
            fi
        done
        break
    fi
    sleep 0.1
done
[ -n "$victim" ] && kill -KILL "$victim"
wait $job
got=$?
check "a rank was killed after the first checkpoint" test -n "$victim"
check "the job ends with an error (exit $got)" test "$got" -ne 0
# Rank 0 either notices first and says so, or mpirun ends it first and says
# that it ended the job: which comes first is the scheduler's choice.
check "rank 0 stops with the job, and says why" \
    grep -q "rank 0 of 2: stopped because another process of the job failed\|mpirun noticed that process rank 1" "$err"
check "mpirun names the rank that died" grep -qi "rank 1.*signal 9\|signal 9.*rank 1\|exited on signal 9" "$err"
check "no process of the job is left" test -z "$(pgrep -P $job)"
# The killed job's rank 0 may still be exiting (slowly under a sanitizer)
# and holds its lock until it is gone: resume once it is.
holder=$(cat "$dir/cut.onnx.lock" 2>/dev/null || true)
for _ in $(seq 200); do
    [ -n "$holder" ] && kill -0 "$holder" 2>/dev/null || break
    sleep 0.1
done
expect_mpi 2 0 "test accuracy" -- train --resume --checkpoint "$dir/cut.ckpt" -o "$dir/cut.onnx"
check "resuming after the kill gives the uninterrupted run's model" cmp -s "$dir/cut.onnx" "$dir/whole.onnx"

exit $status

#!/bin/sh
# Kill anywhere: `taskprune specialize` and `taskprune train` are killed with
# SIGKILL at seeded points and resumed; every resume must end with the model
# bytes of the run that was never killed (and, for specialize, its report
# but for the columns that are measured times). A point is the Nth write(2)
# of the process: strace delivers SIGKILL on entry to that call, so the disk
# is left as a kill anywhere between write N-1 and write N would leave it,
# a kill lands in the middle of writing a file as often as between files,
# and a seed names the same points on every machine (TP_KILL_SEED, default
# 20; each point is logged). After each kill every file at an output path
# is whole (outputs go to a temporary name and are renamed), and the dead
# run's lock file does not block the resume. $TASKPRUNE and the plugin path
# come from `make check`.
. "$(dirname "$0")/cli-test.sh"

# traced STRACE-ARGS...: strace -f -qq STRACE-ARGS (which end with the command), through libtool
# when $TASKPRUNE is its wrapper script (make check exports $LIBTOOL), so
# that strace counts the program's own calls, not the wrapper's subshells'.
# (strace 6.1 injects no signal with --seccomp-bpf: every call is stopped.)
# LeakSanitizer cannot run under ptrace: a sanitized build checks leaks in
# the untraced runs only.
traced() {
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        ${LIBTOOL:+$LIBTOOL --mode=execute} strace -f -qq "$@"
}
if ! command -v strace >/dev/null || ! traced -o /dev/null -e trace=write true 2>/dev/null; then
    echo "SKIP: strace cannot trace here"
    exit 77
fi
seed=${TP_KILL_SEED:-20}

# next_point MAX: the next seeded point in 1..MAX not taken yet since
# `taken` was emptied (a portable LCG: every shell gives the same points).
taken=" "
next_point() {
    while :; do
        seed=$(((seed * 1103515245 + 12345) % 2147483648))
        point=$((seed / 65536 % $1 + 1))
        case "$taken" in *" $point "*) ;; *) break ;; esac
    done
    taken="$taken$point "
}

# writes LOG: the write(2) calls of the process strace started (the lowest
# pid in its log; the injection counts each thread's calls apart, and only
# the main thread writes).
writes() {
    main=$(awk '{ print $1 }' "$1" | sort -n | head -n 1)
    grep -c "^$main  *write(" "$1"
}

# killed N COMMAND...: taskprune COMMAND, killed on entry to its Nth write(2).
killed() {
    n=$1
    shift
    traced -o /dev/null -e trace=write -e inject=write:signal=KILL:when="$n" \
        "$TASKPRUNE" "$@" >"$out" 2>"$err"
}

# whole DIR...: every model at an output path in DIR loads (a temporary
# file, NAME.onnx.XXXXXX, may be left by the kill; it is not an output).
whole() {
    for f in "$@"; do
        [ -e "$f" ] || continue
        if ! "$TASKPRUNE" info "$f" >/dev/null 2>"$dir/info.err"; then
            echo "half-written: $f: $(cat "$dir/info.err")"
            return 1
        fi
    done
}

# The report without the columns that are measured times (score_s, prune_s,
# finetune_s, eval_s and the latencies differ from run to run; the rest is
# computed from the model and the data and must not).
untimed() {
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i !~ /_s$|latency/) keep[i] = 1 }
             { line = ""; for (i = 1; i <= NF; i++) if (i in keep) line = line $i ","; print line }' "$1"
}

data="--dataset synthetic -D classes=4 -D samples=40 -D height=16 -D width=16"
expect 0 "test accuracy" -- train --arch lenet5 --width 0.5 $data --epochs 2 -t batch-size=16 -o "$dir/base.onnx"

# ---------------------------------------------------------------- specialize
spec="specialize $dir/base.onnx $data --classes 1,3 -p step=0.25 -p goal=0.6 -p tolerance=100 -f steps=3 --criterion magnitude --set output.latency-runs=1 -q"
mkdir "$dir/whole"
traced -o "$dir/whole.log" -e trace=write "$TASKPRUNE" $spec -o "$dir/whole/s.onnx" >"$out" 2>"$err"
check "the uninterrupted specialize runs (exit $?)" test -s "$dir/whole/s.onnx"
total=$(writes "$dir/whole.log")
echo "specialize makes $total write(2) calls; seed $seed"
[ "$total" -ge 10 ] || { echo "FAIL: specialize made $total writes, too few for 10 points"; exit 1; }

i=1
while [ $i -le 10 ]; do
    next_point "$total"
    rm -rf "$dir/cut"
    mkdir "$dir/cut"
    killed $point $spec -o "$dir/cut/s.onnx"
    got=$?
    echo "kill $i: specialize, on entry to write $point of $total: exit $got"
    check "kill $i: killed (exit 137)" test $got -eq 137
    check "kill $i: every model at an output path is whole" whole "$dir"/cut/*.onnx "$dir"/cut/*.checkpoint/*.onnx
    if [ -e "$dir/cut/s.onnx.checkpoint/state.ini" ]; then
        expect 0 "stopped:" -- $spec -o "$dir/cut/s.onnx" --resume
    else
        expect 0 "stopped:" -- $spec -o "$dir/cut/s.onnx" # killed before its first checkpoint
    fi
    check "kill $i: the resumed model is the uninterrupted run's, byte for byte" cmp "$dir/cut/s.onnx" "$dir/whole/s.onnx"
    untimed "$dir/cut/s.onnx.report.csv" >"$dir/cut.csv"
    untimed "$dir/whole/s.onnx.report.csv" >"$dir/whole.csv"
    check "kill $i: so is the report, but for measured times" cmp "$dir/cut.csv" "$dir/whole.csv"
    i=$((i + 1))
done

# ---------------------------------------------------------------- train
train="train --arch lenet5 --width 0.5 $data --epochs 4 -t batch-size=8 -q"
traced -o "$dir/train.log" -e trace=write "$TASKPRUNE" $train -o "$dir/t.onnx" --checkpoint "$dir/t.ckpt" >"$out" 2>"$err"
check "the uninterrupted train runs" test -s "$dir/t.onnx"
total=$(writes "$dir/train.log")
echo "train makes $total write(2) calls"
[ "$total" -ge 6 ] || { echo "FAIL: train made $total writes, too few for 6 points"; exit 1; }
taken=" "

i=1
while [ $i -le 6 ]; do
    next_point "$total"
    rm -rf "$dir/k.onnx" "$dir/k.ckpt"
    killed $point $train -o "$dir/k.onnx" --checkpoint "$dir/k.ckpt"
    got=$?
    echo "kill $i: train, on entry to write $point of $total: exit $got"
    check "kill $i: killed (exit 137)" test $got -eq 137
    check "kill $i: every model at an output path is whole" whole "$dir/k.onnx" "$dir"/k.ckpt/*.onnx
    if [ -e "$dir/k.ckpt/state.ini" ]; then
        expect 0 "test accuracy" -- train --resume --checkpoint "$dir/k.ckpt" -q
    else
        expect 0 "test accuracy" -- $train -o "$dir/k.onnx" --checkpoint "$dir/k.ckpt"
    fi
    check "kill $i: the resumed model is the uninterrupted run's, byte for byte" cmp "$dir/k.onnx" "$dir/t.onnx"
    i=$((i + 1))
done

exit $status

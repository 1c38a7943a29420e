#!/bin/sh
# `taskprune specialize` and `run` guard what a user has: outputs that
# would overwrite an input or cannot be written are refused before any work,
# a resume with other settings is refused naming the keys, class indices
# are not guessed, every group and key is checked first (a sweep's too),
# Ctrl-C leaves a checkpoint and the command that continues, and the table
# reports the chosen step's accuracy, why the run stopped and a latency
# ratio as measured.
. "$(dirname "$0")/cli-test.sh"

data="--dataset synthetic -D classes=4 -D samples=40 -D height=16 -D width=16"
expect 0 "test accuracy" -- train --arch lenet5 --width 0.5 $data --epochs 2 -t batch-size=16 -o "$dir/base.onnx"
cp "$dir/base.onnx" "$dir/copy.onnx"
small="-p step=0.25 -p goal=0.6 -p tolerance=100 -f steps=3 --criterion magnitude --set output.latency-runs=5"

# 1. An output that is the base model (or another name of it) is refused
# before any work; the base model is untouched.
expect 1 "is the input .*copy.onnx" -- specialize "$dir/copy.onnx" $data --classes 1,3 $small -o "$dir/copy.onnx"
check "the base model is untouched" cmp -s "$dir/base.onnx" "$dir/copy.onnx"
check "no checkpoint was started" test ! -e "$dir/copy.onnx.checkpoint"
ln "$dir/copy.onnx" "$dir/link.onnx"
expect 1 "is the input" -- specialize "$dir/copy.onnx" $data --classes 1,3 $small -o "$dir/link.onnx"
check "the base model is untouched through a hard link" cmp -s "$dir/base.onnx" "$dir/copy.onnx"

# 6. Outputs, checkpoint folders and resume state are checked before data.
mkdir "$dir/folder.onnx"
expect 1 "folder.onnx: is a folder" -- specialize "$dir/base.onnx" $data --classes 1,3 $small -o "$dir/folder.onnx"
check "a folder output fails before step 0" test ! -e "$dir/folder.onnx.checkpoint"
expect 1 "folder $dir/nowhere does not exist" -- specialize "$dir/base.onnx" $data --classes 1,3 $small -o "$dir/nowhere/s.onnx"
expect 1 "cannot resume: no checkpoint in" -- specialize "$dir/base.onnx" $data --classes 1,3 $small -o "$dir/r.onnx" --resume
check "resuming without a checkpoint computes nothing" test ! -e "$dir/r.onnx.checkpoint"
if [ "$(id -u)" -ne 0 ]; then
    mkdir "$dir/ro" && chmod a-w "$dir/ro"
    expect 1 "cannot write in folder" -- specialize "$dir/base.onnx" $data --classes 1,3 $small -o "$dir/ro/z.onnx"
fi

# 2, 8. The table's validation accuracy is the chosen step's (the CSV row
# of that step), the JSON result has it, and the stop reason is printed.
expect 0 "stopped: goal reached" -- specialize "$dir/base.onnx" $data --classes 1,3 $small -o "$dir/s.onnx"
chosen=$(sed -n 's/^model .* (step \([0-9]*\))$/\1/p' "$out")
shown=$(sed -n 's/^accuracy (validation) *[0-9.]*% *\([0-9.]*\)%.*/\1/p' "$out")
want=$(awk -F, -v s="$chosen" '$1 == s && $13 == 1 { printf "%.2f", 100 * $7 }' "$dir/s.onnx.report.csv")
check "the table's validation accuracy ($shown%) is step $chosen's ($want%)" test -n "$want" -a "$shown" = "$want"
check "the chosen step is not step 0" test "$chosen" -gt 0
check "the JSON result has the validation accuracy" grep -q '"accuracy" : [0-9.]' "$dir/s.onnx.report.json"
check "the JSON result has the stop reason" grep -q '"stop_reason" : "goal reached' "$dir/s.onnx.report.json"

# 5. The latency ratio says faster only when measured faster.
base_ms=$(sed -n 's/^latency (batch 1) *\([0-9.]*\) ms.*/\1/p' "$out")
ms=$(sed -n 's/^latency (batch 1) *[0-9.]* ms *\([0-9.]*\) ms.*/\1/p' "$out")
if grep -q "x faster)" "$out"; then
    check "faster: $ms ms < $base_ms ms" awk -v a="$base_ms" -v b="$ms" 'BEGIN { exit !(b < a) }'
elif grep -q "x slower)" "$out"; then
    check "slower: $ms ms > $base_ms ms" awk -v a="$base_ms" -v b="$ms" 'BEGIN { exit !(b > a) }'
else
    check "the latency ratio is within noise" grep -q "x, within noise)" "$out"
fi

# compare: the specialized model beside its base, layer by layer.
expect 0 "latency .*(batch 1, p50 of 5 runs; B: " -- compare "$dir/base.onnx" "$dir/s.onnx" -n 5
check "compare: B has fewer parameters" awk '/^parameters/ { exit !($3 < $2) }' "$out"
expect 0 '"within_noise": ' -- compare "$dir/base.onnx" "$dir/s.onnx" -n 3 --json
expect 2 "give A.onnx and B.onnx" -- compare "$dir/base.onnx"

# 3. A resume with other settings is refused, naming the keys that differ;
# with the same settings it continues.
expect 1 "\[prune\] step: 0.25 in the checkpoint, 0.2 now" -- specialize "$dir/base.onnx" $data --classes 1,3 $small -p step=0.2 -o "$dir/s.onnx" --resume
expect 1 "\[criterion\] plugin: magnitude in the checkpoint, random now" -- specialize "$dir/base.onnx" $data --classes 1,3 $small --criterion random -o "$dir/s.onnx" --resume
expect 0 '"stop_reason" : "goal reached' -- specialize "$dir/base.onnx" $data --classes 1,3 $small -o "$dir/s.onnx" --resume --json

# 4. A model without class names and a dataset of another class count:
# refused unless [task] class-map says which output is which class.
torch="--dataset synthetic -D classes=4 -D samples=20 -D height=13 -D width=13"
vgg="$(dirname "$0")/../data/torch-vgg.onnx"
expect 1 "\[task\] class-map: the base model .* has 3 outputs and dataset 'synthetic' 4 classes" -- specialize "$vgg" $torch --classes 1,2 $small -o "$dir/v.onnx"
check "nothing was written" test ! -e "$dir/v.onnx"
printf '[task]\nclass-map = 2,0\n' >"$dir/map.ini"
expect 0 "stopped:" -- specialize "$vgg" $torch --classes 1,2 $small -C "$dir/map.ini" -o "$dir/v.onnx"
printf '[task]\nclass-map = 0,5\n' >"$dir/map.ini"
expect 1 "\[task\] class-map: '5' is not an output of the base model (0 to 2)" -- specialize "$vgg" $torch --classes 1,2 $small -C "$dir/map.ini" -o "$dir/v.onnx"

# 7. Every group and key is checked before the first step.
printf '[criterion lpr]\nrule = zplus\n' >"$dir/typo.ini"
expect 1 "group \[criterion lpr\]: only a \[sweep\]" -- specialize "$dir/base.onnx" $data --classes 1,3 $small -C "$dir/typo.ini" -o "$dir/t.onnx"
printf '[prune]\nstep = 0.25\ngoal = 0.5\nstep = 0.5\n' >"$dir/twice.ini"
expect 1 "twice.ini:4: \[prune\] step: given twice (first on line 2)" -- specialize "$dir/base.onnx" $data --classes 1,3 -C "$dir/twice.ini" -o "$dir/t.onnx"
printf '[prune]\nstep 0.25\n' >"$dir/syntax.ini"
expect 1 "syntax.ini:2: 'step 0.25' is neither KEY = VALUE" -- run "$dir/syntax.ini"
cat >"$dir/sweep.ini" <<INI
[model]
path = $dir/base.onnx
[dataset]
plugin = synthetic
classes = 4
samples = 40
height = 16
width = 16
[task]
classes = 0,1
[criterion lpr]
rule = zplus
[prune]
step = 0.25
goal = 0.5
[finetune]
steps = 3
[output]
model = $dir/unused.onnx
[sweep]
criteria = random,lrp
folder = $dir/sweep
INI
expect 1 "group \[criterion lpr\]: 'lpr' is not a criterion of the sweep (random, lrp)" -- run "$dir/sweep.ini"
expect 1 "\[prune\] step: 2 is out of range" -- run "$dir/sweep.ini" --set "criterion lpr.rule=x" --set prune.step=2 --set sweep.criteria=lpr
expect 1 "--set prune: not GROUP.KEY=VALUE" -- run "$dir/sweep.ini" --set prune
sed -e 's/criterion lpr/criterion lrp/' -e 's/rule = zplus/rule = nope/' "$dir/sweep.ini" >"$dir/sweep2.ini"
expect 1 "task / lrp: .*\[criterion\] rule" -- run "$dir/sweep2.ini"
check "a bad key of the last run fails before the first runs" test ! -e "$dir/sweep"
expect 1 "\[sweep\] criteria: 'random' is listed twice" -- run "$dir/sweep.ini" --set sweep.criteria=random,lrp,random
expect 1 "\[sweep\] tasks: 'a' is named twice" -- run "$dir/sweep2.ini" --set "sweep.tasks=a=0,1;b=1,2;a=2,3"
expect 1 "\[sweep\] tasks: '../a' cannot name files in" -- run "$dir/sweep2.ini" --set "sweep.tasks=../a=0,1"
check "a refused sweep made no folder" test ! -e "$dir/sweep"

# 8. Messages that help.
expect 1 "\[task\] classes: 'Sandal' is not a class .*class-0, class-1, class-2, class-3" -- specialize "$dir/base.onnx" $data --classes Sandal,class-1 -o "$dir/x.onnx"
expect 0 "stopped:" -- specialize "$dir/base.onnx" $data --classes CLASS-1,Class-3 $small -o "$dir/case.onnx"
expect 0 "Usage:.*help" -- help help
expect 1 "is a folder" -- info "$dir"

# 10. A one-class task is refused.
expect 1 "one-class task" -- specialize "$dir/base.onnx" $data --classes 2 -o "$dir/one.onnx"

# 9. Ctrl-C: a checkpoint, the command that continues, exit 130; that
# command finishes the run.
long="--dataset synthetic -D classes=4 -D samples=600 -D height=16 -D width=16"
"$TASKPRUNE" specialize "$dir/base.onnx" $long --classes 0,2 -p step=0.1 -p goal=0.3 -f epochs=2 \
    --criterion magnitude -o "$dir/c.onnx" >"$out" 2>"$err" &
pid=$!
i=0
while [ ! -e "$dir/c.onnx.checkpoint/state.ini" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid 2>/dev/null
wait $pid
got=$?
check "Ctrl-C exits 130 or the run was done (exit $got)" test "$got" -eq 130 -o "$got" -eq 0
if [ "$got" -eq 130 ]; then
    check "Ctrl-C says how to continue" grep -q "continue with 'taskprune specialize .* --resume'" "$err"
    again=$(sed -n "s/.*continue with '\(.*\)'$/\1/p" "$err")
    expect 0 "stopped:" -- $(echo "$again" | sed 's/^taskprune //')
fi

exit $status

#!/bin/sh
# `taskprune specialize` and `taskprune run` on the synthetic dataset: a
# specialization with its table and outputs, eval of the result on its own
# classes, a sweep's comparison, and configuration errors.
. "$(dirname "$0")/cli-test.sh"

data="--dataset synthetic -D classes=4 -D samples=40 -D height=16 -D width=16"
expect 0 "test accuracy" -- train --arch lenet5 --width 0.5 $data --epochs 3 -t batch-size=16 -o "$dir/base.onnx"

expect 0 "parameters .*removed" -- specialize "$dir/base.onnx" $data --classes class-1,class-3 \
    --criterion magnitude -p step=0.2 -p goal=0.5 -f steps=5 -o "$dir/s.onnx"
check "the table names the classes" grep -q "class-1, class-3" "$out"
check "the table has the latency" grep -q "latency (batch 1)" "$out"
for f in s.onnx s.onnx.report.json s.onnx.report.csv s.onnx.svg s.onnx.checkpoint/state.ini; do
    check "specialize wrote $f" test -s "$dir/$f"
done
expect 0 "accuracy .*(.*/80)" -- eval "$dir/s.onnx" $data
expect 0 "class-3 " -- eval "$dir/s.onnx" $data
expect 0 "Conv  *\[" -- info "$dir/s.onnx"

# score: the units its marks (*) say the first step removes are the ones a
# dry run of the first step removes; a dry run writes nothing.
expect 0 "fc1 (" -- score "$dir/base.onnx" $data --classes class-1,class-3 --criterion magnitude
sed -n 's/^\([a-z0-9_]*\) ([0-9]* units):/\1/p' "$out" |
    awk '{ for (i = 2; i <= NF; i++) if ($i ~ /\*$/) { split($i, a, ":"); print $1, a[1] } }' | sort >"$dir/marked"
check "score marks units" test -s "$dir/marked"
expect 0 '"scores": \[' -- score "$dir/base.onnx" $data --classes class-1,class-3 --criterion magnitude --json
expect 0 "step 1: removes" -- specialize "$dir/base.onnx" $data --classes class-1,class-3 \
    --criterion magnitude -p max-steps=1 --dry-run -o "$dir/dry.onnx"
sed -n 's/^step 1: removes //p' "$out" | tr ';' '\n' |
    awk '{ n = split($2, u, ","); for (i = 1; i <= n; i++) print $1, u[i] }' | sort >"$dir/removed"
check "score marks what the dry run's first step removes" cmp -s "$dir/marked" "$dir/removed"
check "a dry run writes nothing" test ! -e "$dir/dry.onnx" -a ! -e "$dir/dry.onnx.checkpoint"
expect 0 "goal reached" -- specialize "$dir/base.onnx" $data --classes class-1,class-3 \
    --criterion magnitude -p step=0.2 -p goal=0.5 --dry-run
expect 0 '"stop_reason": "goal reached' -- specialize "$dir/base.onnx" $data --classes class-1,class-3 \
    --criterion magnitude -p step=0.2 -p goal=0.5 --dry-run --json

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
[criterion]
samples = 5
[criterion lrp]
rule = zplus
[prune]
step = 0.25
goal = 0.5
[finetune]
steps = 3
[output]
model = $dir/unused.onnx
latency-runs = 2
[sweep]
criteria = random,lrp
tasks = first=0,1;last=class-2,class-3
folder = $dir/sweep
INI
expect 0 "sweep done" -- run "$dir/sweep.ini"
check "the comparison has a row per run" test "$(wc -l <"$dir/sweep/comparison.csv")" -eq 5
check "a plot per task" test -s "$dir/sweep/first.svg" -a -s "$dir/sweep/last.svg"
check "the sweep's page has each task" test "$(grep -c '<h2>Task ' "$dir/sweep/comparison.html")" -eq 2
expect 0 "^page " -- report "$dir/sweep/comparison.json" -o "$dir/sweep/again.html"
check "report rebuilds the sweep's page" cmp -s "$dir/sweep/comparison.html" "$dir/sweep/again.html"
check "the lrp run used its own keys" test -s "$dir/sweep/last-lrp.onnx"

printf '[model]\npath=%s\n[task]\nclasses=1\n[prune]\nstep=0\n' "$dir/base.onnx" >"$dir/bad.ini"
expect 1 "bad.ini: \[prune\] step: 0 is out of range" -- run "$dir/bad.ini"
# A bad dataset plugin: the keyfile named once, with the group and key.
printf '[model]\npath=%s\n[dataset]\nplugin=nope\n[task]\nclasses=1,2\n[criterion]\nplugin=lrp\n[output]\nmodel=%s\n' \
    "$dir/base.onnx" "$dir/out.onnx" >"$dir/bad-dataset.ini"
expect 1 "^taskprune: [^:]*bad-dataset.ini: \[dataset\] plugin: no dataset plugin named 'nope'" -- run "$dir/bad-dataset.ini"
expect 2 "give MODEL.onnx, --classes and -o" -- specialize "$dir/base.onnx"
expect 1 "\[task\] classes: 'Sandal' is not a class" -- specialize "$dir/base.onnx" $data --classes Sandal,class-1 -o "$dir/x.onnx"
check "no model is left behind by a failed run" test ! -e "$dir/x.onnx"

exit $status

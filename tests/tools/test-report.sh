#!/bin/sh
# The report page: specialize writes NAME.report.html beside its JSON,
# `taskprune report` rebuilds it byte for byte from the JSON alone, the JSON
# holds what the page draws, and a broken report is refused naming the
# member it lacks, with no page written.
. "$(dirname "$0")/cli-test.sh"

data="--dataset synthetic -D classes=4 -D samples=40 -D height=16 -D width=16"
expect 0 "test accuracy" -- train --arch lenet5 --width 0.5 $data --epochs 3 -t batch-size=16 -o "$dir/base.onnx"
expect 0 "parameters .*removed" -- specialize "$dir/base.onnx" $data --classes class-1,class-3 \
    --criterion magnitude -p step=0.2 -p goal=0.5 -f steps=5 -o "$dir/s.onnx"
json="$dir/s.onnx.report.json"
check "specialize wrote the page" test -s "$dir/s.onnx.report.html"
for member in '"layers"' '"channels"' '"confusion"' '"heatmaps"' '"settings"' '"class_names"' \
    '"base_test_accuracy"' '"tolerance"' '"stop_reason"'; do
    check "the JSON has $member" grep -q "$member :" "$json"
done
for section in Summary "Accuracy while pruning" "Channels kept per layer" \
    "Confusion on the test split" "What the models look at" Settings; do
    check "the page has $section" grep -q "<h2>$section</h2>" "$dir/s.onnx.report.html"
done

expect 0 "^page " -- report "$json" -o "$dir/again.html"
check "report rebuilds the page byte for byte" cmp -s "$dir/s.onnx.report.html" "$dir/again.html"
cp "$json" "$dir/copy.json"
expect 0 "^page " -- report "$dir/copy.json"
check "the default page is the JSON's name with .html" cmp -s "$dir/copy.html" "$dir/again.html"

sed 's/"test_accuracy"/"test_acc"/' "$json" >"$dir/broken.json"
expect 1 'broken.json: "result.test_accuracy" is missing' -- report "$dir/broken.json" -o "$dir/b.html"
check "no page for a broken report" test ! -e "$dir/b.html"
printf '{"task": ' >"$dir/cut.json"
expect 1 "cut.json" -- report "$dir/cut.json" -o "$dir/b.html"
expect 1 "missing.json" -- report "$dir/missing.json" -o "$dir/b.html"
expect 2 "would replace its report" -- report "$json" -o "$json"
expect 2 "give one report JSON" -- report
exit $status

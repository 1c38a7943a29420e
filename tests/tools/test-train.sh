#!/bin/sh
# `taskprune train` and `taskprune eval` on the synthetic dataset: a run,
# the same run byte for byte, Ctrl-C and --resume to the same bytes, eval's
# report, and errors that name the key.
. "$(dirname "$0")/cli-test.sh"

data="--dataset synthetic -D classes=3 -D samples=40 -D height=12 -D width=12"
expect 0 "test accuracy"                  -- train --arch lenet5 --width 0.5 $data --epochs 2 -t batch-size=16 -o "$dir/a.onnx"
expect 0 "epoch 2/2: loss"                -- train --arch lenet5 --width 0.5 $data --epochs 2 -t batch-size=16 -o "$dir/b.onnx"
check "the same seed gives the same model, byte for byte" cmp -s "$dir/a.onnx" "$dir/b.onnx"
check "each epoch leaves a checkpoint" test -f "$dir/a.onnx.checkpoint/state.ini"

# Ctrl-C: a checkpoint and exit 130 (or the run was already done); --resume
# then ends with the bytes of the run that was never stopped.
long="--dataset synthetic -D classes=3 -D samples=4000 -D height=24 -D width=24 --epochs 4 -t batch-size=4"
"$TASKPRUNE" train --arch lenet5 --width 0.5 $long -o "$dir/c.onnx" --checkpoint "$dir/c.ckpt" >"$out" 2>"$err" &
pid=$!
sleep 1
kill -INT $pid 2>/dev/null
wait $pid
got=$?
check "Ctrl-C exits 130 or the run was done (exit $got)" test "$got" -eq 130 -o "$got" -eq 0
if [ "$got" -eq 130 ]; then
    check "Ctrl-C says how to resume" grep -q "continue with 'taskprune train --resume --checkpoint $dir/c.ckpt'" "$err"
fi
expect 0 "test accuracy"                  -- train --resume --checkpoint "$dir/c.ckpt"
expect 0 "test accuracy"                  -- train --arch lenet5 --width 0.5 $long -o "$dir/d.onnx"
check "resuming gives the model of an uninterrupted run" cmp -s "$dir/c.onnx" "$dir/d.onnx"

expect 0 "accuracy .*confusion"           -- eval "$dir/a.onnx" $data
expect 0 '"confusion": \['                -- eval "$dir/a.onnx" $data --json
expect 1 "takes \[1, 12, 12\] images"     -- eval "$dir/a.onnx" --dataset synthetic
expect 1 "\[train\] unknown key 'lrr'"    -- train --arch lenet5 $data -t lrr=1 -o "$dir/x.onnx"
expect 1 "\[train\] epochs: .*out of range" -- train --arch lenet5 $data -t epochs=0 -o "$dir/x.onnx"
expect 1 "\[model\] arch: no architecture" -- train --arch lenet6 $data -o "$dir/x.onnx"
expect 2 "give -o FILE.onnx"              -- train --arch lenet5 $data
printf '[model]\narch=lenet5\n[trian]\nepochs=1\n' >"$dir/bad.ini"
expect 1 "bad.ini: unknown group \[trian\]" -- train "$dir/bad.ini" -o "$dir/x.onnx"
check "no model is left behind by a failed run" test ! -e "$dir/x.onnx"

exit $status

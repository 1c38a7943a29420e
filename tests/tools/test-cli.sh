#!/bin/sh
# The taskprune command: global options, help, and `plugins` with its errors.
# $TASKPRUNE and the plugin path come from `make check`.
. "$(dirname "$0")/cli-test.sh"

expect 0 "Usage: taskprune COMMAND"       -- --help
expect 0 "plugins  *List the criterion"   -- --help
expect 2 "Usage: taskprune COMMAND"       --
expect 0 "^taskprune [0-9.]* (plugin ABI 1)$" -- --version
expect 0 "Usage: taskprune COMMAND"       -- help
expect 0 "taskprune run \[OPTION.*\] PIPELINE.ini" -- help run
expect 0 "\-\-resume"                     -- help run
expect 2 "no command 'prune'"             -- prune
expect 0 "taskprune plugins \[OPTION" -- help plugins
expect 0 "\-\-describe=NAME"              -- plugins --help
expect 2 "no command 'nope'"              -- help nope
expect 0 "^  cpu "                        -- plugins
expect 0 "^backend plugins:"              -- plugins
expect 0 "threads  *integer, 0 to 1024"   -- plugins --describe cpu
expect 0 "file: .*cpu.so"                 -- plugins --describe cpu
expect 1 "no plugin named 'gpu' (available: cpu"  -- plugins --describe gpu
expect 2 "Unknown option --frobnicate"    -- plugins --frobnicate
expect 2 "unexpected argument 'extra'"    -- plugins extra

# info: torch-vgg.onnx has 727 parameters by PyTorch's own count
# (sum of p.numel() over model.parameters(), tests/data/make-torch-models.py).
expect 0 "total: 727 parameters (+ 20 running statistics)" -- info "$TP_TEST_DATA/torch-vgg.onnx"
expect 0 "/fc2/Gemm  *Gemm  *\[3\]"        -- info "$TP_TEST_DATA/torch-vgg.onnx"
expect 0 '"params": 727, "running_stats": 20' -- info --json "$TP_TEST_DATA/torch-vgg.onnx"
expect 2 "info: give one MODEL.onnx"       -- info
expect 1 "README.md: not a valid ONNX model" -- info "$TP_TEST_DATA/../../README.md"
expect 1 "no backend plugin named 'tpu'"   -- info --backend tpu "$TP_TEST_DATA/torch-vgg.onnx"

expect 0 "p50 (ms)"                       -- bench "$TP_TEST_DATA/torch-vgg.onnx" --batch-size 1,4 --runs 3
expect 0 "727 parameters"                 -- bench "$TP_TEST_DATA/torch-vgg.onnx" --batch-size 2 --runs 2
expect 2 "'0' is not a batch size"        -- bench "$TP_TEST_DATA/torch-vgg.onnx" --batch-size 0
expect 0 "training steps"                 -- bench "$TP_TEST_DATA/torch-vgg.onnx" --training --batch-size 4 --runs 2
expect 0 "/fc2/Gemm  *Gemm  *0.00"         -- bench "$TP_TEST_DATA/torch-vgg.onnx" --training --layers --batch-size 2 --runs 2
expect 0 "score with taylor .*forward+backward" -- bench "$TP_TEST_DATA/torch-vgg.onnx" --score lrp,taylor --batch-size 6 --runs 1
expect 0 '"ms": \[[0-9.]*, [0-9.]*\]' -- bench "$TP_TEST_DATA/torch-vgg.onnx" --training --json --batch-size 2 --runs 2
expect 1 "no criterion plugin named 'nope'" -- bench "$TP_TEST_DATA/torch-vgg.onnx" --score nope --batch-size 2 --runs 1

# --max-tensor-bytes is [backend] max-tensor-bytes for every command that
# loads a model. LeNet-5 on 1x64x64 images: its largest tensor is fc1's
# weight, 120x2704 floats (1297920 bytes).
expect 0 "parameters"                     -- zoo lenet5 --input 1x64x64 -o "$dir/big.onnx"
expect 0 "total: .* parameters"           -- info "$dir/big.onnx" --max-tensor-bytes 1297920
expect 1 "120x2704 is larger than the limit of 1297919 bytes" -- info "$dir/big.onnx" --max-tensor-bytes 1297919
big="--max-tensor-bytes 1048576"
synthetic="--dataset synthetic -D classes=10 -D samples=4 -D height=64 -D width=64"
expect 1 "larger than the limit of 1048576 bytes" -- bench "$dir/big.onnx" --runs 1 $big
expect 1 "larger than the limit of 1048576 bytes" -- compare "$dir/big.onnx" "$dir/big.onnx" $big
expect 1 "larger than the limit of 1048576 bytes" -- eval "$dir/big.onnx" $synthetic $big
expect 1 "larger than the limit of 1048576 bytes" -- explain "$dir/big.onnx" $synthetic -k class-0 --samples 1 -o "$dir/e" $big
expect 1 "larger than the limit of 1048576 bytes" -- specialize "$dir/big.onnx" $synthetic -k 0,1 -o "$dir/s.onnx" $big
expect 1 "larger than the limit of 1048576 bytes" -- train --arch lenet5 $synthetic -o "$dir/t.onnx" $big
printf '[model]\npath = %s\n[dataset]\nplugin = synthetic\nheight = 64\nwidth = 64\n[task]\nclasses = 0,1\n[criterion]\nplugin = magnitude\n[output]\nmodel = %s\n' \
    "$dir/big.onnx" "$dir/r.onnx" >"$dir/big.ini"
expect 1 "larger than the limit of 1048576 bytes" -- run "$dir/big.ini" $big
check "no command wrote an output" test ! -e "$dir/s.onnx" -a ! -e "$dir/t.onnx" -a ! -e "$dir/r.onnx"
expect 1 "max-tensor-bytes = '1000' is not a number of bytes from 1048576" -- info "$dir/big.onnx" --max-tensor-bytes 1000

# A broken plugin on the path is reported and the rest still loads.
mkdir "$dir/plugins"
printf 'not a plugin' >"$dir/plugins/junk.so"
expect 0 "warning: skipping plugin .*junk.so: not a loadable shared object" -- plugins --plugin-path "$dir/plugins"

exit $status

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

# A broken plugin on the path is reported and the rest still loads.
mkdir "$dir/plugins"
printf 'not a plugin' >"$dir/plugins/junk.so"
expect 0 "warning: skipping plugin .*junk.so: not a loadable shared object" -- plugins --plugin-path "$dir/plugins"

exit $status

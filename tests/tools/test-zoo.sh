#!/bin/sh
# `taskprune zoo`: the list of architectures, writing one as ONNX, the seed,
# and the errors with their exit statuses (2: usage, 1: failure).
# $TASKPRUNE and the plugin path come from `make check`.
. "$(dirname "$0")/cli-test.sh"
mkdir "$dir/models"

m="$dir/models"
archs="lenet5, vgg11, vgg16, resnet18, resnet20"

# The list.
expect 0 "^architectures:"                   -- zoo
for arch in lenet5 vgg11 vgg16 resnet18 resnet20; do
    expect 0 "^  $arch  *[A-Z]"              -- zoo
done
expect 0 "zoo  *List the built-in"           -- --help
expect 0 "Example: taskprune zoo"            -- zoo --help

# Writing models: the summary line, the file, nothing else left behind.
expect 0 "^vgg11 (width 0.25, input 1x28x28, 10 classes, seed 0): [0-9]* parameters, [0-9.]* M MACs -> $m/x.onnx" \
                                             -- zoo vgg11 --width 0.25 -o "$m/x.onnx"
check "zoo vgg11 wrote $m/x.onnx" test -s "$m/x.onnx"
expect 0 ": 9489866 parameters, 95.1 M MACs" -- zoo vgg11 -o "$m/vgg11.onnx"
expect 0 ": 61706 parameters"                -- zoo lenet5 -o "$m/lenet.onnx"
expect 0 "resnet20 (width 1, input 3x32x32, 100 classes, seed 7): 278324 parameters" \
                                             -- zoo resnet20 --input 3x32x32 --outputs 100 --seed 7 -o "$m/r20.onnx"
check "no temporary files left" test "$(ls "$m" | wc -l)" -eq 4

# The seed: same seed, same bytes; another seed, other bytes.
expect 0 "seed 5"                            -- zoo lenet5 --seed 5 -o "$m/a.onnx"
expect 0 "seed 5"                            -- zoo lenet5 --seed=5 -o "$m/b.onnx"
expect 0 "seed 6"                            -- zoo lenet5 --seed 6 -o "$m/c.onnx"
check "the same seed writes the same file" cmp -s "$m/a.onnx" "$m/b.onnx"
check "another seed writes another file" sh -c "! cmp -s '$m/a.onnx' '$m/c.onnx'"

# Failures (1): an unknown arch, an input the arch cannot take.
expect 1 "no architecture 'vgg13' (available: $archs)" -- zoo vgg13 -o "$m/y.onnx"
expect 1 "lenet5: input 1x8x8 is too small: height and width must be at least 12" \
                                             -- zoo lenet5 --input 1x8x8 -o "$m/y.onnx"
expect 1 "zoo: .*$dir/none/y.onnx"           -- zoo lenet5 -o "$dir/none/y.onnx"
check "nothing written on failure" test ! -e "$m/y.onnx"

# Usage errors (2).
expect 2 "zoo: --input '3x32': expected CxHxW" -- zoo vgg11 --input 3x32 -o "$m/y.onnx"
expect 2 "zoo: --input '0x28x28': expected CxHxW" -- zoo vgg11 --input 0x28x28 -o "$m/y.onnx"
expect 2 "zoo: --input '1x28xabc': expected CxHxW" -- zoo vgg11 --input 1x28xabc -o "$m/y.onnx"
expect 2 "zoo: --width 0: must be a number greater than 0" -- zoo vgg11 --width 0 -o "$m/y.onnx"
expect 2 "zoo: --width -1: must be" -- zoo vgg11 --width -1 -o "$m/y.onnx"
expect 2 "Cannot parse double value"         -- zoo vgg11 --width wide -o "$m/y.onnx"
expect 2 "zoo: --outputs 0: must be at least 1" -- zoo vgg11 --outputs 0 -o "$m/y.onnx"
expect 2 "zoo: --seed '-1': expected an integer" -- zoo vgg11 --seed -1 -o "$m/y.onnx"
expect 2 "zoo: no output file: add -o FILE.onnx" -- zoo vgg11
expect 2 "zoo: -o needs an ARCH"             -- zoo -o "$m/y.onnx"
expect 2 "zoo: unexpected argument 'vgg16'"  -- zoo vgg11 vgg16 -o "$m/y.onnx"
expect 2 "Unknown option --depth"            -- zoo vgg11 --depth 3 -o "$m/y.onnx"
check "nothing written on a usage error" test ! -e "$m/y.onnx"

exit $status

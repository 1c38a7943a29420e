#!/bin/sh
# Input normalization a user states (--mean, --std, [model] mean and std): a
# CNN trained by PyTorch on Fashion-MNIST with inputs normalized by mean
# 0.2860 and std 0.3530, exported without taskprune's metadata
# (tests/data/make-fmnist-normalized.py), scores in taskprune with the flags
# exactly as in PyTorch, image by image; without them it scores worse, with a
# warning naming the flags. Skips (77) without Debian's dataset-fashion-mnist.
. "$(dirname "$0")/cli-test.sh"

# train: the flags instead of the training split's statistics, recorded.
expect 0 "test accuracy" -- train --arch lenet5 --width 0.5 --dataset synthetic -D classes=3 \
    -D samples=30 -D height=16 -D width=16 --epochs 1 -t batch-size=16 --mean 0.5 --std 0.25 \
    -o "$dir/m.onnx"
expect 0 'input normalization: (x - 0.5) / 0.25' -- info "$dir/m.onnx"

if [ ! -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
    echo "SKIP: dataset-fashion-mnist is not installed"
    exit $((status ? status : 77))
fi
data="$TP_TEST_DATA"
model="$data/fmnist-normalized.onnx"
flags="--mean 0.2860 --std 0.3530"

# The confusion matrix of `eval --json` as rows of numbers.
confusion() {
    sed -n '/"confusion"/,$p' "$out" | sed -n 's/^ *\[\([0-9, ]*\)\],*$/\1/p' | tr -d ,
}

expect 0 '"accuracy"' -- eval "$model" --dataset idx $flags --json
confusion >"$dir/with"
check "with --mean and --std: PyTorch's confusion matrix on the 10000 test images" \
    cmp -s "$dir/with" "$data/fmnist-normalized.confusion"
check "and no warning" test ! -s "$err"

expect 0 '"accuracy"' -- eval "$model" --dataset idx --json
confusion >"$dir/without"
check "without them: a confusion matrix of 10 rows" test "$(wc -l <"$dir/without")" -eq 10
check "that is not PyTorch's" test -n "$(cmp "$dir/without" "$data/fmnist-normalized.confusion")"
check "and a warning naming --mean and --std" grep -q "records no input normalization.*--mean and --std" "$err"

# The same keys from a keyfile.
printf '[model]\nmean = 0.2860\nstd = 0.3530\n[dataset]\nplugin = idx\n' >"$dir/eval.ini"
expect 0 '"accuracy"' -- eval "$model" -C "$dir/eval.ini" --json
confusion >"$dir/keyfile"
check "[model] mean and std: PyTorch's confusion matrix" cmp -s "$dir/keyfile" "$data/fmnist-normalized.confusion"

# Image by image: PyTorch's class for each of 16 test images read as PNG.
pngs=
for n in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    pngs="$pngs $data/fmnist-normalized-$n.png"
done
if "$TASKPRUNE" predict "$model" $pngs $flags 2>&1 | grep -q "without gdk-pixbuf"; then
    echo "SKIP (images): built without gdk-pixbuf"
else
    expect 0 "fmnist-normalized-15.png" -- predict "$model" $pngs $flags --top 1
    awk '{ print $2 }' "$out" >"$dir/classes"
    check "predict: PyTorch's class for each image" cmp -s "$dir/classes" "$data/fmnist-normalized.predicted"
fi

# specialize takes them too, and the model it writes records them.
quick="-k 0,1 -c magnitude -f epochs=0 -p max-steps=1 --set output.latency-runs=1 -q"
expect 0 "max-steps" -- specialize "$model" $quick $flags -o "$dir/s.onnx"
check "specialize: no warning with the flags" test -z "$(grep 'no input normalization' "$err")"
expect 0 'input normalization: (x - 0.286) / 0.353' -- info "$dir/s.onnx"
expect 0 "records no input normalization.*--mean and --std" -- specialize "$model" $quick -o "$dir/t.onnx"

# Bad values name the key and what is wrong.
expect 1 "\[model\] std: '0' is not a positive number" -- eval "$model" --dataset idx --mean 0.5 --std 0
expect 1 "\[model\] mean: '1,2' has 2 values; the model takes 1 input channels" -- eval "$model" --dataset idx --mean 1,2 --std 1
expect 1 "\[model\] std: missing" -- eval "$model" --dataset idx --mean 0.5
expect 1 "\[model\] mean: 'x' is not a finite number" -- eval "$model" --dataset idx --mean x --std 1
exit $status

#!/bin/sh
# The promise of docs/training.md: one epoch of LeNet-5 on Fashion-MNIST,
# with the defaults, reaches 85% test accuracy. Skips (77) without Debian's
# dataset-fashion-mnist.
. "$(dirname "$0")/cli-test.sh"

if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "SKIP: dataset-fashion-mnist is not installed"
    exit 77
fi
expect 0 '"test_accuracy"' -- train --arch lenet5 --dataset idx --epochs 1 --json -o "$dir/lenet.onnx"
accuracy=$(sed -n 's/.*"test_accuracy": \([0-9.]*\).*/\1/p' "$out")
check "one LeNet-5 epoch with the defaults: test accuracy $accuracy >= 0.85" \
    awk -v a="$accuracy" 'BEGIN { exit !(a >= 0.85) }'
exit $status

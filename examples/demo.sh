#!/bin/sh
# The main job, as far as taskprune goes today: train a LeNet-5 base model on
# Fashion-MNIST (cached in $DEMO_DIR), evaluate it, and show its layers.
# Run through `make demo`, which points TASKPRUNE at the build tree.
set -eu
: "${TASKPRUNE:=taskprune}"
: "${DEMO_DIR:=demo-output}"
mkdir -p "$DEMO_DIR"
base="$DEMO_DIR/lenet5-fmnist.onnx"

"$TASKPRUNE" plugins
echo
if [ -f "$base" ]; then
    echo "using the cached base model $base (delete it to train again)"
else
    "$TASKPRUNE" train --arch lenet5 --dataset idx --epochs 1 -t batch-size=64 -o "$base"
fi
echo
"$TASKPRUNE" eval "$base" --dataset idx
echo
"$TASKPRUNE" info "$base"

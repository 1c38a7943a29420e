#!/bin/sh
# The main job: train (or reuse) a VGG-11 base model on Fashion-MNIST, then
# specialize it to footwear (Sandal, Sneaker, Ankle boot) with the LRP
# criterion and print the before/after table. Outputs go to $DEMO_DIR;
# $DEMO_EPOCHS (default 2) sets the base model's training epochs. Run through
# `make demo`, which points TASKPRUNE at the build tree, or installed:
#     sh /usr/share/taskprune/demo.sh
set -eu
: "${TASKPRUNE:=taskprune}"
: "${DEMO_DIR:=demo-output}"
: "${DEMO_EPOCHS:=2}"
mkdir -p "$DEMO_DIR"
base="$DEMO_DIR/vgg11-w025-fmnist.onnx"

if [ -f "$base" ]; then
    echo "== base model: reusing $base (delete it to train again)"
else
    echo "== base model: VGG-11 (width 0.25) trained on all 10 Fashion-MNIST classes"
    "$TASKPRUNE" train --arch vgg11 --width 0.25 --dataset idx --epochs "$DEMO_EPOCHS" -o "$base"
fi

echo
echo "== specializing to footwear with LRP"
"$TASKPRUNE" specialize "$base" --classes "Sandal,Sneaker,Ankle boot" --criterion lrp \
    -p step=0.1 -p goal=0.95 -f epochs=0.5 -o "$DEMO_DIR/footwear-lrp.onnx"

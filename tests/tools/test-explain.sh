#!/bin/sh
# `taskprune explain` on a small model trained on the synthetic dataset:
# heatmaps of dataset samples and of image files (PNG, overlay, grid, raw
# relevance in NumPy format), the class x filter maps, and bad input.
. "$(dirname "$0")/cli-test.sh"

data="--dataset synthetic -D classes=3 -D samples=30 -D height=16 -D width=16"
expect 0 "test accuracy" -- train --arch lenet5 --width 0.5 $data --epochs 1 -t batch-size=16 -o "$dir/m.onnx"
if "$TASKPRUNE" explain "$dir/m.onnx" $data -o "$dir/probe" 2>&1 | grep -q "without gdk-pixbuf"; then
    echo "SKIP: built without gdk-pixbuf"
    exit 77
fi

expect 0 "grid.png" -- explain "$dir/m.onnx" $data --classes class-0,class-2 --samples 2 --npy -o "$dir/h"
check "one heatmap per sample" test "$(ls "$dir/h" | grep -c '^00[0-3]-class-[02]-class-[02]\.png$')" -eq 4
check "a grid" test -s "$dir/h/grid.png"
# NumPy 1.0: magic, a header padded to 64 bytes naming [4, C, 16, 16], then
# 4 * C * 256 floats (lenet5 reads 1 channel)
check "relevance.npy has its header" grep -q "'shape': (4, 1, 16, 16)" "$dir/h/relevance.npy"
check "relevance.npy holds 4 x 256 floats" test "$(wc -c <"$dir/h/relevance.npy")" -eq $((128 + 4 * 256 * 4))

expect 0 "grid.png" -- explain "$dir/m.onnx" "$dir/h/000-"*.png "$dir/h/grid.png" --overlay --rule zplus -o "$dir/f"
check "image files get their predicted class" test "$(ls "$dir/f" | grep -c '\.png$')" -eq 3
expect 0 "-class-1.png" -- explain "$dir/m.onnx" "$dir/h/grid.png" --class class-1 -o "$dir/g"

expect 0 "filters-.*\.csv" -- explain "$dir/m.onnx" --filters $data --samples 3 -o "$dir/m"
csv=$(ls "$dir/m"/filters-*.csv | head -1)
check "a class x filter CSV: a header and one row per class" test "$(wc -l <"$csv")" -eq 4
check "its rows are the classes" test "$(cut -d, -f1 "$csv" | tr '\n' ' ')" = "class class-0 class-1 class-2 "
check "a PNG beside each CSV" test -s "${csv%.csv}.png"

expect 1 "neither a class name" -- explain "$dir/m.onnx" $data --class shoe -o "$dir/x"
expect 1 "valid rules" -- explain "$dir/m.onnx" $data --rule lrp0 -o "$dir/x"
expect 1 "missing.png" -- explain "$dir/m.onnx" "$dir/missing.png" -o "$dir/x"
expect 1 "not a class of dataset" -- explain "$dir/m.onnx" $data --classes shoe -o "$dir/x"
expect 2 "give MODEL.onnx" -- explain "$dir/m.onnx" $data
expect 2 "exclude each other" -- explain "$dir/m.onnx" $data --class class-1 --predicted -o "$dir/x"
expect 2 "--filters takes" -- explain "$dir/m.onnx" "$dir/h/grid.png" --filters -o "$dir/x"
exit $status

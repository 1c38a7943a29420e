#!/bin/sh
# `taskprune predict`: .npy tensors in (one sample or a batch), the raw
# outputs out as .npy, against PyTorch's for the same input
# (tests/data/make-fmnist-normalized.py); top-k with --json; bad input.
. "$(dirname "$0")/cli-test.sh"

data="$TP_TEST_DATA"
model="$data/fmnist-normalized.onnx"

# The float32 values of a NumPy 1.0 file (its header length is bytes 8-9).
npy_values() {
    skip=$(od -An -v -t u1 -j 8 -N 2 "$1" | awk '{ print 10 + $1 + 256 * $2 }')
    od -An -v -t f4 -j "$skip" "$1" | tr -s ' ' '\n' | sed '/^$/d'
}

expect 0 "input.npy\[3\]:" -- predict "$model" "$data/fmnist-normalized.input.npy" -o "$dir/out.npy"
check "four lines, one per sample of the batch" test "$(wc -l <"$out")" -eq 4
check "five classes each" test "$(awk -F, '{ print NF }' "$out" | sort -u)" = 5
check "out.npy is [4, 10]" grep -q "'shape': (4, 10)" "$dir/out.npy"
npy_values "$dir/out.npy" >"$dir/ours"
npy_values "$data/fmnist-normalized.output.npy" >"$dir/torch"
check "40 outputs each" test "$(wc -l <"$dir/ours")" -eq 40 -a "$(wc -l <"$dir/torch")" -eq 40
check "the outputs are PyTorch's within 1e-4 of the largest" \
    awk 'NR == FNR { t[FNR] = $1; m = (m > ($1 < 0 ? -$1 : $1)) ? m : ($1 < 0 ? -$1 : $1); next }
         { d = $1 - t[FNR]; d = d < 0 ? -d : d; w = w > d ? w : d }
         END { printf "max difference %g of %g\n", w, m; exit !(FNR == 40 && w <= 1e-4 * m) }' \
        "$dir/torch" "$dir/ours"
# The class shown first is the largest output.
awk 'NR % 10 == 1 { best = 0; top = $1 } $1 > top { top = $1; best = (NR - 1) % 10 }
     NR % 10 == 0 { print best }' "$dir/torch" >"$dir/want"
sed 's/^[^:]*: \([0-9]*\) .*/\1/' "$out" >"$dir/got"
check "the first class is the largest of PyTorch's outputs" cmp -s "$dir/want" "$dir/got"

expect 0 '"probability"' -- predict "$model" "$data/fmnist-normalized.input.npy" --top 2 --json
check "--json: two classes per input" test "$(grep -o '"index"' "$out" | wc -l)" -eq 8
check "--json: inputs named by batch index" grep -q '"input": ".*input.npy\[0\]"' "$out"

# Bad input: the message names the file and what is wrong.
printf 'not numpy' >"$dir/bad.npy"
expect 1 "bad.npy: not a NumPy .npy file" -- predict "$model" "$dir/bad.npy"
expect 1 "output.npy: the array's shape is not the model's input \[1, 28, 28\]" -- \
    predict "$model" "$data/fmnist-normalized.output.npy"
expect 1 "missing.npy" -- predict "$model" "$dir/missing.npy"
expect 2 "give MODEL.onnx and one or more" -- predict "$model"
expect 2 "--top must be at least 1" -- predict "$model" "$data/fmnist-normalized.input.npy" --top 0
exit $status

#!/bin/sh
# Hostile sizes, run by hand (never by make check): every input whose header
# asks for more memory than it may have must be refused with an error, fast,
# without allocating what it asks for. Each case runs under `ulimit -v` (far
# below what the input asks) and GNU time; one row per case: exit status,
# wall seconds, peak RSS, and the error's first line.
#
#   bench/hostile-sizes.sh [LIMIT_KB]     # from the built source tree; default 1 GiB
#
# The inputs are the fuzz corpus's regression cases, a Conv with 10^6
# channels (made with python3-onnx) and a gzip bomb (1 MB that expands to
# 1 GiB of zeros behind an IDX header that promises 8.6 GB); both are made
# once and kept in $TMPDIR/taskprune-hostile.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
taskprune="$top/tools/taskprune"
limit=${1:-1048576}
export TASKPRUNE_PLUGIN_PATH="$top/criteria/.libs:$top/backends/cpu/.libs:$top/plugins/.libs"
corpus="$top/tests/fuzz/corpus"
work="${TMPDIR:-/tmp}/taskprune-hostile"
mkdir -p "$work"

# idx_split HARNESS-INPUT DIR: the images and labels files of an idx fuzz
# input (a flags byte, the images file's length in two bytes, images, labels).
idx_split() {
    len=$(od -An -tu1 -j1 -N2 "$1" | awk '{ print $1 * 256 + $2 }')
    mkdir -p "$2"
    tail -c +4 "$1" | head -c "$len" >"$2/images"
    tail -c +$((4 + len)) "$1" >"$2/labels"
}

# The gzip bomb: a header of 11,000,000 images of 28x28 (8.6 GB) and 1 GiB
# of zeros, gzipped to 1 MB (the header is refused before the stream is read,
# so the rest of the 8.6 GB would change nothing but the time to make it).
if [ ! -s "$work/bomb/images.gz" ]; then
    mkdir -p "$work/bomb"
    { printf '\000\000\010\003\000\247\330\300\000\000\000\034\000\000\000\034'
      head -c 1073741824 /dev/zero; } | gzip -9 >"$work/bomb/images.gz"
    printf '\000\000\010\001\000\000\000\001\000' | gzip >"$work/bomb/labels.gz"
fi
# A Conv with 10^6 output channels on a 64x64 image: 4 MB of weights, 16 GB
# of activations per sample (python3-onnx makes it).
if [ ! -s "$work/conv-1e6.onnx" ]; then
    /usr/bin/python3 - "$work/conv-1e6.onnx" <<'PY'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
w = numpy_helper.from_array(np.zeros((1000000, 1, 1, 1), np.float32), "wide.weight")
node = helper.make_node("Conv", ["input", "wide.weight"], ["output"], name="wide", kernel_shape=[1, 1])
graph = helper.make_graph([node], "wide",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 64, 64])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)], [w])
onnx.save(helper.make_model(graph), sys.argv[1])
PY
fi
idx_split "$corpus/idx/regress-2e31-images" "$work/2e31"
"$taskprune" zoo lenet5 -o "$work/lenet.onnx" >/dev/null

# case NAME TASKPRUNE-ARGS...
row() {
    name=$1
    shift
    (ulimit -v "$limit" && /usr/bin/time -f '%e %M' -o "$work/time" "$taskprune" "$@") \
        >/dev/null 2>"$work/err"
    got=$?
    set -- $(tail -n 1 "$work/time")
    printf '%-36s exit %d  %6.2f s  %7d KB  %s\n' "$name" "$got" "$1" "$2" \
        "$(grep -v '^Command exited' "$work/err" | head -n 1 | sed 's|.*/||' | cut -c1-150)"
}

echo "ulimit -v $limit KB; $($taskprune --version)"
row "baseline: a small model (info)" info "$corpus/onnx/small.onnx"
row "onnx: input 1x60000x60000 (info)" info "$corpus/onnx/regress-huge-input.onnx"
row "onnx: input 1x60000x60000 (bench)" bench "$corpus/onnx/regress-huge-input.onnx" --runs 1
row "onnx: dims past the file (info)" info "$corpus/onnx/regress-huge-dims.onnx"
row "onnx: Conv with 10^6 channels (info)" info "$work/conv-1e6.onnx"
row "idx: header of 2^31 images (eval)" eval "$work/lenet.onnx" --dataset idx -D path="$work/2e31" \
    -D test-images=images -D test-labels=labels
row "idx: gzip bomb (eval)" eval "$work/lenet.onnx" --dataset idx -D path="$work/bomb" \
    -D test-images=images.gz -D test-labels=labels.gz

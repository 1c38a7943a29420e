#!/bin/sh
# test-sdk.sh — an installed taskprune on its own, run by `make installcheck`
# (so by `make distcheck`) with the installed bin folder first on PATH and
# the installed pkg-config file on PKG_CONFIG_PATH:
#  - the layout: binary, headers, pkg-config file with its plugin folders,
#    man pages, example pipelines, bash completion;
#  - every installed header compiles on its own against the installed tree;
#  - with TASKPRUNE_PLUGIN_PATH unset, taskprune loads its plugins from the
#    installed $(libdir)/taskprune-1, not from a build tree;
#  - the SDK example (examples/my-criterion) builds with that pkg-config
#    file, installs into the criteria folder it names, and exports only
#    tp_plugin_describe;
#  - a pipeline runs it from [pipeline] plugin-path and cuts the units its
#    scores single out.
set -u
status=0
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
: "${CC:=cc}" "${NM:=nm}"
unset TASKPRUNE_PLUGIN_PATH

check() {
    what=$1
    shift
    if "$@"; then
        echo "ok: $what"
    else
        echo "FAIL: $what"
        status=1
    fi
}

prefix=$(pkg-config --variable=prefix taskprune-1) || {
    echo "FAIL: pkg-config finds no taskprune-1 (PKG_CONFIG_PATH=${PKG_CONFIG_PATH:-})"
    exit 1
}
libdir=$(pkg-config --variable=libdir taskprune-1)
includedir=$(pkg-config --variable=includedir taskprune-1)/taskprune-1
plugindir=$(pkg-config --variable=plugindir taskprune-1)
criteriadir=$(pkg-config --variable=criteriadir taskprune-1)

# ------------------------------------------------------------ layout
check "taskprune on PATH is the installed one" \
    test "$(command -v taskprune)" = "$prefix/bin/taskprune"
check "libtaskprune.so.1 in $libdir" test -e "$libdir/libtaskprune.so.1"
check "headers in $includedir" test -f "$includedir/tp.h" -a -f "$includedir/tp-criterion.h"
check "plugin folders: $plugindir/{criteria,backends,datasets}" \
    test "$criteriadir" = "$plugindir/criteria" -a \
    "$(pkg-config --variable=backenddir taskprune-1)" = "$plugindir/backends" -a \
    "$(pkg-config --variable=datasetdir taskprune-1)" = "$plugindir/datasets"
check "man pages taskprune(1), taskprune-pipeline(5)" \
    test -f "$TP_MANDIR/man1/taskprune.1" -a -f "$TP_MANDIR/man5/taskprune-pipeline.5"
check "example pipelines and the demo in $TP_PKGDATADIR" \
    test -f "$TP_PKGDATADIR/pipelines/footwear-lrp.ini" -a -f "$TP_PKGDATADIR/demo.sh"
check "bash completion in $TP_BASHCOMPLETIONDIR" test -f "$TP_BASHCOMPLETIONDIR/taskprune"

for header in "$includedir"/*.h; do
    name=$(basename "$header")
    printf '#include <%s>\n' "$name" >"$dir/header.c"
    # shellcheck disable=SC2046
    check "<$name> compiles against the installed tree alone" \
        $CC -std=c11 -fsyntax-only $(pkg-config --cflags taskprune-1) "$dir/header.c"
done

# ------------------------------------------------------------ installed plugins
taskprune plugins >"$dir/plugins" 2>&1
check "taskprune plugins: no warnings" test ! -s "$dir/plugins" -o -z "$(grep warning "$dir/plugins")"
for plugin in cpu magnitude taylor lrp random idx synthetic; do
    check "taskprune plugins lists $plugin" grep -q "^  $plugin " "$dir/plugins"
done
check "the cpu backend comes from $plugindir" \
    sh -c "taskprune plugins --describe cpu | grep -q 'file: $plugindir/backends/cpu.so'"

# ------------------------------------------------------------ the SDK example
cp -r "$TP_SOURCE_DIR/examples/my-criterion" "$dir/sdk"
chmod -R u+w "$dir/sdk"
rm -f "$dir/sdk/linf.so"
check "examples/my-criterion builds with pkg-config taskprune-1" \
    make -s -C "$dir/sdk" CFLAGS="-O2 -Wall -Wextra -Wno-unused-parameter -Werror"
check "make install puts it in the criteria folder pkg-config names" \
    sh -c "make -s -C '$dir/sdk' install DESTDIR='$dir/stage' && test -f '$dir/stage$criteriadir/linf.so'"
check "linf.so exports only tp_plugin_describe" \
    test "$($NM -D --defined-only "$dir/sdk/linf.so" | awk '$2 ~ /^[TDBRVWiu]$/ { print $3 }')" = \
    tp_plugin_describe

# A pipeline over a LeNet-5 as `taskprune zoo` initializes it: one step cuts
# 10% of the 226 prunable units (23), ranked globally on the raw scores.
# linf scores a unit by its largest |weight|. PyTorch's initialization bounds
# a Gemm's weights by 1/sqrt(fan-in) and draws the convolutions' from a wider
# normal, so the 23 lowest scores are all in fc2 (fan-in 120, the widest
# Gemm): conv1 6, conv2 16, fc1 120 and fc2 84 - 23 = 61 units are left.
# (Checked independently: the 23 smallest max |w| of the model are fc2's.)
# magnitude's sums grow with fan-in and cut conv1 first instead.
cd "$dir" || exit 1
taskprune zoo lenet5 --input 1x16x16 --outputs 4 -o base.onnx >/dev/null
pipeline() {
    cat <<EOI
[pipeline]
plugin-path = stage$criteriadir
[model]
path = base.onnx
[dataset]
plugin = synthetic
classes = 4
samples = 48
height = 16
width = 16
[task]
classes = 0,1,2,3
[criterion]
plugin = $1
[prune]
step = 0.1
normalize = none
tolerance = 100
max-steps = 1
[finetune]
epochs = 0
[output]
model = $1.onnx
latency-runs = 1
EOI
}
units() {
    taskprune info "$1" | awk '$3 == "Conv" || $3 == "Gemm" { printf "%s %s ", $2, $5 }'
}
pipeline linf >linf.ini
pipeline magnitude >magnitude.ini
check "taskprune run with criterion linf from [pipeline] plugin-path" \
    sh -c 'taskprune run -q linf.ini >run.log 2>&1 || { cat run.log; exit 1; }'
check "taskprune run with criterion magnitude" \
    sh -c 'taskprune run -q magnitude.ini >run.log 2>&1 || { cat run.log; exit 1; }'
want="conv1 6 conv2 16 fc1 120 fc2 61 fc3 4 "
got=$(units linf.onnx)
check "linf's scores were used: left $want(got $got)" test "$got" = "$want"
got=$(units magnitude.onnx)
check "magnitude cuts elsewhere (got $got)" test "$got" != "$want"
check "the report names the criterion" grep -q '"criterion" : "linf"' linf.onnx.report.json

exit $status

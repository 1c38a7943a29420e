#!/bin/sh
# The bash completion (tools/bash-completion/taskprune): commands, each
# command's options, plugin and architecture names for the options that take
# them, and .onnx / .ini files for file arguments. $TASKPRUNE and the plugin
# path come from `make check`.
. "$(dirname "$0")/cli-test.sh"

if ! command -v bash >/dev/null; then
    echo "SKIP: no bash"
    exit 77
fi
script="$TP_SOURCE_DIR/tools/bash-completion/taskprune"
mkdir "$dir/work" "$dir/work/sub"
touch "$dir/work/a.ini" "$dir/work/b.onnx" "$dir/work/c.txt" "$dir/work/d.npy"

# complete WANT WORD...: completes the last WORD after `taskprune WORD...`;
# WANT is the sorted, space-separated list of candidates.
complete_is() {
    want=$1
    shift
    got=$(cd "$dir/work" && bash -c '
        . "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        _taskprune
        printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' \
        complete "$script" "$TASKPRUNE" "$@")
    got=${got% }
    if [ "$got" = "$want" ]; then
        echo "ok: taskprune $* -> $want"
    else
        echo "FAIL: taskprune $*: got '$got', want '$want'"
        status=1
    fi
}

# The backends this build has (cpu, and cuda where it was built).
backends=$("$TASKPRUNE" plugins | awk '/^backend plugins:/ { f = 1; next } /^$/ { f = 0 } f { print $1 }' | sort | tr '\n' ' ')
backends=${backends% }

complete_is "specialize"                                       sp
complete_is "--help --version bench compare eval explain help info plugins predict report run score specialize train zoo" ""
complete_is "--version"                                        --v
complete_is "--criterion="                                     specialize --cr
complete_is "lrp magnitude random taylor"                      specialize --criterion ""
complete_is "magnitude"                                        specialize --criterion = ma
complete_is "magnitude"                                        specialize -c ma
complete_is "magnitude"                                        score -c ma
complete_is "--dry-run"                                        specialize --dr
complete_is ""                                                 zoo --outputs ""
complete_is "$backends"                                        info --backend ""
complete_is "idx"                                              eval -d id
complete_is "lenet5"                                           train --arch le
complete_is "lenet5 resnet18 resnet20 vgg11 vgg16"             zoo ""
complete_is "$(echo cifar10 $backends | tr ' ' '\n' | grep '^c' | sort | tr '\n' ' ' | sed 's/ $//')" plugins --describe c
complete_is "--backend= --device= --help --json --max-tensor-bytes= --merge --quiet --resume --set= --sweep-index= --threads=" run --
complete_is "a.ini sub"                                        run ""
complete_is "b.onnx sub"                                       info ""
complete_is "a.ini sub"                                        specialize --config ""
complete_is "b.onnx sub"                                       train -o ""
complete_is "d.npy sub"                                        predict -o ""
complete_is "sub"                                              plugins --plugin-path ""
complete_is "specialize"                                       help spe
complete_is ""                                                 help run ""

exit $status

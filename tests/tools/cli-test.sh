# cli-test.sh — sourced by the command-line tests: a scratch folder ($dir,
# removed on exit), `expect` and `check`, and $status for the exit.
# $TASKPRUNE and the plugin path come from `make check`.
set -u
status=0
dir=$(mktemp -d)
out="$dir/stdout"
err="$dir/stderr"
trap 'rm -rf "$dir"' EXIT

# expect EXIT-STATUS PATTERN-IN-OUTPUT -- COMMAND...: runs taskprune COMMAND.
expect() {
    want=$1 pattern=$2
    shift 3
    "$TASKPRUNE" "$@" >"$out" 2>"$err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: taskprune $*: exit $got, want $want"; cat "$out" "$err"; status=1
    elif ! grep -q -- "$pattern" "$out" "$err"; then
        echo "FAIL: taskprune $*: no '$pattern' in:"; cat "$out" "$err"; status=1
    else
        echo "ok: taskprune $*"
    fi
}

# check DESCRIPTION COMMAND...: a shell condition that must hold.
check() {
    what=$1
    shift
    if "$@"; then
        echo "ok: $what"
    else
        echo "FAIL: $what"; status=1
    fi
}

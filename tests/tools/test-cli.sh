#!/bin/sh
# The taskprune command: global options, help, and `plugins` with its errors.
# $TASKPRUNE and the plugin path come from `make check`.
set -u
status=0
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

# expect EXIT-STATUS PATTERN-IN-OUTPUT -- COMMAND...
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

expect 0 "Usage: taskprune COMMAND"       -- --help
expect 0 "plugins  *List the criterion"   -- --help
expect 2 "Usage: taskprune COMMAND"       --
expect 0 "^taskprune [0-9]"               -- --version
expect 2 "no command 'prune'"             -- prune
expect 0 "taskprune plugins \[OPTION" -- help plugins
expect 0 "\-\-describe=NAME"              -- plugins --help
expect 2 "no command 'nope'"              -- help nope
expect 0 "^  cpu "                        -- plugins
expect 0 "^backend plugins:"              -- plugins
expect 0 "threads  *integer, 0 to 1024"   -- plugins --describe cpu
expect 0 "file: .*cpu.so"                 -- plugins --describe cpu
expect 1 "no plugin named 'gpu' (available: cpu"  -- plugins --describe gpu
expect 2 "Unknown option --frobnicate"    -- plugins --frobnicate
expect 2 "unexpected argument 'extra'"    -- plugins extra

# A broken plugin on the path is reported and the rest still loads.
dir=$(mktemp -d)
printf 'not a plugin' >"$dir/junk.so"
expect 0 "warning: skipping plugin .*junk.so: not a loadable shared object" -- plugins --plugin-path "$dir"
rm -rf "$dir"

exit $status

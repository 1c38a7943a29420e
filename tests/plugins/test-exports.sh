#!/bin/sh
# Each bundled plugin exports exactly one symbol, tp_plugin_describe
# (HACKING.md, house style rule 2). Plugins come from $TASKPRUNE_PLUGIN_PATH, as
# `make check` sets it.
set -u
: "${NM:=nm}"
status=0
count=0
dirs=$(echo "$TASKPRUNE_PLUGIN_PATH" | tr ':' ' ')
for dir in $dirs; do
    for so in "$dir"/*.so; do
        [ -e "$so" ] || continue
        count=$((count + 1))
        exported=$($NM -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWiu]$/ { print $3 }' | sort)
        if [ "$exported" != "tp_plugin_describe" ]; then
            echo "FAIL: $so exports:" $exported
            status=1
        else
            echo "ok: $so exports only tp_plugin_describe"
        fi
    done
done
if [ "$count" -eq 0 ]; then
    echo "FAIL: no plugin found on TASKPRUNE_PLUGIN_PATH=$TASKPRUNE_PLUGIN_PATH"
    exit 1
fi
exit $status

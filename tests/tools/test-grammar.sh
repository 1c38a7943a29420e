#!/bin/sh
# One grammar: every option of every command (its --help) is a row of the
# OPTION GRAMMAR table of taskprune(1) with the same letter, and every row
# lists only commands that have the option. A new command joins by adding
# its name to the last column of the rows of its options.
. "$(dirname "$0")/cli-test.sh"

man="$(dirname "$0")/../../docs/taskprune.1"
# The rows: "short long commands", without troff escapes; "-" for no letter.
sed -n '/^\.SH OPTION GRAMMAR/,/^\.TE/p' "$man" | grep '	' | sed 's/\\(em/-/; s/\\//g' |
    awk -F'\t' '$2 ~ /^--/ { print $1, $2, $5 }' >"$dir/table"
check "the table has rows" test -s "$dir/table"
check "no letter is in two rows" test -z "$(awk '$1 != "-" { print $1 }' "$dir/table" | sort | uniq -d)"
check "no option is in two rows" test -z "$(awk '{ print $2 }' "$dir/table" | sort | uniq -d)"

"$TASKPRUNE" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }' | grep -v '^help$' >"$dir/commands"
check "taskprune --help lists the commands" test -s "$dir/commands"

while read -r command; do
    # "short long" per option of the command's --help ("-" for no letter).
    "$TASKPRUNE" "$command" --help |
        sed -n 's/^  \(-[A-Za-z]\), \(--[a-z-]*\).*/\1 \2/p; s/^  \(--[a-z-]*\).*/- \1/p' >"$dir/options"
    while read -r short long; do
        row=$(awk -v l="$long" '$2 == l' "$dir/table")
        if [ -z "$row" ]; then
            echo "FAIL: $command $long: not in the OPTION GRAMMAR table"; status=1
            continue
        fi
        want=$(echo "$row" | awk '{ print $1 }')
        if [ "$want" != "$short" ]; then
            echo "FAIL: $command $long: letter $short, the table says $want"; status=1
        fi
        if ! echo "$row" | awk -v c="$command" '{ for (i = 3; i <= NF; i++) if ($i == c || $i == "all") f = 1 } END { exit !f }'; then
            echo "FAIL: $command has $long; add $command to its row"; status=1
        fi
    done <"$dir/options"
    # Every row that names the command: the command has the option.
    awk -v c="$command" '{ for (i = 3; i <= NF; i++) if ($i == c) print $2 }' "$dir/table" |
        while read -r long; do
            if ! awk -v l="$long" '$2 == l { f = 1 } END { exit !f }' "$dir/options"; then
                echo "FAIL: the table says $command has $long; its --help does not"; exit 1
            fi
        done || status=1
    echo "ok: $command: $(wc -l <"$dir/options") options held against the table"
done <"$dir/commands"

exit $status

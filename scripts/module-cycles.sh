#!/usr/bin/env bash
# No import circle inside the agent (agent/src): lists which module names which (`crate::` paths in code,
# not in comments nor in the unit tests' `mod tests`), at two grains — the rooms (the folders under
# agent/src and its single-file modules) and the modules (each file) — and hands each graph to `tsort`,
# which names every circle it finds. Exits 1 when there is one.
#   scripts/module-cycles.sh            (the circles, if any)
#   scripts/module-cycles.sh --graph    (also the rooms' graph: "from to" lines)
set -euo pipefail
cd "$(dirname "$0")/../agent/src"

rooms=$(find . -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
is_room() { grep -qx "$1" <<<"$rooms"; }

# "from to" for every `crate::a::b` a module names: modules are `room` (its mod.rs), `room::file`, or a
# single-file module.
edges() {
    local f module
    while read -r f; do
        f=${f#./}
        module=${f%.rs}
        module=${module%/mod}
        module=${module//\//::}
        case "$module" in lib | main) continue ;; esac
        # A nested file (loopback/peer/macos.rs) belongs to its parent module.
        module=$(cut -d: -f1-3 <<<"$module")
        awk '/^mod tests/ { exit } !/^[[:space:]]*\/\// { print }' "$f" |
            grep -oE 'crate::[a-z_]+(::[a-z_]+\b)?(::)?' | sed -E 's/::$//; s/^crate:://' |
            while read -r target; do
                local top=${target%%::*}
                if is_room "$top"; then
                    # `crate::room::Item` goes through the room's face; `crate::room::file` to the file.
                    [ -e "$top/${target#*::}.rs" ] || [ -e "$top/${target#*::}/mod.rs" ] || target=$top
                else
                    target=$top
                fi
                [ "$target" != "$module" ] && echo "$module $target"
            done
    done < <(find . -name '*.rs' | sort)
}

all=$(edges | sort -u)
room_edges=$(awk '{ split($1, a, "::"); split($2, b, "::"); if (a[1] != b[1]) print a[1], b[1] }' <<<"$all" | sort -u)
[ "${1:-}" = --graph ] && echo "$room_edges"

status=0
for grain in rooms modules; do
    if [ $grain = rooms ]; then input=$room_edges; else input=$all; fi
    # tsort reports each circle on stderr ("input contains a loop:", then its members) and exits 1.
    if ! out=$(tsort <<<"$input" 2>&1 >/dev/null); then
        echo "module-cycles: circles among the $grain:"
        awk '/input contains a loop/ { if (loop) print "  " loop; loop = ""; next }
             { sub(/^tsort: /, ""); loop = loop (loop ? " -> " : "") $0 } END { if (loop) print "  " loop }' <<<"$out"
        status=1
    fi
done
[ $status = 0 ] && echo "module-cycles: no circle among the agent's rooms nor its modules"
exit $status

#!/usr/bin/env bash
# Two release builds of the same commit, from two folders, give the same bytes: this tree's release build
# (scripts/release.sh --binaries, unless --no-build) and a second clone of HEAD in another folder, built
# from scratch with its own target/ and the same script; then the SHA-256 of cpx-agent and cpx-tray in both,
# and what each binary still carries of either folder, of $HOME or of a date (strings).
#   scripts/reproducible.sh [--no-build] [DIR]
#     DIR         where the second clone goes (default: /tmp/agent-cpx-repro); a clone an earlier run left
#                 there is brought to this commit and keeps its target/ (CPX_REPRO_FRESH=1: cloned anew)
#     --no-build  this tree's release binaries are already built from HEAD (release.sh --binaries)
# Exit 0 when both binaries are identical; 1 otherwise (the differing bytes are counted). Not part of
# ./scripts/test.sh: two release builds of the tray app take an hour on 2 shared cores.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=1 dir=/tmp/agent-cpx-repro
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) build=0 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        -*) echo "reproducible: unknown argument $1" >&2; exit 2 ;;
        *) dir=$1 ;;
    esac
    shift
done
case "$dir" in /*) ;; *) dir=$PWD/$dir ;; esac
[ "$dir" != "$root" ] || { echo "reproducible: DIR must be another folder" >&2; exit 2; }
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "reproducible: the tree has uncommitted changes; the clone builds HEAD ($(git rev-parse --short HEAD))" >&2
fi
bins=(cpx-agent cpx-tray)

[ "$build" = 1 ] && scripts/release.sh --binaries
commit=$(git rev-parse HEAD)
if [ -d "$dir/.git" ] && [ -z "${CPX_REPRO_FRESH:-}" ]; then
    # A clone made by an earlier run: brought to this commit, its target/ kept (the crates whose sources
    # did not change are not built again; CPX_REPRO_FRESH=1 starts from an empty folder).
    git -C "$dir" fetch --quiet "$root" HEAD
    git -C "$dir" checkout --quiet --force --detach FETCH_HEAD
    git -C "$dir" clean --quiet -fdx -e /target
else
    rm -rf "$dir"
    git clone --quiet --no-hardlinks "$root" "$dir"
    git -C "$dir" checkout --quiet --detach "$commit"
fi
[ "$(git -C "$dir" rev-parse HEAD)" = "$commit" ] || { echo "reproducible: $dir is not at $commit" >&2; exit 1; }
echo "reproducible: $(git rev-parse --short HEAD) in $dir, building there"
"$dir/scripts/release.sh" --binaries

same=1
for bin in "${bins[@]}"; do
    a=$root/target/release/$bin b=$dir/target/release/$bin
    echo "$bin: $(sha256sum < "$a" | cut -d' ' -f1)  $a"
    echo "$bin: $(sha256sum < "$b" | cut -d' ' -f1)  $b"
    if cmp -s "$a" "$b"; then
        echo "reproducible: $bin identical ($(stat -c %s "$a") bytes)"
    else
        same=0
        echo "NOT reproducible: $bin: $(cmp "$a" "$b" | head -1); $(cmp -l "$a" "$b" | wc -l) bytes differ"
    fi
    for f in "$a" "$b"; do
        leaks=$(strings -n 6 "$f" | grep -c -e "$root" -e "$dir" -e "$HOME" -e "$(date -u +%Y-%m-%d)" || true)
        echo "  $(basename "$(dirname "$(dirname "$(dirname "$f")")")")/…/$bin: $leaks strings naming the build folder, \$HOME or today's date"
    done
done
[ "$same" = 1 ]

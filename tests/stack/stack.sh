#!/usr/bin/env bash
# The project's PC/SC test stack: pcscd + the vpcd reader driver, isolated from any pcscd the user runs.
#
#   stack.sh isolated CMD...   run CMD in private mount, network and PID namespaces (root), with a private
#                              /run/pcscd and loopback: nothing inside can see or touch the host's pcscd
#   stack.sh prepare DIR       write DIR/readers.d (4 vpcd entries, 8 readers) and build DIR/libnodelay.so
#   stack.sh pcscd DIR         (inside `isolated` only) exec pcscd in the foreground on DIR/readers.d
#   stack.sh readers           print "port<TAB>reader name" for the 8 readers
#
# Readers: "CPx Test Reader A 00 00" on 127.0.0.1:40000, "… A 00 01" on 40001, B on 40016/40017,
# C on 40032/40033, D on 40048/40049 (port = CHANNELID + slot). A virtual card connects to a port to be
# inserted (cpx-sim insert PERSONA --port PORT). Each entry needs its own copy of the driver .so: entries
# that share one collide in its static slot table (docs/simulator.md, « The test stack »).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
VPCD_SO=${VPCD_SO:-/usr/lib/pcsc/drivers/serial/libifdvpcd.so}
# CPX_STACK_ENTRIES=none starts pcscd with no reader at all (the "no reader configured" fault).
if [ "${CPX_STACK_ENTRIES:-}" = none ]; then ENTRIES=(); else ENTRIES=(A B C D); fi
MARKER=/run/pcscd/.cpx-test-stack

readers() {
  local i=0
  for e in "${ENTRIES[@]+"${ENTRIES[@]}"}"; do
    local base=$((40000 + 16 * i))
    printf '%s\tCPx Test Reader %s 00 00\n%s\tCPx Test Reader %s 00 01\n' "$base" "$e" $((base + 1)) "$e"
    i=$((i + 1))
  done
}

prepare() {
  local dir=$1 i=0
  mkdir -p "$dir/readers.d" "$dir/drivers"
  rm -f "$dir"/readers.d/*
  [ -e "$VPCD_SO" ] || { echo "stack.sh: $VPCD_SO missing: apt-get install vsmartcard-vpcd" >&2; exit 1; }
  for e in "${ENTRIES[@]+"${ENTRIES[@]}"}"; do
    local so="$dir/drivers/libifdvpcd-$e.so" base=$((40000 + 16 * i))
    cp "$(readlink -f "$VPCD_SO")" "$so"
    printf 'FRIENDLYNAME "CPx Test Reader %s"\nDEVICENAME /dev/null:%d\nLIBPATH %s\nCHANNELID %d\n' "$e" "$base" "$so" "$base" \
      > "$dir/readers.d/reader-$e"
    i=$((i + 1))
  done
  if [ ! -e "$dir/libnodelay.so" ] || [ "$here/nodelay.c" -nt "$dir/libnodelay.so" ]; then
    gcc -shared -fPIC -O2 -o "$dir/libnodelay.so" "$here/nodelay.c" -ldl
  fi
}

case "${1:-}" in
  isolated)
    shift
    [ "$(id -u)" = 0 ] || { echo "stack.sh isolated: needs root (unshare of mount and network namespaces)" >&2; exit 1; }
    exec unshare --mount --net --pid --fork --mount-proc --propagation private \
      bash -c 'set -e; ip link set lo up; mkdir -p /run/pcscd; mount -t tmpfs -o mode=0755 cpx-stack /run/pcscd
               touch '"$MARKER"'; exec "$@"' stack "$@"
    ;;
  prepare) prepare "${2:?stack.sh prepare DIR}" ;;
  pcscd)
    dir=${2:?stack.sh pcscd DIR}
    [ -e "$MARKER" ] || { echo "stack.sh pcscd: refusing to run outside 'stack.sh isolated' (it would replace the system's pcscd)" >&2; exit 1; }
    prepare "$dir"
    rm -f /run/pcscd/pcscd.comm /run/pcscd/pcscd.pid
    LD_PRELOAD="$dir/libnodelay.so" exec pcscd --foreground --config "$dir/readers.d" ${PCSCD_ARGS:-}
    ;;
  readers) readers ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The project's PC/SC test stack: pcscd + the vpcd reader driver, isolated from any pcscd the user runs.
#
#   stack.sh isolated CMD...   run CMD in private mount, network and PID namespaces (root), with a private
#                              /run/pcscd, /dev/shm, /tmp and loopback: nothing inside can see or touch the
#                              host's pcscd, nor what a killed Squid, Chromium or Xvfb left behind (shared
#                              memory, X display locks)
#   stack.sh prepare DIR       write DIR/readers.d (4 vpcd entries, 8 readers; 3 PIN-pad readers) and
#                              build DIR/libnodelay.so and DIR/libcpxpinpad.so
#   stack.sh pcscd DIR         (inside `isolated` only) exec pcscd in the foreground on DIR/readers.d
#   stack.sh readers           print "port<TAB>reader name" for the 8 readers
#   stack.sh pinpad-readers DIR  print "port<TAB>reader name<TAB>keypad socket" for the PIN-pad readers
#
# Readers: "CPx Test Reader A 00 00" on 127.0.0.1:40000, "… A 00 01" on 40001, B on 40016/40017,
# C on 40032/40033, D on 40048/40049 (port = CHANNELID + slot). A virtual card connects to a port to be
# inserted (cpx-sim insert PERSONA --port PORT). Each entry needs its own copy of the driver .so: entries
# that share one collide in its static slot table (docs/simulator.md, « The test stack »).
#
# PIN-pad readers (one slot each, driver built from pinpad.c, a virtual keypad on a Unix socket):
# "CPx PIN-pad Reader E 00 00" on 40064, "… F 00 00" on 40080, and on 40096 a reader named like an
# OMNIKEY 3x21, a model known to claim a PIN pad it does not have. Their keypad sockets are DIR/keypad-E…
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
VPCD_SO=${VPCD_SO:-/usr/lib/pcsc/drivers/serial/libifdvpcd.so}
# CPX_STACK_ENTRIES=none starts pcscd with no reader at all (the "no reader configured" fault).
if [ "${CPX_STACK_ENTRIES:-}" = none ]; then ENTRIES=(); PINPADS=(); else ENTRIES=(A B C D); PINPADS=(E F G); fi
# The PIN-pad readers' longest wait for a key, in seconds (their keypad timeout).
PINPAD_SECONDS=5
MARKER=/run/pcscd/.cpx-test-stack

readers() {
  local i=0
  for e in "${ENTRIES[@]+"${ENTRIES[@]}"}"; do
    local base=$((40000 + 16 * i))
    printf '%s\tCPx Test Reader %s 00 00\n%s\tCPx Test Reader %s 00 01\n' "$base" "$e" $((base + 1)) "$e"
    i=$((i + 1))
  done
}

pinpad_name() {
  case $1 in
    G) echo "HID Global OMNIKEY 3x21 Smart Card Reader" ;;
    *) echo "CPx PIN-pad Reader $1" ;;
  esac
}

pinpad_readers() {
  local dir=$1 i=4
  for e in "${PINPADS[@]+"${PINPADS[@]}"}"; do
    printf '%s\t%s 00 00\t%s\n' $((40000 + 16 * i)) "$(pinpad_name "$e")" "$dir/keypad-$e"
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
    # A new file, never the old one rewritten: a target/ copied with hard links (cp -al) shares these
    # files with other checkouts, whose running pcscd has them mapped (rewritten, it segfaults).
    cp --remove-destination "$(readlink -f "$VPCD_SO")" "$so"
    printf 'FRIENDLYNAME "CPx Test Reader %s"\nDEVICENAME /dev/null:%d\nLIBPATH %s\nCHANNELID %d\n' "$e" "$base" "$so" "$base" \
      > "$dir/readers.d/reader-$e"
    i=$((i + 1))
  done
  if [ ! -e "$dir/libcpxpinpad.so" ] || [ "$here/pinpad.c" -nt "$dir/libcpxpinpad.so" ]; then
    gcc -shared -fPIC -O2 -I/usr/include/PCSC -o "$dir/libcpxpinpad.so" "$here/pinpad.c"
  fi
  i=4
  for e in "${PINPADS[@]+"${PINPADS[@]}"}"; do
    local so="$dir/drivers/libcpxpinpad-$e.so" base=$((40000 + 16 * i))
    cp --remove-destination "$dir/libcpxpinpad.so" "$so"
    printf 'FRIENDLYNAME "%s"\nDEVICENAME %s:%d:%d\nLIBPATH %s\nCHANNELID %d\n' "$(pinpad_name "$e")" \
      "$dir/keypad-$e" "$base" "$PINPAD_SECONDS" "$so" "$base" > "$dir/readers.d/reader-$e"
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
               mount -t tmpfs -o mode=1777 cpx-shm /dev/shm
               mount -t tmpfs -o mode=1777 cpx-tmp /tmp
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
  pinpad-readers) pinpad_readers "${2:?stack.sh pinpad-readers DIR}" ;;
  *) sed -n '2,19p' "$0" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Runs CMD with a real Secret Service: a private D-Bus session and an unlocked gnome-keyring in a
# scratch HOME (the keyring's files live there), as a desktop session has.
#   with-keyring.sh HOME_DIR CMD...
set -euo pipefail
home=$1; shift
mkdir -p "$home"
exec env HOME="$home" XDG_DATA_HOME="$home/.local/share" dbus-run-session -- bash -c '
  echo -n "test keyring password" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  exec "$@"' keyring "$@"

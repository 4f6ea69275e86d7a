#!/bin/bash
# Removes Agent CPx and everything its pkg set up:
#   sudo "/Library/Application Support/Agent CPx/uninstall.sh"
# Stops the tray app in every session, removes the machine's loopback identity and the trust of its local CA
# (`cpx-agent uninstall-trust`), the LaunchAgent, the app, the command-line link and the pkg's receipt.
# Kept: the managed policy file (/Library/Application Support/Agent CPx/policy.toml, IT's), a
# configuration profile and the browsers' policies it carries (removed by whoever installed it: the pkg
# writes no browser policy on macOS, `cpx-agent browser-policies` answers Unsupported there), each user's own data
# (~/Library/Application Support/Agent CPx, ~/Library/Caches/Agent CPx, ~/Library/Logs/Agent CPx).
# Goes on after a failed step and exits 1 if any failed.
set -uo pipefail

APP="/Applications/Agent CPx.app"
AGENT="$APP/Contents/MacOS/cpx-agent"
LAUNCH_AGENT=/Library/LaunchAgents/fr.agentcpx.tray.plist
LABEL=fr.agentcpx.tray
SUPPORT="/Library/Application Support/Agent CPx"
PKG_ID=fr.agentcpx.agent

[ "$(id -u)" = 0 ] || { echo "uninstall: run it as root: sudo \"$0\"" >&2; exit 1; }
failed=0
step() {
    echo "uninstall: $1"; shift
    "$@" || { echo "uninstall: failed: $*" >&2; failed=1; }
}

# The tray app, in every user session where launchd runs it.
for uid in $(dscl . -list /Users UniqueID | awk '$2 >= 500 { print $2 }'); do
    launchctl bootout "gui/$uid/$LABEL" 2>/dev/null || true
done

if [ -x "$AGENT" ]; then
    step "trust of the local CA and the loopback identity" "$AGENT" uninstall-trust
else
    echo "uninstall: $AGENT is missing: the CA's trust is left as it is" >&2
    failed=1
fi

step "LaunchAgent" rm -f "$LAUNCH_AGENT"
if [ "$(readlink /usr/local/bin/cpx-agent 2>/dev/null)" = "$AGENT" ]; then
    step "command-line link" rm -f /usr/local/bin/cpx-agent
fi
step "application" rm -rf "$APP"
pkgutil --pkg-info "$PKG_ID" >/dev/null 2>&1 && step "pkg receipt" pkgutil --forget "$PKG_ID"
rm -f "$SUPPORT/uninstall.sh"
rmdir "$SUPPORT" 2>/dev/null || true   # kept when IT's policy.toml is in it

[ "$failed" = 0 ] && echo "uninstall: Agent CPx removed"
exit "$failed"

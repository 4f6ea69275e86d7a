#!/usr/bin/env bash
# The tray app on a virtual screen with a virtual CPS3 in the isolated test stack: its icon, its status
# window, then a card login from headless Chromium with the code porteur typed into the tray's dialog;
# prints the screenshot of each step.
#   ./scripts/demo-tray.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# The stack runs in private namespaces (unshare): root is needed. Keep the caller's PATH for cargo.
[ "$(id -u)" = 0 ] || exec sudo env "PATH=$PATH" "HOME=$HOME" "$0" "$@"
scripts/install-deps.sh
cargo build --workspace --bins --locked
exec tests/stack/stack.sh isolated target/debug/cpx-tray-demo

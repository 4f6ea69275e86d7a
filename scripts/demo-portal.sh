#!/usr/bin/env bash
# The card login in a browser: the demo portal, the agent and a virtual CPS3 in the isolated test stack,
# and headless Chromium logging in step by step; prints the screenshot of each page.
#   ./scripts/demo-portal.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# The stack runs in private namespaces (unshare): root is needed. Keep the caller's PATH for cargo.
[ "$(id -u)" = 0 ] || exec sudo env "PATH=$PATH" "HOME=$HOME" "$0" "$@"
scripts/install-deps.sh
cargo build --workspace --bins --locked
exec tests/stack/stack.sh isolated target/debug/cpx-portal-demo

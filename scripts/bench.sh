#!/usr/bin/env bash
# Card-side benchmark on the virtual cards through the real pcscd + vpcd (release build, isolated stack).
#   ./scripts/bench.sh [--json]
set -euo pipefail
cd "$(dirname "$0")/.."
# The stack runs in private namespaces (unshare): root is needed. Keep the caller's PATH for cargo.
[ "$(id -u)" = 0 ] || exec sudo env "PATH=$PATH" "HOME=$HOME" "$0" "$@"
scripts/install-deps.sh
cargo build --release --locked -p cpx-tests --bin cpx-bench
exec tests/stack/stack.sh isolated target/release/cpx-bench "$@"

#!/usr/bin/env bash
# Card-side benchmark on the virtual cards through the real pcscd + vpcd (release build, isolated stack).
#   ./scripts/bench.sh [--json]            card side (APDUs, ms, readiness, OpenSC's count)
#   ./scripts/bench.sh --login [--json]    the whole card login, agent memory and CPU, concurrency
#   ./scripts/bench.sh --tray [--json]     the tray app: cold start, idle memory and CPU, insertion → icon
set -euo pipefail
cd "$(dirname "$0")/.."
# The stack runs in private namespaces (unshare): root is needed. Keep the caller's PATH for cargo.
[ "$(id -u)" = 0 ] || exec sudo env "PATH=$PATH" "HOME=$HOME" "$0" "$@"
scripts/install-deps.sh
cargo build --release --locked --workspace --bins
exec tests/stack/stack.sh isolated target/release/cpx-bench "$@"

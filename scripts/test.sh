#!/usr/bin/env bash
# Runs every test: unit tests, and the end-to-end tests on the real pcscd + vpcd stack with virtual cards,
# inside private namespaces so that no pcscd of the machine is touched. Needs root (unshare).
#   sudo ./scripts/test.sh [cargo test arguments…]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --workspace --all-targets --locked
exec tests/stack/stack.sh isolated cargo test --workspace --offline --locked "$@"

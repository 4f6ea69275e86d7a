#!/usr/bin/env bash
# The soak (docs/benchmarks.md, « Soak »): N card logins (default 1,000) through the real pcscd + vpcd, a
# virtual CPS3, `cpx-agent serve` and the demo portal, with seeded faults; inside the isolated PC/SC stack.
#   ./scripts/soak.sh [--logins N] [--seed S] [--every E] [--deadline SECONDS] [--json] [--release]
# Exits non-zero when a login hung, a failure was untyped or not one its fault explains, or the agent's
# memory or descriptors grew (docs/benchmarks.md says what else it checks).
set -euo pipefail
cd "$(dirname "$0")/.."
# The stack runs in private namespaces (unshare): root is needed. Keep the caller's PATH for cargo.
[ "$(id -u)" = 0 ] || exec sudo env "PATH=$PATH" "HOME=$HOME" "$0" "$@"
scripts/install-deps.sh
profile=debug
args=()
for a in "$@"; do
  if [ "$a" = --release ]; then profile=release; else args+=("$a"); fi
done
flag=(); [ "$profile" = release ] && flag=(--release)
# The agent, the demo portal, the virtual card and the competing PC/SC client the soak starts.
cargo build "${flag[@]}" --locked -p cpx-agent -p cpx-demo-portal -p cpx-tests --bin cpx-agent --bin cpx-demo-portal --bin cpx-soak --bin cpx-rival
exec tests/stack/stack.sh isolated "target/$profile/cpx-soak" "${args[@]+"${args[@]}"}"

#!/usr/bin/env bash
# The style gates, run by scripts/test.sh before the build: rustfmt (rustfmt.toml) on both workspaces (the
# product's and fuzz/), then clippy on every crate and target with every warning an error, the lints of
# [workspace.lints] included. About 5 minutes cold (clippy checks the dependencies once more).
#   scripts/lint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in rustfmt clippy-driver; do
  command -v "$tool" >/dev/null || { echo "lint: $tool is missing (rustup component add ${tool%-driver})" >&2; exit 1; }
done
cargo fmt --all -- --check
(cd fuzz && cargo fmt --all -- --check)
cargo clippy --workspace --all-targets --locked -- -D warnings

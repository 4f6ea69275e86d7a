#!/usr/bin/env bash
# Runs every test: the style gates (scripts/lint.sh: rustfmt, clippy), unit tests, the Windows build's
# tests under Wine (tests/windows/run.sh, msi.sh), the macOS installer's files (tests/macos/check.sh),
# the Linux package's install test (tests/linux/deb.sh), every maintainer script of the .deb and the pkg
# (tests/installers/maintainer-scripts.sh), and the end-to-end tests on the real pcscd + vpcd
# stack with virtual cards, inside private namespaces so that no pcscd of the machine is touched. Needs
# root (unshare).
#   ./scripts/test.sh [cargo test arguments…]
set -euo pipefail
cd "$(dirname "$0")/.."
# The stack runs in private namespaces (unshare): root is needed. Keep the caller's PATH for cargo.
[ "$(id -u)" = 0 ] || exec sudo env "PATH=$PATH" "HOME=$HOME" "$0" "$@"
scripts/install-deps.sh
scripts/lint.sh        # cargo fmt --check, cargo clippy -D warnings (every crate, every target)
cargo build --workspace --all-targets --locked
tests/windows/run.sh   # the Windows build under Wine: its unit tests, then cpx-agent.exe end to end
tests/macos/check.sh   # the macOS pkg's files: plists, distribution, payload layout, shellcheck (seconds)
tests/linux/deb.sh     # the .deb installed, upgraded and purged in a throwaway overlay of / (1 to 2.5 min)
tests/installers/maintainer-scripts.sh   # every deb/pkg maintainer script run alone, its exit status checked (seconds)
tests/windows/msi.sh   # the MSI: its tables, then installed, upgraded and uninstalled by Wine's msiexec
exec tests/stack/stack.sh isolated cargo test --workspace --offline --locked "$@"

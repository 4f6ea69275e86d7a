#!/usr/bin/env bash
# Starts the agent against a simulated card: an isolated pcscd with virtual readers, a virtual CPx card in
# "CPx Test Reader A 00 00", then `cpx-agent status` and `cpx-agent card`. On a terminal it then opens a
# shell inside the stack (cpx-agent, cpx-sim on the PATH); `exit` stops everything.
#   ./scripts/demo.sh [PERSONA]      (default cps3; `cpx-sim personas` lists them)
set -euo pipefail
cd "$(dirname "$0")/.."
# The stack runs in private namespaces (unshare): root is needed. Keep the caller's PATH for cargo.
[ "$(id -u)" = 0 ] || exec sudo env "PATH=$PATH" "HOME=$HOME" "$0" "$@"
root=$(pwd)
persona=${1:-cps3}
if [ "${CPX_DEMO_INSIDE:-}" != 1 ]; then
  scripts/install-deps.sh
  cargo build --workspace --bins --locked
  exec env CPX_DEMO_INSIDE=1 tests/stack/stack.sh isolated "$root/scripts/demo.sh" "$persona"
fi

export PATH="$root/target/debug:$PATH" CPX_AGENT_CACHE_DIR="$root/target/demo-cache"
tests/stack/stack.sh pcscd "$root/target/stack" > "$root/target/demo-pcscd.log" 2>&1 &
until [ -S /run/pcscd/pcscd.comm ]; do sleep 0.05; done
cpx-sim insert "$persona" --port 40000 2>/dev/null &
for _ in $(seq 50); do
  cpx-agent status --reader "CPx Test Reader A 00 00" >/dev/null 2>&1 && break
  [ "$(cpx-agent status --reader "CPx Test Reader A 00 00" --json | grep -c CARD_NOT_RECOGNISED || true)" != 0 ] && break
  sleep 0.1
done
echo "\$ cpx-agent status"; cpx-agent status || true
echo; echo "\$ cpx-agent card --reader \"CPx Test Reader A 00 00\""; cpx-agent card --reader "CPx Test Reader A 00 00" || true
if [ -t 0 ] && [ -t 1 ]; then
  cat <<'MSG'

Inside the test stack. Try:
  cpx-agent watch                                   (Ctrl-C to stop)
  cpx-sim insert cps4 --port 40001 &                (a CPS4 in "CPx Test Reader A 00 01")
  cpx-sim personas                                  (other virtual cards)
  exit                                              (stops pcscd and the cards)
MSG
  PS1='[cpx-stack] \w\$ ' bash --norc -i
fi

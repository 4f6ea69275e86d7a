#!/usr/bin/env bash
# Card-side benchmark on the virtual cards through the real pcscd + vpcd (release build, isolated stack).
#   ./scripts/bench.sh [--json]            card side (APDUs, ms, readiness, OpenSC's count)
#   ./scripts/bench.sh --login [--json]    the whole card login, agent memory and CPU, concurrency
#   ./scripts/bench.sh --tray [--json]     the tray app: cold start, idle memory and CPU, insertion → icon
#   ./scripts/bench.sh --real [--latency real|off|apdu=MS,baud=N,rsa=MS] [--json]
#                                          card login at real-card speed: the card's floor of each path and ours
#                                          (x floor), and the browser through OpenSC PKCS#11 (--no-browser: not it)
#   --debug                                the debug build instead of the release one (no LTO build to wait
#                                          for; at real-card speed the card's latency dominates)
set -euo pipefail
cd "$(dirname "$0")/.."
# The stack runs in private namespaces (unshare): root is needed. Keep the caller's PATH for cargo.
[ "$(id -u)" = 0 ] || exec sudo env "PATH=$PATH" "HOME=$HOME" "$0" "$@"
scripts/install-deps.sh   # also libnss3-tools (certutil, modutil, tstclnt) for --real
profile=release flags=(--release)
case " $* " in *" --debug "*) profile=debug flags=() ;; esac
# The tray app (Tauri, minutes to build) only when its benchmark is asked for.
case " $* " in
  *" --tray "*) cargo build "${flags[@]}" --locked --workspace --bins ;;
  *) cargo build "${flags[@]}" --locked --workspace --bins --exclude cpx-tray ;;
esac
exec tests/stack/stack.sh isolated "target/$profile/cpx-bench" "$@"

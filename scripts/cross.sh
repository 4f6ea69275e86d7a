#!/usr/bin/env bash
# Cross builds, run by CI: the workspace built for Windows (x86_64-pc-windows-gnu, linked by mingw-w64),
# and checked for macOS (aarch64-apple-darwin, x86_64-apple-darwin: `cargo check --all-targets`, with zig
# from the `ziglang` PyPI package as the C compiler of ring, no Apple SDK; nothing is linked). A warning on
# any target fails the run. Left out: cpx-tests, the Linux end-to-end harness (namespaces, pcscd, Xvfb).
#   scripts/cross.sh [windows|macos]...     (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(windows macos)
scripts/install-deps.sh   # mingw-w64 (the Windows linker and C compiler), wine (tests/windows/run.sh)

# Fails on any warning cargo prints, including warnings replayed from an earlier build.
no_warnings() {
    local log=$root/target/cross-$1.log; shift
    mkdir -p "$root/target"
    rm -f "$log"  # a new file: a target/ copied with hard links (cp -al) would share it with another tree
    "$@" 2>&1 | tee "$log" | grep -E '^(warning|error)' || true
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "cross: failed: $*" >&2; exit 1; }
    if grep -q '^warning' "$log"; then echo "cross: warnings (see $log)" >&2; exit 1; fi
}

for t in "${targets[@]}"; do
    start=$SECONDS
    case "$t" in
        windows)
            rustup target add x86_64-pc-windows-gnu >/dev/null
            no_warnings windows cargo build --locked --workspace --exclude cpx-tests --all-targets --target x86_64-pc-windows-gnu
            ;;
        macos)
            rustup target add aarch64-apple-darwin x86_64-apple-darwin >/dev/null
            # zig, in a folder of its own under target/ (no system Python package is touched).
            zig=$root/target/ziglang
            if ! PYTHONPATH=$zig python3 -c 'import ziglang' 2>/dev/null; then
                python3 -m pip install -q --target "$zig" ziglang || python3 -m pip install -q --break-system-packages --target "$zig" ziglang
            fi
            export PYTHONPATH=$zig${PYTHONPATH:+:$PYTHONPATH}
            for triple in aarch64-apple-darwin x86_64-apple-darwin; do
                export "CC_${triple//-/_}=$root/scripts/zig-cc" "AR_${triple//-/_}=$root/scripts/zig-ar" ZIG_TARGET="${triple%%-*}-macos"
                no_warnings "$triple" cargo check --locked --workspace --exclude cpx-tests --all-targets --target "$triple"
            done
            ;;
        *) echo "cross: unknown target set $t (windows, macos)" >&2; exit 2 ;;
    esac
    echo "cross: $t done in $((SECONDS - start)) s"
done

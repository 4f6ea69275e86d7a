#!/usr/bin/env bash
# The release artifacts, in target/release-artifacts/: the packages built from the release profile (LTO,
# one codegen unit, stripped: Cargo.toml [profile.release]), SHA256SUMS beside them, the CycloneDX SBOM
# of the crates they contain (agent-cpx-VERSION.cdx.json: every crate with its version and licence, from
# `cargo metadata`, scripts/sbom.py), and the licence check of that tree (cargo deny when installed,
# deny.toml; otherwise scripts/sbom.py --check with the same allow-list). Not part of ./scripts/test.sh:
# a release build of the tray app takes tens of minutes on 2 cores.
#   scripts/release.sh [--deb] [--msi] [--pkg] [--no-build] [--binaries] [--install-tests]
#     --deb --msi --pkg   the packages to build (default: the .deb and the MSI on Linux, the pkg on macOS)
#     --no-build          package the release binaries already built
#     --binaries          only build the Linux release binaries (cpx-agent, cpx-tray) with the flags below,
#                         no package (scripts/reproducible.sh builds a second clone with it)
#     --install-tests     then run the install tests on these packages (tests/linux/deb.sh,
#                         tests/windows/msi.sh: root, Wine)
# Reproducible: SOURCE_DATE_EPOCH = the commit's time, the source, Cargo and rustup folders remapped
# (--remap-path-prefix for Rust, -ffile-prefix-map for the C code of build scripts), `--locked --offline`,
# no incremental build. scripts/reproducible.sh builds the same commit in another folder and compares;
# README « Release » says what was compared and found.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
want=() build=1 binaries=0 install_tests=0
while [ $# -gt 0 ]; do
    case "$1" in
        --deb|--msi|--pkg) want+=("${1#--}") ;;
        --no-build) build=0 ;;
        --binaries) binaries=1 ;;
        --install-tests) install_tests=1 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "release: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ ${#want[@]} = 0 ]; then
    case "$(uname -s)" in
        Darwin) want=(pkg) ;;
        *) want=(deb msi) ;;
    esac
fi
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
out=$root/target/release-artifacts
mkdir -p "$out"

# The same bytes from the same commit: no build path, no build time.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
# The source tree (its target/ folder included: build scripts' OUT_DIR), Cargo's and rustup's folders get
# fixed names in everything the compilers write: panic locations, debug paths, C __FILE__s.
cargo_home=${CARGO_HOME:-$HOME/.cargo} rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
RUSTFLAGS="--remap-path-prefix=$root=/build/agent-cpx --remap-path-prefix=$cargo_home=/cargo"
RUSTFLAGS+=" --remap-path-prefix=$rustup_home=/rustup"
CFLAGS="${CFLAGS:+$CFLAGS }-ffile-prefix-map=$root=/build/agent-cpx -ffile-prefix-map=$cargo_home=/cargo"
CXXFLAGS="${CXXFLAGS:+$CXXFLAGS }-ffile-prefix-map=$root=/build/agent-cpx -ffile-prefix-map=$cargo_home=/cargo"
export RUSTFLAGS CFLAGS CXXFLAGS CARGO_INCREMENTAL=0
unset CARGO_TARGET_DIR  # target/ inside the tree, under the remapped folder
# Shared machines: the release builds yield to everything else.
build() {
    local start=$SECONDS
    nice -n 19 cargo build --locked --offline --release "$@"
    echo "release: cargo build --release $* took $(( SECONDS - start )) s"
}

if [ "$binaries" = 1 ]; then
    build -p cpx-agent -p cpx-tray --bins
    (cd target/release && sha256sum cpx-agent cpx-tray)
    exit 0
fi

packages=()
for kind in "${want[@]}"; do
    case "$kind" in
        deb)
            [ "$build" = 1 ] && build -p cpx-agent -p cpx-tray --bins
            packages+=("$(scripts/build-deb.sh --release --no-build | tail -1)") ;;
        msi)
            if [ "$build" = 1 ]; then
                T=x86_64-pc-windows-gnu
                rustup target add "$T" >/dev/null 2>&1 || true
                build --target "$T" -p cpx-agent -p cpx-tray --bins
            fi
            packages+=("$(scripts/build-msi.sh --release --no-build | sed -n 's/^build-msi: \([^ ]*\) .*/\1/p')") ;;
        pkg)
            # build-pkg.sh builds the release binaries itself (productbuild, macOS only).
            packages+=("$(nice -n 19 scripts/build-pkg.sh | sed -n 's/^build-pkg: //p')") ;;
    esac
done
for p in "${packages[@]}"; do
    [ -f "$p" ] || { echo "release: no package at '$p'" >&2; exit 1; }
    cp "$p" "$out/"
done

# What the packages contain, and whether its licences may ship with the EUPL-1.2 agent.
python3 scripts/sbom.py --out "$out/agent-cpx-$version.cdx.json"
if cargo deny --version >/dev/null 2>&1; then
    cargo deny --offline --locked check licenses
else
    echo "release: cargo-deny not installed; the same allow-list (deny.toml) checked by scripts/sbom.py"
    python3 scripts/sbom.py --check
fi
(cd "$out" && rm -f SHA256SUMS && shopt -s nullglob && files=(*.deb *.msi *.pkg *.cdx.json) && sha256sum -- "${files[@]}" > SHA256SUMS)
echo "release: $out"
cat "$out/SHA256SUMS"

if [ "$install_tests" = 1 ]; then
    for p in "${packages[@]}"; do
        case "$p" in
            *.deb) CPX_DEB_RELEASE=1 tests/linux/deb.sh ;;
            *.msi) CPX_MSI_RELEASE=1 tests/windows/msi.sh ;;
        esac
    done
fi

#!/usr/bin/env bash
# The macOS installer: target/installer/agent-cpx-VERSION.pkg, a product archive (productbuild) around one
# component package (pkgbuild) whose payload is
#   /Applications/Agent CPx.app                       the tray app (Contents/MacOS/cpx-tray) and the
#                                                     command line (Contents/MacOS/cpx-agent)
#   /Library/LaunchAgents/fr.agentcpx.tray.plist      machine-wide start at login
#   /Library/Application Support/Agent CPx/uninstall.sh
# and whose postinstall (installer/macos/scripts/postinstall) trusts the local CA and starts the tray app
# (the browsers' policies come with the profile). Files: installer/macos/. Install: sudo installer -pkg target/installer/agent-cpx-VERSION.pkg -target /
#
#   scripts/build-pkg.sh [--debug] [--universal]     macOS only (pkgbuild, productbuild): builds the binaries
#                                                     (release; --debug reuses a debug build's profile;
#                                                     --universal: arm64 + x86_64 joined by lipo) and the pkg
#   scripts/build-pkg.sh --stage DIR [--debug]        any OS: only lay out the payload in DIR, from the built
#                                                     binaries of target/PROFILE (or $CPX_PKG_BIN_DIR); the
#                                                     tests check the layout with it (tests/macos/check.sh)
# CPX_PKG_SIGN_IDENTITY="Developer ID Installer: …" signs the product archive (notarization is separate).
set -euo pipefail
cd "$(dirname "$0")/.."
mac=installer/macos
APP_NAME="Agent CPx.app"
PKG_ID=fr.agentcpx.agent
COMPONENT=agent-cpx-component.pkg   # the name distribution.xml's pkg-ref gives
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)

profile=release stage_dir="" universal=""
while [ $# -gt 0 ]; do
    case "$1" in
        --debug) profile=debug ;;
        --universal) universal=1 ;;
        --stage) stage_dir=${2:?--stage DIR}; shift ;;
        *) sed -n '2,20p' "$0" >&2; exit 2 ;;
    esac
    shift
done

# The payload root in $1 from the binaries in $2.
stage() {
    local dest=$1 bin=$2 app
    app="$dest/Applications/$APP_NAME"
    for b in cpx-tray cpx-agent; do
        [ -f "$bin/$b" ] || { echo "build-pkg: $bin/$b missing: build it first (cargo build -p cpx-agent -p cpx-tray)" >&2; exit 1; }
    done
    rm -rf "$dest"
    mkdir -p "$app/Contents/MacOS" "$app/Contents/Resources" "$dest/Library/LaunchAgents" "$dest/Library/Application Support/Agent CPx"
    install -m 755 "$bin/cpx-tray" "$bin/cpx-agent" "$app/Contents/MacOS/"
    sed "s/@VERSION@/$version/g" "$mac/Info.plist" > "$app/Contents/Info.plist"
    cp src-tauri/icons/icon.icns "$app/Contents/Resources/icon.icns"
    install -m 644 "$mac/fr.agentcpx.tray.plist" "$dest/Library/LaunchAgents/fr.agentcpx.tray.plist"
    install -m 755 "$mac/uninstall.sh" "$dest/Library/Application Support/Agent CPx/uninstall.sh"
}

if [ -n "$stage_dir" ]; then
    stage "$stage_dir" "${CPX_PKG_BIN_DIR:-target/$profile}"
    echo "build-pkg: payload laid out in $stage_dir"
    exit 0
fi

if [ "$(uname -s)" != Darwin ] || ! command -v pkgbuild >/dev/null || ! command -v productbuild >/dev/null; then
    echo "build-pkg: the macOS pkg is built on macOS only (pkgbuild and productbuild come with Xcode's command line tools); here: $(uname -s). 'scripts/build-pkg.sh --stage DIR' lays out its payload on any OS." >&2
    exit 2
fi

cargo_flags=(--locked -p cpx-agent -p cpx-tray)
[ "$profile" = release ] && cargo_flags+=(--release)
work=target/installer/macos
rm -rf "$work"
mkdir -p "$work/bin"
if [ -n "$universal" ]; then
    for t in aarch64-apple-darwin x86_64-apple-darwin; do
        rustup target add "$t" >/dev/null
        cargo build "${cargo_flags[@]}" --target "$t"
    done
    for b in cpx-tray cpx-agent; do
        lipo -create -output "$work/bin/$b" "target/aarch64-apple-darwin/$profile/$b" "target/x86_64-apple-darwin/$profile/$b"
    done
else
    cargo build "${cargo_flags[@]}"
    cp "target/$profile/cpx-tray" "target/$profile/cpx-agent" "$work/bin/"
fi

stage "$work/root" "$work/bin"
# The app is installed where the LaunchAgent looks for it, never "relocated" to another copy of the bundle.
pkgbuild --analyze --root "$work/root" "$work/component.plist"
/usr/libexec/PlistBuddy -c "Set :0:BundleIsRelocatable false" "$work/component.plist"
pkgbuild --root "$work/root" --component-plist "$work/component.plist" --identifier "$PKG_ID" --version "$version" \
    --scripts "$mac/scripts" --install-location / "$work/$COMPONENT"
sed "s/@VERSION@/$version/g" "$mac/distribution.xml" > "$work/distribution.xml"
out=target/installer/agent-cpx-$version.pkg
sign=()
[ -n "${CPX_PKG_SIGN_IDENTITY:-}" ] && sign=(--sign "$CPX_PKG_SIGN_IDENTITY")
productbuild --distribution "$work/distribution.xml" --package-path "$work" "${sign[@]+"${sign[@]}"}" "$out"
echo "build-pkg: $out"

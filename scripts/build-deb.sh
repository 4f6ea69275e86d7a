#!/usr/bin/env bash
# Builds the Linux package target/installer/agent-cpx_VERSION_amd64.deb with dpkg-deb (docs/deploiement.md,
# section 4): /usr/bin/cpx-agent and /usr/bin/cpx-tray, the XDG autostart entry, the menu launcher and its
# icon, the managed policy template as the conffile /etc/cpx-agent/policy.toml, and the maintainer scripts
# of installer/linux/debian (postinst: `cpx-agent install-trust`; prerm: `uninstall-trust`).
#   scripts/build-deb.sh [--release] [--no-build]
#     --release    the release builds (the tray's takes several minutes on 2 cores); default: the debug
#                  builds, stripped of their debug information
#     --no-build   package the binaries already in target/ (the tests build them first)
#   CPX_DEB_VERSION=X   the package's version (default: the workspace's)
#   CPX_DEB_COMPRESSION=xz|gzip|zstd|none   (default xz; the install test uses none: xz takes a minute or more)
# Prints the path of the package.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
profile=debug build=1
for arg in "$@"; do
    case "$arg" in
        --release) profile=release ;;
        --no-build) build=0 ;;
        *) sed -n '2,15p' "$0" >&2; exit 2 ;;
    esac
done
for tool in dpkg-deb dpkg-shlibdeps strip; do
    command -v "$tool" >/dev/null || { echo "build-deb: $tool missing: scripts/install-deps.sh (dpkg-dev, binutils)" >&2; exit 1; }
done
version=${CPX_DEB_VERSION:-$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)}
[ -n "$version" ] || { echo "build-deb: no version in Cargo.toml [workspace.package]" >&2; exit 1; }
arch=$(dpkg --print-architecture)

if [ "$build" = 1 ]; then
    flags=(--offline --locked -p cpx-agent -p cpx-tray)
    [ "$profile" = release ] && flags+=(--release)
    cargo build "${flags[@]}"
fi
for bin in cpx-agent cpx-tray; do
    [ -x "target/$profile/$bin" ] || { echo "build-deb: target/$profile/$bin missing (cargo build -p $bin)" >&2; exit 1; }
done

work=$root/target/installer/deb-root
rm -rf "$work"
pkg=$work/pkg
install -d "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/etc/cpx-agent" "$pkg/etc/xdg/autostart" "$pkg/usr/share/applications" \
    "$pkg/usr/share/icons/hicolor/128x128/apps" "$pkg/usr/share/icons/hicolor/32x32/apps" "$pkg/usr/share/doc/agent-cpx"
for bin in cpx-agent cpx-tray; do
    # The debug builds carry hundreds of MB of debug information; the symbols are kept for backtraces.
    strip --strip-debug -o "$pkg/usr/bin/$bin" "target/$profile/$bin"
done
install -m 0644 installer/linux/policy.toml "$pkg/etc/cpx-agent/policy.toml"
install -m 0644 installer/linux/agent-cpx-autostart.desktop "$pkg/etc/xdg/autostart/agent-cpx.desktop"
install -m 0644 installer/linux/agent-cpx.desktop "$pkg/usr/share/applications/agent-cpx.desktop"
install -m 0644 src-tauri/icons/128x128.png "$pkg/usr/share/icons/hicolor/128x128/apps/agent-cpx.png"
install -m 0644 src-tauri/icons/32x32.png "$pkg/usr/share/icons/hicolor/32x32/apps/agent-cpx.png"
# The machine policy watched: a change rewrites the browsers' policies (installer/linux/systemd).
install -d "$pkg/usr/lib/systemd/system"
install -m 0644 installer/linux/systemd/agent-cpx-policy.path installer/linux/systemd/agent-cpx-policy.service "$pkg/usr/lib/systemd/system/"
license=$(sed -n '/^\[workspace.package\]/,/^\[/s/^license *= *"\(.*\)"/\1/p' Cargo.toml)
printf 'Agent CPx\nLicense: %s\nSource: the project repository (README.md).\n' "${license:-see the project repository}" > "$pkg/usr/share/doc/agent-cpx/copyright"
for script in postinst prerm postrm; do
    install -m 0755 "installer/linux/debian/$script" "$pkg/DEBIAN/$script"
done
echo /etc/cpx-agent/policy.toml > "$pkg/DEBIAN/conffiles"

# The libraries the binaries link, as dpkg-shlibdeps finds them; plus what they use without linking it:
# pcscd (the PC/SC service), the tray icon library (loaded at run time), update-ca-certificates.
mkdir -p "$work/debian"
printf 'Source: agent-cpx\n\nPackage: agent-cpx\nArchitecture: any\n' > "$work/debian/control"
shlibs=$(cd "$work" && dpkg-shlibdeps -O pkg/usr/bin/cpx-agent pkg/usr/bin/cpx-tray 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb: dpkg-shlibdeps found no library" >&2; exit 1; }
rm -rf "$work/debian"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<EOF
Package: agent-cpx
Version: $version
Architecture: $arch
Maintainer: Agent CPx <agent-cpx@example.invalid>
Installed-Size: $size
Depends: $shlibs, pcscd, libccid, libayatana-appindicator3-1, ca-certificates
Section: utils
Priority: optional
Description: Agent CPx: CPS/CPE/CPA/CPF cards of French health professionals
 The agent reads the professional's CPx card through PC/SC and logs the
 professional in to the portals allowed by the machine's policy
 (/etc/cpx-agent/policy.toml): card status, identity and mTLS login with the
 card, over a loopback HTTPS API that the portals' pages call.
 .
 The tray application (cpx-tray) starts with each desktop session; the
 command line (cpx-agent) has status, card, diagnose and report for the
 helpdesk. Installing trusts the agent's local certificate authority
 machine-wide (limited to 127.0.0.1 and localhost).
EOF

out=$root/target/installer/agent-cpx_${version}_${arch}.deb
dpkg-deb --root-owner-group "-Z${CPX_DEB_COMPRESSION:-xz}" --build "$pkg" "$out" >/dev/null
rm -rf "$work"
echo "$out"

#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages that the agent, its PC/SC test stack and its tests need.
# Idempotent: asks apt only for what is missing.
set -euo pipefail
PKGS=(
  pcscd libpcsclite-dev   # the PC/SC service and the library the agent links
  vsmartcard-vpcd         # the virtual reader driver the simulated cards plug into
  opensc                  # OpenSC: the cross-check of the virtual card by a driver nobody here wrote
  gcc libc6-dev pkg-config # the TCP_NODELAY shim of the test stack; pcsc-sys finds libpcsclite with pkg-config
  iproute2 util-linux     # ip, unshare: the isolated namespaces of the test stack; setpriv: processes run as other users
  nginx-light openssl     # TLS servers nobody here wrote, for the mTLS interop tests
  chromium chromium-driver libnss3-tools fonts-dejavu-core  # the browser tests (NSS trust store, WebDriver)
  gnome-keyring dbus-daemon dbus-bin  # a real Secret Service for the keyring test
  tmux                    # a real terminal for the terminal PIN prompt test
  squid krb5-kdc krb5-admin-server krb5-user libglib2.0-bin gsettings-desktop-schemas
                          # the proxy tests: Squid (no auth, Basic, Negotiate) as the only way to the portal,
                          # a real Kerberos KDC with its own realm (tests/src/proxy.rs), GNOME's proxy settings
  curl                    # the pages of two OS users in the multi-user test (curl run as each user)
  shellcheck python3      # the installers' scripts linted, the plists parsed (tests/macos/check.sh), scripts/check_policy_templates.py
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libsoup-3.0-dev libxdo-dev libssl-dev
                          # the tray app (Tauri 2 on WebKitGTK, GTK tray icon)
  xvfb xauth x11-utils xdotool imagemagick xclip python3-xlib python3-dbus python3-gi python3-pyatspi at-spi2-core
  webkit2gtk-driver
  dpkg-dev binutils ca-certificates libccid debootstrap
                          # the .deb (scripts/build-deb.sh: dpkg-shlibdeps, strip) and its install test
                          # (tests/linux/deb.sh: the package's dependencies already here, so that apt
                          # fetches nothing; debootstrap for its --debootstrap variant)
  mingw-w64 wine wine64   # the Windows build (mingw-w64 links it; scripts/cross.sh) and its tests under Wine
                          # (tests/windows/run.sh; 64-bit Wine only: no i386 architecture is added)
                          # the tray app's tests: a virtual screen, the keyboard, screenshots, the clipboard,
                          # tray panels (tests/stack/xembed-tray, sni-host), the accessibility tree (a11y-tree),
                          # WebKitWebDriver to read the windows
  wixl msitools python3   # the MSI (scripts/build-msi.sh: wixl builds it, msibuild patches it, msiinfo reads it back)
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "install-deps: apt-get install ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "install-deps: Rust (cargo, stable) is needed" >&2; exit 1; }

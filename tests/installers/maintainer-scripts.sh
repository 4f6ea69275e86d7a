#!/usr/bin/env bash
# Every maintainer script of the packages, run one by one and its exit status checked, in a throwaway root
# (an overlay of / in a private mount namespace, its changes in memory and gone when the test ends):
#   - the .deb's postinst, prerm and postrm (installer/linux/debian), with each argument dpkg gives them,
#     running the real cpx-agent (target/debug) and the real deb-systemd-helper (the policy watch,
#     installer/linux/systemd, enabled, masked at removal, forgotten at purge); then with the real one whose browser policies cannot be
#     written and with a stand-in that fails every command: a removal must
#     never be stopped by the agent, an install must say when the trust could not be set up;
#   - the macOS pkg's postinstall and uninstall.sh (installer/macos), which cannot run their real cpx-agent
#     here: a stand-in answers as the macOS build does (`browser-policies` → Unsupported, exit 1;
#     `install-trust` ok, or refused as a silent install without an administrator's confirmation may be),
#     and stand-ins of launchctl, dscl, pkgutil and `stat -f` record what the scripts ask of macOS. A step
#     that does not apply to macOS must not fail them.
#   tests/installers/maintainer-scripts.sh     (root; run by scripts/test.sh after the workspace's build)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "maintainer-scripts: needs root (mount namespace, chroot)" >&2; exit 1; }
agent_bin=$repo/target/debug/cpx-agent
[ -x "$agent_bin" ] || { echo "maintainer-scripts: build cpx-agent first (cargo build -p cpx-agent)" >&2; exit 1; }
if [ "${CPX_SCRIPTS_TEST_INNER:-}" != 1 ]; then
    CPX_SCRIPTS_TEST_INNER=1 exec unshare --mount --propagation private "$0" "$@"
fi

work=$repo/target/maintainer-scripts-test
root=$work/root
mkdir -p "$work/mem" "$root"
mount -t tmpfs -o size=1g scripts-test "$work/mem"
mkdir -p "$work/mem/upper" "$work/mem/work"
mount -t overlay scripts-test -o "lowerdir=/,upperdir=$work/mem/upper,workdir=$work/mem/work" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=0755 run "$root/run"
mount -t tmpfs -o mode=1777 tmp "$root/tmp"

fail() { echo "maintainer-scripts: FAILED: $*" >&2; exit 1; }
check() { echo "maintainer-scripts: ok: $*"; }
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
# expect_exit STATUS WHAT COMMAND…: the command (in the root) ends with STATUS; its output in $out.
expect_exit() {
    local want=$1 what=$2 rc=0
    shift 2
    out=$(in_root "$@" 2>&1) || rc=$?
    [ "$rc" = "$want" ] || { printf '%s\n' "$out" >&2; fail "$what: exit $rc, expected $want"; }
    check "$what: exit $rc"
}

# ---- the .deb's scripts ----------------------------------------------------------------------------
deb=installer/linux/debian
mkdir -p "$root/tmp/deb"
cp "$repo/$deb/postinst" "$repo/$deb/prerm" "$repo/$deb/postrm" "$root/tmp/deb/"
# As dpkg runs a maintainer script: its name and package in the environment (deb-systemd-helper wants them).
# shellcheck disable=SC2016 # expanded by the script written, not here
printf '#!/bin/sh\nscript=$1; shift\nDPKG_MAINTSCRIPT_PACKAGE=agent-cpx DPKG_MAINTSCRIPT_NAME=$script exec sh "/tmp/deb/$script" "$@"\n' > "$root/tmp/deb/run"
install -m 755 "$agent_bin" "$root/usr/bin/cpx-agent"
mkdir -p "$root/usr/lib/systemd/system"
install -m 644 "$repo/installer/linux/systemd/agent-cpx-policy.path" "$repo/installer/linux/systemd/agent-cpx-policy.service" "$root/usr/lib/systemd/system/"
watch=/etc/systemd/system/multi-user.target.wants/agent-cpx-policy.path   # enabled: started at boot
mkdir -p "$root/etc/cpx-agent"
cat > "$root/etc/cpx-agent/policy.toml" <<'EOF'
browser_policies = true
allowed_origins = ["https://portail.example.fr https://cpx.portail.example.fr/cpx/login"]
EOF
lna=/etc/chromium/policies/managed/agent-cpx-lna.json
ca=/usr/local/share/ca-certificates/agent-cpx-local-ca.crt

# As dpkg runs them: install, upgrade, remove, purge (man deb-postinst, deb-prerm, deb-postrm).
expect_exit 0 "postinst configure (first install)" sh /tmp/deb/run postinst configure
for f in /var/lib/cpx-agent/local-ca.pem "$ca"; do [ -e "$root$f" ] || fail "postinst configure: no $f"; done
grep -q '"https://portail.example.fr"' "$root$lna" || fail "postinst configure: $lna lacks the managed portal"
ca_sum=$(sha256sum < "$root/var/lib/cpx-agent/local-ca.pem")
[ -L "$root$watch" ] || fail "postinst configure did not enable agent-cpx-policy.path"
# The units as systemd reads them (no systemd runs here: the path's trigger itself is not exercised).
in_root systemd-analyze verify /usr/lib/systemd/system/agent-cpx-policy.path /usr/lib/systemd/system/agent-cpx-policy.service \
    || fail "systemd-analyze verify: the policy watch's units"
check "agent-cpx-policy.path enabled, its units verified"
expect_exit 0 "prerm upgrade" sh /tmp/deb/run prerm upgrade 0.0.1
[ -e "$root$ca" ] || fail "prerm upgrade removed the trust"
expect_exit 0 "postrm upgrade" sh /tmp/deb/run postrm upgrade 0.0.1
expect_exit 0 "postinst configure (upgrade)" sh /tmp/deb/run postinst configure 0.0.1
[ "$(sha256sum < "$root/var/lib/cpx-agent/local-ca.pem")" = "$ca_sum" ] || fail "the upgrade made a new local CA"
for args in "postinst abort-upgrade 0.0.1" "postinst abort-remove" "prerm failed-upgrade 0.0.1" \
            "postrm failed-upgrade 0.0.1" "postrm abort-install" "postrm abort-upgrade 0.0.1" "postrm disappear x 1"; do
    read -r script rest <<<"$args"
    # shellcheck disable=SC2086 # the arguments, split on purpose
    expect_exit 0 "$args" sh /tmp/deb/run "$script" $rest
done
expect_exit 0 "prerm remove" sh /tmp/deb/run prerm remove
for f in "$ca" "$lna"; do [ ! -e "$root$f" ] || fail "prerm remove left $f"; done
expect_exit 0 "postrm remove" sh /tmp/deb/run postrm remove
[ -L "$root/etc/systemd/system/agent-cpx-policy.path" ] || fail "postrm remove did not mask agent-cpx-policy.path"
expect_exit 0 "postrm purge" sh /tmp/deb/run postrm purge
[ ! -e "$root/var/lib/cpx-agent" ] || fail "postrm purge left /var/lib/cpx-agent"
for f in "$watch" /etc/systemd/system/agent-cpx-policy.path; do
    if [ -L "$root$f" ]; then fail "postrm purge left $f"; fi
done

# The real `browser-policies apply` failing (its file cannot be written: a folder in its place): the
# install goes on, saying so.
mkdir -p "$root/etc/cpx-agent" "$root$lna"
printf 'browser_policies = true\nallowed_origins = ["https://portail.example.fr"]\n' > "$root/etc/cpx-agent/policy.toml"
set +e; in_root cpx-agent browser-policies apply >/dev/null 2>&1; bp=$?; set -e
[ "$bp" != 0 ] || fail "cpx-agent browser-policies apply wrote over a folder: the check below would prove nothing"
expect_exit 0 "postinst configure, browser-policies apply failing" sh /tmp/deb/run postinst configure
grep -q 'browser-policies apply failed' <<<"$out" || fail "postinst does not say that browser-policies apply failed: $out"
expect_exit 0 "prerm remove, browser-policies remove failing" sh /tmp/deb/run prerm remove
expect_exit 0 "postrm purge" sh /tmp/deb/run postrm purge
rm -rf "$root$lna" "$root/etc/cpx-agent"

# A cpx-agent that fails every command (a broken build, a missing library): removal and purge still work;
# the install fails, saying so (the trust could not be set up: dpkg leaves the package half-configured).
printf '#!/bin/sh\necho "cpx-agent (stand-in): $*: failed" >&2\nexit 1\n' > "$root/usr/bin/cpx-agent"
expect_exit 1 "postinst configure, cpx-agent failing" sh /tmp/deb/run postinst configure
expect_exit 0 "prerm remove, cpx-agent failing" sh /tmp/deb/run prerm remove
grep -q 'uninstall-trust failed' <<<"$out" || fail "prerm does not say that uninstall-trust failed: $out"
rm "$root/usr/bin/cpx-agent"
expect_exit 0 "prerm remove, cpx-agent gone" sh /tmp/deb/run prerm remove
expect_exit 0 "postrm purge, cpx-agent gone" sh /tmp/deb/run postrm purge

# ---- the macOS pkg's scripts -----------------------------------------------------------------------
mac=installer/macos
app="/Applications/Agent CPx.app"
agent="$app/Contents/MacOS/cpx-agent"
calls=/tmp/macos-calls   # what the stand-ins were asked, one line each
# The payload as scripts/build-pkg.sh lays it out, then installed into the root.
mkdir -p "$work/bin"
printf '#!/bin/sh\n' > "$work/bin/cpx-tray"
printf '#!/bin/sh\n' > "$work/bin/cpx-agent"
rm -rf "$work/payload"
CPX_PKG_BIN_DIR=$work/bin "$repo/scripts/build-pkg.sh" --stage "$work/payload" >/dev/null
cp -a "$work/payload/." "$root/"
# cpx-agent as the macOS build answers (agent/src/platform/browser_policies.rs: Unsupported on macOS).
cat > "$root$agent" <<EOF
#!/bin/sh
echo "cpx-agent \$*" >> $calls
case "\$1" in
    install-trust) [ -e /tmp/trust-refused ] && { echo "cpx-agent install-trust: the authorization was denied since no user interaction was possible" >&2; exit 1; }; exit 0 ;;
    uninstall-trust) exit 0 ;;
    browser-policies) echo "cpx-agent browser-policies: browser policies are written by the configuration profile on macOS (installer/macos), not by this command" >&2; exit 1 ;;
    *) echo "cpx-agent (macOS stand-in): \$1 not expected here" >&2; exit 1 ;;
esac
EOF
chmod 755 "$root$agent"
# macOS's own commands: recorded; `stat -f %u /dev/console` gives the console user (\$CONSOLE_UID).
stubs=/opt/macos-stubs
mkdir -p "$root$stubs"
stub() { printf '#!/bin/sh\necho "%s $*" >> %s\n%s\n' "$1" "$calls" "$2" > "$root$stubs/$1"; chmod 755 "$root$stubs/$1"; }
stub launchctl 'exit 0'
stub dscl 'printf "root 0\ndaemon 1\nsoignant 501\nsecretaire 502\n"'
stub pkgutil 'exit 0'
cat > "$root$stubs/stat" <<'EOF'
#!/bin/sh
if [ "$1" = -f ] && [ "$2" = %u ]; then echo "${CONSOLE_UID:-0}"; exit 0; fi
exec /usr/bin/stat "$@"
EOF
chmod 755 "$root$stubs/stat"
in_root groupadd -f wheel   # macOS's group of root, which the postinstall gives the LaunchAgent
# mac_run STATUS WHAT CONSOLE_UID SCRIPT ARGS…: as Installer (or an administrator) runs it, as root.
mac_run() {
    local want=$1 what=$2 uid=$3 rc=0
    shift 3
    : > "$root$calls"
    out=$(chroot "$root" env -i PATH="$stubs:/usr/bin:/bin:/usr/sbin:/sbin" HOME=/var/root CONSOLE_UID="$uid" "$@" 2>&1) || rc=$?
    [ "$rc" = "$want" ] || { printf '%s\n' "$out" >&2; fail "$what: exit $rc, expected $want"; }
    check "$what: exit $rc"
}
called() { grep -qxF -- "$1" "$root$calls" || { cat "$root$calls" >&2; fail "$2: '$1' was not run"; }; }
not_called() { if grep -q -- "$1" "$root$calls"; then cat "$root$calls" >&2; fail "$2: '$1' was run"; fi; }
cp "$repo/$mac/scripts/postinstall" "$root/tmp/postinstall"
pkg_args=(/tmp/agent-cpx.pkg /Applications / /)   # $1 the package, $2 where, $3 the volume, $4 its root

mac_run 0 "postinstall, a user at the screen" 501 /bin/bash /tmp/postinstall "${pkg_args[@]}"
[ "$(readlink "$root/usr/local/bin/cpx-agent")" = "$agent" ] || fail "postinstall: /usr/local/bin/cpx-agent is not a link to $agent"
[ "$(in_root stat -c '%U:%G %a' /Library/LaunchAgents/fr.agentcpx.tray.plist)" = "root:wheel 644" ] || fail "postinstall: the LaunchAgent is not root:wheel 644"
called "cpx-agent install-trust" postinstall
called "launchctl bootstrap gui/501 /Library/LaunchAgents/fr.agentcpx.tray.plist" postinstall
not_called "browser-policies" postinstall
mac_run 0 "postinstall, the login window (no user)" 0 /bin/bash /tmp/postinstall "${pkg_args[@]}"
not_called "launchctl bootstrap" "postinstall at the login window"
mac_run 0 "postinstall on another volume" 501 /bin/bash /tmp/postinstall /tmp/agent-cpx.pkg /Applications "/Volumes/Autre" /
not_called "cpx-agent" "postinstall on another volume"
touch "$root/tmp/trust-refused"
mac_run 1 "postinstall, the trust refused (silent install)" 501 /bin/bash /tmp/postinstall "${pkg_args[@]}"
grep -q "sudo cpx-agent install-trust" <<<"$out" || fail "postinstall does not say what to run when the trust is refused: $out"
called "launchctl bootstrap gui/501 /Library/LaunchAgents/fr.agentcpx.tray.plist" "postinstall, trust refused (the tray starts anyway)"
rm "$root/tmp/trust-refused"

support="/Library/Application Support/Agent CPx"
echo 'port = 47413' > "$root$support/policy.toml"   # IT's: kept
mac_run 0 "uninstall.sh" 501 /bin/bash "$support/uninstall.sh"
called "cpx-agent uninstall-trust" uninstall.sh
called "launchctl bootout gui/501/fr.agentcpx.tray" uninstall.sh
called "launchctl bootout gui/502/fr.agentcpx.tray" uninstall.sh
called "pkgutil --forget fr.agentcpx.agent" uninstall.sh
not_called "browser-policies" uninstall.sh
for f in "$app" /Library/LaunchAgents/fr.agentcpx.tray.plist /usr/local/bin/cpx-agent "$support/uninstall.sh"; do
    if [ -e "$root$f" ] || [ -L "$root$f" ]; then fail "uninstall.sh left $f"; fi
done
[ -e "$root$support/policy.toml" ] || fail "uninstall.sh removed IT's policy.toml"
# Without the app (removed by hand): what cannot be undone is said, the rest is removed, exit 1.
cp "$repo/$mac/uninstall.sh" "$root/tmp/uninstall.sh"
mac_run 1 "uninstall.sh without the app" 501 /bin/bash /tmp/uninstall.sh
grep -q "the CA's trust is left as it is" <<<"$out" || fail "uninstall.sh without the app does not say what is left: $out"
echo "maintainer-scripts: passed"

#!/usr/bin/env bash
# The .deb's install test, in a throwaway root (never the machine's own): an overlay of / in a private
# mount namespace, its changes in memory (tmpfs) and gone when the test ends. In it, as root:
#   1. `apt-get install ./agent-cpx_V.deb` (dependencies resolved by apt from the package registry);
#      the files, the machine's local CA in the system store and in the browsers' policy files, the
#      leaf key readable by a user, the policy watch (agent-cpx-policy.path) enabled;
#   2. in a private network namespace with the project's pcscd + vpcd stack and a virtual CPS3 card
#      (the chroot uses that pcscd's socket): `cpx-agent diagnose` as a user, then `cpx-agent serve` as
#      that user and headless Chromium, with an empty NSS database, loading https://127.0.0.1:PORT/v1/status
#      (trusted through the managed policy alone);
#   3. an upgrade to a newer build (the local CA kept, a local change of the conffile kept);
#   4. `apt-get purge` (every file, the trust and the machine data folder gone).
# An overlay rather than a debootstrapped Debian: debootstrap --variant=minbase took 2 min 31 s here and
# installing the package's dependencies in it 6 min 22 s more; the overlay starts at once. So this test
# does not prove that Depends is complete on a bare system: `--debootstrap` runs the same steps in a
# fresh minimal Debian under target/deb-test/ (passed here in 12 minutes, most of it downloading; not run
# by scripts/test.sh; no Chromium there, so no browser check).
#   tests/linux/deb.sh [--debootstrap]     (root; run by scripts/test.sh after the workspace's build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "deb.sh: needs root (mount and network namespaces, chroot)" >&2; exit 1; }
mode=overlay
[ "${1:-}" = --debootstrap ] && mode=debootstrap

if [ "${CPX_DEB_TEST_INNER:-}" != 1 ]; then
    start=$SECONDS
    # The package under test and a newer build of it, from the binaries already built.
    # Not compressed: xz takes a minute or more on 2 cores, and changes nothing of what is tested.
    v1=$(CPX_DEB_COMPRESSION=none "$repo/scripts/build-deb.sh" --no-build)
    version=$(dpkg-deb -f "$v1" Version)
    # The same content under a higher version (repacked: quicker than building again).
    v2=$repo/target/installer/agent-cpx_${version}+upgrade1_$(dpkg-deb -f "$v1" Architecture).deb
    rm -rf "$repo/target/installer/repack" && dpkg-deb -R "$v1" "$repo/target/installer/repack"
    sed -i "s/^Version: .*/Version: $version+upgrade1/" "$repo/target/installer/repack/DEBIAN/control"
    dpkg-deb --root-owner-group -Znone --build "$repo/target/installer/repack" "$v2" >/dev/null
    rm -rf "$repo/target/installer/repack"
    CPX_DEB_TEST_INNER=1 CPX_DEB_V1=$v1 CPX_DEB_V2=$v2 unshare --mount --propagation private "$0" "$@"
    rm -f "$v1" "$v2"
    echo "deb.sh: passed in $((SECONDS - start)) s"
    exit 0
fi

work=$repo/target/deb-test
mkdir -p "$work"
root=$work/root
fail() { echo "deb.sh: FAILED: $*" >&2; exit 1; }
check() { echo "deb.sh: ok: $*"; }

# ---- the throwaway root ----------------------------------------------------------------------------
if [ "$mode" = overlay ]; then
    mkdir -p "$work/mem" "$root"
    mount -t tmpfs -o size=4g deb-test "$work/mem"
    mkdir -p "$work/mem/upper" "$work/mem/work"
    mount -t overlay deb-test -o "lowerdir=/,upperdir=$work/mem/upper,workdir=$work/mem/work" "$root"
else
    if [ ! -x "$work/debootstrap/usr/bin/apt-get" ]; then
        rm -rf "$work/debootstrap"
        debootstrap --variant=minbase bookworm "$work/debootstrap" http://deb.debian.org/debian
    fi
    # The same overlay trick keeps the debootstrapped root clean for the next run.
    mkdir -p "$work/mem" "$root"
    mount -t tmpfs -o size=4g deb-test "$work/mem"
    mkdir -p "$work/mem/upper" "$work/mem/work"
    mount -t overlay deb-test -o "lowerdir=$work/debootstrap,upperdir=$work/mem/upper,workdir=$work/mem/work" "$root"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
fi
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=0755 run "$root/run"
mount -t tmpfs -o mode=1777 tmp "$root/tmp"
mkdir -p "$root/run/pcscd" "$root/dev/shm" 2>/dev/null || true
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
cp "$CPX_DEB_V1" "$CPX_DEB_V2" "$root/tmp/"
deb1=/tmp/$(basename "$CPX_DEB_V1") deb2=/tmp/$(basename "$CPX_DEB_V2")
[ "$mode" = debootstrap ] && in_root apt-get update -qq
# A user of the machine, as the agent runs.
in_root useradd --create-home --shell /bin/sh cpxuser 2>/dev/null || true
user_spec=$(in_root id -u cpxuser):$(in_root id -g cpxuser)   # numbers: chroot(1) may look names up outside
as_user() { chroot --userspec="$user_spec" "$root" env -i PATH=/usr/bin:/bin HOME=/home/cpxuser LANG=C.UTF-8 "$@"; }

# ---- 1. install ------------------------------------------------------------------------------------
t=$SECONDS
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb1" > "$work/install.log" 2>&1 \
    || { cat "$work/install.log"; fail "apt-get install $deb1"; }
check "apt-get install $(basename "$deb1") ($((SECONDS - t)) s)"
for f in /usr/bin/cpx-agent /usr/bin/cpx-tray /etc/xdg/autostart/agent-cpx.desktop /usr/share/applications/agent-cpx.desktop \
         /etc/cpx-agent/policy.toml /var/lib/cpx-agent/local-ca.pem /var/lib/cpx-agent/loopback-cert.pem \
         /var/lib/cpx-agent/secrets/loopback-tls-key /usr/local/share/ca-certificates/agent-cpx-local-ca.crt \
         /etc/chromium/policies/managed/agent-cpx-local-ca.json /etc/opt/chrome/policies/managed/agent-cpx-local-ca.json \
         /etc/opt/edge/policies/managed/agent-cpx-local-ca.json /etc/firefox/policies/policies.json /etc/firefox-esr/policies/policies.json \
         /usr/lib/systemd/system/agent-cpx-policy.path /usr/lib/systemd/system/agent-cpx-policy.service; do
    [ -e "$root$f" ] || fail "$f missing after install"
done
# Enabled (a link whose absolute target is inside the root: -L, not -e, from outside it).
[ -L "$root/etc/systemd/system/multi-user.target.wants/agent-cpx-policy.path" ] || fail "agent-cpx-policy.path not enabled"
check "the package's files and install-trust's files are in place"
in_root ldd /usr/bin/cpx-tray | grep -q 'not found' && fail "cpx-tray: a library is missing: $(in_root ldd /usr/bin/cpx-tray | grep 'not found')"
in_root dpkg-query -W -f='${Conffiles}\n' agent-cpx | grep -q /etc/cpx-agent/policy.toml || fail "policy.toml is not a conffile"
ca_der=$(openssl x509 -in "$root/var/lib/cpx-agent/local-ca.pem" -outform der | base64 -w0)
# The system store: the bundle update-ca-certificates wrote holds the CA, and openssl verifies the leaf with it.
openssl verify -CAfile "$root/etc/ssl/certs/ca-certificates.crt" "$root/var/lib/cpx-agent/loopback-cert.pem" >/dev/null \
    || fail "the loopback certificate does not verify against the system store"
grep -q "$ca_der" "$root/etc/chromium/policies/managed/agent-cpx-local-ca.json" || fail "Chromium's CACertificates policy lacks the CA"
grep -q /var/lib/cpx-agent/local-ca.pem "$root/etc/firefox/policies/policies.json" || fail "Firefox's Certificates.Install lacks the CA"
check "the local CA is in the system store and the Chromium, Chrome, Edge and Firefox policies"
openssl x509 -in "$root/var/lib/cpx-agent/local-ca.pem" -noout -text | grep -q 'Permitted' || fail "the CA is not name-constrained"
as_user cat /var/lib/cpx-agent/secrets/loopback-tls-key | grep -q 'PRIVATE KEY' || fail "a user cannot read the machine's leaf key"
[ "$(stat -c %U "$root/var/lib/cpx-agent/secrets/loopback-tls-key")" = root ] || fail "the leaf key is not root's"
as_user sh -c 'echo x > /var/lib/cpx-agent/secrets/loopback-tls-key' 2>/dev/null && fail "a user can write the machine's leaf key"
check "the leaf key is readable, not writable, by a user; the CA is name-constrained"

# ---- 2. a card, diagnose and Chromium (private network: loopback only) -----------------------------
cat > "$root/home/cpxuser/agent.toml" <<'EOF'
key_store = "file"
pki = "both"
port = 47413
EOF
chmod 644 "$root/home/cpxuser/agent.toml"
export root work repo user_spec
unshare --net --pid --fork --mount-proc bash -s <<'EOS' || fail "diagnose / Chromium (see above)"
set -euo pipefail
ip link set lo up
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=0755 pcscd /run/pcscd 2>/dev/null || { mkdir -p /run/pcscd; mount -t tmpfs -o mode=0755 pcscd /run/pcscd; }
touch /run/pcscd/.cpx-test-stack
stack=$work/stack
"$repo/tests/stack/stack.sh" pcscd "$stack" >"$work/pcscd.log" 2>&1 &
wait_for() {   # wait_for WHAT CONDITION...: up to 20 s
    for _ in $(seq 200); do "${@:2}" && return 0; sleep 0.1; done
    echo "deb.sh: $1 never came" >&2; return 1
}
wait_for pcscd test -S /run/pcscd/pcscd.comm
mount --bind /run/pcscd "$root/run/pcscd"
"$repo/target/debug/cpx-sim" insert cps3 --port 40000 >"$work/card.log" 2>&1 &
as_user() { chroot --userspec="$user_spec" "$root" env -i PATH=/usr/bin:/bin HOME=/home/cpxuser LANG=C.UTF-8 CPX_AGENT_CONFIG=/home/cpxuser/agent.toml "$@"; }
ok=
for _ in $(seq 50); do
    if as_user cpx-agent status >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
done
[ -n "$ok" ] || { as_user cpx-agent status || true; echo "deb.sh: the virtual card is not ready" >&2; exit 1; }
set +e
as_user cpx-agent diagnose --json --lang en > "$work/diagnose.json"   # English details: matched below
status=$?
set -e
as_user cpx-agent diagnose || true
python3 - "$work/diagnose.json" "$status" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
checks = {c["check"].split(":")[0]: c for c in d["checks"]}
trust = checks["loopback_trust"]
assert trust["verdict"] == "ok" and trust["detail"].startswith("machine identity /var/lib/cpx-agent"), trust
assert checks["card"]["verdict"] == "ok" and checks["certificate"]["verdict"] == "ok", d
assert sys.argv[2] == "0", f"diagnose exit status {sys.argv[2]}: {d['first_fault']}"
EOF
echo "deb.sh: ok: cpx-agent diagnose as a user: the card, and the machine identity trusted everywhere (exit 0)"

# The agent as that user presents the machine's certificate; Chromium, with no NSS database of its own,
# trusts it through the managed policy alone.
as_user cpx-agent serve >"$work/serve.log" 2>&1 &
wait_for "cpx-agent serve" grep -q 'https://127.0.0.1:47413' "$work/serve.log" || { cat "$work/serve.log"; exit 1; }
grep -q 'local CA: /var/lib/cpx-agent/local-ca.pem' "$work/serve.log" || { cat "$work/serve.log"; exit 1; }
if [ ! -x "$root/usr/bin/chromium" ]; then
    echo "deb.sh: no Chromium in this root: the browser check is left out"
    exit 0
fi
install -d -o "$(stat -c %u "$root/home/cpxuser")" "$root/tmp/chromium-home"
load() {
    chroot --userspec="$user_spec" "$root" env -i PATH=/usr/bin:/bin HOME=/tmp/chromium-home LANG=C.UTF-8 \
        chromium --headless --no-sandbox --disable-gpu --disable-background-networking --virtual-time-budget=3000 \
        --dump-dom https://127.0.0.1:47413/v1/status 2>/dev/null || true
}
# Without the policy file (the system store alone, which Chromium does not read), the page does not load.
policy=$root/etc/chromium/policies/managed/agent-cpx-local-ca.json
mv "$policy" "$root/tmp/policy.json"   # out of the folder: Chromium reads every file in it, whatever its name
page=$(load)
mv "$root/tmp/policy.json" "$policy"
case "$page" in
    *'"agent":"cpx-agent"'*) echo "deb.sh: Chromium loaded the page without the policy: the check below would prove nothing" >&2; exit 1 ;;
esac
page=$(load)
case "$page" in
    *'"agent":"cpx-agent"'*) echo "deb.sh: ok: headless Chromium trusts the agent's certificate through the managed policy" ;;
    *) echo "deb.sh: Chromium did not load https://127.0.0.1:47413/v1/status: ${page:0:300}" >&2; exit 1 ;;
esac
EOS

# ---- 3. upgrade ------------------------------------------------------------------------------------
# The administrator changes the policy: a managed portal and the browsers' Local Network Access policies.
cat >> "$root/etc/cpx-agent/policy.toml" <<'EOP'
# changed by the administrator
browser_policies = true
allowed_origins = ["https://portail.example.fr https://cpx.portail.example.fr/cpx/login"]
EOP
ca_before=$(sha256sum < "$root/var/lib/cpx-agent/local-ca.pem")
t=$SECONDS
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb2" > "$work/upgrade.log" 2>&1 \
    || { cat "$work/upgrade.log"; fail "apt-get install $deb2"; }
[ "$(in_root dpkg-query -W -f='${Version}' agent-cpx)" = "$(dpkg-deb -f "$CPX_DEB_V2" Version)" ] || fail "not upgraded"
[ "$(sha256sum < "$root/var/lib/cpx-agent/local-ca.pem")" = "$ca_before" ] || fail "the upgrade made a new local CA"
grep -q 'changed by the administrator' "$root/etc/cpx-agent/policy.toml" || fail "the upgrade lost the administrator's policy"
openssl verify -CAfile "$root/etc/ssl/certs/ca-certificates.crt" "$root/var/lib/cpx-agent/loopback-cert.pem" >/dev/null || fail "trust lost by the upgrade"
check "upgrade to $(dpkg-deb -f "$CPX_DEB_V2" Version) ($((SECONDS - t)) s): local CA, trust and policy kept"
for f in /etc/chromium/policies/managed/agent-cpx-lna.json /etc/opt/chrome/policies/managed/agent-cpx-lna.json /etc/opt/edge/policies/managed/agent-cpx-lna.json; do
    grep -q '"https://portail.example.fr"' "$root$f" || fail "$f does not allow the managed portal"
done
grep -q '"portail.example.fr"' "$root/etc/firefox/policies/policies.json" || fail "Firefox's LocalNetworkAccess does not skip the managed portal"
grep -q /var/lib/cpx-agent/local-ca.pem "$root/etc/firefox/policies/policies.json" || fail "Firefox's policies lost the local CA when the LNA policy was merged in"
check "postinst wrote the browsers' Local Network Access policies for the managed portal (browser_policies = true)"

# ---- 4. purge --------------------------------------------------------------------------------------
t=$SECONDS
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq agent-cpx > "$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "apt-get purge"; }
in_root dpkg-query -W agent-cpx >/dev/null 2>&1 && fail "agent-cpx still known to dpkg"
for f in /usr/bin/cpx-agent /usr/bin/cpx-tray /etc/xdg/autostart/agent-cpx.desktop /etc/cpx-agent /var/lib/cpx-agent \
         /usr/local/share/ca-certificates/agent-cpx-local-ca.crt /etc/ssl/certs/agent-cpx-local-ca.pem \
         /etc/chromium/policies/managed/agent-cpx-local-ca.json /etc/chromium/policies/managed/agent-cpx-lna.json \
         /etc/opt/chrome /etc/opt/edge /etc/firefox/policies/policies.json /etc/firefox-esr/policies; do
    [ ! -e "$root$f" ] || fail "$f left after purge"
done
for f in /etc/systemd/system/multi-user.target.wants/agent-cpx-policy.path /etc/systemd/system/agent-cpx-policy.path; do
    if [ -L "$root$f" ]; then fail "$f (the policy watch enabled or masked) left after purge"; fi
done
[ -d "$root/etc/opt" ] || fail "/etc/opt (the system's) was removed"
grep -q "$ca_der" <(sed '/^-/d' "$root/etc/ssl/certs/ca-certificates.crt" | tr -d '\n') && fail "the CA is still in the system bundle"
check "apt-get purge ($((SECONDS - t)) s): files, machine identity and trust all gone"

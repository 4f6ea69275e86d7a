#!/usr/bin/env bash
# The macOS installer's files, checked on any OS (the pkg itself is built and installed only on a Mac:
# .github/workflows/native.yml). Every plist and XML parses; the distribution's component is the one
# scripts/build-pkg.sh builds, with the postinstall it requires; the payload that build-pkg.sh lays out
# holds what the LaunchAgent, the postinstall and the uninstall script point to; the scripts pass
# bash -n and shellcheck; build-pkg.sh refuses clearly off macOS. A few seconds.
#   tests/macos/check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
mac=installer/macos
fail() { echo "macos check: $*" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Stand-in binaries: only the layout is checked here.
mkdir -p "$work/bin"
printf '#!/bin/sh\n' > "$work/bin/cpx-tray"
printf '#!/bin/sh\n' > "$work/bin/cpx-agent"
CPX_PKG_BIN_DIR=$work/bin scripts/build-pkg.sh --stage "$work/root" >/dev/null

python3 - "$mac" "$work/root" <<'PY'
import os, plistlib, re, stat, sys
import xml.dom.minidom

mac, root = sys.argv[1], sys.argv[2]
def fail(msg):
    sys.exit(f"macos check: {msg}")
def load(path):
    try:
        with open(path, "rb") as f:
            return plistlib.load(f)
    except Exception as e:
        fail(f"{path} does not parse as a plist: {e}")
def inside(path):
    return os.path.join(root, path.lstrip("/"))

# Every plist parses (the profile is h3's file: checked when present).
for name in ["fr.agentcpx.tray.plist", "Info.plist", "agent-cpx.mobileconfig", "fr.agentcpx.agent.all-keys.plist"]:
    if os.path.exists(os.path.join(mac, name)):
        load(os.path.join(mac, name))

# The LaunchAgent: named after its label, runs the app the payload installs, in graphical sessions.
agent = load(inside("/Library/LaunchAgents/fr.agentcpx.tray.plist"))
if agent.get("Label") != "fr.agentcpx.tray":
    fail(f"LaunchAgent label {agent.get('Label')!r} is not its file name's")
program = agent["ProgramArguments"][0]
if not os.path.isfile(inside(program)) or not os.stat(inside(program)).st_mode & stat.S_IXUSR:
    fail(f"the LaunchAgent runs {program}, which the payload does not install (executable)")
if agent.get("LimitLoadToSessionType") != "Aqua" or agent.get("RunAtLoad") is not True:
    fail("the LaunchAgent must start at login in graphical sessions (Aqua, RunAtLoad)")

# The app bundle: its executable is the LaunchAgent's program, the version is filled in.
info_path = inside("/Applications/Agent CPx.app/Contents/Info.plist")
info = load(info_path)
exe = inside(f"/Applications/Agent CPx.app/Contents/MacOS/{info['CFBundleExecutable']}")
if os.path.realpath(exe) != os.path.realpath(inside(program)):
    fail(f"CFBundleExecutable {info['CFBundleExecutable']} is not the LaunchAgent's program {program}")
if "@" in info["CFBundleShortVersionString"] or not os.path.exists(inside(f"/Applications/Agent CPx.app/Contents/Resources/{info['CFBundleIconFile']}")):
    fail("Info.plist: version not filled in or icon missing")

# The distribution: parses, requires the scripts, names the component build-pkg.sh builds.
dist = xml.dom.minidom.parse(os.path.join(mac, "distribution.xml"))
refs = [r.firstChild.data.strip() for r in dist.getElementsByTagName("pkg-ref") if r.firstChild]
build = open("scripts/build-pkg.sh").read()
component = re.search(r'^COMPONENT=(\S+)', build, re.M).group(1)
if refs != [component]:
    fail(f"distribution.xml refers to {refs}, build-pkg.sh builds {component}")
options = dist.getElementsByTagName("options")[0]
if options.getAttribute("require-scripts") != "true" or options.getAttribute("rootVolumeOnly") != "true":
    fail("distribution.xml: require-scripts and rootVolumeOnly must be true")
if "--scripts \"$mac/scripts\"" not in build:
    fail("build-pkg.sh does not give pkgbuild installer/macos/scripts")
post = os.path.join(mac, "scripts", "postinstall")
if not os.access(post, os.X_OK):
    fail(f"{post} missing or not executable")

# What the scripts point to is what the payload installs.
for script in [post, os.path.join(mac, "uninstall.sh")]:
    text = open(script).read()
    for var in ["APP", "AGENT", "LAUNCH_AGENT"]:
        m = re.search(rf'^{var}="?([^"\n]+)"?$', text, re.M)
        if not m:
            fail(f"{script}: no {var}=")
        path = m.group(1).replace("$APP", re.search(r'^APP="([^"]+)"', text, re.M).group(1))
        if not os.path.exists(inside(path)):
            fail(f"{script}: {var}={path} is not in the payload")
    for command in ["install-trust"] if script == post else ["uninstall-trust"]:
        if f'"$AGENT" {command}' not in text:
            fail(f"{script} does not run cpx-agent {command}")
    # Unsupported on macOS (the profile carries the browsers' policies): running it would fail the script.
    if re.search(r'^[^#]*"\$AGENT" browser-policies', text, re.M):
        fail(f"{script} runs cpx-agent browser-policies, which answers Unsupported on macOS")
if not os.path.exists(inside("/Library/Application Support/Agent CPx/uninstall.sh")):
    fail("the payload lacks the uninstall script")
print("macos check: plists, distribution and payload layout agree")
PY

for s in scripts/build-pkg.sh "$mac/scripts/postinstall" "$mac/uninstall.sh" tests/macos/check.sh; do
    bash -n "$s" || fail "$s: bash -n"
done
if command -v shellcheck >/dev/null; then
    shellcheck scripts/build-pkg.sh "$mac/scripts/postinstall" "$mac/uninstall.sh" tests/macos/check.sh || fail "shellcheck"
else
    echo "macos check: shellcheck not installed (scripts/install-deps.sh installs it): skipped" >&2
fi

if [ "$(uname -s)" != Darwin ]; then
    set +e
    msg=$(scripts/build-pkg.sh 2>&1); rc=$?
    set -e
    if [ "$rc" != 2 ] || ! grep -q "built on macOS only" <<<"$msg"; then fail "build-pkg.sh off macOS: exit $rc, $msg"; fi
fi
echo "macos check: ok"

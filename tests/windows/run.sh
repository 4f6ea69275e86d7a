#!/usr/bin/env bash
# The Windows build under Wine (Debian's Wine 8): the unit tests of the crates that run without a card,
# then end-to-end checks of cpx-agent.exe: the CLI, PC/SC absent, the loopback server answering a page's
# requests from Linux curl, the loopback key in the Windows Credential Manager, the per-OS folders, the
# managed policy read from the registry (HKLM over HKCU over the policy file over the user's file), and the
# per-user autostart Run value. The MSI has its own script: tests/windows/msi.sh.
#   tests/windows/run.sh            (needs wine, mingw-w64: scripts/install-deps.sh)
# Everything Wine writes lives in a private prefix under target/ (no ~/.wine is touched).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
T=x86_64-pc-windows-gnu
out=$root/target/test-out/windows
mkdir -p "$out"
rustup target add "$T" >/dev/null 2>&1 || true

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() { # expect NAME HAYSTACK NEEDLE
    grep -qF -- "$3" <<<"$2" || { printf '%s\n' "$2" >&2; fail "$1: no '$3' in the output above"; }
}

# Wine: a private prefix, no Mono/Gecko install prompts, quiet; our bcryptprimitives.dll before Wine's.
export WINEPREFIX=$root/target/wine-prefix
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml=;bcryptprimitives,winscard=n,b"
shim=$root/target/wine-shim
export WINEPATH="Z:${shim//\//\\}"

step "ProcessPrng shim (bcryptprimitives.dll) from tests/windows/processprng.c"
mkdir -p "$shim"
x86_64-w64-mingw32-gcc -shared -O2 -Wall -Werror -o "$shim/bcryptprimitives.dll" \
    tests/windows/processprng.c tests/windows/processprng.def -lbcrypt

step "Wine prefix"
[ -e "$WINEPREFIX/system.reg" ] || wineboot -i >/dev/null 2>&1
wine_() { wine "$@" 2> >(grep -v -e 'wine32 is missing' -e 'multiarch needs' -e 'dpkg --add-architecture' -e 'apt-get install wine32' >&2); }

step "unit tests of the Windows build, run by Wine"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
cargo test --locked --target "$T" -p cpx-pcsc -p cpx-card -p cpx-agent -p cpx-sim -p cpx-verifier --lib --bins \
    2> >(grep -v -e 'wine32 is missing' -e 'multiarch needs' -e 'dpkg --add-architecture' -e 'apt-get install wine32' >&2)
unset CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER

step "cpx-agent.exe, with a winscard.dll of a stopped Smart Card service (tests/windows/winscard-stopped.c)"
cargo build --locked --target "$T" -p cpx-agent --bin cpx-agent
# The program's own folder comes first in Windows' DLL search: the agent sees the Smart Card service
# stopped, as Windows reports it (Wine's winscard.dll is a stub that fails in ways no Windows does).
app=$root/target/wine-app
mkdir -p "$app"
x86_64-w64-mingw32-gcc -shared -O2 -Wall -Werror -o "$app/winscard.dll" tests/windows/winscard-stopped.c tests/windows/winscard-stopped.def
cp "$root/target/$T/debug/cpx-agent.exe" "$shim/bcryptprimitives.dll" "$app/"
exe=$app/cpx-agent.exe
win_user=$(wine_ cmd /c 'echo %USERNAME%' | tr -d '\r')
local_app=$WINEPREFIX/drive_c/users/$win_user/AppData/Local
roaming_app=$WINEPREFIX/drive_c/users/$win_user/AppData/Roaming
program_data=$WINEPREFIX/drive_c/ProgramData
policy_key='HKLM\Software\Policies\Agent CPx'
user_policy_key='HKCU\Software\Policies\Agent CPx'
# A clean slate: no policy, no user file, no data from an earlier run.
wine_ reg delete "$policy_key" /f >/dev/null 2>&1 || true
wine_ reg delete "$user_policy_key" /f >/dev/null 2>&1 || true
rm -rf "$local_app/Agent CPx" "$roaming_app/Agent CPx" "$program_data/Agent CPx"

step "errors: the catalogue"
errors=$(wine_ "$exe" errors --lang en)
expect errors "$errors" PCSC_SERVICE_STOPPED

step "status with the Smart Card service stopped: PCSC_SERVICE_STOPPED, exit 3"
set +e
status=$(wine_ "$exe" status --json); rc=$?
set -e
echo "$status" > "$out/status.json"
[ "$rc" = 3 ] || { echo "$status"; fail "status exit $rc, wanted 3 (PC/SC service stopped)"; }
expect status "$status" '"PCSC_SERVICE_STOPPED"'

step "diagnose with built-in defaults"
set +e
diag=$(wine_ "$exe" diagnose --json --lang en); rc=$?   # English details: the words matched below
set -e
echo "$diag" > "$out/diagnose-defaults.json"
expect diagnose "$diag" '"check":"pcsc_service"'
expect diagnose "$diag" 'built-in defaults'
[ "$rc" != 0 ] || fail "diagnose exit 0 without a PC/SC service"

step "managed policy: HKLM over HKCU over %ProgramData% policy.toml over %APPDATA% config.toml"
mkdir -p "$roaming_app/Agent CPx" "$program_data/Agent CPx"
printf 'port = 47001\nlog_level = "debug"\nbusy_wait_seconds = 11\npki = "test"\n' > "$roaming_app/Agent CPx/config.toml"
printf 'port = 47002\nbusy_wait_seconds = 12\n' > "$program_data/Agent CPx/policy.toml"
wine_ reg add "$user_policy_key" /v port /t REG_DWORD /d 47003 /f >/dev/null
wine_ reg add "$user_policy_key" /v pki /t REG_SZ /d both /f >/dev/null
wine_ reg add "$policy_key" /v port /t REG_DWORD /d 47004 /f >/dev/null
wine_ reg add "$policy_key\\site\\1" /v origin /t REG_SZ /d https://portail.example.fr /f >/dev/null
wine_ reg add "$policy_key\\site\\1" /v signed_token /t REG_DWORD /d 1 /f >/dev/null
set +e
diag=$(wine_ "$exe" diagnose --json --lang en --origin https://portail.example.fr); rc=$?
set -e
echo "$diag" > "$out/diagnose-policy.json"
expect policy "$diag" 'port 47004'
expect policy "$diag" 'IGC-Santé production and test'
expect policy "$diag" 'managed policy HKLM\\Software\\Policies\\Agent CPx sets: port, site'
expect policy "$diag" 'managed policy HKCU\\Software\\Policies\\Agent CPx sets: pki'
expect policy "$diag" 'Agent CPx\\policy.toml sets: busy_wait_seconds'
expect policy "$diag" 'config.toml sets: log_level'
expect policy "$diag" 'https://portail.example.fr → no mTLS endpoint'
expect policy "$diag" 'port = 47004  (HKLM\\Software\\Policies\\Agent CPx)'
expect policy "$diag" 'pki = \"both\"  (HKCU\\Software\\Policies\\Agent CPx)'
step "a malformed registry value is named, and its safe default is in force"
wine_ reg add "$policy_key" /v autostart /t REG_DWORD /d 7 /f >/dev/null
set +e
bad=$(wine_ "$exe" diagnose --json --lang en 2>&1); rc=$?
set -e
case "$rc" in 8|9) ;; *) fail "diagnose with a bad policy value: exit $rc, wanted 8 or 9 (checks run, the value is a warning)" ;; esac
expect bad-policy "$bad" '"check":"policy_problem:autostart"'
expect bad-policy "$bad" '"code":"POLICY_MALFORMED"'
expect bad-policy "$bad" 'HKLM\\Software\\Policies\\Agent CPx: autostart: 7 is neither 0 (no) nor 1 (yes); instead: autostart = true'
wine_ reg delete "$policy_key" /v autostart /f >/dev/null

port=47004
ca="$local_app/Agent CPx/local-ca.pem"
# $! is the shell around wine, not the Windows process: end every process of the prefix, then make sure
# nothing answers on the port any more (the next serve must be the one answering).
stop_serve() {
    kill $serve_pid 2>/dev/null || true
    wineserver -k 2>/dev/null || true
    wineserver -w 2>/dev/null || true
    wait $serve_pid 2>/dev/null || true
    for _ in $(seq 1 50); do curl -s -o /dev/null --max-time 1 "https://127.0.0.1:$port/" -k || return 0; sleep 0.2; done
    fail "something still answers on port $port"
}
step "serve refuses a client whose user it cannot find (Linux curl is no Windows process): OTHER_USER"
log=$out/serve.log
wine_ "$exe" serve >"$log.0" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null || true; wineserver -k 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    [ -s "$ca" ] && curl -s --cacert "$ca" -o /dev/null "https://127.0.0.1:$port/v1/status" && break
    kill -0 $serve_pid 2>/dev/null || { cat "$log.0"; fail "serve exited"; }
    sleep 0.2
done
unknown=$(curl -sS --cacert "$ca" "https://127.0.0.1:$port/v1/status" -H 'Origin: https://portail.example.fr')
expect fail-closed "$unknown" '"code":"OTHER_USER"'
stop_serve

# From here on Linux curl plays the user's own browser: the debug build's test switch takes a client whose
# owner Wine cannot find as the agent's user (agent/src/loopback/peer.rs; release builds ignore it).
export CPX_AGENT_TEST_UNKNOWN_PEER_IS_SELF=1
step "serve: a page's requests from Linux curl, the loopback key in the Credential Manager"
wine_ "$exe" serve >"$log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 300); do
    [ -s "$ca" ] && curl -s --cacert "$ca" "https://127.0.0.1:$port/v1/status" >/dev/null && break
    kill -0 $serve_pid 2>/dev/null || { cat "$log"; fail "serve exited"; }
    sleep 0.2
done
plain=$(curl -sS --cacert "$ca" "https://127.0.0.1:$port/v1/status")
expect serve "$plain" '"agent":"cpx-agent"'
headers=$(curl -sS --cacert "$ca" -X OPTIONS -D - -o /dev/null "https://127.0.0.1:$port/v1/status" \
    -H 'Origin: https://portail.example.fr' -H 'Access-Control-Request-Method: GET')
expect preflight "$headers" 'access-control-allow-origin: https://portail.example.fr'
page=$(curl -sS --cacert "$ca" "https://127.0.0.1:$port/v1/status" -H 'Origin: https://portail.example.fr')
echo "$page" > "$out/status-page.json"
expect page "$page" 'PCSC_SERVICE_STOPPED'
other=$(curl -sS --cacert "$ca" -D - "https://127.0.0.1:$port/v1/status" -H 'Origin: https://autre.example')
grep -qi '^access-control-allow-origin' <<<"$other" && fail "a page outside policy may read the status: $other"
refused=$(curl -sS --cacert "$ca" -o /dev/null -w '%{http_code}' -X POST "https://127.0.0.1:$port/v1/authenticate" \
    -H 'Origin: https://autre.example' -H 'Content-Type: application/json' -d '{}')
[ "$refused" = 403 ] || fail "a login from an origin outside policy got $refused"
cert1=$(cat "$local_app/Agent CPx/loopback-cert.pem")
grep -rlq "PRIVATE KEY" "$local_app/Agent CPx" && fail "a private key was written to the data folder"
creds=$(wine_ reg query 'HKCU\Software\Wine\Credential Manager' /s)
expect credential-manager "$creds" 'Generic: loopback-tls-key.cpx-agent'
stop_serve
step "serve again: the key comes back from the Credential Manager (same certificate)"
wine_ "$exe" serve >"$log.2" 2>&1 &
serve_pid=$!
for _ in $(seq 1 300); do
    curl -s --cacert "$ca" "https://127.0.0.1:$port/v1/status" >/dev/null && break
    kill -0 $serve_pid 2>/dev/null || { cat "$log.2"; fail "serve exited"; }
    sleep 0.2
done
[ "$(cat "$local_app/Agent CPx/loopback-cert.pem")" = "$cert1" ] || fail "a new loopback certificate: the key was not read back"
curl -sS --cacert "$ca" "https://127.0.0.1:$port/v1/status" >/dev/null
stop_serve

step "per-user autostart: the HKCU Run value (cpx-agent autostart on / status / off)"
run_key='HKCU\Software\Microsoft\Windows\CurrentVersion\Run'
: > "$app/cpx-tray.exe"   # what the entry starts by default: cpx-tray.exe next to cpx-agent.exe
wine_ reg delete "$run_key" /v 'Agent CPx' /f >/dev/null 2>&1 || true
wine_ "$exe" autostart on >/dev/null
tray_path=$(winepath -w "$app/cpx-tray.exe" | tr -d '\r')
expect autostart-on "$(wine_ reg query "$run_key" /v 'Agent CPx')" "Agent CPx    REG_SZ    \"$tray_path\" --autostart"
auto=$(wine_ "$exe" autostart status --json)
expect autostart-status "$auto" '"user_entry":"\"'
expect autostart-status "$auto" '"machine":false'
wine_ "$exe" autostart off >/dev/null
wine_ reg query "$run_key" /v 'Agent CPx' >/dev/null 2>&1 && fail "autostart off: the Run value is still there"
expect autostart-off "$(wine_ "$exe" autostart status --lang en)" 'Start with the session (this user): off'

step "per-OS folders"
ls "$local_app/Agent CPx/logs/"cpx-agent.log* >/dev/null || fail "no log file under %LOCALAPPDATA%\\Agent CPx\\logs"
[ -d "$local_app/Agent CPx" ] || fail "no data folder under %LOCALAPPDATA%"

wine_ reg delete "$policy_key" /f >/dev/null 2>&1 || true
wine_ reg delete "$user_policy_key" /f >/dev/null 2>&1 || true
step "Windows build under Wine: all passed"

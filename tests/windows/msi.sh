#!/usr/bin/env bash
# The Windows installer (installer/windows/agent-cpx.wxs, scripts/build-msi.sh): built, its tables read back
# with msiinfo and checked, then installed silently under Wine: refused without the WebView2 Runtime (the
# message says what is missing), installed with the public properties next to values a GPO set before
# (the MSI writes its installer defaults to HKLM\Software\Agent CPx\Defaults, never to the GPO's key), the
# installed cpx-agent.exe reading both (the GPO's winning) and on the machine's PATH, an upgrade to a newer
# build that keeps the defaults and the GPO's values, the uninstall (files, the MSI's registry values, the
# PATH entry and the Run entry gone; the GPO's values left), and an install where the runtime is present.
#   tests/windows/msi.sh            (needs wixl, msitools, wine, mingw-w64: scripts/install-deps.sh)
# Uses the Windows debug build (scripts/cross.sh windows builds it when it is missing) and a Wine prefix of
# its own under target/ (target/wine-prefix-msi), made afresh each run.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
T=x86_64-pc-windows-gnu
out=$root/target/test-out/windows-msi
rm -rf "$out"
mkdir -p "$out"

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() { # expect NAME HAYSTACK NEEDLE
    grep -qF -- "$3" <<<"$2" || { printf '%s\n' "$2" >&2; fail "$1: no '$3' in the output above"; }
}
expect_not() { # expect_not NAME HAYSTACK NEEDLE
    if grep -qF -- "$3" <<<"$2"; then printf '%s\n' "$2" >&2; fail "$1: '$3' still in the output above"; fi
}
row() { # row NAME TABLE-TEXT FIELD... : one row of an exported table has these tab-separated fields in a row
    local pattern
    pattern=$(printf '%s\t' "${@:3}")
    grep -qF -- "${pattern%$'\t'}" <<<"$2" || { printf '%s\n' "$2" >&2; fail "$1: no row with $(printf '[%s] ' "${@:3}")"; }
}

v1=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
IFS=. read -r major minor patch <<<"$v1"
v2=$major.$minor.$((patch + 1))
msi1=$out/agent-cpx-$v1.msi
msi2=$out/agent-cpx-$v2.msi

# CPX_MSI_RELEASE=1 (scripts/release.sh --install-tests): the release build scripts/release.sh made.
if [ "${CPX_MSI_RELEASE:-}" = 1 ]; then
    bin=$root/target/$T/release
    [ -e "$bin/cpx-agent.exe" ] && [ -e "$bin/cpx-tray.exe" ] || fail "no release build in $bin (scripts/release.sh --msi)"
else
    bin=$root/target/$T/debug
    [ -e "$bin/cpx-agent.exe" ] && [ -e "$bin/cpx-tray.exe" ] || scripts/cross.sh windows
fi

# Wine: a prefix of its own; our bcryptprimitives.dll (ProcessPrng, tests/windows/processprng.c) first.
export WINEPREFIX=$root/target/wine-prefix-msi
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml=;bcryptprimitives=n,b"
shim=$root/target/wine-shim
export WINEPATH="Z:${shim//\//\\}"
wine_() { wine "$@" 2> >(grep -v -e 'wine32 is missing' -e 'multiarch needs' -e 'dpkg --add-architecture' -e 'apt-get install wine32' >&2); }
step "ProcessPrng shim and a fresh Wine prefix"
mkdir -p "$shim"
x86_64-w64-mingw32-gcc -shared -O2 -Wall -Werror -o "$shim/bcryptprimitives.dll" tests/windows/processprng.c tests/windows/processprng.def -lbcrypt
wineserver -k 2>/dev/null || true
rm -rf "$WINEPREFIX"
wineboot -i >/dev/null 2>&1
trap 'wineserver -k 2>/dev/null || true' EXIT

# The commands the custom actions run come from other changes (install-trust, browser-policies): when this
# cpx-agent.exe lacks them, the MSI installed below is built so that their failure does not stop it.
actions=yes
for cmd in install-trust uninstall-trust browser-policies; do
    wine "$bin/cpx-agent.exe" "$cmd" --help >/dev/null 2>&1 || actions=no
done
flags=()
[ "${CPX_MSI_RELEASE:-}" = 1 ] && flags=(--release --no-build)
if [ "$actions" = no ]; then
    echo "NOTE: this cpx-agent.exe has no install-trust / browser-policies: the custom actions run and fail, ignored (--test-ignore-action-failures)"
    flags+=(--test-ignore-action-failures)
fi
step "build the MSI ($v1) with scripts/build-msi.sh"
scripts/build-msi.sh --version "$v1" --out "$msi1" "${flags[@]}"
ls -l "$msi1"

step "the MSI's tables (msiinfo export)"
table() { msiinfo export "$msi1" "$1" | tee "$out/$1.idt" | tr -d '\r'; }   # .idt lines end in CRLF
property=$(table Property)
row Property "$property" ALLUSERS 1
row Property "$property" ProductVersion "$v1"
row Property "$property" UpgradeCode '{ABCA37F7-79F2-4857-9B73-AE856703C68B}'
secure=$(awk -F'\t' '$1 == "SecureCustomProperties" { print $2 }' <<<"$property")
for p in ALLOWED_ORIGINS PORT AUTOSTART PKI BROWSER_POLICIES ALLOW_USER_SITES WEBVIEW2_CHECK WIX_UPGRADE_DETECTED; do
    [[ ";$secure;" == *";$p;"* ]] || fail "SecureCustomProperties lacks $p: $secure"
done
file=$(table File)
staged=$root/target/installer/work-$v1/bin   # the files as build-msi.sh put them in (debug information stripped)
row File "$file" CpxAgentExe Agent cpx-agent.exe "$(stat -c %s "$staged/cpx-agent.exe")"
row File "$file" CpxTrayExe Tray cpx-tray.exe "$(stat -c %s "$staged/cpx-tray.exe")"
if [ -e "$bin/WebView2Loader.dll" ]; then   # the GNU build of the tray app needs it next to it
    row File "$file" WebView2LoaderDll WebView2Loader WebView2Loader.dll "$(stat -c %s "$bin/WebView2Loader.dll")"
fi
component=$(table Component)
row Component "$component" MachineAutostart '{42D76CC5-8794-4EC7-8D15-9341C4BC1B3E}' INSTALLDIR 260 'AUTOSTART <> "0"'
for c in AllowedOrigins:ALLOWED_ORIGINS Port:PORT Autostart:AUTOSTART Pki:PKI BrowserPolicies:BROWSER_POLICIES AllowUserSites:ALLOW_USER_SITES; do
    grep -qP "^Default${c%%:*}\t[^\t]*\tINSTALLDIR\t260\t${c#*:}\t" <<<"$component" || fail "component Default${c%%:*} is not conditioned on ${c#*:}"
done
registry=$(table Registry)
policy='Software\Policies\Agent CPx'     # Group Policy's key: the MSI never writes it
defaults='Software\Agent CPx\Defaults'   # the installer's defaults, below the GPO's key
row Registry "$registry" 2 "$defaults" allowed_origins '[ALLOWED_ORIGINS]' DefaultAllowedOrigins
row Registry "$registry" 2 "$defaults" port '#[PORT]' DefaultPort
row Registry "$registry" 2 "$defaults" autostart '#[AUTOSTART]' DefaultAutostart
row Registry "$registry" 2 "$defaults" pki '[PKI]' DefaultPki
row Registry "$registry" 2 "$defaults" browser_policies '#[BROWSER_POLICIES]' DefaultBrowserPolicies
row Registry "$registry" 2 "$defaults" allow_user_sites '#[ALLOW_USER_SITES]' DefaultAllowUserSites
expect_not "Registry (no value under the GPO's key)" "$registry" "$policy"
# cpx-agent for the helpdesk: the install folder at the end of the machine's PATH, removed at uninstall.
row Environment "$(table Environment)" PathAgentCPx '=-*PATH' '[~];[INSTALLDIR]' Agent
# The WebView2 Runtime: its version looked up where its installers register it, and a launch condition.
reglocator=$(table RegLocator)
webview2='{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}'
row RegLocator "$reglocator" WebView2Machine32 2 "SOFTWARE\Microsoft\EdgeUpdate\Clients\\$webview2" pv 2
row RegLocator "$reglocator" WebView2Machine64 2 "SOFTWARE\Microsoft\EdgeUpdate\Clients\\$webview2" pv 18
row RegLocator "$reglocator" WebView2User 1 "Software\Microsoft\EdgeUpdate\Clients\\$webview2" pv 2
launch=$(table LaunchCondition)
expect LaunchCondition "$launch" 'Installed OR WEBVIEW2_CHECK = "0" OR (WEBVIEW2_PV_MACHINE32 AND'
expect LaunchCondition "$launch" 'Runtime Microsoft Edge WebView2 absent'
row Registry "$registry" 2 'Software\Microsoft\Windows\CurrentVersion\Run' 'Agent CPx' '"[#CpxTrayExe]" --autostart' MachineAutostart
shortcut=$(table Shortcut)
row Shortcut "$shortcut" StartMenuTray ProgramMenuFolder 'Agent CPx' Tray '[#CpxTrayExe]'
upgrade=$(table Upgrade)
row Upgrade "$upgrade" '{ABCA37F7-79F2-4857-9B73-AE856703C68B}' '' "$v1" '' 1 '' WIX_UPGRADE_DETECTED
row Upgrade "$upgrade" '{ABCA37F7-79F2-4857-9B73-AE856703C68B}' "$v1" '' '' 2 '' WIX_DOWNGRADE_DETECTED
# Types: 18 (an .exe among the installed files) + 0x400 (deferred, in the install script) + 0x800 (not
# impersonated: runs as LocalSystem, elevated) = 3090; + 0x40 (a failure does not stop it) = 3154.
custom=$(table CustomAction)
install_type=3090; [ "$actions" = yes ] || install_type=3154   # --test-ignore-action-failures
row CustomAction "$custom" InstallTrust "$install_type" CpxAgentExe install-trust
row CustomAction "$custom" BrowserPoliciesApply "$install_type" CpxAgentExe 'browser-policies apply'
row CustomAction "$custom" UninstallTrust 3154 CpxAgentExe uninstall-trust
row CustomAction "$custom" BrowserPoliciesRemove 3154 CpxAgentExe 'browser-policies remove'
row CustomAction "$custom" BrowserPoliciesSchedule 3154 CpxAgentExe 'browser-policies schedule'
row CustomAction "$custom" BrowserPoliciesUnschedule 3154 CpxAgentExe 'browser-policies unschedule'
sequence=$(table InstallExecuteSequence)
seq_of() { awk -F'\t' -v a="$1" '$1 == a { print $3 }' <<<"$sequence"; }
for a in RestoreAllowedOrigins RestorePort RestoreAutostart RestorePki RestoreBrowserPolicies RestoreAllowUserSites RestoreWebView2Check; do
    [ "$(seq_of AppSearch)" -lt "$(seq_of "$a")" ] && [ "$(seq_of "$a")" -lt "$(seq_of LaunchConditions)" ] ||
        fail "$a is not between AppSearch and LaunchConditions"
done
[ "$(seq_of RemoveEnvironmentStrings)" -lt "$(seq_of RemoveFiles)" ] && [ "$(seq_of WriteRegistryValues)" -lt "$(seq_of WriteEnvironmentStrings)" ] &&
    [ "$(seq_of WriteEnvironmentStrings)" -lt "$(seq_of InstallFinalize)" ] || fail "the environment actions are not sequenced"
row Sequence "$sequence" InstallTrust 'NOT REMOVE~="ALL"'
row Sequence "$sequence" UninstallTrust 'REMOVE~="ALL" AND NOT UPGRADINGPRODUCTCODE'
[ "$(seq_of WriteRegistryValues)" -lt "$(seq_of InstallTrust)" ] && [ "$(seq_of InstallTrust)" -lt "$(seq_of BrowserPoliciesApply)" ] &&
    [ "$(seq_of BrowserPoliciesApply)" -lt "$(seq_of BrowserPoliciesSchedule)" ] &&
    [ "$(seq_of BrowserPoliciesSchedule)" -lt "$(seq_of InstallFinalize)" ] || fail "install actions not between WriteRegistryValues and InstallFinalize"
row Sequence "$sequence" BrowserPoliciesUnschedule 'REMOVE~="ALL" AND NOT UPGRADINGPRODUCTCODE'
[ "$(seq_of InstallInitialize)" -lt "$(seq_of BrowserPoliciesUnschedule)" ] &&
    [ "$(seq_of BrowserPoliciesUnschedule)" -lt "$(seq_of RemoveFiles)" ] || fail "the task is not removed before the files go"
[ "$(seq_of InstallInitialize)" -lt "$(seq_of BrowserPoliciesRemove)" ] && [ "$(seq_of UninstallTrust)" -lt "$(seq_of RemoveRegistryValues)" ] &&
    [ "$(seq_of UninstallTrust)" -lt "$(seq_of RemoveFiles)" ] || fail "uninstall actions not before the values and files go"

step "build the upgrade ($v2)"
scripts/build-msi.sh --version "$v2" --out "$msi2" "${flags[@]}"

msiexec_() { # msiexec_ ARGS… : Wine's msiexec, its exit status kept; a verbose log and what the custom actions printed in $out
    local rc=0
    msiexec_n=$((msiexec_n + 1))
    # Windows runs the Task Scheduler service always, Wine on demand: started right before, in the same
    # wineserver, for the task `browser-policies schedule` registers (it fails while a new prefix settles).
    wine net start Schedule >/dev/null 2>&1 || true
    wine msiexec "$@" /l*v "Z:${out//\//\\}\\msiexec-$msiexec_n.log" 2> "$out/msiexec-$msiexec_n.err" || rc=$?
    return $rc
}
refused_by() { # refused_by N TEXT: msiexec call N (run with WINEDEBUG=+msi) stopped at exactly one launch
    # condition, whose message says TEXT. Wine's log leaves the message out: its trace names each condition
    # found false, looked up here in the LaunchCondition table.
    local found messages
    found=$(tr -d '\r' < "$out/msiexec-$1.err" | sed -n 's/.*MSI_EvaluateConditionW 0 <- L"\(.*\)"$/\1/p' | sed 's/\\"/"/g')
    messages=$(awk -F'\t' 'NR == FNR { false_[$0] = 1; next } ($1 in false_) { print $2 }' <(printf '%s\n' "$found") <(printf '%s\n' "$launch"))
    [ "$(grep -c . <<<"$messages")" = 1 ] && grep -qF -- "$2" <<<"$messages" ||
        { printf 'conditions found false:\n%s\nlaunch conditions among them:\n%s\n' "$found" "$messages" >&2; return 1; }
}
ran() { # ran N COMMAND: the custom action running `cpx-agent COMMAND` ran during msiexec call N (before the command exists)
    grep -q "unrecognized subcommand '$2'" "$out/msiexec-$1.err" || { cat "$out/msiexec-$1.err" >&2; fail "msiexec call $1: cpx-agent $2 did not run"; }
}
msiexec_n=0
drive_c=$WINEPREFIX/drive_c
task_file="$drive_c/windows/system32/tasks/Agent CPx/Browser policies"
app="$drive_c/Program Files/Agent CPx"
run_key='HKLM\Software\Microsoft\Windows\CurrentVersion\Run'
uninstall_key='HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall'
root_certs='HKLM\Software\Microsoft\SystemCertificates\Root\Certificates'
query() { wine reg query "$@" 2>/dev/null | tr -d '\r' || true; }   # reg prints CRLF lines
# The machine's local CA as the Root store names it: its SHA-1 thumbprint is the subkey's name. (Counting
# the subkeys would not do: Wine fills the Root store with the host's roots the first time it is opened.)
local_ca_thumbprint() {
    openssl x509 -in "$WINEPREFIX/drive_c/ProgramData/Agent CPx/local-ca.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g'
}

step "a property the agent would refuse stops the install (PORT=80)"
rc=0; WINEDEBUG=+msi msiexec_ /i "$(winepath -w "$msi1")" /qn PORT=80 WEBVIEW2_CHECK=0 || rc=$?
[ "$rc" != 0 ] || fail "PORT=80 installed"
[ ! -e "$app" ] || fail "PORT=80: files installed"
refused_by "$msiexec_n" 'PORT : un num' || fail "PORT=80: not refused by the PORT condition alone"

step "without the WebView2 Runtime (a fresh prefix has none): refused, saying what is missing"
[ -z "$(query "HKLM\\Software\\Wow6432Node\\Microsoft\\EdgeUpdate\\Clients\\$webview2" | grep pv)" ] || fail "this Wine prefix has a WebView2 Runtime: the check below would prove nothing"
rc=0; WINEDEBUG=+msi msiexec_ /i "$(winepath -w "$msi1")" /qn || rc=$?
[ "$rc" != 0 ] || fail "installed without the WebView2 Runtime"
[ ! -e "$app" ] || fail "without WebView2: files installed"
refused_by "$msiexec_n" 'Runtime Microsoft Edge WebView2 absent (WebView2 Runtime missing)' || fail "without WebView2: not refused by the WebView2 condition alone"

step "values a GPO set before the install (HKLM\\$policy)"
wine reg add "HKLM\\$policy" /v pki /t REG_SZ /d production /f >/dev/null
wine reg add "HKLM\\$policy" /v log_level /t REG_SZ /d debug /f >/dev/null
gpo=$(query "HKLM\\$policy")
expect gpo "$gpo" 'pki    REG_SZ    production'

step "silent install with the public properties (WEBVIEW2_CHECK=0: no runtime here)"
origins='https://portail.example.fr https://cpx.portail.example.fr:8444/cpx/login;https://autre.example.fr'
msiexec_ /i "$(winepath -w "$msi1")" /qn "ALLOWED_ORIGINS=$origins" PORT=47420 AUTOSTART=1 PKI=test BROWSER_POLICIES=1 ALLOW_USER_SITES=0 WEBVIEW2_CHECK=0 ||
    fail "msiexec /i exit $?"
values=$(query "HKLM\\$defaults")
echo "$values"
echo "$values" > "$out/defaults-after-install.txt"
expect allowed_origins "$values" "allowed_origins    REG_SZ    $origins"
expect port "$values" 'port    REG_DWORD    0xb93c'
expect autostart "$values" 'autostart    REG_DWORD    0x1'
expect pki "$values" 'pki    REG_SZ    test'
expect browser_policies "$values" 'browser_policies    REG_DWORD    0x1'
expect allow_user_sites "$values" 'allow_user_sites    REG_DWORD    0x0'
[ "$(query "HKLM\\$policy")" = "$gpo" ] || { query "HKLM\\$policy"; fail "the install changed the GPO's values"; }
environment=$(query 'HKLM\System\CurrentControlSet\Control\Session Manager\Environment' /v PATH)
expect PATH "$environment" 'C:\Program Files\Agent CPx\'
# A console opened after the install finds cpx-agent by its name (the helpdesk's `cpx-agent diagnose`).
expect "cpx-agent on the PATH" "$(wine_ cmd /c 'cpx-agent --version' | tr -d '\r')" 'cpx-agent'
run=$(query "$run_key")
expect run-key "$run" 'Agent CPx    REG_SZ    "C:\Program Files\Agent CPx\cpx-tray.exe" --autostart'
[ -f "$app/cpx-agent.exe" ] && [ -f "$app/cpx-tray.exe" ] || fail "files not in $app"
cmp -s "$app/cpx-agent.exe" "$staged/cpx-agent.exe" || fail "the installed cpx-agent.exe is not the build's"
[ ! -e "$bin/WebView2Loader.dll" ] || [ -f "$app/WebView2Loader.dll" ] || fail "WebView2Loader.dll not installed"
# Wine puts the shortcut of an all-users install in the user's Start menu; Windows in ProgramData's.
lnk=$(find "$drive_c" -name 'Agent CPx.lnk' -path '*Start Menu*' | head -1)
[ -n "$lnk" ] || fail "no Start-menu shortcut"
products=$(query "$uninstall_key" /s)
expect uninstall-entry "$products" "DisplayVersion    REG_SZ    $v1"
# The detection rule of SCCM/Intune (docs/deploiement.md, section 10): this value, version-compared.
expect detection "$(query 'HKLM\Software\Agent CPx\Install' /v version)" "version    REG_SZ    $v1"

if [ "$actions" = no ]; then   # the custom actions ran (and failed, ignored): install-trust, browser-policies apply
    ran 3 install-trust
    ran 3 browser-policies
fi

step "the installed cpx-agent.exe reads the GPO's values over the installer's defaults (diagnose)"
set +e
diag=$(wine_ "C:\\Program Files\\Agent CPx\\cpx-agent.exe" diagnose --json --lang en --origin https://portail.example.fr)
set -e
echo "$diag" > "$out/diagnose.json"
expect diagnose "$diag" 'IGC-Santé production'   # the GPO's pki, not the MSI's PKI=test
expect_not diagnose "$diag" 'IGC-Santé test'
grep -qP 'managed policy HKLM\\\\Software\\\\Policies\\\\Agent CPx sets: [^;"]*\bpki\b' <<<"$diag" || { echo "$diag" >&2; fail "diagnose: the GPO's key does not set pki"; }
expect diagnose "$diag" 'port 47420'   # the installer's defaults, where no GPO value is set
for key in allow_user_sites allowed_origins autostart browser_policies port; do
    grep -qP 'HKLM\\\\Software\\\\Agent CPx\\\\Defaults sets: [^;"]*\b'"$key"'\b' <<<"$diag" || { echo "$diag" >&2; fail "diagnose: the installer's defaults do not set $key"; }
done
grep -qP 'HKLM\\\\Software\\\\Agent CPx\\\\Defaults sets: [^;"]*\bpki\b' <<<"$diag" && { echo "$diag" >&2; fail "diagnose: the installer's pki counted over the GPO's"; }
expect diagnose "$diag" 'https://portail.example.fr → login server https://cpx.portail.example.fr:8444/cpx/login'
# Installed and healthy without a card (no reader under Wine): the exit status compliance scripts read.
set +e
health=$(wine_ "C:\\Program Files\\Agent CPx\\cpx-agent.exe" diagnose --health --json --lang en)
health_status=$?
set -e
echo "$health" > "$out/health.json"
[ "$health_status" = 0 ] || { echo "$health" >&2; fail "diagnose --health: exit $health_status, expected 0 (installed and healthy)"; }

if [ "$actions" = yes ]; then
    step "the custom actions: the local CA in the machine Root store, the browsers' policies"
    thumbprint=$(local_ca_thumbprint) || fail "install-trust: no local CA in %ProgramData%\\Agent CPx"
    query "$root_certs\\$thumbprint" | grep -q Blob || fail "install-trust: the local CA $thumbprint is not in $root_certs"
    chrome=$(query 'HKLM\Software\Policies\Google\Chrome' /s)   # BROWSER_POLICIES=1: an installer's default
    expect browser-policies "$chrome" https://portail.example.fr
    # The task that applies them again after a GPO change (Wine keeps its registration, not its triggers:
    # those are checked by the agent's unit tests, platform/policy_task.rs).
    [ -f "$task_file" ] || fail "browser-policies schedule: no scheduled task $task_file"
fi

step "upgrade to $v2 without properties: the policy stays"
msiexec_ /i "$(winepath -w "$msi2")" /qn || fail "upgrade: msiexec /i exit $?"
products=$(query "$uninstall_key" /s)
expect upgrade "$products" "DisplayVersion    REG_SZ    $v2"
expect detection-after-upgrade "$(query 'HKLM\Software\Agent CPx\Install' /v version)" "version    REG_SZ    $v2"
expect_not upgrade "$products" "DisplayVersion    REG_SZ    $v1"
[ "$(grep -c 'DisplayName    REG_SZ    Agent CPx$' <<<"$products")" = 1 ] || { echo "$products"; fail "upgrade: not exactly one Agent CPx product"; }
after=$(query "HKLM\\$defaults")
[ "$after" = "$values" ] || { diff <(echo "$values") <(echo "$after") || true; fail "upgrade: the installer's defaults changed"; }
[ "$(query "HKLM\\$policy")" = "$gpo" ] || { query "HKLM\\$policy"; fail "upgrade: the GPO's values changed"; }
expect upgrade-run-key "$(query "$run_key")" 'Agent CPx    REG_SZ'
[ -f "$app/cpx-agent.exe" ] || fail "upgrade: cpx-agent.exe gone"
[ "$actions" = no ] || [ -f "$task_file" ] || fail "upgrade: the scheduled task is gone"

[ "$actions" = yes ] && { thumbprint=$(local_ca_thumbprint) || fail "upgrade: no local CA"; }   # Wine's upgrade made a new one
step "uninstall: files, the installer's defaults, PATH entry, Run entry, shortcut gone; the GPO's values kept"
msiexec_ /x "$(winepath -w "$msi2")" /qn || fail "msiexec /x exit $?"
[ "$(query "HKLM\\$policy")" = "$gpo" ] || { query "HKLM\\$policy"; fail "uninstall: the GPO's values changed"; }
left=$(query "HKLM\\$defaults")
[ -z "$(grep -E 'REG_(SZ|DWORD)' <<<"$left")" ] || fail "installer defaults left: $left"
expect_not uninstall-PATH "$(query 'HKLM\System\CurrentControlSet\Control\Session Manager\Environment' /v PATH)" 'Agent CPx'
[ -z "$(query 'HKLM\Software\Agent CPx' /s | grep REG_)" ] || fail "HKLM\\Software\\Agent CPx left"
expect_not uninstall-run-key "$(query "$run_key")" 'Agent CPx'
[ -z "$(ls -A "$app" 2>/dev/null)" ] || fail "files left in $app: $(ls "$app")"
[ -z "$(find "$drive_c" -name 'Agent CPx.lnk')" ] || fail "shortcut left"
expect_not uninstall-entry "$(query "$uninstall_key" /s)" 'Agent CPx'
if [ "$actions" = no ]; then   # the custom actions ran: browser-policies remove, uninstall-trust
    ran 5 uninstall-trust
    ran 5 browser-policies
fi
if [ "$actions" = yes ]; then
    query "$root_certs\\$thumbprint" | grep -q Blob && fail "uninstall-trust: the local CA $thumbprint is still in $root_certs"
    expect_not browser-policies-removed "$(query 'HKLM\Software\Policies\Google\Chrome' /s)" https://portail.example.fr
    [ ! -e "$task_file" ] || fail "browser-policies unschedule: the scheduled task is left"
fi

step "with a WebView2 Runtime registered (per machine, 32-bit view): installed without WEBVIEW2_CHECK"
wine reg add "HKLM\\Software\\Wow6432Node\\Microsoft\\EdgeUpdate\\Clients\\$webview2" /v pv /t REG_SZ /d 131.0.2903.70 /f >/dev/null
msiexec_ /i "$(winepath -w "$msi1")" /qn || fail "with the runtime: msiexec /i exit $?"
[ -f "$app/cpx-agent.exe" ] || fail "with the runtime: not installed"
msiexec_ /x "$(winepath -w "$msi1")" /qn || fail "with the runtime: msiexec /x exit $?"

step "MSI under Wine: all passed ($(du -h "$msi1" | cut -f1) MSI, ${SECONDS}s)"

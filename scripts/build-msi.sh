#!/usr/bin/env bash
# The Windows installer: installer/windows/agent-cpx.wxs (WiX v3) built on Linux by wixl (msitools) into
# target/installer/agent-cpx-VERSION.msi, from the Windows build in target/x86_64-pc-windows-gnu.
#   scripts/build-msi.sh [--release [--no-build]] [--version X.Y.Z] [--out FILE]
# Without --release it packs the debug build scripts/cross.sh makes (building it with `scripts/cross.sh
# windows` when it is missing); --release builds cpx-agent and cpx-tray in release mode first (--no-build: packs
# the release build already made, as scripts/release.sh does). The version
# defaults to the workspace's (Cargo.toml). wixl 0.101 lacks two WiX v3 features the source uses (component
# conditions, Property/@Secure): installer/windows/wixl-compat.py strips them and they are written into the
# MSI's tables with msibuild afterwards. Not done here: Authenticode signing, ICE validation (docs/windows.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
T=x86_64-pc-windows-gnu
profile=debug
build=1
version=
out=
defines=()
while [ $# -gt 0 ]; do
    case "$1" in
        --release) profile=release ;;
        --no-build) build=0 ;;
        --version) version=${2:?--version needs X.Y.Z}; shift ;;
        --out) out=${2:?--out needs a file}; shift ;;
        # tests/windows/msi.sh, on an agent that lacks install-trust / browser-policies: failures do not stop the install.
        --test-ignore-action-failures) defines+=(-D TestIgnoreActionFailures=1) ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "build-msi: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$version" ] || version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "build-msi: version '$version' is not X.Y.Z" >&2; exit 2; }
out=${out:-$root/target/installer/agent-cpx-$version.msi}
for tool in wixl msibuild msiinfo python3; do
    command -v "$tool" >/dev/null || { echo "build-msi: $tool missing (scripts/install-deps.sh installs wixl and msitools)" >&2; exit 1; }
done

bin=$root/target/$T/$profile
if [ "$profile" = release ] && [ "$build" = 1 ]; then
    rustup target add "$T" >/dev/null 2>&1 || true
    cargo build --locked --release --target "$T" -p cpx-agent -p cpx-tray --bins
elif [ "$profile" = debug ] && [ ! -e "$bin/cpx-agent.exe" ] || [ ! -e "$bin/cpx-tray.exe" ]; then
    scripts/cross.sh windows
fi
for exe in cpx-agent.exe cpx-tray.exe; do
    [ -e "$bin/$exe" ] || { echo "build-msi: no $bin/$exe" >&2; exit 1; }
done

work=$root/target/installer/work-$version
rm -rf "$work"
mkdir -p "$work/bin" "$(dirname "$out")"
cp "$bin/cpx-agent.exe" "$bin/cpx-tray.exe" "$work/bin/"
# Debug information stays with the build, not in the package (a debug build's is most of its size).
x86_64-w64-mingw32-strip --strip-debug "$work/bin/cpx-agent.exe" "$work/bin/cpx-tray.exe"
# The GNU build of the tray app loads WebView2Loader.dll at run time (tauri-build puts it next to the .exe).
if [ -e "$bin/WebView2Loader.dll" ]; then
    cp "$bin/WebView2Loader.dll" "$work/bin/"
    defines+=(-D WebView2Loader=1)
fi
python3 installer/windows/wixl-compat.py installer/windows/agent-cpx.wxs "$work/agent-cpx.wxs" "$work/compat.sql"
rm -f "$out"
# wixl fails with a GLib trap (no message on stdout): its exit status is what counts.
# wixl finds files by paths relative to the folder it runs in (an absolute Source is refused).
if ! (cd "$work" && wixl -a x64 -D Version="$version" -D BinDir=bin "${defines[@]}" -o "$out" agent-cpx.wxs); then
    echo "build-msi: wixl failed on $work/agent-cpx.wxs" >&2
    rm -f "$out"
    exit 1
fi
while read -r query; do
    case "$query" in
        SECURE\ *)
            current=$(msiinfo export "$out" Property | awk -F'\t' '$1 == "SecureCustomProperties" { print $2 }')
            query="UPDATE \`Property\` SET \`Value\` = '${current:+$current;}${query#SECURE }' WHERE \`Property\` = 'SecureCustomProperties'"
            ;;
    esac
    msibuild "$out" -q "$query"
done < "$work/compat.sql"
echo "build-msi: $out ($(du -h "$out" | cut -f1), version $version, $profile build)"

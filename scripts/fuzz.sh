#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (cargo-fuzz + libFuzzer, nightly toolchain), one after the other, one
# process each (the CPU is shared). See docs/fuzzing.md.
#   ./scripts/fuzz.sh [--runs N | --seconds S] [TARGET…]    default: 1,000,000 runs of every target
# Prints per target the executions (libFuzzer's stat::number_of_executed_units), executions per second,
# time and crashes; exits 1 when a target crashed (the input is kept in fuzz/artifacts/TARGET/).
# New inputs go to fuzz/target/corpus/TARGET (kept between runs); the committed seeds in
# fuzz/corpus/TARGET are only read. Not in scripts/test.sh: it needs nightly.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

budget=(-runs=1000000)
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) budget=("-runs=${2:?--runs N}"); shift 2 ;;
    --seconds) budget=("-max_total_time=${2:?--seconds S}"); shift 2 ;;
    -h | --help) sed -n 2,8p "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
command -v cargo-fuzz >/dev/null || { echo "fuzz.sh: cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2; exit 2; }
all=$(cargo +nightly fuzz list)
[ ${#targets[@]} -gt 0 ] || mapfile -t targets <<<"$all"
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$all" || { echo "fuzz.sh: no target $t (targets: $(echo $all))" >&2; exit 2; }
done

# One build for all targets (release, debug assertions, AddressSanitizer: cargo-fuzz's defaults).
cargo +nightly fuzz build

mkdir -p target/logs
crashed=0
printf '%-15s %12s %10s %8s %8s\n' target executions exec/s seconds crashes
for t in "${targets[@]}"; do
  mkdir -p "target/corpus/$t" "corpus/$t"
  log="target/logs/$t.log"
  start=$SECONDS
  # libFuzzer's default is one process, one job (what -jobs=1 asks, without its log redirection).
  status=0
  cargo +nightly fuzz run "$t" "target/corpus/$t" "corpus/$t" -- "${budget[@]}" -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  crashes=$(grep -c 'Test unit written to' "$log" || true)
  if [ "$status" != 0 ] && [ "$crashes" = 0 ]; then crashes=1; fi
  printf '%-15s %12s %10s %8s %8s\n' "$t" "${runs:-?}" "${speed:-?}" "$((SECONDS - start))" "$crashes"
  if [ "$crashes" != 0 ]; then
    crashed=1
    grep -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|Test unit written to' "$log" | head -5 | sed 's/^/    /'
    echo "    log: fuzz/$log"
  fi
done
exit "$crashed"

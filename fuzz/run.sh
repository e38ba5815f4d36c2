#!/usr/bin/env bash
# Runs the fuzz targets, SECONDS each (default 600), one after another:
#   fuzz/run.sh [SECONDS] [TARGET...]      (targets: detect capture config)
# Seeds come from the test captures and the shipped configurations. An
# input that crashes, leaks or hangs a target is copied into
# tests/fixtures/fuzz/TARGET/, where tests/e2e/fuzz.rs runs flowstatd on it
# in every test run from then on. Needs nightly and cargo-fuzz
# (`cargo install cargo-fuzz`); libFuzzer's statistics go to logs/.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(detect capture config)

[ -d corpus/detect ] || python3 seed.py >/dev/null
mkdir -p corpus/capture corpus/config logs
find ../tests/fixtures \( -name '*.pcap' -o -name '*.pcapng' \) -size -64k \
  -exec cp {} corpus/capture/ \;
find ../conf/flowstatd.toml ../benches -maxdepth 1 -name '*.toml' ! -name Cargo.toml \
  -exec cp {} corpus/config/ \;

for t in "${targets[@]}"; do
  echo "== $t: $secs s" >&2
  # A crash ends the run with a non-zero status: keep going, keep it.
  cargo +nightly fuzz run "$t" "corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 >"logs/$t.log" 2>&1 || true
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|cov: ' "logs/$t.log" | tail -n 3 >&2
  mkdir -p "../tests/fixtures/fuzz/$t"
  for found in artifacts/"$t"/{crash,leak,timeout,oom}-*; do
    [ -e "$found" ] || continue
    cp "$found" "../tests/fixtures/fuzz/$t/"
    echo "FOUND: $found (copied to tests/fixtures/fuzz/$t/)" >&2
  done
done

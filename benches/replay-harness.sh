#!/usr/bin/env bash
# Whole-process replay throughput: flowstatd beside ndpiReader and softflowd
# (Debian's), on the same mixed capture, output discarded.
#
#   benches/replay-harness.sh [ROUNDS]
#
# The capture is the test corpus's Ethernet captures concatenated ROUNDS
# times (default 2000: 10.6 million packets, 3 GB, in benches/data/, built
# once). It is put in the page cache as a read from disk leaves it (see
# cache below), then every command runs 5 times under hyperfine; the table
# gives the mean wall time, packets per second and the ratio to ndpiReader.
# flowstatd runs single-threaded (--workers 1), as the peers do, three
# ways: all telemetry records, flow_purge records only, and flow
# accounting without per-flow records (agent_status and interface_stats
# only); then the first and last again with flows kept across rounds,
# closed ones too, as ndpiReader keeps them (benches/keep-flows.toml), so
# that both detect each flow once. The last row is the floor: readcapture
# reads the capture as replay does and does nothing else.
#
# A second table has every flow new to every tool instead: the corpus 10
# and 20 times, each round on an outer VLAN of its own (mkcapture
# --vlan-per-round, as ../shared/tools/vlanrounds.py), so that every tool
# meets every round's flows anew, as on a live link. Its rate is the 10
# extra rounds' packets over the extra time, so that start-up cost
# cancels, measured in turns (below) so that the machine's drift falls on
# every command alike. flowstatd runs there with one worker and with its
# default (a worker per core), all records and DPI on, beside the floor,
# and with one worker and the 10 flow definitions and 2 thresholds of
# benches/analytics.toml (their cost on the per-packet path). A last row
# is the machine's own ceiling for two workers: two single-worker replays
# of the same capture at once, two captures' packets in the time (no work
# is shared, nothing crosses between the two: what two cores give two
# independent processes here bounds what two workers of one process can
# reach). Only 20
# rounds: ndpiReader ages flows out of live captures only, so it keeps
# every flow of a file in its per-bucket search trees, and its time per
# round grows with the rounds (from 50 to 100 rounds its time grew 2.5-fold
# here); this table does not measure that.
set -euo pipefail
cd "$(dirname "$0")/.."

# Puts file $1 in the page cache as a read from disk leaves it: dropped
# (dd iflag=nocache), then read. How its cached pages came to be matters to
# a reader that maps the file, as flowstatd does: this kernel caches a file
# read from disk in large folios (2 MiB), but keeps the 4 KiB pages of one
# written in small blocks, and mapping 4 KiB pages took 6 times as long
# (2.6 M packets with flows kept: 230 ms against 180 ms). ndpiReader and
# softflowd read() the file, and gained 3-6%.
cache() {
  dd if="$1" iflag=nocache count=0 status=none
  cat "$1" > /dev/null
}

rounds=${1:-2000}
.ci/deps bench
cargo build --release --quiet -p flowstatd -p flowstat-benches

data=benches/data/mixed-$rounds.pcap
mkdir -p benches/data
if [ ! -s "$data.packets" ]; then
  target/release/mkcapture "$data" "$rounds" 2>&1 | tee /dev/stderr |
    sed -E 's/.*: ([0-9]+) packets.*/\1/' > "$data.packets"
fi
packets=$(cat "$data.packets")
cache "$data"

flowstatd=target/release/flowstatd
results=$(mktemp)
hyperfine --warmup 1 --runs 5 --style basic --export-json "$results" \
  -n "flowstatd (all records)" "$flowstatd replay $data -o /dev/null -w 1" \
  -n "flowstatd (flow_purge records)" "$flowstatd replay $data -o /dev/null -w 1 --types flow_purge" \
  -n "flowstatd (no per-flow records)" "$flowstatd replay $data -o /dev/null -w 1 --types agent_status,interface_stats" \
  -n "flowstatd, flows kept (all records)" "$flowstatd replay $data -o /dev/null -w 1 -c benches/keep-flows.toml" \
  -n "flowstatd, flows kept (no per-flow)" "$flowstatd replay $data -o /dev/null -w 1 -c benches/keep-flows.toml --types agent_status,interface_stats" \
  -n "ndpiReader" "ndpiReader -i $data -q" \
  -n "softflowd" "softflowd -r $data -n 127.0.0.1:9995 -d -6 -m 1000000" \
  -n "capture read only (the floor)" "target/release/readcapture $data" \
  >&2

python3 - "$results" "$packets" <<'PY'
import json, sys
results, packets = json.load(open(sys.argv[1]))["results"], int(sys.argv[2])
mean = {r["command"]: r["mean"] for r in results}
ndpi = packets / mean["ndpiReader"]
print(f"{packets} packets, single-threaded, output discarded")
print(f"{'command':38} {'seconds':>8} {'Mpps':>7} {'vs ndpiReader':>14}")
for name, secs in mean.items():
    pps = packets / secs
    print(f"{name:38} {secs:8.2f} {pps / 1e6:7.2f} {pps / ndpi:13.2f}x")
PY
rm -f "$results"

# Every flow new: two sizes, rate from the difference. The runs are short
# (tens of milliseconds) and this machine's speed drifts from minute to
# minute, so the commands take turns: in each turn every command runs on
# 10 rounds and at once on 20, and a command's time for the 10 extra
# rounds is the median, over 30 turns, of the second less the first. Run
# one command after another instead (40 times each, under hyperfine), two
# runs of this script within an hour gave the default workers 0.71 and
# 0.90 times softflowd's rate, and 1.34 and 1.78 times one worker's; in
# turns, two runs in the same hour gave 0.84 and 0.82, and 1.47 and 1.39.
for r in 10 20; do
  new=benches/data/vlan-rounds-$r.pcap
  [ -s "$new" ] || target/release/mkcapture "$new" "$r" --vlan-per-round 2>/dev/null
  cache "$new"
done
python3 - "$flowstatd" "$packets" "$rounds" <<'PY'
import os, statistics, subprocess, sys, time
flowstatd, extra = sys.argv[1], int(sys.argv[2]) // int(sys.argv[3]) * 10  # packets in 10 rounds
commands = {
    "flowstatd, 1 worker (all records)": f"{flowstatd} replay {{}} -o /dev/null -w 1",
    "flowstatd, 1 worker, 10 flow definitions": f"{flowstatd} replay {{}} -o /dev/null -w 1 -c benches/analytics.toml",
    "flowstatd, 1 worker, 10 few-key definitions": f"{flowstatd} replay {{}} -o /dev/null -w 1 -c benches/analytics-few.toml",
    "flowstatd, default workers (all records)": f"{flowstatd} replay {{}} -o /dev/null",
    "flowstatd, default workers (no per-flow)": f"{flowstatd} replay {{}} -o /dev/null --types agent_status,interface_stats",
    "ndpiReader": "ndpiReader -i {} -q",
    "softflowd": "softflowd -r {} -n 127.0.0.1:9995 -d -6 -m 1000000",
    "capture read only (the floor)": "target/release/readcapture {}",
    "2 x flowstatd, 1 worker, at once (ceiling)": f"{flowstatd} replay {{}} -o /dev/null -w 1",
}
# Processes of a command run at once; each replays the whole capture.
copies = {"2 x flowstatd, 1 worker, at once (ceiling)": 2}

def seconds(name, rounds):
    argv = commands[name].format(f"benches/data/vlan-rounds-{rounds}.pcap").split()
    start = time.perf_counter()
    runs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(copies.get(name, 1))]
    if any(p.wait() for p in runs):
        sys.exit(f"{name} failed")
    return time.perf_counter() - start

extra_time = {name: [] for name in commands}
for _ in range(33):
    for name in commands:
        first = seconds(name, 10)
        extra_time[name].append(seconds(name, 20) - first)
# The first three turns warm up.
rate = {
    name: copies.get(name, 1) * extra / statistics.median(t[3:])
    for name, t in extra_time.items()
}
one = rate["flowstatd, 1 worker (all records)"]
print()
print(f"every flow new (a VLAN per round): 10 more rounds, {extra} packets, {os.cpu_count()} cores")
print(f"{'command':45} {'Mpps':>7} {'vs ndpiReader':>14} {'vs softflowd':>13} {'vs 1 worker':>12}")
for name, pps in rate.items():
    print(f"{name:45} {pps / 1e6:7.2f} {pps / rate['ndpiReader']:13.2f}x"
          f" {pps / rate['softflowd']:12.2f}x {pps / one:11.2f}x")
PY

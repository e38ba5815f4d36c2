#!/usr/bin/env bash
# Live capture throughput on a veth pair in a network namespace of its own:
# tcpreplay floods one end at top speed with the corpus mix, and each
# capturer on the other end reports what it received and what was lost.
#
#   benches/live-bench.sh [LOOPS]      (default 20: ~2 million packets)
#
# Capturers: flowstatd with AF_XDP (generic mode, the only one veth offers
# at MTU 1500 with copy) and with libpcap, each with 1 and 2 flow workers,
# and ndpiReader -i (libpcap). For each: packets sent, received, lost, and
# the rate received. On a 2-core machine tcpreplay takes one core, so the
# sender, not the capturer, is often the limit: the table says so when
# nothing was lost. Needs root. The namespace is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

loops=${1:-20}
.ci/deps bench
cargo build --release --quiet -p flowstatd -p flowstat-benches

ns=fsbench-$$
work=$(mktemp -d)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

target/release/mkcapture "$work/flood.pcap" 10 --max-frame 1514 2>/dev/null
ip netns add "$ns"
ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$ns" link add name va type veth peer name vb
for dev in va vb; do
  ip netns exec "$ns" ethtool -K "$dev" gro off gso off tso off rxvlan off txvlan off >/dev/null 2>&1 || true
  ip -n "$ns" link set dev "$dev" up
done

flood() { # prints "sent seconds"
  ip netns exec "$ns" tcpreplay -i va --topspeed -l "$loops" "$work/flood.pcap" 2>&1 |
    awk '/Actual:/ {sent=$2; secs=$(NF-1)} END {print sent, secs}'
}

results=()
run_flowstatd() { # method workers
  local method=$1 workers=$2 extra=""
  [ "$method" = af_xdp ] && extra='xdp_mode = "generic"'
  cat > "$work/agent.toml" <<TOML
[agent]
update_interval_secs = 1
workers = $workers
status_file = ""
[[capture]]
interface = "vb"
method = "$method"
rx_ring = 8192
fill_ring = 8192
$extra
[[sink]]
type = "file"
path = "$work/out.json"
types = ["interface_stats"]
TOML
  ip netns exec "$ns" target/release/flowstatd run -c "$work/agent.toml" 2>"$work/agent.log" &
  local pid=$!
  sleep 1.5
  read -r sent secs < <(flood)
  sleep 1
  kill -TERM "$pid"; wait "$pid" || true
  python3 - "$work/out.json" "$sent" "$secs" "flowstatd $method, $workers worker(s)" <<'PY'
import json, sys
path, sent, secs, name = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
raw = drop = 0
for line in open(path):
    v = json.loads(line)["vb"]
    raw += v["raw"]; drop += v["capture_dropped"] + v["queue_dropped"]
print(f"{name}|{sent}|{raw}|{sent - raw}|{drop}|{raw / secs:.0f}|{sent / secs:.0f}")
PY
}

run_ndpi() {
  ip netns exec "$ns" ndpiReader -i vb -s 8 > "$work/ndpi.out" 2>&1 &
  local pid=$!
  sleep 1.5
  read -r sent secs < <(flood)
  wait "$pid" || true
  # "IP packets: N of M packets total"
  local got
  got=$(sed -nE 's/.* of ([0-9]+) +packets total.*/\1/p' "$work/ndpi.out" | head -1)
  python3 -c "
sent, got, secs = $sent, ${got:-0}, $secs
print(f'ndpiReader -i (libpcap)|{sent}|{got}|{sent - got}|-|{got / secs:.0f}|{sent / secs:.0f}')"
}

{
  for method in af_xdp libpcap; do
    for workers in 1 2; do run_flowstatd "$method" "$workers"; done
  done
  run_ndpi
} > "$work/table"

printf '%-32s %10s %10s %8s %8s %12s %12s\n' capturer sent received lost drops "rx pps" "sent pps"
while IFS='|' read -r name sent got lost drops rx tx; do
  printf '%-32s %10s %10s %8s %8s %12s %12s\n' "$name" "$sent" "$got" "$lost" "$drops" "$rx" "$tx"
done < "$work/table"

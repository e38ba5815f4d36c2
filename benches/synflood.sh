#!/usr/bin/env bash
# A live SYN flood against a full flow table: 2M TCP SYNs, each from its
# own source (genflows.py N 1 syn), sent by tcpreplay at top speed into a
# veth pair in a namespace of its own, to `flowstatd run` with
# max_flows = 100000 and every flow_purge going to a file. Midway through
# the flood the agent gets SIGTERM.
#
#   benches/synflood.sh [METHOD] [SYNS]    (default: af_xdp 2000000)
#
# Prints: SYNs sent, flows the agent counted (purged, of them evicted),
# flow_purge records in the file, peak RSS, and how long the agent took
# to exit after SIGTERM. Needs root. The namespace is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

method=${1:-af_xdp}
syns=${2:-2000000}
.ci/deps bench
cargo build --release --quiet -p flowstatd

ns=fssyn-$$
work=$(mktemp -d)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p benches/data
flood=benches/data/syn-$syns.pcap
[ -s "$flood" ] || python3 ../shared/tools/genflows.py "$flood" "$syns" 1 syn
ip netns add "$ns"
ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$ns" link add name va type veth peer name vb
for dev in va vb; do
  ip -n "$ns" link set dev "$dev" up
done

extra=""
[ "$method" = af_xdp ] && extra='xdp_mode = "generic"'
cat > "$work/agent.toml" <<TOML
[agent]
update_interval_secs = 1
status_file = ""
[flows]
max_flows = 100000
[[capture]]
interface = "vb"
method = "$method"
$extra
[[sink]]
type = "file"
path = "$work/out.json"
types = ["flow_purge", "agent_status"]
TOML
ip netns exec "$ns" target/release/flowstatd run -c "$work/agent.toml" 2>"$work/agent.log" &
pid=$!
sleep 1.5
ip netns exec "$ns" tcpreplay -i va --topspeed "$flood" >"$work/tcpreplay.log" 2>&1 &
sender=$!
sleep 4
peak=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
start=$(date +%s.%N)
kill -TERM "$pid"
wait "$pid" || true
end=$(date +%s.%N)
wait "$sender" || true
python3 - "$work/out.json" "$work/tcpreplay.log" "$peak" "$start" "$end" "$method" <<'PY'
import json, re, sys
out, log, peak, start, end, method = sys.argv[1:]
purges = purged = evicted = 0
for line in open(out):
    v = json.loads(line)
    if v["type"] == "flow_purge":
        purges += 1
    elif v["type"] == "agent_status":
        purged += v["flows_purged"]; evicted += v["flows_evicted"]
sent = re.search(r"Actual: (\d+) packets", open(log).read())
print(f"method {method}: SYNs sent {sent.group(1) if sent else '?'} (to the end of the flood; "
      f"SIGTERM came midway)")
print(f"flows purged {purged} (evicted {evicted}); flow_purge records in the file {purges}")
print(f"peak RSS before SIGTERM {int(peak) // 1024} MiB; exit {float(end) - float(start):.2f} s after SIGTERM")
PY

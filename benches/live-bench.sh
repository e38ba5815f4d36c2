#!/usr/bin/env bash
# Live capture on a veth pair in a network namespace of its own: for each
# capturer, the highest offered rate it receives with zero loss, the rate
# it receives at twice that, and its CPU per packet at 50k pps.
#
#   [XDP_MODE=native] [CAPTURERS="af_xdp-r2c libpcap-r2c"] benches/live-bench.sh [SECS] [RATES]
#     SECS   seconds of traffic per step (default 3)
#     RATES  offered rates to try, packets/s (default
#            "25000 50000 100000 150000 200000 300000 400000 600000 800000")
#     XDP_MODE  AF_XDP's mode (default generic; veth also runs native, copy)
#     HUGE_PAGES huge pages reserved for the AF_XDP UMEM while the bench runs
#               (default 32: 64 MiB, as the README advises; 0 for none)
#     RING      AF_XDP's fill and RX ring entries (default 16384: a UMEM of
#               16384 frames of 2 KiB, 32 MiB); libpcap's ring is given the
#               same memory (buffer_bytes = RING * 2 KiB), so that both
#               capture into rings of one size
#     CAPTURERS which to run (default: all, as listed below)
#     CPU_TURNS turns of the CPU-a-packet table (default 7; 0: none)
#
# The sender is `blast` (benches/src/bin/blast.rs): AF_PACKET sockets with
# sendmmsg(2) and the qdisc bypassed, paced to the rate, replaying the
# corpus mix (mkcapture, frames up to 1514 bytes). It reaches about a
# million packets a second on one core, well above what any capturer here
# takes, so the capturer is what is measured. What left the sending end is
# its tx_packets less tx_dropped, read from the kernel.
#
# Last, a table of CPU a packet at 50k pps in turns: each turn runs every
# capturer once, so that the machine's drift (a fifth either way from one
# minute to the next here) falls on each alike; it gives the medians.
#
# Capturers: flowstatd with AF_XDP (generic mode, the one veth offers with
# copy) and with libpcap, each run to completion (r2c: the capture thread
# is the flow worker) and with 1 and 2 flow workers, and ndpiReader
# -i (libpcap, DPI on). For each step: offered, received (what reached the
# flow workers, by the capturer's own count), dropped as the capturer
# counted it (kernel and hand-off), and lost (offered less received: what
# nobody counted is lost too). CPU per packet is the whole process's time
# on a CPU (every thread, from /proc/PID/task/*/schedstat: nanoseconds,
# where /proc/PID/stat's 10 ms ticks were a sixth of the figure at 50k
# pps) over the step, divided by the packets received; wake-ups/s are its
# threads' voluntary context switches over the step, divided by SECS.
#
# tcpreplay stays as a cross-check: `benches/live-bench.sh tcpreplay`
# prints what tcpreplay reaches at top speed into the same veth.
# Needs root. The namespace is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

.ci/deps bench
cargo build --release --quiet -p flowstatd -p flowstat-benches

ns=fsbench-$$
work=$(mktemp -d)
reserved=$(cat /proc/sys/vm/nr_hugepages)
cleanup() {
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
  echo "$reserved" > /proc/sys/vm/nr_hugepages
}
trap cleanup EXIT
echo $((reserved + ${HUGE_PAGES:-32})) > /proc/sys/vm/nr_hugepages

target/release/mkcapture "$work/flood.pcap" 10 --max-frame 1514 2>/dev/null
ip netns add "$ns"
ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$ns" link add name va type veth peer name vb
for dev in va vb; do
  ip netns exec "$ns" ethtool -K "$dev" gro off gso off tso off rxvlan off txvlan off >/dev/null 2>&1 || true
  ip -n "$ns" link set dev "$dev" up
done

if [ "${1:-}" = tcpreplay ]; then
  ip netns exec "$ns" tcpreplay -i va --topspeed -l 5 "$work/flood.pcap" 2>&1 | grep -E 'Actual|Rated'
  ip netns exec "$ns" target/release/blast va "$work/flood.pcap" --loops 5
  exit 0
fi

secs=${1:-3}
rates=${2:-"25000 50000 100000 150000 200000 300000 400000 600000 800000"}
xdp_mode=${XDP_MODE:-generic}
capturers=${CAPTURERS:-"af_xdp-r2c af_xdp-1 af_xdp-2 libpcap-r2c libpcap-1 libpcap-2 ndpi"}

# Sends SECS seconds at RATE; prints "offered".
flood() { # rate
  local rate=$1 out
  out=$(ip netns exec "$ns" target/release/blast va "$work/flood.pcap" --rate "$rate" \
    --loops 1000000 --seconds "$secs")
  python3 -c "
import sys
f = dict(kv.split('=') for kv in sys.argv[1].split())
print(int(f['tx_packets']) - int(f['tx_dropped']))" "$out"
}

# A process's time on a CPU in nanoseconds and its voluntary context
# switches, all threads.
cpu_use() { # pid
  cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%d ", s}'
  cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'
}

# One step with flowstatd: prints "offered received dropped cpu_secs
# wakeups".
# WORKERS "r2c": run to completion (the capture thread is the worker).
step_flowstatd() { # method workers rate
  local method=$1 workers=$2 rate=$3 extra="" inline=false
  [ "$method" = af_xdp ] && extra="xdp_mode = \"$xdp_mode\""
  [ "$method" = libpcap ] && extra="buffer_bytes = $((${RING:-16384} * 2048))"
  if [ "$workers" = r2c ]; then
    inline=true workers=1
    [ "$method" = af_xdp ] && extra+=$'\nqueues = [0]'
  fi
  rm -f "$work/out.json"
  cat > "$work/agent.toml" <<TOML
[agent]
update_interval_secs = 1
workers = $workers
run_to_completion = $inline
status_file = ""
[api]
enabled = false
[[capture]]
interface = "vb"
method = "$method"
rx_ring = ${RING:-16384}
fill_ring = ${RING:-16384}
$extra
[[sink]]
type = "file"
path = "$work/out.json"
types = ["interface_stats"]
TOML
  ip netns exec "$ns" target/release/flowstatd run -c "$work/agent.toml" 2>"$work/agent.log" &
  local pid=$!
  for _ in $(seq 100); do grep -q "flowstatd running" "$work/agent.log" && break; sleep 0.1; done
  local t0 offered t1
  t0=$(cpu_use "$pid")
  offered=$(flood "$rate")
  sleep 1
  t1=$(cpu_use "$pid")
  kill -TERM "$pid"; wait "$pid" || true
  python3 - "$work/out.json" "$offered" "$t0" "$t1" <<'PY'
import json, sys
path, offered = sys.argv[1], int(sys.argv[2])
(ns0, sw0), (ns1, sw1) = (map(int, a.split()) for a in sys.argv[3:5])
# raw counts every frame the capture read, those the hand-off then
# dropped (queue_dropped) included: received is what reached a worker.
raw = queued_out = kernel = 0
for line in open(path):
    v = json.loads(line)["vb"]
    raw += v["raw"]; queued_out += v["queue_dropped"]; kernel += v["capture_dropped"]
print(offered, raw - queued_out, kernel + queued_out, (ns1 - ns0) / 1e9, sw1 - sw0)
PY
}

# One step with ndpiReader -i: prints "offered received - cpu_secs
# wakeups".
step_ndpi() { # rate
  local rate=$1
  ip netns exec "$ns" ndpiReader -i vb -s $((secs + 3)) > "$work/ndpi.out" 2>&1 &
  local pid=$!
  sleep 1.5
  local t0 offered t1
  t0=$(cpu_use "$pid")
  offered=$(flood "$rate")
  sleep 0.5
  t1=$(cpu_use "$pid")
  wait "$pid" || true
  # "IP packets: N of M packets total"
  local got
  got=$(sed -nE 's/.* of ([0-9]+) +packets total.*/\1/p' "$work/ndpi.out" | head -1)
  python3 -c "
import sys
(ns0, sw0), (ns1, sw1) = (map(int, a.split()) for a in sys.argv[3:5])
print(sys.argv[1], sys.argv[2], '-', (ns1 - ns0) / 1e9, sw1 - sw0)" "$offered" "${got:-0}" "$t0" "$t1"
}

step() { # capturer rate
  case $1 in
    ndpi) step_ndpi "$2" ;;
    *) step_flowstatd "${1%-*}" "${1#*-}" "$2" ;;
  esac
}

printf '%-26s %9s %11s %11s %9s %8s %9s %10s\n' capturer offered/s offered received dropped lost "us/pkt" wakeups/s
for capturer in $capturers; do
  best=0
  for rate in $rates; do
    read -r offered got drop cpu wakeups < <(step "$capturer" "$rate")
    lost=$((offered - got))
    us=$(python3 -c "print(f'{$cpu * 1e6 / max($got, 1):.3f}')")
    printf '%-26s %9s %11s %11s %9s %8s %9s %10s\n' "$capturer" "$rate" "$offered" "$got" "$drop" "$lost" "$us" \
      $((wakeups / secs))
    [ "$lost" -le 0 ] && best=$rate
    [ "$lost" -gt 0 ] && break
  done
  if [ "$best" -gt 0 ]; then
    read -r offered got _ _ _ < <(step "$capturer" $((best * 2)))
    echo "$capturer: zero loss up to $best/s; at $((best * 2))/s received $((got / secs))/s of $((offered / secs))/s"
  else
    echo "$capturer: lost packets at every rate tried"
  fi
done

# CPU a packet at 50k packets/s, the capturers in turns.
for _ in $(seq "${CPU_TURNS:-7}"); do
  for capturer in $capturers; do
    read -r _ got _ cpu _ < <(step "$capturer" 50000)
    echo "$capturer $cpu $got" >> "$work/cpu"
  done
done
if [ -s "$work/cpu" ]; then
  python3 - "$work/cpu" <<'PY'
import statistics, sys
us = {}
for line in open(sys.argv[1]):
    name, cpu, got = line.split()
    us.setdefault(name, []).append(float(cpu) * 1e6 / max(int(got), 1))
print(f"\nCPU a packet at 50000/s, in {len(next(iter(us.values())))} turns: median (min-max), us")
for name, v in us.items():
    print(f"{name:26} {statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})")
PY
fi

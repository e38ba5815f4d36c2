#!/usr/bin/env bash
# Bytes a flow, as the process sees it: peak RSS of a replay holding about
# 1M flows at once, less the peak RSS of one holding about 1k, less the
# difference in capture size (replay maps the capture, so its pages count
# in RSS), over the difference in flows. DPI on; no per-flow records are
# written (--types agent_status,interface_stats), so the figure is the
# flows' own memory.
#
#   benches/memory.sh [WORKERS...]      (default: 1 2)
#
# Three kinds of flows:
#   udp     two 18-byte datagrams from the client, no reply (detection
#           waits for one): genflows.py N 2 udp
#   syn     one TCP SYN: genflows.py N 1 syn
#   corpus  the corpus's flows, each round of it on a VLAN of its own
#           (mkcapture --vlan-per-round): 570 rounds of about 1,770 flows
#           make 1M flows (7.7 GB)
# benches/memory.toml keeps every flow to the end (no flow expires, and
# max_flows leaves room).
# Captures are built once in benches/data/ (the corpus one is 7.7 GB).
set -euo pipefail
cd "$(dirname "$0")/.."

workers=("$@")
((${#workers[@]})) || workers=(1 2)
.ci/deps build
cargo build --release --quiet -p flowstatd -p flowstat-benches
flowstatd=target/release/flowstatd
data=benches/data
mkdir -p "$data"

capture() { # NAME N: builds $data/NAME-N.pcap once
  local out=$data/$1-$2.pcap
  if [ ! -s "$out" ]; then
    case $1 in
      udp) python3 ../shared/tools/genflows.py "$out" "$2" 2 udp ;;
      syn) python3 ../shared/tools/genflows.py "$out" "$2" 1 syn ;;
      corpus) target/release/mkcapture "$out" "$2" --vlan-per-round 2>/dev/null ;;
    esac
  fi
  echo "$out"
}

# Peak RSS (KiB) and flows, for one replay. No flow expires before the
# end of these captures, so every flow is held until then: the flows are
# the flows purged.
measure() { # FILE WORKERS CONFIG...
  local file=$1 w=$2
  shift 2
  local rss
  rss=$( { /usr/bin/time -f %M "$flowstatd" replay "$file" "$@" --workers "$w" \
    --types agent_status -o /tmp/flowstat-memory.json 2>&1 >/dev/null; } | tail -1)
  local flows
  flows=$(python3 -c '
import json, sys
print(sum(json.loads(l)["flows_purged"] for l in open(sys.argv[1])))' /tmp/flowstat-memory.json)
  echo "$rss $flows"
}

printf '%-8s %8s %12s %12s %10s %12s\n' kind workers "flows" "RSS KiB" "file MiB" "bytes/flow"
for kind in udp syn corpus; do
  case $kind in
    corpus) small=3 large=570 ;;
    *) small=1000 large=1000000 ;;
  esac
  a=$(capture $kind $small)
  b=$(capture $kind $large)
  for w in "${workers[@]}"; do
    read -r rss_a flows_a < <(measure "$a" "$w" -c benches/memory.toml)
    read -r rss_b flows_b < <(measure "$b" "$w" -c benches/memory.toml)
    size_a=$(stat -c %s "$a")
    size_b=$(stat -c %s "$b")
    per=$(python3 -c "print(round(((($rss_b - $rss_a) * 1024) - ($size_b - $size_a)) / ($flows_b - $flows_a), 1))")
    printf '%-8s %8s %12s %12s %10s %12s\n' "$kind" "$w" "$flows_b" "$rss_b" \
      "$((size_b >> 20))" "$per"
  done
done
rm -f /tmp/flowstat-memory.json

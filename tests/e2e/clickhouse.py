"""Loads replayed records into conf/clickhouse's schema in an embedded
ClickHouse (chdb) and checks the example queries against totals computed
here from the records themselves.

    python3 clickhouse.py CONF_DIR AGENT=RECORDS.jsonl...

The Kafka tables of 2-kafka.sql are replaced by Null tables with the same
columns and the Kafka virtual columns the views read (`_headers`,
`_timestamp`); the views of 3-views.sql then move each inserted block as
they would move a Kafka block. Each agent's records go in as one block, in
order, as a partition of its topic would bring them.
"""

import json
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from chdb import session

conf = Path(sys.argv[1])
agents = dict(arg.split("=", 1) for arg in sys.argv[2:])
failures = []


def check(what, got, want):
    if got != want:
        failures.append(f"{what}:\n  clickhouse: {got}\n  records:    {want}")


def statements(path):
    text = re.sub(r"--[^\n]*", "", path.read_text())
    return [s.strip() for s in text.split(";") if s.strip()]


# Removed when the script exits, pass or fail.
workdir = tempfile.TemporaryDirectory(prefix="flowstat-chdb-")
db = session.Session(workdir.name)


def query(sql, **params):
    res = db.query(sql, "JSONCompact", params={k: str(v) for k, v in params.items()})
    return [tuple(row) for row in json.loads(str(res))["data"]] if str(res) else []


for s in statements(conf / "1-tables.sql"):
    db.query(s)
# The captures are years old: past every TTL, their rows would go at once.
for (table,) in query("SELECT name FROM system.tables WHERE database = 'flowstat'"
                      " AND create_table_query LIKE '% TTL %'"):
    db.query(f"ALTER TABLE flowstat.{table} REMOVE TTL")
queues = []
for s in statements(conf / "2-kafka.sql"):
    # The Kafka DDL must parse; it runs against a real broker only.
    query("SELECT formatQuery({q:String})", q=" ".join(s.split()))
    m = re.match(r"CREATE TABLE IF NOT EXISTS (\S+) \(message String\)\s+ENGINE = Kafka", s)
    assert m, f"unexpected Kafka table: {s}"
    queues.append(m.group(1))
    db.query(
        f"CREATE TABLE {m.group(1)} (message String, `_headers.name` Array(String),"
        " `_headers.value` Array(String), _timestamp DateTime) ENGINE = Null"
    )
for s in statements(conf / "3-views.sql"):
    db.query(s)

FLOWS = ("flow", "flow_stats", "flow_purge")
meta, intervals, purges = {}, [], []
status_rows, iface_bytes = defaultdict(int), defaultdict(int)
for agent, path in agents.items():
    batches = defaultdict(list)
    stamp = 0
    for line in open(path):
        r = json.loads(line)
        t = r["type"]
        if t == "agent_status":
            stamp = r["timestamp"]
            status_rows[agent] += 1
        if t == "interface_stats":
            for name, c in r.items():
                if name != "type":
                    iface_bytes[(agent, name)] += c["ip_bytes"]
        queue = "flowstat.queue_flows" if t in FLOWS else f"flowstat.queue_{t}"
        if queue in queues:
            batches[queue].append(json.dumps({
                "message": line.rstrip("\n"), "_headers.name": ["hostname"],
                "_headers.value": [agent], "_timestamp": stamp}))
        if t not in FLOWS:
            continue
        f = r["flow"]
        key = (agent, f["digest_prev"][0] if f["digest_prev"] else f["digest"])
        if t == "flow":
            meta[key] = f
            continue
        intervals.append((key, r))
        if t == "flow_purge":
            purges.append((key, r))
    # The two ways a flow's records meet its metadata, each alone: the
    # first agent's records in one block with flow_meta's view detached
    # (only the block has it), the others' one record per block (only
    # flow_meta has it).
    first = agent == next(iter(agents))
    if first:
        db.query("DETACH TABLE flowstat.flow_meta_mv")
    for queue, rows in batches.items():
        size = len(rows) if first else 1
        for i in range(0, len(rows), size):
            db.query(f"INSERT INTO {queue} FORMAT JSONEachRow\n" + "\n".join(rows[i:i + size]))
    if first:
        db.query("ATTACH TABLE flowstat.flow_meta_mv")

# Every interval found its flow's metadata, whatever the block order.
check("intervals without metadata",
      query("SELECT count() FROM flowstat.flow_intervals WHERE local_ip = toIPv6('::')"),
      [(0,)])
check("interval rows", query("SELECT count() FROM flowstat.flow_intervals"), [(len(intervals),)])
check("flow rows", query("SELECT count() FROM flowstat.flows"), [(len(purges),)])
tcp = [r["flow"].get("tcp", {}) for _, r in intervals]
check("interval TCP flags (sum of each side's)",
      query("SELECT sum(local_tcp_flags), sum(other_tcp_flags) FROM flowstat.flow_intervals"),
      [(sum(t.get("local_flags", 0) for t in tcp), sum(t.get("other_flags", 0) for t in tcp))])
assert any(t.get("other_flags") for t in tcp), "the replay carries no TCP flags"

check("agent_status rows", query("SELECT agent, count() FROM flowstat.agent_status GROUP BY agent ORDER BY agent"),
      sorted(status_rows.items()))
check("interface_stats bytes",
      query("SELECT agent, interface, sum(ip_bytes) FROM flowstat.interface_stats GROUP BY agent, interface ORDER BY agent, interface"),
      sorted((a, i, b) for (a, i), b in iface_bytes.items()))

window = {"from": "1970-01-01 00:00:00", "to": "2100-01-01 00:00:00"}
named = {}
for block in (conf / "queries.sql").read_text().split("-- name: ")[1:]:
    name, sql = block.split("\n", 1)
    named[name.strip()] = sql.strip().rstrip(";")
ran = set()


def run(name, **params):
    ran.add(name)
    return query(named[name], **window, **params)


def ranked(totals, key, limit):
    return sorted(totals.items(), key=key)[:limit]


def delta(r):
    f = r["flow"]
    return f["local_bytes"], f["local_packets"], f["other_bytes"], f["other_packets"]


# Top applications per agent, from the minute aggregates.
for agent in agents:
    apps = defaultdict(lambda: [0, 0])
    for key, r in intervals:
        if key[0] == agent:
            m = meta[key]
            lb, lp, ob, op = delta(r)
            t = apps[(m["detected_application_name"], m["detected_protocol_name"])]
            t[0] += lb + ob
            t[1] += lp + op
    want = [(a, p, b, n) for (a, p), (b, n) in ranked(apps, lambda kv: (-kv[1][0], kv[0]), 20)]
    check(f"top_applications {agent}", run("top_applications", agent=agent), want)

# Each agent's busiest application, from the hour aggregates.
want = []
for agent in sorted(agents):
    apps = defaultdict(int)
    for key, r in intervals:
        if key[0] == agent:
            lb, _, ob, _ = delta(r)
            apps[meta[key]["detected_application_name"]] += lb + ob
    best = max(apps.values())
    want.append((agent, best, round(best / sum(apps.values()), 3)))
check("top_applications_by_agent (bytes, share)",
      [(a, b, s) for a, _, b, s in run("top_applications_by_agent")], want)

# AS pairs across agents.
pairs = defaultdict(lambda: [0, 0])
for key, r in intervals:
    m = meta[key]
    lb, _, ob, _ = delta(r)
    t = pairs[(m.get("local_asn", 0), m.get("other_asn", 0))]
    t[0] += lb
    t[1] += ob
want = [(la, oa, o, i) for (la, oa), (o, i) in ranked(pairs, lambda kv: (-sum(kv[1]), kv[0]), 20)]
check("top_as_pairs", [(la, oa, o, i) for la, oa, _, o, i in run("top_as_pairs")], want)
assert any(oa for (_, oa) in pairs), "the replay carries no ASN: the AS query proves nothing"

# The busiest local host's history and flows.
hosts = defaultdict(int)
for key, r in intervals:
    lb, _, ob, _ = delta(r)
    hosts[meta[key]["local_ip"]] += lb + ob
host = max(hosts, key=hosts.get)
minutes = defaultdict(lambda: [0, 0, set()])
for key, r in intervals:
    if meta[key]["local_ip"] == host:
        lb, _, ob, _ = delta(r)
        t = minutes[r["flow"]["last_seen_at"] // 60000 * 60]
        t[0] += lb
        t[1] += ob
        t[2].add(key)
got = [(m, o, i, n) for m, o, i, n in run("host_history", host=host)]
want = [(m, o, i, len(k)) for m, (o, i, k) in sorted(minutes.items())]
# Minutes come back as text: compare them as epoch seconds.
got = [(int(query("SELECT toUnixTimestamp(toDateTime({m:String}, 'UTC'))", m=m)[0][0]), o, i, n)
       for m, o, i, n in got]
check(f"host_history {host}", got, want)
assert len(want) > 1, "the busiest host spans one minute: the history query proves little"

flows = sorted(((k[0], r["flow"]["total_local_bytes"], r["flow"]["total_other_bytes"])
                for k, r in purges if r["flow"]["local_ip"] == host),
               key=lambda t: -(t[1] + t[2]))
got = [(row[0], row[9], row[10]) for row in run("host_flows", host=host)]
check(f"host_flows {host}", sorted(got), sorted(flows[:100]))

check("every example query ran", sorted(ran), sorted(named))
summary = {"agents": len(agents), "flows": len(purges), "intervals": len(intervals),
           "apps": len({meta[k]["detected_application_name"] for k, _ in intervals}),
           "as_pairs": len(pairs), "host": host, "host_minutes": len(want)}
print(json.dumps(summary))
if failures:
    print("\n".join(failures))
    sys.exit(1)

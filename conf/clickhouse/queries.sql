-- flowstat: example queries over the tables of 1-tables.sql. Each is
-- named by a `-- name:` line and takes ClickHouse query parameters
-- (clickhouse-client --param_agent=router1 --param_from='2026-12-01 00:00:00'
--  --param_to='2026-12-02 00:00:00' --param_host=192.0.2.10 ...).
-- Times are UTC. The test suite runs each on replayed records and checks
-- the answers against totals computed from the records.

-- name: top_applications
-- The applications that carried the most bytes through one agent.
SELECT application, protocol,
       sum(local_bytes + other_bytes) AS bytes,
       sum(local_packets + other_packets) AS packets
FROM flowstat.traffic_1m
WHERE agent = {agent:String} AND time >= {from:DateTime} AND time < {to:DateTime}
GROUP BY application, protocol
ORDER BY bytes DESC, application, protocol
LIMIT 20;

-- name: top_applications_by_agent
-- Each agent's busiest application, and its share of the agent's bytes.
SELECT agent, argMax(application, app_bytes) AS application, max(app_bytes) AS bytes,
       round(max(app_bytes) / sum(app_bytes), 3) AS share
FROM
(
    SELECT agent, application, sum(local_bytes + other_bytes) AS app_bytes
    FROM flowstat.traffic_1h
    WHERE time >= toStartOfHour({from:DateTime}) AND time < {to:DateTime}
    GROUP BY agent, application
)
GROUP BY agent
ORDER BY agent;

-- name: top_as_pairs
-- The pairs of autonomous systems that exchanged the most bytes, across
-- all agents (0 is an address no ASN database knows: a private one).
SELECT local_asn, other_asn, any(other_as_name) AS other_as_name,
       sum(local_bytes) AS bytes_out, sum(other_bytes) AS bytes_in
FROM flowstat.traffic_1m
WHERE time >= {from:DateTime} AND time < {to:DateTime}
GROUP BY local_asn, other_asn
ORDER BY bytes_out + bytes_in DESC, local_asn, other_asn
LIMIT 20;

-- name: host_history
-- One local host's traffic per minute, through any agent.
SELECT toStartOfMinute(time) AS minute,
       sum(local_bytes) AS bytes_out, sum(other_bytes) AS bytes_in,
       uniqExact(agent, digest) AS flows
FROM flowstat.flow_intervals
WHERE local_ip = toIPv6({host:String}) AND time >= {from:DateTime} AND time < {to:DateTime}
GROUP BY minute
ORDER BY minute;

-- name: host_flows
-- The flows of one local host that ended in the window, largest first.
SELECT agent, first_seen, last_seen, protocol, application, host_server_name,
       other_ip, other_port, other_asn, local_bytes, other_bytes, reason
FROM flowstat.flows
WHERE local_ip = toIPv6({host:String}) AND last_seen >= {from:DateTime} AND last_seen < {to:DateTime}
ORDER BY local_bytes + other_bytes DESC, first_seen
LIMIT 100;

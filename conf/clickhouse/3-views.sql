-- flowstat: the materialized views that move records from the Kafka
-- tables (2-kafka.sql) into the storage tables (1-tables.sql).

-- The agent that sent a Kafka message: its `hostname` header.
CREATE FUNCTION IF NOT EXISTS flowstat_agent AS (names, values) ->
    values[indexOf(names, 'hostname')];

-- A flow record's first digest: the oldest of `digest_prev`, or `digest`
-- while that is empty. Stable for the flow's life (SPEC section 2).
CREATE FUNCTION IF NOT EXISTS flowstat_first_digest AS (message) ->
    if(JSONLength(message, 'flow', 'digest_prev') = 0,
        JSONExtractString(message, 'flow', 'digest'),
        JSONExtractString(message, 'flow', 'digest_prev', 1));

-- A flow's key in flow_meta: agent and first digest.
CREATE FUNCTION IF NOT EXISTS flowstat_flow_key AS (agent, message) ->
    concat(agent, '/', flowstat_first_digest(message));

-- The metadata kept from a `flow` record (flow_meta.meta).
CREATE FUNCTION IF NOT EXISTS flowstat_flow_meta AS (message) ->
    CAST(tuple(
        toIPv6(JSONExtractString(message, 'flow', 'local_ip')),
        toIPv6(JSONExtractString(message, 'flow', 'other_ip')),
        JSONExtractUInt(message, 'flow', 'ip_protocol'),
        JSONExtractString(message, 'flow', 'detected_protocol_name'),
        JSONExtractString(message, 'flow', 'detected_application_name'),
        JSONExtractString(message, 'flow', 'host_server_name'),
        JSONExtractUInt(message, 'flow', 'local_asn'),
        JSONExtractUInt(message, 'flow', 'other_asn'),
        JSONExtractString(message, 'flow', 'other_as_name'),
        JSONExtractString(message, 'flow', 'other_country')),
    'Tuple(local_ip IPv6, other_ip IPv6, ip_protocol UInt8, protocol String,
           application String, host_server_name String, local_asn UInt32,
           other_asn UInt32, other_as_name String, other_country String)');

CREATE MATERIALIZED VIEW IF NOT EXISTS flowstat.flow_meta_mv TO flowstat.flow_meta AS
SELECT flowstat_flow_key(flowstat_agent(_headers.name, _headers.value), message) AS key,
       flowstat_flow_meta(message) AS meta
FROM flowstat.queue_flows
WHERE JSONExtractString(message, 'type') = 'flow';

-- `flow_stats` and `flow_purge` records, with their flow's metadata. A
-- flow's `flow` record comes before its other records (one partition, in
-- order) but may be in the same block, and ClickHouse runs a table's
-- views in no set order: the metadata is taken from the block when the
-- block has it, else looked up in flow_meta (direct join: one key lookup
-- per row).
CREATE MATERIALIZED VIEW IF NOT EXISTS flowstat.flow_records_mv TO flowstat.flow_records AS
SELECT q.agent AS agent, q.message AS message,
       if(q.block_meta = '', m.meta, flowstat_flow_meta(q.block_meta)) AS meta
FROM
(
    SELECT message, type, agent, key,
           anyIf(message, type = 'flow') OVER (PARTITION BY key) AS block_meta
    FROM
    (
        SELECT message, JSONExtractString(message, 'type') AS type,
               flowstat_agent(_headers.name, _headers.value) AS agent,
               flowstat_flow_key(agent, message) AS key
        FROM flowstat.queue_flows
    )
) AS q
LEFT JOIN flowstat.flow_meta AS m ON q.key = m.key
WHERE q.type IN ('flow_stats', 'flow_purge')
SETTINGS join_algorithm = 'direct';

-- Every interval's counters: each `flow_stats`, and the last interval a
-- `flow_purge` carries.
CREATE MATERIALIZED VIEW IF NOT EXISTS flowstat.flow_intervals_mv TO flowstat.flow_intervals AS
SELECT
    agent,
    JSONExtractString(message, 'interface') AS interface,
    flowstat_first_digest(message) AS digest,
    fromUnixTimestamp64Milli(JSONExtractInt(message, 'flow', 'last_seen_at'), 'UTC') AS time,
    meta.local_ip AS local_ip,
    meta.other_ip AS other_ip,
    meta.ip_protocol AS ip_protocol,
    meta.protocol AS protocol,
    meta.application AS application,
    meta.local_asn AS local_asn,
    meta.other_asn AS other_asn,
    meta.other_as_name AS other_as_name,
    JSONExtractUInt(message, 'flow', 'local_bytes') AS local_bytes,
    JSONExtractUInt(message, 'flow', 'local_packets') AS local_packets,
    JSONExtractUInt(message, 'flow', 'other_bytes') AS other_bytes,
    JSONExtractUInt(message, 'flow', 'other_packets') AS other_packets,
    JSONExtractUInt(message, 'flow', 'local_rate') AS local_rate,
    JSONExtractUInt(message, 'flow', 'other_rate') AS other_rate,
    JSONExtractUInt(message, 'flow', 'tcp', 'retrans') AS retrans,
    JSONExtractUInt(message, 'flow', 'tcp', 'resets') AS resets,
    JSONExtractUInt(message, 'flow', 'tcp', 'seq_errors') AS seq_errors,
    JSONExtractUInt(message, 'flow', 'tcp', 'local_flags') AS local_tcp_flags,
    JSONExtractUInt(message, 'flow', 'tcp', 'other_flags') AS other_tcp_flags
FROM flowstat.flow_records;

-- One row per purged flow: identity, names and totals from the record,
-- host name and AS from its metadata.
CREATE MATERIALIZED VIEW IF NOT EXISTS flowstat.flows_mv TO flowstat.flows AS
SELECT
    agent,
    JSONExtractString(message, 'interface') AS interface,
    JSONExtractBool(message, 'internal') AS internal,
    flowstat_first_digest(message) AS digest,
    JSONExtractString(message, 'reason') AS reason,
    JSONExtractBool(message, 'evicted') AS evicted,
    fromUnixTimestamp64Milli(JSONExtractInt(message, 'flow', 'first_seen_at'), 'UTC') AS first_seen,
    fromUnixTimestamp64Milli(JSONExtractInt(message, 'flow', 'last_seen_at'), 'UTC') AS last_seen,
    JSONExtractUInt(message, 'flow', 'ip_version') AS ip_version,
    JSONExtractUInt(message, 'flow', 'ip_protocol') AS ip_protocol,
    JSONExtractUInt(message, 'flow', 'vlan_id') AS vlan_id,
    toIPv6(JSONExtractString(message, 'flow', 'local_ip')) AS local_ip,
    JSONExtractUInt(message, 'flow', 'local_port') AS local_port,
    toIPv6(JSONExtractString(message, 'flow', 'other_ip')) AS other_ip,
    JSONExtractUInt(message, 'flow', 'other_port') AS other_port,
    JSONExtractBool(message, 'flow', 'local_origin') AS local_origin,
    JSONExtractString(message, 'flow', 'detected_protocol_name') AS protocol,
    JSONExtractString(message, 'flow', 'detected_application_name') AS application,
    meta.host_server_name AS host_server_name,
    meta.local_asn AS local_asn,
    meta.other_asn AS other_asn,
    meta.other_as_name AS other_as_name,
    meta.other_country AS other_country,
    JSONExtractUInt(message, 'flow', 'total_local_bytes') AS local_bytes,
    JSONExtractUInt(message, 'flow', 'total_local_packets') AS local_packets,
    JSONExtractUInt(message, 'flow', 'total_other_bytes') AS other_bytes,
    JSONExtractUInt(message, 'flow', 'total_other_packets') AS other_packets
FROM flowstat.flow_records
WHERE JSONExtractString(message, 'type') = 'flow_purge';

CREATE MATERIALIZED VIEW IF NOT EXISTS flowstat.traffic_1m_mv TO flowstat.traffic_1m AS
SELECT agent, toStartOfMinute(time) AS time, interface, protocol, application,
       local_asn, other_asn, any(other_as_name) AS other_as_name,
       sum(local_bytes) AS local_bytes, sum(local_packets) AS local_packets,
       sum(other_bytes) AS other_bytes, sum(other_packets) AS other_packets
FROM flowstat.flow_intervals
GROUP BY agent, time, interface, protocol, application, local_asn, other_asn;

CREATE MATERIALIZED VIEW IF NOT EXISTS flowstat.traffic_1h_mv TO flowstat.traffic_1h AS
SELECT agent, toStartOfHour(time) AS time, interface, protocol, application,
       local_asn, other_asn, any(other_as_name) AS other_as_name,
       sum(local_bytes) AS local_bytes, sum(local_packets) AS local_packets,
       sum(other_bytes) AS other_bytes, sum(other_packets) AS other_packets
FROM flowstat.flow_intervals
GROUP BY agent, time, interface, protocol, application, local_asn, other_asn;

CREATE MATERIALIZED VIEW IF NOT EXISTS flowstat.agent_status_mv TO flowstat.agent_status AS
SELECT
    flowstat_agent(_headers.name, _headers.value) AS agent,
    toDateTime(JSONExtractUInt(message, 'timestamp'), 'UTC') AS time,
    JSONExtractUInt(message, 'uptime') AS uptime,
    JSONExtractUInt(message, 'flows_active') AS flows_active,
    JSONExtractUInt(message, 'flows_purged') AS flows_purged,
    JSONExtractUInt(message, 'flows_evicted') AS flows_evicted,
    JSONExtractUInt(message, 'memrss_kb') AS memrss_kb,
    arraySum(c -> JSONExtractUInt(c.2, 'dropped'),
             JSONExtractKeysAndValuesRaw(message, 'captures')) AS capture_dropped,
    arraySum(s -> JSONExtractUInt(s.2, 'dropped'),
             JSONExtractKeysAndValuesRaw(message, 'sinks')) AS sink_dropped
FROM flowstat.queue_agent_status;

-- `interface_stats` keys each interface's counters by its name.
CREATE MATERIALIZED VIEW IF NOT EXISTS flowstat.interface_stats_mv TO flowstat.interface_stats AS
SELECT
    flowstat_agent(_headers.name, _headers.value) AS agent,
    kv.1 AS interface,
    toDateTime(_timestamp, 'UTC') AS time,
    JSONExtractUInt(kv.2, 'raw') AS raw,
    JSONExtractUInt(kv.2, 'ip') AS ip,
    JSONExtractUInt(kv.2, 'ip_bytes') AS ip_bytes,
    JSONExtractUInt(kv.2, 'wire_bytes') AS wire_bytes,
    JSONExtractUInt(kv.2, 'capture_dropped') AS capture_dropped,
    JSONExtractUInt(kv.2, 'queue_dropped') AS queue_dropped,
    JSONExtractUInt(kv.2, 'flow_dropped') AS flow_dropped,
    JSONExtractUInt(kv.2, 'discarded') AS discarded
FROM flowstat.queue_interface_stats
ARRAY JOIN JSONExtractKeysAndValuesRaw(message) AS kv
WHERE kv.1 != 'type';

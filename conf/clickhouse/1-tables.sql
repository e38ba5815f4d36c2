-- flowstat: the ClickHouse tables that keep many agents' records (after
-- akvorado's design: Kafka-engine queues, materialized views, MergeTree
-- storage, coarser aggregates kept longer). Load 1-tables.sql,
-- 2-kafka.sql, 3-views.sql in that order; queries.sql has examples.
--
-- `agent` is the host name of the agent that sent a record; addresses are
-- IPv6 (IPv4 as ::ffff:a.b.c.d); times are UTC; byte counts are frame
-- lengths on the wire (SPEC section 2). `local`/`other` are the flow's
-- local and other endpoints (SPEC section 2): local_bytes were sent by the
-- local endpoint. `digest` is a flow's first digest: stable for its life,
-- the key to join a flow's rows on (SPEC section 2).

CREATE DATABASE IF NOT EXISTS flowstat;

-- Each flow's metadata, from its `flow` record, by agent and first
-- digest (`key`, see 3-views.sql); read by the views that store
-- `flow_stats` and `flow_purge` rows. A key-value table: a flow's
-- metadata is looked up per row without loading the table; entries older
-- than the TTL (seconds) go.
CREATE TABLE IF NOT EXISTS flowstat.flow_meta
(
    key String,
    meta Tuple(
        local_ip IPv6,
        other_ip IPv6,
        ip_protocol UInt8,
        protocol String,
        application String,
        host_server_name String,
        local_asn UInt32,
        other_asn UInt32,
        other_as_name String,
        other_country String)
)
ENGINE = EmbeddedRocksDB(604800)
PRIMARY KEY key;

-- `flow_stats` and `flow_purge` records with their flow's metadata, on
-- their way to flows and flow_intervals (a Null table keeps nothing: its
-- views take each block).
CREATE TABLE IF NOT EXISTS flowstat.flow_records
(
    agent String,
    message String,
    meta Tuple(
        local_ip IPv6,
        other_ip IPv6,
        ip_protocol UInt8,
        protocol String,
        application String,
        host_server_name String,
        local_asn UInt32,
        other_asn UInt32,
        other_as_name String,
        other_country String)
)
ENGINE = Null;

-- One row per flow, when it left the agent's table (`flow_purge`): its
-- identity, its metadata and its totals.
CREATE TABLE IF NOT EXISTS flowstat.flows
(
    agent LowCardinality(String),
    interface LowCardinality(String),
    internal Bool,
    digest String,
    reason LowCardinality(String),
    evicted Bool,
    first_seen DateTime64(3, 'UTC'),
    last_seen DateTime64(3, 'UTC'),
    ip_version UInt8,
    ip_protocol UInt8,
    vlan_id UInt16,
    local_ip IPv6,
    local_port UInt16,
    other_ip IPv6,
    other_port UInt16,
    local_origin Bool,
    protocol LowCardinality(String),
    application LowCardinality(String),
    host_server_name String,
    local_asn UInt32,
    other_asn UInt32,
    other_as_name LowCardinality(String),
    other_country LowCardinality(String),
    local_bytes UInt64,
    local_packets UInt64,
    other_bytes UInt64,
    other_packets UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(last_seen)
ORDER BY (agent, last_seen)
TTL toDateTime(last_seen) + INTERVAL 90 DAY;

-- One row per flow and interval: every `flow_stats`, and the last
-- interval a `flow_purge` carries, so that the intervals of a flow add up
-- to its totals. `time` is the flow's last packet in the interval.
CREATE TABLE IF NOT EXISTS flowstat.flow_intervals
(
    agent LowCardinality(String),
    interface LowCardinality(String),
    digest String,
    time DateTime64(3, 'UTC'),
    local_ip IPv6,
    other_ip IPv6,
    ip_protocol UInt8,
    protocol LowCardinality(String),
    application LowCardinality(String),
    local_asn UInt32,
    other_asn UInt32,
    other_as_name LowCardinality(String),
    local_bytes UInt64,
    local_packets UInt64,
    other_bytes UInt64,
    other_packets UInt64,
    local_rate UInt64,
    other_rate UInt64,
    retrans UInt32,
    resets UInt32,
    seq_errors UInt32,
    -- TCP flags each side sent in the interval, OR-ed (FIN 1, SYN 2, RST 4,
    -- PSH 8, ACK 16, ...).
    local_tcp_flags UInt8,
    other_tcp_flags UInt8
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(time)
ORDER BY (agent, time)
TTL toDateTime(time) + INTERVAL 7 DAY;

-- Traffic by minute and by hour, per agent, interface, application and
-- AS pair: what the dashboards draw. Rows with the same key are summed
-- as parts merge; queries still sum() with GROUP BY.
CREATE TABLE IF NOT EXISTS flowstat.traffic_1m
(
    agent LowCardinality(String),
    time DateTime('UTC'),
    interface LowCardinality(String),
    protocol LowCardinality(String),
    application LowCardinality(String),
    local_asn UInt32,
    other_asn UInt32,
    other_as_name LowCardinality(String),
    local_bytes UInt64,
    local_packets UInt64,
    other_bytes UInt64,
    other_packets UInt64
)
ENGINE = SummingMergeTree((local_bytes, local_packets, other_bytes, other_packets))
PARTITION BY toYYYYMMDD(time)
ORDER BY (agent, time, interface, protocol, application, local_asn, other_asn)
TTL time + INTERVAL 30 DAY;

CREATE TABLE IF NOT EXISTS flowstat.traffic_1h AS flowstat.traffic_1m
ENGINE = SummingMergeTree((local_bytes, local_packets, other_bytes, other_packets))
PARTITION BY toYYYYMM(time)
ORDER BY (agent, time, interface, protocol, application, local_asn, other_asn)
TTL time + INTERVAL 400 DAY;

-- Each agent's `agent_status`, one row per interval.
CREATE TABLE IF NOT EXISTS flowstat.agent_status
(
    agent LowCardinality(String),
    time DateTime('UTC'),
    uptime UInt64,
    flows_active UInt64,
    flows_purged UInt64,
    flows_evicted UInt64,
    memrss_kb UInt64,
    capture_dropped UInt64,
    sink_dropped UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (agent, time)
TTL time + INTERVAL 400 DAY;

-- Each capture interface's `interface_stats`, one row per interface and
-- interval; `time` is when the agent sent it (the Kafka message's time).
CREATE TABLE IF NOT EXISTS flowstat.interface_stats
(
    agent LowCardinality(String),
    interface LowCardinality(String),
    time DateTime('UTC'),
    raw UInt64,
    ip UInt64,
    ip_bytes UInt64,
    wire_bytes UInt64,
    capture_dropped UInt64,
    queue_dropped UInt64,
    flow_dropped UInt64,
    discarded UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (agent, interface, time)
TTL time + INTERVAL 400 DAY;

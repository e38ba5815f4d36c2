-- flowstat: the Kafka-engine tables ClickHouse reads the agents' records
-- from. Load the three files in order:
--
--   clickhouse-client --multiquery < 1-tables.sql
--   clickhouse-client --multiquery < 2-kafka.sql
--   clickhouse-client --multiquery < 3-views.sql
--
-- A Kafka table starts consuming once a view reads it: until 3-views.sql
-- is loaded, records wait in Kafka.
--
-- Set kafka_broker_list to your brokers. Every row's agent is the Kafka
-- header `hostname` that flowstat's Kafka sink sets on every message.
--
-- The three flow record types share one topic, `flowstat.flows`: the sink
-- keys each of a flow's records by the flow's first digest, so they stay
-- in order in one partition, and a flow's `flow` record (its metadata)
-- reaches ClickHouse before its `flow_stats` records that look it up.
-- The agent's sinks:
--
--   [[sink]]
--   type = "kafka"
--   brokers = "kafka1:9092,kafka2:9092"
--   types = ["flow", "flow_stats", "flow_purge"]
--   topic = "flowstat.flows"
--
--   [[sink]]
--   type = "kafka"
--   brokers = "kafka1:9092,kafka2:9092"
--   types = ["agent_status", "interface_stats"]
--   # topic = "flowstat.{type}", the default

CREATE TABLE IF NOT EXISTS flowstat.queue_flows (message String)
ENGINE = Kafka
SETTINGS kafka_broker_list = 'localhost:9092',
         kafka_topic_list = 'flowstat.flows',
         kafka_group_name = 'clickhouse-flowstat',
         kafka_format = 'JSONAsString';

CREATE TABLE IF NOT EXISTS flowstat.queue_agent_status (message String)
ENGINE = Kafka
SETTINGS kafka_broker_list = 'localhost:9092',
         kafka_topic_list = 'flowstat.agent_status',
         kafka_group_name = 'clickhouse-flowstat',
         kafka_format = 'JSONAsString';

CREATE TABLE IF NOT EXISTS flowstat.queue_interface_stats (message String)
ENGINE = Kafka
SETTINGS kafka_broker_list = 'localhost:9092',
         kafka_topic_list = 'flowstat.interface_stats',
         kafka_group_name = 'clickhouse-flowstat',
         kafka_format = 'JSONAsString';

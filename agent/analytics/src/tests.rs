use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use flowstat_geo::{GeoConfig, GeoDb};

use flowstat_core::analytics::{Analytics, KeyJson, Subject};
use flowstat_core::{
    AddrClass, Category, Detection, Endpoint, FlowEvent, FlowKey, FlowView, InterfaceCounters,
    InterfaceReport, Metadata, OtherType, Protocol, PurgeReason, SideStats, SourceInfo, Timestamp,
};
use serde_json::json;

use super::*;
use crate::field::{Field, FlowCtx, decode_key};

const ETH0: SourceInfo<'static> = SourceInfo {
    interface: "eth0",
    internal: true,
};

const PURGED: FlowEvent = FlowEvent::Purged {
    reason: PurgeReason::Expired,
    evicted: false,
};

/// A flow to `other` of `app` that sent `bytes` (all from the other side)
/// in its interval, out of `total` since it began; `id` makes its digest.
fn flow(other: [u8; 4], app: &'static str, bytes: u64, total: u64, id: u8) -> FlowView<'static> {
    let endpoint = |ip: [u8; 4], port| Endpoint {
        ip: IpAddr::from(ip),
        port,
        mac: [2, 0, 0, 0, 0, id],
        class: AddrClass::Public,
    };
    let mut lower = [0; 16];
    lower[..4].copy_from_slice(&other);
    FlowView {
        key: FlowKey {
            ip_version: 4,
            protocol: 17,
            vlan_id: 0,
            lower_port: 53,
            upper_port: 1000 + u16::from(id),
            lower,
            upper: [id; 16],
        },
        slot: u32::from(id),
        ip_version: 4,
        ip_protocol: 17,
        vlan_id: 0,
        ip_dscp: 0,
        local: endpoint([10, 0, 0, id], 1000 + u16::from(id)),
        other: endpoint(other, 53),
        other_type: OtherType::Remote,
        local_origin: true,
        first_seen: Timestamp::from_secs(1),
        last_seen: Timestamp::from_secs(2),
        digest: [id; 20],
        digest_prev: None,
        detection: Detection {
            protocol: Protocol(5),
            application: 0,
            application_name: app,
            category: Category::from_name("Web").unwrap(),
            guessed: false,
            packets: 1,
            updated: false,
            dns_cache_hit: false,
            meta: Metadata::none(),
        },
        local_stats: SideStats::default(),
        other_stats: SideStats {
            bytes,
            packets: 1,
            rate: bytes / 15,
            total_bytes: total,
            total_packets: total.div_ceil(bytes.max(1)),
            tcp_flags: 0,
        },
        tcp: None,
        tcp_total: None,
    }
}

fn definition(name: &str, keys: &[&str], n: usize) -> DefinitionConfig {
    DefinitionConfig {
        name: name.into(),
        keys: keys.iter().map(|k| (*k).into()).collect(),
        value: "bytes".into(),
        filter: Default::default(),
        n,
        emit: true,
    }
}

fn threshold(name: &str, metric: &str, value: u64, by_flow: bool) -> ThresholdConfig {
    ThresholdConfig {
        name: name.into(),
        metric: metric.into(),
        value,
        by_flow,
        lock: false,
    }
}

/// A worker's tally, with no address databases.
fn tally(shared: &Shared) -> Tally {
    Tally::new(
        shared.clone(),
        Arc::new(ArcSwap::from_pointee(GeoDb::empty())),
    )
}

fn reduce(r: &mut Reducer, parts: Vec<TallyPart>, secs: u64) -> Analytics {
    r.reduce(parts, Timestamp::from_secs(secs), 15, &[])
}

/// A key's JSON, parsed.
fn key(k: &KeyJson) -> serde_json::Value {
    serde_json::from_str(k.get()).unwrap()
}

fn rows(a: &Analytics, i: usize) -> Vec<(serde_json::Value, u64, u64)> {
    a.definitions[i]
        .rows
        .iter()
        .map(|r| (key(&r.key), r.value, r.total))
        .collect()
}

#[test]
fn keys_read_back_and_order_as_their_fields() {
    let fields = [
        Field::Application,
        Field::Category,
        Field::OtherIp,
        Field::OtherPort,
        Field::LocalMac,
    ];
    let key = |app, port: u16| {
        let mut view = flow([1, 2, 3, 4], app, 1, 1, 7);
        view.other.port = port;
        let ctx = FlowCtx {
            source: &ETH0,
            view: &view,
            host: "",
            geo: Default::default(),
        };
        let mut key = Vec::new();
        for f in fields {
            f.encode(&ctx, &mut key);
        }
        key
    };
    assert_eq!(
        self::key(&decode_key(&fields, &key("a\0b", 443))),
        json!({"application": "a\0b", "category": "Web", "other_ip": "1.2.3.4",
               "other_port": 443, "local_mac": "02:00:00:00:00:07"})
    );
    // Names as strings, numbers by value.
    assert!(key("a", 443) < key("ab", 443));
    assert!(key("ab", 443) < key("b", 1));
    assert!(key("a", 2) < key("a", 10));
}

#[test]
fn workers_shares_merge_into_exact_top_keys_the_rest_and_totals() {
    let shared =
        Shared::new(Spec::new(vec![definition("apps", &["application"], 2)], vec![], 2).unwrap());
    let (mut w1, mut w2) = (tally(&shared), tally(&shared));
    let mut r = Reducer::new(shared);
    let stats = FlowEvent::Stats;
    w1.flow(&ETH0, stats, &flow([1, 1, 1, 1], "dns", 300, 300, 1));
    w2.flow(&ETH0, stats, &flow([1, 1, 1, 2], "dns", 100, 100, 2));
    w2.flow(&ETH0, stats, &flow([1, 1, 1, 3], "web", 350, 350, 3));
    w1.flow(&ETH0, stats, &flow([1, 1, 1, 4], "mail", 50, 50, 4));
    w2.flow(&ETH0, stats, &flow([1, 1, 1, 5], "chat", 50, 50, 5));
    // A `flow` record adds nothing: its bytes come in the flow's next
    // `flow_stats` or `flow_purge`.
    w1.flow(
        &ETH0,
        FlowEvent::Detected,
        &flow([1, 1, 1, 6], "web", 999, 999, 6),
    );
    let a = reduce(&mut r, vec![w1.take(), w2.take()], 15);
    assert_eq!(
        rows(&a, 0),
        [
            (json!({"application": "dns"}), 400, 400),
            (json!({"application": "web"}), 350, 350),
            (json!("other"), 100, 100),
        ]
    );
    assert_eq!(a.definitions[0].rows[0].rate, 400 / 15);
    // Top flows: by total_rate, across workers.
    let top: Vec<_> = a.top_flows.iter().map(|f| f.other_ip.to_string()).collect();
    assert_eq!(top, ["1.1.1.3", "1.1.1.1"]);

    // Next interval: totals run on, the purge's bytes count.
    w2.flow(&ETH0, PURGED, &flow([1, 1, 1, 4], "mail", 500, 550, 4));
    let a = reduce(&mut r, vec![w1.take(), w2.take()], 30);
    assert_eq!(rows(&a, 0), [(json!({"application": "mail"}), 500, 550)]);
}

#[test]
fn a_definition_of_many_keys_merges_exactly_across_workers_and_intervals() {
    // Far more keys than a table holds before it splits into parts, some
    // counted by both workers, over two intervals: the rows, the rest and
    // the totals equal a plain sum's.
    let shared =
        Shared::new(Spec::new(vec![definition("hosts", &["other_ip"], 3)], vec![], 0).unwrap());
    let (mut w1, mut w2) = (tally(&shared), tally(&shared));
    let mut r = Reducer::new(shared);
    let ip = |k: u32| [10, (k >> 16) as u8, (k >> 8) as u8, k as u8];
    let (mut totals, mut all) = (std::collections::BTreeMap::new(), 0);
    // The second interval's flows are new ones, in slots of their own.
    for (at, flows, keys, slots) in [
        (15, 100_000u32, 60_000u32, 0),
        (30, 50_000, 80_000, 100_000),
    ] {
        let mut interval = std::collections::BTreeMap::new();
        for i in 0..flows {
            let (k, bytes) = ((i * 7) % keys, u64::from(1 + i % 13));
            let w = if i % 2 == 0 { &mut w1 } else { &mut w2 };
            let mut f = flow(ip(k), "web", bytes, bytes, 1);
            f.slot = slots + i;
            w.flow(&ETH0, FlowEvent::Stats, &f);
            *interval.entry(k).or_insert(0) += bytes;
        }
        // A key idle for an interval is forgotten: its total restarts.
        totals.retain(|k, _| interval.contains_key(k));
        for (k, v) in &interval {
            *totals.entry(*k).or_insert(0) += v;
        }
        all += interval.values().sum::<u64>();
        let mut expected: Vec<_> = interval.iter().map(|(k, v)| (*v, *k)).collect();
        expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let rest: u64 = expected[3..].iter().map(|(v, _)| v).sum();
        let mut expected: Vec<_> = expected[..3]
            .iter()
            .map(|&(v, k)| {
                let [a, b, c, d] = ip(k);
                (
                    json!({"other_ip": format!("{a}.{b}.{c}.{d}")}),
                    v,
                    totals[&k],
                )
            })
            .collect();
        let shown: u64 = expected.iter().map(|e| e.2).sum();
        expected.push((json!("other"), rest, all - shown));
        let a = reduce(&mut r, vec![w1.take(), w2.take()], at);
        assert_eq!(rows(&a, 0), expected, "interval ending at {at} s");
    }
}

#[test]
fn a_filter_keeps_only_matching_flows() {
    let mut d = definition("to-dns", &["other_ip"], 10);
    d.filter
        .insert("other_port".into(), FilterValue::Number(53));
    d.filter
        .insert("application".into(), FilterValue::Text("dns".into()));
    let shared = Shared::new(Spec::new(vec![d], vec![], 0).unwrap());
    let mut w = tally(&shared);
    let mut r = Reducer::new(shared);
    w.flow(
        &ETH0,
        FlowEvent::Stats,
        &flow([9, 9, 9, 9], "dns", 10, 10, 1),
    );
    w.flow(
        &ETH0,
        FlowEvent::Stats,
        &flow([8, 8, 8, 8], "web", 10, 10, 2),
    );
    let a = reduce(&mut r, vec![w.take()], 15);
    assert_eq!(rows(&a, 0), [(json!({"other_ip": "9.9.9.9"}), 10, 10)]);
}

#[test]
fn definitions_counted_by_class_equal_the_same_counted_per_flow() {
    // A filter on `other_port` (53 for every flow) makes a definition
    // count per flow; without it, the same definition counts by class.
    let pair = |name: &str, keys: &[&str], filter: &[(&str, &str)], value: &str| {
        [false, true].map(|per_flow| {
            let mut d = definition(&format!("{name}-{per_flow}"), keys, 10);
            d.value = value.into();
            for (f, v) in filter {
                d.filter.insert((*f).into(), FilterValue::Text((*v).into()));
            }
            if per_flow {
                d.filter
                    .insert("other_port".into(), FilterValue::Number(53));
            }
            d
        })
    };
    let defs: Vec<_> = [
        pair("apps", &["application", "protocol"], &[], "bytes"),
        pair(
            "dns-by-category",
            &["category"],
            &[("application", "dns")],
            "flows",
        ),
        pair("other-type", &["other_type", "ip_version"], &[], "packets"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let shared = Shared::new(Spec::new(defs, vec![], 0).unwrap());
    let mut w = tally(&shared);
    assert_eq!(
        (0..6).map(|i| w.plan.by_class(i)).collect::<Vec<_>>(),
        [true, false, true, false, true, false]
    );
    let mut r = Reducer::new(shared);
    // A name with a zero byte in it, and names that are prefixes of others.
    for (i, app) in ["dns", "web", "dns", "a\0b", "a", "web", "dns"]
        .into_iter()
        .enumerate()
    {
        let i = i as u8;
        let f = flow([9, 9, 9, i], app, 100 + u64::from(i), 100 + u64::from(i), i);
        w.flow(&ETH0, FlowEvent::Stats, &f);
    }
    let a = reduce(&mut r, vec![w.take()], 15);
    for d in 0..3 {
        let (by_class, per_flow) = (rows(&a, 2 * d), rows(&a, 2 * d + 1));
        assert!(!by_class.is_empty());
        assert_eq!(by_class, per_flow, "definition {d}");
    }
    assert_eq!(
        rows(&a, 0)[..2],
        [
            (json!({"application": "dns", "protocol": "DNS"}), 308, 308),
            (json!({"application": "web", "protocol": "DNS"}), 206, 206),
        ]
    );
}

#[test]
fn a_threshold_fires_once_per_crossing() {
    let shared = Shared::new(
        Spec::new(
            vec![definition("apps", &["application"], 5)],
            vec![threshold("big", "apps", 10, true)],
            0,
        )
        .unwrap(),
    );
    let mut w = tally(&shared);
    let mut r = Reducer::new(shared);
    // Rates (bytes / 15 s): 20, 20, 5, 20 for dns; web always above.
    let mut fired = Vec::new();
    for (i, dns) in [300, 300, 75, 300].into_iter().enumerate() {
        w.flow(
            &ETH0,
            FlowEvent::Stats,
            &flow([1, 1, 1, 1], "dns", dns, dns, 1),
        );
        w.flow(
            &ETH0,
            FlowEvent::Stats,
            &flow([1, 1, 1, 2], "web", 600, 600, 2),
        );
        let a = reduce(&mut r, vec![w.take()], 15 * (i as u64 + 1));
        for e in a.events {
            let Subject::Key(key) = &e.subject else {
                panic!("a definition's event names its key")
            };
            let key = self::key(key);
            fired.push((e.event_id, i, key["application"].clone(), e.value));
        }
    }
    assert_eq!(
        fired,
        [
            (1, 0, json!("web"), 40),
            (2, 0, json!("dns"), 20),
            (3, 3, json!("dns"), 20),
        ]
    );
}

#[test]
fn flows_of_equal_rates_rank_by_digest_read_as_bytes_in_a_worker_and_across_workers() {
    // Two flows of one rate: the smaller digest, byte by byte, is the
    // larger. These two compare the other way read as little-endian
    // integers.
    let (mut a, mut b) = (
        flow([1, 1, 1, 1], "x", 300, 300, 1),
        flow([1, 1, 1, 2], "x", 300, 300, 2),
    );
    (a.digest, b.digest) = ([0; 20], [0; 20]);
    (a.digest[0], b.digest[1]) = (1, 2);
    let shared = Shared::new(Spec::new(vec![], vec![], 1).unwrap());
    let top = |a: &Analytics| {
        a.top_flows
            .iter()
            .map(|f| f.other_ip.to_string())
            .collect::<Vec<_>>()
    };
    for (first, second) in [(a, b), (b, a)] {
        let mut r = Reducer::new(shared.clone());
        // One worker keeps one flow of the two.
        let mut w = tally(&shared);
        w.flow(&ETH0, FlowEvent::Stats, &first);
        w.flow(&ETH0, FlowEvent::Stats, &second);
        assert_eq!(top(&reduce(&mut r, vec![w.take()], 15)), ["1.1.1.2"]);
        // Each worker keeps its own; the reducer picks.
        let (mut w1, mut w2) = (tally(&shared), tally(&shared));
        w1.flow(&ETH0, FlowEvent::Stats, &first);
        w2.flow(&ETH0, FlowEvent::Stats, &second);
        assert_eq!(
            top(&reduce(&mut r, vec![w1.take(), w2.take()], 30)),
            ["1.1.1.2"]
        );
    }
}

#[test]
fn without_by_flow_one_event_names_the_largest_and_lock_waits_for_acknowledge() {
    let mut t = threshold("fat", "total_rate", 10, false);
    t.lock = true;
    let shared = Shared::new(Spec::new(vec![], vec![t], 0).unwrap());
    let mut w = tally(&shared);
    let mut r = Reducer::new(shared.clone());
    let interval = |r: &mut Reducer, w: &mut Tally, bytes: &[u64], at| {
        for (i, &b) in bytes.iter().enumerate() {
            w.flow(
                &ETH0,
                FlowEvent::Stats,
                &flow([1, 1, 1, 1], "x", b, b, i as u8),
            );
        }
        reduce(r, vec![w.take()], at).events
    };
    let events = interval(&mut r, &mut w, &[300, 600], 15);
    assert_eq!(events.len(), 1);
    let Subject::Flow(f) = &events[0].subject else {
        panic!("a per-flow threshold names the flow")
    };
    assert_eq!((f.total_rate, &*f.digest), (40, &*"01".repeat(20)));
    // Below, then above again: locked until acknowledged.
    assert!(interval(&mut r, &mut w, &[15], 30).is_empty());
    assert!(interval(&mut r, &mut w, &[600], 45).is_empty());
    assert!(interval(&mut r, &mut w, &[15], 60).is_empty());
    shared.acknowledge("fat");
    let events = interval(&mut r, &mut w, &[600], 75);
    assert_eq!(events.iter().map(|e| e.event_id).collect::<Vec<_>>(), [2]);
}

#[test]
fn an_interface_threshold_reads_the_capture_when_the_kernel_has_no_counters() {
    let shared = Shared::new(
        Spec::new(
            vec![],
            vec![threshold("busy", "rx_bytes_per_sec", 1000, true)],
            0,
        )
        .unwrap(),
    );
    let mut r = Reducer::new(shared);
    let iface = |bytes| InterfaceReport {
        name: "eth0".into(),
        counters: InterfaceCounters {
            wire_bytes: bytes,
            ..Default::default()
        },
        kernel: None,
    };
    let a = r.reduce(vec![], Timestamp::from_secs(15), 15, &[iface(15_015)]);
    assert_eq!(a.events[0].subject, Subject::Interface("eth0".into()));
    assert_eq!(a.events[0].value, 1001);
    let a = r.reduce(vec![], Timestamp::from_secs(30), 15, &[iface(15_000)]);
    assert!(a.events.is_empty());
}

#[test]
fn definitions_change_at_run_time_from_the_next_interval() {
    let shared = Shared::default();
    let mut w = tally(&shared);
    let mut r = Reducer::new(shared.clone());
    shared
        .define(definition("apps", &["application"], 5))
        .unwrap();
    // Counted under the old settings: nothing.
    w.flow(
        &ETH0,
        FlowEvent::Stats,
        &flow([1, 1, 1, 1], "dns", 30, 30, 1),
    );
    let a = reduce(&mut r, vec![w.take()], 15);
    assert_eq!(rows(&a, 0), []);
    w.flow(
        &ETH0,
        FlowEvent::Stats,
        &flow([1, 1, 1, 1], "dns", 30, 60, 1),
    );
    let a = reduce(&mut r, vec![w.take()], 30);
    assert_eq!(rows(&a, 0), [(json!({"application": "dns"}), 30, 30)]);
    assert_eq!(shared.remove("apps"), Ok(true));
    assert_eq!(shared.remove("apps"), Ok(false));
    let a = reduce(&mut r, vec![w.take()], 45);
    assert!(a.definitions.is_empty());
}

#[test]
fn bad_settings_are_named() {
    let err = |defs, thresholds| Spec::new(defs, thresholds, 0).unwrap_err();
    let (key, reason) = err(vec![definition("a", &["application", "colour"], 5)], vec![]);
    assert_eq!(key, "flow_definition[0]");
    assert!(reason.contains("unknown field \"colour\""), "{reason}");
    let mut d = definition("a", &["application"], 5);
    d.filter
        .insert("other_ip".into(), FilterValue::Text("10.0.0".into()));
    assert!(err(vec![d], vec![]).1.contains("not an IP address"));
    let (key, reason) = err(vec![], vec![threshold("t", "nope", 1, false)]);
    assert_eq!(key, "threshold[0]");
    assert!(reason.contains("metric \"nope\""), "{reason}");
    let a = definition("a", &["application"], 5);
    assert!(err(vec![a.clone(), a], vec![]).1.contains("defined twice"));
    // A threshold keeps its definition from going.
    let shared = Shared::new(
        Spec::new(
            vec![definition("a", &["application"], 5)],
            vec![threshold("t", "a", 1, false)],
            0,
        )
        .unwrap(),
    );
    assert!(shared.remove("a").is_err());
}

/// An ASN database of `table` (`CIDR<TAB>ASN<TAB>name` lines).
fn asn_db(table: &str) -> GeoDb {
    let dir = std::env::temp_dir().join(format!(
        "flowstat-analytics-geo-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let asn = dir.join("asn.tsv");
    std::fs::write(&asn, table).unwrap();
    let db = GeoDb::open(&GeoConfig {
        asn: Some(asn),
        country: None,
    })
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    db
}

#[test]
fn geo_keys_come_from_the_address_databases() {
    let db = asn_db("1.1.1.0/24\t13335\tCLOUDFLARENET\n1.1.0.0/16\t64500\tWIDER\n");
    let shared = Shared::new(
        Spec::new(
            vec![definition("as", &["other_asn", "other_as_name"], 5)],
            vec![],
            0,
        )
        .unwrap(),
    );
    let mut w = Tally::new(shared.clone(), Arc::new(ArcSwap::from_pointee(db)));
    let mut r = Reducer::new(shared);
    for (i, other) in [[1, 1, 1, 1], [1, 1, 2, 2], [1, 1, 1, 9], [9, 9, 9, 9]]
        .into_iter()
        .enumerate()
    {
        w.flow(
            &ETH0,
            FlowEvent::Stats,
            &flow(other, "x", 10 * (i as u64 + 1), 100, i as u8),
        );
    }
    let a = reduce(&mut r, vec![w.take()], 15);
    let cloudflare = json!({"other_asn": 13335, "other_as_name": "CLOUDFLARENET"});
    let wider = json!({"other_asn": 64500, "other_as_name": "WIDER"});
    // A tie (40): in key order, unknown (0) first.
    let unknown = json!({"other_asn": 0, "other_as_name": ""});
    assert_eq!(
        rows(&a, 0),
        [(unknown, 40, 40), (cloudflare, 40, 40), (wider, 20, 20)]
    );
}

/// A tally and reducer of definitions that remember a flow's keys in two
/// ways: by class (`application`) and per flow (with `other_port`, 53 in
/// every flow; and one that lets only "dns" in).
fn remembering() -> (Tally, Reducer) {
    let mut dns = definition("dns", &["other_ip"], 5);
    dns.filter
        .insert("application".into(), FilterValue::Text("dns".into()));
    let defs = vec![
        definition("class", &["application"], 5),
        definition("per-flow", &["application", "other_port"], 5),
        dns,
    ];
    let shared = Shared::new(Spec::new(defs, vec![], 0).unwrap());
    (tally(&shared), Reducer::new(shared))
}

/// The applications of each row of the first two definitions, which
/// count alike, and the addresses of the third.
fn remembered_rows(a: &Analytics) -> Vec<(String, u64, u64)> {
    // The `"other"` row's key is a string.
    let name = |k: &serde_json::Value, f: &str| k.get(f).unwrap_or(k).as_str().unwrap().to_owned();
    let class: Vec<_> = rows(a, 0)
        .into_iter()
        .map(|(k, v, t)| (name(&k, "application"), v, t))
        .collect();
    let per_flow: Vec<_> = rows(a, 1)
        .into_iter()
        .map(|(k, v, t)| (name(&k, "application"), v, t))
        .collect();
    assert_eq!(class, per_flow);
    let dns = rows(a, 2)
        .into_iter()
        .map(|(k, v, t)| (name(&k, "other_ip"), v, t));
    class.into_iter().chain(dns).collect()
}

fn row(name: &str, value: u64, total: u64) -> (String, u64, u64) {
    (name.to_owned(), value, total)
}

#[test]
fn a_flows_keys_are_looked_up_again_when_detection_changes_them_and_after_its_purge() {
    let (mut w, mut r) = remembering();
    // The flow in slot 1, still being detected.
    w.flow(
        &ETH0,
        FlowEvent::Stats,
        &flow([1, 1, 1, 1], "unknown", 10, 10, 1),
    );
    let a = reduce(&mut r, vec![w.take()], 15);
    assert_eq!(remembered_rows(&a), [row("unknown", 10, 10)]);

    // Detection names it: its `flow` record, then its `flow_stats`.
    let dns = flow([1, 1, 1, 1], "dns", 20, 30, 1);
    w.flow(&ETH0, FlowEvent::Detected, &dns);
    w.flow(&ETH0, FlowEvent::Stats, &dns);
    let a = reduce(&mut r, vec![w.take()], 30);
    assert_eq!(
        remembered_rows(&a),
        [row("dns", 20, 20), row("1.1.1.1", 20, 20)]
    );

    // It ends, and a new flow takes its slot.
    w.flow(&ETH0, PURGED, &flow([1, 1, 1, 1], "dns", 5, 35, 1));
    w.flow(&ETH0, FlowEvent::Stats, &flow([2, 2, 2, 2], "web", 7, 7, 1));
    let a = reduce(&mut r, vec![w.take()], 45);
    assert_eq!(
        remembered_rows(&a),
        [row("web", 7, 7), row("dns", 5, 25), row("1.1.1.1", 5, 25)]
    );
}

#[test]
fn flows_keys_are_looked_up_again_when_names_change_or_are_too_many() {
    let (mut w, mut r) = remembering();
    w.flow(
        &ETH0,
        FlowEvent::Stats,
        &flow([1, 1, 1, 1], "web", 10, 10, 1),
    );
    reduce(&mut r, vec![w.take()], 15);
    // The application table was reloaded: the same application, renamed,
    // with no `Detected`.
    w.forget_keys();
    w.flow(
        &ETH0,
        FlowEvent::Stats,
        &flow([1, 1, 1, 1], "dns", 20, 30, 1),
    );
    let a = reduce(&mut r, vec![w.take()], 30);
    assert_eq!(
        remembered_rows(&a),
        [row("dns", 20, 20), row("1.1.1.1", 20, 20)]
    );

    // Keys of flows gone, more than kept: the flows that remember theirs
    // look them up again in the next interval (seen here as a renaming
    // taking effect).
    for i in 0..super::tally::SPARE_KEYS + 10 {
        let name = &*Box::leak(format!("gone{i}").into_boxed_str());
        let mut gone = flow([9, 9, 9, 9], name, 1, 1, 0);
        gone.slot = 2 + i as u32;
        w.flow(&ETH0, PURGED, &gone);
    }
    w.flow(
        &ETH0,
        FlowEvent::Stats,
        &flow([1, 1, 1, 1], "dns", 2, 32, 1),
    );
    let a = reduce(&mut r, vec![w.take()], 45);
    assert_eq!(remembered_rows(&a)[0], row("dns", 2, 22));
    w.flow(
        &ETH0,
        FlowEvent::Stats,
        &flow([1, 1, 1, 1], "renamed", 3, 35, 1),
    );
    let a = reduce(&mut r, vec![w.take()], 60);
    assert_eq!(remembered_rows(&a), [row("renamed", 3, 3)]);
}

#[test]
fn what_keys_counted_before_they_are_forgotten_stays_in_the_interval() {
    let (mut w, mut r) = remembering();
    w.flow(
        &ETH0,
        FlowEvent::Stats,
        &flow([1, 1, 1, 1], "web", 10, 10, 1),
    );
    // The application table is reloaded within the interval.
    w.forget_keys();
    w.flow(&ETH0, FlowEvent::Stats, &flow([1, 1, 1, 2], "web", 5, 5, 2));
    let a = reduce(&mut r, vec![w.take()], 15);
    assert_eq!(remembered_rows(&a), [row("web", 15, 15)]);
}

#[test]
fn keys_no_worker_names_are_let_go_of_or_kept_by_key_with_their_totals() {
    let (mut w, mut r) = remembering();
    let kept = |bytes, total| flow([1, 1, 1, 1], "dns", bytes, total, 1);
    let gone = |i: usize, bytes| {
        let name = &*Box::leak(format!("gone{i}").into_boxed_str());
        let mut f = flow([9, 9, 9, 9], name, bytes, bytes, 0);
        f.slot = 2 + i as u32;
        f
    };
    let many = super::tally::SPARE_KEYS + 10;
    // Flows that remember their keys, a key each.
    w.flow(&ETH0, FlowEvent::Stats, &kept(10, 10));
    for i in 0..many {
        w.flow(&ETH0, FlowEvent::Stats, &gone(i, 1));
    }
    reduce(&mut r, vec![w.take()], 15);
    // All but one purged: the worker forgets its keys, and numbers them
    // anew from the next interval on.
    w.flow(&ETH0, FlowEvent::Stats, &kept(20, 30));
    for i in 0..many {
        w.flow(&ETH0, PURGED, &gone(i, 1));
    }
    reduce(&mut r, vec![w.take()], 30);
    let numbered = r.numbered_keys();
    assert!(numbered > many, "{numbered}");
    // No id names the purged flows' keys now: those idle are let go of,
    // the one counted again (by key: its flow is new), never idle, is
    // kept by key with its total.
    w.flow(&ETH0, FlowEvent::Stats, &kept(5, 35));
    w.flow(&ETH0, PURGED, &gone(0, 2));
    let a = reduce(&mut r, vec![w.take()], 45);
    assert_eq!(
        remembered_rows(&a),
        [row("dns", 5, 35), row("gone0", 2, 4), row("1.1.1.1", 5, 35)]
    );
    assert!(
        r.numbered_keys() < 10,
        "{} of {numbered}",
        r.numbered_keys()
    );
    // Its total runs on by key, the kept flow's by number.
    w.flow(&ETH0, FlowEvent::Stats, &kept(1, 36));
    w.flow(&ETH0, PURGED, &gone(0, 3));
    let a = reduce(&mut r, vec![w.take()], 60);
    assert_eq!(
        remembered_rows(&a),
        [row("gone0", 3, 7), row("dns", 1, 36), row("1.1.1.1", 1, 36)]
    );
    // A flow that remembers its keys names it again: numbered, with its
    // total, and once.
    let mut named = gone(0, 4);
    named.slot = 1000;
    w.flow(&ETH0, FlowEvent::Stats, &named);
    let a = reduce(&mut r, vec![w.take()], 75);
    assert_eq!(remembered_rows(&a), [row("gone0", 4, 11)]);
}

#[test]
fn flows_keys_follow_a_reloaded_address_database() {
    let defs = vec![
        definition("class", &["other_asn"], 5),
        definition("per-flow", &["other_asn", "other_ip"], 5),
    ];
    let shared = Shared::new(Spec::new(defs, vec![], 0).unwrap());
    let geo = Arc::new(ArcSwap::from_pointee(asn_db("1.1.1.0/24\t13335\tA\n")));
    let mut w = Tally::new(shared.clone(), Arc::clone(&geo));
    let mut r = Reducer::new(shared);
    let f = flow([1, 1, 1, 1], "x", 10, 10, 1);
    let asns = |a: &Analytics| -> Vec<_> {
        (0..2)
            .flat_map(|d| rows(a, d))
            .map(|(k, _, _)| k["other_asn"].as_u64().unwrap())
            .collect()
    };
    w.flow(&ETH0, FlowEvent::Stats, &f);
    let a = reduce(&mut r, vec![w.take()], 15);
    assert_eq!(asns(&a), [13335, 13335]);
    // SIGHUP: the same flow, its address now in another AS.
    geo.store(Arc::new(asn_db("1.1.1.0/24\t64500\tB\n")));
    w.flow(&ETH0, FlowEvent::Stats, &f);
    let a = reduce(&mut r, vec![w.take()], 30);
    assert_eq!(asns(&a), [64500, 64500]);
}

#[test]
fn a_closed_sources_room_is_let_go_of() {
    let (mut w, _) = remembering();
    let eth1 = SourceInfo {
        interface: "eth1",
        internal: true,
    };
    let f = flow([1, 1, 1, 1], "dns", 10, 10, 1);
    w.flow(&ETH0, FlowEvent::Stats, &f);
    w.flow(&eth1, FlowEvent::Stats, &f);
    let kept = w.ids_kept();
    assert!(kept > 0);
    w.close("eth0");
    assert_eq!(w.ids_kept(), kept / 2);
}

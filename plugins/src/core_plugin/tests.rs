use super::*;
use flowstat_core::{
    AddrClass, Category, Detection, DigestPrev, Endpoint, FlowKey, InterfaceReport, OtherType,
    Protocol, PurgeReason, SideStats, TcpCounters, Timestamp,
};
use flowstat_core::{Dhcp, Http, InterfaceCounters, KernelCounters, Record, Ssh, Ssl, Stun};
use serde_json::Value;

const DIGEST: [u8; 20] = [0xab; 20];
const PREV: [u8; 20] = [0x01; 20];

fn view() -> FlowView<'static> {
    let v4 = |a: [u8; 4]| {
        let mut b = [0; 16];
        b[..4].copy_from_slice(&a);
        b
    };
    FlowView {
        key: FlowKey {
            ip_version: 4,
            protocol: 6,
            vlan_id: 7,
            lower_port: 443,
            upper_port: 40000,
            lower: v4([2, 2, 2, 2]),
            upper: v4([192, 168, 1, 2]),
        },
        slot: 0,
        ip_version: 4,
        ip_protocol: 6,
        vlan_id: 7,
        ip_dscp: 46,
        local: Endpoint {
            ip: "192.168.1.2".parse().unwrap(),
            port: 40000,
            mac: [0, 1, 2, 3, 4, 0xff],
            class: AddrClass::Private,
        },
        other: Endpoint {
            ip: "2.2.2.2".parse().unwrap(),
            port: 443,
            mac: [0; 6],
            class: AddrClass::Public,
        },
        other_type: OtherType::Remote,
        local_origin: true,
        first_seen: Timestamp::from_millis(1_000),
        last_seen: Timestamp::from_nanos(2_500_999_999),
        digest: DIGEST,
        digest_prev: Some(DigestPrev {
            first: &|| PREV,
            then: None,
        }),
        detection: Detection {
            protocol: Protocol(91),
            application: 0,
            application_name: "Unknown",
            category: Category::UNSPECIFIED,
            guessed: true,
            packets: 3,
            updated: false,
            dns_cache_hit: false,
            meta: Metadata::none(),
        },
        local_stats: SideStats {
            bytes: 100,
            packets: 2,
            rate: 50,
            total_bytes: 300,
            total_packets: 5,
            tcp_flags: 0x1a,
        },
        other_stats: SideStats {
            bytes: 1000,
            packets: 1,
            rate: 1000,
            total_bytes: 1000,
            total_packets: 1,
            tcp_flags: 0x12,
        },
        tcp: Some(TcpCounters {
            resets: 1,
            retrans: 2,
            seq_errors: 3,
        }),
        tcp_total: Some(TcpCounters {
            resets: 1,
            retrans: 5,
            seq_errors: 7,
        }),
    }
}

fn encode_flow(event: FlowEvent, flow: &FlowView<'_>) -> Record {
    encode_flow_with(&mut CorePlugin::default(), event, flow)
}

fn encode_flow_with(plugin: &mut CorePlugin, event: FlowEvent, flow: &FlowView<'_>) -> Record {
    let mut out = Records::default();
    let source = SourceInfo {
        interface: "eth0",
        internal: true,
    };
    plugin.on_flow(&source, event, flow, &mut out);
    assert_eq!(out.as_slice().len(), 1);
    out.as_slice()[0].clone()
}

fn text(r: &Record) -> &str {
    std::str::from_utf8(&r.json).unwrap()
}

#[test]
fn flow_stats_is_byte_exact() {
    let r = encode_flow(FlowEvent::Stats, &view());
    assert_eq!(r.kind, RecordKind::FlowStats);
    let prev = "01".repeat(20);
    let digest = "ab".repeat(20);
    assert_eq!(
        text(&r),
        format!(
            r#"{{"type":"flow_stats","interface":"eth0","internal":true,"flow":{{"detection_packets":3,"digest":"{digest}","digest_prev":["{prev}"],"last_seen_at":2500,"local_bytes":100,"local_packets":2,"local_rate":50,"other_bytes":1000,"other_packets":1,"other_rate":1000,"tcp":{{"local_flags":26,"other_flags":18,"resets":1,"retrans":2,"seq_errors":3}},"total_bytes":1300,"total_local_bytes":300,"total_local_packets":5,"total_other_bytes":1000,"total_other_packets":1,"total_packets":6}}}}"#
        )
    );
}

#[test]
fn flow_purge_carries_reason_and_identity() {
    let r = encode_flow(
        FlowEvent::Purged {
            reason: PurgeReason::Expired,
            evicted: true,
        },
        &view(),
    );
    let v: Value = serde_json::from_slice(&r.json).unwrap();
    assert_eq!(v["type"], "flow_purge");
    assert_eq!(v["reason"], "expired");
    assert_eq!(v["evicted"], true);
    let f = &v["flow"];
    assert_eq!(f["local_ip"], "192.168.1.2");
    assert_eq!(f["other_port"], 443);
    assert_eq!(f["first_seen_at"], 1000);
    assert_eq!(f["detected_protocol_name"], "TLS");
    assert_eq!(f["vlan_id"], 7);
    assert!(
        f.get("local_mac").is_none(),
        "metadata stays in the flow record"
    );
    assert_eq!(
        f["tcp_total"],
        serde_json::json!({"resets": 1, "retrans": 5, "seq_errors": 7}),
        "the TCP totals are the purge's alone"
    );
}

#[test]
fn category_carries_the_application_category_id() {
    let category = |v: &FlowView<'_>| {
        let r = encode_flow(FlowEvent::Detected, v);
        let t = text(&r).to_owned();
        let start = t.find("\"category\":").unwrap();
        t[start..][..t[start..].find('}').unwrap() + 1].to_owned()
    };
    let mut v = view();
    assert_eq!(
        category(&v),
        r#""category":{"application":0,"domain":0,"overlay":0,"protocol":0}"#
    );
    v.detection.application = 133;
    v.detection.application_name = "NetFlix";
    v.detection.category = Category::from_name("Video").unwrap();
    assert_eq!(
        category(&v),
        r#""category":{"application":26,"domain":0,"overlay":0,"protocol":0}"#
    );
    for event in [
        FlowEvent::Stats,
        FlowEvent::Purged {
            reason: PurgeReason::Closed,
            evicted: false,
        },
    ] {
        let r = encode_flow(event, &v);
        assert!(
            !text(&r).contains("category"),
            "only the flow record has it"
        );
    }
}

#[test]
fn flow_record_has_every_netify_required_field() {
    let r = encode_flow(FlowEvent::Detected, &view());
    let v: Value = serde_json::from_slice(&r.json).unwrap();
    let f = v["flow"].as_object().unwrap();
    for key in [
        "app_ip_override",
        "app_proto_twins",
        "category",
        "detected_application",
        "detected_application_name",
        "detected_protocol",
        "detected_protocol_name",
        "detection_guessed",
        "detection_packets",
        "detection_updated",
        "dhc_hit",
        "digest",
        "digest_prev",
        "dns_host_name",
        "fhc_hit",
        "first_seen_at",
        "host_server_name",
        "ip_dscp",
        "ip_nat",
        "ip_protocol",
        "ip_version",
        "last_seen_at",
        "local_bytes",
        "local_ip",
        "local_mac",
        "local_origin",
        "local_packets",
        "local_port",
        "local_rate",
        "other_bytes",
        "other_ip",
        "other_mac",
        "other_packets",
        "other_port",
        "other_rate",
        "other_type",
        "soft_dissector",
        "total_bytes",
        "total_packets",
        "vlan_id",
    ] {
        assert!(f.contains_key(key), "missing {key}");
    }
    assert_eq!(f["local_mac"], "00:01:02:03:04:ff");
    assert_eq!(f["detected_protocol"], 91);
    assert_eq!(f["detection_guessed"], true);
    assert_eq!(f["other_type"], "remote");
    let keys: Vec<&String> = f.keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "flow keys are sorted");
}

#[test]
fn flow_record_carries_protocol_objects_in_key_order() {
    let meta = Metadata {
        host_server_name: "www.example.com".into(),
        ssl: Some(Box::new(Ssl {
            version: 0x0304,
            cipher_suite: 0x1301,
            client_sni: "www.example.com".into(),
            alpn: vec!["h2".into(), "http/1.1".into()],
            client_ja4: "t13d1516h2_8daaf6152771_02713d6af862".into(),
            server_ja4s: "t130200_1301_234ea6891581".into(),
            ..Ssl::default()
        })),
        http: Some(Box::new(Http {
            url: "/a\"b".into(),
            user_agent: "curl/8".into(),
        })),
        ssh: Some(Box::new(Ssh::default())),
        dhcp: Some(Box::new(Dhcp::default())),
        stun: Some(Box::new(Stun::default())),
        bt_info_hash: Some([0x5a; 20]),
        mdns_answer: Some("printer.local".into()),
        ssdp_user_agent: Some("UPnP/1.0".into()),
    };
    let mut v = view();
    v.detection.meta = &meta;
    v.detection.updated = true;
    let r = encode_flow(FlowEvent::Detected, &v);
    let t = text(&r);
    let order = [
        "\"app_proto_twins\"",
        "\"bt\":{\"info_hash\":\"5a5a",
        "\"category\"",
        "\"detection_updated\":true",
        "\"dhc_hit\"",
        "\"dhcp\":{\"class_ident\":\"\",\"fingerprint\":\"\"}",
        "\"host_server_name\":\"www.example.com\"",
        "\"http\":{\"url\":\"/a\\\"b\",\"user_agent\":\"curl/8\"}",
        "\"local_rate\"",
        "\"mdns\":{\"answer\":\"printer.local\"}",
        "\"other_bytes\"",
        "\"soft_dissector\"",
        "\"ssdp\":{\"user_agent\":\"UPnP/1.0\"}",
        "\"ssh\":{\"client\":\"\",\"server\":\"\"}",
        "\"ssl\":{\"alpn\":[\"h2\",\"http/1.1\"],\"alpn_server\":[],\"cipher_suite\":\"0x1301\"",
        "\"server_cn\":\"\",\"server_ja4s\":\"t130200_1301_234ea6891581\"",
        "\"version\":\"0x0304\"}",
        "\"stun\":{\"mapped\":\"\"",
        "\"tcp\"",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|k| t.find(k).unwrap_or_else(|| panic!("{k} missing in {t}")))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{t}");
    // Stats and purge records leave the metadata out.
    let stats = encode_flow(FlowEvent::Stats, &v);
    let stats = text(&stats);
    assert!(!stats.contains("\"ssl\"") && !stats.contains("host_server_name"));
}

/// Address databases from prefix tables: `asn` lines, and a country table
/// of `country` lines.
fn geo_db(asn: &str, country: &str) -> flowstat_geo::GeoDb {
    let dir = std::env::temp_dir();
    let file = |name: &str, text: &str| {
        let path = dir.join(format!("flowstat-plugins-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    };
    let config = flowstat_geo::GeoConfig {
        asn: Some(file("asn.tsv", asn)),
        country: Some(file("country.tsv", country)),
    };
    let db = flowstat_geo::GeoDb::open(&config).unwrap();
    for path in [config.asn, config.country].into_iter().flatten() {
        std::fs::remove_file(path).unwrap();
    }
    db
}

#[test]
fn flow_records_carry_the_asn_and_country_of_public_addresses_in_key_order() {
    let geo: SharedGeo = Arc::new(ArcSwap::from_pointee(geo_db(
        "2.0.0.0/8\t3215\tOrange\n2.2.0.0/16\t64500\tExample \"Two\"\n\
         192.168.0.0/16\t64512\tPrivate\n198.51.100.0/24\t64501\tLocal Net\n",
        "2.0.0.0/8\tFR\n198.51.100.0/24\tDE\n",
    )));
    let mut plugin = CorePlugin::new(Arc::clone(&geo));
    // The local side is private: only the other side is looked up.
    let r = encode_flow_with(&mut plugin, FlowEvent::Detected, &view());
    let v: Value = serde_json::from_slice(&r.json).unwrap();
    let f = v["flow"].as_object().unwrap();
    assert_eq!(f["other_asn"], 64500);
    assert_eq!(f["other_as_name"], "Example \"Two\"");
    assert_eq!(f["other_country"], "FR");
    for key in ["local_asn", "local_as_name", "local_country"] {
        assert!(!f.contains_key(key), "{key} of a private address");
    }
    // A public local side is looked up too, and every key is in order.
    let mut public = view();
    public.local.ip = "198.51.100.9".parse().unwrap();
    public.local.class = AddrClass::Public;
    let r = encode_flow_with(&mut plugin, FlowEvent::Detected, &public);
    let t = text(&r);
    let order = [
        "\"last_seen_at\"",
        "\"local_as_name\":\"Local Net\"",
        "\"local_asn\":64501",
        "\"local_bytes\"",
        "\"local_country\":\"DE\"",
        "\"local_ip\"",
        "\"other_as_name\":\"Example \\\"Two\\\"\"",
        "\"other_asn\":64500",
        "\"other_bytes\"",
        "\"other_country\":\"FR\"",
        "\"other_ip\"",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|k| t.find(k).unwrap_or_else(|| panic!("{k} missing in {t}")))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{t}");
    let v: Value = serde_json::from_slice(&r.json).unwrap();
    let keys: Vec<&String> = v["flow"].as_object().unwrap().keys().collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    // flow_stats and flow_purge carry none of it.
    for event in [
        FlowEvent::Stats,
        FlowEvent::Purged {
            reason: PurgeReason::Closed,
            evicted: false,
        },
    ] {
        let r = encode_flow_with(&mut plugin, event, &public);
        let t = text(&r);
        assert!(!t.contains("_asn") && !t.contains("_country"), "{t}");
    }
    // A reload swaps the databases under the plugin.
    geo.store(Arc::new(geo_db(
        "2.2.2.0/24\t64499\tReloaded\n",
        "2.2.2.0/24\tBE\n",
    )));
    let r = encode_flow_with(&mut plugin, FlowEvent::Detected, &view());
    let v: Value = serde_json::from_slice(&r.json).unwrap();
    assert_eq!(v["flow"]["other_asn"], 64499);
    assert_eq!(v["flow"]["other_as_name"], "Reloaded");
    assert_eq!(v["flow"]["other_country"], "BE");
}

#[test]
fn without_databases_flow_records_have_no_asn_fields() {
    let r = encode_flow(FlowEvent::Detected, &view());
    let t = text(&r);
    for key in ["_asn", "_as_name", "_country"] {
        assert!(!t.contains(key), "{key} in {t}");
    }
}

#[test]
fn non_tcp_flows_have_no_tcp_object() {
    let mut v = view();
    v.ip_protocol = 17;
    v.tcp = None;
    let r = encode_flow(FlowEvent::Stats, &v);
    assert!(!text(&r).contains("\"tcp\""));
}

#[test]
fn interval_records() {
    let status = AgentStatus {
        timestamp: Timestamp::from_millis(1_700_000_015_500),
        update_interval: 15,
        uptime: 30,
        cpu_user_ms: 2_500,
        flow_count: 4,
        sinks: vec![flowstat_core::SinkStatus {
            name: "stdout".into(),
            sent: 9,
            disconnected: 1,
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut counters = InterfaceCounters {
        raw: 10,
        ip: 9,
        ..Default::default()
    };
    counters.decode_issues[DecodeError::NotIp.index()] = 1;
    let snapshot = Snapshot {
        status,
        interfaces: vec![InterfaceReport {
            name: "eth0".into(),
            counters,
            kernel: None,
        }],
        ..Default::default()
    };
    let mut out = Records::default();
    CorePlugin::default().on_interval(&snapshot, &mut out);
    let out = out.as_slice();
    assert_eq!(out.len(), 2);
    let a: Value = serde_json::from_slice(&out[0].json).unwrap();
    assert_eq!(a["type"], "agent_status");
    assert_eq!(a["timestamp"], 1_700_000_015u64);
    assert_eq!(a["cpu_user"], 2);
    assert_eq!(a["cpu_user_ms"], 2500);
    assert_eq!(a["sinks"]["stdout"]["sent"], 9);
    assert_eq!(a["sinks"]["stdout"]["disconnected"], 1);
    assert!(text(&out[0]).starts_with(r#"{"type":"agent_status","#));
    let i: Value = serde_json::from_slice(&out[1].json).unwrap();
    assert_eq!(i["type"], "interface_stats");
    assert_eq!(i["eth0"]["raw"], 10);
    assert_eq!(i["eth0"]["decode_issues"]["non_ip"], 1);
    assert_eq!(i["eth0"]["decode_issues"]["truncated_ip"], 0);
}

#[test]
fn live_interfaces_carry_kernel_counters_in_key_order() {
    let kernel = KernelCounters {
        rx_bytes: 1_000,
        rx_bytes_per_sec: 66,
        tx_drops: 2,
        ..Default::default()
    };
    let snapshot = Snapshot {
        status: AgentStatus::default(),
        interfaces: vec![
            InterfaceReport {
                name: "eth0".into(),
                counters: InterfaceCounters::default(),
                kernel: Some(kernel),
            },
            InterfaceReport {
                name: "file.pcap".into(),
                counters: InterfaceCounters::default(),
                kernel: None,
            },
        ],
        ..Default::default()
    };
    let mut out = Records::default();
    CorePlugin::default().on_interval(&snapshot, &mut out);
    let v: Value = serde_json::from_slice(&out.as_slice()[1].json).unwrap();
    let eth0 = v["eth0"].as_object().unwrap();
    assert_eq!(eth0["rx_bytes"], 1000);
    assert_eq!(eth0["rx_bytes_per_sec"], 66);
    assert_eq!(eth0["tx_drops"], 2);
    let keys: Vec<&String> = eth0.keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(
        v["file.pcap"].get("rx_bytes").is_none(),
        "offline sources have no kernel counters"
    );
}

#[test]
fn agent_hello_names_the_versions() {
    let hello = agent_hello();
    assert_eq!(hello.kind, RecordKind::AgentHello);
    let v: Value = serde_json::from_slice(&hello.json).unwrap();
    assert_eq!(v["type"], "agent_hello");
    assert_eq!(v["agent_version"], flowstat_core::AGENT_VERSION);
    assert!(
        v["build_version"]
            .as_str()
            .unwrap()
            .starts_with("flowstatd/")
    );
    assert_eq!(v["json_version"], 1.9);
}

#[test]
fn aggregate_and_event_records_have_the_spec_shape() {
    use flowstat_core::analytics::{Analytics, DefinitionTable, Event, KeyJson, Row, Subject};
    let table = |name: &str, emit| DefinitionTable {
        name: name.into(),
        emit,
        interval: 15,
        rows: vec![
            Row {
                key: KeyJson::new(r#"{"application":"netflix"}"#.into()).unwrap(),
                value: 1500,
                rate: 100,
                total: 3000,
            },
            Row {
                key: KeyJson::other(),
                value: 15,
                rate: 1,
                total: 15,
            },
        ],
    };
    let snapshot = Snapshot {
        status: AgentStatus {
            timestamp: Timestamp::from_secs(1_700_000_015),
            ..Default::default()
        },
        analytics: std::sync::Arc::new(Analytics {
            definitions: vec![table("apps", true), table("quiet", false)],
            top_flows: Vec::new(),
            events: vec![Event {
                event_id: 7,
                at: 1_700_000_015_000,
                threshold: "big-app".into(),
                metric: "apps".into(),
                value: 100,
                threshold_value: 50,
                subject: Subject::Interface("eth0".into()),
            }],
        }),
        ..Default::default()
    };
    let mut out = Records::default();
    CorePlugin::default().on_interval(&snapshot, &mut out);
    let texts: Vec<&str> = out.as_slice()[2..].iter().map(text).collect();
    assert_eq!(
        texts,
        [
            concat!(
                r#"{"type":"aggregate","name":"apps","at":1700000015000,"interval":15,"rows":["#,
                r#"{"key":{"application":"netflix"},"value":1500,"rate":100,"total":3000},"#,
                r#"{"key":"other","value":15,"rate":1,"total":15}]}"#
            ),
            concat!(
                r#"{"type":"event","event_id":7,"at":1700000015000,"threshold":"big-app","#,
                r#""metric":"apps","value":100,"threshold_value":50,"interface":"eth0"}"#
            ),
        ]
    );
}

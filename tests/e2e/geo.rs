//! ASN, AS name and country enrichment (`[geo]`): replayed captures looked
//! up in the prefix tables of `fixtures/geo/`, and `check-config` on
//! missing and corrupt databases.

use std::path::PathBuf;

use flowstatd::Config;
use serde_json::Value;

use crate::common::{TempDir, fixture, replay, replay_lines, replay_workers, run_flowstatd};

/// A config with the fixture ASN and country tables.
fn geo_config() -> Config {
    let mut cfg = Config::default();
    cfg.geo.asn = Some(fixture("geo/asn.tsv"));
    cfg.geo.country = Some(fixture("geo/country.tsv"));
    cfg
}

/// The IPv6 capture (public client) and the IPv4 one (private client).
fn captures() -> [PathBuf; 2] {
    [
        fixture("ndpi/http_ipv6.pcap"),
        fixture("ndpi/443-curl.pcap"),
    ]
}

/// The `flow` records of a replay of the captures.
fn flow_records(cfg: &Config) -> Vec<Value> {
    replay(&captures(), cfg)
        .into_iter()
        .filter(|r| r["type"] == "flow")
        .collect()
}

#[test]
fn flow_records_carry_the_asn_and_country_of_their_addresses() {
    let flows = flow_records(&geo_config());
    assert_eq!(flows.len(), 16, "flow records of the two captures");
    for r in &flows {
        let f = &r["flow"];
        let other = f["other_ip"].as_str().unwrap();
        // By longest prefix: 2a00:1450:4001::/48 inside Google's /29.
        let (asn, name, country) = match other {
            o if o.starts_with("2a00:1450:4001:") => (64496, "TEST-MORE-SPECIFIC", Some("US")),
            o if o.starts_with("2a00:1450:") => (15169, "GOOGLE", Some("US")),
            o if o.starts_with("2a02:26f0:") => (20940, "Akamai International B.V.", None),
            o if o.starts_with("2a03:2880:") => (32934, "FACEBOOK", None),
            o if o.starts_with("2a03:b0c0:") => (14061, "DIGITALOCEAN-ASN", Some("NL")),
            "178.62.197.130" => (14061, "DIGITALOCEAN-ASN", Some("GB")),
            o => panic!("unexpected other_ip {o}"),
        };
        assert_eq!(f["other_asn"], asn, "{other}: {f}");
        assert_eq!(f["other_as_name"], name, "{other}");
        assert_eq!(f["other_country"].as_str(), country, "{other}");
        // The IPv6 client is public: it is looked up too. The IPv4
        // client is private: it is not.
        if f["ip_version"] == 6 {
            assert_eq!(f["local_asn"], 64500, "{f}");
            assert_eq!(f["local_as_name"], "TEST-CLIENT-NET");
            assert_eq!(f["local_country"], "NL");
        } else {
            assert_eq!(f["local_ip"], "192.168.1.13");
            for key in ["local_asn", "local_as_name", "local_country"] {
                assert!(f.get(key).is_none(), "{key} of a private address: {f}");
            }
        }
    }
    // Every worker's plugin reads the same databases.
    let cfg = geo_config();
    assert_eq!(
        replay_workers(&captures(), &cfg, 3),
        replay_lines(&captures(), &cfg)
    );
}

#[test]
fn only_flow_records_are_enriched_and_only_with_a_database() {
    let files = [fixture("ndpi/http_ipv6.pcap")];
    let records = replay(&files, &geo_config());
    let others: Vec<&Value> = records
        .iter()
        .filter(|r| matches!(r["type"].as_str(), Some("flow_stats" | "flow_purge")))
        .collect();
    assert!(!others.is_empty());
    for r in others {
        let f = r["flow"].as_object().unwrap();
        assert!(f.keys().all(|k| !k.contains("_as")), "{r}");
        assert!(f.keys().all(|k| !k.ends_with("_country")), "{r}");
    }
    for r in flow_records(&Config::default()) {
        let f = r["flow"].as_object().unwrap();
        assert!(f.keys().all(|k| !k.contains("_as")), "{r}");
        assert!(f.keys().all(|k| !k.ends_with("_country")), "{r}");
    }
}

#[test]
fn check_config_names_a_missing_or_corrupt_database() {
    let tmp = TempDir::new("geoconf");
    let corrupt = tmp.path("GeoLite2-ASN.mmdb");
    // The start of a MaxMind DB, without its data and metadata.
    std::fs::write(&corrupt, [0u8; 64]).unwrap();
    let bad_table = tmp.path("country.tsv");
    std::fs::write(&bad_table, "192.0.2.0/24\tDE\n198.51.100.0/24\tGermany\n").unwrap();
    let missing = tmp.path("missing.mmdb");
    for (geo, key, file, reason) in [
        (
            format!("asn = {missing:?}"),
            "geo.asn",
            &missing,
            "No such file or directory",
        ),
        (
            format!("asn = {corrupt:?}"),
            "geo.asn",
            &corrupt,
            "not a valid MaxMind database",
        ),
        (
            format!("country = {bad_table:?}"),
            "geo.country",
            &bad_table,
            "line 2: \"Germany\" is not a two-letter country code",
        ),
    ] {
        let conf = tmp.path("flowstatd.toml");
        std::fs::write(&conf, format!("[geo]\n{geo}\n")).unwrap();
        let out = run_flowstatd(&["check-config", &conf.to_string_lossy()]);
        assert_eq!(out.status.code(), Some(78), "{geo}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want = format!("{}:2: {key}: {}: ", conf.display(), file.display());
        assert!(
            stderr.contains(&want) && stderr.contains(reason),
            "{geo}: want {want}...{reason}, got:\n{stderr}"
        );
        assert!(stderr.contains(&format!("remove {key}")), "{stderr}");
    }
    let conf = tmp.path("good.toml");
    std::fs::write(
        &conf,
        format!(
            "[geo]\nasn = {:?}\ncountry = {:?}\n",
            fixture("geo/asn.tsv"),
            fixture("geo/country.tsv")
        ),
    )
    .unwrap();
    let out = run_flowstatd(&["check-config", &conf.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// flow-exporter's series without per-flow records: bytes by local and
/// other AS, per direction, from `aggregate` records, equal to the sums of
/// the flow records by the ASNs the `flow` records carry.
#[test]
fn bytes_by_as_pair_per_direction_come_out_of_aggregates() {
    let mut cfg = geo_config();
    for (name, value) in [("as_out", "local_bytes"), ("as_in", "other_bytes")] {
        cfg.flow_definition.push(
            serde_json::from_value(serde_json::json!({
                "name": name, "keys": ["local_asn", "other_asn"], "value": value,
                "n": 100, "emit": true,
            }))
            .unwrap(),
        );
    }
    let records = replay(&captures(), &cfg);
    let mut pair_of = std::collections::HashMap::new();
    let mut expected: std::collections::BTreeMap<(&str, u64, u64), u64> = Default::default();
    for r in &records {
        let f = &r["flow"];
        let asn = |k: &str| f[k].as_u64().unwrap_or(0);
        match r["type"].as_str().unwrap() {
            "flow" => {
                pair_of.insert(f["digest"].clone(), (asn("local_asn"), asn("other_asn")));
            }
            "flow_stats" | "flow_purge" => {
                let (l, o) = [&f["digest"], &f["digest_prev"][0]]
                    .iter()
                    .find_map(|d| pair_of.get(*d))
                    .copied()
                    .unwrap();
                for (name, bytes) in [("as_out", "local_bytes"), ("as_in", "other_bytes")] {
                    let b = f[bytes].as_u64().unwrap();
                    if b > 0 {
                        *expected.entry((name, l, o)).or_default() += b;
                    }
                }
            }
            _ => {}
        }
    }
    let mut got: std::collections::BTreeMap<(&str, u64, u64), u64> = Default::default();
    for r in records.iter().filter(|r| r["type"] == "aggregate") {
        let name = if r["name"] == "as_out" {
            "as_out"
        } else {
            "as_in"
        };
        for row in r["rows"].as_array().unwrap() {
            let k = &row["key"];
            let key = (
                name,
                k["local_asn"].as_u64().unwrap(),
                k["other_asn"].as_u64().unwrap(),
            );
            *got.entry(key).or_default() += row["value"].as_u64().unwrap();
        }
    }
    assert_eq!(got, expected);
    // Both directions, and pairs with a known AS on each side.
    assert!(got.contains_key(&("as_out", 64500, 15169)), "{got:?}");
    assert!(got.contains_key(&("as_in", 0, 14061)), "{got:?}");
}

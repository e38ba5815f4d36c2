use std::path::PathBuf;

use ipnet::IpNet;
use maxminddb_writer::Database;
use maxminddb_writer::metadata::IpVersion;
use maxminddb_writer::paths::IpAddrWithMask;
use serde::Serialize;

use super::*;

/// A folder of its own under the system's temporary folder, removed on
/// drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("flowstat-geo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Writes `contents` to the file `name` in the folder; its path.
    fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An IPv6 MaxMind DB of `database_type` holding `records`, each inserted
/// at its networks (broader networks first), as GeoLite2 lays them out:
/// IPv4 networks in `::/96`.
fn mmdb<T: Serialize>(database_type: &str, records: &[(&[&str], T)]) -> Vec<u8> {
    let mut db = Database::default();
    db.metadata.ip_version = IpVersion::V6;
    db.metadata.database_type = database_type.into();
    db.metadata.binary_format_major_version = 2;
    db.metadata.languages = vec!["en".into()];
    db.metadata
        .description
        .insert("en".into(), "flowstat test database".into());
    for (networks, record) in records {
        let data = db.insert_value(record).unwrap();
        for net in *networks {
            let net: IpNet = net.parse().unwrap();
            let (addr, len) = match net {
                IpNet::V4(v4) => (
                    IpAddr::V6(v4.addr().to_ipv6_compatible()),
                    v4.prefix_len() + 96,
                ),
                IpNet::V6(v6) => (IpAddr::V6(v6.addr()), v6.prefix_len()),
            };
            db.insert_node(IpAddrWithMask::new(addr, len), data);
        }
    }
    db.write_to(Vec::new()).unwrap()
}

/// A GeoLite2-ASN record.
#[derive(Serialize)]
struct Asn {
    autonomous_system_number: u32,
    autonomous_system_organization: &'static str,
}

/// The country part of a GeoLite2-Country record.
#[derive(Serialize)]
struct Country {
    iso_code: &'static str,
    names: Names,
}

#[derive(Serialize)]
struct Names {
    en: &'static str,
}

/// A GeoLite2-Country record; `country` may be absent (anycast ranges).
#[derive(Serialize)]
struct CountryRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<Country>,
    registered_country: Country,
}

fn country(iso_code: &'static str, en: &'static str) -> Country {
    Country {
        iso_code,
        names: Names { en },
    }
}

fn asn_mmdb() -> Vec<u8> {
    mmdb(
        "GeoLite2-ASN",
        &[
            (
                &["8.8.0.0/16", "2001:4860::/32"],
                Asn {
                    autonomous_system_number: 15169,
                    autonomous_system_organization: "GOOGLE",
                },
            ),
            (
                &["8.8.4.0/24"],
                Asn {
                    autonomous_system_number: 64512,
                    autonomous_system_organization: "More Specific",
                },
            ),
            (
                &["2a03:2880::/32"],
                Asn {
                    autonomous_system_number: 32934,
                    autonomous_system_organization: "FACEBOOK",
                },
            ),
        ],
    )
}

fn country_mmdb() -> Vec<u8> {
    mmdb(
        "GeoLite2-Country",
        &[
            (
                &["8.8.0.0/16", "2001:4860::/32"],
                CountryRecord {
                    country: Some(country("US", "United States")),
                    registered_country: country("US", "United States"),
                },
            ),
            (
                &["2a03:2880::/32"],
                CountryRecord {
                    country: Some(country("IE", "Ireland")),
                    registered_country: country("US", "United States"),
                },
            ),
            (
                &["1.1.1.0/24"],
                CountryRecord {
                    country: None,
                    registered_country: country("AU", "Australia"),
                },
            ),
        ],
    )
}

fn info(asn: Option<u32>, as_name: Option<&str>, country: Option<&str>) -> GeoInfo<'static> {
    // Leaked strings: test values compared with what a lookup borrows.
    let leak = |s: &str| &*Box::leak(s.to_owned().into_boxed_str());
    GeoInfo {
        asn,
        as_name: as_name.map(leak),
        country: country.map(leak),
    }
}

#[test]
fn maxmind_databases_written_by_a_writer_are_looked_up() {
    let dir = TempDir::new("mmdb");
    let db = GeoDb::open(&GeoConfig {
        asn: Some(dir.file("GeoLite2-ASN.mmdb", asn_mmdb())),
        // Told by its content, whatever its name.
        country: Some(dir.file("country.db", country_mmdb())),
    })
    .unwrap();
    assert!(!db.is_empty());
    for (addr, want) in [
        ("8.8.8.8", info(Some(15169), Some("GOOGLE"), Some("US"))),
        (
            "8.8.4.4",
            info(Some(64512), Some("More Specific"), Some("US")),
        ),
        (
            "::ffff:8.8.8.8",
            info(Some(15169), Some("GOOGLE"), Some("US")),
        ),
        (
            "2001:4860:4860::8888",
            info(Some(15169), Some("GOOGLE"), Some("US")),
        ),
        (
            "2a03:2880:f10c::1",
            info(Some(32934), Some("FACEBOOK"), Some("IE")),
        ),
        // No `country`: the registered country stands in.
        ("1.1.1.1", info(None, None, Some("AU"))),
        ("192.0.2.1", GeoInfo::default()),
        ("2001:db8::1", GeoInfo::default()),
    ] {
        assert_eq!(db.lookup(ip(addr)), want, "{addr}");
    }
    let debug = format!("{db:?}");
    assert!(debug.contains("MaxMind DB GeoLite2-ASN"), "{debug}");
}

#[test]
fn prefix_tables_are_looked_up_by_longest_prefix() {
    let dir = TempDir::new("tsv");
    let db = GeoDb::open(&GeoConfig {
        asn: Some(dir.file(
            "asn.tsv",
            "8.8.0.0/16\t15169\tGOOGLE\n8.8.4.0/24\tAS64512\tMore Specific\n\
             2001:4860::/32\t15169\tGOOGLE\n",
        )),
        country: Some(dir.file("country.tsv", "8.0.0.0/8\tus\n2001:4860::/32\tUS\n")),
    })
    .unwrap();
    for (addr, want) in [
        ("8.8.8.8", info(Some(15169), Some("GOOGLE"), Some("US"))),
        (
            "8.8.4.4",
            info(Some(64512), Some("More Specific"), Some("US")),
        ),
        (
            "::ffff:8.8.4.4",
            info(Some(64512), Some("More Specific"), Some("US")),
        ),
        ("8.1.1.1", info(None, None, Some("US"))),
        (
            "2001:4860::1",
            info(Some(15169), Some("GOOGLE"), Some("US")),
        ),
        ("9.9.9.9", GeoInfo::default()),
    ] {
        assert_eq!(db.lookup(ip(addr)), want, "{addr}");
    }
    assert_eq!(
        format!("{db:?}"),
        "GeoDb { asn: \"table of 3 prefixes\", country: \"table of 2 prefixes\" }"
    );
}

#[test]
fn without_databases_every_lookup_is_empty() {
    for db in [GeoDb::empty(), GeoDb::open(&GeoConfig::default()).unwrap()] {
        assert!(db.is_empty());
        assert_eq!(db.lookup(ip("8.8.8.8")), GeoInfo::default());
    }
}

#[test]
fn missing_corrupt_and_malformed_files_are_named() {
    let dir = TempDir::new("errors");
    let open_asn = |path: PathBuf| {
        GeoDb::open(&GeoConfig {
            asn: Some(path),
            country: None,
        })
        .unwrap_err()
    };
    let missing = dir.0.join("nowhere.mmdb");
    let e = open_asn(missing.clone());
    assert!(matches!(e, GeoError::Read { .. }), "{e}");
    assert_eq!(e.path(), missing);
    assert!(
        e.to_string()
            .starts_with(&format!("{}: ", missing.display())),
        "{e}"
    );

    // Cut short: the tree points past the end of the data.
    let mut bytes = asn_mmdb();
    let marker = memchr::memmem::rfind(&bytes, b"\xab\xcd\xefMaxMind.com").unwrap();
    bytes.drain(marker - 20..marker);
    let e = open_asn(dir.file("cut.mmdb", bytes));
    assert!(matches!(e, GeoError::Mmdb { .. }), "{e}");
    assert!(
        e.to_string().contains("not a valid MaxMind database"),
        "{e}"
    );

    // Named .mmdb but text.
    let e = open_asn(dir.file("text.mmdb", "8.8.0.0/16\t15169\tGOOGLE\n"));
    assert!(matches!(e, GeoError::Mmdb { .. }), "{e}");

    let path = dir.file("asn.tsv", "8.8.0.0/16\t15169\tGOOGLE\n8.8.4.0/24\tGOOGLE\n");
    let e = open_asn(path.clone());
    assert_eq!(
        e.to_string(),
        format!("{}: line 2: expected CIDR<TAB>ASN<TAB>name", path.display())
    );
    let e = open_asn(dir.file("empty.tsv", "# nothing yet\n"));
    assert!(
        e.to_string()
            .ends_with("no prefix in it (expected lines of CIDR<TAB>ASN<TAB>name)"),
        "{e}"
    );
    let e = GeoDb::open(&GeoConfig {
        asn: None,
        country: Some(dir.file("cc.tsv", "8.8.0.0/16\tUSA\n")),
    })
    .unwrap_err();
    assert!(matches!(e, GeoError::Line { line: 1, .. }), "{e}");
}

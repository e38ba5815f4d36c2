//! Prefix tables: tab-separated text, one prefix a line, matched by
//! longest prefix.
//!
//! A line is a prefix in CIDR form (`192.0.2.0/24`, `2001:db8::/32`; a
//! bare address is a host prefix, host bits are ignored), a tab, and the
//! table's fields. Blank lines and lines starting with `#` are skipped;
//! lines may end in CRLF. A prefix listed twice is an error, as is a
//! table with no prefix at all (most likely the wrong file).

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use prefix_trie::joint::map::JointPrefixMap;

/// Why a table was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TableError {
    /// A line (numbered from 1) is wrong.
    Line(usize, String),
    /// The text holds no prefix.
    Empty,
}

/// The text of a table file, or the line of its first byte that is not
/// UTF-8.
pub(crate) fn text(bytes: &[u8]) -> Result<&str, TableError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + memchr::memchr_iter(b'\n', &bytes[..e.valid_up_to()]).count();
        TableError::Line(line, "not UTF-8 text".into())
    })
}

/// Prefixes, IPv4 and IPv6, and a value for each.
struct PrefixTable<T> {
    map: JointPrefixMap<IpNet, T>,
}

impl<T> PrefixTable<T> {
    /// Reads the lines of `text`; `value` makes a prefix's value from what
    /// follows its tab, `format` names the line format in errors.
    fn parse<'t>(
        text: &'t str,
        format: &str,
        mut value: impl FnMut(&'t str) -> Result<T, String>,
    ) -> Result<Self, TableError> {
        let mut map = JointPrefixMap::new();
        for (n, line) in text.lines().enumerate() {
            let line_error = |reason: String| TableError::Line(n + 1, reason);
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let (prefix, fields) = line
                .split_once('\t')
                .ok_or_else(|| line_error(format!("expected {format}")))?;
            let prefix = prefix.trim();
            let net = prefix
                .parse::<IpNet>()
                .or_else(|_| prefix.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    line_error(format!(
                        "{prefix:?} is not a prefix (such as 192.0.2.0/24 or 2001:db8::/32)"
                    ))
                })?
                .trunc();
            let value = value(fields).map_err(line_error)?;
            if map.insert(net, value).is_some() {
                return Err(line_error(format!("{net} is listed twice")));
            }
        }
        if map.is_empty() {
            return Err(TableError::Empty);
        }
        Ok(PrefixTable { map })
    }

    /// The value of the longest prefix holding `ip`.
    fn get(&self, ip: IpAddr) -> Option<&T> {
        self.map.get_lpm(&IpNet::from(ip)).map(|(_, v)| v)
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// An autonomous system: its number and the index of its name.
struct AsEntry {
    asn: u32,
    name: Option<u32>,
}

/// An ASN table: `CIDR<TAB>ASN<TAB>name`. The ASN may be written `AS64500`;
/// the name (the rest of the line, trimmed) may be empty. Each distinct
/// name is stored once, however many prefixes share it.
pub(crate) struct AsnTable {
    prefixes: PrefixTable<AsEntry>,
    names: Vec<Box<str>>,
}

impl AsnTable {
    /// The line format, for messages.
    pub(crate) const FORMAT: &str = "CIDR<TAB>ASN<TAB>name";

    pub(crate) fn parse(text: &str) -> Result<AsnTable, TableError> {
        let mut names: Vec<Box<str>> = Vec::new();
        let mut interned: HashMap<&str, u32> = HashMap::new();
        let prefixes = PrefixTable::parse(text, Self::FORMAT, |fields| {
            let (asn, name) = fields
                .split_once('\t')
                .ok_or_else(|| format!("expected {}", Self::FORMAT))?;
            let asn = asn.trim();
            let digits = asn
                .strip_prefix("AS")
                .or_else(|| asn.strip_prefix("as"))
                .unwrap_or(asn);
            let asn = digits
                .parse()
                .map_err(|_| format!("{asn:?} is not an AS number"))?;
            let name = name.trim();
            let name = (!name.is_empty()).then(|| {
                *interned.entry(name).or_insert_with(|| {
                    let index = u32::try_from(names.len()).unwrap_or(u32::MAX);
                    names.push(name.into());
                    index
                })
            });
            Ok(AsEntry { asn, name })
        })?;
        Ok(AsnTable { prefixes, names })
    }

    /// The AS number and name of `ip`.
    pub(crate) fn get(&self, ip: IpAddr) -> (Option<u32>, Option<&str>) {
        match self.prefixes.get(ip) {
            Some(e) => (
                Some(e.asn),
                e.name
                    .and_then(|i| self.names.get(i as usize))
                    .map(|n| &**n),
            ),
            None => (None, None),
        }
    }

    /// Prefixes in the table.
    pub(crate) fn len(&self) -> usize {
        self.prefixes.len()
    }
}

/// A country table: `CIDR<TAB>CC`, CC an ISO 3166 alpha-2 code (stored in
/// capitals).
pub(crate) struct CountryTable(PrefixTable<[u8; 2]>);

impl CountryTable {
    /// The line format, for messages.
    pub(crate) const FORMAT: &str = "CIDR<TAB>CC";

    pub(crate) fn parse(text: &str) -> Result<CountryTable, TableError> {
        PrefixTable::parse(text, Self::FORMAT, |cc| match cc.trim().as_bytes() {
            &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
            }
            _ => Err(format!(
                "{:?} is not a two-letter country code (ISO 3166 alpha-2)",
                cc.trim()
            )),
        })
        .map(CountryTable)
    }

    /// The country code of `ip`.
    pub(crate) fn get(&self, ip: IpAddr) -> Option<&str> {
        self.0.get(ip).and_then(|cc| std::str::from_utf8(cc).ok())
    }

    /// Prefixes in the table.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const ASNS: &str = "# prefix\tasn\tname\n\
        \n\
        192.0.2.0/24\t64500\tExample Net\n\
        192.0.2.128/25\tAS64501\tExample Sub\r\n\
        198.51.100.7\t64502\t\n\
        203.0.113.77/16\t64503\tExample Net\n\
        2001:db8::/32\t64510\tExample Six\n\
        2001:db8:1::/48\t64511\tExample Six Sub\n";

    #[test]
    fn asn_table_takes_the_longest_prefix_v4_and_v6() {
        let t = AsnTable::parse(ASNS).unwrap();
        assert_eq!(t.len(), 6);
        for (addr, want) in [
            ("192.0.2.1", (Some(64500), Some("Example Net"))),
            ("192.0.2.127", (Some(64500), Some("Example Net"))),
            ("192.0.2.128", (Some(64501), Some("Example Sub"))),
            ("192.0.2.255", (Some(64501), Some("Example Sub"))),
            ("198.51.100.7", (Some(64502), None)),
            ("198.51.100.8", (None, None)),
            ("203.0.200.1", (Some(64503), Some("Example Net"))),
            ("192.0.3.0", (None, None)),
            ("2001:db8::1", (Some(64510), Some("Example Six"))),
            ("2001:db8:1:ffff::1", (Some(64511), Some("Example Six Sub"))),
            ("2001:db8:2::1", (Some(64510), Some("Example Six"))),
            ("2001:db9::1", (None, None)),
        ] {
            assert_eq!(t.get(ip(addr)), want, "{addr}");
        }
    }

    #[test]
    fn asn_names_are_stored_once() {
        let t = AsnTable::parse(ASNS).unwrap();
        assert_eq!(t.names.len(), 4);
        let (_, a) = t.get(ip("192.0.2.1"));
        let (_, b) = t.get(ip("203.0.113.1"));
        assert!(std::ptr::eq(a.unwrap(), b.unwrap()));
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        for (text, line, reason) in [
            (
                "192.0.2.0/24\t1\tA\n192.0.2.0/33\t2\tB\n",
                2,
                "\"192.0.2.0/33\" is not a prefix",
            ),
            (
                "# c\n\n192.0.2.0/24 64500 X\n",
                3,
                "expected CIDR<TAB>ASN<TAB>name",
            ),
            ("192.0.2.0/24\t64500\n", 1, "expected CIDR<TAB>ASN<TAB>name"),
            ("192.0.2.0/24\tASX\tX\n", 1, "\"ASX\" is not an AS number"),
            ("192.0.2.0/24\t4294967296\tX\n", 1, "is not an AS number"),
            (
                "10.0.0.0/8\t1\tA\n10.1.2.3/8\t2\tB\n",
                2,
                "10.0.0.0/8 is listed twice",
            ),
        ] {
            match AsnTable::parse(text) {
                Err(TableError::Line(n, r)) => {
                    assert_eq!(n, line, "{text:?}: {r}");
                    assert!(r.contains(reason), "{text:?}: {r}");
                }
                other => panic!("{text:?}: {:?}", other.map(|t| t.len())),
            }
        }
        assert!(matches!(
            AsnTable::parse("# nothing\n\n"),
            Err(TableError::Empty)
        ));
    }

    #[test]
    fn country_table_reads_codes_in_capitals() {
        let t =
            CountryTable::parse("192.0.2.0/24\tde\n2001:db8::/32\tFR\n192.0.2.0/28\tNL\n").unwrap();
        assert_eq!(t.get(ip("192.0.2.200")), Some("DE"));
        assert_eq!(t.get(ip("192.0.2.3")), Some("NL"));
        assert_eq!(t.get(ip("2001:db8::5")), Some("FR"));
        assert_eq!(t.get(ip("10.0.0.1")), None);
        match CountryTable::parse("192.0.2.0/24\tDE\n198.51.100.0/24\tGermany\n") {
            Err(TableError::Line(2, r)) => assert!(r.contains("two-letter"), "{r}"),
            other => panic!("{:?}", other.map(|t| t.len())),
        }
    }

    #[test]
    fn non_utf8_is_named_by_line() {
        assert_eq!(
            text(b"192.0.2.0/24\t1\tA\n192.0.2.0/24\t2\t\xff\n"),
            Err(TableError::Line(2, "not UTF-8 text".into()))
        );
    }
}

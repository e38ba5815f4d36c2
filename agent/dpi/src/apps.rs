//! The application table: ids, names and categories, and the host-name
//! suffixes and networks that identify each application.
//!
//! A category is one of nDPI's, by name ([`Category::from_name`]); the
//! table keeps its id, which flow records carry as `category.application`.
//!
//! The table is a TOML file; `conf/applications.toml` is built in, and its
//! header describes the format and the id policy (`conf/gen-applications.py`
//! writes it from hand-kept entries and nDPI's data). A host name goes to
//! the application whose pattern matches it as nDPI's `host_match` does
//! ([`Applications::by_host`]: a few hash probes per label), an address to
//! the application listing the longest network holding it (a binary search
//! of the address ranges the networks cut).

use std::cmp::Reverse;
use std::path::Path;

use flowstat_core::Category;
use foldhash::fast::FixedState;
use hashbrown::HashMap;
use hashbrown::hash_map::Entry as MapEntry;
use ipnet::IpNet;
use serde::Deserialize;

/// The table shipped with flowstat.
const BUILTIN: &str = include_str!("../../../conf/applications.toml");

/// How errors in the built-in table name it.
const BUILTIN_ORIGIN: &str = "conf/applications.toml (built in)";

/// The longest host name (RFC 1035, without the trailing dot).
const MAX_HOST: usize = 253;

/// Why an application table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AppsError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The reason.
        source: std::io::Error,
    },
    /// The file is not TOML, or not a list of `[[application]]` tables.
    #[error("{origin}: {source}")]
    Syntax {
        /// The file.
        origin: String,
        /// The reason, with the line.
        source: Box<toml::de::Error>,
    },
    /// An application entry is wrong.
    #[error("{origin}: application #{index}{entry}: {reason}")]
    Invalid {
        /// The file.
        origin: String,
        /// The entry's position, from 1.
        index: usize,
        /// The entry's id and name as far as known, e.g. ` (id 126, "Google")`.
        entry: String,
        /// What is wrong.
        reason: String,
    },
}

/// The file: a list of `[[application]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    #[serde(default)]
    application: Vec<toml::Table>,
}

/// One `[[application]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: u32,
    name: String,
    category: String,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    networks: Vec<String>,
}

/// What the table knows of one application.
#[derive(Debug, PartialEq)]
struct App {
    name: Box<str>,
    category: Category,
    /// How many host-name patterns name it.
    domains: u32,
    /// How many networks name it.
    networks: u32,
}

/// One application as [`Applications::iter`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppInfo<'a> {
    /// Its id.
    pub id: u32,
    /// Its name.
    pub name: &'a str,
    /// Its category.
    pub category: Category,
    /// How many host-name patterns name it.
    pub domains: u32,
    /// How many networks name it.
    pub networks: u32,
}

/// The loaded application table; equal to another when they name the
/// same applications the same ways.
#[derive(Debug, Default, PartialEq)]
pub struct Applications {
    apps: HashMap<u32, App, FixedState>,
    /// Patterns that end the name ("example.com", ".example.com") to
    /// application.
    domains: HashMap<Box<str>, u32, FixedState>,
    /// Patterns that end in "." or "-" ("example.", "example-") and so
    /// match inside the name, to application.
    open: HashMap<Box<str>, u32, FixedState>,
    /// The longest pattern in `open`, in bytes.
    open_max: usize,
    /// IPv4 networks (addresses in the low 32 bits).
    v4: Prefixes,
    /// IPv6 networks.
    v6: Prefixes,
}

/// Networks by prefix length, longest first; and, for lookups, the
/// address space cut into ranges that each have one longest match.
#[derive(Debug, Default, PartialEq)]
struct Prefixes {
    levels: Vec<Level>,
    /// First address of each range, ascending, from 0.
    starts: Vec<u128>,
    /// The application of each range.
    owners: Vec<Option<u32>>,
}

/// The networks of one prefix length: masked address to application.
#[derive(Debug, PartialEq)]
struct Level {
    len: u8,
    nets: HashMap<u128, u32, FixedState>,
}

impl Applications {
    /// The table shipped with flowstat (`conf/applications.toml`, built
    /// in); an error only if that file is broken, which its unit test
    /// rules out.
    pub fn builtin() -> Result<Applications, AppsError> {
        Self::parse(BUILTIN, BUILTIN_ORIGIN)
    }

    /// Loads the table from `path`.
    pub fn load(path: &Path) -> Result<Applications, AppsError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AppsError::Read {
            path: origin.clone(),
            source,
        })?;
        Self::parse(&text, &origin)
    }

    /// Parses a table from `text`; errors name `origin` as the file.
    pub fn parse(text: &str, origin: &str) -> Result<Applications, AppsError> {
        let file: TableFile = toml::from_str(text).map_err(|e| AppsError::Syntax {
            origin: origin.to_owned(),
            source: Box::new(e),
        })?;
        let mut apps = Applications::default();
        // Lowercased names in use, to refuse names differing only in case.
        let mut names: HashMap<String, u32, FixedState> = HashMap::default();
        for (i, table) in file.application.into_iter().enumerate() {
            let entry = entry_label(&table);
            let invalid = |reason: String| AppsError::Invalid {
                origin: origin.to_owned(),
                index: i + 1,
                entry: entry.clone(),
                reason,
            };
            let e: Entry = table
                .try_into()
                .map_err(|e| invalid(e.message().to_owned()))?;
            apps.add(e, &mut names).map_err(invalid)?;
        }
        apps.v4.index(32);
        apps.v6.index(128);
        apps.domains.shrink_to_fit();
        apps.open.shrink_to_fit();
        Ok(apps)
    }

    /// Adds one entry, checking it against the ones before.
    fn add(
        &mut self,
        e: Entry,
        names: &mut HashMap<String, u32, FixedState>,
    ) -> Result<(), String> {
        if e.id == 0 {
            return Err("id 0 means Unknown and cannot be assigned".into());
        }
        if e.name.trim().is_empty() {
            return Err("empty name".into());
        }
        let category = Category::from_name(&e.category).ok_or_else(|| {
            format!(
                "category {:?} is not one of nDPI's: {}",
                e.category,
                Category::names().collect::<Vec<_>>().join(", ")
            )
        })?;
        if let Some(other) = self.apps.get(&e.id) {
            return Err(format!("id {} is already used by {:?}", e.id, other.name));
        }
        match names.entry(e.name.to_lowercase()) {
            MapEntry::Occupied(o) => {
                return Err(format!(
                    "name {:?} is already used by id {}",
                    e.name,
                    o.get()
                ));
            }
            MapEntry::Vacant(v) => {
                v.insert(e.id);
            }
        }
        let counts = (e.domains.len(), e.networks.len());
        self.apps.insert(
            e.id,
            App {
                name: e.name.into(),
                category,
                domains: u32::try_from(counts.0).unwrap_or(u32::MAX),
                networks: u32::try_from(counts.1).unwrap_or(u32::MAX),
            },
        );
        for domain in e.domains {
            check_domain(&domain)?;
            let open = domain.ends_with(is_sep);
            let map = if open { &self.open } else { &self.domains };
            if let Some(&other) = map.get(domain.as_str()) {
                return Err(format!(
                    "domain {domain:?} is already claimed by {}",
                    self.describe(other)
                ));
            }
            if open {
                self.open_max = self.open_max.max(domain.len());
                self.open.insert(domain.into(), e.id);
            } else {
                self.domains.insert(domain.into(), e.id);
            }
        }
        for text in &e.networks {
            let net: IpNet = text.parse().map_err(|_| {
                format!("network {text:?} is not an IPv4 or IPv6 CIDR (a.b.c.d/n or x:y::/n)")
            })?;
            if net != net.trunc() {
                return Err(format!(
                    "network {text:?} has host bits set (the network is {})",
                    net.trunc()
                ));
            }
            if net.prefix_len() == 0 {
                return Err(format!("network {text:?} covers every address"));
            }
            let claimed = match net {
                IpNet::V4(n) => {
                    self.v4
                        .insert(u128::from(n.addr().to_bits()), n.prefix_len(), 32, e.id)
                }
                IpNet::V6(n) => self
                    .v6
                    .insert(n.addr().to_bits(), n.prefix_len(), 128, e.id),
            };
            if let Err(other) = claimed {
                return Err(format!(
                    "network {net} is already claimed by {}",
                    self.describe(other)
                ));
            }
        }
        Ok(())
    }

    /// `"Name" (id N)`, for messages.
    fn describe(&self, id: u32) -> String {
        format!("{:?} (id {id})", self.name(id))
    }

    /// How many applications the table has.
    pub fn len(&self) -> usize {
        self.apps.len()
    }

    /// True when the table has no application.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// The application a host name belongs to, by nDPI 4.x's
    /// `host_match` rule (the table file's header has it with examples):
    ///
    /// - a pattern that does not end in "." or "-" ("example.com") matches
    ///   the end of the name, starting at its first byte or after a "." or
    ///   "-" (or at one, when the pattern starts with it: ".example.com");
    /// - one that ends in "." or "-" ("example.", "mail.example.",
    ///   "fbcdn-") matches inside the name, starting likewise;
    /// - the name itself as a pattern wins; else the match with the most
    ///   labels, then the one ending first, then the longest.
    ///
    /// Case does not matter and one trailing dot is ignored. Every probe is
    /// one hash lookup: one per label or hyphen start for the end patterns,
    /// and for the inner ones one per such start and "." or "-" within the
    /// longest inner pattern's length after it.
    pub fn by_host(&self, host: &str) -> Option<u32> {
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.is_empty() || host.len() > MAX_HOST {
            return None;
        }
        let mut buf = [0u8; MAX_HOST];
        let lower = buf.get_mut(..host.len())?;
        lower.copy_from_slice(host.as_bytes());
        lower.make_ascii_lowercase();
        // ASCII lowercasing leaves UTF-8 valid, and every slice below
        // starts and ends next to an ASCII "." or "-", so on a boundary.
        let name = std::str::from_utf8(lower).ok()?;
        let bytes = name.as_bytes();
        let starts = (0..bytes.len()).filter(|&i| {
            i == 0 || is_sep_byte(bytes[i]) || bytes.get(i - 1).copied().is_some_and(is_sep_byte)
        });
        // The longest pattern ending the name: the first found from the
        // left.
        let mut end_match = None;
        for i in starts.clone() {
            let Some(suffix) = name.get(i..) else {
                continue;
            };
            if let Some(&id) = self.domains.get(suffix) {
                if i == 0 {
                    return Some(id);
                }
                end_match = Some((labels(suffix), id));
                break;
            }
        }
        // The best inner pattern: most labels, then ending first, then
        // longest (starting first).
        let mut inner: Option<(usize, usize, usize, u32)> = None;
        if !self.open.is_empty() {
            for i in starts {
                let window = bytes.len().min(i + self.open_max);
                for j in (i + 1..window).filter(|&j| is_sep_byte(bytes[j])) {
                    let Some(pattern) = name.get(i..=j) else {
                        continue;
                    };
                    let Some(&id) = self.open.get(pattern) else {
                        continue;
                    };
                    let level = labels(pattern);
                    let better = match inner {
                        None => true,
                        Some((l, end, start, _)) => {
                            (level, Reverse(j), Reverse(i)) > (l, Reverse(end), Reverse(start))
                        }
                    };
                    if better {
                        inner = Some((level, j, i, id));
                    }
                }
            }
        }
        match (end_match, inner) {
            (Some((level, id)), Some((l, ..))) if level > l => Some(id),
            (_, Some((.., id))) => Some(id),
            (Some((_, id)), None) => Some(id),
            (None, None) => None,
        }
    }

    /// Every application, by id.
    pub fn iter(&self) -> impl Iterator<Item = AppInfo<'_>> {
        let mut ids: Vec<u32> = self.apps.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter().filter_map(|id| {
            let a = self.apps.get(&id)?;
            Some(AppInfo {
                id,
                name: &a.name,
                category: a.category,
                domains: a.domains,
                networks: a.networks,
            })
        })
    }

    /// The application an address belongs to (`ip_version` 4 or 6; an
    /// IPv4 address in the first 4 bytes): the one listing the longest
    /// network holding it.
    pub fn by_addr(&self, ip_version: u8, addr: &[u8; 16]) -> Option<u32> {
        match ip_version {
            4 => {
                let v4 = u32::from_be_bytes(*addr.first_chunk::<4>()?);
                self.v4.get(u128::from(v4))
            }
            6 => self.v6.get(u128::from_be_bytes(*addr)),
            _ => None,
        }
    }

    /// The name of application `id`, "Unknown" when the table has none.
    pub fn name(&self, id: u32) -> &str {
        self.apps.get(&id).map_or("Unknown", |a| &a.name)
    }

    /// The category of application `id`, [`Category::UNSPECIFIED`] when
    /// the table has no such application.
    pub fn category(&self, id: u32) -> Category {
        self.apps
            .get(&id)
            .map_or(Category::UNSPECIFIED, |a| a.category)
    }
}

/// ` (id N, "name")` with what the entry has of both, for messages.
fn entry_label(table: &toml::Table) -> String {
    let id = table.get("id").and_then(toml::Value::as_integer);
    let name = table.get("name").and_then(toml::Value::as_str);
    match (id, name) {
        (Some(id), Some(name)) => format!(" (id {id}, {name:?})"),
        (Some(id), None) => format!(" (id {id})"),
        (None, Some(name)) => format!(" ({name:?})"),
        (None, None) => String::new(),
    }
}

/// A "." or "-": where nDPI lets a pattern start or end inside a name.
fn is_sep(c: char) -> bool {
    matches!(c, '.' | '-')
}

fn is_sep_byte(b: u8) -> bool {
    matches!(b, b'.' | b'-')
}

/// How many labels a pattern names (nDPI's `ndpi_domain_level`): its
/// dot-separated parts, leaving out a leading or trailing "." or "-".
fn labels(pattern: &str) -> usize {
    pattern
        .split('.')
        .filter(|l| !l.is_empty() && *l != "-")
        .count()
}

/// A domain must be a lowercase host-name pattern: labels of letters,
/// digits, "-" and "_" joined by single dots, optionally opened or closed
/// by one "." or "-".
fn check_domain(domain: &str) -> Result<(), String> {
    let core = domain.strip_prefix(is_sep).unwrap_or(domain);
    let core = core.strip_suffix(is_sep).unwrap_or(core);
    let ok = !core.is_empty()
        && domain.len() <= MAX_HOST
        && core.split('.').all(|label| !label.is_empty())
        && core.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "domain {domain:?} is not a lowercase host-name pattern like \"example.com\", \
             \"example.\" or \".example.com\" (no empty label)"
        ))
    }
}

/// `addr` with all but the first `len` of its `width` bits cleared.
fn mask(addr: u128, len: u8, width: u8) -> u128 {
    match width.checked_sub(len) {
        Some(host_bits) if len > 0 => addr & u128::MAX.checked_shl(host_bits.into()).unwrap_or(0),
        _ => 0,
    }
}

impl Prefixes {
    /// Adds network `addr/len`; `Err` holds the application that already
    /// has it.
    fn insert(&mut self, addr: u128, len: u8, width: u8, app: u32) -> Result<(), u32> {
        if !self.levels.iter().any(|l| l.len == len) {
            self.levels.push(Level {
                len,
                nets: HashMap::default(),
            });
            self.levels.sort_unstable_by_key(|l| Reverse(l.len));
        }
        let Some(level) = self.levels.iter_mut().find(|l| l.len == len) else {
            return Ok(());
        };
        match level.nets.entry(mask(addr, len, width)) {
            MapEntry::Occupied(o) => Err(*o.get()),
            MapEntry::Vacant(v) => {
                v.insert(app);
                Ok(())
            }
        }
    }

    /// The application of the longest network holding `addr`, from the
    /// levels.
    fn longest(&self, addr: u128, width: u8) -> Option<u32> {
        self.levels
            .iter()
            .find_map(|l| l.nets.get(&mask(addr, l.len, width)).copied())
    }

    /// Cuts the address space at every network's first address and the
    /// one after its last: between two cuts the same networks hold every
    /// address, so one longest match answers for the whole range.
    fn index(&mut self, width: u8) {
        let top = u128::MAX >> (128 - u32::from(width));
        let mut cuts = vec![0];
        for l in &self.levels {
            let size = top.checked_shr(l.len.into()).unwrap_or(0);
            for &start in l.nets.keys() {
                cuts.push(start);
                cuts.extend((start + size).checked_add(1).filter(|&c| c <= top));
            }
        }
        cuts.sort_unstable();
        cuts.dedup();
        (self.starts, self.owners) = (Vec::new(), Vec::new());
        for cut in cuts {
            let owner = self.longest(cut, width);
            if self.owners.last() != Some(&owner) {
                self.starts.push(cut);
                self.owners.push(owner);
            }
        }
    }

    /// The application of the longest network holding `addr`: a binary
    /// search of the ranges.
    fn get(&self, addr: u128) -> Option<u32> {
        let i = self.starts.partition_point(|&s| s <= addr);
        self.owners.get(i.checked_sub(1)?).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Applications {
        Applications::builtin().unwrap()
    }

    fn parse(text: &str) -> Result<Applications, AppsError> {
        Applications::parse(text, "test.toml")
    }

    fn id_of(apps: &Applications, name: &str) -> u32 {
        let found = apps.apps.iter().find(|(_, a)| &*a.name == name);
        found
            .map(|(&id, _)| id)
            .unwrap_or_else(|| panic!("no application {name}"))
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&a);
        addr
    }

    fn v6(text: &str) -> [u8; 16] {
        text.parse::<std::net::Ipv6Addr>().unwrap().octets()
    }

    #[test]
    fn builtin_parses() {
        let apps = builtin();
        assert!(apps.len() >= 60, "{} applications", apps.len());
        assert!(!apps.is_empty());
    }

    /// Issue 17: at least 300 applications, each with a category nDPI
    /// has (not Unspecified) and a way to detect it.
    #[test]
    fn builtin_has_300_categorised_applications() {
        let apps = builtin();
        let all: Vec<AppInfo<'_>> = apps.iter().collect();
        assert!(all.len() >= 300, "{} applications", all.len());
        assert_eq!(all.len(), apps.len());
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        for a in &all {
            assert_ne!(a.category, Category::UNSPECIFIED, "{}", a.name);
            assert_eq!(Category::from_name(a.category.name()), Some(a.category));
            assert!(
                a.domains + a.networks > 0,
                "{}: no way to detect it",
                a.name
            );
            assert_eq!(apps.name(a.id), a.name);
        }
    }

    /// The hand-kept entries the generator merges with nDPI's data load by
    /// themselves, and the generated table keeps every one of them.
    #[test]
    fn hand_kept_entries_survive_generation() {
        let hand_text = include_str!("../../../conf/applications-hand.toml");
        let hand = parse(hand_text).unwrap();
        let apps = builtin();
        for a in hand.iter() {
            assert_eq!(apps.name(a.id), a.name);
            assert_eq!(apps.category(a.id), a.category, "{}", a.name);
        }
        let file: TableFile = toml::from_str(hand_text).unwrap();
        for t in file.application {
            let e: Entry = t.try_into().unwrap();
            for d in &e.domains {
                // A name the pattern matches in full.
                let host = format!(
                    "{}{d}{}",
                    if d.starts_with(is_sep) { "a" } else { "" },
                    if d.ends_with(is_sep) { "a" } else { "" }
                );
                assert_eq!(apps.by_host(&host), Some(e.id), "{}: {d}", e.name);
            }
        }
    }

    /// nDPI's host_match rule (ndpi_main.c, `ac_domain_match_handler`):
    /// the kinds of pattern hosts.tsv has, and which wins.
    #[test]
    fn ndpi_host_patterns() {
        let apps = parse(
            r#"
            [[application]]
            id = 1
            name = "Any"
            category = "Web"
            domains = ["example.", "-speedtest.", "cdn-"]
            [[application]]
            id = 2
            name = "Mail"
            category = "Email"
            domains = ["mail.example.", "example.com"]
            [[application]]
            id = 3
            name = "Dot"
            category = "Web"
            domains = [".zip.net", "-talk.example.com"]
            [[application]]
            id = 4
            name = "Zip"
            category = "Web"
            domains = ["zip.net"]
            [[application]]
            id = 5
            name = "Long"
            category = "Web"
            domains = ["a.b.mail.example.com"]
            "#,
        )
        .unwrap();
        let by = |host: &str| apps.by_host(host);
        // A trailing dot: any TLD, more labels, at a label or hyphen start.
        assert_eq!(by("example.org"), Some(1));
        assert_eq!(by("www.example.co.uk"), Some(1));
        assert_eq!(by("example.org.cdn.io"), Some(1));
        assert_eq!(by("my-example.org"), Some(1));
        assert_eq!(by("myexample.org"), None);
        assert_eq!(by("example"), None);
        assert_eq!(by("example."), None); // the host's trailing dot goes first
        // A suffix with more labels beats an inner pattern with fewer.
        assert_eq!(by("www.example.com"), Some(2));
        assert_eq!(by("example.com"), Some(2));
        // Equal labels: the pattern that ends first wins.
        assert_eq!(by("mail.example.com"), Some(2));
        assert_eq!(by("mail.example.co.uk"), Some(2));
        assert_eq!(by("x.a.b.mail.example.com"), Some(5));
        // The name itself always wins.
        assert_eq!(by("a.b.mail.example.com"), Some(5));
        // A hyphen is a boundary too, as in nDPI.
        assert_eq!(by("not-example.com"), Some(2));
        assert_eq!(by("notexample.com"), None);
        // Leading "." or "-": part of the pattern.
        assert_eq!(by("zip.net"), Some(4));
        assert_eq!(by("a.zip.net"), Some(3));
        assert_eq!(by("a-zip.net"), Some(4));
        assert_eq!(by("alt1-talk.example.com"), Some(3));
        assert_eq!(by("talk.example.com"), Some(2));
        assert_eq!(by("beta-speedtest.net"), Some(1));
        assert_eq!(by("speedtest.net"), None);
        // A trailing hyphen: a label that starts so.
        assert_eq!(by("cdn-7.foo.net"), Some(1));
        assert_eq!(by("x.cdn-7.foo.net"), Some(1));
        assert_eq!(by("mycdn-7.foo.net"), None);
        assert_eq!(by("cdn-"), Some(1));
        // Case and one trailing dot.
        assert_eq!(by("WWW.Example.CO.UK."), Some(1));
    }

    /// The built-in table on nDPI's own patterns.
    #[test]
    fn builtin_ndpi_patterns() {
        let apps = builtin();
        let name = |host: &str| apps.by_host(host).map(|id| apps.name(id));
        assert_eq!(name("www.amazon.co.uk"), Some("Amazon"));
        assert_eq!(name("www.google.de"), Some("Google"));
        assert_eq!(name("maps.google.fr"), Some("GoogleMaps"));
        assert_eq!(name("mail.google.lu"), Some("GMail"));
        // A hand-kept suffix with more labels wins, where nDPI has none.
        assert_eq!(name("mail.google.co.jp"), Some("Google"));
        assert_eq!(name("www.youtube.de"), Some("YouTube"));
        assert_eq!(name("scontent-mxp1-1.xx.fbcdn.net"), Some("FbookReelStory"));
        assert_eq!(name("static.fbcdn.net"), Some("Facebook"));
        assert_eq!(name("fbcdn-profile-a.xx.net"), Some("Facebook"));
        // The hand-kept "akamaihd.net" has more labels than "fbcdn-".
        assert_eq!(name("fbcdn-profile-a.akamaihd.net"), Some("Akamai"));
        assert_eq!(name("music.yandex.ru"), Some("YandexMusic"));
        assert_eq!(name("www.yandex.ru"), Some("Yandex"));
        assert_eq!(name("dns.google"), Some("DoH_DoT"));
        assert_eq!(name("googlezip.net"), Some("DataSaver"));
        assert_eq!(name("compress.googlezip.net"), Some("Google"));
        assert_eq!(name("www.dazn.com"), Some("Dazn"));
    }

    /// Ids that nDPI has given to another application since the 4.2 list
    /// of `flowstat_core::Protocol` (`protocol_table.rs`): the table has
    /// them as nDPI names them now (24 Tailscale, 33 YandexMail, 34
    /// YandexMusic, 56 YandexMarket, 57 YandexDisk, 59 AdobeConnect, 61
    /// Pluralsight, 62 YandexCloud, 98 YandexMetrika, 108 AdultContent,
    /// 201 GoogleMeet).
    const REASSIGNED: &[u32] = &[24, 33, 34, 56, 57, 59, 61, 62, 98, 108, 201];

    /// The rules the shipped file follows, checked on the raw entries (not
    /// through the loader, so they hold whatever the loader accepts).
    #[test]
    fn shipped_table_rules() {
        let file: TableFile = toml::from_str(BUILTIN).unwrap();
        let entries: Vec<Entry> = file
            .application
            .into_iter()
            .map(|t| t.try_into().unwrap())
            .collect();
        assert!(entries.len() >= 60, "{} applications", entries.len());
        let mut ids = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for e in &entries {
            assert!(ids.insert(e.id), "id {} twice", e.id);
            assert!(names.insert(e.name.to_lowercase()), "name {} twice", e.name);
            assert_ne!(e.id, 0);
            if e.id < 10_000 && !REASSIGNED.contains(&e.id) {
                let ndpi = flowstat_core::Protocol(u16::try_from(e.id).unwrap()).name();
                assert!(
                    ndpi == "Unknown" || e.name == ndpi,
                    "id {} is {ndpi:?} in nDPI",
                    e.id
                );
            }
            assert!(
                Category::from_name(&e.category).is_some(),
                "{}: category {}",
                e.name,
                e.category
            );
            assert!(
                !e.domains.is_empty() || !e.networks.is_empty(),
                "{}: no domains and no networks",
                e.name
            );
            for d in &e.domains {
                assert_eq!(*d, d.to_lowercase(), "{}: {d}", e.name);
                assert!(check_domain(d).is_ok(), "{}: {d}", e.name);
            }
            for n in &e.networks {
                let net: IpNet = n.parse().unwrap_or_else(|_| panic!("{}: {n}", e.name));
                assert_eq!(net, net.trunc(), "{}: {n} has host bits", e.name);
            }
        }
        // Entries are sorted by id, so the next free id is easy to find.
        assert!(entries.windows(2).all(|w| w[0].id < w[1].id));
    }

    /// Host names from the nDPI corpus (tests/fixtures/ndpi/*.pcap.out,
    /// `[Hostname/SNI: ...]`) get the application nDPI gives them.
    #[test]
    fn corpus_host_names() {
        let apps = builtin();
        // (capture, host name, nDPI's application)
        let named = [
            ("quic_0RTT.pcap", "ssl.gstatic.com", "Google"),
            ("http_ipv6.pcap", "www.google.it", "Google"),
            ("gquic.pcap", "www.gstatic.com", "Google"),
            ("dns.pcap", "www.l.google.com", "Google"),
            ("tls_alert.pcap", "www.google-analytics.com", "Google"),
            ("6in4tunnel.pcap", "star.c10r.facebook.com", "Facebook"),
            ("http_ipv6.pcap", "s-static.ak.facebook.com", "Facebook"),
            ("vxlan.pcap", "www.facebook.com", "Facebook"),
            ("vxlan.pcap", "facebook.com", "Facebook"),
            ("dns.pcap", "e7.whatsapp.net", "WhatsApp"),
            ("tls_2_reasms.pcapng", "i.instagram.com", "Instagram"),
            ("tls-rdn-extract.pcap", "ads1.msads.net", "Microsoft"),
            ("4in6tunnel.pcap", "www.bing.com", "Microsoft"),
            (
                "tls_ech.pcapng",
                "performance.radar.cloudflare.com",
                "Cloudflare",
            ),
            ("443-curl.pcap", "www.ntop.org", "ntop"),
            (
                "tls_multiple_synack_different_seq.pcapng",
                "bolt-prod-s3-eu-west-1.s3.eu-west-1.amazonaws.com",
                "AmazonAWS",
            ),
        ];
        for (capture, host, app) in named {
            let got = apps.by_host(host).map(|id| apps.name(id));
            assert_eq!(got, Some(app), "{capture}: {host}");
        }
        // Names nDPI gives no application.
        let unnamed = [
            "mail.tomasu.net",
            "weberlab.de",
            "fg2-mgmt.weberlab.de",
            "erfpop.de",
            "formel1.de",
            "www.xt.com",
            "sigok.verteiltesysteme.net",
            "pigeon.eyrie.af.mil",
            "va.origin.startappservice.com",
            "localhost",
            "abcd",
            "172.20.3.13",
        ];
        for host in unnamed {
            assert_eq!(apps.by_host(host), None, "{host}");
        }
    }

    /// Server addresses from the nDPI corpus (`[IP: n/Name]`).
    #[test]
    fn corpus_addresses() {
        let apps = builtin();
        // (capture, address, nDPI's `[IP: ...]` application)
        let named_v4 = [
            ("google_ssl.pcap", [216, 58, 212, 100], "Google"),
            ("gquic.pcap", [216, 58, 213, 163], "Google"),
            ("quic_0RTT.pcap", [142, 250, 181, 227], "Google"),
            ("dns_fragmented.pcap", [172, 217, 40, 76], "Google"),
            ("dns_fragmented.pcap", [173, 194, 169, 104], "Google"),
            ("dns_fragmented.pcap", [74, 125, 47, 136], "Google"),
            ("vxlan.pcap", [8, 8, 8, 8], "Google"),
            ("vxlan.pcap", [157, 240, 224, 35], "Facebook"),
            ("fuzz-2006-09-29-28586.pcap", [172, 70, 3, 5], "Cloudflare"),
            ("fuzz-2006-09-29-28586.pcap", [51, 20, 3, 5], "AmazonAWS"),
            ("openvpn.pcap", [3, 111, 166, 78], "AmazonAWS"),
            ("snmp.pcap", [35, 95, 158, 217], "AmazonAWS"),
            ("snmp.pcap", [65, 2, 162, 193], "AmazonAWS"),
            ("443-curl.pcap", [178, 62, 197, 130], "ntop"),
            ("openvpn.pcap", [217, 138, 197, 43], "NordVPN"),
        ];
        for (capture, a, app) in named_v4 {
            let got = apps.by_addr(4, &v4(a)).map(|id| apps.name(id));
            assert_eq!(got, Some(app), "{capture}: {a:?}");
        }
        let named_v6 = [
            ("http_ipv6.pcap", "2a00:1450:400b:c02::9a", "Google"),
            ("http_ipv6.pcap", "2a00:1450:4001:803::1017", "Google"),
            (
                "6in4tunnel.pcap",
                "2a03:2880:1010:6f03:face:b00c::2",
                "Facebook",
            ),
            (
                "6in4tunnel.pcap",
                "2a03:2880:fffe:b:face:b00c::99",
                "Facebook",
            ),
            ("tls_ech.pcapng", "2606:4700::6812:1e4e", "Cloudflare"),
            ("dns_fragmented.pcap", "2606:4700:4700::1111", "Cloudflare"),
        ];
        for (capture, a, app) in named_v6 {
            let got = apps.by_addr(6, &v6(a)).map(|id| apps.name(id));
            assert_eq!(got, Some(app), "{capture}: {a}");
        }
        // iqiyi.pcap's server (nDPI: IP 0/Unknown), private and NordVPN's
        // neighbour addresses.
        for a in [
            [116, 211, 199, 199],
            [192, 168, 1, 1],
            [10, 0, 0, 1],
            [217, 138, 197, 44],
        ] {
            assert_eq!(apps.by_addr(4, &v4(a)), None, "{a:?}");
        }
        assert_eq!(apps.by_addr(6, &v6("2001:db8::1")), None);
    }

    #[test]
    fn longest_suffix_wins() {
        let apps = builtin();
        let name = |host: &str| apps.by_host(host).map(|id| apps.name(id));
        assert_eq!(name("music.youtube.com"), Some("YouTube"));
        assert_eq!(name("docs.google.com"), Some("GoogleDocs"));
        assert_eq!(name("mail.google.com"), Some("GMail"));
        assert_eq!(name("calendar.google.com"), Some("Google"));
        assert_eq!(name("push.apple.com"), Some("ApplePush"));
        assert_eq!(name("1-courier.push.apple.com"), Some("ApplePush"));
        assert_eq!(name("secure.skypeassets.com"), Some("Teams"));
        assert_eq!(name("api.skypeassets.com"), Some("Skype_Teams"));
        assert_eq!(name("outlook.live.com"), Some("Hotmail"));
        assert_eq!(name("login.live.com"), Some("Microsoft"));

        // A table with a TLD-level entry.
        let apps = parse(
            r#"
            [[application]]
            id = 1
            name = "Com"
            category = "Web"
            domains = ["com"]
            [[application]]
            id = 2
            name = "YouTube"
            category = "Media"
            domains = ["youtube.com"]
            [[application]]
            id = 3
            name = "Music"
            category = "Music"
            domains = ["music.youtube.com"]
            "#,
        )
        .unwrap();
        assert_eq!(apps.by_host("music.youtube.com"), Some(3));
        assert_eq!(apps.by_host("eu.music.youtube.com"), Some(3));
        assert_eq!(apps.by_host("www.youtube.com"), Some(2));
        assert_eq!(apps.by_host("youtube.com"), Some(2));
        assert_eq!(apps.by_host("notyoutube.com"), Some(1)); // a label match, not a string one
        assert_eq!(apps.by_host("com"), Some(1));
        assert_eq!(apps.by_host("youtube.org"), None);
    }

    #[test]
    fn host_name_forms() {
        let apps = builtin();
        let google = Some(id_of(&apps, "Google"));
        assert_eq!(apps.by_host("WWW.Google.COM"), google);
        assert_eq!(apps.by_host("www.google.com."), google);
        assert_eq!(apps.by_host("notgoogle.com"), None);
        // nDPI's "google." matches any TLD, and more labels after it.
        assert_eq!(apps.by_host("google.com.evil.example"), google);
        let only_suffix = parse(
            "[[application]]\nid = 1\nname = \"One\"\ncategory = \"Web\"\n\
             domains = [\"example.com\"]\n",
        )
        .unwrap();
        assert_eq!(only_suffix.by_host("www.example.com."), Some(1));
        assert_eq!(only_suffix.by_host("www.example.com.."), None); // one dot only
        assert_eq!(only_suffix.by_host("example.com.evil.example"), None);
        assert_eq!(apps.by_host(""), None);
        assert_eq!(apps.by_host("."), None);
        assert_eq!(apps.by_host("..."), None);
        assert_eq!(apps.by_host("ÄÖ.google.com"), google);
        // "google." matches inside it, as in nDPI.
        assert_eq!(apps.by_host("www.GOOGLE.com\u{0}"), google);
        assert_eq!(apps.by_host("www.github.com\u{0}"), None);
        // The longest name allowed, and one byte more.
        let long = format!("{}.google.com", "a".repeat(MAX_HOST - ".google.com".len()));
        // Every probe of a long name of many labels and hyphens: no panic.
        let _ = apps.by_host(&"a-.".repeat(MAX_HOST / 3));
        assert_eq!(long.len(), MAX_HOST);
        assert_eq!(apps.by_host(&long), google);
        assert_eq!(apps.by_host(&format!("{long}.")), google);
        assert_eq!(apps.by_host(&format!("a{long}")), None);
        assert_eq!(apps.by_host(&".".repeat(10_000)), None);
        // Every prefix and suffix of an odd name: no panic.
        let odd = "x.ÄÖ..Www.GooGle.com.\u{0}.é";
        for (i, _) in odd.char_indices() {
            let _ = apps.by_host(&odd[..i]);
            let _ = apps.by_host(&odd[i..]);
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let apps = parse(
            r#"
            [[application]]
            id = 1
            name = "Eight"
            category = "Network"
            domains = ["eight.example"]
            networks = ["10.0.0.0/8", "2001:db8::/32"]
            [[application]]
            id = 2
            name = "Sixteen"
            category = "Network"
            networks = ["10.1.0.0/16", "2001:db8:1::/48"]
            [[application]]
            id = 3
            name = "Host"
            category = "Network"
            networks = ["10.1.2.3/32", "2001:db8:1::1/128", "255.255.255.255/32"]
            "#,
        )
        .unwrap();
        assert_eq!(apps.by_addr(4, &v4([10, 9, 9, 9])), Some(1));
        assert_eq!(apps.by_addr(4, &v4([10, 1, 9, 9])), Some(2));
        assert_eq!(apps.by_addr(4, &v4([10, 1, 2, 3])), Some(3));
        assert_eq!(apps.by_addr(4, &v4([10, 1, 2, 4])), Some(2));
        // Either side of each network's edges.
        assert_eq!(apps.by_addr(4, &v4([10, 1, 2, 2])), Some(2));
        assert_eq!(apps.by_addr(4, &v4([10, 2, 0, 0])), Some(1));
        assert_eq!(apps.by_addr(4, &v4([10, 0, 255, 255])), Some(1));
        assert_eq!(apps.by_addr(4, &v4([9, 255, 255, 255])), None);
        assert_eq!(apps.by_addr(4, &v4([0, 0, 0, 0])), None);
        assert_eq!(apps.by_addr(4, &v4([255, 255, 255, 254])), None);
        assert_eq!(apps.by_addr(4, &v4([11, 0, 0, 0])), None);
        assert_eq!(apps.by_addr(4, &v4([255, 255, 255, 255])), Some(3));
        // Bytes past the IPv4 address do not matter.
        let mut addr = v4([10, 1, 2, 3]);
        addr[4..].fill(0xff);
        assert_eq!(apps.by_addr(4, &addr), Some(3));
        assert_eq!(apps.by_addr(6, &v6("2001:db8:ffff::1")), Some(1));
        assert_eq!(apps.by_addr(6, &v6("2001:db8:1::2")), Some(2));
        assert_eq!(apps.by_addr(6, &v6("2001:db8:1::1")), Some(3));
        assert_eq!(apps.by_addr(6, &v6("2001:db9::1")), None);
        // An IPv4 network does not match the same bits as IPv6, nor the
        // reverse.
        assert_eq!(apps.by_addr(6, &v4([10, 1, 2, 3])), None);
        assert_eq!(apps.by_addr(4, &v6("2001:db8::")), None);
        assert_eq!(apps.by_addr(0, &v4([10, 1, 2, 3])), None);
        assert_eq!(apps.by_addr(5, &v4([10, 1, 2, 3])), None);
    }

    #[test]
    fn names_and_categories() {
        let apps = builtin();
        assert_eq!(apps.name(126), "Google");
        assert_eq!(apps.category(126).name(), "Web");
        assert_eq!(apps.category(126).id(), 5);
        assert_eq!(apps.category(133).name(), "Video");
        assert_eq!(apps.category(0), Category::UNSPECIFIED);
        assert_eq!(apps.name(0), "Unknown");
        assert_eq!(apps.name(9_999_999), "Unknown");
        assert_eq!(apps.category(9_999_999), Category::UNSPECIFIED);
        let empty = Applications::default();
        assert_eq!(empty.name(126), "Unknown");
        assert_eq!(empty.by_host("www.google.com"), None);
        assert_eq!(empty.by_addr(4, &v4([8, 8, 8, 8])), None);
        assert!(parse("").unwrap().is_empty());
    }

    /// An entry after a good one, and what its error must say.
    fn error(entry: &str) -> String {
        let text = format!(
            "[[application]]\nid = 1\nname = \"One\"\ncategory = \"Web\"\n\
             domains = [\"one.example\"]\nnetworks = [\"192.0.2.0/24\"]\n\n[[application]]\n{entry}"
        );
        let e = parse(&text)
            .err()
            .unwrap_or_else(|| panic!("accepted {entry}"));
        let msg = e.to_string();
        assert!(msg.starts_with("test.toml: "), "{msg}");
        msg
    }

    #[test]
    fn entry_errors_name_the_entry_and_reason() {
        let entry = |extra: &str| format!("id = 2\nname = \"Two\"\ncategory = \"Web\"\n{extra}");
        let cases = [
            (
                entry("domain = [\"two.example\"]"),
                "unknown field `domain`",
            ),
            (
                entry("domains = [\"one.example\"]"),
                "domain \"one.example\" is already claimed by \"One\" (id 1)",
            ),
            (
                entry("domains = [\"two.example\", \"two.example\"]"),
                "already claimed by \"Two\" (id 2)",
            ),
            (
                entry("domains = [\"Two.example\"]"),
                "not a lowercase host-name pattern",
            ),
            (
                entry("domains = [\"..two.example\"]"),
                "not a lowercase host-name pattern",
            ),
            (
                entry("domains = [\"two.example..\"]"),
                "not a lowercase host-name pattern",
            ),
            (
                entry("domains = [\"two..example\"]"),
                "not a lowercase host-name pattern",
            ),
            (
                entry("domains = [\"\"]"),
                "not a lowercase host-name pattern",
            ),
            (
                entry("domains = [\"-\"]"),
                "not a lowercase host-name pattern",
            ),
            (
                entry("domains = [\"-.two\"]"),
                "not a lowercase host-name pattern",
            ),
            (
                entry("domains = [\"two.*\"]"),
                "not a lowercase host-name pattern",
            ),
            (
                entry("networks = [\"192.0.2.0/24\"]"),
                "network 192.0.2.0/24 is already claimed by \"One\"",
            ),
            (
                entry("networks = [\"192.0.2.300/24\"]"),
                "not an IPv4 or IPv6 CIDR",
            ),
            (
                entry("networks = [\"192.0.2.0\"]"),
                "not an IPv4 or IPv6 CIDR",
            ),
            (
                entry("networks = [\"192.0.2.1/24\"]"),
                "has host bits set (the network is 192.0.2.0/24)",
            ),
            (entry("networks = [\"::/0\"]"), "covers every address"),
            (entry("networks = \"192.0.3.0/24\""), "invalid type"),
        ];
        for (text, reason) in cases {
            let msg = error(&text);
            assert!(msg.contains("application #2 (id 2, \"Two\"): "), "{msg}");
            assert!(msg.contains(reason), "{msg} lacks {reason}");
        }
        let msg = error("id = 1\nname = \"Two\"\ncategory = \"Web\"");
        assert!(
            msg.contains("#2 (id 1, \"Two\"): id 1 is already used by \"One\""),
            "{msg}"
        );
        let msg = error("id = 2\nname = \"one\"\ncategory = \"Web\"");
        assert!(
            msg.contains("name \"one\" is already used by id 1"),
            "{msg}"
        );
        let msg = error("id = 2\nname = \" \"\ncategory = \"Web\"");
        assert!(msg.contains("empty name"), "{msg}");
        let msg = error("id = 2\nname = \"Two\"\ncategory = \"\"");
        assert!(
            msg.contains("category \"\" is not one of nDPI's: "),
            "{msg}"
        );
        let msg = error("id = 2\nname = \"Two\"\ncategory = \"web\"");
        assert!(
            msg.contains("category \"web\" is not one of nDPI's: Unspecified, Media, VPN"),
            "{msg}"
        );
        let msg = error("id = 0\nname = \"Two\"\ncategory = \"Web\"");
        assert!(msg.contains("id 0 means Unknown"), "{msg}");
        let msg = error("id = -2\nname = \"Two\"\ncategory = \"Web\"");
        assert!(msg.contains("#2 (id -2, \"Two\"): invalid value"), "{msg}");
        let msg = error("name = \"Two\"\ncategory = \"Web\"");
        assert!(msg.contains("#2 (\"Two\"): missing field `id`"), "{msg}");
        let msg = error("category = \"Web\"");
        assert!(msg.contains("application #2: missing field"), "{msg}");
    }

    #[test]
    fn file_errors() {
        let msg = parse("[[application]\nid = 1").err().unwrap().to_string();
        assert!(
            msg.starts_with("test.toml: ") && msg.contains("line 1"),
            "{msg}"
        );
        let msg = parse("[[app]]\nid = 1").err().unwrap().to_string();
        assert!(msg.contains("unknown field `app`"), "{msg}");
        let msg = parse("application = 3").err().unwrap().to_string();
        assert!(msg.contains("invalid type"), "{msg}");
    }

    #[test]
    fn load_reads_the_file_and_names_it() {
        let dir = std::env::temp_dir().join(format!("flowstat-apps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("applications.toml");
        std::fs::write(&path, BUILTIN).unwrap();
        assert_eq!(Applications::load(&path).unwrap().len(), builtin().len());
        std::fs::write(
            &path,
            "[[application]]\nid = 7\nname = \"Seven\"\ncategory = \"Web\"\nbad = 1\n",
        )
        .unwrap();
        let msg = Applications::load(&path).err().unwrap().to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(
            msg.contains("application #1 (id 7, \"Seven\"): unknown field `bad`"),
            "{msg}"
        );
        std::fs::remove_file(&path).unwrap();
        let msg = Applications::load(&path).err().unwrap().to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn mask_bounds() {
        assert_eq!(mask(u128::MAX, 0, 128), 0);
        assert_eq!(mask(u128::MAX, 128, 128), u128::MAX);
        assert_eq!(mask(0xffff_ffff, 32, 32), 0xffff_ffff);
        assert_eq!(mask(0xffff_ffff, 8, 32), 0xff00_0000);
        assert_eq!(mask(0xffff_ffff, 33, 32), 0); // never asked; no panic
    }
}

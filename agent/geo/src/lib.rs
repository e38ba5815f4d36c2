//! flowstat-geo: what is known about an address (its autonomous system,
//! by number and name, and its country) from databases configured by path.
//!
//! Each database is a MaxMind DB (GeoLite2-ASN, GeoLite2-Country and DB-IP
//! lite share the format) or a plain prefix table, tab-separated text
//! matched by longest prefix: `CIDR<TAB>ASN<TAB>name` for ASNs,
//! `CIDR<TAB>CC` for countries. A file is read as a MaxMind DB when its
//! name ends in `.mmdb` or its content carries the MaxMind metadata marker,
//! and as a prefix table otherwise.
//!
//! [`GeoDb::open`] reads each file whole and checks it (a MaxMind DB is
//! verified through, a table parsed line by line), so a missing, truncated
//! or corrupt file is an error naming the file, never an odd answer later.
//! Lookups then do no I/O and no allocation; their strings are borrowed
//! from the database. The crate knows nothing of flows: the caller decides
//! when to look up (flowstat: when a `flow` record is encoded, never per
//! packet) and reloads by opening anew.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod mmdb;
mod table;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use serde::Deserialize;

use crate::mmdb::Mmdb;
use crate::table::{AsnTable, CountryTable, TableError};

/// The address databases, shared by every reader and swapped whole when
/// they are reloaded (SIGHUP): a reader never waits.
pub type SharedGeo = Arc<ArcSwap<GeoDb>>;

/// What the databases know about one address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GeoInfo<'a> {
    /// Number of the autonomous system announcing the address.
    pub asn: Option<u32>,
    /// Name of that autonomous system (its organisation).
    pub as_name: Option<&'a str>,
    /// Country, as an ISO 3166 alpha-2 code (`DE`).
    pub country: Option<&'a str>,
}

/// `[geo]` config section: the databases, by path. Without any, lookups
/// are empty.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct GeoConfig {
    /// ASN database: a MaxMind DB (GeoLite2-ASN, DB-IP ASN lite) or a
    /// prefix table of `CIDR<TAB>ASN<TAB>name` lines.
    pub asn: Option<PathBuf>,
    /// Country database: a MaxMind DB (GeoLite2-Country, DB-IP country
    /// lite) or a prefix table of `CIDR<TAB>CC` lines.
    pub country: Option<PathBuf>,
}

/// Why a database could not be loaded. Every message starts with the file.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The file is not a valid MaxMind DB (truncated, corrupt).
    #[error("{}: not a valid MaxMind database: {source}", path.display())]
    Mmdb {
        /// The file.
        path: PathBuf,
        /// What the reader found wrong.
        source: maxminddb::MaxMindDbError,
    },
    /// A line of a prefix table is wrong.
    #[error("{}: line {line}: {reason}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A prefix table with no prefix in it.
    #[error("{}: no prefix in it (expected lines of {format})", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
        /// The line format expected.
        format: &'static str,
    },
}

impl GeoError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            GeoError::Read { path, .. }
            | GeoError::Mmdb { path, .. }
            | GeoError::Line { path, .. }
            | GeoError::Empty { path, .. } => path,
        }
    }
}

/// One database: a MaxMind DB, or a prefix table `T`.
enum Source<T> {
    Mmdb(Mmdb),
    Table(T),
}

/// The configured databases, loaded; cheap to share (put in an Arc).
pub struct GeoDb {
    asn: Option<Source<AsnTable>>,
    country: Option<Source<CountryTable>>,
}

impl GeoDb {
    /// No databases: every lookup is empty.
    pub fn empty() -> GeoDb {
        GeoDb {
            asn: None,
            country: None,
        }
    }

    /// Loads the configured files; an error names the file and what is
    /// wrong.
    pub fn open(config: &GeoConfig) -> Result<GeoDb, GeoError> {
        Ok(GeoDb {
            asn: config
                .asn
                .as_deref()
                .map(|p| load(p, AsnTable::FORMAT, AsnTable::parse))
                .transpose()?,
            country: config
                .country
                .as_deref()
                .map(|p| load(p, CountryTable::FORMAT, CountryTable::parse))
                .transpose()?,
        })
    }

    /// What the databases know about a flow's local and other address
    /// (SPEC 4): the local one is looked up only when it is public (a
    /// private address is the operator's own, and no database knows it).
    pub fn flow_sides(&self, local: IpAddr, local_public: bool, other: IpAddr) -> [GeoInfo<'_>; 2] {
        let local = if local_public {
            self.lookup(local)
        } else {
            GeoInfo::default()
        };
        [local, self.lookup(other)]
    }

    /// What the databases know about `ip`. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`) is looked up as the IPv4 address it carries.
    pub fn lookup(&self, ip: IpAddr) -> GeoInfo<'_> {
        let ip = ip.to_canonical();
        let (asn, as_name) = match &self.asn {
            Some(Source::Mmdb(db)) => db.asn(ip),
            Some(Source::Table(t)) => t.get(ip),
            None => (None, None),
        };
        let country = match &self.country {
            Some(Source::Mmdb(db)) => db.country(ip),
            Some(Source::Table(t)) => t.get(ip),
            None => None,
        };
        GeoInfo {
            asn,
            as_name,
            country,
        }
    }

    /// True when no database is configured.
    pub fn is_empty(&self) -> bool {
        self.asn.is_none() && self.country.is_none()
    }
}

impl fmt::Debug for GeoDb {
    /// Which databases are loaded, and what they are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn describe<T>(source: &Option<Source<T>>, len: fn(&T) -> usize) -> String {
            match source {
                None => "none".into(),
                Some(Source::Mmdb(db)) => format!("MaxMind DB {}", db.database_type()),
                Some(Source::Table(t)) => format!("table of {} prefixes", len(t)),
            }
        }
        f.debug_struct("GeoDb")
            .field("asn", &describe(&self.asn, AsnTable::len))
            .field("country", &describe(&self.country, CountryTable::len))
            .finish()
    }
}

/// Reads `path` as a MaxMind DB or, failing the signs of one, as a prefix
/// table of lines in `format`, read by `parse`.
fn load<T>(
    path: &Path,
    format: &'static str,
    parse: fn(&str) -> Result<T, TableError>,
) -> Result<Source<T>, GeoError> {
    let bytes = std::fs::read(path).map_err(|source| GeoError::Read {
        path: path.to_owned(),
        source,
    })?;
    if path.extension().is_some_and(|e| e == "mmdb") || mmdb::looks_like_mmdb(&bytes) {
        return Mmdb::load(bytes)
            .map(Source::Mmdb)
            .map_err(|source| GeoError::Mmdb {
                path: path.to_owned(),
                source,
            });
    }
    table::text(&bytes)
        .and_then(parse)
        .map(Source::Table)
        .map_err(|e| match e {
            TableError::Line(line, reason) => GeoError::Line {
                path: path.to_owned(),
                line,
                reason,
            },
            TableError::Empty => GeoError::Empty {
                path: path.to_owned(),
                format,
            },
        })
}

#[cfg(test)]
mod tests;

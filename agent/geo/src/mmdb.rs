//! MaxMind DB files: GeoLite2-ASN and GeoLite2-Country, DB-IP's lite
//! databases (the same format and field names), GeoIP2 ISP and City.

use std::net::IpAddr;

use maxminddb::{MaxMindDbError, Reader, geoip2};

/// What starts a MaxMind DB's metadata, near the end of the file.
const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";

/// Whether `bytes` look like a MaxMind DB (they hold its metadata marker).
pub(crate) fn looks_like_mmdb(bytes: &[u8]) -> bool {
    memchr::memmem::rfind(bytes, METADATA_MARKER).is_some()
}

/// A MaxMind DB, read into memory and verified.
pub(crate) struct Mmdb(Reader<Vec<u8>>);

impl Mmdb {
    /// Checks the whole database (its metadata, search tree and data), so
    /// that a truncated or corrupt file is refused here rather than giving
    /// odd answers later.
    pub(crate) fn load(bytes: Vec<u8>) -> Result<Mmdb, MaxMindDbError> {
        let reader = Reader::from_source(bytes)?;
        reader.verify()?;
        Ok(Mmdb(reader))
    }

    /// `autonomous_system_number` and `autonomous_system_organization`.
    pub(crate) fn asn(&self, ip: IpAddr) -> (Option<u32>, Option<&str>) {
        match self
            .0
            .lookup(ip)
            .and_then(|r| r.decode::<geoip2::Asn<'_>>())
        {
            Ok(Some(asn)) => (
                asn.autonomous_system_number,
                asn.autonomous_system_organization,
            ),
            _ => (None, None),
        }
    }

    /// `country.iso_code`, else `registered_country.iso_code` (networks
    /// such as anycast or satellite ranges have only the latter).
    pub(crate) fn country(&self, ip: IpAddr) -> Option<&str> {
        let record = self
            .0
            .lookup(ip)
            .and_then(|r| r.decode::<geoip2::Country<'_>>())
            .ok()??;
        record
            .country
            .iso_code
            .or(record.registered_country.iso_code)
    }

    /// The database's `database_type` (`GeoLite2-ASN`, ...).
    pub(crate) fn database_type(&self) -> &str {
        &self.0.metadata().database_type
    }
}

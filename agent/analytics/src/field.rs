//! The flow fields a definition groups by and filters on, and the compact
//! byte form of a key: what workers hash (once per flow, while its fields
//! stay), and what the reducer turns back into JSON for the few keys it
//! shows. Keys compare as their fields do, field by field (names as
//! strings, numbers and addresses by value), which is how ties are
//! ordered.

use std::net::{IpAddr, Ipv6Addr};

use std::fmt::Write as _;

use flowstat_core::analytics::KeyJson;
use flowstat_core::{FlowView, SourceInfo, mac_text};
use flowstat_geo::GeoInfo;

/// A flow as the analytics see it: the view, its source, and what the
/// worker remembers of it after detection let go of its metadata.
#[derive(Clone, Copy)]
pub(crate) struct FlowCtx<'a> {
    pub source: &'a SourceInfo<'a>,
    pub view: &'a FlowView<'a>,
    /// `host_server_name`, kept from the flow's `flow` record.
    pub host: &'a str,
    /// What the address databases know of the local and the other
    /// address (looked up only when a definition reads it).
    pub geo: [GeoInfo<'a>; 2],
}

/// A flow field usable as a key or in a filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `detected_application_name`.
    Application,
    /// `detected_protocol_name`.
    Protocol,
    /// The application's category name (nDPI's: `Web`, `Video`, ...).
    Category,
    /// The capture interface (or file).
    Interface,
    /// `local_ip`.
    LocalIp,
    /// `other_ip`.
    OtherIp,
    /// `local_port`.
    LocalPort,
    /// `other_port`.
    OtherPort,
    /// `ip_protocol`.
    IpProtocol,
    /// `ip_version`.
    IpVersion,
    /// `vlan_id`.
    VlanId,
    /// `local_mac`.
    LocalMac,
    /// `other_mac`.
    OtherMac,
    /// `other_type`.
    OtherType,
    /// `host_server_name`.
    HostServerName,
    /// `local_asn` (0 when unknown).
    LocalAsn,
    /// `other_asn` (0 when unknown).
    OtherAsn,
    /// `local_as_name`.
    LocalAsName,
    /// `other_as_name`.
    OtherAsName,
    /// `local_country` (ISO 3166 alpha-2).
    LocalCountry,
    /// `other_country`.
    OtherCountry,
}

/// What a field's values are.
enum Kind {
    Text,
    Number,
    Ip,
    Mac,
}

impl Field {
    /// Every field, for error messages.
    pub const ALL: [Field; 21] = [
        Field::Application,
        Field::Protocol,
        Field::Category,
        Field::Interface,
        Field::LocalIp,
        Field::OtherIp,
        Field::LocalPort,
        Field::OtherPort,
        Field::IpProtocol,
        Field::IpVersion,
        Field::VlanId,
        Field::LocalMac,
        Field::OtherMac,
        Field::OtherType,
        Field::HostServerName,
        Field::LocalAsn,
        Field::OtherAsn,
        Field::LocalAsName,
        Field::OtherAsName,
        Field::LocalCountry,
        Field::OtherCountry,
    ];

    /// The field's name in the config and in keys.
    pub const fn name(self) -> &'static str {
        match self {
            Field::Application => "application",
            Field::Protocol => "protocol",
            Field::Category => "category",
            Field::Interface => "interface",
            Field::LocalIp => "local_ip",
            Field::OtherIp => "other_ip",
            Field::LocalPort => "local_port",
            Field::OtherPort => "other_port",
            Field::IpProtocol => "ip_protocol",
            Field::IpVersion => "ip_version",
            Field::VlanId => "vlan_id",
            Field::LocalMac => "local_mac",
            Field::OtherMac => "other_mac",
            Field::OtherType => "other_type",
            Field::HostServerName => "host_server_name",
            Field::LocalAsn => "local_asn",
            Field::OtherAsn => "other_asn",
            Field::LocalAsName => "local_as_name",
            Field::OtherAsName => "other_as_name",
            Field::LocalCountry => "local_country",
            Field::OtherCountry => "other_country",
        }
    }

    /// Whether the field comes from the address databases.
    pub(crate) const fn is_geo(self) -> bool {
        matches!(
            self,
            Field::LocalAsn
                | Field::OtherAsn
                | Field::LocalAsName
                | Field::OtherAsName
                | Field::LocalCountry
                | Field::OtherCountry
        )
    }

    /// Whether a field has few values on any network: names, protocol
    /// numbers, VLANs, ASes (not addresses, ports, MACs or host names).
    /// Flows that agree on such fields are counted as one class.
    pub(crate) const fn is_few(self) -> bool {
        !matches!(
            self,
            Field::LocalIp
                | Field::OtherIp
                | Field::LocalPort
                | Field::OtherPort
                | Field::LocalMac
                | Field::OtherMac
                | Field::HostServerName
        )
    }

    /// The length of this field's value at the front of `key`.
    pub(crate) fn span(self, key: &[u8]) -> usize {
        match self.kind() {
            Kind::Text => {
                // Up to and with the 0 0 end; a 0 inside is 0 1.
                let mut i = 0;
                while i + 1 < key.len() && !(key[i] == 0 && key[i + 1] == 0) {
                    i += if key[i] == 0 { 2 } else { 1 };
                }
                (i + 2).min(key.len())
            }
            Kind::Number => 8,
            Kind::Ip => 1 + if key.first() == Some(&4) { 4 } else { 16 },
            Kind::Mac => 6,
        }
    }

    /// The field named `name`.
    pub fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    const fn kind(self) -> Kind {
        match self {
            Field::Application
            | Field::Protocol
            | Field::Category
            | Field::Interface
            | Field::OtherType
            | Field::HostServerName
            | Field::LocalAsName
            | Field::OtherAsName
            | Field::LocalCountry
            | Field::OtherCountry => Kind::Text,
            Field::LocalPort
            | Field::OtherPort
            | Field::IpProtocol
            | Field::IpVersion
            | Field::VlanId
            | Field::LocalAsn
            | Field::OtherAsn => Kind::Number,
            Field::LocalIp | Field::OtherIp => Kind::Ip,
            Field::LocalMac | Field::OtherMac => Kind::Mac,
        }
    }

    /// Appends the flow's value of this field, in key form.
    pub(crate) fn encode(self, flow: &FlowCtx<'_>, key: &mut Vec<u8>) {
        let v = flow.view;
        match self {
            Field::Application => text(key, v.detection.application_name),
            Field::Protocol => text(key, v.detection.protocol.name()),
            Field::Category => text(key, v.detection.category.name()),
            Field::Interface => text(key, flow.source.interface),
            Field::OtherType => text(key, v.other_type.as_str()),
            Field::HostServerName => text(key, flow.host),
            Field::LocalIp => ip(key, v.local.ip),
            Field::OtherIp => ip(key, v.other.ip),
            Field::LocalPort => number(key, v.local.port.into()),
            Field::OtherPort => number(key, v.other.port.into()),
            Field::IpProtocol => number(key, v.ip_protocol.into()),
            Field::IpVersion => number(key, v.ip_version.into()),
            Field::VlanId => number(key, v.vlan_id.into()),
            Field::LocalMac => key.extend_from_slice(&v.local.mac),
            Field::OtherMac => key.extend_from_slice(&v.other.mac),
            Field::LocalAsn => number(key, flow.geo[0].asn.unwrap_or(0).into()),
            Field::OtherAsn => number(key, flow.geo[1].asn.unwrap_or(0).into()),
            Field::LocalAsName => text(key, flow.geo[0].as_name.unwrap_or("")),
            Field::OtherAsName => text(key, flow.geo[1].as_name.unwrap_or("")),
            Field::LocalCountry => text(key, flow.geo[0].country.unwrap_or("")),
            Field::OtherCountry => text(key, flow.geo[1].country.unwrap_or("")),
        }
    }

    /// The key form of a filter's `value` for this field, or what is
    /// wrong with it.
    pub(crate) fn encode_value(self, value: &str) -> Result<Vec<u8>, String> {
        let mut key = Vec::new();
        match self.kind() {
            Kind::Text => text(&mut key, value),
            Kind::Number => number(
                &mut key,
                value
                    .parse()
                    .map_err(|_| format!("{value:?} is not a number"))?,
            ),
            Kind::Ip => ip(
                &mut key,
                value
                    .parse()
                    .map_err(|_| format!("{value:?} is not an IP address"))?,
            ),
            Kind::Mac => key.extend_from_slice(&parse_mac(value)?),
        }
        Ok(key)
    }

    /// Reads this field's value from the front of `key`, and writes it to
    /// `out` as JSON.
    fn write_json(self, key: &mut &[u8], out: &mut String) {
        match self.kind() {
            Kind::Text => {
                let len = self.span(key);
                let mut s = Vec::with_capacity(len);
                let mut bytes = key[..len.saturating_sub(2)].iter();
                while let Some(&b) = bytes.next() {
                    s.push(b);
                    if b == 0 {
                        bytes.next();
                    }
                }
                *key = &key[len..];
                let s = String::from_utf8_lossy(&s);
                out.push_str(&serde_json::to_string(&s).unwrap_or_default());
            }
            Kind::Number => out.push_str(itoa::Buffer::new().format(u64::from_be_bytes(take(key)))),
            Kind::Ip => {
                out.push('"');
                let [version] = take(key);
                if version == 4 {
                    // Four numbers: faster than the formatter, once per row.
                    for (i, octet) in take::<4>(key).into_iter().enumerate() {
                        if i > 0 {
                            out.push('.');
                        }
                        out.push_str(itoa::Buffer::new().format(octet));
                    }
                } else {
                    let _ = write!(out, "{}", Ipv6Addr::from(take::<16>(key)));
                }
                out.push('"');
            }
            Kind::Mac => {
                out.push('"');
                out.extend(mac_text(take(key)).map(char::from));
                out.push('"');
            }
        }
    }
}

/// The key made by encoding `fields` in order, as a JSON object of them.
pub(crate) fn decode_key(fields: &[Field], mut key: &[u8]) -> KeyJson {
    let mut out = String::with_capacity(16 + 32 * fields.len());
    out.push('{');
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(f.name());
        out.push_str("\":");
        f.write_json(&mut key, &mut out);
    }
    out.push('}');
    // Names go through serde_json, numbers and addresses need no quoting.
    KeyJson::new(out).unwrap_or_else(|e| unreachable!("a key is JSON: {e}"))
}

/// A name: its bytes, a zero byte written as 0 1, then 0 0. Shorter names
/// sort first, as strings do.
fn text(key: &mut Vec<u8>, s: &str) {
    let s = s.as_bytes();
    if s.contains(&0) {
        for &b in s {
            match b {
                0 => key.extend_from_slice(&[0, 1]),
                b => key.push(b),
            }
        }
    } else {
        key.extend_from_slice(s);
    }
    key.extend_from_slice(&[0, 0]);
}

/// A number, big-endian: keys sort by value.
fn number(key: &mut Vec<u8>, n: u64) {
    key.extend_from_slice(&n.to_be_bytes());
}

fn ip(key: &mut Vec<u8>, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => {
            key.push(4);
            key.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            key.push(6);
            key.extend_from_slice(&a.octets());
        }
    }
}

fn take<const N: usize>(key: &mut &[u8]) -> [u8; N] {
    let (head, rest) = key.split_at(N);
    *key = rest;
    head.try_into().unwrap_or([0; N])
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)");
    let mut mac = [0; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next().ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(mac)
}

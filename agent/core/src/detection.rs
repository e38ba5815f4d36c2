//! The contract between the flow table and payload inspection (DPI), and
//! the metadata DPI hands to the `flow` record (SPEC section 4).

use crate::{Category, PacketMeta, Protocol};

/// What a [`Classifier`] is told about the flow it examines, oriented from
/// the client (originator) to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowInfo {
    /// 4 or 6.
    pub ip_version: u8,
    /// IP protocol number.
    pub ip_protocol: u8,
    /// Client address (16 bytes; IPv4 in the first 4).
    pub client_ip: [u8; 16],
    /// Client port, 0 for protocols without ports.
    pub client_port: u16,
    /// Server address.
    pub server_ip: [u8; 16],
    /// Server port.
    pub server_port: u16,
    /// TCP: the sequence number the flow table expects next from the
    /// client and from the server, once it has seen a segment from that
    /// side (a SYN or a bare ACK will do); `None` before, and for other
    /// protocols.
    pub tcp_next: [Option<u32>; 2],
}

/// A classifier's answer for a flow: what the `flow` record reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Detected protocol ([`Protocol::UNKNOWN`] when none).
    pub protocol: Protocol,
    /// Detected application id (0 when none).
    pub application: u32,
    /// True when the protocol came from a port or other fallback, not
    /// from payload.
    pub guessed: bool,
    /// True when the application came from the DNS cache (Netify's
    /// `dhc_hit`: an earlier DNS answer named the server's address).
    pub dns_cache_hit: bool,
}

/// Payload inspection as the flow table drives it.
///
/// The table creates the per-flow state on the first packet of a flow
/// that carries payload, passes every packet to [`Classifier::inspect`]
/// until it answers `true` (nothing more to learn) or the flow has had
/// `max_detection_packets` packets, then asks [`Classifier::outcome`]
/// once more and drops the state. It may also ask for the outcome earlier
/// (a `flow` record due at a tick before detection has finished).
pub trait Classifier {
    /// Per-flow detection state; dropped when detection ends.
    type State;

    /// State for a new flow.
    fn start(&mut self, flow: &FlowInfo) -> Self::State;

    /// Examines one packet of the flow (`from_client` tells its
    /// direction). Returns true when detection is complete.
    fn inspect(
        &mut self,
        state: &mut Self::State,
        flow: &FlowInfo,
        pkt: &PacketMeta<'_>,
        from_client: bool,
    ) -> bool;

    /// The best answer so far. `state` is `None` for a flow that never
    /// carried payload.
    fn outcome(&mut self, state: Option<&Self::State>, flow: &FlowInfo) -> Outcome;

    /// The metadata found so far, for the `flow` record.
    fn metadata<'s>(&self, state: &'s Self::State) -> &'s Metadata;

    /// The name of application `id` ("Unknown" when none).
    fn application_name(&self, id: u32) -> &str;

    /// The category of application `id` ([`Category::UNSPECIFIED`] when
    /// none).
    fn application_category(&self, id: u32) -> Category;
}

/// The classifier of a flow table without DPI: the protocol comes from
/// the IP protocol number or, as a guess, from the server's (then the
/// client's) well-known port.
#[derive(Clone, Copy, Debug, Default)]
pub struct PortGuess;

impl PortGuess {
    /// The answer from the IP protocol number and ports alone.
    pub fn guess(flow: &FlowInfo) -> Outcome {
        if let Some(protocol) = Protocol::from_ip_protocol(flow.ip_protocol) {
            return Outcome {
                protocol,
                ..Outcome::default()
            };
        }
        match Protocol::guess_from_port(flow.ip_protocol, flow.server_port)
            .or_else(|| Protocol::guess_from_port(flow.ip_protocol, flow.client_port))
        {
            Some(protocol) => Outcome {
                protocol,
                guessed: true,
                ..Outcome::default()
            },
            None => Outcome::default(),
        }
    }
}

impl Classifier for PortGuess {
    type State = ();

    fn start(&mut self, _: &FlowInfo) {}

    fn inspect(&mut self, _: &mut (), _: &FlowInfo, _: &PacketMeta<'_>, _: bool) -> bool {
        false
    }

    fn outcome(&mut self, _: Option<&()>, flow: &FlowInfo) -> Outcome {
        PortGuess::guess(flow)
    }

    fn metadata<'s>(&self, _: &'s ()) -> &'s Metadata {
        Metadata::none()
    }

    fn application_name(&self, _: u32) -> &str {
        "Unknown"
    }

    fn application_category(&self, _: u32) -> Category {
        Category::UNSPECIFIED
    }
}

/// What DPI read from a flow's payload beyond its protocol. Each field is
/// empty (or `None`) until found. Strings hold what the wire said, made
/// valid UTF-8 (invalid bytes replaced) and bounded in length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// TLS/QUIC SNI, HTTP Host, DNS query name, ... (`host_server_name`).
    pub host_server_name: String,
    /// TLS and QUIC handshake details (`ssl`).
    pub ssl: Option<Box<Ssl>>,
    /// HTTP request (`http`).
    pub http: Option<Box<Http>>,
    /// SSH banners (`ssh`).
    pub ssh: Option<Box<Ssh>>,
    /// DHCP client details (`dhcp`).
    pub dhcp: Option<Box<Dhcp>>,
    /// STUN addresses (`stun`).
    pub stun: Option<Box<Stun>>,
    /// BitTorrent info hash (`bt.info_hash`).
    pub bt_info_hash: Option<[u8; 20]>,
    /// First mDNS answer name (`mdns.answer`).
    pub mdns_answer: Option<String>,
    /// SSDP user agent (`ssdp.user_agent`).
    pub ssdp_user_agent: Option<String>,
}

impl Metadata {
    /// No metadata, for flows without DPI state.
    pub fn none() -> &'static Metadata {
        static NONE: Metadata = Metadata {
            host_server_name: String::new(),
            ssl: None,
            http: None,
            ssh: None,
            dhcp: None,
            stun: None,
            bt_info_hash: None,
            mdns_answer: None,
            ssdp_user_agent: None,
        };
        &NONE
    }
}

/// TLS (and QUIC's TLS) handshake details, Netify's `ssl` object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ssl {
    /// Negotiated version (ServerHello, `supported_versions` included),
    /// else the ClientHello's; 0 when unknown. Written as `0x0303`.
    pub version: u16,
    /// Cipher suite chosen by the server, 0 when unknown.
    pub cipher_suite: u16,
    /// Server name indication sent by the client.
    pub client_sni: String,
    /// ALPN protocols offered by the client, in order.
    pub alpn: Vec<String>,
    /// ALPN protocol chosen by the server (0 or 1 entries).
    pub alpn_server: Vec<String>,
    /// JA4 fingerprint of the ClientHello.
    pub client_ja4: String,
    /// JA4S fingerprint of the ServerHello (TLS over TCP, or QUIC's).
    pub server_ja4s: String,
    /// Common name of the server certificate's subject (TLS 1.2 and older).
    pub server_cn: String,
    /// Subject distinguished name of the server certificate.
    pub subject_dn: String,
    /// Issuer distinguished name of the server certificate.
    pub issuer_dn: String,
    /// SHA-1 of the server certificate (DER), lowercase hex.
    pub fingerprint: String,
}

/// HTTP request details, Netify's `http` object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Http {
    /// Request target (path and query, or absolute URL) of the first request.
    pub url: String,
    /// `User-Agent` of the first request.
    pub user_agent: String,
}

/// SSH banners, Netify's `ssh` object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ssh {
    /// The client's identification string (`SSH-2.0-...`).
    pub client: String,
    /// The server's identification string.
    pub server: String,
}

/// DHCP client details, Netify's `dhcp` object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dhcp {
    /// Parameter request list (option 55) as comma-separated decimals;
    /// for DHCPv6 the option request list (option 6).
    pub fingerprint: String,
    /// Vendor class identifier (option 60; DHCPv6 option 16).
    pub class_ident: String,
}

/// STUN addresses, Netify's `stun` object (`address:port`, empty when
/// not seen).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stun {
    /// (XOR-)MAPPED-ADDRESS.
    pub mapped: String,
    /// OTHER-ADDRESS (or CHANGED-ADDRESS).
    pub other: String,
    /// XOR-PEER-ADDRESS (TURN).
    pub peer: String,
    /// XOR-RELAYED-ADDRESS (TURN).
    pub relayed: String,
    /// RESPONSE-ORIGIN (or SOURCE-ADDRESS).
    pub response: String,
}

/// Bounded, lossy UTF-8 text from untrusted bytes: at most `max` bytes of
/// input are read, control characters become `?`.
pub fn wire_text(bytes: &[u8], max: usize) -> String {
    let bytes = &bytes[..bytes.len().min(max)];
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(proto: u8, client_port: u16, server_port: u16) -> FlowInfo {
        FlowInfo {
            ip_version: 4,
            ip_protocol: proto,
            client_ip: [0; 16],
            client_port,
            server_ip: [0; 16],
            server_port,
            tcp_next: [None; 2],
        }
    }

    #[test]
    fn port_guess() {
        let tls = PortGuess::guess(&flow(6, 40_000, 443));
        assert_eq!((tls.protocol, tls.guessed), (Protocol(91), true));
        let icmp = PortGuess::guess(&flow(1, 0, 0));
        assert_eq!((icmp.protocol, icmp.guessed), (Protocol::ICMP, false));
        // The server's port wins over the client's.
        assert_eq!(PortGuess::guess(&flow(17, 53, 123)).protocol, Protocol(9));
        assert_eq!(
            PortGuess::guess(&flow(17, 40_000, 40_001)),
            Outcome::default()
        );
    }

    #[test]
    fn wire_text_is_bounded_and_printable() {
        assert_eq!(wire_text(b"abc\r\ndef", 100), "abc??def");
        assert_eq!(wire_text(b"abcdef", 3), "abc");
        assert_eq!(wire_text(&[0x66, 0xff, 0x6f], 10), "f\u{fffd}o");
    }
}

//! Tunnels and gateway control: GTP (3GPP TS 29.060, 29.274, 32.295:
//! nDPI 271 "GTP_U", 272 "GTP_C", 273 "GTP_PRIME"), Teredo (RFC 4380,
//! nDPI 214), CAPWAP (RFC 5415, nDPI 247), PPTP's control connection
//! (RFC 2637, nDPI 115) and NAT-PMP (RFC 6886, nDPI 312).
//!
//! All but PPTP are UDP on their IANA ports, which nDPI requires too, and
//! one datagram tells:
//! - GTP-U (2152): version 1, protocol type 1, a known message type, the
//!   length of what follows the 8-byte header. GTP-C (2123): version 1
//!   (message type 1..=129, exact length) or 2 (length of what follows
//!   the first 4 bytes). GTP' (3386): protocol type 0, spare bits set, a
//!   charging message type (1..=7, 240, 241).
//! - Teredo (3544): an optional authentication indicator and origin
//!   indication, then an IPv6 packet whose payload length fills the
//!   datagram.
//! - CAPWAP (5246 control, 5247 data): preamble version 0; a control
//!   message whose element length gives the datagram's, or a DTLS record
//!   (preamble type 1) of the datagram's length; data with an IEEE 802.11
//!   binding and a header shorter than the datagram.
//! - PPTP (TCP 1723 or any port): a control message with its length, type
//!   1, the magic cookie 0x1A2B3C4D and a control message type 1..=15.
//! - NAT-PMP (5351): version 0, an opcode and the exact length it has.
//! - Cloudflare WARP (2408, nDPI 300 "CloudflareWarp", which tells it by
//!   Cloudflare's addresses): WireGuard with message types 0xc1..=0xc4;
//!   the handshake initiation has its reserved bytes zero.
//! - Tailscale (nDPI 24): a disco message opens with the magic `TS💬`
//!   (then the sender's key and a nonce), on any port.
//! - Cisco VPN (nDPI 161, nDPI's rules): UDP between two ports 10000
//!   opening with FE 57 7E 2B, or TCP to 443 opening with 17 01 00 00.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// nDPI's GTP_U, GTP_C and GTP_PRIME (each under master GTP, 152).
const GTP_U: Protocol = Protocol(271);
const GTP_C: Protocol = Protocol(272);
const GTP_PRIME: Protocol = Protocol(273);
/// nDPI's Teredo.
const TEREDO: Protocol = Protocol(214);
/// nDPI's CAPWAP.
const CAPWAP: Protocol = Protocol(247);
/// nDPI's PPTP.
const PPTP: Protocol = Protocol(115);
/// nDPI's NAT-PMP.
const NAT_PMP: Protocol = Protocol(312);
/// nDPI's CloudflareWarp.
const CLOUDFLARE_WARP: Protocol = Protocol(300);
/// nDPI's Tailscale.
const TAILSCALE: Protocol = Protocol(24);
/// nDPI's CiscoVPN.
const CISCO_VPN: Protocol = Protocol(161);
/// Tailscale's disco magic: "TS" and the speech balloon emoji in UTF-8.
const DISCO_MAGIC: &[u8] = b"TS\xf0\x9f\x92\xac";
/// PPTP's magic cookie.
const PPTP_COOKIE: [u8; 4] = [0x1a, 0x2b, 0x3c, 0x4d];

/// One datagram (UDP) or the first control message (PPTP).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let port = |n: u16| pkt.flow.server_port == n || pkt.flow.client_port == n;
    if pkt.tcp {
        let stream = pkt.client_stream;
        if pkt.flow.server_port == 443 && pkt.from_client && pkt.seen[0] == 0 {
            let head = &stream[..stream.len().min(4)];
            if head == [0x17, 1, 0, 0] {
                return Verdict::Done(CISCO_VPN);
            }
            if [0x17, 1, 0, 0].starts_with(head) {
                return Verdict::Maybe;
            }
        }
        return pptp(pkt.stream());
    }
    let p = pkt.payload;
    let both = |n: u16| pkt.flow.server_port == n && pkt.flow.client_port == n;
    let found = if p.starts_with(DISCO_MAGIC) && p.len() >= DISCO_MAGIC.len() + 32 + 24 {
        Some(TAILSCALE)
    } else if both(10000) && p.starts_with(&[0xfe, 0x57, 0x7e, 0x2b]) {
        Some(CISCO_VPN)
    } else if port(2408) && warp(p) {
        Some(CLOUDFLARE_WARP)
    } else if port(2152) && gtp_u(p) {
        Some(GTP_U)
    } else if port(2123) && gtp_c(p) {
        Some(GTP_C)
    } else if port(3386) && gtp_prime(p) {
        Some(GTP_PRIME)
    } else if port(3544) && teredo(p) {
        Some(TEREDO)
    } else if (port(5246) && capwap_control(p)) || (port(5247) && capwap_data(p)) {
        Some(CAPWAP)
    } else if port(5351) && nat_pmp(p) {
        Some(NAT_PMP)
    } else {
        None
    };
    found.map_or(Verdict::No, Verdict::Done)
}

/// Bytes 2..4 as a big-endian length.
fn len_at(p: &[u8], at: usize) -> Option<usize> {
    let &b = p.get(at..at + 2)?.first_chunk::<2>()?;
    Some(usize::from(u16::from_be_bytes(b)))
}

/// GTP-U: G-PDU, echo, error indication, extension headers, end marker.
fn gtp_u(p: &[u8]) -> bool {
    let (Some(&flags), Some(&kind), Some(len)) = (p.first(), p.get(1), len_at(p, 2)) else {
        return false;
    };
    flags & 0xf8 == 0x30
        && matches!(kind, 1 | 2 | 26 | 31 | 254 | 255)
        && p.len() >= 8
        && len <= p.len() - 8
        && (flags & 0x07 == 0 || len >= 4)
}

/// GTP-C v1 or v2.
fn gtp_c(p: &[u8]) -> bool {
    let (Some(&flags), Some(&kind), Some(len)) = (p.first(), p.get(1), len_at(p, 2)) else {
        return false;
    };
    match flags >> 5 {
        1 => {
            flags & 0x18 == 0x10
                && (1..=129).contains(&kind)
                && p.len() >= 8
                && len == p.len() - 8
                && (flags & 0x07 == 0 || len >= 4)
        }
        // v2: P, T and MP flags; the TEID (T) and the sequence number
        // count in the length.
        2 => {
            let min = if flags & 0x08 != 0 { 8 } else { 4 };
            flags & 0x03 == 0 && kind != 0 && len == p.len() - 4 && len >= min
        }
        _ => false,
    }
}

/// GTP' (charging data transfer).
fn gtp_prime(p: &[u8]) -> bool {
    let (Some(&flags), Some(&kind), Some(len)) = (p.first(), p.get(1), len_at(p, 2)) else {
        return false;
    };
    flags & 0x10 == 0
        && flags & 0x0e == 0x0e
        && flags >> 5 <= 2
        && matches!(kind, 1..=7 | 240 | 241)
        && p.len() >= 6
        && len <= p.len() - 6
}

/// Teredo: indicators, then an IPv6 packet filling the datagram.
fn teredo(p: &[u8]) -> bool {
    let mut rest = p;
    // Authentication indicator: 00 01, id and auth lengths, the id, the
    // auth value, an 8-byte nonce and a confirmation byte.
    if let [0, 1, id_len, au_len, ..] = rest {
        let skip = 4 + usize::from(*id_len) + usize::from(*au_len) + 9;
        let Some(after) = rest.get(skip..) else {
            return false;
        };
        rest = after;
    }
    // Origin indication: 00 00, the obfuscated port and address.
    if let [0, 0, ..] = rest {
        let Some(after) = rest.get(8..) else {
            return false;
        };
        rest = after;
    }
    match (rest.first(), len_at(rest, 4)) {
        (Some(v), Some(len)) => v >> 4 == 6 && rest.len() == 40 + len,
        _ => false,
    }
}

/// The CAPWAP header's length in bytes (HLEN in 4-byte words), if the
/// preamble is version 0, type 0 and the binding one RFC 5415 knows.
fn capwap_header(p: &[u8]) -> Option<usize> {
    let &[preamble, b1, b2, _] = p.first_chunk::<4>()?;
    let hlen = usize::from(b1 >> 3) * 4;
    let wbid = (b2 >> 1) & 0x1f;
    (preamble == 0 && hlen >= 8 && matches!(wbid, 0 | 1 | 3)).then_some(hlen)
}

/// A CAPWAP control message or a DTLS record behind its preamble.
fn capwap_control(p: &[u8]) -> bool {
    if let [1, 0, 0, 0, content, 0xfe, 0xfd | 0xff, ..] = p {
        return (20..=25).contains(content) && len_at(p, 15).is_some_and(|len| len + 17 == p.len());
    }
    let Some(hlen) = capwap_header(p) else {
        return false;
    };
    // Message type: IANA enterprise 0, types 1..=26.
    let Some(&[e0, e1, e2, kind]) = p.get(hlen..hlen + 4).and_then(|s| s.first_chunk::<4>()) else {
        return false;
    };
    [e0, e1, e2] == [0, 0, 0]
        && (1..=26).contains(&kind)
        && len_at(p, hlen + 5).is_some_and(|len| hlen + 5 + len == p.len())
}

/// CAPWAP data: an 802.11 binding header shorter than the datagram, or a
/// DTLS record.
fn capwap_data(p: &[u8]) -> bool {
    if let [1, 0, 0, 0, content, 0xfe, 0xfd | 0xff, ..] = p {
        return (20..=25).contains(content) && len_at(p, 15).is_some_and(|len| len + 17 == p.len());
    }
    capwap_header(p).is_some_and(|hlen| hlen < p.len())
}

/// Cloudflare WARP's WireGuard: types 0xc1..=0xc4 in WireGuard's sizes
/// (an initiation may carry more than WireGuard's 148 bytes).
fn warp(p: &[u8]) -> bool {
    match p {
        [0xc1, 0, 0, 0, ..] => p.len() >= 148,
        [0xc2, ..] => p.len() >= 92,
        [0xc3, ..] => p.len() == 64,
        [0xc4, ..] => p.len() >= 32,
        _ => false,
    }
}

/// A PPTP control message at the start of the stream.
fn pptp(stream: &[u8]) -> Verdict {
    let Some(head) = stream.first_chunk::<12>() else {
        // Only a prefix of the fixed fields can be checked.
        let expected = [None, None, Some(0), Some(1)]
            .into_iter()
            .chain(PPTP_COOKIE.map(Some));
        let fits = stream
            .iter()
            .zip(expected)
            .all(|(&b, e)| e.is_none_or(|e| e == b));
        return if fits { Verdict::Maybe } else { Verdict::No };
    };
    let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
    let kind = u16::from_be_bytes([head[8], head[9]]);
    let ok = head[2..4] == [0, 1]
        && head[4..8] == PPTP_COOKIE
        && (1..=15).contains(&kind)
        && head[10..12] == [0, 0]
        && (16..=256).contains(&len);
    if ok { Verdict::Done(PPTP) } else { Verdict::No }
}

/// A NAT-PMP request or response.
fn nat_pmp(p: &[u8]) -> bool {
    let result_ok = || len_at(p, 2).is_some_and(|code| code <= 5);
    match p {
        [0, 0] => true,
        [0, 1 | 2, 0, 0, ..] => p.len() == 12,
        [0, 0x80, ..] => p.len() == 12 && result_ok(),
        [0, 0x81 | 0x82, ..] => p.len() == 16 && result_ok(),
        _ => false,
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "tunnel",
    protocols: &[
        GTP_U,
        GTP_C,
        GTP_PRIME,
        TEREDO,
        CAPWAP,
        PPTP,
        NAT_PMP,
        CLOUDFLARE_WARP,
        TAILSCALE,
        CISCO_VPN,
    ],
    tcp: true,
    udp: true,
    ports: &[
        2152, 2123, 3386, 3544, 5246, 5247, 1723, 5351, 2408, 41641, 10000,
    ],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "gtp_c.pcap frame 3",
            tcp: false,
            server_port: 2123,
            packets: &[(
                true,
                "4824001e355292064b546200490001000556000d0018987654123498765412345678",
            )],
            protocol: GTP_C,
        },
        Sample {
            origin: "teredo.pcap frame 1",
            tcp: false,
            server_port: 3544,
            packets: &[(
                true,
                "00010000b11b3fea46a9afe9006000000000083afffe800000000000000000ff\
                 fffffffffeff02000000000000000000000000000285007d3800000000",
            )],
            protocol: TEREDO,
        },
        Sample {
            origin: "pptp.pcap frame 4 (first 24 bytes)",
            tcp: true,
            server_port: 1723,
            packets: &[(true, "009c00011a2b3c4d00010000010000000000000300000003")],
            protocol: PPTP,
        },
        Sample {
            origin: "natpmp.pcap frames 1, 2",
            tcp: false,
            server_port: 5351,
            packets: &[(true, "0000"), (false, "00800000002b3add0ac9d5ae")],
            protocol: NAT_PMP,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{
        DNS_QUERY, HTTP_REQUEST_HEAD, RTP, STUN_REQUEST, TLS_HELLO_HEAD, WIREGUARD_KEEPALIVE, flow,
        hex, run,
    };

    /// gtp_c.pcap frame 3: a GTPv2 Delete Session Request.
    const GTPV2: &str = "4824001e355292064b546200490001000556000d0018987654123498765412345678";
    /// gtp_c.pcap frame 4: its response.
    const GTPV2_RESP: &str = "48250013355292044b5462000200020010000300010001";
    /// teredo.pcap frame 1: authentication indicator and an ICMPv6
    /// router solicitation.
    const TEREDO_RS: &str = "00010000b11b3fea46a9afe9006000000000083afffe800000000000000000fffffffffffeff02000000000000000000000000000285007d3800000000";
    /// pptp.pcap frame 4: Start-Control-Connection-Request (first 24
    /// bytes).
    const PPTP_SCCRQ: &str = "009c00011a2b3c4d00010000010000000000000300000003";
    /// natpmp.pcap frames 1 to 4.
    const NATPMP: [&str; 4] = [
        "0000",
        "00800000002b3add0ac9d5ae",
        "00020000c8d5c8d500000e10",
        "00820000002b3ae5c8d5c8d500000e10",
    ];

    fn done(tcp: bool, port: u16, payload: &[u8]) -> Verdict {
        run(dissect, &flow(tcp, 40000, port), &[(true, payload)]).0[0]
    }

    #[test]
    fn gtp_variants() {
        assert_eq!(done(false, 2123, &hex(GTPV2)), Verdict::Done(GTP_C));
        assert_eq!(done(false, 2123, &hex(GTPV2_RESP)), Verdict::Done(GTP_C));
        // GTP-U: a G-PDU carrying 4 bytes, and an echo request (synthetic).
        let gpdu = hex("30ff0004 00000001 45000000");
        assert_eq!(done(false, 2152, &gpdu), Verdict::Done(GTP_U));
        let echo = hex("32010004 00000000 00010000");
        assert_eq!(done(false, 2152, &echo), Verdict::Done(GTP_U));
        // GTPv1-C Echo Request (synthetic) and a GTP' Data Record Transfer
        // Request (6-byte header).
        let echo_c = hex("32010004 00000000 002a0000");
        assert_eq!(done(false, 2123, &echo_c), Verdict::Done(GTP_C));
        let prime = hex("2ef00004 0001 7e000102");
        assert_eq!(done(false, 3386, &prime), Verdict::Done(GTP_PRIME));
        // Off its port, or with a length off by one, GTP is not claimed.
        assert_eq!(done(false, 2124, &hex(GTPV2)), Verdict::No);
        let mut bad = hex(GTPV2);
        bad.push(0);
        assert_eq!(done(false, 2123, &bad), Verdict::No);
    }

    #[test]
    fn teredo_packets() {
        assert_eq!(done(false, 3544, &hex(TEREDO_RS)), Verdict::Done(TEREDO));
        // teredo.pcap frame 2: authentication and origin indication before
        // a router advertisement.
        let ra = hex(
            "00010000b11b3fea46a9afe900000032de46f93f466000000000303afffe800000000000008000f2273d77e3b3fe800000000000000000fffffffffffe8600649d0000000000003a98000007d003044040ffffffffffffffff0000000020010000c2881c4cff00000000200100",
        );
        assert_eq!(done(false, 3544, &ra), Verdict::Done(TEREDO));
        let mut short = hex(TEREDO_RS);
        short.pop();
        assert_eq!(done(false, 3544, &short), Verdict::No);
    }

    #[test]
    fn capwap_messages() {
        // A Discovery Request (synthetic): HLEN 2, WBID 1, then type 1,
        // sequence 0, element length 8, flags, one element.
        let discovery = hex("00100200 00000000 00000001 00 000b 00 0014000100000000");
        assert_eq!(done(false, 5246, &discovery), Verdict::Done(CAPWAP));
        // A DTLS handshake record behind the preamble.
        let mut dtls = hex("01000000 16feff 0000 000000000000 0004");
        dtls.extend([1, 0, 0, 0]);
        assert_eq!(done(false, 5246, &dtls), Verdict::Done(CAPWAP));
        // Data: an 802.11 frame after the header.
        let data = hex("00100300 00000000 0801 0000 ffffffffffff");
        assert_eq!(done(false, 5247, &data), Verdict::Done(CAPWAP));
        let mut bad = discovery.clone();
        bad.pop();
        assert_eq!(done(false, 5246, &bad), Verdict::No);
    }

    #[test]
    fn pptp_control() {
        let sccrq = hex(PPTP_SCCRQ);
        assert_eq!(done(true, 1723, &sccrq), Verdict::Done(PPTP));
        let (v, _) = run(
            dissect,
            &flow(true, 40000, 1723),
            &[(true, &sccrq[..6]), (true, &sccrq[6..])],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(PPTP)]);
        let mut bad = sccrq;
        bad[7] ^= 1;
        assert_eq!(done(true, 1723, &bad), Verdict::No);
    }

    #[test]
    fn nat_pmp_messages() {
        for m in NATPMP {
            assert_eq!(done(false, 5351, &hex(m)), Verdict::Done(NAT_PMP), "{m}");
            assert_eq!(done(false, 5352, &hex(m)), Verdict::No, "{m}");
        }
        assert_eq!(done(false, 5351, &hex("0001")), Verdict::No);
        assert_eq!(
            done(false, 5351, &hex("00800009002b3add0ac9d5ae")),
            Verdict::No
        );
    }

    #[test]
    fn vpns() {
        // cloudflare-warp.pcap frames 64 (first 16 bytes, zero-padded to
        // its 194 bytes) and 66 (a data message, first 32 bytes).
        let mut init = hex("c10000000090830182436cb06c2855bf");
        init.resize(194, 0);
        assert_eq!(done(false, 2408, &init), Verdict::Done(CLOUDFLARE_WARP));
        let data = hex("c40278006884ee00010000000000000077f597b966c0cebed8ddd93582b00a0f");
        assert_eq!(done(false, 2408, &data), Verdict::Done(CLOUDFLARE_WARP));
        assert_eq!(done(false, 2409, &data), Verdict::No);
        // Built: a Tailscale disco ping (magic, key, nonce, a box).
        let mut disco = DISCO_MAGIC.to_vec();
        disco.resize(6 + 32 + 24 + 16 + 12, 0x5a);
        assert_eq!(done(false, 41641, &disco), Verdict::Done(TAILSCALE));
        assert_eq!(done(false, 3478, &disco), Verdict::Done(TAILSCALE));
        assert_eq!(done(false, 41641, &disco[..40]), Verdict::No);
        // Cisco VPN, nDPI's rules (built).
        let (v, _) = run(
            dissect,
            &flow(false, 10000, 10000),
            &[(true, &hex("fe577e2b00000000"))],
        );
        assert_eq!(v, [Verdict::Done(CISCO_VPN)]);
        assert_eq!(
            done(true, 443, &hex("1701000000000010")),
            Verdict::Done(CISCO_VPN)
        );
        assert_eq!(done(true, 443, &hex(TLS_HELLO_HEAD)), Verdict::No);
    }

    #[test]
    fn not_other_protocols() {
        for port in [2152, 2123, 3386, 3544, 5246, 5247, 5351, 2408, 41641] {
            for p in [DNS_QUERY, STUN_REQUEST, WIREGUARD_KEEPALIVE, RTP] {
                assert_eq!(done(false, port, &hex(p)), Verdict::No, "{port} {p}");
            }
        }
        for p in [TLS_HELLO_HEAD, HTTP_REQUEST_HEAD] {
            assert_eq!(done(true, 1723, &hex(p)), Verdict::No);
        }
    }

    #[test]
    fn prefixes_do_not_panic() {
        for (port, p) in [(2123, hex(GTPV2)), (3544, hex(TEREDO_RS))] {
            for n in 0..p.len() {
                assert_eq!(done(false, port, &p[..n]), Verdict::No, "{port} {n}");
            }
        }
        let p = hex(PPTP_SCCRQ);
        for n in 1..12 {
            assert_eq!(done(true, 1723, &p[..n]), Verdict::Maybe, "{n}");
        }
    }
}

//! DHCP (BOOTP with the DHCP magic cookie) and DHCPv6, over UDP.

use std::fmt::Write;

use flowstat_core::{Dhcp, Metadata, Protocol, wire_text};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// Most option codes kept in a fingerprint.
const MAX_CODES: usize = 64;

/// DHCP (`Protocol(18)`): BOOTP op 1 or 2, hardware address length at most
/// 16, the magic cookie 0x63825363 at offset 236; options 55 (parameter
/// list) -> `dhcp.fingerprint`, 60 (vendor class) -> `dhcp.class_ident`,
/// 12 (host name) -> `host_server_name`.
///
/// DHCPv6 (`Protocol(103)`, "DHCPV6"), on port 546 or 547 (the header is
/// short): message type 1..=11 with options that fill the datagram
/// exactly and include a client or server id, or a relay message (12,
/// 13) with a relayed message option; option 6 (option request) ->
/// fingerprint, 16 (vendor class) -> class_ident.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    let ports = [pkt.flow.client_port, pkt.flow.server_port];
    if let Some(found) = v4(pkt.payload, meta) {
        return found;
    }
    if ports.contains(&546) || ports.contains(&547) {
        if let Some(found) = v6(pkt.payload, meta) {
            return found;
        }
    }
    Verdict::No
}

/// A DHCP message.
fn v4(p: &[u8], meta: &mut Metadata) -> Option<Verdict> {
    let [op, _htype, hlen] = *p.first_chunk::<3>()?;
    let ok = matches!(op, 1 | 2) && hlen <= 16 && p.get(236..240)? == [0x63, 0x82, 0x53, 0x63];
    if !ok {
        return None;
    }
    let mut dhcp = Dhcp::default();
    let mut rest = &p[240..];
    // Each step consumes at least one byte.
    while let Some((&code, after)) = rest.split_first() {
        match code {
            0 => {
                rest = after;
                continue;
            }
            255 => break,
            _ => {}
        }
        let Some((data, after)) = after
            .split_first()
            .and_then(|(&len, after)| after.split_at_checked(usize::from(len)))
        else {
            break; // cut short: keep what was read
        };
        match code {
            12 if meta.host_server_name.is_empty() => {
                meta.host_server_name = wire_text(data, 256).to_lowercase();
            }
            55 if dhcp.fingerprint.is_empty() => {
                dhcp.fingerprint = codes(data.iter().map(|&c| u16::from(c)));
            }
            60 if dhcp.class_ident.is_empty() => dhcp.class_ident = wire_text(data, 256),
            _ => {}
        }
        rest = after;
    }
    fill(meta, dhcp);
    Some(Verdict::Done(Protocol(18))) // DHCP
}

/// A DHCPv6 message.
fn v6(p: &[u8], meta: &mut Metadata) -> Option<Verdict> {
    let (&kind, _) = p.split_first()?;
    let (mut options, needed): (&[u8], &[u16]) = match kind {
        1..=11 => (p.get(4..)?, &[1, 2]),
        12 | 13 => (p.get(34..)?, &[9]), // hop count, link and peer addresses
        _ => return None,
    };
    let (mut dhcp, mut has_id) = (Dhcp::default(), false);
    while !options.is_empty() {
        let (head, rest) = options.split_first_chunk::<4>()?;
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let (data, rest) = rest.split_at_checked(len)?;
        has_id |= needed.contains(&code);
        match code {
            6 if dhcp.fingerprint.is_empty() => {
                let oro = data
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]));
                dhcp.fingerprint = codes(oro);
            }
            // Enterprise number, then length-prefixed strings: the first.
            16 if dhcp.class_ident.is_empty() => {
                let class = data
                    .get(4..6)
                    .and_then(|n| data.get(6..6 + usize::from(u16::from_be_bytes([n[0], n[1]]))));
                dhcp.class_ident = class.map(|c| wire_text(c, 256)).unwrap_or_default();
            }
            _ => {}
        }
        options = rest;
    }
    if !has_id {
        return None;
    }
    fill(meta, dhcp);
    Some(Verdict::Done(Protocol(103))) // DHCPV6
}

/// Comma-separated decimal codes (at most [`MAX_CODES`]).
fn codes(codes: impl Iterator<Item = u16>) -> String {
    let mut out = String::new();
    for code in codes.take(MAX_CODES) {
        let sep = if out.is_empty() { "" } else { "," };
        let _ = write!(out, "{sep}{code}");
    }
    out
}

/// Stores `dhcp` unless empty.
fn fill(meta: &mut Metadata, dhcp: Dhcp) {
    if !dhcp.fingerprint.is_empty() || !dhcp.class_ident.is_empty() {
        meta.dhcp = Some(Box::new(dhcp));
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "dhcp",
    protocols: &[Protocol(18), Protocol(103)],
    tcp: false,
    udp: true,
    ports: &[67, 68, 546, 547],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "dhcp-fuzz.pcapng frames ",
        tcp: false,
        server_port: 67,
        packets: &[(
            true,
            "01010600c979b96000000000c0a80168000000000000000000000000001f29da\
             2d79000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             00000000000000000000000000000000000000000000000000d7000000000000\
             5300000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0065000000000000000000006382536335016a3d0701001f29da2d790c074d4b\
             30333836323c314d53465420352e30370c010f03062c2e2f1f21f92bfc2b03dc\
             0100ff000000002500000000",
        )],
        protocol: Protocol(18),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    // dhcp-fuzz.pcapng frame 1: a fuzzed DISCOVER (message type 106, a
    // vendor class longer than the options left).
    const FUZZ: &str = "01010600c979b96000000000c0a80168000000000000000000000000001f29da2d790000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000d7000000000000530000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000065000000000000000000006382536335016a3d0701001f29da2d790c074d4b30333836323c314d53465420352e30370c010f03062c2e2f1f21f92bfc2b03dc0100ff000000002500000000";

    #[test]
    fn fuzzed_discover() {
        let (v, meta) = run(dissect, &flow(false, 68, 67), &[(true, &hex(FUZZ))]);
        assert_eq!(v, [Verdict::Done(Protocol(18))]);
        assert_eq!(meta.host_server_name, "mk03862");
        // Option 60 runs past the end: nothing more is read.
        assert_eq!(meta.dhcp, None);
    }

    #[test]
    fn discover_with_parameter_list() {
        // The fuzzed frame's BOOTP header and cookie, with synthetic
        // options (the corpus has no intact DHCP): DISCOVER, host name,
        // vendor class, parameter list, end.
        let mut p = hex(FUZZ)[..240].to_vec();
        p.extend(hex("350101 0c074d4b3033383632 3c094d53465420352e3037 \
             370d010f03062c2e2f1f21f92bfc2b ff"));
        let (v, meta) = run(dissect, &flow(false, 68, 67), &[(true, &p)]);
        assert_eq!(v, [Verdict::Done(Protocol(18))]);
        assert_eq!(meta.host_server_name, "mk03862");
        let dhcp = meta.dhcp.unwrap();
        assert_eq!(dhcp.class_ident, "MSFT 5.07");
        assert_eq!(dhcp.fingerprint, "1,15,3,6,44,46,47,31,33,249,43,252,43");
    }

    #[test]
    fn dhcpv6_solicit() {
        // Synthetic (no DHCPv6 in the corpus): SOLICIT, client id (DUID-LL),
        // option request 23,24,39, vendor class (enterprise 311, "MSFT 5.0").
        let solicit = hex("01 abcdef \
             0001 000a 0003 0001 001122334455 \
             0006 0006 0017 0018 0027 \
             0010 000e 00000137 0008 4d53465420352e30");
        let f = flow(false, 546, 547);
        let (v, meta) = run(dissect, &f, &[(true, &solicit)]);
        assert_eq!(v, [Verdict::Done(Protocol(103))]);
        let dhcp = meta.dhcp.unwrap();
        assert_eq!(
            (dhcp.fingerprint.as_str(), dhcp.class_ident.as_str()),
            ("23,24,39", "MSFT 5.0")
        );
        // Off ports 546/547, or with a trailing byte, it is not claimed.
        assert_eq!(
            run(dissect, &flow(false, 5000, 5001), &[(true, &solicit)]).0,
            [Verdict::No]
        );
        let longer = [&solicit[..], &[0]].concat();
        assert_eq!(run(dissect, &f, &[(true, &longer)]).0, [Verdict::No]);
    }

    #[test]
    fn other_protocols_and_truncation() {
        let f = flow(false, 546, 547);
        // dns.pcap frame 4; NTPv4.pcap frame 1.
        let dns = hex("784301000001000000000000026537087768617473617070036e65740000010001");
        let ntp = hex(
            "230207eb00000450000003ab83bc03dfd94f51c33165b860d944575530336fd0d944575531b4e978d94f51f42d26e2f4",
        );
        for other in [dns, ntp] {
            assert_eq!(run(dissect, &f, &[(true, &other)]).0, [Verdict::No]);
        }
        let msg = hex(FUZZ);
        for n in 0..msg.len() {
            let (v, _) = run(dissect, &flow(false, 68, 67), &[(true, &msg[..n])]);
            assert_eq!(v[0] == Verdict::No, n < 240, "{n}");
            run(dissect, &f, &[(true, &msg[..n])]);
        }
    }
}

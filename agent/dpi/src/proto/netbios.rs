//! NetBIOS over TCP/IP (RFC 1002): Name Service (UDP 137), Datagram
//! Service (UDP 138) and Session Service requests (TCP).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// NetBIOS (`Protocol(10)`, "NetBIOS"): a Name Service packet (port 137,
/// DNS-like header, one encoded name, type NB or NBSTAT), a datagram
/// (port 138, with the source's encoded name) or a TCP session request
/// (type 0x81 with called and calling encoded names). The name of a
/// query, registration or datagram source goes to `host_server_name`.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    let ports = [pkt.flow.client_port, pkt.flow.server_port];
    let found = if pkt.tcp {
        session_request(pkt.stream())
    } else if ports.contains(&137) {
        name_service(pkt.payload)
    } else if ports.contains(&138) {
        datagram(pkt.payload)
    } else {
        None
    };
    match found {
        Some(host) => {
            if !host.is_empty() {
                meta.host_server_name = host;
            }
            Verdict::Done(Protocol(10)) // NetBIOS
        }
        // A session request split across segments.
        None if pkt.tcp && pkt.stream().len() < 72 && pkt.stream().first() == Some(&0x81) => {
            Verdict::Maybe
        }
        None => Verdict::No,
    }
}

/// A Name Service packet's name.
fn name_service(msg: &[u8]) -> Option<String> {
    let (head, rest) = msg.split_first_chunk::<12>()?;
    let word = |i: usize| u16::from_be_bytes([head[i], head[i + 1]]);
    let opcode = (word(2) >> 11) & 0xf;
    // Query, registration, release, WACK, refresh (two codes).
    let counts = [word(4), word(6), word(8), word(10)];
    if !matches!(opcode, 0 | 5..=9) || counts.iter().any(|&c| c > 1) || counts[0] + counts[1] != 1 {
        return None;
    }
    let (host, rest) = name(rest)?;
    // Type NB or NBSTAT, class IN.
    matches!(rest.get(..4)?, [0, 0x20 | 0x21, 0, 1]).then_some(host)
}

/// A direct or broadcast datagram's source name.
fn datagram(msg: &[u8]) -> Option<String> {
    let (head, rest) = msg.split_first_chunk::<14>()?;
    let len = usize::from(u16::from_be_bytes([head[10], head[11]]));
    let ok = matches!(head[0], 0x10..=0x12) && head[1] & 0xf0 == 0 && len == rest.len();
    let (source, rest) = name(rest).filter(|_| ok)?;
    name(rest)?;
    Some(source)
}

/// A session request with its called and calling names: detected, with
/// no host (nDPI reports none for it).
fn session_request(stream: &[u8]) -> Option<String> {
    let (&[0x81, flags, hi, lo], rest) = stream.split_first_chunk::<4>()? else {
        return None;
    };
    let len = usize::from(flags & 1) << 16 | usize::from(hi) << 8 | usize::from(lo);
    let (called, calling) = rest.get(..len)?.split_at_checked(len / 2)?;
    let ok = flags & 0xfe == 0 && name(called)?.1.is_empty() && name(calling)?.1.is_empty();
    ok.then(String::new)
}

/// Decodes the first-level encoded name at the start of `data` (length
/// 32, letters 'A'..='P' two per byte, then a scope ending in 0): the
/// first 15 bytes, printable ones only, trailing spaces removed,
/// lowercase (the 16th is the suffix). Returns it and the bytes after.
fn name(data: &[u8]) -> Option<(String, &[u8])> {
    let (&[32], rest) = data.split_first_chunk::<1>()? else {
        return None;
    };
    let (encoded, mut rest) = rest.split_first_chunk::<32>()?;
    let mut host = String::with_capacity(15);
    for pair in encoded.chunks_exact(2).take(15) {
        let [hi @ b'A'..=b'P', lo @ b'A'..=b'P'] = [pair[0], pair[1]] else {
            return None;
        };
        let c = (hi - b'A') << 4 | (lo - b'A');
        if c.is_ascii_graphic() || c == b' ' {
            host.push(char::from(c.to_ascii_lowercase()));
        }
    }
    if !encoded[30..].iter().all(|b| (b'A'..=b'P').contains(b)) {
        return None;
    }
    // The scope: labels up to a zero byte, at most 255 bytes in all.
    for _ in 0..128 {
        let (&len, after) = rest.split_first()?;
        if len == 0 {
            host.truncate(host.trim_end().len());
            return Some((host, after));
        }
        rest = after.get(usize::from(len)..).filter(|_| len < 64)?;
    }
    None
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "netbios",
    protocols: &[Protocol(10)],
    tcp: true,
    udp: true,
    ports: &[137, 138, 139],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "netbios.pcap frames ,,,",
        tcp: false,
        server_port: 137,
        packets: &[
            (
                true,
                "a7490110000100000000000020464946444645464345464542454e4650454946\
             4a4341434143414341434141410000200001",
            ),
            (
                true,
                "a74a0110000100000000000020464946444645464345464542454e4650454946\
             4a4341434143414341434141410000200001",
            ),
            (
                true,
                "a7480110000100000000000020464946444645464345464542454e4650454946\
             4a4341434143414341434141410000200001",
            ),
            (
                true,
                "a7490110000100000000000020464946444645464345464542454e4650454946\
             4a4341434143414341434141410000200001",
            ),
        ],
        protocol: Protocol(10),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    // netbios.pcap frame 1: broadcast name query for XSTREAM_HY<00>.
    const REGISTRATION: &str = "a7490110000100000000000020464946444645464345464542454e46504549464a4341434143414341434141410000200001";
    // netbios.pcap frame 261 (TCP 55489 -> 139): session request.
    const SESSION: &str = "8100004420454a4543454a45474549464244424442464846444441444344444341434143410020464345504644454745494642444144484648464444414441444543414341414100";

    fn one(f: &flowstat_core::FlowInfo, payload: &[u8]) -> (Verdict, String) {
        let (v, meta) = run(dissect, f, &[(true, payload)]);
        (v[0], meta.host_server_name)
    }

    #[test]
    fn name_service() {
        let f = flow(false, 137, 137);
        let done = Verdict::Done(Protocol(10));
        assert_eq!(one(&f, &hex(REGISTRATION)), (done, "xstream_hy".into()));
        // netbios.pcap frame 54: NBSTAT query for "*" from port 57836.
        let nbstat = hex(
            "20a80000000100000000000020434b4141414141414141414141414141414141414141414141414141414141410000210001",
        );
        assert_eq!(one(&flow(false, 57836, 137), &nbstat), (done, "*".into()));
        // netbios.pcap frame 69: positive registration response for GUNNAR.
        let response = hex(
            "8486850000000001000000002045484646454f454f4542464343414341434143414341434143414341434141410000200001000493e0000600000a000418",
        );
        assert_eq!(one(&f, &response), (done, "gunnar".into()));
    }

    #[test]
    fn datagram_and_session() {
        // netbios.pcap frame 20: a browser announcement from NVR9 (SMB).
        let dgm = hex(
            "110ec2f40a000509008a00bb000020454f46474643444a43414341434143414341434143414341434143414341434100204647454a4548454a454d4542454f46454650454846434550464646414341424e00ff534d422500000000000000000000000000000000000000000000000000000011000021000000000000000000e803000000000000000021005600030001000000020032005c4d41494c534c4f545c42524f57534500010080fc0a004e5652390000000000000000000000000601071001000f0155aa00",
        );
        let done = Verdict::Done(Protocol(10));
        assert_eq!(one(&flow(false, 138, 138), &dgm), (done, "nvr9".into()));
        let session = hex(SESSION);
        assert_eq!(
            one(&flow(true, 55489, 139), &session),
            (done, String::new())
        );
        let (a, b) = session.split_at(20);
        let (v, _) = run(dissect, &flow(true, 55489, 139), &[(true, a), (true, b)]);
        assert_eq!(v, [Verdict::Maybe, done]);
    }

    #[test]
    fn other_protocols_and_truncation() {
        // dns.pcap frame 4: a DNS query (sent to 137 here).
        let dns = hex("784301000001000000000000026537087768617473617070036e65740000010001");
        assert_eq!(one(&flow(false, 5000, 137), &dns).0, Verdict::No);
        // kerberos.pcap frame 10: SMB2 in a session message (TCP 445).
        let smb = hex(
            "00000100fe534d42400001000000000001001f0009000000000000000200000000000000fffe0000000000005900000000040000cf4a5f5c",
        );
        assert_eq!(one(&flow(true, 49156, 445), &smb).0, Verdict::No);
        for (f, msg) in [
            (flow(false, 137, 137), REGISTRATION),
            (flow(true, 1, 139), SESSION),
        ] {
            let msg = hex(msg);
            for n in 0..msg.len() {
                assert!(!matches!(
                    one(&f, &msg[..n]).0,
                    Verdict::Done(_) | Verdict::Found(_)
                ));
            }
        }
    }
}

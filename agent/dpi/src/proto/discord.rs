//! Discord voice over UDP: the IP discovery exchange and keepalives.
//!
//! Before its RTP media a Discord voice client asks the voice server for
//! its public address: a 74-byte request (type 1, length 70, SSRC, then
//! 66 zero bytes) that the server answers in kind (type 2, length 70, the
//! same SSRC, the address as a NUL-padded string and the port). Clients
//! also send 8-byte keepalives starting with the magic `0x1337cafe`.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Discord.
const DISCORD: Protocol = Protocol(58);
/// Size of an IP discovery message: type, length, SSRC, address, port.
const DISCOVERY_LEN: usize = 74;
/// The keepalive magic.
const KEEPALIVE: [u8; 4] = [0x13, 0x37, 0xCA, 0xFE];
/// Packets after which a flow without a discovery reply is not Discord.
const MAX_PACKETS: u32 = 4;

/// A discovery request waits for its reply (same SSRC, an address);
/// a reply or a keepalive claims the flow.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    if p.len() == 8 && p.starts_with(&KEEPALIVE) {
        return Verdict::Done(DISCORD);
    }
    match discovery(p) {
        Some(Kind::Reply) => Verdict::Done(DISCORD),
        Some(Kind::Request) if pkt.packets() < MAX_PACKETS => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// An IP discovery message.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Request,
    Reply,
}

/// The kind of the IP discovery message `p` is, if it is one.
fn discovery(p: &[u8]) -> Option<Kind> {
    let (&[t0, t1, l0, l1, ..], rest) = p.split_first_chunk::<8>()?;
    if p.len() != DISCOVERY_LEN || u16::from_be_bytes([l0, l1]) != 70 {
        return None;
    }
    // 64 bytes of address, NUL padded, then the port.
    let addr = rest.get(..64)?;
    let text_len = addr.iter().position(|&b| b == 0).unwrap_or(addr.len());
    let (text, pad) = addr.split_at(text_len);
    if pad.iter().any(|&b| b != 0) {
        return None;
    }
    match u16::from_be_bytes([t0, t1]) {
        1 => Some(Kind::Request),
        2 if !text.is_empty()
            && text
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b'.' || b == b':') =>
        {
            Some(Kind::Reply)
        }
        _ => None,
    }
}

/// discord.pcap frames 20 and 21: IP discovery request and reply.
const REQUEST: &str = "000100460000ace3000000000000000000000000000000000000000000000000\
    0000000000000000000000000000000000000000000000000000000000000000\
    00000000000000000000";
const REPLY: &str = "000200460000ace338342e35392e3133322e3130300000000000000000000000\
    0000000000000000000000000000000000000000000000000000000000000000\
    0000000000000000e263";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "discord",
    protocols: &[DISCORD],
    tcp: false,
    udp: true,
    ports: &[],
    ports_only: false,
    first: |_, b| b == 0x00 || b == 0x13,
    run: dissect,
    samples: &[
        Sample {
            origin: "discord.pcap frames 20,21",
            tcp: false,
            server_port: 50004,
            packets: &[(true, REQUEST), (false, REPLY)],
            protocol: DISCORD,
        },
        Sample {
            origin: "discord.pcap frame 8",
            tcp: false,
            server_port: 50004,
            packets: &[(true, "1337cafe0e000000")],
            protocol: DISCORD,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn discovery_request_then_reply() {
        let (req, reply) = (hex(REQUEST), hex(REPLY));
        assert_eq!((req.len(), reply.len()), (74, 74));
        let f = flow(false, 57955, 50004);
        let (v, _) = run(dissect, &f, &[(true, &req), (false, &reply)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(DISCORD)]);
        // A request never answered is not enough.
        let (v, _) = run(dissect, &f, &[(true, &req[..]); 4]);
        assert_eq!(v.last(), Some(&Verdict::No));
        // A reply whose address is not text is not one.
        let mut bad = reply.clone();
        bad[9] = 0x01;
        let (v, _) = run(dissect, &f, &[(false, &bad)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn keepalive() {
        let f = flow(false, 56271, 50004);
        let (v, _) = run(dissect, &f, &[(true, &hex("1337cafe0e000000"))]);
        assert_eq!(v, [Verdict::Done(DISCORD)]);
        let (v, _) = run(dissect, &f, &[(true, &hex("1337cafe0e00000000"))]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn rejects_other_protocols() {
        use crate::dissect::testing::{DNS_QUERY, RTP, STUN_REQUEST, WIREGUARD_KEEPALIVE};
        let f = flow(false, 40000, 50004);
        for src in [DNS_QUERY, RTP, STUN_REQUEST, WIREGUARD_KEEPALIVE] {
            let (v, _) = run(dissect, &f, &[(true, &hex(src))]);
            assert_eq!(v, [Verdict::No], "{src}");
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let f = flow(false, 40000, 50004);
        for src in [REQUEST, REPLY] {
            let p = hex(src);
            for n in 0..p.len() {
                let (v, _) = run(dissect, &f, &[(false, &p[..n])]);
                assert_eq!(v, [Verdict::No]);
            }
        }
    }
}

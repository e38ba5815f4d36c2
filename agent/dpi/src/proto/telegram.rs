//! Telegram's MTProto over TCP, in its plain transports.
//!
//! The client names the transport in its first bytes: `ef` (abridged:
//! each message's length in 4-byte words in one byte, or `7f` and three
//! little-endian bytes), `ee ee ee ee` (intermediate: a 32-bit
//! little-endian length) or `dd dd dd dd` (padded intermediate: the same,
//! with 0 to 15 bytes of padding counted in). The first message must
//! then be an MTProto message: either unencrypted (a zero auth key id, a
//! message id, and a 32-bit length that accounts for the rest) or
//! encrypted (a nonzero auth key id, a 16-byte message key and whole
//! 16-byte blocks). The obfuscated transport is random bytes from the
//! first: only Telegram's addresses could tell it.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Telegram.
const TELEGRAM: Protocol = Protocol(185);
/// Largest first message taken as real.
const MAX_MESSAGE: usize = 64 * 1024;
/// Client packets after which an incomplete first message is not
/// Telegram.
const MAX_PACKETS: u32 = 4;

/// See the module's documentation.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.server_first {
        return Verdict::No;
    }
    if !pkt.from_client {
        return Verdict::Maybe;
    }
    match first_message(pkt.client_stream) {
        Some(true) => Verdict::Done(TELEGRAM),
        None if pkt.seen[0] + 1 < MAX_PACKETS => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Whether the client's stream opens with a transport tag and a valid
/// first message (`None`: not all of it yet).
fn first_message(s: &[u8]) -> Option<bool> {
    let (len, padded, rest) = match s {
        [0xef, 0x7f, a, b, c, rest @ ..] => (
            4 * (usize::from(*a) | usize::from(*b) << 8 | usize::from(*c) << 16),
            false,
            rest,
        ),
        [0xef, n @ 0..=0x7e, rest @ ..] => (4 * usize::from(*n), false, rest),
        [tag @ (0xee | 0xdd), rest @ ..] => {
            let Some((&[t1, t2, t3, l0, l1, l2, l3], rest)) = rest.split_first_chunk::<7>() else {
                return if rest.iter().take(3).all(|b| b == tag) {
                    None
                } else {
                    Some(false)
                };
            };
            if [t1, t2, t3] != [*tag; 3] {
                return Some(false);
            }
            let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
            (len, *tag == 0xdd, rest)
        }
        [0xef] | [0xef, 0x7f, ..] => return None,
        [] => return None,
        _ => return Some(false),
    };
    if !(24..=MAX_MESSAGE).contains(&len) {
        return Some(false);
    }
    // The auth key id and, unencrypted, the message id and length.
    let (&[k0, k1, k2, k3, k4, k5, k6, k7], body) = rest.split_first_chunk::<8>()?;
    let auth_key_id = u64::from_le_bytes([k0, k1, k2, k3, k4, k5, k6, k7]);
    let pad = if padded { 0..=15 } else { 0..=0 };
    if auth_key_id == 0 {
        let Some(&[l0, l1, l2, l3]) = body.get(8..12) else {
            return None;
        };
        // Message id (8), length (4), then the message.
        let inner = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
        let Some(extra) = len.checked_sub(20 + inner) else {
            return Some(false);
        };
        Some(inner >= 4 && inner % 4 == 0 && pad.contains(&extra))
    } else {
        // Message key (16), then whole 16-byte blocks (and the padded
        // transport's padding); alone in the client's first bytes.
        let data = len - 8;
        let blocks =
            (0..16).any(|p| pad.contains(&p) && data >= 32 + p && (data - 16 - p) % 16 == 0);
        let total = s.len() - rest.len() + len;
        if !blocks || s.len() > total {
            Some(false)
        } else if s.len() < total {
            None
        } else {
            Some(true)
        }
    }
}

/// A req_pq_multi in the intermediate transport, as sent by Telegram's
/// clients (built from the MTProto spec: tag, length 40, zero auth key
/// id, message id, length 20, constructor be7e8ef1, 16-byte nonce).
const REQ_PQ: &str = "eeeeeeee28000000\
    0000000000000000 00b4c5f64d8ec051 14000000 f18e7ebe\
    0123456789abcdef0123456789abcdef";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "telegram",
    protocols: &[TELEGRAM],
    tcp: true,
    udp: false,
    ports: &[443, 80, 5222],
    ports_only: false,
    first: |from_client, b| from_client && matches!(b, 0xef | 0xee | 0xdd),
    run: dissect,
    samples: &[Sample {
        origin: "built from the MTProto transport spec",
        tcp: true,
        server_port: 443,
        packets: &[(true, REQ_PQ)],
        protocol: TELEGRAM,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// The same message in `transport`'s framing.
    fn framed(transport: u8, pad: usize) -> Vec<u8> {
        let msg = &hex(REQ_PQ)[8..];
        let body = [msg, &vec![0x55; pad][..]].concat();
        let mut out = match transport {
            0xef => vec![0xef, (body.len() / 4) as u8],
            t => [&[t; 4][..], &(body.len() as u32).to_le_bytes()[..]].concat(),
        };
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn the_three_transports() {
        let f = flow(true, 58533, 443);
        for p in [
            framed(0xef, 0),
            framed(0xee, 0),
            framed(0xdd, 0),
            framed(0xdd, 7),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &p)]);
            assert_eq!(v, [Verdict::Done(TELEGRAM)], "{p:02x?}");
            // In two segments.
            let (a, b) = p.split_at(10);
            let (v, _) = run(dissect, &f, &[(true, a), (true, b)]);
            assert_eq!(v, [Verdict::Maybe, Verdict::Done(TELEGRAM)], "{p:02x?}");
        }
        // Padding only in the padded transport.
        let (v, _) = run(dissect, &f, &[(true, &framed(0xee, 4))]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn encrypted_first_message() {
        let f = flow(true, 58533, 443);
        let mut p = vec![0xef, 18];
        p.extend((1..=72u8).collect::<Vec<_>>());
        let (v, _) = run(dissect, &f, &[(true, &p)]);
        assert_eq!(v, [Verdict::Done(TELEGRAM)]);
        // Cut: wait for the rest.
        let (v, _) = run(dissect, &f, &[(true, &p[..40])]);
        assert_eq!(v, [Verdict::Maybe]);
        // More than the message.
        let more = [&p[..], &[0u8; 4][..]].concat();
        let (v, _) = run(dissect, &f, &[(true, &more)]);
        assert_eq!(v, [Verdict::No]);
        // Not whole blocks.
        p[1] = 17;
        let (v, _) = run(dissect, &f, &[(true, &p[..70])]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn rejects_others() {
        use crate::dissect::testing::{HTTP_REQUEST_HEAD, TLS_HELLO_HEAD};
        let f = flow(true, 40000, 443);
        for src in [HTTP_REQUEST_HEAD, TLS_HELLO_HEAD] {
            let (v, _) = run(dissect, &f, &[(true, &hex(src))]);
            assert_eq!(v, [Verdict::No], "{src}");
        }
        let (v, _) = run(dissect, &f, &[(true, &hex("eeeeeedd28000000"))]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let f = flow(true, 40000, 443);
        for p in [framed(0xef, 0), framed(0xdd, 3)] {
            for n in 1..p.len() {
                let (v, _) = run(dissect, &f, &[(true, &p[..n])]);
                assert_ne!(v, [Verdict::No], "{n}");
            }
        }
    }
}

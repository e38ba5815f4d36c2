//! Crypto-currency mining pools over TCP: Stratum (v1) and its
//! variants, JSON-RPC lines.
//!
//! The side that spoke first opens with a JSON object whose `method` is
//! a mining one (`mining.subscribe`, `login`, `eth_submitLogin`, ...),
//! or which carries a `worker` or `blob` field.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, by_opening};

/// Mining.
const MINING: Protocol = Protocol(42);
/// Mining methods (Stratum, its Monero and Ethereum variants).
const METHODS: &[&[u8]] = &[
    b"mining.subscribe",
    b"mining.authorize",
    b"mining.configure",
    b"mining.extranonce.subscribe",
    b"mining.notify",
    b"mining.set_difficulty",
    b"mining.submit",
    b"login",
    b"getjob",
    b"submit",
    b"keepalived",
    b"eth_submitLogin",
    b"eth_getWork",
    b"eth_submitWork",
    b"eth_submitHashrate",
];
/// Bytes of the first message searched.
const JSON_MAX: usize = 1024;
/// Payload packets a flow may take to show a whole line.
const MAX_PACKETS: u32 = 4;

/// `Done` on a mining request (see the module doc).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    by_opening(pkt, MINING, MAX_PACKETS, stratum)
}

/// Whether `s` opens with a mining request (`None`: too short to tell).
fn stratum(s: &[u8]) -> Option<bool> {
    if s.first().is_some_and(|&b| b != b'{') {
        return Some(false);
    }
    let s = s.get(..JSON_MAX).unwrap_or(s);
    if let Some(at) = find(s, b"\"method\"") {
        let rest = s.get(at + 8..)?;
        // `:`, spaces, then the quoted name.
        let q = rest.iter().position(|&b| b == b'"')?;
        if !rest[..q].iter().all(|&b| b == b':' || b == b' ') {
            return Some(false);
        }
        let value = &rest[q + 1..];
        let end = value.iter().position(|&b| b == b'"')?;
        return Some(METHODS.contains(&&value[..end]));
    }
    if find(s, b"\"worker\":").is_some() || find(s, b"\"blob\":").is_some() {
        return Some(true);
    }
    if s.contains(&b'\n') || s.len() >= JSON_MAX {
        Some(false)
    } else {
        None
    }
}

/// The first position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether a flow may start with `byte`: a JSON object's `{`.
fn first(_from_client: bool, byte: u8) -> bool {
    byte == b'{'
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "mining",
    protocols: &[MINING],
    tcp: true,
    udp: false,
    ports: &[3333],
    ports_only: false,
    first,
    run: dissect,
    samples: &[
        Sample {
            origin: "built: a Stratum v1 mining.subscribe (cgminer), as in the Stratum spec",
            tcp: true,
            server_port: 3333,
            packets: &[(true, SUBSCRIBE)],
            protocol: MINING,
        },
        Sample {
            origin: "built: an XMRig login (Monero Stratum variant)",
            tcp: true,
            server_port: 4444,
            packets: &[(true, LOGIN)],
            protocol: MINING,
        },
    ],
};

/// `{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.10.0"]}\n`
const SUBSCRIBE: &str = "7b226964223a20312c20226d6574686f64223a20226d696e696e672e73756273\
             6372696265222c2022706172616d73223a205b2263676d696e65722f342e3130\
             2e30225d7d0a";
/// `{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"4A","pass":"x","agent":"XMRig/6.21.0"}}\n`
const LOGIN: &str = "7b226964223a312c226a736f6e727063223a22322e30222c226d6574686f6422\
             3a226c6f67696e222c22706172616d73223a7b226c6f67696e223a223441222c\
             2270617373223a2278222c226167656e74223a22584d5269672f362e32312e30\
             227d7d0a";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn mining_requests() {
        let f = flow(true, 40000, 3333);
        for s in [SUBSCRIBE, LOGIN] {
            let (v, _) = run(dissect, &f, &[(true, &hex(s))]);
            assert_eq!(v, [Verdict::Done(MINING)], "{s}");
        }
        let p = hex(SUBSCRIBE);
        let (v, _) = run(dissect, &f, &[(true, &p[..20]), (true, &p[20..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MINING)]);
        let (v, _) = run(dissect, &f, &[(true, br#"{"worker": "rig1"}"#)]);
        assert_eq!(v, [Verdict::Done(MINING)]);
    }

    #[test]
    fn other_json_rpc_is_not_mining() {
        let f = flow(true, 40000, 8545);
        let other = br#"{"jsonrpc":"2.0","method":"eth_blockNumber","id":1}"#;
        let (v, _) = run(dissect, &f, &[(true, other)]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(dissect, &f, &[(true, b"{\"id\":1}\n")]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex(crate::dissect::testing::HTTP_REQUEST_HEAD))],
        );
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let p = hex(LOGIN);
        for n in 0..p.len() {
            let _ = run(dissect, &flow(true, 1, 2), &[(true, &p[..n])]);
        }
    }
}

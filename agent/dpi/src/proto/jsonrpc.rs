//! JSON-RPC straight over TCP or UDP (not inside HTTP): a JSON object (or
//! a batch, an array of them) with a `"jsonrpc"` member naming the
//! version, `"2.0"` (or `"1.0"`).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// JSON-RPC.
const JSON_RPC: Protocol = Protocol(375);
/// How far into the message the `"jsonrpc"` member is looked for.
const LOOK: usize = 512;

/// JSON-RPC when the first message (of whichever side spoke first; UDP:
/// the first datagram) opens a JSON object, or an array of objects, and
/// has a `"jsonrpc"` member with a version string within its first
/// [`LOOK`] bytes.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let first = if !pkt.tcp {
        if pkt.seen != [0, 0] {
            return Verdict::No;
        }
        pkt.payload
    } else {
        pkt.first_stream()
    };
    let head = &first[..first.len().min(LOOK)];
    let start = head.iter().position(|b| !b.is_ascii_whitespace());
    let opens = match start.map(|i| &head[i..]) {
        None => return if pkt.tcp { Verdict::Maybe } else { Verdict::No },
        Some([b'{', ..]) => true,
        Some([b'[', rest @ ..]) => rest
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_none_or(|&b| b == b'{'),
        Some(_) => false,
    };
    if !opens {
        return Verdict::No;
    }
    if version_member(head) {
        Verdict::Done(JSON_RPC)
    } else if pkt.tcp
        && first.len() < LOOK
        && head.iter().all(|&b| b >= 0x20 || b.is_ascii_whitespace())
    {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// Whether `json` has `"jsonrpc"`, a colon and `"2.0"` or `"1.0"`.
fn version_member(json: &[u8]) -> bool {
    const KEY: &[u8] = b"\"jsonrpc\"";
    json.windows(KEY.len()).enumerate().any(|(i, w)| {
        if w != KEY {
            return false;
        }
        let rest = &json[i + KEY.len()..];
        let rest = trim(rest);
        let Some(rest) = rest.strip_prefix(b":") else {
            return false;
        };
        let value = trim(rest);
        value.starts_with(b"\"2.0\"") || value.starts_with(b"\"1.0\"")
    })
}

/// `bytes` without leading whitespace.
fn trim(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[n..]
}

/// [`Dissector::first`]: a JSON object or array, maybe after whitespace.
fn jsonrpc_first(_from_client: bool, byte: u8) -> bool {
    byte == b'{' || byte == b'[' || byte.is_ascii_whitespace()
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "jsonrpc",
    protocols: &[JSON_RPC],
    tcp: true,
    udp: true,
    ports: &[],
    ports_only: false,
    first: jsonrpc_first,
    run: dissect,
    samples: &[Sample {
        origin: "jsonrpc.pcap frame 4 (first 60 bytes)",
        tcp: true,
        server_port: 8080,
        packets: &[(
            true,
            "7b226a736f6e727063223a2022322e30222c20226d6574686f64223a20226563686f222c2022706172616d73223a205b2254657374696e6721225d2c",
        )],
        protocol: JSON_RPC,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, run};

    #[test]
    fn requests_and_batches() {
        // jsonrpc.pcap frame 4 (start).
        let f = flow(true, 36646, 8080);
        let req = br#"{"jsonrpc": "2.0", "method": "echo", "params": ["Testing!"], "id": "ca08"}"#;
        let (v, meta) = run(dissect, &f, &[(true, req)]);
        assert_eq!(v, [Verdict::Done(JSON_RPC)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(
            dissect,
            &f,
            &[(true, br#"{"method":"x","#), (true, br#""jsonrpc":"2.0"}"#)],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(JSON_RPC)]);
        let batch = br#"[ {"jsonrpc":"2.0","method":"a","id":1} ]"#;
        let (v, _) = run(dissect, &flow(false, 1, 2), &[(true, batch)]);
        assert_eq!(v, [Verdict::Done(JSON_RPC)]);
    }

    #[test]
    fn not_json_rpc() {
        let f = flow(true, 40000, 8080);
        for p in [
            &br#"POST / HTTP/1.1\r\n\r\n{"jsonrpc":"2.0"}"#[..],
            br#"{"jsonrpc": 2}"#,
            br#"["jsonrpc", "2.0"]"#,
        ] {
            let (v, _) = run(dissect, &f, &[(true, p)]);
            assert_ne!(v, [Verdict::Done(JSON_RPC)], "{p:?}");
        }
        let (v, _) = run(dissect, &flow(false, 1, 2), &[(true, br#"{"a": 1}"#)]);
        assert_eq!(v, [Verdict::No]);
    }
}

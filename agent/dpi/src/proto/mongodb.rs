//! MongoDB wire protocol over TCP.
//!
//! Every message starts with a little-endian header: `messageLength`
//! (the whole message), `requestID`, `responseTo` and `opCode`. A request
//! answers nothing (`responseTo` 0, or -1 from some drivers); a reply's
//! `responseTo` is its request's id.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// MongoDB.
const MONGODB: Protocol = Protocol(60);
/// Header length.
const HEADER: usize = 16;
/// Largest message (MongoDB's limit is 48 MB).
const MAX_MESSAGE: u32 = 48_000_000;
/// OP_REPLY.
const OP_REPLY: u32 = 1;
/// OP_COMPRESSED.
const OP_COMPRESSED: u32 = 2012;
/// OP_MSG.
const OP_MSG: u32 = 2013;

/// A message header.
#[derive(Clone, Copy, Debug)]
struct Header {
    len: u32,
    id: u32,
    response_to: u32,
    op: u32,
}

/// MongoDB when the client's first message is a request (a known opcode,
/// a length that holds its body, a body that starts as the opcode wants)
/// and the server's first, if any yet, a reply to it. A capture of the
/// server side only must show a reply whose body starts right.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    if pkt.server_first {
        // Mid-stream: the server's reply alone.
        return match header(server) {
            None if server.len() < HEADER => Verdict::Maybe,
            Some(h) if is_reply(h) && body_ok(h, server) => Verdict::Done(MONGODB),
            _ => Verdict::No,
        };
    }
    let Some(request) = header(client) else {
        return if client.len() < HEADER {
            Verdict::Maybe
        } else {
            Verdict::No
        };
    };
    let request_ok = matches!(request.op, 2001..=2007 | 2010 | OP_COMPRESSED | OP_MSG)
        && (request.response_to == 0 || request.response_to == u32::MAX)
        && body_ok(request, client);
    if !request_ok {
        return Verdict::No;
    }
    match header(server) {
        None if server.len() < HEADER => Verdict::Done(MONGODB),
        Some(reply) if reply.response_to == request.id && is_reply(reply) => Verdict::Done(MONGODB),
        _ => Verdict::No,
    }
}

/// The header at the start of `stream`, if it is one (length in range,
/// opcode known).
fn header(stream: &[u8]) -> Option<Header> {
    let word = |i: usize| {
        let b = stream.get(i * 4..i * 4 + 4)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    };
    let h = Header {
        len: word(0)?,
        id: word(1)?,
        response_to: word(2)?,
        op: word(3)?,
    };
    let known = matches!(h.op, OP_REPLY | 2001..=2013);
    (known && (HEADER as u32 + 4..=MAX_MESSAGE).contains(&h.len)).then_some(h)
}

/// A reply's opcode.
fn is_reply(h: Header) -> bool {
    matches!(h.op, OP_REPLY | 2011 | OP_COMPRESSED | OP_MSG) && h.response_to != 0
}

/// Whether the body's first bytes (those in `stream`) fit the opcode.
fn body_ok(h: Header, stream: &[u8]) -> bool {
    let body = stream
        .get(HEADER..(h.len as usize).min(stream.len()))
        .unwrap_or_default();
    match h.op {
        // OP_MSG: flag bits (only bits 0, 1 and 16 defined), then a
        // section kind 0 or 1.
        OP_MSG => {
            let flags_ok = body
                .get(..4)
                .is_none_or(|f| f[0] & !3 == 0 && f[1] == 0 && f[2] & !1 == 0 && f[3] == 0);
            flags_ok && body.get(4).is_none_or(|&kind| kind <= 1)
        }
        // OP_REPLY: response flags (4 bits defined).
        OP_REPLY => body
            .get(..4)
            .is_none_or(|f| f[0] & 0xf0 == 0 && f[1..] == [0; 3]),
        // OP_QUERY: flags (bits 1 to 7), then a collection name `db.coll`.
        2004 => {
            let flags_ok = body
                .get(..4)
                .is_none_or(|f| f[0] & 1 == 0 && f[1..] == [0; 3]);
            let name = body.get(4..).unwrap_or_default();
            let name = &name[..name.len().min(128)];
            let end = name.iter().position(|&b| b == 0);
            let text = &name[..end.unwrap_or(name.len())];
            let chars_ok = text.iter().all(|&b| b.is_ascii_graphic());
            let dot_ok = end.is_none() || text.contains(&b'.');
            flags_ok && chars_ok && dot_ok && (end.is_some() || name.len() < 128)
        }
        _ => true,
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "mongodb",
    protocols: &[MONGODB],
    tcp: true,
    udp: false,
    ports: &[27017, 27018, 27019],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "mongodb.pcap frame 12 (OP_QUERY getnonce)",
        tcp: true,
        server_port: 27017,
        packets: &[(
            true,
            "3b0000000000000000000000d4070000000000006162746573742e24636d640000000000ffffffff13000000106765746e6f6e6365000100000000",
        )],
        protocol: MONGODB,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// mongodb.pcap frame 12: an OP_QUERY `getnonce` on `abtest.$cmd`.
    const QUERY: &str = "3b0000000000000000000000d4070000000000006162746573742e24636d640000000000ffffffff13000000106765746e6f6e6365000100000000";
    /// mongodb.pcap frame 27: the same with `responseTo` -1.
    const QUERY_MINUS_ONE: &str = "4900000087910000ffffffffd407000000000000496e616374697665557365724964656e746974792e24636d6400000000000100000013000000106765746e6f6e6365000100000000";

    #[test]
    fn client_query_alone_and_with_reply() {
        let f = flow(true, 55582, 27017);
        let (v, meta) = run(dissect, &f, &[(true, &hex(QUERY))]);
        assert_eq!(v, [Verdict::Done(MONGODB)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(true, &hex(QUERY_MINUS_ONE))]);
        assert_eq!(v, [Verdict::Done(MONGODB)]);
        // Split: the header first.
        let q = hex(QUERY);
        let (v, _) = run(dissect, &f, &[(true, &q[..10]), (true, &q[10..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MONGODB)]);
        // Synthetic OP_MSG request and its reply.
        let msg = hex(
            "2a000000 07000000 00000000 dd070000 00000000 00 15000000 10 70696e6700 01000000 00",
        );
        let reply = hex(
            "2a000000 08000000 07000000 dd070000 00000000 00 15000000 01 6f6b0000000000 00f03f 00",
        );
        let (v, _) = run(dissect, &f, &[(true, &msg), (false, &reply)]);
        assert_eq!(v, [Verdict::Done(MONGODB), Verdict::Done(MONGODB)]);
        let (v, _) = run(dissect, &f, &[(false, &reply)]);
        assert_eq!(v, [Verdict::Done(MONGODB)]);
    }

    #[test]
    fn not_mongodb() {
        let f = flow(true, 40000, 27017);
        for p in [
            hex(crate::dissect::testing::TLS_HELLO_HEAD),
            hex(crate::dissect::testing::HTTP_REQUEST_HEAD),
            // A wrong opcode, a reply as request.
            hex("3b0000000000000000000000d8070000000000006162"),
            hex("3b000000000000000100000001000000000000006162"),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &p)]);
            assert_eq!(v, [Verdict::No]);
        }
        // A server reply to another request.
        let reply =
            hex("24000000 08000000 09000000 01000000 00000000 0000000000000000 00000000 00000000");
        let q = hex(QUERY);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &q[..8]), (false, &reply), (true, &q[8..])],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn prefixes_do_not_panic() {
        let q = hex(QUERY);
        for n in 1..q.len() {
            let (v, _) = run(dissect, &flow(true, 1, 27017), &[(true, &q[..n])]);
            assert_ne!(v, [Verdict::No], "{n}");
        }
    }
}

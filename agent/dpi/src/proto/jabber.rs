//! XMPP, "Jabber" (RFC 6120; nDPI 67), over TCP in clear.
//!
//! Either side opens its stream with an XML declaration (`<?xml ...?>`)
//! or directly with `<stream:stream `, and the stream header declares the
//! `http://etherx.jabber.org/streams` namespace. (XMPP over TLS from the
//! first byte, port 5223, is TLS.)

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};
use crate::proto::mail::starts_ci;

/// nDPI's Jabber.
const JABBER: Protocol = Protocol(67);
/// The streams namespace.
const NAMESPACE: &[u8] = b"http://etherx.jabber.org/streams";
/// How an XMPP stream may open.
const OPENINGS: [&[u8]; 2] = [b"<?xml ", b"<stream:stream "];
/// Bytes read for the stream header.
const HEADER_MAX: usize = 1024;

/// Done when a stream header names the streams namespace.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    let stream = pkt.stream();
    let head = &stream[..stream.len().min(HEADER_MAX)];
    let opens = OPENINGS
        .iter()
        .any(|o| o.starts_with(&head[..head.len().min(o.len())]));
    if !opens {
        return Verdict::No;
    }
    let declared = OPENINGS.iter().any(|o| starts_ci(head, o))
        && head.windows(NAMESPACE.len()).any(|w| w == NAMESPACE);
    if declared {
        Verdict::Done(JABBER)
    } else if stream.len() < HEADER_MAX {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "jabber",
    protocols: &[JABBER],
    tcp: true,
    udp: false,
    ports: &[5222, 5269],
    ports_only: false,
    first: |_, byte| byte == b'<',
    run: dissect,
    samples: &[Sample {
        origin: "built: a client's stream header (RFC 6120 9.1.1)",
        tcp: true,
        server_port: 5222,
        packets: &[(
            true,
            "3c3f786d6c2076657273696f6e3d27312e30273f3e3c73747265616d3a737472\
             65616d2066726f6d3d276a756c696574406578616d706c652e636f6d2720746f\
             3d276578616d706c652e636f6d272076657273696f6e3d27312e302720786d6c\
             3a6c616e673d27656e2720786d6c6e733d276a61626265723a636c69656e7427\
             20786d6c6e733a73747265616d3d27687474703a2f2f6574686572782e6a6162\
             6265722e6f72672f73747265616d73273e",
        )],
        protocol: JABBER,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{HTTP_REQUEST_HEAD, TLS_HELLO_HEAD, flow, hex, run};

    const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream from='juliet@example.com' \
        to='example.com' version='1.0' xml:lang='en' xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams'>";

    #[test]
    fn stream_header() {
        let f = flow(true, 40000, 5222);
        let (v, meta) = run(dissect, &f, &[(true, HEADER)]);
        assert_eq!(v, [Verdict::Done(JABBER)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(true, &HEADER[..50]), (true, &HEADER[50..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(JABBER)]);
        // Without the XML declaration, double quotes, from the server.
        let h = b"<stream:stream xmlns=\"jabber:server\" \
            xmlns:stream=\"http://etherx.jabber.org/streams\" id=\"x\">";
        let (v, _) = run(dissect, &f, &[(false, h)]);
        assert_eq!(v, [Verdict::Done(JABBER)]);
    }

    #[test]
    fn other_xml_is_not_jabber() {
        let f = flow(true, 40000, 80);
        let soap = b"<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\">";
        let (v, _) = run(dissect, &f, &[(true, soap)]);
        assert_eq!(v, [Verdict::Maybe]);
        let mut long = soap.to_vec();
        long.resize(HEADER_MAX, b' ');
        let (v, _) = run(dissect, &f, &[(true, &long)]);
        assert_eq!(v, [Verdict::No]);
        for p in [TLS_HELLO_HEAD, HTTP_REQUEST_HEAD] {
            assert_eq!(run(dissect, &f, &[(true, &hex(p))]).0, [Verdict::No]);
        }
    }
}

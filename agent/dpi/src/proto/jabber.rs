//! XMPP, "Jabber" (RFC 6120; nDPI 67), over TCP in clear, and its
//! STARTTLS upgrade to TLS.
//!
//! Either side opens its stream with an XML declaration (`<?xml ...?>`)
//! or directly with `<stream:stream `, and the stream header declares the
//! `http://etherx.jabber.org/streams` namespace. (XMPP over TLS from the
//! first byte, port 5223, is TLS.) Then the client's `<starttls/>`
//! answered `<proceed/>` hands the rest of both streams to the TLS
//! dissector; the flow stays Jabber.

use flowstat_core::{Metadata, Protocol};
use memchr::memmem;

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};
use crate::proto::mail::starts_ci;
use crate::proto::tls;

/// nDPI's Jabber.
const JABBER: Protocol = Protocol(67);
/// The streams namespace.
const NAMESPACE: &[u8] = b"http://etherx.jabber.org/streams";
/// How an XMPP stream may open.
const OPENINGS: [&[u8]; 2] = [b"<?xml ", b"<stream:stream "];
/// Bytes read for the stream header.
const HEADER_MAX: usize = 1024;
/// Packets with payload within which the client asks for TLS, or the
/// session is taken to go on in clear text.
const STARTTLS_WAIT: u32 = 12;

/// Per-flow state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// A stream header was seen.
    xmpp: bool,
    /// Where the client's `<starttls/>` ends, and the server stream's
    /// length then.
    pending: Option<[usize; 2]>,
    /// After `<proceed/>`: where TLS starts in each stream.
    tls: Option<[usize; 2]>,
}

/// Found when a stream header names the streams namespace; then the
/// STARTTLS negotiation is followed.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    tls::after_starttls(pkt, scratch, meta, |st: &mut State, _| {
        (step(pkt, st), st.tls.map(|start| (start, JABBER)))
    })
}

/// Detection, then STARTTLS tracking (the TLS part is left to `dissect`).
fn step(pkt: &Packet<'_>, st: &mut State) -> Verdict {
    if !st.xmpp {
        match header(pkt.stream()) {
            Verdict::Done(_) => st.xmpp = true,
            verdict => return verdict,
        }
    }
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    match st.pending {
        _ if st.tls.is_some() => {}
        None => match element_end(client, b"<starttls", b"</starttls>") {
            Some(end) => st.pending = Some([end, server.len()]),
            None if pkt.packets() >= STARTTLS_WAIT => return Verdict::Done(JABBER),
            None => {}
        },
        Some([client_end, server_start]) => {
            let reply = server.get(server_start..).unwrap_or_default();
            if let Some(end) = element_end(reply, b"<proceed", b"</proceed>") {
                st.tls = Some([client_end, server_start + end]);
            } else if memmem::find(reply, b"<failure").is_some() {
                return Verdict::Done(JABBER);
            }
        }
    }
    Verdict::Found(JABBER)
}

/// Done when the stream header at the start of `stream` names the
/// streams namespace.
fn header(stream: &[u8]) -> Verdict {
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

/// Where the first element opened by `open` (`<name`) in `xml` ends:
/// after its `/>`, or after its `close` (`</name>`).
fn element_end(xml: &[u8], open: &[u8], close: &[u8]) -> Option<usize> {
    let start = memmem::find(xml, open)?;
    let tag_end = start + memchr::memchr(b'>', xml.get(start..)?)?;
    if tag_end > 0 && xml.get(tag_end - 1) == Some(&b'/') {
        return Some(tag_end + 1);
    }
    memmem::find(xml.get(tag_end..)?, close).map(|i| tag_end + i + close.len())
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
        assert_eq!(v, [Verdict::Found(JABBER)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(true, &HEADER[..50]), (true, &HEADER[50..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Found(JABBER)]);
        // Without the XML declaration, double quotes, from the server.
        let h = b"<stream:stream xmlns=\"jabber:server\" \
            xmlns:stream=\"http://etherx.jabber.org/streams\" id=\"x\">";
        let (v, _) = run(dissect, &f, &[(false, h)]);
        assert_eq!(v, [Verdict::Found(JABBER)]);
    }

    /// The server's answer to the client's stream header (RFC 6120 9.1.1).
    const FEATURES: &[u8] = b"<?xml version='1.0'?><stream:stream from='example.com' \
        id='t7AMCin9zjMNwQKDnplntZPIDEI=' to='juliet@example.com' version='1.0' \
        xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>\
        <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
        <required/></starttls></stream:features>";

    #[test]
    fn starttls_hands_the_streams_to_tls() {
        // RFC 6120 9.1's exchange, then 443-curl.pcap frame 4's hello.
        let hello = hex(include_str!("tls/testdata/443-curl-4.hex"));
        let f = flow(true, 40000, 5222);
        let (v, meta) = run(
            dissect,
            &f,
            &[
                (true, HEADER),
                (false, FEATURES),
                (true, b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
                (false, b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
                (true, &hello),
            ],
        );
        assert!(v.iter().all(|&v| v == Verdict::Found(JABBER)), "{v:?}");
        let ssl = meta.ssl.unwrap();
        assert_eq!(ssl.client_ja4, "t12d6707h2_2955a3196ffa_c83f907a73d3");
    }

    #[test]
    fn refused_or_no_starttls_ends_detection() {
        let f = flow(true, 40000, 5222);
        let (v, _) = run(
            dissect,
            &f,
            &[
                (true, HEADER),
                (false, FEATURES),
                (
                    true,
                    b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>",
                ),
                (false, b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
            ],
        );
        assert_eq!(v[3], Verdict::Done(JABBER));
        let mut packets = vec![(true, HEADER), (false, FEATURES)];
        packets.resize(STARTTLS_WAIT as usize, (true, b"<iq type='get' id='1'/>"));
        let (v, _) = run(dissect, &f, &packets);
        assert_eq!(v.last(), Some(&Verdict::Done(JABBER)));
    }

    #[test]
    fn elements_end_after_their_close() {
        let x = b"a<proceed xmlns='x'/>b";
        assert_eq!(
            element_end(x, b"<proceed", b"</proceed>"),
            Some(x.len() - 1)
        );
        let x = b"<proceed xmlns='x'></proceed>b";
        assert_eq!(
            element_end(x, b"<proceed", b"</proceed>"),
            Some(x.len() - 1)
        );
        assert_eq!(
            element_end(b"<proceed xmlns=", b"<proceed", b"</proceed>"),
            None
        );
        assert_eq!(element_end(b"<proceed>", b"<proceed", b"</proceed>"), None);
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

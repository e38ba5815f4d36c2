//! WHOIS (RFC 3912) on TCP port 43, and the whois-das port 4343: a text
//! query line from the client, a text answer from the server. As nDPI,
//! told by the port, here with text required on it.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// Whois-DAS.
const WHOIS: Protocol = Protocol(170);
/// Its ports.
const PORTS: [u16; 2] = [43, 4343];

/// Whois-DAS when the flow's server port is 43 or 4343 and the first
/// bytes (of whichever side spoke first) are text: a query line ending in
/// a line feed, or a server's text answer.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    let port_ok = PORTS.contains(&pkt.flow.server_port) || PORTS.contains(&pkt.flow.client_port);
    if !pkt.tcp || !port_ok {
        return Verdict::No;
    }
    let first = pkt.first_stream();
    let head = &first[..first.len().min(256)];
    let text = |b: &u8| b.is_ascii_graphic() || b" \t\r\n".contains(b) || *b >= 0x80;
    if head.is_empty() || !head.iter().all(text) || !(head[0].is_ascii_graphic() || head[0] == b' ')
    {
        return Verdict::No;
    }
    // A query is one short line; an answer (a one-sided capture) is text.
    if head.contains(&b'\n') || pkt.server_first {
        // A query for a domain names the flow's host, as nDPI does.
        let query = head
            .split(|&b| b == b'\n')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let domain = |b: &u8| b.is_ascii_alphanumeric() || b".-".contains(b);
        if !pkt.server_first && query.contains(&b'.') && query.iter().all(domain) {
            meta.host_server_name = String::from_utf8_lossy(query).to_ascii_lowercase();
        }
        Verdict::Done(WHOIS)
    } else if first.len() < 256 {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "whois",
    protocols: &[WHOIS],
    tcp: true,
    udp: false,
    ports: &[43, 4343],
    ports_only: true,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "whois.pcapng frame 4",
        tcp: true,
        server_port: 43,
        packets: &[(true, "6578616d706c652e636f6d0d0a")],
        protocol: WHOIS,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn query_and_one_sided_answer() {
        // whois.pcapng frame 4: `example.com\r\n`.
        let f = flow(true, 44188, 43);
        let (v, meta) = run(dissect, &f, &[(true, &hex("6578616d706c652e636f6d0d0a"))]);
        assert_eq!(v, [Verdict::Done(WHOIS)]);
        assert_eq!(meta.host_server_name, "example.com");
        let (v, _) = run(dissect, &f, &[(true, b"exam"), (true, b"ple.com\r\n")]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(WHOIS)]);
        // whois.pcapng frame 6, first bytes: the server side only.
        let (v, _) = run(dissect, &f, &[(false, b"% IANA WHOIS server\n% for more")]);
        assert_eq!(v, [Verdict::Done(WHOIS)]);
        // whois.pcapng frame 20 (first bytes), the server side only.
        let (v, _) = run(
            dissect,
            &f,
            &[(false, b"   Domain Name: CYBERPATROLBD.COM\r\n   Regis")],
        );
        assert_eq!(v, [Verdict::Done(WHOIS)]);
    }

    #[test]
    fn not_whois() {
        // TLS on 4343 (whois.pcapng frame 16), text elsewhere.
        let tls = hex(crate::dissect::testing::TLS_HELLO_HEAD);
        let (v, _) = run(dissect, &flow(true, 64016, 4343), &[(true, &tls)]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(
            dissect,
            &flow(true, 40000, 80),
            &[(true, b"example.com\r\n")],
        );
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(
            dissect,
            &flow(false, 40000, 43),
            &[(true, b"example.com\r\n")],
        );
        assert_eq!(v, [Verdict::No]);
    }
}

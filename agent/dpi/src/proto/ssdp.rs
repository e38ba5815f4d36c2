//! SSDP (UPnP discovery) over UDP: HTTP-like requests and responses.

use flowstat_core::{Metadata, Protocol, wire_text};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// SSDP (`Protocol(12)`, "SSDP"): a datagram starting `M-SEARCH *
/// HTTP/1.1`, `NOTIFY * HTTP/1.1`, or `HTTP/1.1 200 OK` with an `ST` or
/// `USN` header. `USER-AGENT` (else `SERVER`) goes to `ssdp_user_agent`,
/// `HOST` (the multicast address and port, as nDPI reports it) to
/// `host_server_name`.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    let payload = pkt.payload;
    let request = [&b"M-SEARCH * HTTP/1.1\r\n"[..], b"NOTIFY * HTTP/1.1\r\n"]
        .iter()
        .any(|line| payload.starts_with(line));
    let response = payload.starts_with(b"HTTP/1.1 200 OK\r\n");
    if !request && !response {
        return Verdict::No;
    }
    let (mut user_agent, mut server, mut host, mut ssdp_header) = (None, None, None, false);
    // Header lines up to the blank line; the payload bounds the loop.
    for line in payload.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            break;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"user-agent") {
            user_agent.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"server") {
            server.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"host") {
            host.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"st") || name.eq_ignore_ascii_case(b"usn") {
            ssdp_header = true;
        }
    }
    if response && !ssdp_header {
        return Verdict::No; // some other HTTP over UDP
    }
    if let Some(agent) = user_agent.or(server).filter(|a| !a.is_empty()) {
        meta.ssdp_user_agent = Some(wire_text(agent, 256));
    }
    if let Some(host) = host.filter(|h| !h.is_empty()) {
        meta.host_server_name = wire_text(host, 253);
    }
    Verdict::Done(Protocol(12)) // SSDP
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "ssdp",
    protocols: &[Protocol(12)],
    tcp: false,
    udp: true,
    ports: &[1900],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "ssdp-m-search.pcap frames ,,,",
        tcp: false,
        server_port: 32412,
        packets: &[
            (true, "4d2d534541524348202a20485454502f312e310d0a"),
            (true, "4d2d534541524348202a20485454502f312e310d0a"),
            (true, "4d2d534541524348202a20485454502f312e310d0a"),
            (true, "4d2d534541524348202a20485454502f312e310d0a"),
        ],
        protocol: Protocol(12),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    // ssdp-m-search.pcap frame 1: a bare request line (Plex discovery).
    const M_SEARCH: &str = "4d2d534541524348202a20485454502f312e310d0a";

    #[test]
    fn bare_m_search() {
        let (v, meta) = run(
            dissect,
            &flow(false, 42253, 32412),
            &[(true, &hex(M_SEARCH))],
        );
        assert_eq!(v, [Verdict::Done(Protocol(12))]);
        assert_eq!(meta.ssdp_user_agent, None);
    }

    #[test]
    fn user_agent_and_server() {
        // Synthetic (the corpus's only SSDP has no headers).
        let f = flow(false, 50000, 1900);
        let search = b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\nUSER-AGENT: Chromium/120.0 Linux\r\n\r\n";
        let (v, meta) = run(dissect, &f, &[(true, search)]);
        assert_eq!(v, [Verdict::Done(Protocol(12))]);
        assert_eq!(
            meta.ssdp_user_agent.as_deref(),
            Some("Chromium/120.0 Linux")
        );
        assert_eq!(meta.host_server_name, "239.255.255.250:1900");
        let reply = b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nST: upnp:rootdevice\r\nUSN: uuid:1::upnp:rootdevice\r\nServer: Linux/5.10 UPnP/1.0 miniupnpd/2.2\r\n\r\n";
        let (v, meta) = run(dissect, &f, &[(false, reply)]);
        assert_eq!(v, [Verdict::Done(Protocol(12))]);
        assert_eq!(
            meta.ssdp_user_agent.as_deref(),
            Some("Linux/5.10 UPnP/1.0 miniupnpd/2.2")
        );
        let http = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(run(dissect, &f, &[(false, http)]).0, [Verdict::No]);
    }

    #[test]
    fn other_protocols_and_truncation() {
        let f = flow(false, 50000, 1900);
        // dns.pcap frame 4: DNS query; syslog.pcap frame 1 (first 32 bytes).
        let dns = hex("784301000001000000000000026537087768617473617070036e65740000010001");
        let syslog = b"<26>Jan 01 00:01:47 nb6 nbd: 01=";
        for other in [&dns[..], syslog] {
            assert_eq!(run(dissect, &f, &[(true, other)]).0, [Verdict::No]);
        }
        let msg = hex(M_SEARCH);
        for n in 0..msg.len() {
            assert_eq!(run(dissect, &f, &[(true, &msg[..n])]).0, [Verdict::No]);
        }
    }
}

//! NTP over UDP (RFC 5905, and the mode 6/7 control messages).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// NTP (`Protocol(9)`, "NTP"), on port 123 (other ports are rejected: the
/// header is only a few bits): version 1..=4 and, for modes 1..=5, a
/// 48-byte header (extension fields and MAC in 4-byte words after it)
/// with stratum 0..=16; modes 6 and 7 (control, private) need 8 bytes.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let ports = [pkt.flow.client_port, pkt.flow.server_port];
    let p = pkt.payload;
    let Some(&[first, stratum]) = p.first_chunk::<2>() else {
        return Verdict::No;
    };
    let (version, mode) = ((first >> 3) & 7, first & 7);
    let ok = ports.contains(&123)
        && (1..=4).contains(&version)
        && match mode {
            1..=5 => p.len() >= 48 && p.len() % 4 == 0 && stratum <= 16,
            6 | 7 => p.len() >= 8,
            _ => false,
        };
    if ok {
        Verdict::Done(Protocol(9)) // NTP
    } else {
        Verdict::No
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "ntp",
    protocols: &[Protocol(9)],
    tcp: false,
    udp: true,
    ports: &[123],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "NTPv4.pcap frames 1",
        tcp: false,
        server_port: 123,
        packets: &[(
            true,
            "230207eb00000450000003ab83bc03dfd94f51c33165b860d944575530336fd0\
             d944575531b4e978d94f51f42d26e2f4",
        )],
        protocol: Protocol(9),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    // NTPv4.pcap frame 1: a v4 client request.
    const REQUEST: &str = "230207eb00000450000003ab83bc03dfd94f51c33165b860d944575530336fd0d944575531b4e978d94f51f42d26e2f4";

    #[test]
    fn request() {
        let (v, _) = run(dissect, &flow(false, 123, 123), &[(true, &hex(REQUEST))]);
        assert_eq!(v, [Verdict::Done(Protocol(9))]);
        // The same bytes off port 123 are not enough.
        let (v, _) = run(dissect, &flow(false, 5000, 6000), &[(true, &hex(REQUEST))]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn other_protocols_and_truncation() {
        let f = flow(false, 40000, 123);
        // dns.pcap frame 4: DNS query; snmp.pcap frame 1: SNMP get.
        let dns = hex("784301000001000000000000026537087768617473617070036e65740000010001");
        let snmp = hex(
            "302902010004067075626c6963a11c02044b781a6e020100020100300e300c06082b060102010105000500",
        );
        for other in [dns, snmp] {
            assert_eq!(run(dissect, &f, &[(true, &other)]).0, [Verdict::No]);
        }
        let msg = hex(REQUEST);
        for n in 0..msg.len() {
            assert_eq!(run(dissect, &f, &[(true, &msg[..n])]).0, [Verdict::No]);
        }
    }
}

//! Spotify's LAN discovery over UDP.
//!
//! Spotify clients broadcast on port 57621 (both ends; one is enough
//! here) datagrams that start with the text `SpotUdp` and a version
//! digit.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Spotify.
const SPOTIFY: Protocol = Protocol(156);
/// The discovery port.
const PORT: u16 = 57621;
/// The discovery magic.
const MAGIC: &[u8] = b"SpotUdp";

/// `Done` on a discovery datagram to or from the discovery port.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let ports = pkt.flow.client_port == PORT || pkt.flow.server_port == PORT;
    match pkt.payload.strip_prefix(MAGIC) {
        Some([version, ..]) if ports && version.is_ascii_digit() => Verdict::Done(SPOTIFY),
        _ => Verdict::No,
    }
}

/// zoom.pcap, a broadcast from 192.168.1.117:57621 (first 24 bytes).
const DISCOVERY: &str = "53706f74556470300915339692d33a94000100044895c203";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "spotify",
    protocols: &[SPOTIFY],
    tcp: false,
    udp: true,
    ports: &[PORT],
    ports_only: true,
    first: |_, b| b == b'S',
    run: dissect,
    samples: &[Sample {
        origin: "zoom.pcap, a broadcast from 192.168.1.117:57621",
        tcp: false,
        server_port: PORT,
        packets: &[(true, DISCOVERY)],
        protocol: SPOTIFY,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn discovery_broadcast() {
        let p = hex(DISCOVERY);
        let (v, _) = run(dissect, &flow(false, PORT, PORT), &[(true, &p)]);
        assert_eq!(v, [Verdict::Done(SPOTIFY)]);
        let (v, _) = run(dissect, &flow(false, 40000, 40001), &[(true, &p)]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(dissect, &flow(false, PORT, PORT), &[(true, &p[..7])]);
        assert_eq!(v, [Verdict::No]);
        let dns = hex(crate::dissect::testing::DNS_QUERY);
        let (v, _) = run(dissect, &flow(false, PORT, PORT), &[(true, &dns)]);
        assert_eq!(v, [Verdict::No]);
    }
}

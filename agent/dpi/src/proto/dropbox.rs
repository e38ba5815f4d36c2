//! Dropbox's LAN sync over UDP 17500: its discovery broadcasts (JSON with
//! a `"host_int"` key, from and to port 17500) and its bus messages
//! (`Bus17Cmd`) to port 17500.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Dropbox.
const DROPBOX: Protocol = Protocol(121);
/// The LAN sync port.
const PORT: u16 = 17500;

/// `Done` on a discovery broadcast or a bus message, else `No`.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let (from, to) = match pkt.from_client {
        true => (pkt.flow.client_port, pkt.flow.server_port),
        false => (pkt.flow.server_port, pkt.flow.client_port),
    };
    let has = |needle: &[u8]| memchr::memmem::find(pkt.payload, needle).is_some();
    let found = to == PORT
        && if from == PORT {
            pkt.payload.starts_with(b"{\"") && has(b"\"host_int\"")
        } else {
            has(b"Bus17Cmd")
        };
    if found {
        Verdict::Done(DROPBOX)
    } else {
        Verdict::No
    }
}

/// dropbox.pcap frame 1, a bus message (its JSON cut after the first key).
const BUS: &str = "430335016f524d72445c4172084275733137436d641132ff7b226d657373616765\
                   54797065223a22555044415445227d";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "dropbox",
    protocols: &[DROPBOX],
    tcp: false,
    udp: true,
    ports: &[PORT],
    ports_only: true,
    first: crate::dissect::any_first,
    run: dissect,
    samples: &[Sample {
        origin: "dropbox.pcap frame 1, its JSON cut short",
        tcp: false,
        server_port: PORT,
        packets: &[(true, BUS)],
        protocol: DROPBOX,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, flow, hex, run};

    /// android.pcap frame 24, a discovery broadcast (first 80 bytes).
    const DISCOVERY: &str = "7b2276657273696f6e223a205b322c20305d2c2022706f7274223a2031373530302c2022686f73745f696e74223a20333330343032363234303133313637313132373137373134353833323937313533";

    #[test]
    fn discovery_and_bus_messages() {
        let discovery = hex(DISCOVERY);
        let (v, _) = run(dissect, &flow(false, PORT, PORT), &[(true, &discovery)]);
        assert_eq!(v, [Verdict::Done(DROPBOX)]);
        // Discovery comes from the LAN sync port too.
        let (v, _) = run(dissect, &flow(false, 50311, PORT), &[(true, &discovery)]);
        assert_eq!(v, [Verdict::No]);
        let bus = hex(BUS);
        let (v, _) = run(dissect, &flow(false, 50311, PORT), &[(true, &bus)]);
        assert_eq!(v, [Verdict::Done(DROPBOX)]);
        // The reply goes to the client's port: the request decided.
        let (v, _) = run(dissect, &flow(false, 50311, PORT), &[(false, &bus)]);
        assert_eq!(v, [Verdict::No]);
        let dns = hex(DNS_QUERY);
        let (v, _) = run(dissect, &flow(false, PORT, PORT), &[(true, &dns)]);
        assert_eq!(v, [Verdict::No]);
    }
}

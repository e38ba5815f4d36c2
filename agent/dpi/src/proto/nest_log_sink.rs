//! Nest's log sink (NestLogSink) over TCP (port 11095): Nest devices
//! uploading their logs.
//!
//! As nDPI reads it: packets of at least 8 bytes whose second byte is at
//! most 2, third 0x00 or 0x10 and fourth 0x13; three of them on the
//! port claim the flow.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// NestLogSink.
const NEST_LOG_SINK: Protocol = Protocol(43);
/// The log sink's port.
const PORT: u16 = 11095;
/// Matching packets that claim a flow.
const MATCHES: u8 = 3;
/// Packets after which a flow is not the log sink.
const MAX_PACKETS: u32 = 8;

/// Per-flow state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// Packets that matched.
    matches: u8,
}

/// See the module's documentation.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    if !pkt.tcp || p.len() < 8 || (pkt.flow.server_port != PORT && pkt.flow.client_port != PORT) {
        return Verdict::No;
    }
    let hit = matches!(p, [_, 0..=2, 0x00 | 0x10, 0x13, ..]);
    let last = pkt.packets() >= MAX_PACKETS;
    scratch.keep(|st: &mut State| {
        st.matches = st.matches.saturating_add(u8::from(hit));
        if st.matches >= MATCHES {
            Verdict::Done(NEST_LOG_SINK)
        } else if last {
            Verdict::No
        } else {
            Verdict::Maybe
        }
    })
}

/// Three records as nDPI's dissector expects them (built: only bytes
/// 1-3 are known).
const RECORD: &str = "0a0010130000002a";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "nest_log_sink",
    protocols: &[NEST_LOG_SINK],
    tcp: true,
    udp: false,
    ports: &[PORT],
    ports_only: true,
    first: crate::dissect::any_first,
    run: dissect,
    samples: &[Sample {
        origin: "built from nDPI's nest_log_sink.c",
        tcp: true,
        server_port: PORT,
        packets: &[(true, RECORD), (true, RECORD), (true, RECORD)],
        protocol: NEST_LOG_SINK,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn three_records() {
        let f = flow(true, 40000, PORT);
        let r = hex(RECORD);
        let (v, _) = run(dissect, &f, &[(true, &r), (false, &r), (true, &r)]);
        assert_eq!(
            v,
            [Verdict::Maybe, Verdict::Maybe, Verdict::Done(NEST_LOG_SINK)]
        );
        let other = hex("0a0310130000002a");
        let (v, _) = run(dissect, &f, &[(true, &other[..]); 8]);
        assert_eq!(v.last(), Some(&Verdict::No));
        let (v, _) = run(dissect, &flow(true, 40000, 11096), &[(true, &r)]);
        assert_eq!(v, [Verdict::No]);
    }
}

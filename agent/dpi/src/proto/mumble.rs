//! Mumble's UDP ping (nDPI "Mumble"): the client sends 12 bytes, a zero
//! request type and an 8-byte identifier; the server answers 24 bytes,
//! its version, the same identifier, then its user counts and bandwidth.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// nDPI's Mumble.
const MUMBLE: Protocol = Protocol(387);
const PING: usize = 12;
const PONG: usize = 24;

/// The ping's identifier, once the client sent it.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct State {
    ident: Option<[u8; 8]>,
}

/// `Maybe` on the client's ping, `Done` on the server's answer naming
/// its identifier.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if pkt.tcp {
        return Verdict::No;
    }
    let p = pkt.payload;
    scratch.keep(|st: &mut State| match (pkt.from_client, st.ident) {
        (true, None) if p.len() == PING && p[..4] == [0; 4] && pkt.seen == [0, 0] => {
            st.ident = p.get(4..12).and_then(|i| i.try_into().ok());
            Verdict::Maybe
        }
        (false, Some(ident)) if p.len() == PONG && p.get(4..12) == Some(&ident[..]) => {
            Verdict::Done(MUMBLE)
        }
        _ => Verdict::No,
    })
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "mumble",
    protocols: &[MUMBLE],
    tcp: false,
    udp: true,
    ports: &[64738],
    ports_only: false,
    first: |from_client, b| from_client && b == 0,
    run: dissect,
    samples: &[Sample {
        origin: "built: a Mumble server list ping and its answer (1.4.0, 3 of 100 users)",
        tcp: false,
        server_port: 64738,
        packets: &[
            (true, "000000000102030405060708"),
            (false, "000104000102030405060708000000030000006400024000"),
        ],
        protocol: MUMBLE,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, flow, hex, run};

    #[test]
    fn the_answer_must_echo_the_identifier() {
        let f = flow(false, 40000, 64738);
        let ping = hex("000000000102030405060708");
        let pong = hex("000104000102030405060708000000030000006400024000");
        let (v, _) = run(dissect, &f, &[(true, &ping), (false, &pong)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MUMBLE)]);
        let mut other = pong.clone();
        other[5] = 9;
        let (v, _) = run(dissect, &f, &[(true, &ping), (false, &other)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        let (v, _) = run(dissect, &f, &[(false, &pong)]);
        assert_eq!(v, [Verdict::No]);
        assert_eq!(
            run(dissect, &f, &[(true, &hex(DNS_QUERY))]).0,
            [Verdict::No]
        );
    }
}

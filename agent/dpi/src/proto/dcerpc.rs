//! DCE/RPC (nDPI "DCERPC"): the connection-oriented PDU header over TCP
//! (version 5, minor version 0 or 1, a PDU type 0 to 20, flags, the data
//! representation, the fragment length, the authenticator length, the
//! call id) and the connectionless one over UDP (version 4, an 80-byte
//! header whose body length is the rest of the datagram).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// nDPI's DCERPC.
const DCERPC: Protocol = Protocol(370);
/// Connection-oriented header.
const CO_HEADER: usize = 16;
/// Connectionless header.
const CL_HEADER: usize = 80;

/// Whether `drep` (the data representation: integer and character
/// order, float format, two zero bytes) is well formed; and whether it
/// says little-endian.
fn drep(d: &[u8]) -> Option<bool> {
    match d {
        [order @ (0x00 | 0x10), 0..=3, 0, 0] => Some(*order == 0x10),
        _ => None,
    }
}

fn u16_in(b: &[u8], at: usize, little: bool) -> Option<usize> {
    let v: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(usize::from(if little {
        u16::from_le_bytes(v)
    } else {
        u16::from_be_bytes(v)
    }))
}

/// A connection-oriented PDU opening `stream`: `Some(true)` when whole
/// and well formed, `Some(false)` when its start is, `None` when not.
fn co_pdu(stream: &[u8]) -> Option<bool> {
    let Some(h) = stream.get(..CO_HEADER) else {
        // A prefix of a header: version, minor version, type.
        let ok = match stream {
            [] | [5] | [5, 0 | 1] => true,
            [5, 0 | 1, t, ..] => *t <= 20,
            _ => false,
        };
        return ok.then_some(false);
    };
    if h[0] != 5 || h[1] > 1 || h[2] > 20 {
        return None;
    }
    let little = drep(&h[4..8])?;
    let frag = u16_in(h, 8, little)?;
    let auth = u16_in(h, 10, little)?;
    if frag < CO_HEADER || auth + CO_HEADER > frag {
        return None;
    }
    Some(stream.len() >= frag)
}

/// A connectionless PDU filling `datagram`.
fn cl_pdu(datagram: &[u8]) -> bool {
    let Some(h) = datagram.get(..CL_HEADER) else {
        return false;
    };
    let Some(little) = drep(&[h[4], h[5], h[6], 0]) else {
        return false;
    };
    h[0] == 4
        && h[1] <= 10
        && h[7] == 0
        && u16_in(h, 74, little).is_some_and(|len| len + CL_HEADER == datagram.len())
}

/// `Done` on a well-formed PDU opening the flow (the first side's stream
/// over TCP, a datagram over UDP); `Maybe` while a TCP PDU is not whole.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return if pkt.seen == [0, 0] && cl_pdu(pkt.payload) {
            Verdict::Done(DCERPC)
        } else {
            Verdict::No
        };
    }
    let stream = if pkt.server_first {
        pkt.server_stream
    } else {
        pkt.client_stream
    };
    match co_pdu(stream) {
        Some(true) => Verdict::Done(DCERPC),
        Some(false) => Verdict::Maybe,
        None => Verdict::No,
    }
}

/// Built: an RPC bind to the endpoint mapper (EPMv4 over NDR), as
/// Windows clients send to port 135.
const BIND: &str = "05000b03100000004800000001000000b810b810000000000100000000000100\
                    083afae1e1ac11d1b8e700805fa5c8d8030000000045d8885d1c9111c89f0800\
                    2b10486002000000";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "dcerpc",
    protocols: &[DCERPC],
    tcp: true,
    udp: true,
    ports: &[135],
    ports_only: false,
    first: |_, b| b == 5 || b == 4,
    run: dissect,
    samples: &[Sample {
        origin: "built: a bind to the endpoint mapper",
        tcp: true,
        server_port: 135,
        packets: &[(true, BIND)],
        protocol: DCERPC,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, RTP, TLS_HELLO_HEAD, flow, hex, run};

    #[test]
    fn a_bind_whole_or_split() {
        let f = flow(true, 50000, 135);
        let bind = hex(BIND);
        assert_eq!(
            run(dissect, &f, &[(true, &bind)]).0,
            [Verdict::Done(DCERPC)]
        );
        let (v, _) = run(dissect, &f, &[(true, &bind[..3]), (true, &bind[3..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(DCERPC)]);
        // Big-endian integers: the same bind.
        let mut big = bind.clone();
        big[4] = 0;
        big[8..10].copy_from_slice(&[0, 0x48]);
        assert_eq!(run(dissect, &f, &[(true, &big)]).0, [Verdict::Done(DCERPC)]);
    }

    #[test]
    fn a_connectionless_request() {
        let mut pdu = vec![0u8; CL_HEADER + 8];
        pdu[..8].copy_from_slice(&[4, 0, 0x28, 0, 0x10, 0, 0, 0]);
        pdu[74] = 8;
        let f = flow(false, 50000, 135);
        assert_eq!(run(dissect, &f, &[(true, &pdu)]).0, [Verdict::Done(DCERPC)]);
        pdu[74] = 9;
        assert_eq!(run(dissect, &f, &[(true, &pdu)]).0, [Verdict::No]);
    }

    #[test]
    fn others_are_not_dcerpc() {
        let mut bad = hex(BIND);
        bad[5] = 9;
        for (tcp, p) in [
            (true, bad),
            (true, hex(TLS_HELLO_HEAD)),
            (false, hex(DNS_QUERY)),
            (false, hex(RTP)),
            (
                true,
                b"\x05\x01\x00\x01\x0a\0\0\x01\0\x50GET / HTTP".to_vec(),
            ),
        ] {
            let f = flow(tcp, 50000, 135);
            assert_eq!(run(dissect, &f, &[(true, &p)]).0, [Verdict::No], "{p:?}");
        }
    }
}

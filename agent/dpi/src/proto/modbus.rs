//! Modbus/TCP (MBAP header) and Schneider Electric's UMAS, carried as
//! Modbus function 90.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Modbus.
const MODBUS: Protocol = Protocol(44);
/// UMAS (nDPI: `Modbus.UMAS`).
const UMAS: Protocol = Protocol(364);
/// Modbus/TCP's registered port.
const PORT: u16 = 502;
/// The Modbus function that carries UMAS.
const UMAS_FUNCTION: u8 = 0x5a;
/// MBAP length (unit id and PDU): a PDU is at most 253 bytes.
const MAX_LEN: usize = 254;
/// Payload packets a flow may take to show a whole request.
const MAX_PACKETS: u32 = 8;

/// A read of one ADU at the start of a stream.
enum Read {
    /// Cut short: could still be Modbus.
    More,
    /// Not Modbus/TCP.
    Bad,
    /// Transaction id and function code.
    Ok(u16, u8),
}

/// Modbus (`Protocol(44)`) or UMAS (`Protocol(364)`, a first request of
/// function 90): the client's stream opens with a whole ADU (protocol id
/// 0, a length of 2 to 254 bytes, a function code 1 to 127). On port 502
/// that is enough; elsewhere the server's first ADU must answer it (same
/// transaction id, same function, maybe with the exception bit). `Done`
/// at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || (pkt.seen == [0, 0] && !pkt.from_client) {
        return Verdict::No;
    }
    let (tid, function) = match adu(pkt.client_stream) {
        Read::Bad => return Verdict::No,
        Read::More if pkt.packets() < MAX_PACKETS => return Verdict::Maybe,
        Read::More => return Verdict::No,
        Read::Ok(_, f) if f >= 0x80 => return Verdict::No,
        Read::Ok(tid, f) => (tid, f),
    };
    let found = Verdict::Done(if function == UMAS_FUNCTION {
        UMAS
    } else {
        MODBUS
    });
    if pkt.flow.server_port == PORT || pkt.flow.client_port == PORT {
        return found;
    }
    match adu(pkt.server_stream) {
        Read::Ok(t, f) if t == tid && f & 0x7f == function => found,
        Read::More if pkt.packets() < MAX_PACKETS => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Reads the MBAP header and function code of the ADU at the start of
/// `stream`, and checks the whole ADU is there.
fn adu(stream: &[u8]) -> Read {
    if stream.get(2..4).is_some_and(|p| p != [0, 0]) {
        return Read::Bad; // protocol id: 0 is Modbus
    }
    let len = stream
        .get(4..6)
        .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])));
    if len.is_some_and(|len| !(2..=MAX_LEN).contains(&len))
        || stream.get(7).is_some_and(|f| f & 0x7f == 0)
    {
        return Read::Bad;
    }
    match (stream.first_chunk::<8>(), len) {
        (Some(&[t0, t1, .., function]), Some(len)) if stream.len() >= 6 + len => {
            Read::Ok(u16::from_be_bytes([t0, t1]), function)
        }
        _ => Read::More,
    }
}

/// Modbus clients speak first.
fn client_first(from_client: bool, _byte: u8) -> bool {
    from_client
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "modbus",
    protocols: &[Protocol(44), Protocol(364)],
    tcp: true,
    udp: false,
    ports: &[502],
    ports_only: false,
    first: client_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "umas.pcap frames 4,6",
            tcp: true,
            server_port: 502,
            packets: &[
                (true, "000000000004005a0002"),
                (
                    false,
                    "000000000032005a00fe10ff5a01010000007002000027000900080000000000\
             0e3134302043505520333131203130010101000000001100",
                ),
            ],
            protocol: UMAS,
        },
        Sample {
            origin: "synthetic (Modbus application protocol 6.3): read holding registers",
            tcp: true,
            server_port: 5020,
            packets: &[
                (true, "000100000006110300006b0003"),
                (false, "000100000009110306022b00000064ffff"),
            ],
            protocol: MODBUS,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{HTTP_REQUEST_HEAD, TLS_HELLO_HEAD, flow, hex, run};

    /// umas.pcap frame 4: UMAS (function 90) init comm request.
    const UMAS_REQUEST: &str = "000000000004005a0002";
    /// umas.pcap frame 6: its response (first 24 bytes of 56).
    const UMAS_RESPONSE: &str = "000000000032005a00fe10ff5a010100000070020000270009";

    #[test]
    fn umas_on_port_502() {
        let f = flow(true, 7718, 502);
        let (v, meta) = run(dissect, &f, &[(true, &hex(UMAS_REQUEST))]);
        assert_eq!(v, [Verdict::Done(UMAS)]);
        assert_eq!(meta, Metadata::default());
    }

    #[test]
    fn modbus_request_and_answer() {
        // Synthetic (Modbus application protocol v1.1b3, 6.3): read
        // holding registers from 0x006b, 3 of them; the answer; an
        // exception.
        let req = hex("000100000006110300006b0003");
        let (v, _) = run(dissect, &flow(true, 40000, 502), &[(true, &req)]);
        assert_eq!(v, [Verdict::Done(MODBUS)]);
        // Elsewhere, the answer confirms it.
        let f = flow(true, 40000, 5020);
        let ans = hex("000100000009110306022b00000064ffff");
        let (v, _) = run(dissect, &f, &[(true, &req), (false, &ans)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MODBUS)]);
        let exception = hex("000100000003118302");
        let (v, _) = run(dissect, &f, &[(true, &req), (false, &exception)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MODBUS)]);
        let other = hex("000200000003118302");
        let (v, _) = run(dissect, &f, &[(true, &req), (false, &other)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        // Split request.
        let (v, _) = run(
            dissect,
            &flow(true, 40000, 502),
            &[(true, &req[..5]), (true, &req[5..])],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MODBUS)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 502);
        for bytes in [
            hex(HTTP_REQUEST_HEAD),
            hex(TLS_HELLO_HEAD),
            hex("0300001611e00000000100c1020100c2020102c0010a"),
            hex("00000000000000"),
            hex("000000000100005a"),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No], "{bytes:02x?}");
        }
        let (v, _) = run(dissect, &f, &[(false, &hex(UMAS_REQUEST))]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn prefixes_do_not_panic() {
        let r = hex(UMAS_RESPONSE);
        for n in 0..r.len() {
            let (v, _) = run(dissect, &flow(true, 1, 502), &[(true, &r[..n])]);
            assert_eq!(v, [Verdict::Maybe], "{n}");
        }
    }
}

//! ONC RPC (RFC 5531) calls to the NFS family of programs, over UDP and
//! over TCP behind record marking. nDPI names NFS, its mount daemon and
//! the port mapper (rpcbind) alike: NFS.
//!
//! A call is `xid, msg_type = 0, rpcvers = 2, prog, vers, proc`, then the
//! credential and verifier (`flavor, length, body`). On TCP each record
//! fragment is behind a 4-byte mark: the last-fragment bit and a 31-bit
//! length. A reply is `xid, msg_type = 1, reply_stat` (0 or 1).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// NFS (and mountd, portmap).
const NFS: Protocol = Protocol(11);
/// Programs nDPI names NFS: portmap, NFS, mountd.
const PROGRAMS: [u32; 3] = [100_000, 100_003, 100_005];
/// Authentication flavors: none, sys, short, DH, Kerberos 4, RPCSEC_GSS.
const FLAVORS: [u32; 6] = [0, 1, 2, 3, 4, 6];
/// Largest credential or verifier body (RFC 5531: 400 bytes).
const MAX_AUTH: usize = 400;
/// Largest TCP record fragment read.
const MAX_FRAGMENT: usize = 1 << 24;

/// A read of the start of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    /// Not what was looked for.
    Bad,
    /// Cut short: could still be.
    More,
    /// Found, with its xid.
    Ok(u32),
}

/// NFS when the client's first message is a call to one of [`PROGRAMS`]
/// with a consistent credential and verifier (as nDPI, the call alone
/// will do), and the server's first message, if any yet, a reply to the
/// same xid. On UDP the call fills the flow's first datagram; on TCP it
/// comes behind its record mark.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let (call, reply) = if pkt.tcp {
        if pkt.server_first {
            return Verdict::No;
        }
        match (record(pkt.client_stream), record(pkt.server_stream)) {
            (Some(Some(call)), reply) => (call, reply.flatten()),
            (Some(None), _) => return Verdict::No,
            (None, _) => return Verdict::Maybe,
        }
    } else if pkt.seen == [0, 0] {
        // UDP: the flow's first datagram, whichever side the flow table
        // took for the client (a call from a privileged port to an
        // unprivileged one looks the other way round).
        (pkt.payload, None)
    } else {
        return Verdict::No;
    };
    match (call_xid(call), reply.map(reply_xid)) {
        (Read::Ok(_), None | Some(Read::More)) => Verdict::Done(NFS),
        (Read::Ok(xid), Some(Read::Ok(id))) if id == xid => Verdict::Done(NFS),
        (Read::More, None | Some(Read::More)) if pkt.tcp => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// The first fragment of a TCP record stream: `None` until its mark is
/// in, `Some(None)` if the mark is not one. The fragment may be cut
/// short.
fn record(stream: &[u8]) -> Option<Option<&[u8]>> {
    let (mark, rest) = stream.split_first_chunk::<4>()?;
    let len = (u32::from_be_bytes(*mark) & 0x7fff_ffff) as usize;
    if !(12..=MAX_FRAGMENT).contains(&len) {
        return Some(None);
    }
    Some(Some(rest.get(..len).unwrap_or(rest)))
}

/// Big-endian `u32` at byte `at`.
fn word(msg: &[u8], at: usize) -> Option<u32> {
    let bytes = msg.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// Reads a call to one of [`PROGRAMS`] with its credential and verifier.
fn call_xid(msg: &[u8]) -> Read {
    // xid, msg_type, rpcvers, prog, vers, proc.
    let fields = [0, 4, 8, 12, 16, 20].map(|at| word(msg, at));
    let checks: [fn(u32) -> bool; 6] = [
        |_| true,
        |kind| kind == 0,
        |rpcvers| rpcvers == 2,
        |prog| PROGRAMS.contains(&prog),
        |vers| (1..=4).contains(&vers),
        |procedure| procedure < 256,
    ];
    for (field, check) in fields.iter().zip(checks) {
        match field {
            None => return Read::More,
            Some(v) if !check(*v) => return Read::Bad,
            Some(_) => {}
        }
    }
    // Credential, then verifier: flavor, length, body padded to 4.
    let mut at = 24;
    for _ in 0..2 {
        let (Some(flavor), Some(len)) = (word(msg, at), word(msg, at + 4)) else {
            return Read::More;
        };
        if !FLAVORS.contains(&flavor) || len as usize > MAX_AUTH {
            return Read::Bad;
        }
        at += 8 + (len as usize).div_ceil(4) * 4;
    }
    match (msg.len() >= at, fields[0]) {
        (true, Some(xid)) => Read::Ok(xid),
        _ => Read::More,
    }
}

/// Reads a reply (accepted or denied).
fn reply_xid(msg: &[u8]) -> Read {
    match (word(msg, 0), word(msg, 4), word(msg, 8)) {
        (Some(xid), Some(1), Some(stat)) if stat <= 1 => Read::Ok(xid),
        (_, Some(1) | None, None) => Read::More,
        _ => Read::Bad,
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "rpc",
    protocols: &[NFS],
    tcp: true,
    udp: true,
    ports: &[111, 2049],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "nfsv2.pcap frames 1,2 (portmap GETPORT and its reply)",
        tcp: false,
        server_port: 111,
        packets: &[
            (
                true,
                "3841169f0000000000000002000186a0000000030000000300000000000000000000000000000000000186a50000000100000003756470000000000000000000",
            ),
            (
                false,
                "3841169f0000000100000000000000000000000000000000000000123133392e32352e32322e3130322e342e32340000",
            ),
        ],
        protocol: NFS,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// nfsv2.pcap frame 1: a portmap GETPORT call for mountd (UDP).
    const GETPORT: &str = "3841169f0000000000000002000186a000000003000000030000000000000000\
        0000000000000000000186a50000000100000003756470000000000000000000";
    /// nfsv2.pcap frame 2: its reply.
    const GETPORT_REPLY: &str = "3841169f0000000100000000000000000000000000000000\
        000000123133392e32352e32322e3130322e342e32340000";
    /// nfsv2.pcap frame 7: an NFS v2 NULL call (AUTH_NONE).
    const NFS_NULL: &str =
        "3841aadf0000000000000002000186a30000000200000000000000000000000000000000000000000000";

    #[test]
    fn udp_calls_and_replies() {
        let f = flow(false, 3289, 111);
        let (v, meta) = run(
            dissect,
            &f,
            &[(true, &hex(GETPORT)), (false, &hex(GETPORT_REPLY))],
        );
        assert_eq!(v[0], Verdict::Done(NFS));
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &flow(false, 3292, 2049), &[(true, &hex(NFS_NULL))]);
        assert_eq!(v, [Verdict::Done(NFS)]);
        // A reply first is not taken; a call is, whichever way the flow
        // table oriented the flow (nfsv2.pcap frame 3, mountd from port
        // 671 to 1048).
        let (v, _) = run(
            dissect,
            &flow(false, 3292, 2049),
            &[(false, &hex(GETPORT_REPLY))],
        );
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(dissect, &flow(false, 1048, 671), &[(false, &hex(GETPORT))]);
        assert_eq!(v, [Verdict::Done(NFS)]);
    }

    #[test]
    fn tcp_record_marking() {
        // The same call behind a record mark (synthetic), cut in two.
        let call = hex(NFS_NULL);
        let mut rec = (0x8000_0000u32 | call.len() as u32).to_be_bytes().to_vec();
        rec.extend_from_slice(&call);
        let f = flow(true, 800, 2049);
        let (v, _) = run(dissect, &f, &[(true, &rec[..20]), (true, &rec[20..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(NFS)]);
        let reply = hex("80000018 3841aadf 00000001 00000000 00000000 00000000 00000000");
        let (v, _) = run(dissect, &f, &[(true, &rec), (false, &reply)]);
        assert_eq!(v, [Verdict::Done(NFS), Verdict::Done(NFS)]);
        // A reply to another xid.
        let mut other = reply.clone();
        other[4] ^= 1;
        let (v, _) = run(dissect, &f, &[(true, &rec[..20]), (false, &other)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn other_programs_and_protocols_are_not_nfs() {
        // Program 100021 (nlockmgr), RPC version 3, a bad flavor.
        for (at, byte) in [(15, 0xb5), (11, 3), (27, 9)] {
            let mut call = hex(NFS_NULL);
            call[at] = byte;
            let (v, _) = run(dissect, &flow(false, 1, 2049), &[(true, &call)]);
            assert_eq!(v, [Verdict::No], "{at}");
        }
        let f = flow(false, 40000, 111);
        for p in [
            crate::dissect::testing::DNS_QUERY,
            crate::dissect::testing::STUN_REQUEST,
            crate::dissect::testing::RTP,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(p))]);
            assert_eq!(v, [Verdict::No]);
        }
        let tls = hex(crate::dissect::testing::TLS_HELLO_HEAD);
        let (v, _) = run(dissect, &flow(true, 40000, 2049), &[(true, &tls)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn prefixes_do_not_panic() {
        let call = hex(GETPORT);
        for n in 0..call.len() {
            // The call ends with its verifier, at byte 40.
            let (v, _) = run(dissect, &flow(false, 1, 111), &[(true, &call[..n])]);
            let want = if n < 40 {
                Verdict::No
            } else {
                Verdict::Done(NFS)
            };
            assert_eq!(v, [want], "{n}");
            let (_, _) = run(dissect, &flow(true, 1, 111), &[(true, &call[..n])]);
        }
    }
}

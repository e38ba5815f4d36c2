//! Flow export over UDP: NetFlow v1/v5/v7/v9 (RFC 3954) and IPFIX
//! (RFC 7011), both nDPI 128 "NetFlow", and sFlow v2/v4/v5 (nDPI 129
//! "sFlow").
//!
//! Exporters send, receivers never answer: one datagram tells, read
//! whole. NetFlow v1/v5/v7: a record count (1..=30) and the datagram's
//! length (header plus fixed-size records) agree, and the export time is
//! plausible. NetFlow v9 and IPFIX: the sets after the header (template,
//! options template or data, each with its length) fill the datagram
//! exactly. sFlow: the agent address type (1 IPv4, 2 IPv6) and the
//! samples (each with its length) fill the datagram exactly.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// nDPI's NetFlow (IPFIX included).
const NETFLOW: Protocol = Protocol(128);
/// nDPI's sFlow.
const SFLOW: Protocol = Protocol(129);
/// Export times before 2000 are not plausible (nDPI's bound).
const TIME_MIN: u32 = 946_684_800;
/// Sets or samples walked in one datagram.
const MAX_PARTS: usize = 64;

/// NetFlow, IPFIX or sFlow from one datagram.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if pkt.tcp {
        return Verdict::No;
    }
    let p = pkt.payload;
    if netflow(p) {
        Verdict::Done(NETFLOW)
    } else if sflow(p) {
        Verdict::Done(SFLOW)
    } else {
        Verdict::No
    }
}

fn u16_at(p: &[u8], at: usize) -> Option<usize> {
    let &b = p.get(at..at + 2)?.first_chunk::<2>()?;
    Some(usize::from(u16::from_be_bytes(b)))
}

fn u32_at(p: &[u8], at: usize) -> Option<u32> {
    let &b = p.get(at..at + 4)?.first_chunk::<4>()?;
    Some(u32::from_be_bytes(b))
}

/// NetFlow (any version nDPI knows) or IPFIX.
fn netflow(p: &[u8]) -> bool {
    let (Some(version), Some(count)) = (u16_at(p, 0), u16_at(p, 2)) else {
        return false;
    };
    let fixed = |header: usize, record: usize| {
        (1..=30).contains(&count)
            && p.len() == header + count * record
            && u32_at(p, 8).is_some_and(|t| t >= TIME_MIN || version == 1)
    };
    match version {
        1 => fixed(16, 48),
        5 => fixed(24, 48),
        7 => fixed(24, 52),
        // v9: count of records (templates and data), unix seconds at 8,
        // sets from 20, template ids 0 and 1, data from 256.
        9 => {
            (1..=512).contains(&count)
                && u32_at(p, 8).is_some_and(|t| t >= TIME_MIN)
                && sets(p, 20, &[0, 1])
        }
        // IPFIX: the second field is the message length; export time at
        // 4, sets from 16, template ids 2 and 3.
        10 => {
            count == p.len() && u32_at(p, 4).is_some_and(|t| t >= TIME_MIN) && sets(p, 16, &[2, 3])
        }
        _ => false,
    }
}

/// True when one or more sets (id, length >= 4) from `at` fill `p`
/// exactly, each id a template id of `templates` or a data set id (>= 256).
fn sets(p: &[u8], mut at: usize, templates: &[usize]) -> bool {
    for i in 0..MAX_PARTS {
        if at == p.len() {
            return i > 0;
        }
        let (Some(id), Some(len)) = (u16_at(p, at), u16_at(p, at + 2)) else {
            return false;
        };
        if len < 4 || (id < 256 && !templates.contains(&id)) {
            return false;
        }
        at += len;
    }
    false
}

/// An sFlow datagram: version, agent, samples filling it.
fn sflow(p: &[u8]) -> bool {
    let (Some(version), Some(addr_type)) = (u32_at(p, 0), u32_at(p, 4)) else {
        return false;
    };
    if !matches!(version, 2 | 4 | 5) {
        return false;
    }
    let addr_len = match addr_type {
        1 => 4,
        2 => 16,
        _ => return false,
    };
    // Agent address, [v5: sub-agent id], sequence, uptime, sample count.
    let mut at = 8 + addr_len + if version == 5 { 4 } else { 0 } + 8;
    let Some(count) = u32_at(p, at) else {
        return false;
    };
    at += 4;
    if count == 0 || count as usize > MAX_PARTS {
        return false;
    }
    if version != 5 {
        // v2/v4 samples have no length: the header alone has to do.
        return count <= 16 && p.len() > at;
    }
    for _ in 0..count {
        let (Some(format), Some(len)) = (u32_at(p, at), u32_at(p, at + 4)) else {
            return false;
        };
        // Enterprise 0: formats 1..=4 (flow, counters, expanded flow,
        // expanded counters); others are vendors'.
        let standard = format >> 12 == 0;
        if (standard && !(1..=4).contains(&format)) || len % 4 != 0 || len < 8 {
            return false;
        }
        at += 8 + len as usize;
    }
    at == p.len()
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "flowexport",
    protocols: &[NETFLOW, SFLOW],
    tcp: false,
    udp: true,
    ports: &[2055, 2056, 4739, 6343, 9995, 9996],
    ports_only: false,
    first: |_, byte| byte == 0,
    run: dissect,
    samples: &[
        Sample {
            origin: "synthetic (no capture): NetFlow v5, one record",
            tcp: false,
            server_port: 2055,
            packets: &[(
                true,
                "00050001000030396553f1000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000",
            )],
            protocol: NETFLOW,
        },
        Sample {
            origin: "synthetic (no capture): IPFIX, a template and a data set",
            tcp: false,
            server_port: 4739,
            packets: &[(
                true,
                "000a002c6553f1000000000100000000000200100100000200080004000c0004\
             0100000c0a0000010a000002",
            )],
            protocol: NETFLOW,
        },
        Sample {
            origin: "synthetic (no capture): sFlow v5, one counter sample",
            tcp: false,
            server_port: 6343,
            packets: &[(
                true,
                "0000000500000001c0a8010100000000000000100001d4c00000000100000002\
             0000001000000000000000000000000000000000",
            )],
            protocol: SFLOW,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{
        DNS_QUERY, RTP, STUN_REQUEST, WIREGUARD_KEEPALIVE, flow, hex, run,
    };

    // Synthetic datagrams (the corpus has no flow export capture), laid
    // out as softflowd, nfcapd and hsflowd send them.

    /// A NetFlow v5 datagram of `count` zeroed records.
    fn v5(count: u16) -> Vec<u8> {
        let mut p = vec![0, 5];
        p.extend(count.to_be_bytes());
        p.extend(12345u32.to_be_bytes()); // uptime
        p.extend(1_700_000_000u32.to_be_bytes()); // unix secs
        p.extend([0; 12]); // nsecs, sequence, engine, sampling
        p.extend(vec![0; 48 * usize::from(count)]);
        p
    }

    /// An IPFIX message: a template set and a data set.
    fn ipfix() -> Vec<u8> {
        let template = hex("0002 0010 0100 0002 0008 0004 000c 0004"); // id 256: src, dst
        let data = hex("0100 000c 0a000001 0a000002");
        let mut p = hex("000a 0000");
        p.extend(1_700_000_000u32.to_be_bytes());
        p.extend([0, 0, 0, 1, 0, 0, 0, 0]); // sequence, domain
        p.extend(template);
        p.extend(data);
        let len = (p.len() as u16).to_be_bytes();
        p[2..4].copy_from_slice(&len);
        p
    }

    /// A NetFlow v9 packet with the same sets (template id 0).
    fn v9() -> Vec<u8> {
        let mut p = hex("0009 0002 00003039");
        p.extend(1_700_000_000u32.to_be_bytes());
        p.extend([0, 0, 0, 7, 0, 0, 0, 0]);
        p.extend(hex("0000 0010 0100 0002 0008 0004 000c 0004"));
        p.extend(hex("0100 000c 0a000001 0a000002"));
        p
    }

    /// An sFlow v5 datagram with one counter sample.
    fn sflow5() -> Vec<u8> {
        let mut p = hex("00000005 00000001 c0a80101 00000000 00000010 0001d4c0 00000001");
        p.extend(hex("00000002 00000010")); // counters sample, 16 bytes
        p.extend([0; 16]);
        p
    }

    #[test]
    fn netflow_versions() {
        let f = flow(false, 40000, 2055);
        for p in [v5(1), v5(30), ipfix(), v9()] {
            let (v, meta) = run(dissect, &f, &[(true, &p)]);
            assert_eq!(v, [Verdict::Done(NETFLOW)]);
            assert_eq!(meta, Metadata::default());
        }
        // A count disagreeing with the length, an export time of 1970, an
        // IPFIX length off by one, a v9 set overrunning the datagram.
        let mut p = v5(2);
        p.truncate(p.len() - 1);
        assert_eq!(run(dissect, &f, &[(true, &p)]).0, [Verdict::No]);
        let mut p = v5(1);
        p[8..12].copy_from_slice(&[0, 0, 0, 9]);
        assert_eq!(run(dissect, &f, &[(true, &p)]).0, [Verdict::No]);
        let mut p = ipfix();
        p.push(0);
        assert_eq!(run(dissect, &f, &[(true, &p)]).0, [Verdict::No]);
        let mut p = v9();
        p.pop();
        assert_eq!(run(dissect, &f, &[(true, &p)]).0, [Verdict::No]);
    }

    #[test]
    fn sflow_v5() {
        let f = flow(false, 40000, 6343);
        let (v, _) = run(dissect, &f, &[(true, &sflow5())]);
        assert_eq!(v, [Verdict::Done(SFLOW)]);
        let mut p = sflow5();
        p.extend([0; 4]);
        assert_eq!(run(dissect, &f, &[(true, &p)]).0, [Verdict::No]);
        let mut p = sflow5();
        p[7] = 3; // no such address type
        assert_eq!(run(dissect, &f, &[(true, &p)]).0, [Verdict::No]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(false, 40000, 2055);
        for p in [DNS_QUERY, STUN_REQUEST, WIREGUARD_KEEPALIVE, RTP] {
            let (v, _) = run(dissect, &f, &[(true, &hex(p))]);
            assert_eq!(v, [Verdict::No], "{p}");
        }
        let (v, _) = run(dissect, &flow(true, 40000, 2055), &[(true, &v5(1))]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn prefixes_do_not_panic() {
        let f = flow(false, 40000, 2055);
        for p in [v5(3), ipfix(), sflow5()] {
            for n in 0..p.len() {
                let (v, _) = run(dissect, &f, &[(true, &p[..n])]);
                assert_eq!(v, [Verdict::No], "{n}");
            }
        }
        // A v9 packet cut at a set's end is still a valid packet.
        let p = v9();
        for n in 0..p.len() {
            let (v, _) = run(dissect, &f, &[(true, &p[..n])]);
            assert_eq!(v == [Verdict::No], n != 36, "{n}");
        }
    }
}

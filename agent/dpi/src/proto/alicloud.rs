//! AliCloud's (Alibaba Cloud) client protocol over TCP: messages with the
//! magic `ce fa be ba` and a 4-byte length of what follows.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// AliCloud.
const ALICLOUD: Protocol = Protocol(306);
/// The magic.
const MAGIC: [u8; 4] = [0xce, 0xfa, 0xbe, 0xba];

/// `Done` on a segment that is a header alone (its message to come) or
/// a whole message; `No` otherwise.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    match pkt.payload {
        [m0, m1, m2, m3, l0, l1, l2, l3, body @ ..] if [*m0, *m1, *m2, *m3] == MAGIC => {
            let len = u32::from_be_bytes([*l0, *l1, *l2, *l3]) as usize;
            if body.is_empty() || len == body.len() {
                Verdict::Done(ALICLOUD)
            } else {
                Verdict::No
            }
        }
        _ => Verdict::No,
    }
}

/// alicloud.pcap frame 4: a header whose message follows.
const HEADER: &str = "cefabeba80000000";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "alicloud",
    protocols: &[ALICLOUD],
    tcp: true,
    udp: false,
    ports: &[],
    ports_only: false,
    first: |_, b| b == MAGIC[0],
    run: dissect,
    samples: &[Sample {
        origin: "alicloud.pcap frame 4",
        tcp: true,
        server_port: 8999,
        packets: &[(true, HEADER)],
        protocol: ALICLOUD,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{HTTP_REQUEST_HEAD, flow, hex, run};

    #[test]
    fn a_header_or_a_whole_message() {
        let f = flow(true, 39018, 8999);
        let (v, _) = run(dissect, &f, &[(true, &hex(HEADER))]);
        assert_eq!(v, [Verdict::Done(ALICLOUD)]);
        let whole = hex("cefabeba00000003aabbcc");
        assert_eq!(
            run(dissect, &f, &[(true, &whole)]).0,
            [Verdict::Done(ALICLOUD)]
        );
        for bad in ["cefabeba00000004aabbcc", "cefabe", HTTP_REQUEST_HEAD] {
            assert_eq!(
                run(dissect, &f, &[(true, &hex(bad))]).0,
                [Verdict::No],
                "{bad}"
            );
        }
    }
}

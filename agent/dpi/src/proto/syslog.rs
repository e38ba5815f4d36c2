//! Syslog over UDP and TCP (RFC 3164, RFC 5424; RFC 6587 framing).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// Bytes of text after the priority that must be printable.
const TEXT: usize = 32;

/// Syslog (`Protocol(17)`, "Syslog"): `<PRI>` (0..=191, no leading zero)
/// then printable text, at least 4 bytes of it (a timestamp, a host, a
/// tag: devices differ too much to ask for more); on TCP, optionally
/// preceded by an octet count.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let mut msg = if pkt.tcp { pkt.stream() } else { pkt.payload };
    if pkt.tcp {
        // Octet-counting framing: "123 <PRI>...".
        let digits = msg.iter().take_while(|b| b.is_ascii_digit()).count();
        if (1..=6).contains(&digits) && msg.get(digits) == Some(&b' ') {
            msg = &msg[digits + 1..];
        }
    }
    match message(msg) {
        Some(true) => Verdict::Done(Protocol(17)), // Syslog
        Some(false) if pkt.tcp => Verdict::Maybe,  // still arriving
        _ => Verdict::No,
    }
}

/// Checks the priority and the text after it: `Some(true)` for a syslog
/// message, `Some(false)` for a valid start too short to tell.
fn message(msg: &[u8]) -> Option<bool> {
    let Some(rest) = msg.strip_prefix(b"<") else {
        return msg.is_empty().then_some(false);
    };
    let digits = rest
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    let (pri, rest) = rest.split_at(digits);
    let value = pri.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    if digits > 3 || value > 191 || (pri.first() == Some(&b'0') && digits > 1) {
        return None;
    }
    let Some(text) = rest.strip_prefix(b">") else {
        return rest.is_empty().then_some(false);
    };
    // Printable ASCII or UTF-8; tabs and line ends allowed.
    let printable = |&b: &u8| b >= 0x20 && b != 0x7f || matches!(b, b'\t' | b'\r' | b'\n');
    let text = &text[..text.len().min(TEXT)];
    if digits == 0 || !text.iter().all(printable) || text.first() == Some(&b'\n') {
        return None;
    }
    Some(text.len() >= 4)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "syslog",
    protocols: &[Protocol(17)],
    tcp: true,
    udp: true,
    ports: &[514, 601],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "syslog.pcap frames ",
        tcp: false,
        server_port: 514,
        packets: &[(
            true,
            "3c32363e4a616e2030312030303a30313a3437206e6236206e62643a2030313d\
             373b30333d39352e3133362e3234322e35343b30343d4e42362d4658432d7232\
             3b30353d4530413144373138433237303b30363d3130373b32303d313b32393d\
             39352e3133362e3234322e35343b32413d4e42362d424f4f544c4f414445522d\
             52312e33322e305f4e42362d4d41494e2d52332e332e345f4e42362d52455343\
             55452d52332e312e385f4e42362d4144534c2d41327044303335705f4e42362d\
             434f4e4649472d52332e332e342e323b30373d34303b30383d31303b30413d31\
             343031303b30423d313132383b30433d31363030303b30443d313036383b3045\
             3d33332e303b30463d31382e343b31323d362e323b31333d362e383b31343d31\
             392e383b31353d31322e313b31363d303b31373d303b31383d303b31393d303b\
             31423d313b31433d4144534c322b3b31443d303b31453d6175746f3b31463d31\
             3b32313d303b32323d33393b32333d303b32343d32363b34423d333b34433d30\
             3b34443d32343733383b34453d3331333531363b34463d303b35303d303b3531\
             3d303b35323d303b31303d313b31313d343b33303d303b33313d303b33323d32\
             3b33333d323b33343d303b33353d303b33363d303b34313d303b34323d756e6b\
             6e6f776e3b37433d303b37443d756e6b6e6f776e3b32443d756e6b6e6f776e3b",
        )],
        protocol: Protocol(17),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    // syslog.pcap frame 89 (first 48 bytes): RFC 3164 from a Linux host.
    const BSD: &str = "3c363e4d61722020392030343a34343a3237204e444333434c4e444d56413232206b65726e656c3a20495076363a2041";
    // syslog.pcap frame 81 (TCP 49948 -> 52173, first 48 bytes): RFC 5424.
    const TCP_5424: &str = "3c32323e3120323032312d30342d31385431343a35313a34382b30343a3030206950686f6e65372c3220636f6d2e6474";
    // syslog.pcap frames 84 (FortiGate), 26 (NetScreen), 3 (no header),
    // first 48 bytes each.
    const OTHERS: [&str; 3] = [
        "3c3138393e646174653d323032312d31322d30392074696d653d31363a32393a3036206465766e616d653d2241544d46",
        "3c3133333e7373673a204e657453637265656e206465766963655f69643d303138353038323030383030313534312020",
        "3c3133343e3835342030382f32302f323031332d31393a30353a323320434f4e46494720514c41323358582050434944",
    ];

    #[test]
    fn corpus_formats() {
        let done = [Verdict::Done(Protocol(17))];
        let f = flow(false, 514, 514);
        for msg in [BSD].iter().chain(&OTHERS) {
            assert_eq!(run(dissect, &f, &[(true, &hex(msg))]).0, done);
        }
        let (v, _) = run(
            dissect,
            &flow(true, 49948, 52173),
            &[(true, &hex(TCP_5424))],
        );
        assert_eq!(v, done);
    }

    #[test]
    fn octet_counting_and_split() {
        let msg = hex(TCP_5424);
        let framed = [format!("{} ", msg.len()).as_bytes(), &msg].concat();
        let f = flow(true, 40000, 6514);
        let (a, b) = framed.split_at(8);
        let (v, _) = run(dissect, &f, &[(true, a), (true, b)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(Protocol(17))]);
    }

    #[test]
    fn other_protocols_and_truncation() {
        let f = flow(false, 40000, 514);
        // ssdp-m-search.pcap frame 1; dns.pcap frame 4.
        let ssdp = hex("4d2d534541524348202a20485454502f312e310d0a");
        let dns = hex("784301000001000000000000026537087768617473617070036e65740000010001");
        for other in [
            &ssdp[..],
            &dns,
            b"<html><body>",
            b"<300>Jan  1 00:00:00",
            b"<013>Jan  1 00:00:00",
            b"<99999999999999999999>",
        ] {
            assert_eq!(run(dissect, &f, &[(true, other)]).0, [Verdict::No]);
            assert_eq!(
                run(dissect, &flow(true, 1, 2), &[(true, other)]).0,
                [Verdict::No]
            );
        }
        let msg = hex(BSD);
        for n in 0..msg.len() {
            run(dissect, &f, &[(true, &msg[..n])]);
            run(dissect, &flow(true, 1, 2), &[(true, &msg[..n])]);
        }
    }
}

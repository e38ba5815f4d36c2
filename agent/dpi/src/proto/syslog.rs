//! Syslog over UDP and TCP (RFC 3164, RFC 5424; RFC 6587 framing).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Packet, Scratch, Verdict};

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

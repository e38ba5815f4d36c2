//! TPKT (RFC 1006) and the ISO 8073 (X.224, COTP) header inside it: the
//! transport that RDP, S7comm, S7CommPlus and MMS (ISO 9506) share on TCP.
//! Parsing only; the dissectors that use it decide.

/// COTP TPDU codes (high nibble of the code byte; CR and CC keep the
/// credit in the low nibble).
pub(crate) const CR: u8 = 0xe0;
pub(crate) const CC: u8 = 0xd0;
pub(crate) const DR: u8 = 0x80;
pub(crate) const DC: u8 = 0xc0;
pub(crate) const DT: u8 = 0xf0;
pub(crate) const ED: u8 = 0x10;
pub(crate) const AK: u8 = 0x60;
pub(crate) const EA: u8 = 0x20;
pub(crate) const RJ: u8 = 0x50;
pub(crate) const ER: u8 = 0x70;

/// Largest TPKT accepted (the RFC allows 65535; real PDUs are small).
const MAX_LEN: usize = 65_535;

/// One TPDU: its code (high nibble), the header bytes after the code
/// (fixed part and parameters: `li - 1` bytes) and the user data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tpdu<'a> {
    pub(crate) code: u8,
    pub(crate) header: &'a [u8],
    pub(crate) data: &'a [u8],
}

/// A read of the next TPKT of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Read<'a> {
    /// Cut short: could still be a TPKT.
    More,
    /// Not a TPKT holding a COTP TPDU.
    Bad,
    /// The TPDU and the bytes after its TPKT.
    Ok(Tpdu<'a>, &'a [u8]),
}

/// Reads the TPKT at the start of `stream`: version 3, reserved 0, a
/// length (header included) of at least 7, and a COTP TPDU whose length
/// indicator fits the packet and whose code is a known one.
pub(crate) fn read(stream: &[u8]) -> Read<'_> {
    let version_ok =
        stream.first().is_none_or(|&b| b == 3) && stream.get(1).is_none_or(|&b| b == 0);
    if !version_ok {
        return Read::Bad;
    }
    let (Some(&l0), Some(&l1)) = (stream.get(2), stream.get(3)) else {
        return Read::More;
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if !(7..=MAX_LEN).contains(&len) {
        return Read::Bad;
    }
    let (Some(&li), Some(&code)) = (stream.get(4), stream.get(5)) else {
        return Read::More;
    };
    let li = usize::from(li);
    // The TPDU header (li bytes after the indicator) lies in the TPKT.
    if li < 2 || 5 + li > len || li == 255 {
        return Read::Bad;
    }
    let code = match code & 0xf0 {
        c @ (CR | CC) => c,
        c @ (DR | DC | DT | ED | AK | EA | RJ | ER) if code & 0x0f == 0 || c == DT => c,
        _ => return Read::Bad,
    };
    let Some(tpkt) = stream.get(..len) else {
        return Read::More;
    };
    let (header, data) = (&tpkt[6..5 + li], &tpkt[5 + li..]);
    Read::Ok(Tpdu { code, header, data }, &stream[len..])
}

impl Tpdu<'_> {
    /// A class 0 data TPDU (`02 f0 xx`): its data, whatever the EOT bit.
    pub(crate) fn dt_class0(&self) -> Option<&[u8]> {
        (self.code == DT && self.header.len() == 1).then_some(self.data)
    }

    /// A connection request or confirm whose fixed part (DST-REF,
    /// SRC-REF, class and options) is there, with well-formed parameters
    /// (code, length, value) filling the rest of the header.
    pub(crate) fn is_connection(&self) -> bool {
        if self.code != CR && self.code != CC {
            return false;
        }
        let Some((fixed, mut params)) = self.header.split_first_chunk::<5>() else {
            return false;
        };
        if fixed[4] >> 4 > 4 {
            return false; // class 0 to 4
        }
        for _ in 0..16 {
            match params {
                [] => return true,
                [_, len, rest @ ..] if usize::from(*len) <= rest.len() => {
                    params = &rest[usize::from(*len)..];
                }
                _ => return false,
            }
        }
        false
    }
}

/// A [`crate::dissect::Dissector::first`] for protocols over TPKT:
/// version 3.
pub(crate) fn starts(_from_client: bool, byte: u8) -> bool {
    byte == 3
}

/// TPKTs read from a stream looking for its first data.
const MAX_TPKTS: usize = 4;

/// The user data of the first non-empty class 0 DT TPDU of `stream`,
/// after connection TPDUs (CR, CC) and empty DTs: `More` while cut short,
/// `Bad` at anything else.
pub(crate) fn first_data(stream: &[u8]) -> Read<'_> {
    let mut rest = stream;
    for _ in 0..MAX_TPKTS {
        match read(rest) {
            Read::Ok(tpdu, after) => match tpdu.dt_class0() {
                Some([]) => rest = after,
                Some(_) => return Read::Ok(tpdu, after),
                None if tpdu.is_connection() => rest = after,
                None => return Read::Bad,
            },
            other => return other,
        }
    }
    Read::Bad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::hex;

    #[test]
    fn reads_connection_and_data() {
        // s7comm.pcap frames 1 and 3.
        let cr = hex("0300001611e00000000700c1020100c2020102c0010a");
        let Read::Ok(tpdu, rest) = read(&cr) else {
            panic!("not read")
        };
        assert!(tpdu.is_connection() && rest.is_empty() && tpdu.data.is_empty());
        let dt = hex("0300001902f08032010000020000080000f0000001000101e0");
        let Read::Ok(tpdu, _) = read(&dt) else {
            panic!("not read")
        };
        assert_eq!(tpdu.dt_class0().and_then(|d| d.first()), Some(&0x32));
        for n in 0..dt.len() {
            assert_eq!(read(&dt[..n]), Read::More, "{n}");
        }
        assert_eq!(read(b"GET / HTTP/1.1\r\n"), Read::Bad);
        let both = [cr.as_slice(), &dt].concat();
        let Read::Ok(first, _) = first_data(&both) else {
            panic!("no data")
        };
        assert_eq!(first, tpdu);
        assert_eq!(first_data(&cr), Read::More);
        assert_eq!(read(&hex("030000050000")), Read::Bad);
    }
}

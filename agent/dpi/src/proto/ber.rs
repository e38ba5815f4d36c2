//! Reading BER (ASN.1) elements: what SNMP, Kerberos and LDAP share.

/// The header of the BER element at the start of `data`: tag (one byte,
/// low tag numbers only), header length, and value length as declared
/// (definite lengths of at most 4 bytes). The value may extend beyond
/// `data`.
pub(crate) fn header(data: &[u8]) -> Option<(u8, usize, usize)> {
    let (&tag, rest) = data.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // high tag number form
    }
    let (&first, rest) = rest.split_first()?;
    if first < 0x80 {
        return Some((tag, 2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None; // indefinite, or absurdly long
    }
    let len = rest
        .get(..n)?
        .iter()
        .fold(0usize, |len, &b| len << 8 | usize::from(b));
    Some((tag, 2 + n, len))
}

/// The BER element at the start of `data`, wholly within it: tag, value,
/// and the bytes after it.
pub(crate) fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (tag, head, len) = header(data)?;
    let (value, rest) = data.get(head..)?.split_at_checked(len)?;
    Some((tag, value, rest))
}

/// A non-negative INTEGER (at most 4 value bytes) at the start of `data`,
/// and the bytes after it.
pub(crate) fn int(data: &[u8]) -> Option<(u32, &[u8])> {
    let (0x02, value @ [first, ..], rest) = tlv(data)? else {
        return None;
    };
    if value.len() > 4 && !(value.len() == 5 && *first == 0) || *first >= 0x80 {
        return None;
    }
    let n = value.iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
    Some((u32::try_from(n).ok()?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ber_long_lengths() {
        assert_eq!(header(&[0x30, 0x82, 0x01, 0x02]), Some((0x30, 4, 0x102)));
        assert_eq!(header(&[0x30, 0x80]), None);
        assert_eq!(header(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(int(&[2, 1, 5, 9]), Some((5, &[9u8][..])));
        assert_eq!(int(&[2, 1, 0x85]), None);
        assert_eq!(int(&[2, 0]), None);
    }
}

//! Digests and MAC addresses as records write them: lowercase hex.

/// `b` as two lowercase hex digits.
pub fn hex_digits(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]]
}

/// `bytes` as lowercase hex digits.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.extend(hex_digits(b).map(char::from));
    }
    s
}

/// `digest` as 40 lowercase hex digits.
pub fn digest_hex(digest: &[u8; 20]) -> [u8; 40] {
    let mut out = [0u8; 40];
    for (pair, &b) in out.chunks_exact_mut(2).zip(digest) {
        pair.copy_from_slice(&hex_digits(b));
    }
    out
}

/// A MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(m: [u8; 6]) -> [u8; 17] {
    let mut out = [b':'; 17];
    for (i, &b) in m.iter().enumerate() {
        out[i * 3..i * 3 + 2].copy_from_slice(&hex_digits(b));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_macs_are_lowercase_hex() {
        let mut d = [0u8; 20];
        d[0] = 0xab;
        d[19] = 0x0f;
        assert_eq!(&digest_hex(&d)[..2], b"ab");
        assert_eq!(&digest_hex(&d)[38..], b"0f");
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(
            &mac_text([0, 1, 0xab, 0xcd, 0xef, 0xff]),
            b"00:01:ab:cd:ef:ff"
        );
    }
}

//! Checksums some industrial protocols carry, computed bit by bit (they
//! are checked only on the few packets that passed every cheaper test).

/// CRC-16 with polynomial 0x1021, not reflected, from `init`:
/// CCITT-FALSE with `0xffff` (IEEE C37.118), XMODEM with 0 (Ether-S-Bus).
pub(crate) fn crc16_ccitt(bytes: &[u8], init: u16) -> u16 {
    bytes.iter().fold(init, |mut crc, &b| {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// The DNP3 link-layer CRC: polynomial 0x3d65 reflected, init 0, the
/// result inverted (sent least significant byte first).
pub(crate) fn crc16_dnp(bytes: &[u8]) -> u16 {
    !bytes.iter().fold(0u16, |mut crc, &b| {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xa6bc
            } else {
                crc >> 1
            };
        }
        crc
    })
}

/// CRC-32 (IEEE 802.3, as zlib's `crc32`).
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |mut crc, &b| {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
        crc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values() {
        // The catalogue's check value: the CRC of "123456789".
        assert_eq!(crc16_ccitt(b"123456789", 0xffff), 0x29b1);
        assert_eq!(crc16_ccitt(b"123456789", 0), 0x31c3);
        assert_eq!(crc16_dnp(b"123456789"), 0xea82);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }
}

//! QUIC (nDPI 188 "QUIC") over UDP.
//!
//! IETF QUIC v1 (RFC 9000/9001), v2 (RFC 9369) and drafts 23 to 32: the
//! client's Initial packets are decrypted with the keys every observer can
//! derive from their destination connection ID, their CRYPTO frames put
//! back in order in a bounded buffer, and the TLS ClientHello found there
//! read by [`tls::client_hello`] (SNI, ALPN, JA4 `q...`). Google QUIC
//! (versions `Q0xx`): the SNI comes from the client's `CHLO` message, in
//! clear text up to Q046, decrypted like an IETF Initial in Q050.
//!
//! Cryptography is RustCrypto's (`hkdf`, `sha2`, `aes-gcm` and its `aes`):
//! pure Rust with no C or assembly build step, the family whose `sha1`
//! the workspace already uses.

use aes_gcm::aes::Aes128;
use aes_gcm::aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes_gcm::{AeadInOut, Aes128Gcm};
use flowstat_core::{Metadata, Protocol, wire_text};
use hkdf::Hkdf;
use sha2::Sha256;

use super::tls::{self, Reader};
use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// nDPI's QUIC.
const QUIC: Protocol = Protocol(188);
/// Most CRYPTO stream bytes kept (the ClientHello must fit).
const CRYPTO_MAX: usize = 8 * 1024;
/// Most separate CRYPTO byte ranges remembered.
const MAX_RANGES: usize = 16;
/// Most QUIC packets read from one datagram.
const MAX_COALESCED: usize = 4;

/// Per-flow state: the client's CRYPTO stream of Initial packets.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// The flow was claimed.
    found: bool,
    /// CRYPTO bytes by offset (holes are zeros).
    crypto: Vec<u8>,
    /// Byte ranges of `crypto` received, sorted and disjoint.
    ranges: Vec<(usize, usize)>,
}

/// Initial packet protection of one IETF version.
struct Keys {
    /// Initial salt.
    salt: [u8; 20],
    /// RFC 9369 labels and packet type numbers.
    v2: bool,
}

/// QUIC v1's Initial salt (RFC 9001 5.2).
const V1_SALT: [u8; 20] =
    *b"\x38\x76\x2c\xf7\xf5\x59\x34\xb3\x4d\x17\x9a\xe6\xa4\xc8\x0c\xad\xcc\xbb\x7f\x0a";
/// QUIC v2's Initial salt (RFC 9369 3.3.1).
const V2_SALT: [u8; 20] =
    *b"\x0d\xed\xe3\xde\xf7\x00\xa6\xdb\x81\x93\x81\xbe\x6e\x26\x9d\xcb\xf9\xbd\x2e\xd9";
/// The Initial salt of drafts 29 to 32.
const DRAFT29_SALT: [u8; 20] =
    *b"\xaf\xbf\xec\x28\x99\x93\xd2\x4c\x9e\x97\x86\xf1\x9c\x61\x11\xe0\x43\x90\xa8\x99";
/// The Initial salt of drafts 23 to 28.
const DRAFT23_SALT: [u8; 20] =
    *b"\xc3\xee\xf7\x12\xc7\x2e\xbb\x5a\x11\xa7\xd2\x43\x2b\xb4\x63\x65\xbe\xf9\xf5\x02";
/// Google QUIC Q050's Initial salt.
const Q050_SALT: [u8; 20] =
    *b"\x50\x45\x74\xef\xd0\x66\xfe\x2f\x9d\x94\x5c\xfc\xdb\xd3\xa7\xf0\xd3\xb5\x6b\x45";

/// The Initial protection of IETF `version` (and Google's Q050).
fn keys(version: u32) -> Option<Keys> {
    let (salt, v2) = match version {
        0x0000_0001 => (V1_SALT, false),
        0x6b33_43cf => (V2_SALT, true),
        0xff00_001d..=0xff00_0020 => (DRAFT29_SALT, false),
        0xff00_0017..=0xff00_001c => (DRAFT23_SALT, false),
        0x5130_3530 => (Q050_SALT, false), // "Q050"
        _ => return None,
    };
    Some(Keys { salt, v2 })
}

/// True for Google QUIC versions: `Q0nn` or `T0nn`.
fn google(version: &[u8]) -> bool {
    matches!(version, [b'Q' | b'T', b'0', a, b] if a.is_ascii_digit() && b.is_ascii_digit())
}

/// Reads the client's Initial packets until the ClientHello is whole.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    scratch.keep(|st: &mut State| step(pkt, st, meta))
}

/// [`dissect`] on the flow's state.
fn step(pkt: &Packet<'_>, st: &mut State, meta: &mut Metadata) -> Verdict {
    let data = pkt.payload;
    if pkt.tcp {
        return Verdict::No;
    }
    let Some(version) = data.get(1..5).filter(|_| data[0] & 0xc0 == 0xc0) else {
        // A short header, or Google QUIC's older public header.
        return match data.get(9..13) {
            Some(v) if pkt.from_client && data[0] & 0x89 == 0x09 && google(v) => {
                chlo(data.get(13..).unwrap_or_default(), meta);
                Verdict::Done(QUIC)
            }
            _ if st.found => Verdict::Found(QUIC),
            _ => Verdict::No,
        };
    };
    let number = u32::from_be_bytes([version[0], version[1], version[2], version[3]]);
    if keys(number).is_some() || google(version) {
        st.found = true;
    }
    if !pkt.from_client || !st.found {
        return if st.found {
            Verdict::Found(QUIC)
        } else {
            Verdict::No
        };
    }
    if google(version) && version < b"Q050".as_slice() {
        // Up to Q046 the CHLO is in clear text.
        chlo(data.get(5..).unwrap_or_default(), meta);
        return Verdict::Done(QUIC);
    }
    let mut rest = data;
    for _ in 0..MAX_COALESCED {
        let Some((len, plain)) = initial(rest) else {
            break;
        };
        if let Some(plain) = plain {
            if google(version) {
                chlo(&plain, meta);
                return Verdict::Done(QUIC);
            }
            st.frames(&plain);
        }
        rest = rest.get(len..).unwrap_or_default();
    }
    match st.client_hello() {
        Some(body) => {
            tls::client_hello(body, true, meta);
            Verdict::Done(QUIC)
        }
        // All the buffer holds, and still not all of it: it never will be.
        None if st.ranges == [(0, CRYPTO_MAX)] => Verdict::Done(QUIC),
        None => Verdict::Found(QUIC),
    }
}

/// The long header packet at the start of `data`: its length and, for a
/// client Initial that decrypts, its plaintext payload. `None` when
/// `data` does not start with a long header packet of a known version.
fn initial(data: &[u8]) -> Option<(usize, Option<Vec<u8>>)> {
    let mut r = Reader(data);
    let first = r.u8().filter(|b| b & 0xc0 == 0xc0)?;
    let version = r.take(4)?;
    let keys = keys(u32::from_be_bytes([
        version[0], version[1], version[2], version[3],
    ]))?;
    let dcid = r.vec8().filter(|c| c.len() <= 20)?;
    r.vec8().filter(|c| c.len() <= 20)?;
    let typ = (first >> 4) & 3;
    let is_initial = typ == u8::from(keys.v2);
    if typ == if keys.v2 { 0 } else { 3 } {
        return Some((data.len(), None)); // Retry: to the end
    }
    if is_initial {
        let token = varint(&mut r)?;
        r.skip(usize::try_from(token).ok()?)?;
    }
    let len = usize::try_from(varint(&mut r)?).ok()?;
    let pn_offset = data.len() - r.0.len();
    let end = pn_offset.checked_add(len)?;
    let packet = data.get(..end)?;
    let plain = is_initial
        .then(|| decrypt(packet, pn_offset, dcid, &keys))
        .flatten();
    Some((end, plain))
}

/// Removes header protection from and decrypts the client Initial
/// `packet` (RFC 9001 5).
fn decrypt(packet: &[u8], pn_offset: usize, dcid: &[u8], keys: &Keys) -> Option<Vec<u8>> {
    let (key, iv, hp) = client_keys(dcid, keys)?;
    let sample: [u8; 16] = packet.get(pn_offset + 4..pn_offset + 20)?.try_into().ok()?;
    let mut mask = aes_gcm::aes::Block::from(sample);
    Aes128::new_from_slice(&hp).ok()?.encrypt_block(&mut mask);
    let first = packet[0] ^ (mask[0] & 0x0f);
    let pn_len = usize::from(first & 3) + 1;
    let mut header = packet.get(..pn_offset + pn_len)?.to_vec();
    header[0] = first;
    let mut nonce = iv;
    for i in 0..pn_len {
        header[pn_offset + i] ^= mask[1 + i];
        nonce[12 - pn_len + i] ^= header[pn_offset + i];
    }
    let body = &packet[pn_offset + pn_len..];
    let (cipher, tag) = body.split_at_checked(body.len().checked_sub(16)?)?;
    let mut plain = cipher.to_vec();
    let tag: [u8; 16] = tag.try_into().ok()?;
    Aes128Gcm::new_from_slice(&key)
        .ok()?
        .decrypt_inout_detached(
            &nonce.into(),
            &header,
            plain.as_mut_slice().into(),
            &tag.into(),
        )
        .ok()?;
    Some(plain)
}

/// The client's Initial key, IV and header protection key for `dcid`.
fn client_keys(dcid: &[u8], keys: &Keys) -> Option<([u8; 16], [u8; 12], [u8; 16])> {
    let initial = Hkdf::<Sha256>::new(Some(&keys.salt), dcid);
    let mut secret = [0; 32];
    expand_label(&initial, b"client in", &mut secret)?;
    let client = Hkdf::<Sha256>::from_prk(&secret).ok()?;
    let (mut key, mut iv, mut hp) = ([0; 16], [0; 12], [0; 16]);
    let labels: [&[u8]; 3] = if keys.v2 {
        [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"]
    } else {
        [b"quic key", b"quic iv", b"quic hp"]
    };
    expand_label(&client, labels[0], &mut key)?;
    expand_label(&client, labels[1], &mut iv)?;
    expand_label(&client, labels[2], &mut hp)?;
    Some((key, iv, hp))
}

/// TLS 1.3's HKDF-Expand-Label with an empty context (RFC 8446 7.1).
fn expand_label(prk: &Hkdf<Sha256>, label: &[u8], out: &mut [u8]) -> Option<()> {
    let len = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(6 + label.len()).ok()?];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    prk.expand_multi_info(&info, out).ok()
}

/// A QUIC variable-length integer (RFC 9000 16).
fn varint(r: &mut Reader<'_>) -> Option<u64> {
    let first = r.u8()?;
    let rest = r.take((1 << (first >> 6)) - 1)?;
    Some(
        rest.iter()
            .fold(u64::from(first & 0x3f), |v, &b| v << 8 | u64::from(b)),
    )
}

impl State {
    /// Keeps the CRYPTO frames of a decrypted Initial payload.
    fn frames(&mut self, plain: &[u8]) {
        let mut r = Reader(plain);
        while let Some(typ) = varint(&mut r) {
            let ok = match typ {
                0x00 | 0x01 => Some(()), // PADDING, PING
                0x02 | 0x03 => ack(&mut r, typ == 0x03),
                0x06 => self.crypto_frame(&mut r),
                _ => None, // CONNECTION_CLOSE or not allowed in Initials
            };
            if ok.is_none() {
                return;
            }
        }
    }

    /// Keeps the data of the CRYPTO frame read by `r`.
    fn crypto_frame(&mut self, r: &mut Reader<'_>) -> Option<()> {
        let offset = usize::try_from(varint(r)?).ok()?;
        let len = usize::try_from(varint(r)?).ok()?;
        self.insert(offset, r.take(len)?);
        Some(())
    }

    /// Stores CRYPTO `data` at `offset` (what lies beyond the cap is lost).
    fn insert(&mut self, offset: usize, data: &[u8]) {
        let end = offset.saturating_add(data.len()).min(CRYPTO_MAX);
        if offset >= end || self.ranges.len() >= MAX_RANGES {
            return;
        }
        if self.crypto.len() < end {
            self.crypto.resize(end, 0);
        }
        self.crypto[offset..end].copy_from_slice(&data[..end - offset]);
        self.ranges.push((offset, end));
        self.ranges.sort_unstable();
        // Merge each range into the one before when they touch.
        self.ranges.dedup_by(|next, prev| {
            let touch = next.0 <= prev.1;
            if touch {
                prev.1 = prev.1.max(next.1);
            }
            touch
        });
    }

    /// The ClientHello's body, once the CRYPTO stream holds all of it.
    fn client_hello(&self) -> Option<&[u8]> {
        let have = match self.ranges.first() {
            Some(&(0, end)) => end,
            _ => return None,
        };
        let mut r = Reader(&self.crypto[..have]);
        let typ = r.u8()?;
        let len = r.u24()?;
        (typ == 1).then(|| r.take(len)).flatten()
    }
}

/// Skips the rest of an ACK frame.
fn ack(r: &mut Reader<'_>, ecn: bool) -> Option<()> {
    varint(r)?; // largest acknowledged
    varint(r)?; // delay
    let ranges = varint(r)?;
    varint(r)?; // first range
    // Each range takes at least two bytes.
    for _ in 0..ranges.min(r.0.len() as u64) {
        varint(r)?;
        varint(r)?;
    }
    if ecn {
        for _ in 0..3 {
            varint(r)?;
        }
    }
    Some(())
}

/// Reads the SNI of a Google QUIC `CHLO` message found near the start of
/// `data` (tag-value pairs: count, then end offsets, then values).
fn chlo(data: &[u8], meta: &mut Metadata) {
    let window = &data[..data.len().min(64)];
    let Some(at) = window.windows(4).position(|w| w == b"CHLO") else {
        return;
    };
    let mut r = Reader(&data[at + 4..]);
    let Some(count) = r
        .take(4)
        .map(|n| usize::from(u16::from_le_bytes([n[0], n[1]])))
    else {
        return;
    };
    let Some(index) = r.take(count.saturating_mul(8)) else {
        return;
    };
    let values = r.0;
    let mut start = 0;
    for entry in index.chunks_exact(8) {
        let end = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]) as usize;
        if &entry[..4] == b"SNI\0" {
            if let Some(sni) = values.get(start..end) {
                meta.host_server_name = wire_text(sni, 256);
            }
            return;
        }
        start = end;
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "quic",
    protocols: &[Protocol(188)],
    tcp: false,
    udp: true,
    ports: &[443],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "dlt_ppp.pcap frames ",
        tcp: false,
        server_port: 443,
        packets: &[(
            true,
            "cfff00001d0cb712293a9b14f20cd059dca8049869c1d7004496743ac64dd1b9\
             7c5497ef3b29287aeb6d33478c587270a46a4e3c0a968741947e9f4821ef36cc\
             f10e271c5bb9d339fe93962261a430962764a0b8a1cf9689ef35ed996e4f7a86\
             95b4fa166bd1ef0814dd996a88994ee3ed034472f877f0f32f745f09d85a2827\
             f1a2f896afd38e685f716b21c14e09684e45486d22dd7ab8a19f0afe9a4eeaaa\
             b4ad82155d5c916d9ce5874f300c7663e9cda63df684cfcd9c169256738c6f56\
             e6c85dc6203ca24ff7a6dd96318dd02480f36c7cca3feed9b0baf9606145218c\
             71d49b299905cee7e5378d5978de8efe86e1a63261981cd7566d1618805a0091\
             c57ae3672709a73e7193d577d6abfd715119f77f59a1552becef4cd5fe7b143b\
             637648a2d1912da3c5bc6a63dc7d56f4735604428e0eeee1113536397fcd699b\
             8d8c06dfc712954c2f68e8b531a135636a0e257ae15ac06de913a5cbc4587d7d\
             e9df5f262ca481b2e349d7ef4d7ece798fc92ba1aeb6208442aa1d54c5cff7e3\
             6f9cb9f69c43ab07f1da0cfed2d2e335134c2dd358d4083e0693593d00590f14\
             b54389e509f52a2ca59226912c77e987c940b7a516a8946f09a6eebc50b1978c\
             9e19292efde76598d90b5b8c4b6231219534f111a747e85be1d1132f2a29bfad\
             16027ae4db01598d04f7f8c9186a455278b1fc2ec10e3b57fd980af607f2bd54",
        )],
        protocol: Protocol(188),
    }],
};

#[cfg(test)]
#[path = "quic/tests.rs"]
mod tests;

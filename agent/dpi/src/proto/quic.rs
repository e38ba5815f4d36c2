//! QUIC (nDPI 188 "QUIC") over UDP, and DNS over QUIC (nDPI 196
//! "DoH_DoT").
//!
//! Every QUIC version seen in the wild:
//! - IETF QUIC v1 (RFC 9000/9001), v2 (RFC 9369), drafts 21 to 34,
//!   Facebook's mvfst versions (`0xfaceb0xx`) and the greased versions
//!   that force version negotiation (`0x?a?a?a?a`): the client's Initial
//!   packets are decrypted with the keys every observer can derive from
//!   their destination connection ID and the version's salt, their CRYPTO
//!   frames put back in order in a bounded buffer (in whatever order the
//!   packets came), and the TLS ClientHello found there read by
//!   [`tls::client_hello`] (SNI, ALPN, JA4 `q...`). A first ALPN of `doq`
//!   (`doq-iNN` in drafts) names the flow DNS over QUIC, as nDPI does.
//! - Google QUIC: up to Q046 the client's `CHLO` message travels in clear
//!   text (Q043 and older under the public header, Q046 under a long
//!   header); Q050, T050 and T051 protect their Initials as IETF QUIC does,
//!   each with its own salt, and carry their handshake in CRYPTO frames of
//!   type 0x08: a `CHLO` for Q050, a TLS ClientHello for T05x. From a
//!   `CHLO` come the SNI (tag `SNI`) and the user agent (tag `UAID`).
//!
//! 0-RTT, Handshake and Retry packets name a flow QUIC too (a flow may
//! start with 0-RTT packets when its Initial was lost or came later).
//!
//! After a TLS ClientHello, the server's Initial packets are decrypted
//! too (with the keys the client's connection ID gives the server side)
//! for the ServerHello: version, cipher and JA4S `q...`.
//!
//! Memory: a flow keeps state only between its first QUIC packet and the
//! server's hello (at most [`SERVER_WAIT`] packets after the client's),
//! boxed by [`Scratch::keep`]: at most [`CRYPTO_MAX`] bytes of one CRYPTO
//! stream at a time and [`MAX_RANGES`] ranges.
//!
//! Cryptography is RustCrypto's (`hkdf`, `sha2`, `aes-gcm` and its `aes`):
//! pure Rust with no C or assembly build step, the family whose `sha1`
//! the workspace already uses.

use aes_gcm::aes::Aes128;
use aes_gcm::aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes_gcm::{AeadInOut, Aes128Gcm};
use flowstat_core::{Http, Metadata, Protocol, wire_text};
use hkdf::Hkdf;
use sha2::Sha256;

use super::tls::{self, Reader};
use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// nDPI's QUIC.
const QUIC: Protocol = Protocol(188);
/// nDPI's DoH_DoT: DNS over QUIC.
const DOH_DOT: Protocol = Protocol(196);
/// Most CRYPTO stream bytes kept (the client hello must fit).
const CRYPTO_MAX: usize = 8 * 1024;
/// Most separate CRYPTO byte ranges remembered.
const MAX_RANGES: usize = 8;
/// Most QUIC packets read from one datagram.
const MAX_COALESCED: usize = 4;
/// The smallest datagram carrying a client Initial (RFC 9000 14.1): what
/// a greased version must be to be taken for QUIC, as nDPI asks.
const INITIAL_MIN: usize = 1200;
/// Most text kept from a `CHLO` value.
const MAX_TEXT: usize = 256;

/// Per-flow state: the client's CRYPTO stream of Initial packets.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// The flow was claimed.
    found: bool,
    /// CRYPTO bytes by offset (holes are zeros), at most [`CRYPTO_MAX`].
    crypto: Vec<u8>,
    /// Byte ranges of `crypto` received, sorted and disjoint: the first
    /// `count` entries.
    ranges: [(u16, u16); MAX_RANGES],
    /// Entries of `ranges` in use.
    count: u8,
    /// What the keys of the client's last decrypted Initial derive from.
    client: Option<Initial>,
    /// After the client's hello: the server's Initial keys are waited
    /// for, and `crypto` holds the server's CRYPTO stream.
    server: Option<Awaited>,
}

/// What Initial keys derive from (RFC 9001 5.2): the destination
/// connection ID of the client's Initial, the version's salt, its labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Initial {
    dcid: [u8; 20],
    dcid_len: u8,
    salt: [u8; 20],
    v2: bool,
}

impl Initial {
    fn new(dcid: &[u8], salt: &[u8; 20], v2: bool) -> Option<Self> {
        let mut id = [0; 20];
        id.get_mut(..dcid.len())?.copy_from_slice(dcid);
        Some(Initial {
            dcid: id,
            dcid_len: dcid.len() as u8,
            salt: *salt,
            v2,
        })
    }

    fn dcid(&self) -> &[u8] {
        &self.dcid[..usize::from(self.dcid_len)]
    }
}

/// The wait for the server's ServerHello, after the client's hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Awaited {
    /// The server's Initial keys.
    keys: Initial,
    /// The flow's protocol (QUIC, or DNS over QUIC).
    protocol: Protocol,
    /// Packets seen since the client's hello.
    packets: u8,
}

/// Packets after the client's hello within which the server's Initial
/// shows its ServerHello (JA4S), or detection ends without it.
const SERVER_WAIT: u8 = 6;

/// What a version's client sends in its first flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hello {
    /// A TLS ClientHello in CRYPTO frames (type 0x06).
    Tls,
    /// A TLS ClientHello in Google's CRYPTO frames (type 0x08): T05x.
    GoogleTls,
    /// A `CHLO` in Google's CRYPTO frames: Q050.
    GoogleChlo,
}

/// Initial packet protection of one version.
#[derive(Clone, Copy, Debug)]
struct Keys {
    /// Initial salts to try, the usual one first (mvfst's varied with its
    /// releases, a greased version has none of its own).
    salts: &'static [[u8; 20]],
    /// RFC 9369 labels and packet type numbers.
    v2: bool,
    /// What the CRYPTO stream holds.
    hello: Hello,
}

/// QUIC v1's Initial salt (RFC 9001 5.2), also drafts 33 and 34's.
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
/// The Initial salt of drafts 21 and 22.
const DRAFT22_SALT: [u8; 20] =
    *b"\x7f\xbc\xdb\x0e\x7c\x66\xbb\xe9\x19\x3a\x96\xcd\x21\x51\x9e\xbd\x7a\x02\x64\x4a";
/// Google QUIC Q050's Initial salt.
const Q050_SALT: [u8; 20] =
    *b"\x50\x45\x74\xef\xd0\x66\xfe\x2f\x9d\x94\x5c\xfc\xdb\xd3\xa7\xf0\xd3\xb5\x6b\x45";
/// Google QUIC T050's Initial salt.
const T050_SALT: [u8; 20] =
    *b"\x7f\xf5\x79\xe5\xac\xd0\x72\x91\x55\x80\x30\x4c\x43\xa2\x36\x7c\x60\x48\x83\x10";
/// Google QUIC T051's Initial salt.
const T051_SALT: [u8; 20] =
    *b"\x7a\x4e\xde\xf4\xe7\xcc\xee\x5f\xa4\x50\x6c\x19\x12\x4f\xc8\xcc\xda\x6e\x03\x3d";

/// Facebook's mvfst `0xfaceb001` (its draft-22 era): nDPI's salt first.
const MVFST_22_SALTS: &[[u8; 20]] = &[DRAFT22_SALT, DRAFT23_SALT, DRAFT29_SALT, V1_SALT];
/// Facebook's later mvfst versions (`0xfaceb002`, `0xfaceb00e`, ...):
/// nDPI's draft-27 salt first, then those of later mvfst releases.
const MVFST_SALTS: &[[u8; 20]] = &[DRAFT23_SALT, DRAFT29_SALT, V1_SALT, DRAFT22_SALT];
/// A greased version: nDPI's guess (draft 29), then v1.
const GREASE_SALTS: &[[u8; 20]] = &[DRAFT29_SALT, V1_SALT];

/// The Initial protection of `version`, for the versions whose Initials
/// can be decrypted.
fn keys(version: u32) -> Option<Keys> {
    let ietf = |salts| {
        Some(Keys {
            salts,
            v2: false,
            hello: Hello::Tls,
        })
    };
    match version {
        0x0000_0001 | 0xff00_0021..=0xff00_0022 => ietf(std::slice::from_ref(&V1_SALT)),
        0x6b33_43cf => Some(Keys {
            salts: std::slice::from_ref(&V2_SALT),
            v2: true,
            hello: Hello::Tls,
        }),
        0xff00_001d..=0xff00_0020 => ietf(std::slice::from_ref(&DRAFT29_SALT)),
        0xff00_0017..=0xff00_001c => ietf(std::slice::from_ref(&DRAFT23_SALT)),
        0xff00_0015..=0xff00_0016 => ietf(std::slice::from_ref(&DRAFT22_SALT)),
        0xface_b001 => ietf(MVFST_22_SALTS),
        v if v & 0xffff_f000 == 0xface_b000 => ietf(MVFST_SALTS),
        v if greased(v) => ietf(GREASE_SALTS),
        0x5130_3530 => google(&Q050_SALT, Hello::GoogleChlo), // "Q050"
        0x5430_3530 => google(&T050_SALT, Hello::GoogleTls),  // "T050"
        0x5430_3531 => google(&T051_SALT, Hello::GoogleTls),  // "T051"
        _ => None,
    }
}

/// The keys of a Google QUIC version with IETF-style Initials.
fn google(salt: &'static [u8; 20], hello: Hello) -> Option<Keys> {
    Some(Keys {
        salts: std::slice::from_ref(salt),
        v2: false,
        hello,
    })
}

/// A version reserved to force version negotiation (RFC 9000 15).
fn greased(version: u32) -> bool {
    version & 0x0f0f_0f0f == 0x0a0a_0a0a
}

/// True for Google QUIC versions: `Q0nn` or `T0nn`.
fn gquic(version: &[u8]) -> bool {
    matches!(version, [b'Q' | b'T', b'0', a, b] if a.is_ascii_digit() && b.is_ascii_digit())
}

/// Reads the client's Initial packets until its hello is whole.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    scratch.keep(|st: &mut State| step(pkt, st, meta))
}

/// [`dissect`] on the flow's state.
fn step(pkt: &Packet<'_>, st: &mut State, meta: &mut Metadata) -> Verdict {
    let data = pkt.payload;
    // The answer to a packet that says nothing new.
    let other = if st.found {
        Verdict::Found(QUIC)
    } else {
        Verdict::No
    };
    if pkt.tcp {
        return Verdict::No;
    }
    if let Some(awaited) = st.server {
        return st.server_hello(pkt, awaited, meta);
    }
    let Some(&first) = data.first() else {
        return other;
    };
    if first & 0x80 == 0 {
        // A short header, or Google QUIC's public header (up to Q043):
        // flags (version present, 8-byte connection ID), ID, version.
        return match data.get(9..13) {
            Some(v) if pkt.from_client && first & 0xc9 == 0x09 && gquic(v) => {
                chlo(find_chlo(data.get(13..).unwrap_or_default()), meta);
                Verdict::Done(QUIC)
            }
            _ => other,
        };
    }
    let Some(version) = data.get(1..5) else {
        return other;
    };
    let number = u32::from_be_bytes([version[0], version[1], version[2], version[3]]);
    if gquic(version) && version < b"Q050".as_slice() {
        // Q046: the CHLO in clear text after the long header, whose
        // connection ID lengths (4 bits each, plus 3) say 8 and 0 from
        // the client, 0 and 8 from the server.
        if first & 0x40 == 0 || !matches!(data.get(5), Some(0x50 | 0x05)) {
            return other;
        }
        if !pkt.from_client {
            st.found = true;
            return Verdict::Found(QUIC);
        }
        chlo(find_chlo(data.get(5..).unwrap_or_default()), meta);
        return Verdict::Done(QUIC);
    }
    let keys = keys(number).filter(|_| {
        !greased(number) || (pkt.from_client && first & 0x40 != 0 && data.len() >= INITIAL_MIN)
    });
    let Some(keys) = keys else {
        // Another Google version with an IETF-style header (nothing to
        // decrypt with), or not QUIC.
        if gquic(version) && first & 0x40 != 0 && Long::parse(data, version, false).is_some() {
            st.found = true;
            return if pkt.from_client {
                Verdict::Done(QUIC)
            } else {
                Verdict::Found(QUIC)
            };
        }
        return other;
    };
    let mut rest = data;
    let mut packets = 0;
    for _ in 0..MAX_COALESCED {
        let Some(packet) = Long::parse(rest, version, keys.v2) else {
            break;
        };
        packets += 1;
        if pkt.from_client && packet.initial {
            if let Some((plain, initial)) = decrypt(rest, &packet, &keys) {
                st.frames(&plain, keys.hello);
                st.client = Some(initial);
            }
        }
        rest = rest.get(packet.len..).unwrap_or_default();
    }
    if packets == 0 {
        return other;
    }
    st.found = true;
    if !pkt.from_client {
        return Verdict::Found(QUIC);
    }
    match (st.hello(keys.hello, varint_params(number), meta), st.client) {
        // A TLS ClientHello read: the server's hello is next.
        (Verdict::Done(protocol), Some(initial))
            if keys.hello == Hello::Tls && meta.ssl.is_some() =>
        {
            (st.crypto, st.count, st.client) = (Vec::new(), 0, None);
            st.server = Some(Awaited {
                keys: initial,
                protocol,
                packets: 0,
            });
            Verdict::Found(protocol)
        }
        (verdict, _) => verdict,
    }
}

/// True unless `version` writes its transport parameters' ids and lengths
/// on 16 bits: drafts before 27, mvfst's draft-22 version and T050.
fn varint_params(version: u32) -> bool {
    !matches!(
        version,
        0xff00_0000..=0xff00_001a | 0xface_b001 | 0x5430_3530
    )
}

/// The header of one long header packet.
#[derive(Debug)]
struct Long<'a> {
    /// The whole packet's length.
    len: usize,
    /// An Initial packet.
    initial: bool,
    /// Destination connection ID.
    dcid: &'a [u8],
    /// Where the (protected) packet number starts.
    pn_offset: usize,
}

impl<'a> Long<'a> {
    /// The long header packet of `version` at the start of `data`, if its
    /// header is well formed.
    fn parse(data: &'a [u8], version: &[u8], v2: bool) -> Option<Self> {
        let mut r = Reader(data);
        let first = r.u8().filter(|b| b & 0x80 != 0)?;
        r.take(4).filter(|v| *v == version)?;
        let dcid = r.vec8().filter(|c| c.len() <= 20)?;
        r.vec8().filter(|c| c.len() <= 20)?;
        let typ = (first >> 4) & 3;
        let retry = if v2 { 0 } else { 3 };
        let initial = typ == u8::from(v2);
        if typ == retry {
            // Retry: a token and an integrity tag, to the end.
            let len = data.len();
            return (len - r.0.len() >= 16).then_some(Long {
                len,
                initial,
                dcid,
                pn_offset: len,
            });
        }
        if initial {
            let token = varint(&mut r)?;
            r.skip(usize::try_from(token).ok()?)?;
        }
        // A packet number and an AEAD tag, and room for the header
        // protection sample (RFC 9001 5.4.2). What runs past the datagram
        // was cut by the capture: the packet ends with it (and does not
        // decrypt).
        let len = usize::try_from(varint(&mut r)?).ok().filter(|&n| n >= 20)?;
        let pn_offset = data.len() - r.0.len();
        let end = pn_offset.saturating_add(len).min(data.len());
        Some(Long {
            len: end,
            initial,
            dcid,
            pn_offset,
        })
    }
}

/// Removes header protection from and decrypts the client Initial
/// `packet` at the start of `data` (RFC 9001 5), trying each of the
/// version's salts: the plain text, and what its keys derive from.
fn decrypt(data: &[u8], packet: &Long<'_>, keys: &Keys) -> Option<(Vec<u8>, Initial)> {
    let bytes = data.get(..packet.len)?;
    keys.salts.iter().find_map(|salt| {
        let initial = Initial::new(packet.dcid, salt, keys.v2)?;
        Some((
            decrypt_with(bytes, packet, &initial, b"client in")?,
            initial,
        ))
    })
}

/// [`decrypt`] with the keys `label` (`client in` or `server in`) derives
/// from `initial`.
fn decrypt_with(
    bytes: &[u8],
    packet: &Long<'_>,
    initial: &Initial,
    label: &[u8],
) -> Option<Vec<u8>> {
    let pn_offset = packet.pn_offset;
    let (key, iv, hp) = initial_keys(initial, label)?;
    let sample: [u8; 16] = bytes.get(pn_offset + 4..pn_offset + 20)?.try_into().ok()?;
    let mut mask = aes_gcm::aes::Block::from(sample);
    Aes128::new_from_slice(&hp).ok()?.encrypt_block(&mut mask);
    let first = bytes[0] ^ (mask[0] & 0x0f);
    let pn_len = usize::from(first & 3) + 1;
    let mut header = bytes.get(..pn_offset + pn_len)?.to_vec();
    header[0] = first;
    let mut nonce = iv;
    for i in 0..pn_len {
        header[pn_offset + i] ^= mask[1 + i];
        nonce[12 - pn_len + i] ^= header[pn_offset + i];
    }
    let body = &bytes[pn_offset + pn_len..];
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

/// The Initial key, IV and header protection key of one side (`label`:
/// `client in` or `server in`).
fn initial_keys(initial: &Initial, label: &[u8]) -> Option<([u8; 16], [u8; 12], [u8; 16])> {
    let prk = Hkdf::<Sha256>::new(Some(&initial.salt), initial.dcid());
    let mut secret = [0; 32];
    expand_label(&prk, label, &mut secret)?;
    let side = Hkdf::<Sha256>::from_prk(&secret).ok()?;
    let (mut key, mut iv, mut hp) = ([0; 16], [0; 12], [0; 16]);
    let labels: [&[u8]; 3] = if initial.v2 {
        [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"]
    } else {
        [b"quic key", b"quic iv", b"quic hp"]
    };
    expand_label(&side, labels[0], &mut key)?;
    expand_label(&side, labels[1], &mut iv)?;
    expand_label(&side, labels[2], &mut hp)?;
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
    /// Keeps the CRYPTO frames of a decrypted Initial payload. Every
    /// frame type allowed in an Initial is one byte long.
    fn frames(&mut self, plain: &[u8], hello: Hello) {
        let google = hello != Hello::Tls;
        let mut r = Reader(plain);
        while let Some(typ) = r.u8() {
            let ok = match typ {
                0x00 => Some(()),            // PADDING
                0x01 if !google => Some(()), // PING
                0x02 | 0x03 if !google => ack(&mut r, typ == 0x03),
                0x06 if !google => self.crypto_frame(&mut r),
                0x08 if google => self.crypto_frame(&mut r),
                // Google's ACK before a repeated CHLO, skipped by its
                // usual size as nDPI does.
                0x40 if google => r.skip(5),
                0x60 if google => r.skip(8),
                _ => None, // CONNECTION_CLOSE or not allowed in Initials
            };
            if ok.is_none() {
                return;
            }
        }
    }

    /// After the client's hello: reads the server's Initial packets for
    /// its ServerHello (version, cipher, JA4S `q...`), until it is whole or
    /// [`SERVER_WAIT`] packets have passed without it.
    fn server_hello(
        &mut self,
        pkt: &Packet<'_>,
        mut awaited: Awaited,
        meta: &mut Metadata,
    ) -> Verdict {
        let protocol = awaited.protocol;
        let data = pkt.payload;
        let long = data.first().is_some_and(|b| b & 0x80 != 0);
        let version = data.get(1..5).filter(|_| long);
        if let (false, Some(version)) = (pkt.from_client, version) {
            let mut rest = data;
            for _ in 0..MAX_COALESCED {
                let Some(packet) = Long::parse(rest, version, awaited.keys.v2) else {
                    break;
                };
                let bytes = rest.get(..packet.len).unwrap_or_default();
                if packet.initial
                    && let Some(plain) = decrypt_with(bytes, &packet, &awaited.keys, b"server in")
                {
                    self.frames(&plain, Hello::Tls);
                }
                rest = rest.get(packet.len..).unwrap_or_default();
            }
        }
        let mut r = Reader(self.head());
        match r.u8() {
            Some(2) => {
                if let Some(body) = r.u24().and_then(|len| r.take(len)) {
                    tls::server_hello(body, true, meta);
                    return Verdict::Done(protocol);
                }
            }
            // Not a ServerHello: it will not become one.
            Some(_) => return Verdict::Done(protocol),
            None => {}
        }
        awaited.packets += 1;
        if awaited.packets >= SERVER_WAIT {
            return Verdict::Done(protocol);
        }
        self.server = Some(awaited);
        Verdict::Found(protocol)
    }

    /// Keeps the data of the CRYPTO frame read by `r`.
    fn crypto_frame(&mut self, r: &mut Reader<'_>) -> Option<()> {
        let offset = usize::try_from(varint(r)?).ok()?;
        let len = usize::try_from(varint(r)?).ok()?;
        self.insert(offset, r.take(len)?);
        Some(())
    }

    /// The ranges received.
    fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges[..usize::from(self.count)]
    }

    /// Stores CRYPTO `data` at `offset` (what lies beyond the cap is lost,
    /// and so is a range past the [`MAX_RANGES`]th).
    fn insert(&mut self, offset: usize, data: &[u8]) {
        let end = offset.saturating_add(data.len()).min(CRYPTO_MAX);
        let count = usize::from(self.count);
        if offset >= end || count >= MAX_RANGES {
            return;
        }
        if self.crypto.len() < end {
            self.crypto.resize(end, 0);
        }
        self.crypto[offset..end].copy_from_slice(&data[..end - offset]);
        // CRYPTO_MAX fits in a u16.
        let range = (offset as u16, end as u16);
        let mut ranges = self.ranges;
        ranges[count] = range;
        let all = &mut ranges[..=count];
        all.sort_unstable();
        // Merge each range into the last kept when they touch.
        let mut kept = 0;
        for i in 1..all.len() {
            if all[i].0 <= all[kept].1 {
                all[kept].1 = all[kept].1.max(all[i].1);
            } else {
                kept += 1;
                all[kept] = all[i];
            }
        }
        self.ranges = ranges;
        self.count = kept as u8 + 1;
    }

    /// The CRYPTO bytes received from offset 0 on, without a hole.
    fn head(&self) -> &[u8] {
        match self.ranges().first() {
            Some(&(0, end)) => &self.crypto[..usize::from(end)],
            _ => &[],
        }
    }

    /// Reads the client hello once whole; else says whether more may come.
    /// `varint_params`: the version writes its transport parameters with
    /// variable-length integers.
    fn hello(&self, hello: Hello, varint_params: bool, meta: &mut Metadata) -> Verdict {
        let head = self.head();
        let whole = match hello {
            Hello::Tls | Hello::GoogleTls => {
                let mut r = Reader(head);
                let body = r
                    .u8()
                    .zip(r.u24())
                    .and_then(|(typ, len)| (typ == 1).then_some(len).and_then(|len| r.take(len)));
                if let Some(body) = body {
                    tls::client_hello(body, true, meta);
                    user_agent(body, varint_params, meta);
                    let doq = meta
                        .ssl
                        .as_ref()
                        .and_then(|s| s.alpn.first())
                        .is_some_and(|a| a.starts_with("doq"));
                    return Verdict::Done(if doq { DOH_DOT } else { QUIC });
                }
                // Not a ClientHello: it will not become one.
                head.first().is_some_and(|&typ| typ != 1)
            }
            // Whole, or not a CHLO.
            Hello::GoogleChlo => match chlo_len(head) {
                Some(len) => head.len() >= len,
                None => head.len() >= 4 && !head.starts_with(b"CHLO"),
            },
        };
        if whole {
            chlo(head, meta);
            return Verdict::Done(QUIC);
        }
        let full = self.ranges() == [(0, CRYPTO_MAX as u16)];
        if full || usize::from(self.count) >= MAX_RANGES {
            // It will never be whole: QUIC all the same.
            return Verdict::Done(QUIC);
        }
        Verdict::Found(QUIC)
    }
}

/// Reads Chrome's user agent from the QUIC transport parameters of the
/// ClientHello `body` (parameter `google_user_agent`, 0x3129, in extension
/// 0x39, or 0xffa5 in drafts), as nDPI does.
fn user_agent(body: &[u8], varint_params: bool, meta: &mut Metadata) -> Option<()> {
    let mut r = Reader(body);
    r.skip(2 + 32)?; // version, random
    r.vec8()?; // session ID
    r.vec16()?; // cipher suites
    r.vec8()?; // compression methods
    let mut exts = Reader(r.vec16()?);
    let params = loop {
        let typ = exts.u16()?;
        let data = exts.vec16()?;
        if typ == 0x39 || typ == 0xffa5 {
            break data;
        }
    };
    let mut r = Reader(params);
    while !r.0.is_empty() {
        let (id, len) = if varint_params {
            (varint(&mut r)?, usize::try_from(varint(&mut r)?).ok()?)
        } else {
            (u64::from(r.u16()?), usize::from(r.u16()?))
        };
        let value = r.take(len)?;
        if id == 0x3129 {
            let http = meta.http.get_or_insert_with(Box::<Http>::default);
            http.user_agent = wire_text(value, MAX_TEXT);
            return Some(());
        }
    }
    None
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

/// The `CHLO` message near the start of clear-text Google QUIC `data`
/// (after the packet number, the message hash and the stream frame's
/// header), to its end; empty when none.
fn find_chlo(data: &[u8]) -> &[u8] {
    let window = &data[..data.len().min(64)];
    match window.windows(4).position(|w| w == b"CHLO") {
        Some(at) => &data[at..],
        None => &[],
    }
}

/// The whole length of the `CHLO` message at the start of `data`, once
/// its header and tag index are there: tag `CHLO`, tag count (16 bits,
/// little endian), padding, then per tag its name and the end offset of
/// its value (32 bits each), then the values.
fn chlo_len(data: &[u8]) -> Option<usize> {
    let mut r = Reader(data);
    r.take(4).filter(|t| *t == b"CHLO")?;
    let count = usize::from(u16::from_le_bytes(r.take(4)?[..2].try_into().ok()?));
    let index = r.take(count.saturating_mul(8))?;
    let last = index
        .rchunks_exact(8)
        .next()
        .map_or(0, |e| u32::from_le_bytes([e[4], e[5], e[6], e[7]]) as usize);
    Some(8 + count * 8 + last)
}

/// Reads the SNI and the user agent of the `CHLO` message at the start of
/// `data` into `meta`.
fn chlo(data: &[u8], meta: &mut Metadata) {
    let mut r = Reader(data);
    if r.take(4) != Some(b"CHLO".as_slice()) {
        return;
    }
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
        let Some(value) = values.get(start..end) else {
            return;
        };
        match &entry[..4] {
            b"SNI\0" => meta.host_server_name = wire_text(value, MAX_TEXT),
            b"UAID" => {
                let http = meta.http.get_or_insert_with(Box::<Http>::default);
                http.user_agent = wire_text(value, MAX_TEXT);
            }
            _ => {}
        }
        start = end;
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "quic",
    protocols: &[QUIC, DOH_DOT],
    tcp: false,
    udp: true,
    ports: &[443, 853],
    ports_only: false,
    first,
    run: dissect,
    samples: &[
        Sample {
            origin: "dlt_ppp.pcap frame 1 (draft 29, its start)",
            tcp: false,
            server_port: 443,
            packets: &[(true, DLT_PPP)],
            protocol: QUIC,
        },
        Sample {
            origin: "quic-v2.pcapng frame 1 (v2)",
            tcp: false,
            server_port: 4443,
            packets: &[(true, include_str!("quic/testdata/quic-v2-1.hex"))],
            protocol: QUIC,
        },
        Sample {
            origin: "quic_0RTT.pcap frames 3 to 5 (v1: 0-RTT, then the Initial)",
            tcp: false,
            server_port: 443,
            packets: &[
                (true, include_str!("quic/testdata/quic_0RTT-3.hex")),
                (true, include_str!("quic/testdata/quic_0RTT-4.hex")),
                (true, include_str!("quic/testdata/quic_0RTT-5.hex")),
            ],
            protocol: QUIC,
        },
        Sample {
            origin: "gquic.pcap frame 1 (Q050)",
            tcp: false,
            server_port: 443,
            packets: &[(true, include_str!("quic/testdata/gquic-1.hex"))],
            protocol: QUIC,
        },
        Sample {
            origin: "quic_q46_b.pcap frame 1 (Q046)",
            tcp: false,
            server_port: 443,
            packets: &[(true, include_str!("quic/testdata/quic_q46_b-1.hex"))],
            protocol: QUIC,
        },
        Sample {
            origin: "http_ipv6.pcap frame 5 (Q025)",
            tcp: false,
            server_port: 443,
            packets: &[(true, include_str!("quic/testdata/http_ipv6-5.hex"))],
            protocol: QUIC,
        },
    ],
};

/// dlt_ppp.pcap frame 1: a draft-29 Initial (its first 512 bytes).
const DLT_PPP: &str = "cfff00001d0cb712293a9b14f20cd059dca8049869c1d7004496743ac64dd1b9\
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
             16027ae4db01598d04f7f8c9186a455278b1fc2ec10e3b57fd980af607f2bd54";

/// Whether a flow may be QUIC by its first payload byte: a long header
/// (either side), or from the client Google QUIC's public header with a
/// version.
fn first(from_client: bool, byte: u8) -> bool {
    byte & 0x80 != 0 || (from_client && byte & 0xc9 == 0x09)
}

#[cfg(test)]
#[path = "quic/tests.rs"]
mod tests;

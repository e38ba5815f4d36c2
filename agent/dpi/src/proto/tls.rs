//! TLS over TCP (nDPI 91 "TLS"; on ports 993, 995 and 465 nDPI's IMAPS,
//! POPS and SMTPS).
//!
//! The client stream's first handshake message must be a ClientHello: it
//! gives the SNI, the ALPN list, the offered version and the JA4
//! fingerprint. The server stream gives the ServerHello (version, cipher
//! suite, ALPN, JA4S) and, up to TLS 1.2, the first certificate (subject
//! CN and DN, issuer DN, SHA-1). Handshake messages may span records and
//! TCP segments: the leading handshake records of a stream are read as
//! one byte string. A stream caught mid-connection (its first bytes whole
//! non-handshake records ending with the packet) is TLS too, as nDPI has
//! it. The hello parsers are shared with QUIC; [`upgraded`] and
//! [`inside`] read TLS that starts later in a flow of another protocol
//! (after STARTTLS, through a tunnel).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use flowstat_core::{Metadata, Protocol, Ssl, hex, hex_digits, wire_text};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509CertificateParser;
use x509_parser::nom::Parser;

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
use crate::stream::STREAM_MAX;

/// Per-flow state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// The flow was claimed.
    found: bool,
    /// The ClientHello was read (or will not come).
    client_done: bool,
    /// The server's hello and certificate were read (or will not come).
    server_done: bool,
}

/// Record content type of handshake messages.
const HANDSHAKE: u8 = 22;
/// Largest record fragment (TLSCiphertext may add 2048 to 2^14).
const MAX_RECORD: usize = 16_384 + 2_048;
/// Most ALPN values kept. (The hello's other lists are kept whole: the
/// fingerprints hash every value, and the hello's bytes, at most a
/// stream's [`STREAM_MAX`] or QUIC's reassembled CRYPTO data, bound them.)
const MAX_ALPN: usize = 32;
/// Longest text kept from the wire.
const MAX_TEXT: usize = 256;

/// How far a stream has been read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    /// Well-formed so far; more bytes are needed.
    Partial,
    /// Surely TLS; more bytes are needed.
    Known,
    /// All there is to read was read.
    Complete,
    /// Not what TLS sends.
    Invalid,
}

/// Reads one direction's stream: [`client`] or [`server`].
type ReadStream = fn(&[u8], &mut Metadata) -> Read;

/// nDPI's name for TLS to `server_port`.
fn protocol(server_port: u16) -> Protocol {
    match server_port {
        993 => Protocol(51), // IMAPS
        995 => Protocol(23), // POPS
        465 => Protocol(29), // SMTPS
        _ => Protocol(91),   // TLS
    }
}

/// Reads the client's and the server's handshakes from their streams.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    let st = &mut scratch.tls;
    let proto = protocol(pkt.flow.server_port);
    let stream = pkt.stream();
    let (done, read): (&mut bool, ReadStream) = if pkt.from_client {
        (&mut st.client_done, client)
    } else {
        (&mut st.server_done, server)
    };
    if !*done {
        match read(stream, meta) {
            Read::Partial => {}
            // A stream at its cap will not show more.
            Read::Known if stream.len() < STREAM_MAX => st.found = true,
            Read::Known | Read::Complete => (st.found, *done) = (true, true),
            Read::Invalid if st.found => *done = true,
            // A capture started mid-connection: nothing more to learn.
            Read::Invalid if mid_stream(stream) => return Verdict::Done(proto),
            Read::Invalid => return Verdict::No,
        }
    }
    match (st.found, st.server_done) {
        (true, true) => Verdict::Done(proto),
        (true, false) => Verdict::Found(proto),
        (false, _) => Verdict::Maybe,
    }
}

/// Runs a protocol's `step` on its kept state; once the step gives where
/// TLS starts in each stream after the protocol asked for it (STARTTLS
/// and the like) and the flow's name then, reads the TLS from there (see
/// [`upgraded`]).
pub(crate) fn after_starttls<S: std::any::Any + Send + Default + PartialEq>(
    pkt: &Packet<'_>,
    scratch: &mut Scratch,
    meta: &mut Metadata,
    step: impl FnOnce(&mut S, &mut Metadata) -> (Verdict, Option<([usize; 2], Protocol)>),
) -> Verdict {
    let mut upgrade = None;
    let verdict = scratch.keep(|st: &mut S| {
        let (verdict, tls) = step(st, meta);
        upgrade = tls;
        verdict
    });
    match upgrade {
        Some((start, protocol)) => upgraded(pkt, start, scratch, meta, protocol),
        None => verdict,
    }
}

/// Reads TLS that starts after another protocol asked for it (STARTTLS
/// and the like): at byte `start[0]` of the client stream and
/// `start[1]` of the server stream. The `ssl` object is filled as for
/// TLS from the first byte; the flow keeps `protocol`, found while the
/// handshake may show more, done once it has shown all it will (or is
/// not TLS after all).
fn upgraded(
    pkt: &Packet<'_>,
    start: [usize; 2],
    scratch: &mut Scratch,
    meta: &mut Metadata,
    protocol: Protocol,
) -> Verdict {
    let tls = Packet {
        client_stream: pkt.client_stream.get(start[0]..).unwrap_or_default(),
        server_stream: pkt.server_stream.get(start[1]..).unwrap_or_default(),
        ..*pkt
    };
    match dissect(&tls, scratch, meta) {
        Verdict::Maybe | Verdict::Found(_) => Verdict::Found(protocol),
        Verdict::Done(_) | Verdict::No => Verdict::Done(protocol),
    }
}

/// Reads TLS that a protocol carries after its own first messages (a
/// proxy's tunnel, an encryption its handshake negotiates): from the
/// first ClientHello record in the client stream and the first
/// ServerHello record in the server stream, wherever they start. The
/// flow keeps `protocol`; done once the handshake has shown all it will,
/// or when no ClientHello has come within `wait` packets with payload.
pub(crate) fn inside(
    pkt: &Packet<'_>,
    scratch: &mut Scratch,
    meta: &mut Metadata,
    protocol: Protocol,
    wait: u32,
) -> Verdict {
    let Some(client) = hello_at(pkt.client_stream, 1) else {
        return if pkt.packets() >= wait {
            Verdict::Done(protocol)
        } else {
            Verdict::Found(protocol)
        };
    };
    // Until the ServerHello comes, the server stream is read from its end.
    let server = hello_at(pkt.server_stream, 2).unwrap_or(pkt.server_stream.len());
    upgraded(pkt, [client, server], scratch, meta, protocol)
}

/// Where the first handshake record opening with a hello of type `typ`
/// (1 client, 2 server) starts in `stream`: a TLS record header (type
/// 22, version 3.x, a length a record may have), then the hello's type,
/// a length that fits the smallest hello, and version 3.x.
fn hello_at(stream: &[u8], typ: u8) -> Option<usize> {
    memchr::memchr_iter(HANDSHAKE, stream).find(|&at| {
        let Some(h) = stream.get(at..at + 10) else {
            return false;
        };
        let record = usize::from(u16::from_be_bytes([h[3], h[4]]));
        let hello = usize::from(h[6]) << 16 | usize::from(h[7]) << 8 | usize::from(h[8]);
        h[1] == 3
            && h[2] <= 4
            && (4..=MAX_RECORD).contains(&record)
            && h[5] == typ
            && hello >= 38
            && h[9] == 3
    })
}

/// The flow's `ssl` object, created on first use.
fn ssl(meta: &mut Metadata) -> &mut Ssl {
    meta.ssl.get_or_insert_with(Box::default)
}

/// Reads the ClientHello at the start of the client stream.
fn client(stream: &[u8], meta: &mut Metadata) -> Read {
    if let Some(read) = sslv2_client_hello(stream, meta) {
        return read;
    }
    let Some((hs, _)) = handshake_prefix(stream) else {
        return Read::Invalid;
    };
    match message(&hs) {
        None if hs.first().is_none_or(|&t| t == 1) => Read::Partial,
        Some((1, body, false)) if body.len() < 2 || body[0] == 3 => Read::Partial,
        Some((1, body, true)) if client_hello(body, false, meta) => Read::Complete,
        _ => Read::Invalid,
    }
}

/// Reads the ServerHello at the start of the server stream and, up to
/// TLS 1.2, the Certificate message after it.
fn server(stream: &[u8], meta: &mut Metadata) -> Read {
    let Some((hs, other_record)) = handshake_prefix(stream) else {
        return Read::Invalid;
    };
    let (typ, body, whole) = match message(&hs) {
        None if hs.first().is_none_or(|&t| t == 2) => return Read::Partial,
        Some(m) => m,
        None => return Read::Invalid,
    };
    if typ != 2 || (body.len() >= 2 && body[0] != 3) {
        return Read::Invalid;
    }
    if !whole {
        return Read::Partial;
    }
    let Some(tls13) = server_hello(body, false, meta) else {
        return Read::Invalid;
    };
    let rest = hs.get(4 + body.len()..).unwrap_or_default();
    match message(rest) {
        // TLS 1.3 encrypts the certificate.
        _ if tls13 => Read::Complete,
        Some((11, body, _)) if certificate(body, meta) => Read::Complete,
        // The first certificate is not all there yet.
        Some((11, _, false)) => Read::Known,
        // No certificate: resumption, anonymous or PSK suites.
        Some(_) => Read::Complete,
        None if other_record => Read::Complete,
        None => Read::Known,
    }
}

/// The leading handshake records of a stream, their fragments joined
/// (a partial last one included), and whether a record of another type
/// follows them. Warning alerts before them are skipped (a server may
/// warn of an unknown SNI first). `None` when the stream does not start
/// with a handshake record.
fn handshake_prefix(stream: &[u8]) -> Option<(Cow<'_, [u8]>, bool)> {
    let mut out = Cow::Borrowed(&[][..]);
    let mut rest = stream;
    let mut first = true;
    while !rest.is_empty() {
        let (typ, len) = match record_header(rest) {
            Some(h) => h,
            None if first => return None,
            None => return Some((out, true)),
        };
        let warning = typ == 21 && rest.get(5) == Some(&1) && rest.len() >= 5 + len;
        if first && warning {
            rest = &rest[5 + len..];
            continue;
        }
        if typ != HANDSHAKE {
            return (!first).then_some((out, true));
        }
        first = false;
        let Some(frag) = rest.get(5..) else {
            break; // a partial header
        };
        let frag = &frag[..frag.len().min(len)];
        if out.is_empty() {
            out = Cow::Borrowed(frag);
        } else {
            out.to_mut().extend_from_slice(frag);
        }
        rest = &rest[5 + frag.len()..];
    }
    Some((out, false))
}

/// Content type and length of the record header at the start of `data`,
/// when the bytes there (possibly fewer than 5) are one.
fn record_header(data: &[u8]) -> Option<(u8, usize)> {
    let typ = *data.first()?;
    if !(20..=23).contains(&typ) || data.get(1).is_some_and(|&v| v != 3) {
        return None;
    }
    if data.get(2).is_some_and(|&v| v > 4) {
        return None;
    }
    let len = match data.get(3..5) {
        Some(l) => usize::from(u16::from_be_bytes([l[0], l[1]])),
        None => 1,
    };
    (len > 0 && len <= MAX_RECORD).then_some((typ, len))
}

/// A stream caught mid-connection: whole records of types other than
/// handshake, TLS 1.0 or later, ending with the stream.
fn mid_stream(stream: &[u8]) -> bool {
    let mut rest = stream;
    while let Some(h) = rest.get(..5) {
        match record_header(h) {
            Some((typ, len)) if typ != HANDSHAKE && h[2] >= 1 && rest.len() >= 5 + len => {
                rest = &rest[5 + len..];
            }
            _ => return false,
        }
    }
    rest.is_empty() && !stream.is_empty()
}

/// The handshake message at the start of `data`: its type, its body (as
/// much as there is) and whether the body is whole. `None` when fewer
/// than 4 bytes.
fn message(data: &[u8]) -> Option<(u8, &[u8], bool)> {
    let mut r = Reader(data);
    let typ = r.u8()?;
    let len = r.u24()?;
    let body = &r.0[..r.0.len().min(len)];
    Some((typ, body, body.len() == len))
}

/// A ClientHello in SSL 2.0 record format, as old clients send:
/// `Some` when the stream starts with one (whole or partial).
fn sslv2_client_hello(stream: &[u8], meta: &mut Metadata) -> Option<Read> {
    let mut r = Reader(stream);
    let len = usize::from(r.u16()? & 0x7fff);
    if stream[0] & 0x80 == 0 || r.u8()? != 1 {
        return None;
    }
    let version = r.u16()?;
    let (ciphers, session, challenge) = (r.u16()?, r.u16()?, r.u16()?);
    let well_formed = matches!(version, 0x0002 | 0x0300..=0x0303)
        && ciphers % 3 == 0
        && matches!(session, 0 | 16)
        && (16..=32).contains(&challenge)
        && len == 9 + usize::from(ciphers) + usize::from(session) + usize::from(challenge);
    if !well_formed {
        return None;
    }
    if stream.len() < 2 + len {
        return Some(Read::Partial);
    }
    ssl(meta).version = version;
    Some(Read::Complete)
}

/// Reads the ServerHello `body`: version, cipher suite, ALPN, JA4S
/// (`q...` for `quic`). Returns whether it is TLS 1.3 (nothing in clear
/// follows), `None` when it is malformed.
pub(crate) fn server_hello(body: &[u8], quic: bool, meta: &mut Metadata) -> Option<bool> {
    let mut r = Reader(body);
    let legacy = r.u16()?;
    r.skip(32)?;
    let session = r.u8()?;
    r.skip(usize::from(session))?;
    let cipher = r.u16()?;
    r.u8()?;
    let mut selected = None;
    let mut alpn = None;
    let mut exts = Reader(r.vec16().unwrap_or_default());
    let mut types = Vec::new();
    while let (Some(typ), Some(data)) = (exts.u16(), exts.vec16()) {
        types.push(typ);
        match typ {
            43 => selected = Reader(data).u16(),
            16 => {
                let mut list = Reader(Reader(data).vec16()?);
                alpn = list.vec8();
            }
            _ => {}
        }
    }
    let version = selected.unwrap_or(legacy);
    let ssl = ssl(meta);
    ssl.version = version;
    ssl.cipher_suite = cipher;
    ssl.server_ja4s = ja4s(quic, version, cipher, &types, alpn);
    if let Some(a) = alpn {
        ssl.alpn_server = vec![wire_text(a, MAX_TEXT)];
    }
    // Only TLS 1.3 (and its drafts) sends supported_versions back.
    Some(selected.is_some())
}

/// Reads the first certificate of a Certificate message `body` (maybe
/// partial). False when it is not all there or does not parse.
fn certificate(body: &[u8], meta: &mut Metadata) -> bool {
    let mut r = Reader(body);
    let der = r.u24().and_then(|_| r.u24()).and_then(|len| r.take(len));
    let Some(der) = der else {
        return false;
    };
    let fingerprint: [u8; 20] = Sha1::digest(der).into();
    let names = CERTS.with_borrow_mut(|certs| certs.names(fingerprint, der, CertNames::parse));
    let Some(names) = names else {
        return false;
    };
    let ssl = ssl(meta);
    (ssl.server_cn, ssl.subject_dn, ssl.issuer_dn) = (names.cn, names.subject, names.issuer);
    ssl.fingerprint = hex(&fingerprint);
    true
}

thread_local! {
    /// Each thread's certificate cache.
    static CERTS: RefCell<CertCache> = RefCell::default();
}

/// Names read from recent server certificates, by SHA-1 fingerprint, with
/// each certificate's bytes: the same certificate comes with every
/// connection to a server, and parsing it is most of what reading a TLS 1.2
/// handshake costs (Zeek caches certificates for the same reason). An
/// entry serves only the very same bytes.
#[derive(Debug, Default)]
struct CertCache(HashMap<[u8; 20], (Box<[u8]>, CertNames)>);

impl CertCache {
    /// Certificates remembered; when full, the cache starts afresh.
    const MAX: usize = 512;

    /// The names of certificate `der`, whose SHA-1 is `fingerprint`: as
    /// remembered, or as `parse` reads them (`None`: not a certificate).
    fn names(
        &mut self,
        fingerprint: [u8; 20],
        der: &[u8],
        parse: impl FnOnce(&[u8]) -> Option<CertNames>,
    ) -> Option<CertNames> {
        if let Some((_, names)) = self.0.get(&fingerprint).filter(|(seen, _)| **seen == *der) {
            return Some(names.clone());
        }
        let names = parse(der)?;
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert(fingerprint, (der.into(), names.clone()));
        Some(names)
    }
}

/// What the records show of a certificate.
#[derive(Clone, Debug)]
struct CertNames {
    cn: String,
    subject: String,
    issuer: String,
}

impl CertNames {
    /// Reads the subject's common name and the subject and issuer DNs of
    /// `der`; `None` when it does not parse.
    fn parse(der: &[u8]) -> Option<CertNames> {
        // Only the names are read: extensions are left unparsed.
        let mut parser = X509CertificateParser::new().with_deep_parse_extensions(false);
        let (_, cert) = parser.parse(der).ok()?;
        let text = |s: String| wire_text(s.as_bytes(), MAX_TEXT);
        let cn = cert.subject().iter_common_name().next();
        Some(CertNames {
            cn: cn.map_or_else(String::new, |a| {
                a.as_str()
                    .map_or_else(|_| wire_text(a.as_slice(), MAX_TEXT), |s| text(s.into()))
            }),
            subject: text(cert.subject().to_string()),
            issuer: text(cert.issuer().to_string()),
        })
    }
}

/// Reads a ClientHello's `body` (after the 4-byte handshake header) into
/// `meta`: SNI, ALPN, version (unless already known) and JA4 (`q...` for
/// `quic`). False when it is malformed.
pub(crate) fn client_hello(body: &[u8], quic: bool, meta: &mut Metadata) -> bool {
    let mut r = Reader(body);
    let Some(legacy) = r.u16().filter(|v| v >> 8 == 3) else {
        return false;
    };
    let session = r.skip(32).and_then(|_| r.vec8());
    let (Some(session), Some(ciphers), Some(_)) = (session, r.vec16(), r.vec8()) else {
        return false;
    };
    if session.len() > 32 || ciphers.len() % 2 != 0 {
        return false;
    }
    let mut hello = Hello {
        ciphers: list16(ciphers),
        ..Hello::default()
    };
    // The extensions as far as they go: a block or an extension longer
    // than the hello, or a value that does not parse, leaves the types
    // read so far to the fingerprint (as tshark, which FoxIO's tools
    // read, and ja4plus do), not the hello unread.
    let mut exts = Reader(
        r.u16()
            .map_or(&[][..], |n| r.0.get(..usize::from(n)).unwrap_or(r.0)),
    );
    while let Some(typ) = exts.u16() {
        let rest = exts.0.get(2..).unwrap_or_default();
        let data = exts.vec16().unwrap_or_else(|| {
            exts.0 = &[];
            rest
        });
        if !grease(typ) {
            hello.exts.push(typ);
        }
        hello.extension(typ, data);
    }
    let ja4 = hello.ja4(quic, legacy);
    let ssl = ssl(meta);
    if ssl.version == 0 {
        ssl.version = hello
            .versions
            .iter()
            .copied()
            .filter(|v| (0x0300..=0x0304).contains(v))
            .max()
            .unwrap_or(legacy);
    }
    ssl.alpn = hello.alpn.iter().map(|a| wire_text(a, MAX_TEXT)).collect();
    ssl.client_ja4 = ja4;
    if let Some(sni) = hello.sni {
        ssl.client_sni = wire_text(sni, MAX_TEXT);
        meta.host_server_name = ssl.client_sni.clone();
    }
    true
}

/// What a ClientHello offers, GREASE values left out.
#[derive(Default)]
struct Hello<'a> {
    ciphers: Vec<u16>,
    exts: Vec<u16>,
    sni: Option<&'a [u8]>,
    /// True when the SNI extension is present (even empty).
    has_sni: bool,
    alpn: Vec<&'a [u8]>,
    versions: Vec<u16>,
    sigalgs: Vec<u16>,
}

impl<'a> Hello<'a> {
    /// Reads extension `typ`'s `data`, as much as is well formed.
    fn extension(&mut self, typ: u16, data: &'a [u8]) {
        match typ {
            0 => {
                self.has_sni = true;
                let mut names = Reader(Reader(data).vec16().unwrap_or_default());
                while let (Some(kind), Some(name)) = (names.u8(), names.vec16()) {
                    if kind == 0 && self.sni.is_none() {
                        self.sni = Some(name);
                    }
                }
            }
            16 => {
                let mut list = Reader(prefixed(data, 2));
                while let Some(proto) = list.vec8() {
                    if self.alpn.len() < MAX_ALPN {
                        self.alpn.push(proto);
                    }
                }
            }
            43 => self.versions = list16(prefixed(data, 1)),
            13 => self.sigalgs = list16(prefixed(data, 2)),
            _ => {}
        }
    }

    /// The JA4 fingerprint (FoxIO's specification, `technical_details/JA4.md`).
    fn ja4(&mut self, quic: bool, legacy: u16) -> String {
        let version = version_code(self.versions.iter().copied().max().unwrap_or(legacy));
        let alpn = alpn_code(self.alpn.first().copied());
        let mut out = format!(
            "{}{version}{}{:02}{:02}{alpn}_",
            if quic { 'q' } else { 't' },
            if self.has_sni { 'd' } else { 'i' },
            self.ciphers.len().min(99),
            self.exts.len().min(99),
        );
        self.ciphers.sort_unstable();
        out.push_str(&hash12(&hex_list(&self.ciphers)));
        out.push('_');
        self.exts.retain(|&e| e != 0 && e != 16);
        self.exts.sort_unstable();
        let mut c = hex_list(&self.exts);
        if !self.sigalgs.is_empty() {
            c.push('_');
            c.push_str(&hex_list(&self.sigalgs));
        }
        out.push_str(&if self.exts.is_empty() {
            "000000000000".into()
        } else {
            hash12(&c)
        });
        out
    }
}

/// The JA4S fingerprint of a ServerHello (FoxIO's specification,
/// `technical_details/JA4S.md`): QUIC or TCP, the negotiated `version`,
/// the number of extensions and the chosen ALPN, the `cipher` in hex, and
/// the hash of the extension `types` in the order sent.
fn ja4s(quic: bool, version: u16, cipher: u16, types: &[u16], alpn: Option<&[u8]>) -> String {
    format!(
        "{}{}{:02}{}_{cipher:04x}_{}",
        if quic { 'q' } else { 't' },
        version_code(version),
        types.len().min(99),
        alpn_code(alpn),
        hash12(&hex_list(types)),
    )
}

/// JA4's two characters for a TLS version.
fn version_code(version: u16) -> &'static str {
    match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// JA4's two characters for the first ALPN value: its first and last
/// bytes when both are ASCII letters or digits, else the first and last
/// hex digits of the value; `00` when there is none or it is empty.
fn alpn_code(alpn: Option<&[u8]>) -> String {
    match alpn {
        Some(&[first, .., last]) | Some(&[first @ last]) => {
            if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
                format!("{}{}", char::from(first), char::from(last))
            } else {
                format!("{:x}{:x}", first >> 4, last & 0xf)
            }
        }
        _ => "00".into(),
    }
}

/// True for the GREASE values of RFC 8701 (`0x?a?a`, both bytes equal).
fn grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// The list after a `width`-byte length at the start of `data`, cut at
/// the end of `data` when the length says more.
fn prefixed(data: &[u8], width: usize) -> &[u8] {
    let Some((len, rest)) = data.split_at_checked(width) else {
        return &[];
    };
    let n = len.iter().fold(0, |n, &b| n << 8 | usize::from(b));
    rest.get(..n).unwrap_or(rest)
}

/// The big-endian 16-bit values of `data`, GREASE left out.
fn list16(data: &[u8]) -> Vec<u16> {
    data.chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .filter(|&v| !grease(v))
        .collect()
}

/// `values` as comma-separated 4-digit lowercase hex.
fn hex_list(values: &[u16]) -> String {
    let mut s = String::with_capacity(values.len() * 5);
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        for b in v.to_be_bytes() {
            s.extend(hex_digits(b).map(char::from));
        }
    }
    s
}

/// The first 12 hex digits of the SHA-256 of `text`; zeros for no text.
fn hash12(text: &str) -> String {
    if text.is_empty() {
        return "000000000000".into();
    }
    hex(&Sha256::digest(text.as_bytes())[..6])
}

/// A cursor over untrusted bytes: every read is checked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    /// Skips `n` bytes.
    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(drop)
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// A big-endian u16.
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// A big-endian 24-bit length.
    pub(crate) fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    /// Bytes preceded by a one-byte length.
    pub(crate) fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// Bytes preceded by a two-byte length.
    pub(crate) fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "tls",
    protocols: &[Protocol(91), Protocol(23), Protocol(29), Protocol(51)],
    tcp: true,
    udp: false,
    ports: &[443, 465, 853, 993, 995, 8443],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "443-curl.pcap frames 4,6,7,8",
        tcp: true,
        server_port: 443,
        packets: &[
            (
                true,
                "1603010200010001fc03033e3841edcc20f6d0e5f7167ab7ee91a800c8ef70c2\
             d624c7c7943a24026d9fbc000086cc14cc13cc15c030c02cc028c024c014c00a\
             00a3009f006b006a00390038ff8500c400c3008800870081c032c02ec02ac026\
             c00fc005009d003d003500c00084c02fc02bc027c023c013c00900a2009e0067\
             00400033003200be00bd00450044c031c02dc029c025c00ec004009c003c002f\
             00ba0041c012c00800160013c00dc003000a00ff0100014d00000011000f0000\
             0c7777772e6e746f702e6f7267000b000403000102000a003a0038000e000d00\
             19001c000b000c001b00180009000a001a001600170008000600070014001500\
             04000500120013000100020003000f00100011000d00260024060106020603ef\
             ef050105020503040104020403eeeeeded030103020303020102020203337400\
             000010000e000c02683208687474702f312e31001500ae000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000",
            ),
            (
                false,
                "16030300660200006203038f72dd2e35dcf5ddf38ae75db855d1610b4db32937\
             cb20cd3187eec12057fb2520ea8fcd1da8f8635bd5df2a45b603764dd7cfb5f8\
             2666ff77fd47635bf9a8f0cbc02f00001aff0100010000000000000b00040300\
             010200100005000302683216030309f80b0009f40009f1000555308205513082\
             0439a003020102021203c56f6636eda72f7f4c5665fa055d933255300d06092a\
             864886f70d01010b0500304a310b300906035504061302555331163014060355\
             040a130d4c6574277320456e6372797074312330210603550403131a4c657427\
             7320456e637279707420417574686f72697479205833301e170d313931323137\
             3031313732385a170d3230303331363031313732385a30173115301306035504\
             03130c7777772e6e746f702e6f726730820122300d06092a864886f70d010101\
             05000382010f003082010a02820101009d21c341aca0d61662ac85f82eaa3758\
             6e4aa4c1e78858b732bc3bd07719aa2ad95b9354b3d9aec9e47675a3b2263aec\
             adcc5ee577871177f9aeeebe9588d72a2254a291b02c65a2d4cba203d8315966\
             4b59579612db71126c134ea5a54a147c8a9df6785d4b5a9c3e174fdced0342d9\
             b2e599c4a42bda144bc956c598b35e1c203117836aa3d160312f85962d75f59c\
             7e4a520ed453a03804f36b8aac3babe10d6edfcb8126ca7f66e938dbb1bed9b3",
            ),
            (
                false,
                "d8a4558dbaba9645723939195cfaf6a707c993ecb5b13cc6c595cbef1cd87910\
             4fb08f8ad40045b927dde24fbc94fe000496308204923082037aa00302010202\
             100a0141420000015385736a0b85eca708300d06092a864886f70d01010b0500\
             303f31243022060355040a131b4469676974616c205369676e61747572652054\
             7275737420436f2e311730150603550403130e44535420526f6f742043412058\
             33301e170d3136303331373136343034365a170d323130333137313634303436\
             5a304a310b300906035504061302555331163014060355040a130d4c65742773\
             20456e6372797074312330210603550403131a4c6574277320456e6372797074\
             20417574686f7269747920583330820122300d06092a864886f70d0101010500\
             0382010f003082010a02820101009cd30cf05ae52e47b7725d3783b3686330ea\
             d735261925e1bdbe35f170922fb7b84b4105aba99e350858ecb12ac468870ba3\
             e375e4e6f3a76271ba7981601fd7919a9ff3d0786771c8690e9591cffee699e9\
             603c48cc7eca4d7712249d471b5aebb9ec1e37001c9cac7ba705eace4aebbd41\
             e53698b9cbfd6d3c9668df232a42900c867467c87fa59ab8526114133f65e982\
             87cbdbfa0e56f68689f3853f9786afb0dc1aef6b0d95167dc42ba065b2990436\
             75806bac4af31b9049782fa2964f2a20252904c674c0d031cd8f31389516baa8",
            ),
            (
                false,
                "eba853cee6cc581d3cb373e486c2fd26a56eb8ab42e90d2615fe81e2805cdbf5\
             36fa2821403ef7b342984ac00ddaaec57ee91e48ae0c7889301a4162a7b9cbd8\
             09eee813f8b69339a1dbfc03fc2c7d88c951c5716e94cf4bae21f8dadb1f0261\
             191fd14bcae4a865b964563fd991b8c285a6fb787f14bc796d1a16030300040e\
             000000",
            ),
        ],
        protocol: Protocol(91),
    }],
};

#[cfg(test)]
#[path = "tls/tests.rs"]
mod tests;

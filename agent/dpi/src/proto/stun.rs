//! STUN and TURN (RFC 8489/5389, RFC 8656) and classic STUN (RFC 3489),
//! over UDP and TCP (raw or RFC 4571 framed), and what follows them on
//! the same flow.
//!
//! A message is a 20-byte header (type with the two top bits clear and a
//! STUN or TURN method, length, the magic cookie or, without it, a
//! classic message type) and attributes. Classic messages must be
//! 4-aligned and their attributes walk exactly to the end; with the
//! cookie, attributes may be unpadded (WhatsApp's, Microsoft's TURN) and
//! are read as far as they go. Address attributes fill `meta.stun`.
//!
//! As nDPI does, the dissector then watches a few more packets
//! ([`EXTRA_PACKETS`]), demultiplexing them by first byte (RFC 7983, RFC
//! 9443): more STUN, DTLS records (the flow becomes DTLS), RTP (STUN
//! carrying RTP; nDPI's `STUN.RTP`), RTCP, TURN ChannelData and
//! Microsoft's multiplexed TURN framing (whose payload is demultiplexed
//! again). Attributes name the application the way nDPI does: REALM
//! (also the flow's host name), Microsoft's attributes, WhatsApp's
//! message types and attributes, Zoom's, Google's. The flow's protocol is
//! then that application, which nDPI counts as a protocol (`STUN.Zoom`,
//! `DTLS.GoogleCall`, `SRTP.WhatsAppCall`): the engine names
//! applications from host names and addresses only.

use std::net::{IpAddr, SocketAddr};

use flowstat_core::{FlowInfo, Metadata, Protocol, Stun};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
use crate::proto::{dtls, rtp};

/// STUN.
const STUN: Protocol = Protocol(78);
/// DTLS, once its records follow STUN.
const DTLS: Protocol = Protocol(30);
/// Applications STUN attributes name (nDPI's ids and names).
const SKYPE_TEAMS_CALL: Protocol = Protocol(38);
const WHATSAPP_CALL: Protocol = Protocol(45);
const ZOOM: Protocol = Protocol(189);
const FACEBOOK_VOIP: Protocol = Protocol(268);
const SIGNAL_VOIP: Protocol = Protocol(269);
const TELEGRAM_VOIP: Protocol = Protocol(355);
const GOOGLE_CALL: Protocol = Protocol(404);
const VIBER_VOIP: Protocol = Protocol(414);
/// The RFC 5389 magic cookie.
const COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// Classic message types (Wireshark's and nDPI's list): request, response
/// and error response of binding, shared secret, and the early TURN
/// drafts' allocate, send and set active destination; data indication.
const CLASSIC: [u16; 16] = [
    0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112, 0x0003, 0x0103, 0x0113, 0x0004, 0x0104, 0x0114,
    0x0115, 0x0006, 0x0106, 0x0116,
];
/// WhatsApp's own message types (with the cookie).
const WHATSAPP_TYPES: [u16; 5] = [0x0800, 0x0801, 0x0802, 0x0804, 0x0805];
/// Payload packets watched after the one that claimed the flow.
const EXTRA_PACKETS: u8 = 6;
/// More packets watched from the first DTLS record (its handshake).
const DTLS_PACKETS: u8 = 10;
/// Payload packets a flow may take to show a first message.
const MAX_TRIES: u32 = 4;
/// Messages read from one TCP stream.
const MAX_MESSAGES: usize = 16;
/// Attributes read from one message.
const MAX_ATTRIBUTES: usize = 64;
/// Encapsulations (TURN DATA attribute, ChannelData, Microsoft's framing)
/// opened inside one packet.
const MAX_DEPTH: u8 = 2;
/// Longest host name kept from REALM (nDPI keeps 79 bytes).
const MAX_HOST: usize = 79;

/// What the flow carries after STUN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Carrier {
    #[default]
    Stun,
    /// RTP (and RTCP) multiplexed with STUN.
    Rtp,
    /// DTLS records.
    Dtls,
}

/// Per-flow state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// Transaction id of a classic request without attributes (too weak to
    /// claim alone), waiting for its response.
    pending: Option<[u8; 16]>,
    /// A message was seen: the flow is claimed.
    found: bool,
    /// A TURN method was seen (ChannelData may follow).
    turn: bool,
    /// The application named so far.
    app: Option<Protocol>,
    carrier: Carrier,
    /// Payload packets after which the flow is done.
    until: u32,
}

impl State {
    /// The flow's protocol: the application if one is named, else what
    /// STUN carries (nDPI's `STUN.RTP` stays STUN).
    fn protocol(&self) -> Protocol {
        match (self.app, self.carrier) {
            (Some(app), _) => app,
            (None, Carrier::Dtls) => DTLS,
            (None, _) => STUN,
        }
    }

    /// Whether nothing more is to be learnt (nDPI's end of extra
    /// dissection): Zoom's STUN has nothing more; a named application
    /// with every address, or WhatsApp's media with its mapped and
    /// relayed addresses, neither.
    fn complete(&self, meta: &Metadata) -> bool {
        let stun = meta.stun.as_deref();
        let has = |f: fn(&Stun) -> &String| stun.is_some_and(|s| !f(s).is_empty());
        match self.app {
            Some(ZOOM) => true,
            Some(WHATSAPP_CALL)
                if self.carrier == Carrier::Rtp && has(|s| &s.mapped) && has(|s| &s.relayed) =>
            {
                true
            }
            Some(_) => {
                has(|s| &s.mapped)
                    && has(|s| &s.peer)
                    && has(|s| &s.relayed)
                    && has(|s| &s.response)
                    && has(|s| &s.other)
            }
            None => false,
        }
    }
}

/// One STUN message.
struct Message<'a> {
    /// Message type.
    kind: u16,
    /// Magic cookie and transaction id (the whole id for classic STUN).
    id: [u8; 16],
    /// True with the magic cookie.
    cookie: bool,
    /// Attributes.
    attrs: &'a [u8],
}

impl Message<'_> {
    /// True for a success or error response.
    fn response(&self) -> bool {
        self.kind & 0x0100 != 0
    }

    /// The method (the type without its class bits).
    fn method(&self) -> u16 {
        (self.kind & 0x000F) | ((self.kind & 0x00E0) >> 1) | ((self.kind & 0x3E00) >> 2)
    }
}

/// Claims a flow on its first STUN message, then watches what follows
/// for [`EXTRA_PACKETS`] packets.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    scratch.keep(|st: &mut State| step(pkt, st, meta))
}

/// [`dissect`] on the flow's state.
fn step(pkt: &Packet<'_>, st: &mut State, meta: &mut Metadata) -> Verdict {
    let packets = pkt.packets();
    let ctx = Context {
        flow: pkt.flow,
        from_client: pkt.from_client,
        packets,
    };
    let mut partial = false;
    if pkt.tcp {
        let mut rest = pkt.stream();
        for _ in 0..MAX_MESSAGES {
            let Some((msg, size)) = framed(rest) else {
                partial = incomplete(rest);
                break;
            };
            if accept(st, &msg, pkt.from_client, meta) {
                claim(st, &ctx);
                attributes_of(st, &msg, &ctx, meta, 0);
            }
            rest = rest.get(size..).unwrap_or_default();
        }
    } else if st.found {
        follow(st, pkt.payload, &ctx, meta, 0);
    } else if let Some(msg) = datagram(pkt.payload)
        && accept(st, &msg, pkt.from_client, meta)
    {
        claim(st, &ctx);
        attributes_of(st, &msg, &ctx, meta, 0);
    }
    if st.found {
        if packets >= st.until || st.complete(meta) {
            Verdict::Done(st.protocol())
        } else {
            Verdict::Found(st.protocol())
        }
    } else if (partial || st.pending.is_some()) && packets < MAX_TRIES {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// What attribute handling needs to know of the packet.
struct Context<'a> {
    flow: &'a FlowInfo,
    from_client: bool,
    /// Payload packets so far, this one included.
    packets: u32,
}

/// Marks the flow claimed (once): the watch starts, and Google's media
/// servers name the application until an attribute does.
fn claim(st: &mut State, ctx: &Context<'_>) {
    if st.found {
        return;
    }
    st.found = true;
    st.until = ctx.packets + u32::from(EXTRA_PACKETS);
    if google_call(ctx.flow) {
        st.app = Some(GOOGLE_CALL);
    }
}

/// The whole-datagram message of a UDP payload, raw or in Microsoft's
/// multiplexed TURN framing.
fn datagram(payload: &[u8]) -> Option<Message<'_>> {
    whole(payload).or_else(|| ms_turn(payload).and_then(whole))
}

/// The message filling `b` exactly.
fn whole(b: &[u8]) -> Option<Message<'_>> {
    message(b)
        .filter(|&(_, size)| size == b.len())
        .map(|(msg, _)| msg)
}

/// The payload of a message in Microsoft's multiplexed TURN framing
/// ([MS-TURN] 2.2.3: 0xFF10, a length, 8 bytes of session id, then the
/// payload).
fn ms_turn(b: &[u8]) -> Option<&[u8]> {
    let (&[0xFF, 0x10, l0, l1], _) = b.split_first_chunk::<4>()? else {
        return None;
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if len + 4 == b.len() {
        b.get(12..)
    } else {
        None
    }
}

/// One later packet of a claimed UDP flow, demultiplexed by its first
/// byte.
fn follow(st: &mut State, payload: &[u8], ctx: &Context<'_>, meta: &mut Metadata, depth: u8) {
    let Some(&first) = payload.first() else {
        return;
    };
    match first {
        0..=3 | 8 => {
            if let Some(msg) = datagram(payload)
                && (first != 8 || st.app == Some(WHATSAPP_CALL))
                && accept(st, &msg, ctx.from_client, meta)
            {
                attributes_of(st, &msg, ctx, meta, depth);
            }
        }
        20..=63 if st.carrier != Carrier::Dtls && dtls::record(payload).is_some() => {
            st.carrier = Carrier::Dtls;
            st.until = st.until.saturating_add(u32::from(DTLS_PACKETS));
        }
        64..=79 if st.turn && depth < MAX_DEPTH => {
            // TURN ChannelData: channel number, length, data.
            if let Some((&[_, _, l0, l1], rest)) = payload.split_first_chunk::<4>()
                && let Some(inner) = rest.get(..usize::from(u16::from_be_bytes([l0, l1])))
            {
                follow(st, inner, ctx, meta, depth + 1);
            }
        }
        // RTP (RTCP leaves the flow as it is, as in nDPI).
        128..=191
            if st.carrier == Carrier::Stun
                && !rtp::rtcp(payload)
                && rtp::rtp(payload).is_some() =>
        {
            st.carrier = Carrier::Rtp;
        }
        0xFF if st.app == Some(SKYPE_TEAMS_CALL) && depth < MAX_DEPTH => {
            if let Some(inner) = ms_turn(payload) {
                follow(st, inner, ctx, meta, depth + 1);
            }
        }
        _ => {}
    }
}

/// Whether `msg` claims the flow, filling the metadata when it does. A
/// classic request without attributes only waits for its response.
fn accept(st: &mut State, msg: &Message<'_>, from_client: bool, meta: &mut Metadata) -> bool {
    if !msg.cookie && msg.attrs.is_empty() {
        if !msg.response() && from_client && !st.found {
            st.pending = Some(msg.id);
            return st.found;
        }
        if st.pending != Some(msg.id) {
            return st.found;
        }
    }
    addresses(msg, meta);
    true
}

/// Reads what names the flow's application in `msg`, as nDPI does: the
/// message type, then each attribute in order (a later one may rename).
fn attributes_of(
    st: &mut State,
    msg: &Message<'_>,
    ctx: &Context<'_>,
    meta: &mut Metadata,
    depth: u8,
) {
    if msg.cookie && WHATSAPP_TYPES.contains(&msg.kind) {
        st.app = Some(WHATSAPP_CALL);
        return;
    }
    // TURN methods: Allocate, Refresh, Send, Data, CreatePermission,
    // ChannelBind, and RFC 6062's Connect, ConnectionBind,
    // ConnectionAttempt.
    if matches!(msg.method(), 0x0003..=0x000C) {
        st.turn = true;
    }
    // Signal's relays listen on 10000; a weak hint, so only once other
    // applications had their chance.
    let port = |p| ctx.flow.client_port == p || ctx.flow.server_port == p;
    if ctx.packets > 4 && !st.turn && st.app.is_none() && port(10000) {
        st.app = Some(SIGNAL_VOIP);
    }
    for (kind, value) in attributes(msg.attrs).take(MAX_ATTRIBUTES) {
        match kind {
            // Zoom's: nothing more to read.
            0x0101 | 0x0103 => {
                st.app = Some(ZOOM);
                return;
            }
            // WhatsApp's.
            0x4000..=0x4004 | 0x4007 => st.app = Some(WHATSAPP_CALL),
            // REALM: the first one names the host, and maybe the
            // application.
            0x0014 => {
                if meta.host_server_name.is_empty()
                    && let Some(host) = realm(value)
                {
                    if let Some(app) = realm_application(&host) {
                        st.app = Some(app);
                    }
                    meta.host_server_name = host;
                }
            }
            // Microsoft's (Teams, Skype): candidate identifier, session
            // id, implementation version, service quality and others.
            0x8054 | 0x24DF | 0x3802 | 0x8036 | 0x8095 | 0x0800 | 0x8006 | 0x8070 | 0x8055 => {
                st.app = Some(SKYPE_TEAMS_CALL);
            }
            // Google's.
            0xFF03 => st.app = Some(GOOGLE_CALL),
            // DATA: a relayed packet, demultiplexed in turn.
            0x0013 if depth < MAX_DEPTH => follow(st, value, ctx, meta, depth + 1),
            _ => {}
        }
    }
}

/// REALM as a host name: lowercase printable ASCII (nDPI drops a realm
/// with anything else), at most [`MAX_HOST`] bytes.
fn realm(value: &[u8]) -> Option<String> {
    let value = value.get(..MAX_HOST).unwrap_or(value);
    let host = std::str::from_utf8(value).ok()?;
    (!host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| host.to_ascii_lowercase())
}

/// The application a REALM names (nDPI's substrings).
fn realm_application(host: &str) -> Option<Protocol> {
    let app = if host.contains("google.com") {
        GOOGLE_CALL
    } else if host.contains("whispersystems.org") || host.contains("signal.org") {
        SIGNAL_VOIP
    } else if host.contains("facebook") {
        FACEBOOK_VOIP
    } else if host.contains("telegram") {
        TELEGRAM_VOIP
    } else if host.contains("viber") {
        VIBER_VOIP
    } else {
        return None;
    };
    Some(app)
}

/// Google Meet's media servers on its STUN ports, as nDPI takes them
/// (support.google.com/a/answer/1279090): 74.125.250.0/24,
/// 142.250.82.0/24, 2001:4860:4864:5::/64 and 2001:4860:4864:6::/64 on
/// 3478 or 19302-19309.
fn google_call(flow: &FlowInfo) -> bool {
    let stun_port = |p: u16| p == 3478 || (19302..=19309).contains(&p);
    if !stun_port(flow.client_port) && !stun_port(flow.server_port) {
        return false;
    }
    let google = |ip: &[u8; 16]| match flow.ip_version {
        4 => matches!(ip[..3], [74, 125, 250] | [142, 250, 82]),
        6 => ip[..7] == [0x20, 0x01, 0x48, 0x60, 0x48, 0x64, 0x00] && matches!(ip[7], 5 | 6),
        _ => false,
    };
    google(&flow.client_ip) || google(&flow.server_ip)
}

/// The message at the start of a TCP stream (raw, else with an RFC 4571
/// length prefix) and the bytes it takes.
fn framed(b: &[u8]) -> Option<(Message<'_>, usize)> {
    if let Some(found) = message(b) {
        return Some(found);
    }
    let (&[l0, l1], rest) = b.split_first_chunk::<2>()?;
    let (msg, size) = message(rest)?;
    (usize::from(u16::from_be_bytes([l0, l1])) == size).then_some((msg, size + 2))
}

/// True when `b` may be a message whose end has not arrived yet: the start
/// of a header, or a valid header followed by too few bytes.
fn incomplete(b: &[u8]) -> bool {
    match b {
        [] => true,
        [t0, ..] if t0 & 0xC0 != 0 => false,
        _ if b.len() < 20 => true,
        [t0, t1, l0, l1, rest @ ..] => {
            let len = usize::from(u16::from_be_bytes([*l0, *l1]));
            let cookie = rest.starts_with(&COOKIE);
            (cookie || (len % 4 == 0 && CLASSIC.contains(&u16::from_be_bytes([*t0, *t1]))))
                && b.len() < 20 + len
        }
        _ => false,
    }
}

/// The valid message at the start of `b` and its size.
fn message(b: &[u8]) -> Option<(Message<'_>, usize)> {
    let (header, rest) = b.split_at_checked(20)?;
    let (&[t0, t1, l0, l1], id) = header.split_first_chunk::<4>()?;
    let id: [u8; 16] = id.try_into().ok()?;
    let kind = u16::from_be_bytes([t0, t1]);
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    let cookie = id.starts_with(&COOKIE);
    let attrs = rest.get(..len)?;
    let valid = if cookie {
        // A STUN or TURN method (the class bits aside), or WhatsApp's.
        kind != 0 && ((kind & 0x3EEF) <= 0x000B || WHATSAPP_TYPES.contains(&kind))
    } else {
        let mut walk = attributes(attrs);
        CLASSIC.contains(&kind)
            && len % 4 == 0
            && walk.all(|(t, _)| classic_attribute(t))
            && walk.rest.is_empty()
            && !walk.unpadded
    };
    valid.then_some((
        Message {
            kind,
            id,
            cookie,
            attrs,
        },
        20 + len,
    ))
}

/// Attribute types of classic STUN: RFC 3489's and the early TURN
/// drafts' (up to 0x002F), Zoom's (0x0101, 0x0103), and the
/// comprehension-optional range.
fn classic_attribute(t: u16) -> bool {
    t <= 0x002F || t == 0x0101 || t == 0x0103 || t >= 0x8000
}

/// Walks attributes (type, value); `rest` is what it could not read.
struct Attributes<'a> {
    /// Bytes not read yet.
    rest: &'a [u8],
    /// The last attribute read lacked its padding.
    unpadded: bool,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (&[t0, t1, l0, l1], rest) = self.rest.split_first_chunk::<4>()?;
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        let value = rest.get(..len)?;
        self.rest = match rest.get(len.next_multiple_of(4)..) {
            Some(next) => next,
            None => {
                self.unpadded = true;
                &[]
            }
        };
        Some((u16::from_be_bytes([t0, t1]), value))
    }
}

/// The attributes in `b`.
fn attributes(b: &[u8]) -> Attributes<'_> {
    Attributes {
        rest: b,
        unpadded: false,
    }
}

/// Copies the message's address attributes to `meta.stun`.
fn addresses(msg: &Message<'_>, meta: &mut Metadata) {
    for (kind, value) in attributes(msg.attrs).take(MAX_ATTRIBUTES) {
        let (xor, field): (bool, fn(&mut Stun) -> &mut String) = match kind {
            0x0001 => (false, |s| &mut s.mapped),
            0x0020 | 0x8020 => (true, |s| &mut s.mapped),
            0x0005 | 0x802C => (false, |s| &mut s.other),
            0x0012 => (true, |s| &mut s.peer),
            0x0016 => (true, |s| &mut s.relayed),
            0x0004 | 0x802B => (false, |s| &mut s.response),
            _ => continue,
        };
        // XORed addresses use the cookie and transaction id as key.
        let key = match (xor, msg.cookie) {
            (false, _) => [0; 16],
            (true, true) => msg.id,
            (true, false) => continue,
        };
        let Some(addr) = address(value, &key) else {
            continue;
        };
        let slot = field(meta.stun.get_or_insert_with(Box::default));
        // XOR-MAPPED-ADDRESS wins over MAPPED-ADDRESS.
        if xor || slot.is_empty() {
            *slot = addr;
        }
    }
}

/// An address attribute XORed with `key`, as `ip:port` (`[ip]:port` for
/// IPv6).
fn address(value: &[u8], key: &[u8; 16]) -> Option<String> {
    let (&[_, family, p0, p1], addr) = value.split_first_chunk::<4>()?;
    let mut bytes = [0u8; 16];
    for (b, (a, k)) in bytes.iter_mut().zip(addr.iter().zip(key)) {
        *b = a ^ k;
    }
    let ip = match (family, addr.len()) {
        (1, 4) => IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]]),
        (2, 16) => IpAddr::from(bytes),
        _ => return None,
    };
    let port = u16::from_be_bytes([p0 ^ key[0], p1 ^ key[1]]);
    Some(SocketAddr::new(ip, port).to_string())
}

/// stun.pcap frames 67 and 68: a TURN Allocate request and its 401
/// error response with REALM "turner.facebook".
const FB_ALLOCATE: &str = "000300082112a442414b37515079504b396575560019000411000000";
const FB_UNAUTHORIZED: &str = "011300542112a442414b37515079504b39657556000900100000040175\
    6e617574686f72697a656400150028626230333164363163636331626538326532343031343433356564\
    353266323666626136323438330014000f7475726e65722e66616365626f6f6b00";
/// teams.pcap frame 1276: an Allocate request with MS-TURN attributes
/// (0x8037, 0x8008, 0x8006, 0x8055, 0x8095) and unpadded REALM and NONCE.
const TEAMS_ALLOCATE: &str = "000300c22112a442cebf09f4e3bb00f87114e1b6000f000472c64bc680370004000000028008000400\
    00000680060004000000010010000400002ee08055000400020002809500085be55b060c2d89fa0014\
    00143caeff41e4f0d59f6820280d2f1493f8b0f312000015000a227274636d6564696122000600380200\
    002490a0dbdb01d6194de21537bfc992a00332731af1bedc569ae83bd5ab00000000bf71b276c97813a8\
    ddefeb5cbc793a277a4ce63c0008002094ed4c8ab8380a489294be4f124acf68be1b06329d3a2a8936a0\
    4d5d14eb8acd";
/// zoom.pcap frame 34: a classic binding request with Zoom's attribute
/// 0x0101.
const ZOOM_REQUEST: &str =
    "00010018c15dae63585d14392e582c260403bf30010100143132333435363738393031323334353637383900";
/// stun.pcap frames 195 to 197: a binding request, a DTLS ClientHello (its
/// record ends before the datagram does, as nDPI allows) and the binding
/// response.
const DTLS_REQUEST: &str = "000100882112a442384421d1f4a243e1d63a5f9a0006004945303444393433462d433237312d433936\
    412d433237442d4443424430393737383638303a32303430463745432d334642462d363146372d3141\
    43322d41414435443436313041384500000000250000002400046e7f00ff802a00089663f5787b57f2\
    d400080014ae2f3329490275937e5e79985322cf8c9f5e1f3980280004f1444a1b";
const DTLS_HELLO: &str = "16feff0000000000000000004efeffffa400000000000000a4fefdfc338fd99f2c1b3e321970386651\
    4ef73387a590ed0a4ae2ecf926fff707dd9300000010c02bc02fcca9cca8c00ac009c013c0140100006a\
    00170000ff01000100000a00080006001d00170018000b000201000010001200100677656272746308\
    632d776562727463000d0020001e0403050306030203080408050806040105010601020104020502060\
    20202001c00024000000e000b0008000700080001000200";
const DTLS_RESPONSE: &str = "0101002c2112a442384421d1f4a243e1d63a5f9a00200008000100007c33cd2d000800149f00fddfbd\
    019194d4ce7bc4e4e184cad114708d802800047c5feaa2";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "stun",
    protocols: &[
        STUN,
        DTLS,
        SKYPE_TEAMS_CALL,
        WHATSAPP_CALL,
        ZOOM,
        FACEBOOK_VOIP,
        SIGNAL_VOIP,
        TELEGRAM_VOIP,
        GOOGLE_CALL,
        VIBER_VOIP,
    ],
    tcp: true,
    udp: true,
    ports: &[3478, 19302],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "stun_classic.pcap frames ,,,",
            tcp: false,
            server_port: 13958,
            packets: &[
                (
                    true,
                    "000100089429ef88294dd52632c72931cb8dbb4c0003000400000000",
                ),
                (
                    false,
                    "0101000c9429ef88294dd52632c72931cb8dbb4c000100080001d70aac103fe0",
                ),
                (
                    false,
                    "8092ae1504e9f9983aa6d92292d8852000fad4afbd2c19c8c2835fb215692dd6",
                ),
                (
                    false,
                    "8012ae1604e9fa383aa6d922c4532097ca1bd297ab78d2acb2c3ebe25cc55cda",
                ),
            ],
            protocol: Protocol(78),
        },
        Sample {
            origin: "stun.pcap frames 67, 68 (REALM turner.facebook)",
            tcp: false,
            server_port: 40003,
            packets: &[(true, FB_ALLOCATE), (false, FB_UNAUTHORIZED)],
            protocol: FACEBOOK_VOIP,
        },
        Sample {
            origin: "teams.pcap frame 1276 (Microsoft's attributes)",
            tcp: false,
            server_port: 3478,
            packets: &[(true, TEAMS_ALLOCATE)],
            protocol: SKYPE_TEAMS_CALL,
        },
        Sample {
            origin: "zoom.pcap frame 34 (classic, Zoom's attribute)",
            tcp: false,
            server_port: 3478,
            packets: &[(true, ZOOM_REQUEST)],
            protocol: ZOOM,
        },
        Sample {
            origin: "stun.pcap frames 195-197 (STUN, then DTLS)",
            tcp: false,
            server_port: 8801,
            packets: &[
                (true, DTLS_REQUEST),
                (true, DTLS_HELLO),
                (false, DTLS_RESPONSE),
            ],
            protocol: DTLS,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// stun_classic.pcap frame 1: classic binding request with
    /// CHANGE-REQUEST, from 172.16.63.224:55050.
    const REQUEST: &str = crate::dissect::testing::STUN_REQUEST;
    /// stun_classic.pcap frame 2: its response, MAPPED-ADDRESS
    /// 172.16.63.224:55050.
    const RESPONSE: &str = "0101000c9429ef88294dd52632c72931cb8dbb4c000100080001d70aac103fe0";
    /// RFC 5769 section 2.2 (the corpus has no RFC 5389 STUN): binding
    /// success response with SOFTWARE, XOR-MAPPED-ADDRESS 192.0.2.1:32853,
    /// MESSAGE-INTEGRITY and FINGERPRINT.
    const RFC5769_V4: &str = "0101003c2112a442b7e7a701bc34d686fa87dfae802200 0b7465737420766563746f7220\
        00200008 0001a147e112a643 000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7 80280004c07d4c96";
    /// RFC 5769 section 2.3: the same with an IPv6 XOR-MAPPED-ADDRESS,
    /// [2001:db8:1234:5678:11:2233:4455:6677]:32853.
    const RFC5769_V6: &str = "010100482112a442b7e7a701bc34d686fa87dfae802200 0b7465737420766563746f7220\
        00200014 0002a1470113a9faa5d3f179bc25f4b5bed2b9d9 00080014a382954e4be67bf11784c97c8292c275bfe3ed41\
        80280004c8fb0b4c";

    fn mapped(meta: &Metadata) -> &str {
        meta.stun.as_ref().map_or("", |s| s.mapped.as_str())
    }

    #[test]
    fn classic_request_and_response() {
        let (req, resp) = (hex(REQUEST), hex(RESPONSE));
        let f = flow(false, 55050, 13958);
        let (v, meta) = run(dissect, &f, &[(true, &req), (false, &resp)]);
        assert_eq!(v, [Verdict::Found(STUN), Verdict::Found(STUN)]);
        assert_eq!(mapped(&meta), "172.16.63.224:55050");
        // A datagram one byte longer than the message is not STUN.
        let mut longer = req.clone();
        longer.push(0);
        let (v, _) = run(dissect, &f, &[(true, &longer)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn rfc5389_xor_mapped_address() {
        let f = flow(false, 40000, 3478);
        let (v, meta) = run(dissect, &f, &[(false, &hex(RFC5769_V4))]);
        assert_eq!(v, [Verdict::Found(STUN)]);
        assert_eq!(mapped(&meta), "192.0.2.1:32853");
        let (v, meta) = run(dissect, &f, &[(false, &hex(RFC5769_V6))]);
        assert_eq!(v, [Verdict::Found(STUN)]);
        assert_eq!(
            mapped(&meta),
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        );
    }

    #[test]
    fn turn_addresses() {
        // Synthetic (no TURN in the corpus): a CreatePermission request with
        // XOR-PEER-ADDRESS 203.0.113.5:6000, then an Allocate success
        // response with XOR-RELAYED-ADDRESS 192.0.2.15:50000,
        // XOR-MAPPED-ADDRESS 192.0.2.1:32853, OTHER-ADDRESS
        // 198.51.100.1:3479 and RESPONSE-ORIGIN 198.51.100.2:3478.
        let permission = hex("0008000c2112a442b7e7a701bc34d686fa87dfae 001200080001 3662ea12d547");
        let allocate = hex(
            "010300302112a442b7e7a701bc34d686fa87dfaf 001600080001e242e112a64d \
             002000080001a147e112a643 802c000800010d97c6336401 802b000800010d96c6336402",
        );
        let f = flow(false, 40000, 3478);
        let (v, meta) = run(dissect, &f, &[(true, &permission), (false, &allocate)]);
        assert_eq!(v, [Verdict::Found(STUN), Verdict::Found(STUN)]);
        let expected = Stun {
            mapped: "192.0.2.1:32853".into(),
            other: "198.51.100.1:3479".into(),
            peer: "203.0.113.5:6000".into(),
            relayed: "192.0.2.15:50000".into(),
            response: "198.51.100.2:3478".into(),
        };
        assert_eq!(meta.stun.as_deref(), Some(&expected));
    }

    #[test]
    fn classic_request_without_attributes_waits_for_its_response() {
        // Synthetic: frame 1 without its attribute (length 0).
        let mut req = hex(REQUEST);
        req.truncate(20);
        req[3] = 0;
        let f = flow(false, 55050, 13958);
        let (v, _) = run(dissect, &f, &[(true, &req)]);
        assert_eq!(v, [Verdict::Maybe]);
        // An empty response with the same transaction id claims the flow.
        let mut resp = req.clone();
        resp[0] = 1;
        let (v, _) = run(dissect, &f, &[(true, &req), (false, &resp)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Found(STUN)]);
        // One with another id does not.
        resp[19] ^= 1;
        let (v, _) = run(dissect, &f, &[(true, &req), (false, &resp)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe]);
    }

    #[test]
    fn tcp_stream_split_and_framed() {
        // Synthetic (no STUN over TCP in the corpus): the classic exchange
        // on TCP, the request split in two segments.
        let (req, resp) = (hex(REQUEST), hex(RESPONSE));
        let f = flow(true, 55050, 3478);
        let (v, meta) = run(
            dissect,
            &f,
            &[(true, &req[..10]), (true, &req[10..]), (false, &resp)],
        );
        assert_eq!(
            v,
            [Verdict::Maybe, Verdict::Found(STUN), Verdict::Found(STUN)]
        );
        assert_eq!(mapped(&meta), "172.16.63.224:55050");
        // RFC 4571 framing: a 2-byte length before each message.
        let mut framed = vec![0, 0x1c];
        framed.extend_from_slice(&req);
        let (v, _) = run(dissect, &f, &[(true, &framed)]);
        assert_eq!(v, [Verdict::Found(STUN)]);
    }

    #[test]
    fn watches_a_bounded_number_of_packets() {
        let (req, resp) = (hex(REQUEST), hex(RESPONSE));
        let f = flow(false, 55050, 13958);
        let packets: Vec<(bool, &[u8])> = (0..8)
            .map(|i| {
                if i % 2 == 0 {
                    (true, &req[..])
                } else {
                    (false, &resp[..])
                }
            })
            .collect();
        let (v, _) = run(dissect, &f, &packets);
        // The claim, then six more: done on the seventh packet.
        assert_eq!(v[..6], [Verdict::Found(STUN); 6]);
        assert_eq!(v[6], Verdict::Done(STUN));
    }

    #[test]
    fn realm_names_the_host_and_the_application() {
        let f = flow(false, 38123, 40003);
        let (v, meta) = run(
            dissect,
            &f,
            &[(true, &hex(FB_ALLOCATE)), (false, &hex(FB_UNAUTHORIZED))],
        );
        assert_eq!(v, [Verdict::Found(STUN), Verdict::Found(FACEBOOK_VOIP)]);
        assert_eq!(meta.host_server_name, "turner.facebook");
        // stun_signal.pcapng frame 74 (and its request, frame 69): REALM
        // "signal.org".
        let req = hex("000300082112a44250644d2b59394635737243710019000411000000");
        let resp = hex(
            "011300482112a44250644d2b59394635737243710009001000000401556e617574686f72697a656400\
             150010326335626163653138323964323639650014000a7369676e616c2e6f72670000802200044e6f\
             6e6580280004135b80cb",
        );
        let f = flow(false, 43068, 3478);
        let (v, meta) = run(dissect, &f, &[(true, &req), (false, &resp)]);
        assert_eq!(v[1], Verdict::Found(SIGNAL_VOIP));
        assert_eq!(meta.host_server_name, "signal.org");
        // A realm that is not a host name names nothing.
        let mut junk = hex(FB_UNAUTHORIZED);
        let at = junk.len() - 16;
        junk[at] = 0x07;
        let (v, meta) = run(dissect, &f, &[(false, &junk)]);
        assert_eq!(v, [Verdict::Found(STUN)]);
        assert_eq!(meta.host_server_name, "");
    }

    #[test]
    fn whatsapp_unpadded_attribute() {
        // wa_voice.pcap frame 215: an Allocate request whose WhatsApp
        // attribute 0x4000 (102 bytes) is not padded: the message length
        // (106) is not a multiple of 4.
        let p = hex(
            "0003006a2112a442a6674f75f0ad2c001315b3364000006605030826d884ea2ea4c4944ba39f2986\
             7bf241bc1d1f5228195ff7602f3302e61e3ef4de0deb97989fa132933e675e3981c454d16a5a8caae9\
             521d0421dba60b3b329f858a72e5dd741369a6808d8481672dade584a273d399fe31d3f91e4545549b\
             729bd734",
        );
        assert_eq!(p.len(), 126);
        let f = flow(false, 56328, 3478);
        let (v, _) = run(dissect, &f, &[(true, &p)]);
        assert_eq!(v, [Verdict::Found(WHATSAPP_CALL)]);
        // lru_ipv6_caches.pcapng frame 78: WhatsApp's own message type
        // 0x0801, empty.
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex("080100002112a4424e735a564e306b515969737a"))],
        );
        assert_eq!(v, [Verdict::Found(WHATSAPP_CALL)]);
    }

    #[test]
    fn microsoft_turn_attributes() {
        // teams.pcap frame 1276: an Allocate request with MS-TURN
        // attributes (0x8037, 0x8008, 0x8006, 0x8055, 0x8095) and
        // unpadded REALM and NONCE.
        let p = hex(TEAMS_ALLOCATE);
        let f = flow(false, 50036, 3478);
        let (v, meta) = run(dissect, &f, &[(true, &p)]);
        assert_eq!(v, [Verdict::Found(SKYPE_TEAMS_CALL)]);
        // Its binary REALM is no host name.
        assert_eq!(meta.host_server_name, "");
        // The same in Microsoft's multiplexed framing (synthetic: 0xFF10,
        // the length, an 8-byte session id).
        let mut framed = vec![0xFF, 0x10];
        framed.extend_from_slice(&((p.len() + 8) as u16).to_be_bytes());
        framed.extend_from_slice(&[0x5b, 0xe5, 0x5b, 0x06, 0x0c, 0x2d, 0x89, 0xfa]);
        framed.extend_from_slice(&p);
        let (v, _) = run(dissect, &f, &[(true, &framed)]);
        assert_eq!(v, [Verdict::Found(SKYPE_TEAMS_CALL)]);
    }

    #[test]
    fn zoom_classic_request_is_done_at_once() {
        // zoom.pcap frame 34: a classic binding request with Zoom's
        // attribute 0x0101.
        let p = hex(ZOOM_REQUEST);
        let (v, _) = run(dissect, &flow(false, 23903, 3478), &[(true, &p)]);
        assert_eq!(v, [Verdict::Done(ZOOM)]);
    }

    #[test]
    fn dtls_after_stun_makes_the_flow_dtls() {
        let req = hex(DTLS_REQUEST);
        let hello = hex(DTLS_HELLO);
        let resp = hex(DTLS_RESPONSE);
        let f = flow(false, 48854, 8801);
        let (v, _) = run(dissect, &f, &[(true, &req), (true, &hello), (false, &resp)]);
        assert_eq!(
            v,
            [
                Verdict::Found(STUN),
                Verdict::Found(DTLS),
                Verdict::Found(DTLS)
            ]
        );
        // RTP after STUN leaves it STUN (nDPI's STUN.RTP): stun_classic.pcap.
        let rtp = hex(crate::dissect::testing::RTP);
        let (v, _) = run(
            dissect,
            &flow(false, 55050, 13958),
            &[(true, &hex(REQUEST)), (false, &rtp)],
        );
        assert_eq!(v, [Verdict::Found(STUN), Verdict::Found(STUN)]);
    }

    #[test]
    fn relayed_dtls_in_channel_data_and_data_attributes() {
        // Synthetic, from stun.pcap frames 67 and 196: after a TURN
        // Allocate, a ChannelData message (channel 0x4000) carrying the
        // DTLS ClientHello.
        let hello = hex(DTLS_HELLO);
        let mut channel = vec![0x40, 0x00];
        channel.extend_from_slice(&(hello.len() as u16).to_be_bytes());
        channel.extend_from_slice(&hello);
        channel.extend_from_slice(&[0; 3]);
        let f = flow(false, 38123, 40003);
        let (v, _) = run(dissect, &f, &[(true, &hex(FB_ALLOCATE)), (true, &channel)]);
        assert_eq!(v, [Verdict::Found(STUN), Verdict::Found(DTLS)]);
        // Without a TURN method first, ChannelData is not looked into.
        let (v, _) = run(dissect, &f, &[(true, &hex(REQUEST)), (true, &channel)]);
        assert_eq!(v, [Verdict::Found(STUN), Verdict::Found(STUN)]);
        // A Data indication whose DATA attribute holds the ClientHello
        // (padded to 4 bytes).
        let mut data = vec![0x00, 0x17, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        data.extend_from_slice(&[7; 12]);
        data.extend_from_slice(&[0x00, 0x13]);
        data.extend_from_slice(&(hello.len() as u16).to_be_bytes());
        data.extend_from_slice(&hello);
        data.resize(data.len().next_multiple_of(4), 0);
        let len = (data.len() - 20) as u16;
        data[2..4].copy_from_slice(&len.to_be_bytes());
        let (v, _) = run(dissect, &f, &[(false, &data)]);
        assert_eq!(v, [Verdict::Found(DTLS)]);
    }

    #[test]
    fn media_after_a_named_application_keeps_its_name() {
        // The Facebook exchange, then RTP and DTLS: still FacebookVoip.
        let rtp = hex(crate::dissect::testing::RTP);
        let f = flow(false, 38123, 40003);
        let (v, meta) = run(
            dissect,
            &f,
            &[
                (true, &hex(FB_ALLOCATE)),
                (false, &hex(FB_UNAUTHORIZED)),
                (true, &rtp),
                (true, &hex(DTLS_HELLO)),
            ],
        );
        assert_eq!(v[3], Verdict::Found(FACEBOOK_VOIP));
        assert_eq!(meta.host_server_name, "turner.facebook");
    }

    #[test]
    fn google_meet_servers_name_google_call() {
        let mut f = flow(false, 49153, 3478);
        f.server_ip[..4].copy_from_slice(&[142, 250, 82, 99]);
        let (v, _) = run(dissect, &f, &[(true, &hex(REQUEST))]);
        assert_eq!(v, [Verdict::Found(GOOGLE_CALL)]);
        // Not on another port.
        f.server_port = 443;
        let (v, _) = run(dissect, &f, &[(true, &hex(REQUEST))]);
        assert_eq!(v, [Verdict::Found(STUN)]);
    }

    #[test]
    fn rejects_other_protocols() {
        let dns = hex(crate::dissect::testing::DNS_QUERY);
        let rtp = hex(crate::dissect::testing::RTP);
        let ovpn = hex(crate::dissect::testing::OPENVPN_RESET);
        for p in [&dns, &rtp, &ovpn] {
            let (v, _) = run(dissect, &flow(false, 40000, 53), &[(true, p)]);
            assert_eq!(v, [Verdict::No]);
        }
        let tls = hex(crate::dissect::testing::TLS_HELLO_HEAD);
        let http = hex(crate::dissect::testing::HTTP_REQUEST_HEAD);
        for p in [&tls, &http] {
            let (v, _) = run(dissect, &flow(true, 40000, 443), &[(true, p)]);
            assert_eq!(v, [Verdict::No]);
        }
    }

    #[test]
    fn truncated_input_does_not_panic() {
        for src in [
            REQUEST,
            RESPONSE,
            RFC5769_V4,
            RFC5769_V6,
            FB_UNAUTHORIZED,
            TEAMS_ALLOCATE,
            ZOOM_REQUEST,
            DTLS_REQUEST,
        ] {
            let p = hex(src);
            for n in 0..=p.len() {
                for tcp in [false, true] {
                    let (v, _) = run(
                        dissect,
                        &flow(tcp, 40000, 3478),
                        &[(true, &p[..n]), (false, &p[..n])],
                    );
                    if n < p.len() && !tcp {
                        assert!(!matches!(v[0], Verdict::Found(_) | Verdict::Done(_)), "{n}");
                    }
                }
            }
        }
    }
}

//! One module per protocol family; each exports its registry entry,
//! `DISSECTOR` (see [`Dissector`]), and [`REGISTRY`] lists them.

pub(crate) mod amqp;
pub(crate) mod ber;
pub(crate) mod bitcoin;
pub(crate) mod bittorrent;
pub(crate) mod dhcp;
pub(crate) mod dns;
pub(crate) mod edonkey;
pub(crate) mod epicgames;
pub(crate) mod ethereum;
pub(crate) mod ftp;
pub(crate) mod games;
pub(crate) mod gnutella;
pub(crate) mod http;
pub(crate) mod ipsec;
pub(crate) mod kerberos;
pub(crate) mod ldap;
pub(crate) mod mail;
pub(crate) mod mining;
pub(crate) mod monero;
pub(crate) mod mqtt;
pub(crate) mod mysql;
pub(crate) mod nano;
pub(crate) mod netbios;
pub(crate) mod ntp;
pub(crate) mod openvpn;
pub(crate) mod portgames;
pub(crate) mod postgres;
pub(crate) mod quic;
pub(crate) mod raknet;
pub(crate) mod rdp;
pub(crate) mod redis;
pub(crate) mod rtp;
pub(crate) mod rtsp;
pub(crate) mod sip;
pub(crate) mod smb;
pub(crate) mod snmp;
pub(crate) mod ssdp;
pub(crate) mod ssh;
pub(crate) mod steam;
pub(crate) mod stun;
pub(crate) mod syslog;
pub(crate) mod telnet;
pub(crate) mod tls;
pub(crate) mod wireguard;
pub(crate) mod xbox;

use crate::dissect::Dissector;

/// Every dissector, in the order they are asked: first those whose port
/// hints name one of the flow's ports, then the others, each group in
/// this order (when two claim a flow on the same packet, the first wins).
/// Put a protocol after those whose payloads it could mistake for its own.
pub(crate) const REGISTRY: &[Dissector] = &[
    dns::DISSECTOR,
    tls::DISSECTOR,
    quic::DISSECTOR,
    http::DISSECTOR,
    ssh::DISSECTOR,
    dhcp::DISSECTOR,
    ntp::DISSECTOR,
    netbios::DISSECTOR,
    ssdp::DISSECTOR,
    snmp::DISSECTOR,
    syslog::DISSECTOR,
    kerberos::DISSECTOR,
    ldap::DISSECTOR,
    mail::DISSECTOR,
    ftp::DISSECTOR,
    telnet::DISSECTOR,
    sip::DISSECTOR,
    rtsp::DISSECTOR,
    mqtt::DISSECTOR,
    amqp::DISSECTOR,
    redis::DISSECTOR,
    mysql::DISSECTOR,
    postgres::DISSECTOR,
    smb::DISSECTOR,
    rdp::DISSECTOR,
    stun::DISSECTOR,
    // Before RTP: see epicgames.rs.
    epicgames::DISSECTOR,
    rtp::DISSECTOR,
    wireguard::DISSECTOR,
    openvpn::DISSECTOR,
    ipsec::DISSECTOR,
    bittorrent::DISSECTOR,
    raknet::DISSECTOR,
    steam::DISSECTOR,
    ethereum::DISSECTOR,
    bitcoin::DISSECTOR,
    monero::DISSECTOR,
    nano::DISSECTOR,
    mining::DISSECTOR,
    edonkey::DISSECTOR,
    games::DISSECTOR,
    portgames::DISSECTOR,
    gnutella::DISSECTOR,
    xbox::DISSECTOR,
];

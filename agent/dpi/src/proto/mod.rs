//! One module per protocol family; each exports its registry entry,
//! `DISSECTOR` (see [`Dissector`]), and [`REGISTRY`] lists them.

pub(crate) mod aaa;
pub(crate) mod ajp;
pub(crate) mod alicloud;
pub(crate) mod amqp;
pub(crate) mod avast;
pub(crate) mod bacnet;
pub(crate) mod ber;
pub(crate) mod bitcoin;
pub(crate) mod bittorrent;
pub(crate) mod c37118;
pub(crate) mod cassandra;
pub(crate) mod coap;
pub(crate) mod crc;
pub(crate) mod dcerpc;
pub(crate) mod dhcp;
pub(crate) mod discord;
pub(crate) mod dnp3;
pub(crate) mod dns;
pub(crate) mod dnscrypt;
pub(crate) mod drda;
pub(crate) mod dropbox;
pub(crate) mod dtls;
pub(crate) mod edonkey;
pub(crate) mod enip;
pub(crate) mod epicgames;
pub(crate) mod ethereum;
pub(crate) mod ethersbus;
pub(crate) mod fins;
pub(crate) mod flowexport;
pub(crate) mod ftp;
pub(crate) mod games;
pub(crate) mod gnutella;
pub(crate) mod h323;
pub(crate) mod hartip;
pub(crate) mod hislip;
pub(crate) mod http;
pub(crate) mod iax;
pub(crate) mod icecast;
pub(crate) mod iec104;
pub(crate) mod imo;
pub(crate) mod ipsec;
pub(crate) mod irc;
pub(crate) mod jabber;
pub(crate) mod jsonrpc;
pub(crate) mod kafka;
pub(crate) mod kcp;
pub(crate) mod kerberos;
pub(crate) mod knxnet;
pub(crate) mod ldap;
pub(crate) mod line;
pub(crate) mod lustre;
pub(crate) mod magic;
pub(crate) mod mail;
pub(crate) mod memcached;
pub(crate) mod mgcp;
pub(crate) mod mining;
pub(crate) mod mms;
pub(crate) mod modbus;
pub(crate) mod monero;
pub(crate) mod mongodb;
pub(crate) mod mpegts;
pub(crate) mod mqtt;
pub(crate) mod mumble;
pub(crate) mod mysql;
pub(crate) mod nano;
pub(crate) mod nest_log_sink;
pub(crate) mod netbios;
pub(crate) mod nntp;
pub(crate) mod ntp;
pub(crate) mod ookla;
pub(crate) mod opcua;
pub(crate) mod openvpn;
pub(crate) mod portgames;
pub(crate) mod postgres;
pub(crate) mod ptp;
pub(crate) mod quic;
pub(crate) mod raft;
pub(crate) mod raknet;
pub(crate) mod rdp;
pub(crate) mod redis;
pub(crate) mod remote;
pub(crate) mod routing;
pub(crate) mod rpc;
pub(crate) mod rsh;
pub(crate) mod rtmp;
pub(crate) mod rtp;
pub(crate) mod rtsp;
pub(crate) mod rx;
pub(crate) mod s7comm;
pub(crate) mod sd_rtn;
pub(crate) mod sip;
pub(crate) mod skinny;
pub(crate) mod smb;
pub(crate) mod smpp;
pub(crate) mod snmp;
pub(crate) mod socks;
pub(crate) mod someip;
pub(crate) mod spotify;
pub(crate) mod ssdp;
pub(crate) mod ssh;
pub(crate) mod steam;
pub(crate) mod stomp;
pub(crate) mod stun;
pub(crate) mod syslog;
pub(crate) mod tds;
pub(crate) mod telegram;
pub(crate) mod telnet;
pub(crate) mod tftp;
pub(crate) mod threema;
pub(crate) mod thrift;
pub(crate) mod tls;
pub(crate) mod tns;
pub(crate) mod tpkt;
pub(crate) mod trdp;
pub(crate) mod tunnel;
pub(crate) mod viber;
pub(crate) mod websocket;
pub(crate) mod whatsapp;
pub(crate) mod whois;
pub(crate) mod wireguard;
pub(crate) mod xbox;
pub(crate) mod zoom;

use crate::dissect::Dissector;

/// Every dissector, in the order they are asked: first those whose port
/// hints name one of the flow's ports, then the others, each group in
/// this order (when two claim a flow on the same packet, the first wins).
/// Put a protocol after those whose payloads it could mistake for its own.
pub(crate) const REGISTRY: &[Dissector] = &[
    // Before DNS: their first messages can be well-formed DNS.
    dnscrypt::DISSECTOR,
    avast::DISSECTOR,
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
    magic::DISSECTOR,
    rpc::DISSECTOR,
    mongodb::DISSECTOR,
    cassandra::DISSECTOR,
    memcached::DISSECTOR,
    nntp::DISSECTOR,
    ajp::DISSECTOR,
    thrift::DISSECTOR,
    smpp::DISSECTOR,
    stomp::DISSECTOR,
    drda::DISSECTOR,
    lustre::DISSECTOR,
    rx::DISSECTOR,
    rsh::DISSECTOR,
    raft::DISSECTOR,
    // Before JSON-RPC: Stratum is JSON-RPC with mining methods.
    mining::DISSECTOR,
    jsonrpc::DISSECTOR,
    h323::DISSECTOR,
    discord::DISSECTOR,
    viber::DISSECTOR,
    threema::DISSECTOR,
    kcp::DISSECTOR,
    zoom::DISSECTOR,
    spotify::DISSECTOR,
    modbus::DISSECTOR,
    dnp3::DISSECTOR,
    iec104::DISSECTOR,
    s7comm::DISSECTOR,
    mms::DISSECTOR,
    c37118::DISSECTOR,
    ethersbus::DISSECTOR,
    trdp::DISSECTOR,
    bacnet::DISSECTOR,
    coap::DISSECTOR,
    hartip::DISSECTOR,
    ptp::DISSECTOR,
    someip::DISSECTOR,
    fins::DISSECTOR,
    knxnet::DISSECTOR,
    enip::DISSECTOR,
    opcua::DISSECTOR,
    hislip::DISSECTOR,
    dropbox::DISSECTOR,
    dtls::DISSECTOR,
    alicloud::DISSECTOR,
    socks::DISSECTOR,
    routing::DISSECTOR,
    flowexport::DISSECTOR,
    aaa::DISSECTOR,
    tunnel::DISSECTOR,
    remote::DISSECTOR,
    rtmp::DISSECTOR,
    jabber::DISSECTOR,
    websocket::DISSECTOR,
    raknet::DISSECTOR,
    steam::DISSECTOR,
    ethereum::DISSECTOR,
    bitcoin::DISSECTOR,
    monero::DISSECTOR,
    nano::DISSECTOR,
    edonkey::DISSECTOR,
    games::DISSECTOR,
    portgames::DISSECTOR,
    gnutella::DISSECTOR,
    xbox::DISSECTOR,
    skinny::DISSECTOR,
    mgcp::DISSECTOR,
    iax::DISSECTOR,
    ookla::DISSECTOR,
    whatsapp::DISSECTOR,
    telegram::DISSECTOR,
    imo::DISSECTOR,
    sd_rtn::DISSECTOR,
    nest_log_sink::DISSECTOR,
    icecast::DISSECTOR,
    // Packet numbers in one byte: after the media dissectors.
    line::DISSECTOR,
    irc::DISSECTOR,
    tftp::DISSECTOR,
    dcerpc::DISSECTOR,
    tds::DISSECTOR,
    tns::DISSECTOR,
    mumble::DISSECTOR,
    mpegts::DISSECTOR,
    // Weak alone (a length and two small numbers): after the others.
    kafka::DISSECTOR,
    // Any text on its ports.
    whois::DISSECTOR,
];

#[cfg(test)]
mod tests {
    use super::REGISTRY;
    use crate::dissect::testing::{flow, hex, run};

    /// Every registered dissector on every sample's packets, each cut
    /// short, with bytes flipped, and on random bytes, on each of its
    /// ports and another: none may panic (the dissectors read untrusted
    /// bytes through checked accessors only).
    #[test]
    fn dissectors_survive_cut_and_mutated_samples() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let samples: Vec<Vec<u8>> = REGISTRY
            .iter()
            .flat_map(|d| d.samples)
            .flat_map(|s| s.packets)
            .map(|&(_, h)| hex(h))
            .collect();
        for d in REGISTRY.iter().cycle().take(REGISTRY.len() * 8) {
            let ports = d.ports.iter().copied().chain([40_001]);
            for port in ports {
                for tcp in [true, false]
                    .into_iter()
                    .filter(|&t| (t && d.tcp) || (!t && d.udp))
                {
                    let f = flow(tcp, 40_000, port);
                    for s in &samples {
                        let cut = &s[..(next() as usize) % (s.len() + 1)];
                        let mut bent = s.clone();
                        for _ in 0..3 {
                            if !bent.is_empty() {
                                let i = (next() as usize) % bent.len();
                                bent[i] = next() as u8;
                            }
                        }
                        let junk: Vec<u8> = (0..next() % 200).map(|_| next() as u8).collect();
                        run(d.run, &f, &[(true, cut), (false, &bent), (true, &junk)]);
                        run(d.run, &f, &[(false, &bent), (true, cut), (false, &junk)]);
                    }
                }
            }
        }
    }
}

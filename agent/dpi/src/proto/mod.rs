//! One module per protocol family; each exports its registry entry,
//! `DISSECTOR` (see [`Dissector`]), and [`REGISTRY`] lists them.

pub(crate) mod aaa;
pub(crate) mod amqp;
pub(crate) mod avast;
pub(crate) mod ber;
pub(crate) mod bittorrent;
pub(crate) mod dhcp;
pub(crate) mod dns;
pub(crate) mod dnscrypt;
pub(crate) mod flowexport;
pub(crate) mod ftp;
pub(crate) mod http;
pub(crate) mod ipsec;
pub(crate) mod jabber;
pub(crate) mod kerberos;
pub(crate) mod ldap;
pub(crate) mod mail;
pub(crate) mod mqtt;
pub(crate) mod mysql;
pub(crate) mod netbios;
pub(crate) mod ntp;
pub(crate) mod openvpn;
pub(crate) mod postgres;
pub(crate) mod quic;
pub(crate) mod rdp;
pub(crate) mod redis;
pub(crate) mod remote;
pub(crate) mod routing;
pub(crate) mod rtmp;
pub(crate) mod rtp;
pub(crate) mod rtsp;
pub(crate) mod sip;
pub(crate) mod smb;
pub(crate) mod snmp;
pub(crate) mod socks;
pub(crate) mod ssdp;
pub(crate) mod ssh;
pub(crate) mod stun;
pub(crate) mod syslog;
pub(crate) mod telnet;
pub(crate) mod tls;
pub(crate) mod tunnel;
pub(crate) mod websocket;
pub(crate) mod wireguard;

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
    rtp::DISSECTOR,
    wireguard::DISSECTOR,
    openvpn::DISSECTOR,
    ipsec::DISSECTOR,
    bittorrent::DISSECTOR,
    socks::DISSECTOR,
    routing::DISSECTOR,
    flowexport::DISSECTOR,
    aaa::DISSECTOR,
    tunnel::DISSECTOR,
    remote::DISSECTOR,
    rtmp::DISSECTOR,
    jabber::DISSECTOR,
    websocket::DISSECTOR,
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

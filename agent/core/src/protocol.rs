//! The published protocol id table.
//!
//! flowstat numbers protocols as nDPI does, so `detected_protocol` means the
//! same in flowstat's records as in the Netify Agent's. Ids never change
//! meaning between releases; new protocols get new ids.

#[path = "protocol_table.rs"]
mod table;

use std::fmt;

/// Names indexed by id: one load per record instead of a search.
static NAMES: [&str; NAMES_LEN] = {
    let mut names = ["Unknown"; NAMES_LEN];
    let mut i = 0;
    while i < table::TABLE.len() {
        let (id, name) = table::TABLE[i];
        names[id as usize] = name;
        i += 1;
    }
    names
};

/// One more than the highest id of the table.
const NAMES_LEN: usize = table::TABLE[table::TABLE.len() - 1].0 as usize + 1;

/// A detected protocol: an id from the published table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Protocol(pub u16);

impl Protocol {
    /// Not (yet) known.
    pub const UNKNOWN: Protocol = Protocol(0);
    /// ICMP.
    pub const ICMP: Protocol = Protocol(81);
    /// ICMPv6.
    pub const ICMPV6: Protocol = Protocol(102);

    /// The name nDPI prints for this id, `"Unknown"` for unassigned ids.
    pub fn name(self) -> &'static str {
        NAMES.get(usize::from(self.0)).copied().unwrap_or("Unknown")
    }

    /// The protocol an IP protocol number identifies by itself (ICMP, GRE,
    /// ESP, ...), for protocols without ports.
    pub fn from_ip_protocol(ip_protocol: u8) -> Option<Protocol> {
        let id = match ip_protocol {
            1 => 81,       // ICMP
            2 => 82,       // IGMP
            4 | 41 => 86,  // IP_in_IP
            8 => 83,       // EGP
            47 => 80,      // GRE
            50 | 51 => 79, // IPSec (ESP, AH)
            58 => 102,     // ICMPV6
            89 => 85,      // OSPF
            112 => 73,     // VRRP
            132 => 84,     // SCTP
            _ => return None,
        };
        Some(Protocol(id))
    }

    /// The protocol usually found on `port` over TCP (`ip_protocol` 6) or
    /// UDP (17): a guess, reported with `detection_guessed: true`.
    pub fn guess_from_port(ip_protocol: u8, port: u16) -> Option<Protocol> {
        let table: &[(u16, u16)] = match ip_protocol {
            6 => TCP_PORTS,
            17 => UDP_PORTS,
            _ => return None,
        };
        table
            .binary_search_by_key(&port, |&(p, _)| p)
            .ok()
            .map(|i| Protocol(table[i].1))
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Well-known TCP ports and their protocol ids, sorted by port.
const TCP_PORTS: &[(u16, u16)] = &[
    (20, 175),   // FTP_DATA
    (21, 1),     // FTP_CONTROL
    (22, 92),    // SSH
    (23, 77),    // Telnet
    (25, 3),     // SMTP
    (53, 5),     // DNS
    (80, 7),     // HTTP
    (88, 111),   // Kerberos
    (110, 2),    // POP3
    (119, 93),   // Usenet
    (139, 10),   // NetBIOS
    (143, 4),    // IMAP
    (179, 13),   // BGP
    (389, 112),  // LDAP
    (443, 91),   // TLS
    (445, 41),   // SMBv23
    (465, 29),   // SMTPS
    (502, 44),   // Modbus
    (554, 50),   // RTSP
    (587, 3),    // SMTP
    (631, 6),    // IPP
    (853, 196),  // DoH_DoT
    (873, 166),  // RSYNC
    (993, 51),   // IMAPS
    (995, 23),   // POPS
    (1080, 172), // SOCKS
    (1194, 159), // OpenVPN
    (1433, 114), // MsSQL-TDS
    (1723, 115), // PPTP
    (1883, 222), // MQTT
    (3306, 20),  // MySQL
    (3389, 88),  // RDP
    (5060, 100), // SIP
    (5222, 67),  // Jabber
    (5432, 19),  // PostgreSQL
    (5672, 192), // AMQP
    (5900, 89),  // VNC
    (6379, 182), // RESP (Redis)
    (6667, 65),  // IRC
    (6881, 37),  // BitTorrent
    (8080, 131), // HTTP_Proxy
    (9418, 226), // Git
    (11211, 40), // Memcached
    (27017, 60), // MongoDB
];

/// Well-known UDP ports and their protocol ids, sorted by port.
const UDP_PORTS: &[(u16, u16)] = &[
    (53, 5),      // DNS
    (67, 18),     // DHCP
    (68, 18),     // DHCP
    (69, 96),     // TFTP
    (88, 111),    // Kerberos
    (123, 9),     // NTP
    (137, 10),    // NetBIOS
    (138, 10),    // NetBIOS
    (161, 14),    // SNMP
    (162, 14),    // SNMP
    (389, 112),   // LDAP
    (443, 188),   // QUIC
    (500, 79),    // IPSec (IKE)
    (514, 17),    // Syslog
    (546, 103),   // DHCPV6
    (547, 103),   // DHCPV6
    (1194, 159),  // OpenVPN
    (1812, 146),  // Radius
    (1813, 146),  // Radius
    (1900, 12),   // SSDP
    (2055, 128),  // NetFlow
    (2123, 272),  // GTP_C
    (2152, 271),  // GTP_U
    (3478, 78),   // STUN
    (3544, 214),  // Teredo
    (4500, 79),   // IPSec (NAT-T)
    (4789, 64),   // VXLAN
    (5060, 100),  // SIP
    (5353, 8),    // MDNS
    (5355, 154),  // LLMNR
    (5683, 27),   // COAP
    (6343, 129),  // sFlow
    (11211, 40),  // Memcached
    (51820, 206), // WireGuard
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for t in [TCP_PORTS, UDP_PORTS] {
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert!(table::TABLE.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn every_guess_names_a_known_protocol() {
        for &(port, id) in TCP_PORTS.iter().chain(UDP_PORTS) {
            assert_ne!(Protocol(id).name(), "Unknown", "port {port} -> id {id}");
        }
    }

    #[test]
    fn every_table_entry_is_found_by_id() {
        for &(id, name) in table::TABLE {
            assert_eq!(Protocol(id).name(), name);
        }
    }

    #[test]
    fn names_match_ndpi() {
        assert_eq!(Protocol(7).name(), "HTTP");
        assert_eq!(Protocol(91).name(), "TLS");
        assert_eq!(Protocol(188).name(), "QUIC");
        assert_eq!(Protocol::UNKNOWN.name(), "Unknown");
        assert_eq!(Protocol(65_000).name(), "Unknown");
    }

    #[test]
    fn guesses() {
        assert_eq!(Protocol::guess_from_port(6, 443), Some(Protocol(91)));
        assert_eq!(Protocol::guess_from_port(17, 443), Some(Protocol(188)));
        assert_eq!(Protocol::guess_from_port(17, 40_000), None);
        assert_eq!(Protocol::guess_from_port(1, 53), None);
        assert_eq!(Protocol::from_ip_protocol(58), Some(Protocol::ICMPV6));
        assert_eq!(Protocol::from_ip_protocol(6), None);
    }
}

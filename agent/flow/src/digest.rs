//! Flow digests (SPEC section 2, "Digest").

use sha1::{Digest, Sha1};

use flowstat_core::FlowKey;

/// Feeds the identity of `key` on `interface` to `h`, in SPEC order.
fn identity(h: &mut Sha1, interface: &str, key: &FlowKey) {
    let n = key.addr_bytes(&key.lower);
    h.update(interface.as_bytes());
    h.update([key.ip_version, key.protocol]);
    h.update(key.vlan_id.to_be_bytes());
    h.update(&key.lower[..n]);
    h.update(&key.upper[..n]);
    h.update(key.lower_port.to_be_bytes());
    h.update(key.upper_port.to_be_bytes());
}

/// The flow's first digest: stable for its whole life.
pub(crate) fn base(interface: &str, key: &FlowKey) -> [u8; 20] {
    let mut h = Sha1::new();
    identity(&mut h, interface, key);
    h.finalize().into()
}

/// The digest after detection added metadata.
pub(crate) fn with_metadata(
    interface: &str,
    key: &FlowKey,
    protocol: u16,
    application: u32,
    host: &str,
) -> [u8; 20] {
    let mut h = Sha1::new();
    identity(&mut h, interface, key);
    h.update(protocol.to_be_bytes());
    h.update(application.to_be_bytes());
    h.update(host.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowstat_core::hex;

    fn key() -> FlowKey {
        let mut lower = [0; 16];
        let mut upper = [0; 16];
        lower[..4].copy_from_slice(&[10, 0, 0, 1]);
        upper[..4].copy_from_slice(&[10, 0, 0, 2]);
        FlowKey {
            ip_version: 4,
            protocol: 6,
            vlan_id: 0,
            lower_port: 40000,
            upper_port: 80,
            lower,
            upper,
        }
    }

    #[test]
    fn base_digest_hashes_the_spec_bytes() {
        // Independently: printf 'eth0\x04\x06\x00\x00\x0a\x00\x00\x01\x0a\x00\x00\x02\x9c\x40\x00\x50' | sha1sum
        assert_eq!(
            hex(&base("eth0", &key())),
            "c6cd414f46ac1b15e6462b6b769491a0545bd3c5"
        );
    }

    #[test]
    fn metadata_changes_the_digest() {
        let k = key();
        let a = with_metadata("eth0", &k, 7, 0, "");
        assert_ne!(a, base("eth0", &k));
        assert_ne!(a, with_metadata("eth0", &k, 7, 0, "example.com"));
        assert_eq!(a, with_metadata("eth0", &k, 7, 0, ""));
    }
}

//! TLS for the MQTT and HTTP sinks: one stack, rustls on ring, trusting
//! the Mozilla roots (webpki-roots) or the CA certificates of a PEM file
//! (`tls_ca_file`).

use std::path::Path;
#[cfg(feature = "mqtt")]
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// A client configuration that trusts the CA certificates of `ca_file`,
/// or the Mozilla roots when there is none.
#[cfg(feature = "mqtt")]
pub(crate) fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in ca_certificates(path)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: a certificate is unusable: {e}", path.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    #[allow(
        deprecated,
        reason = "ring has no post-quantum key exchange; aws-lc-rs, which has, builds with cmake"
    )]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificates of the PEM file at `path`: at least one, or why not,
/// worded for the `tls_ca_file` key.
pub(crate) fn ca_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "cannot read CA certificates from {}: {e}: give a readable PEM file of \
                 CA certificates",
                path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_file_is_named() {
        let got = ca_certificates(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(got.contains("cannot read CA certificates from /nonexistent/ca.pem"));
        let empty = std::env::temp_dir().join(format!("flowstat-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let got = ca_certificates(&empty).unwrap_err();
        std::fs::remove_file(&empty).unwrap();
        assert!(got.contains("holds no PEM certificate"), "{got}");
    }
}

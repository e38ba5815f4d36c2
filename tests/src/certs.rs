//! A throwaway certificate authority and a server certificate for
//! 127.0.0.1 and localhost, made with the openssl command, for the TLS
//! tests of the sinks.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The PEM files of a CA and of a server certificate it signed.
pub struct Certs {
    /// The CA's certificate: what a client trusts.
    pub ca: PathBuf,
    /// The server's certificate (127.0.0.1 and localhost).
    pub cert: PathBuf,
    /// The server's private key (readable by all: a broker that drops
    /// its privileges reads it too).
    pub key: PathBuf,
}

/// Makes the CA and the server certificate in `dir`.
pub fn make(dir: &Path) -> Certs {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("openssl is needed ({e}): run `.ci/deps test`"));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=flowstat test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    let key = dir.join("server.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod key");
    Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key,
    }
}

//! The HTTP sink's keys: `[[sink]]` with `type = "http"`.

use std::path::PathBuf;
use std::time::Duration;

use flowstat_core::Sink;
use serde::Deserialize;

use super::{HttpAuth, HttpOptions, HttpSink};
use crate::config::{BuildSink, ConfigProblem, SinkContext};

/// `type = "http"`: batches of NDJSON by HTTP POST (see [`HttpSink`]).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `url` (required): `http://HOST[:PORT]/PATH` or
    /// `https://HOST[:PORT]/PATH`.
    pub url: String,
    /// `batch_records`: records in a batch, at most (default 1000).
    pub batch_records: usize,
    /// `batch_bytes`: bytes of NDJSON in a batch before gzip, at most
    /// (default 1048576).
    pub batch_bytes: usize,
    /// `batch_age_ms`: how long a batch's first record waits for others
    /// (default 1000); a batch also goes when no record came for 100 ms.
    pub batch_age_ms: u64,
    /// `gzip`: gzip each batch, `Content-Encoding: gzip` (default false).
    pub gzip: bool,
    /// `bearer_token`: sent as `Authorization: Bearer TOKEN`.
    pub bearer_token: String,
    /// `username` and `password`: sent as `Authorization: Basic`.
    pub username: String,
    /// See `username`.
    pub password: String,
    /// `tls_ca_file`: with `https://`, a PEM file of the CA certificates to
    /// trust instead of the Mozilla roots.
    pub tls_ca_file: Option<PathBuf>,
    /// `timeout_secs`: how long one POST may take, connecting included
    /// (default 10).
    pub timeout_secs: u64,
}

impl Default for HttpConfig {
    /// No URL (required), and [`HttpOptions`]' defaults.
    fn default() -> Self {
        let o = HttpOptions::new("");
        HttpConfig {
            url: o.url,
            batch_records: o.batch_records,
            batch_bytes: o.batch_bytes,
            batch_age_ms: o.batch_age.as_millis() as u64,
            gzip: o.gzip,
            bearer_token: String::new(),
            username: String::new(),
            password: String::new(),
            tls_ca_file: None,
            timeout_secs: o.timeout.as_secs(),
        }
    }
}

/// The forms of URL the sink takes.
const FORMS: &[&str] = &["http://HOST[:PORT]/PATH", "https://HOST[:PORT]/PATH"];

impl HttpConfig {
    /// The sink's options.
    pub fn options(&self) -> HttpOptions {
        let auth = if !self.bearer_token.is_empty() {
            Some(HttpAuth::Bearer(self.bearer_token.clone()))
        } else if !self.username.is_empty() {
            Some(HttpAuth::Basic(
                self.username.clone(),
                self.password.clone(),
            ))
        } else {
            None
        };
        HttpOptions {
            batch_records: self.batch_records,
            batch_bytes: self.batch_bytes,
            batch_age: Duration::from_millis(self.batch_age_ms),
            gzip: self.gzip,
            auth,
            tls_ca_file: self.tls_ca_file.clone(),
            timeout: Duration::from_secs(self.timeout_secs),
            ..HttpOptions::new(&self.url)
        }
    }
}

impl BuildSink for HttpConfig {
    fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        let url = crate::url::parse(&self.url, FORMS);
        match &url {
            Err(reason) => out.push(ConfigProblem::new("url", reason.clone())),
            Ok(_) if ureq::http::Uri::try_from(self.url.as_str()).is_err() => {
                out.push(ConfigProblem::new(
                    "url",
                    format!(
                        "invalid URL {:?}: its path holds characters a URL cannot \
                         (percent-encode them)",
                        self.url
                    ),
                ));
            }
            Ok(_) => {}
        }
        if self.batch_records < 1 {
            out.push(ConfigProblem::new("batch_records", "must be at least 1"));
        }
        if self.batch_bytes < 1 {
            out.push(ConfigProblem::new("batch_bytes", "must be at least 1"));
        }
        if !self.bearer_token.is_empty() && !self.username.is_empty() {
            out.push(ConfigProblem::new(
                "bearer_token",
                "one kind of credentials: a bearer_token, or a username and password",
            ));
        }
        if self.username.is_empty() && !self.password.is_empty() {
            out.push(ConfigProblem::new(
                "password",
                "is sent only with a username: set username too",
            ));
        }
        if let Some(path) = &self.tls_ca_file {
            if url.as_ref().is_ok_and(|u| u.scheme != "https") {
                out.push(ConfigProblem::new(
                    "tls_ca_file",
                    "applies to TLS only: use an https:// url",
                ));
            } else if let Err(reason) = crate::tls::ca_certificates(path) {
                out.push(ConfigProblem::new("tls_ca_file", reason));
            }
        }
        if self.timeout_secs < 1 {
            out.push(ConfigProblem::new("timeout_secs", "must be at least 1"));
        }
        out
    }

    fn build(&self, _: &SinkContext) -> Result<Box<dyn Sink>, ConfigProblem> {
        if let Some(problem) = self.problems().into_iter().next() {
            return Err(problem);
        }
        Ok(Box::new(HttpSink::new(self.options())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SinkConfig, read_for_test};

    fn read(text: &str) -> Result<HttpConfig, Vec<(String, String)>> {
        match read_for_test("http", text)? {
            SinkConfig::Http(c) => Ok(c),
            #[allow(
                unreachable_patterns,
                reason = "unreachable when it is the only type built"
            )]
            other => panic!("not an http sink: {other:?}"),
        }
    }

    #[test]
    fn every_key_is_read_and_the_rest_default() {
        let c = read(
            "url = \"https://collector.example/ingest\"\nbatch_records = 5\nbatch_bytes = 100\n\
             batch_age_ms = 0\ngzip = true\nusername = \"u\"\npassword = \"p\"\ntimeout_secs = 2\n",
        )
        .unwrap();
        assert_eq!(
            c.options(),
            HttpOptions {
                url: "https://collector.example/ingest".into(),
                batch_records: 5,
                batch_bytes: 100,
                batch_age: Duration::ZERO,
                gzip: true,
                auth: Some(HttpAuth::Basic("u".into(), "p".into())),
                tls_ca_file: None,
                timeout: Duration::from_secs(2),
            }
        );
        let c = read("url = \"http://127.0.0.1:8080/\"\nbearer_token = \"t\"\n").unwrap();
        assert_eq!(
            c.options(),
            HttpOptions {
                auth: Some(HttpAuth::Bearer("t".into())),
                ..HttpOptions::new("http://127.0.0.1:8080/")
            }
        );
    }

    #[test]
    fn a_bad_url_is_named_with_the_fix() {
        for (url, reason) in [
            (
                "",
                "is required: expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH",
            ),
            ("ftp://x/", "unknown scheme \"ftp\""),
            ("collector:80/x", "expected http://HOST[:PORT]/PATH"),
            ("http://u:p@x/", "use the username and password keys"),
            (
                "http://x:99999/",
                "the port must be a number from 1 to 65535",
            ),
            ("http://x/a b", "percent-encode them"),
        ] {
            let got = read(&format!("url = {url:?}\n")).unwrap_err();
            assert_eq!(got.len(), 1, "{url}: {got:?}");
            assert_eq!(got[0].0, "url");
            assert!(got[0].1.contains(reason), "{url}: {got:?}");
        }
    }

    #[test]
    fn every_other_bad_value_is_named() {
        let got = read(
            "url = \"http://x/\"\nbatch_records = 0\nbatch_bytes = 0\nbearer_token = \"t\"\n\
             username = \"u\"\ntls_ca_file = \"/x.pem\"\ntimeout_secs = 0\ngzip = \"yes\"\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "gzip",
                "batch_records",
                "batch_bytes",
                "bearer_token",
                "tls_ca_file",
                "timeout_secs"
            ]
        );
        assert!(got[0].1.contains("invalid type"), "{got:?}");
        assert!(got[4].1.contains("use an https:// url"), "{got:?}");
        let got = read("url = \"http://x/\"\npassword = \"p\"\n").unwrap_err();
        assert_eq!(got[0].0, "password");
    }
}

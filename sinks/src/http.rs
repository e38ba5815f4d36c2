//! The HTTP sink: records POSTed in batches of newline-delimited JSON,
//! optionally gzipped, over HTTP or HTTPS (ureq on rustls).

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flowstat_core::{Delivery, Record, Settled, Sink, SinkError};

use crate::lines::{BUFFER_BYTES, LineBuf, LineWriter};

mod config;

pub use config::HttpConfig;

/// How the sink proves who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpAuth {
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
    /// `Authorization: Basic ...` of a user name and a password.
    Basic(String, String),
}

/// Settings of an [`HttpSink`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// `http://` or `https://` URL the batches are POSTed to.
    pub url: String,
    /// Records in a batch, at most.
    pub batch_records: usize,
    /// Bytes of NDJSON (uncompressed) in a batch, at most; a record larger
    /// than this goes alone.
    pub batch_bytes: usize,
    /// How long the first record of a batch waits for others.
    pub batch_age: Duration,
    /// Gzip each batch (`Content-Encoding: gzip`).
    pub gzip: bool,
    /// Credentials sent with each request.
    pub auth: Option<HttpAuth>,
    /// A PEM file of the CA certificates to trust instead of the Mozilla
    /// roots (HTTPS).
    pub tls_ca_file: Option<PathBuf>,
    /// How long one request may take in all.
    pub timeout: Duration,
}

impl HttpOptions {
    /// Batches of at most 1,000 records, 1 MiB or 1 s, uncompressed, no
    /// credentials, requests of at most 10 s.
    pub fn new(url: &str) -> Self {
        HttpOptions {
            url: url.to_owned(),
            batch_records: 1000,
            batch_bytes: 1 << 20,
            batch_age: Duration::from_secs(1),
            gzip: false,
            auth: None,
            tls_ca_file: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The first and the longest wait before a failed batch is POSTed again.
const RETRY_AFTER: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(30));
/// A batch also goes when no record came for this long: the stream
/// paused (a replay waiting for its sinks at an interval's end, a quiet
/// link), and waiting for the batch's age would only delay it.
const IDLE: Duration = Duration::from_millis(100);
/// How long `close` keeps retrying what it holds.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Bytes of a refusal's body that are logged.
const LOGGED_BODY: usize = 512;

/// POSTs records in batches of NDJSON: when a batch has `batch_records`
/// records or `batch_bytes` bytes, when its first record is `batch_age`
/// old, or when no record came for 100 ms.
///
/// Each record is [`Delivery::Pending`] until its batch is answered: 2xx,
/// sent; 4xx (or any status but 2xx and 5xx), refused and dropped, never
/// retried, its response logged once for a run of refusals; 5xx, a
/// timeout or a connection failure, POSTed again after a backoff (250 ms
/// doubling to 30 s) for as long as the sink runs. One batch is held at a
/// time: while it waits to be retried the sink takes no record (they wait
/// in its queue). `close` POSTs what is left and retries for up to 5 s.
pub struct HttpSink {
    name: String,
    options: HttpOptions,
    agent: Option<ureq::Agent>,
    authorization: Option<String>,
    /// The batch being filled.
    batch: LineWriter<Body>,
    batch_records: u64,
    batch_bytes: usize,
    batch_since: Option<Instant>,
    last_write: Instant,
    /// A batch that failed, and when to POST it again.
    retry: Option<Failed>,
    /// Refusals since the last batch taken (logged: the first).
    refusals: u64,
    settled: Settled,
}

/// A batch whose POST failed, kept to be POSTed again.
struct Failed {
    body: Vec<u8>,
    records: u64,
    attempts: u32,
    at: Instant,
}

/// What became of a POST.
enum Answer {
    /// 2xx.
    Taken,
    /// Refused for good: its status and the start of its body.
    Refused(u16, String),
    /// 5xx, a timeout, a failed connection: worth another try.
    Failed(String),
}

/// A batch's body: plain, or gzipped as it is written.
enum Body {
    Plain(Vec<u8>),
    Gzip(GzEncoder<Vec<u8>>),
}

impl Body {
    fn new(gzip: bool) -> Body {
        if gzip {
            Body::Gzip(GzEncoder::new(Vec::new(), flate2::Compression::fast()))
        } else {
            Body::Plain(Vec::new())
        }
    }

    fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Body::Plain(v) => Ok(v),
            Body::Gzip(gz) => gz.finish(),
        }
    }
}

impl Write for Body {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Body::Plain(v) => v.write(data),
            Body::Gzip(gz) => gz.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl HttpSink {
    /// A sink POSTing to `options.url`, opened by the runtime.
    pub fn new(options: HttpOptions) -> Self {
        let authorization = options.auth.as_ref().map(|auth| match auth {
            HttpAuth::Bearer(token) => format!("Bearer {token}"),
            HttpAuth::Basic(user, password) => {
                use base64::Engine;
                let pair = format!("{user}:{password}");
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                format!("Basic {encoded}")
            }
        });
        HttpSink {
            name: format!("http:{}", options.url),
            batch: LineWriter {
                out: Body::new(options.gzip),
                buf: LineBuf::new(BUFFER_BYTES.min(options.batch_bytes + 1)),
            },
            options,
            agent: None,
            authorization,
            batch_records: 0,
            batch_bytes: 0,
            batch_since: None,
            last_write: Instant::now(),
            retry: None,
            refusals: 0,
            settled: Settled::default(),
        }
    }

    fn error(&self, context: impl Into<String>, e: io::Error) -> SinkError {
        SinkError::io(&self.name, context, e)
    }

    /// Whether the batch being filled must go before it takes more.
    fn batch_full(&self) -> bool {
        self.batch_records as usize >= self.options.batch_records
            || self.batch_bytes >= self.options.batch_bytes
    }

    /// Whether the batch being filled is due: full, old enough, or no
    /// record came for a while.
    fn batch_due(&self) -> bool {
        self.batch_records > 0
            && (self.batch_full()
                || self.last_write.elapsed() >= IDLE
                || self
                    .batch_since
                    .is_some_and(|t| t.elapsed() >= self.options.batch_age))
    }

    /// Ends the batch being filled and POSTs it (a first attempt).
    fn send_batch(&mut self) -> Result<(), SinkError> {
        let (body, records) = self
            .seal()
            .map_err(|e| self.error("cannot build a batch", e))?;
        self.deliver(Failed {
            body,
            records,
            attempts: 0,
            at: Instant::now(),
        });
        Ok(())
    }

    /// Ends the batch being filled: its body and its records.
    fn seal(&mut self) -> io::Result<(Vec<u8>, u64)> {
        self.batch.buf.write_to(&mut self.batch.out)?;
        let body = std::mem::replace(&mut self.batch.out, Body::new(self.options.gzip));
        let records = std::mem::take(&mut self.batch_records);
        self.batch_bytes = 0;
        self.batch_since = None;
        Ok((body.finish()?, records))
    }

    /// POSTs the failed batch again if it is due, then the batch being
    /// filled if it is due and nothing waits to be retried.
    fn drive(&mut self) -> Result<(), SinkError> {
        if self.retry.as_ref().is_some_and(|f| Instant::now() >= f.at)
            && let Some(failed) = self.retry.take()
        {
            self.deliver(failed);
        }
        if self.retry.is_none() && self.batch_due() {
            self.send_batch()?;
        }
        Ok(())
    }

    /// POSTs `batch` and settles its records, or keeps it for a retry.
    fn deliver(&mut self, mut batch: Failed) {
        match self.post(&batch.body) {
            Answer::Taken => {
                if batch.attempts > 0 {
                    tracing::info!("{}: delivering again", self.name);
                }
                self.refusals = 0;
                self.settled.sent += batch.records;
            }
            Answer::Refused(status, body) => {
                if self.refusals == 0 {
                    tracing::warn!(
                        "{}: the server refused a batch of {} records with status {status} \
                         ({body:?}); refused batches are dropped, not retried (logged once \
                         until a batch is taken)",
                        self.name,
                        batch.records
                    );
                }
                self.refusals += 1;
                self.settled.dropped += batch.records;
            }
            Answer::Failed(why) => {
                if batch.attempts == 0 {
                    tracing::warn!(
                        "{}: {why}; the batch of {} records is retried with backoff",
                        self.name,
                        batch.records
                    );
                }
                let wait = RETRY_AFTER.0.saturating_mul(1 << batch.attempts.min(16));
                batch.attempts += 1;
                batch.at = Instant::now() + wait.min(RETRY_AFTER.1);
                self.retry = Some(batch);
            }
        }
    }

    /// One POST of `body`.
    fn post(&self, body: &[u8]) -> Answer {
        let Some(agent) = &self.agent else {
            return Answer::Failed("not open".into());
        };
        let mut request = agent
            .post(&self.options.url)
            .header("Content-Type", "application/x-ndjson");
        if self.options.gzip {
            request = request.header("Content-Encoding", "gzip");
        }
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        match request.send(body) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                if response.status().is_success() {
                    Answer::Taken
                } else if response.status().is_server_error() {
                    Answer::Failed(format!("the server answered {status}"))
                } else {
                    let text = response
                        .body_mut()
                        .with_config()
                        .limit(LOGGED_BODY as u64)
                        .read_to_vec()
                        .unwrap_or_default();
                    Answer::Refused(status, String::from_utf8_lossy(&text).into_owned())
                }
            }
            Err(e) => Answer::Failed(format!("POST failed: {e}")),
        }
    }

    /// The HTTP client: its timeout, no redirects, statuses as answers,
    /// and TLS trusting the CA file's certificates or the Mozilla roots.
    fn agent(&self) -> Result<ureq::Agent, String> {
        use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
        let mut tls = TlsConfig::builder().provider(TlsProvider::Rustls);
        if let Some(path) = &self.options.tls_ca_file {
            let certs: Vec<Certificate<'static>> = crate::tls::ca_certificates(path)?
                .iter()
                .map(|c| Certificate::from_der(c).to_owned())
                .collect();
            tls = tls.root_certs(RootCerts::new_with_certs(&certs));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(self.options.timeout))
            .user_agent(format!("flowstatd/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build();
        Ok(config.into())
    }
}

impl Sink for HttpSink {
    fn name(&self) -> &str {
        &self.name
    }

    /// Makes the HTTP client; connections are made as batches go.
    fn open(&mut self) -> Result<(), SinkError> {
        let agent = self
            .agent()
            .map_err(|e| self.error("cannot set up TLS", io::Error::other(e)))?;
        self.agent = Some(agent);
        Ok(())
    }

    /// POSTs what is due; says no while a batch waits to be retried.
    fn poll(&mut self) -> Result<bool, SinkError> {
        self.drive()?;
        Ok(self.retry.is_none())
    }

    fn write(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        if self.retry.is_some() {
            return Ok(Delivery::Retry);
        }
        let len = record.json.len() + 1;
        if self.batch_records > 0 && self.batch_bytes + len > self.options.batch_bytes {
            // It would take the batch past its size: the batch is full,
            // and goes first.
            self.batch_bytes = self.options.batch_bytes;
            self.drive()?;
            if self.retry.is_some() {
                return Ok(Delivery::Retry);
            }
        }
        self.batch
            .write(&record.json)
            .map_err(|e| self.error("cannot build a batch", e))?;
        self.batch_records += 1;
        self.batch_bytes += len;
        self.batch_since.get_or_insert_with(Instant::now);
        self.last_write = Instant::now();
        if self.batch_full() {
            self.drive()?;
        }
        Ok(Delivery::Pending)
    }

    /// POSTs the batch if it is due (the queue is empty: it will not fill
    /// sooner).
    fn flush(&mut self) -> Result<(), SinkError> {
        self.drive()
    }

    /// POSTs what is left, retrying for up to 5 s.
    fn close(&mut self) -> Result<(), SinkError> {
        let deadline = Instant::now() + CLOSE_WAIT;
        loop {
            if let Some(failed) = self.retry.take() {
                if failed.at > deadline {
                    self.retry = Some(failed);
                    return Ok(());
                }
                std::thread::sleep(failed.at.saturating_duration_since(Instant::now()));
                self.deliver(failed);
            } else if self.batch_records > 0 {
                self.send_batch()?;
            } else {
                return Ok(());
            }
        }
    }

    fn settled(&mut self) -> Settled {
        std::mem::take(&mut self.settled)
    }
}

#[cfg(test)]
mod tests;

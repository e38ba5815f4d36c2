//! An HTTP collector on 127.0.0.1 for the HTTP sink's tests and bench: it
//! answers each request with the status a script gives for its number,
//! and keeps what it was sent (request line, headers, body). Plain HTTP,
//! or HTTPS with a certificate of [`certs`](crate::certs).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request the collector answered.
#[derive(Clone, Debug)]
pub struct Request {
    /// `POST /ingest`.
    pub line: String,
    /// Its headers, names in lowercase.
    pub headers: Vec<(String, String)>,
    /// Its body, as sent.
    pub body: Vec<u8>,
    /// The status it was answered.
    pub status: u16,
}

impl Request {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body's lines, gunzipped if it says `Content-Encoding: gzip`.
    pub fn lines(&self) -> Vec<String> {
        let mut text = String::new();
        if self.header("content-encoding") == Some("gzip") {
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_string(&mut text)
                .expect("a gzip body");
        } else {
            text = String::from_utf8(self.body.clone()).expect("a UTF-8 body");
        }
        text.lines().map(str::to_owned).collect()
    }
}

/// What the collector saw.
#[derive(Default)]
struct Seen {
    requests: Vec<Request>,
    /// Requests answered, kept or not.
    count: usize,
    /// Lines of the bodies answered 2xx, kept or not.
    lines: u64,
}

/// The collector; stopped on drop.
pub struct Collector {
    addr: SocketAddr,
    tls: bool,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    /// Answers request `n` (from 0) with `status(n)`, keeping every
    /// request. Status 0: no answer; the connection is closed after 3 s.
    pub fn start(status: impl Fn(usize) -> u16 + Send + Sync + 'static) -> Collector {
        Collector::run(status, true)
    }

    /// Answers every request 200 and counts the lines of the bodies
    /// (uncompressed), keeping nothing: for the bench.
    pub fn counting() -> Collector {
        Collector::run(|_| 200, false)
    }

    /// As [`start`](Collector::start), over TLS with the server
    /// certificate of `certs`.
    pub fn start_tls(
        status: impl Fn(usize) -> u16 + Send + Sync + 'static,
        certs: &crate::certs::Certs,
    ) -> Collector {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certs.cert)
            .and_then(|c| c.collect())
            .expect("the server certificate");
        let key = PrivateKeyDer::from_pem_file(&certs.key).expect("the server key");
        #[allow(deprecated, reason = "the sinks' provider: ring")]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("a server configuration");
        Collector::launch(status, true, Some(Arc::new(config)))
    }

    fn run(status: impl Fn(usize) -> u16 + Send + Sync + 'static, keep: bool) -> Collector {
        Collector::launch(status, keep, None)
    }

    fn launch(
        status: impl Fn(usize) -> u16 + Send + Sync + 'static,
        keep: bool,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(status);
        let is_tls = tls.is_some();
        let thread = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (seen, status, tls) = (Arc::clone(&seen), Arc::clone(&status), tls.clone());
                    std::thread::spawn(move || match tls {
                        None => serve(conn, &seen, &*status, keep),
                        Some(config) => {
                            let Ok(server) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            let stream = rustls::StreamOwned::new(server, conn);
                            serve(stream, &seen, &*status, keep)
                        }
                    });
                }
            })
        };
        Collector {
            addr,
            tls: is_tls,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT{path}` (`https://` over TLS).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// The requests kept so far.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().expect("lock").requests.clone()
    }

    /// Lines of the bodies answered 2xx so far.
    pub fn lines_accepted(&self) -> u64 {
        self.seen.lock().expect("lock").lines
    }

    /// Waits until `done` says the requests kept are all there, or 20 s
    /// passed; returns them.
    pub fn wait_for(&self, mut done: impl FnMut(&[Request]) -> bool) -> Vec<Request> {
        let start = Instant::now();
        loop {
            let requests = self.requests();
            if done(&requests) || start.elapsed() > Duration::from_secs(20) {
                return requests;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accepting thread.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers the requests of one connection until the client closes it.
fn serve(conn: impl Read + Write, seen: &Mutex<Seen>, status: &dyn Fn(usize) -> u16, keep: bool) {
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let mut request = Request {
            line: line.trim_end().to_owned(),
            headers,
            body: Vec::new(),
            status: 0,
        };
        let len: usize = request
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .expect("a request with Content-Length");
        request.body = vec![0; len];
        if reader.read_exact(&mut request.body).is_err() {
            return;
        }
        let reply = {
            let mut seen = seen.lock().expect("lock");
            request.status = status(seen.count);
            seen.count += 1;
            if (200..300).contains(&request.status) {
                seen.lines += if request.header("content-encoding") == Some("gzip") {
                    request.lines().len() as u64
                } else {
                    request.body.iter().filter(|b| **b == b'\n').count() as u64
                };
            }
            let reply = match request.status {
                0 => String::new(),
                status => {
                    format!("HTTP/1.1 {status} Collector\r\ncontent-length: 9\r\n\r\nanswered\n")
                }
            };
            if keep {
                seen.requests.push(request);
            }
            reply
        };
        if reply.is_empty() {
            std::thread::sleep(Duration::from_secs(3));
            return;
        }
        let out = reader.get_mut();
        if out
            .write_all(reply.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}

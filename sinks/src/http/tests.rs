//! The HTTP sink against a collector on 127.0.0.1 that answers what each
//! test scripts.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use flowstat_core::{KindSet, RecordKind};
use flowstat_tests::collector::{Collector, Request};

use super::*;
use crate::runtime::{SinkOptions, SinkRuntime};

fn record(n: usize) -> Record {
    Record {
        kind: RecordKind::FlowStats,
        json: format!("{{\"type\":\"flow_stats\",\"n\":{n}}}").into_bytes(),
    }
}

/// The lines of the requests answered 2xx, in order.
fn accepted(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.status == 200)
        .flat_map(Request::lines)
        .collect()
}

/// Polls `sink` until it settled `n` records (panics after 10 s).
fn settle(sink: &mut HttpSink, n: u64) -> Settled {
    let start = Instant::now();
    let mut total = Settled::default();
    while total.sent + total.dropped < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "settled {total:?} of {n}"
        );
        sink.poll().unwrap();
        let s = sink.settled();
        total.sent += s.sent;
        total.dropped += s.dropped;
        std::thread::sleep(Duration::from_millis(1));
    }
    total
}

#[test]
fn every_record_arrives_once_in_gzip_batches_though_the_first_posts_fail() {
    let collector = Collector::start(|n| if n < 3 { 503 } else { 200 });
    let mut options = HttpOptions::new(&collector.url("/ingest"));
    options.batch_records = 100;
    options.gzip = true;
    options.auth = Some(HttpAuth::Bearer("s3cret".into()));
    let mut runtime = SinkRuntime::new().with_patience(SinkRuntime::REPLAY_PATIENCE);
    runtime
        .add(
            Box::new(HttpSink::new(options)),
            SinkOptions::new(KindSet::ALL),
        )
        .unwrap();
    for chunk in 0..10 {
        runtime.publish((0..100).map(|i| record(chunk * 100 + i)));
    }
    let status = runtime.finish(Duration::from_secs(30)).remove(0);
    assert_eq!((status.sent, status.dropped), (1000, 0), "{status:?}");
    let requests = collector.requests();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses[..3], [503, 503, 503]);
    let want: Vec<String> = (0..1000)
        .map(|n| String::from_utf8(record(n).json).unwrap())
        .collect();
    assert_eq!(accepted(&requests), want, "each record once, in order");
    for r in &requests {
        assert_eq!(r.line, "POST /ingest HTTP/1.1");
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(r.header("authorization"), Some("Bearer s3cret"));
        assert!(r.body.starts_with(&[0x1f, 0x8b]), "not gzip");
        assert!(r.lines().len() <= 100);
    }
}

#[test]
fn a_refused_batch_is_dropped_and_never_retried() {
    let collector = Collector::start(|n| if n == 1 { 400 } else { 200 });
    let mut options = HttpOptions::new(&collector.url("/"));
    options.batch_records = 100;
    options.auth = Some(HttpAuth::Basic("user".into(), "pass".into()));
    let mut sink = HttpSink::new(options);
    sink.open().unwrap();
    for n in 0..300 {
        assert_eq!(sink.write(&record(n)).unwrap(), Delivery::Pending);
    }
    assert_eq!(
        settle(&mut sink, 300),
        Settled {
            sent: 200,
            dropped: 100
        }
    );
    sink.close().unwrap();
    let requests = collector.requests();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 400, 200], "no retry of the refused batch");
    let got = accepted(&requests);
    let distinct: HashSet<&String> = got.iter().collect();
    assert_eq!((got.len(), distinct.len()), (200, 200));
    assert!(requests[1].lines()[0].ends_with("\"n\":100}"));
    // user:pass
    assert_eq!(
        requests[0].header("authorization"),
        Some("Basic dXNlcjpwYXNz")
    );
    assert_eq!(requests[0].header("content-encoding"), None);
}

#[test]
fn batches_are_cut_at_their_size_and_sent_when_old_enough() {
    let collector = Collector::start(|_| 200);
    let mut options = HttpOptions::new(&collector.url("/"));
    let len = record(0).json.len() + 1;
    options.batch_bytes = 3 * len;
    options.batch_age = Duration::from_millis(20);
    let mut sink = HttpSink::new(options);
    sink.open().unwrap();
    for n in 0..7 {
        assert_eq!(sink.write(&record(n)).unwrap(), Delivery::Pending);
    }
    // Two full batches went; the seventh record waits for its age.
    assert_eq!(sink.settled().sent, 6);
    assert_eq!(settle(&mut sink, 1).sent, 1);
    let sizes: Vec<usize> = collector
        .requests()
        .iter()
        .map(|r| r.lines().len())
        .collect();
    assert_eq!(sizes, [3, 3, 1]);
    // A record larger than a batch goes alone.
    let big = Record {
        kind: RecordKind::Flow,
        json: vec![b'x'; 10 * len],
    };
    assert_eq!(sink.write(&big).unwrap(), Delivery::Pending);
    sink.close().unwrap();
    assert_eq!(sink.settled().sent, 1);
    let last = collector.requests().pop().unwrap();
    assert_eq!(last.body.len(), 10 * len + 1);
}

#[test]
fn what_the_server_never_takes_is_dropped_at_close() {
    let collector = Collector::start(|_| 503);
    let mut sink = HttpSink::new(HttpOptions::new(&collector.url("/")));
    sink.open().unwrap();
    assert_eq!(sink.write(&record(0)).unwrap(), Delivery::Pending);
    let start = Instant::now();
    sink.close().unwrap();
    assert!(start.elapsed() < CLOSE_WAIT + Duration::from_secs(2));
    // Never settled: the runtime counts it dropped.
    assert_eq!(sink.settled(), Settled::default());
    assert!(collector.requests().len() > 1, "retried while closing");
}

#[test]
fn batches_go_over_https_to_a_collector_whose_ca_is_trusted_and_only_then() {
    let dir = std::env::temp_dir().join(format!("flowstat-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let certs = flowstat_tests::certs::make(&dir);
    let collector = Collector::start_tls(|_| 200, &certs);
    let url = collector.url("/tls");
    assert!(url.starts_with("https://127.0.0.1:"));
    let mut options = HttpOptions::new(&url);
    options.tls_ca_file = Some(certs.ca.clone());
    let mut sink = HttpSink::new(options);
    sink.open().unwrap();
    for n in 0..10 {
        assert_eq!(sink.write(&record(n)).unwrap(), Delivery::Pending);
    }
    sink.close().unwrap();
    assert_eq!(sink.settled().sent, 10);
    assert_eq!(accepted(&collector.requests()).len(), 10);

    // The Mozilla roots do not vouch for the test CA.
    let mut sink = HttpSink::new(HttpOptions::new(&url));
    sink.open().unwrap();
    match sink.post(b"{}\n") {
        Answer::Failed(why) => assert!(why.contains("certificate"), "{why}"),
        _ => panic!("an untrusted server was sent a batch"),
    }
    assert_eq!(collector.requests().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_post_that_times_out_is_retried() {
    // The first POST is never answered.
    let collector = Collector::start(|n| if n == 0 { 0 } else { 200 });
    let mut options = HttpOptions::new(&collector.url("/"));
    options.timeout = Duration::from_secs(1);
    let mut sink = HttpSink::new(options);
    sink.open().unwrap();
    for n in 0..10 {
        assert_eq!(sink.write(&record(n)).unwrap(), Delivery::Pending);
    }
    assert_eq!(settle(&mut sink, 10).sent, 10);
    let requests = collector.requests();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [0, 200]);
    assert_eq!(requests[0].body, requests[1].body, "the same batch again");
    assert_eq!(accepted(&requests).len(), 10);
}

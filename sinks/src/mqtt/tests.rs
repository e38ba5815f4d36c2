//! The MQTT sink against a real broker: Debian's mosquitto, started here
//! on 127.0.0.1 and a free port, with mosquitto_sub subscribers.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use flowstat_core::KindSet;
use flowstat_tests::mosquitto::Broker;

use super::*;
use crate::runtime::{SinkOptions, SinkRuntime};

/// A sink to `broker` at `qos`, for host `test-host`.
fn sink(broker: &Broker, qos: Qos) -> MqttSink {
    let mut o = MqttOptions::new("127.0.0.1", broker.port);
    o.hostname = "test-host".into();
    o.qos = qos;
    o.client_id = "flowstatd-test".into();
    MqttSink::new(o)
}

fn record(kind: RecordKind, n: usize) -> Record {
    Record {
        kind,
        json: format!("{{\"type\":\"{}\",\"n\":{n}}}", kind.as_str()).into_bytes(),
    }
}

/// Polls `sink` until it settled `n` records (panics after 10 s).
fn settle(sink: &mut MqttSink, n: u64) -> Settled {
    let start = Instant::now();
    let mut total = Settled::default();
    while total.sent + total.dropped < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "settled {total:?} of {n}"
        );
        assert!(sink.poll().unwrap());
        let s = sink.settled();
        total.sent += s.sent;
        total.dropped += s.dropped;
        std::thread::sleep(Duration::from_millis(1));
    }
    total
}

#[test]
fn each_subscriber_gets_its_types_records_in_order_once_acknowledged() {
    for qos in [Qos::AtLeastOnce, Qos::AtMostOnce] {
        let broker = Broker::start("topics");
        let flows = broker.subscribe("flows", "flowstat/test-host/flow");
        let purges = broker.subscribe("purges", "flowstat/+/flow_purge");
        let mut sink = sink(&broker, qos);
        sink.open().unwrap();
        let kinds = [
            RecordKind::Flow,
            RecordKind::FlowPurge,
            RecordKind::FlowStats,
        ];
        for n in 0..300 {
            let r = record(kinds[n % 3], n);
            assert_eq!(sink.write(&r).unwrap(), Delivery::Pending, "{qos:?}");
        }
        sink.flush().unwrap();
        assert_eq!(
            settle(&mut sink, 300),
            Settled {
                sent: 300,
                dropped: 0
            },
            "{qos:?}"
        );
        sink.close().unwrap();
        for (sub, kind) in [(&flows, RecordKind::Flow), (&purges, RecordKind::FlowPurge)] {
            let want: Vec<String> = (0..300)
                .filter(|n| kinds[n % 3] == kind)
                .map(|n| String::from_utf8(record(kind, n).json).unwrap())
                .collect();
            let got = sub.wait_for(|l| l.len() >= want.len());
            assert_eq!(got, want, "{qos:?} {kind:?}");
        }
    }
}

#[test]
fn at_qos_1_the_window_of_unacknowledged_records_is_bounded() {
    let broker = Broker::start("window");
    let mut o = MqttOptions::new("127.0.0.1", broker.port);
    o.inflight = 5;
    let mut sink = MqttSink::new(o);
    sink.open().unwrap();
    // A broker that does not answer: nothing is acknowledged.
    broker.signal("-STOP");
    let mut taken = 0;
    while sink.write(&record(RecordKind::Flow, taken)).unwrap() == Delivery::Pending {
        taken += 1;
        assert!(taken <= 5, "took more than its window");
    }
    assert!(sink.poll().unwrap());
    assert_eq!(sink.settled(), Settled::default());
    broker.signal("-CONT");
    assert_eq!(taken, 5);
    assert_eq!(settle(&mut sink, 5).sent, 5);
    assert_eq!(
        sink.write(&record(RecordKind::Flow, 5)).unwrap(),
        Delivery::Pending,
        "room again once acknowledged"
    );
    sink.close().unwrap();
    assert_eq!(sink.settled().sent, 1);
}

#[test]
fn a_broker_restart_mid_stream_loses_no_record_it_acknowledged() {
    const PRODUCED: usize = 45_000;
    let kinds = [
        RecordKind::Flow,
        RecordKind::FlowStats,
        RecordKind::FlowPurge,
    ];
    let mut broker = Broker::start("restart");
    let subscribers: Vec<_> = kinds
        .iter()
        .map(|k| {
            let topic = format!("flowstat/test-host/{}", k.as_str());
            (*k, broker.subscribe(k.as_str(), &topic))
        })
        .collect();
    let mut runtime = SinkRuntime::new().with_patience(SinkRuntime::REPLAY_PATIENCE);
    let options = SinkOptions {
        queue_records: 1000,
        ..SinkOptions::new(KindSet::ALL)
    };
    runtime
        .add(Box::new(sink(&broker, Qos::AtLeastOnce)), options)
        .unwrap();
    let runtime = std::sync::Arc::new(runtime);
    let restarted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The stream goes on past the restart: the last quarter waits for it.
    let publisher = {
        let (runtime, restarted) = (runtime.clone(), restarted.clone());
        std::thread::spawn(move || {
            for chunk in 0..PRODUCED / 99 + 1 {
                if chunk * 99 >= PRODUCED * 3 / 4 {
                    while !restarted.load(std::sync::atomic::Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                let n = (chunk * 99..(chunk + 1) * 99).take_while(|n| *n < PRODUCED);
                runtime.publish(n.map(|n| record(kinds[n % 3], n)));
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    // Restart while records flow: some sent, some held unacknowledged.
    let start = Instant::now();
    while runtime.status()[0].sent < (PRODUCED / 4) as u64 {
        assert!(start.elapsed() < Duration::from_secs(30), "no progress");
        std::thread::sleep(Duration::from_millis(1));
    }
    broker.restart();
    let at_restart = runtime.status()[0].sent;
    restarted.store(true, std::sync::atomic::Ordering::Relaxed);
    publisher.join().unwrap();
    let runtime = std::sync::Arc::into_inner(runtime).unwrap();
    let status = runtime.finish(Duration::from_secs(30)).remove(0);
    assert!(
        at_restart < PRODUCED as u64,
        "the stream ended before the restart"
    );
    assert_eq!(
        (status.sent, status.dropped),
        (PRODUCED as u64, 0),
        "the restarted broker got every record, the unacknowledged ones again"
    );
    // Each subscriber: only its type, each record at least once (QoS 1
    // may repeat what was published again).
    let mut received = HashSet::new();
    for (kind, sub) in &subscribers {
        let want = PRODUCED / 3;
        let got = sub.wait_for(|l| l.iter().collect::<HashSet<_>>().len() >= want);
        let prefix = format!("{{\"type\":\"{}\",", kind.as_str());
        assert!(
            got.iter().all(|l| l.starts_with(&prefix)),
            "{kind:?}: other types"
        );
        received.extend(got);
    }
    assert_eq!(
        received.len() as u64 + status.dropped,
        PRODUCED as u64,
        "received + dropped = produced ({status:?})"
    );
    assert!(
        received.iter().all(|l| {
            let n = l.rsplit_once("\"n\":").unwrap().1.trim_end_matches('}');
            n.parse::<usize>().unwrap() < PRODUCED
        }),
        "unknown records"
    );
}

#[test]
fn records_go_over_tls_to_a_broker_whose_ca_is_trusted_and_only_then() {
    let broker = Broker::start_tls("tls");
    let sub = broker.subscribe("tls", "flowstat/+/flow");
    let mut o = MqttOptions::new("127.0.0.1", broker.port);
    o.tls = true;
    o.ca_file = Some(broker.ca().unwrap().to_owned());
    let mut sink = MqttSink::new(o);
    sink.open().unwrap();
    for n in 0..50 {
        assert_eq!(
            sink.write(&record(RecordKind::Flow, n)).unwrap(),
            Delivery::Pending
        );
    }
    sink.flush().unwrap();
    assert_eq!(settle(&mut sink, 50).sent, 50);
    sink.close().unwrap();
    let want: Vec<String> = (0..50)
        .map(|n| String::from_utf8(record(RecordKind::Flow, n).json).unwrap())
        .collect();
    assert_eq!(sub.wait_for(|l| l.len() >= 50), want);

    // The Mozilla roots do not vouch for the test CA.
    let mut o = MqttOptions::new("127.0.0.1", broker.port);
    o.tls = true;
    let e = MqttSink::new(o).open().unwrap_err();
    let cause = std::error::Error::source(&e).unwrap().to_string();
    assert!(cause.contains("invalid peer certificate"), "{e}: {cause}");
}

use flowstat_core::{KindSet, Record, Sink, SinkError, SinkStatus};

struct Subscribed {
    sink: Box<dyn Sink>,
    kinds: KindSet,
    sent: u64,
    dropped: u64,
}

/// The configured sinks, each with the record types it subscribed to.
#[derive(Default)]
pub struct SinkSet {
    sinks: Vec<Subscribed>,
}

impl SinkSet {
    /// No sinks.
    pub fn new() -> Self {
        SinkSet::default()
    }

    /// Adds `sink`, receiving the records of `kinds`.
    pub fn add(&mut self, sink: Box<dyn Sink>, kinds: KindSet) {
        self.sinks.push(Subscribed {
            sink,
            kinds,
            sent: 0,
            dropped: 0,
        });
    }

    /// Writes `record` to every sink subscribed to its kind. A sink that
    /// fails does not keep the record from the others: its drop is counted
    /// and the first failure returned.
    pub fn write(&mut self, record: &Record) -> Result<(), SinkError> {
        let mut first = Ok(());
        for s in &mut self.sinks {
            if s.kinds.contains(record.kind) {
                match s.sink.write(record) {
                    Ok(()) => s.sent += 1,
                    Err(e) => {
                        s.dropped += 1;
                        if first.is_ok() {
                            first = Err(e);
                        }
                    }
                }
            }
        }
        first
    }

    /// The kinds at least one sink subscribed to: the only ones worth
    /// encoding.
    pub fn wanted(&self) -> KindSet {
        self.sinks
            .iter()
            .fold(KindSet::EMPTY, |k, s| k.union(s.kinds))
    }

    /// Flushes every sink.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.sinks.iter_mut().try_for_each(|s| s.sink.flush())
    }

    /// Delivery counters per sink.
    pub fn status(&self) -> Vec<SinkStatus> {
        self.sinks
            .iter()
            .map(|s| SinkStatus {
                name: s.sink.name().to_owned(),
                queued: 0,
                sent: s.sent,
                dropped: s.dropped,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowstat_core::RecordKind;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Collect(Arc<Mutex<Vec<RecordKind>>>);

    impl Sink for Collect {
        fn name(&self) -> &str {
            "collect"
        }
        fn write(&mut self, record: &Record) -> Result<(), SinkError> {
            self.0.lock().unwrap().push(record.kind);
            Ok(())
        }
    }

    #[test]
    fn sinks_get_only_what_they_subscribed_to() {
        let (all, purges) = (Collect::default(), Collect::default());
        let mut set = SinkSet::new();
        set.add(Box::new(all.clone()), KindSet::ALL);
        set.add(
            Box::new(purges.clone()),
            KindSet::of(&[RecordKind::FlowPurge]),
        );
        assert_eq!(set.wanted(), KindSet::ALL);
        for kind in [
            RecordKind::Flow,
            RecordKind::FlowPurge,
            RecordKind::AgentStatus,
        ] {
            set.write(&Record {
                kind,
                json: b"{}".to_vec(),
            })
            .unwrap();
        }
        assert_eq!(all.0.lock().unwrap().len(), 3);
        assert_eq!(*purges.0.lock().unwrap(), vec![RecordKind::FlowPurge]);
        let sent: Vec<u64> = set.status().iter().map(|s| s.sent).collect();
        assert_eq!(sent, vec![3, 1]);
    }
}

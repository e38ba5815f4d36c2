use flowstat_core::{Record, RecordKind, Sink, SinkError, SinkStatus};

struct Subscribed {
    sink: Box<dyn Sink>,
    /// Bit `k as u8` set for each subscribed [`RecordKind`].
    kinds: u16,
    sent: u64,
}

/// The configured sinks, each with the record types it subscribed to.
#[derive(Default)]
pub struct SinkSet {
    sinks: Vec<Subscribed>,
}

fn bit(kind: RecordKind) -> u16 {
    1 << kind as u16
}

impl SinkSet {
    /// No sinks.
    pub fn new() -> Self {
        SinkSet::default()
    }

    /// Adds `sink`, receiving the records of `kinds` (all kinds when empty).
    pub fn add(&mut self, sink: Box<dyn Sink>, kinds: &[RecordKind]) {
        let kinds = if kinds.is_empty() {
            u16::MAX
        } else {
            kinds.iter().fold(0, |m, &k| m | bit(k))
        };
        self.sinks.push(Subscribed {
            sink,
            kinds,
            sent: 0,
        });
    }

    /// Writes `record` to every sink subscribed to its kind.
    pub fn write(&mut self, record: &Record) -> Result<(), SinkError> {
        for s in &mut self.sinks {
            if s.kinds & bit(record.kind) != 0 {
                s.sink.write(record)?;
                s.sent += 1;
            }
        }
        Ok(())
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
                dropped: 0,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        set.add(Box::new(all.clone()), &[]);
        set.add(Box::new(purges.clone()), &[RecordKind::FlowPurge]);
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

//! Replay on several workers: the merger that writes their records in
//! the order one worker would, and ends each interval.
//!
//! Each worker sends its records in its own record order, each with its
//! [`Position`], and a bound after every batch of packets: every record it
//! sends later in the interval is at or after the bound. The merger writes
//! the record at the smallest position as soon as no other worker can
//! still send a smaller one; at an interval's end, once every worker has
//! sent its report, it merges them with the reader's part of the interval
//! and runs the reducer. Memory stays bounded: the channels are bounded,
//! and records go to the sinks as they are merged.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use flowstat_core::{Record, Records, Snapshot};
use flowstat_sinks::SinkRuntime;

use crate::interval::{CapturePart, Reducer, SourceReport};
use crate::worker::{Deliver, Position};

/// Records merged before they are published.
const PUBLISH_BATCH: usize = 256;

/// The longest an interval end waits for the sinks to write what came
/// before it, so that the counters in its `agent_status` do not depend on
/// timing.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a worker sends the merger.
#[derive(Debug)]
pub enum Out {
    /// Records in the worker's order, with their positions; every record
    /// it sends later in the interval is at or after `bound`.
    Records {
        /// The records.
        records: Vec<Record>,
        /// Each record's position.
        positions: Vec<Position>,
        /// The bound.
        bound: Position,
    },
    /// The interval (or the source) ended: the worker's reports, by
    /// source id. Records after it belong to the next interval.
    Report(Vec<SourceReport>),
}

/// The end of an interval, as the reader saw it.
#[derive(Debug)]
pub struct IntervalEnd {
    /// The source whose interval ended.
    pub source: usize,
    /// The reader's part (its `reports` are filled in by the merger).
    pub part: CapturePart,
}

/// A worker's [`Deliver`]: its records go to the merger.
pub struct Lane(pub crossbeam_channel::Sender<Out>);

impl Deliver for Lane {
    fn deliver(&mut self, records: &mut Records, positions: &mut Vec<Position>, bound: Position) {
        let out = Out::Records {
            records: records.take(),
            positions: std::mem::take(positions),
            bound,
        };
        // The merger stops only after the workers: a failed send means
        // the replay is being torn down.
        let _ = self.0.send(out);
    }
}

/// One worker as the merger sees it.
struct Input {
    rx: Receiver<Out>,
    queue: VecDeque<(Position, Record)>,
    bound: Position,
    report: Option<Vec<SourceReport>>,
    /// The worker has stopped (its channel is closed).
    done: bool,
}

impl Input {
    /// Whether a record at `at` from another worker may be written: this
    /// one cannot send anything before it.
    fn allows(&self, at: &Position) -> bool {
        !self.queue.is_empty() || self.report.is_some() || self.done || self.bound >= *at
    }

    /// Takes the worker's next message.
    fn take(&mut self, msg: Result<Out, crossbeam_channel::RecvError>) {
        match msg {
            Ok(Out::Records {
                records,
                positions,
                bound,
            }) => {
                self.queue.extend(positions.into_iter().zip(records));
                self.bound = bound;
            }
            Ok(Out::Report(r)) => self.report = Some(r),
            Err(_) => self.done = true,
        }
    }
}

/// What the merger does next.
enum Step {
    /// Write the head record of this worker's queue.
    Write(usize),
    /// Wait for this worker: it may still send a record before the
    /// smallest one queued.
    Wait(usize),
    /// Nothing is queued: wait for whichever worker that has not reported
    /// sends first (waiting for one in particular could wait for a worker
    /// that waits for the reader, while the reader waits for another that
    /// waits for the merger).
    WaitAny,
    /// Every worker has reported: end the interval.
    EndInterval,
    /// Every worker has stopped.
    Done,
}

/// Merges the workers' records (`workers`, one channel each) into `sinks`
/// and ends each interval the reader announces on `ends`. Returns the
/// sinks and the last interval's snapshot when every worker has stopped.
pub fn run(
    workers: Vec<Receiver<Out>>,
    ends: &Receiver<IntervalEnd>,
    mut reducer: Reducer,
    sinks: SinkRuntime,
) -> (SinkRuntime, Option<Arc<Snapshot>>) {
    let mut inputs: Vec<Input> = workers
        .into_iter()
        .map(|rx| Input {
            rx,
            queue: VecDeque::new(),
            bound: Position::Packet(0),
            report: None,
            done: false,
        })
        .collect();
    let mut merged = Vec::with_capacity(PUBLISH_BATCH);
    let mut snapshot = None;
    loop {
        let step = next_step(&inputs);
        if !matches!(step, Step::Write(_)) && !merged.is_empty() {
            sinks.publish(merged.drain(..));
        }
        match step {
            Step::Write(i) => {
                if let Some((_, record)) = inputs[i].queue.pop_front() {
                    merged.push(record);
                }
                if merged.len() >= PUBLISH_BATCH {
                    sinks.publish(merged.drain(..));
                }
            }
            Step::Wait(i) => {
                let msg = inputs[i].rx.recv();
                inputs[i].take(msg);
            }
            Step::WaitAny => {
                let waiting: Vec<usize> = (0..inputs.len())
                    .filter(|&i| inputs[i].report.is_none() && !inputs[i].done)
                    .collect();
                let mut select = crossbeam_channel::Select::new();
                for &i in &waiting {
                    select.recv(&inputs[i].rx);
                }
                let oper = select.select();
                let i = waiting[oper.index()];
                let msg = oper.recv(&inputs[i].rx);
                inputs[i].take(msg);
            }
            Step::EndInterval => {
                let mut reports = Vec::new();
                for input in &mut inputs {
                    if let Some(r) = input.report.take() {
                        crate::interval::merge_reports(&mut reports, &r);
                    }
                    input.bound = Position::Packet(0);
                }
                let Ok(IntervalEnd { source, mut part }) = ends.recv() else {
                    break;
                };
                part.reports = vec![reports.get(source).copied().unwrap_or_default()];
                sinks.settle(SETTLE_TIMEOUT);
                let (snap, records) = reducer.end_interval(part, sinks.status());
                sinks.publish(records);
                snapshot = Some(snap);
            }
            Step::Done => break,
        }
    }
    (sinks, snapshot)
}

/// The merger's next step.
fn next_step(inputs: &[Input]) -> Step {
    let head = inputs
        .iter()
        .enumerate()
        .filter_map(|(i, input)| input.queue.front().map(|(at, _)| (at, i)))
        .min();
    if let Some((at, i)) = head {
        return match inputs.iter().position(|input| !input.allows(at)) {
            Some(blocking) => Step::Wait(blocking),
            None => Step::Write(i),
        };
    }
    if inputs
        .iter()
        .any(|input| input.report.is_none() && !input.done)
    {
        Step::WaitAny
    } else if inputs.iter().any(|input| input.report.is_some()) {
        Step::EndInterval
    } else {
        Step::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowstat_core::{KindSet, RecordKind, Timestamp};

    fn record(n: u64) -> Record {
        Record {
            kind: RecordKind::Flow,
            json: n.to_string().into_bytes(),
        }
    }

    fn input(items: &[(u64, u64)], bound: Position) -> Input {
        let (_, rx) = crossbeam_channel::unbounded();
        Input {
            rx,
            queue: items
                .iter()
                .map(|&(seq, n)| (Position::Packet(seq), record(n)))
                .collect(),
            bound,
            report: None,
            done: false,
        }
    }

    #[test]
    fn the_smallest_position_goes_first_once_no_worker_can_undercut_it() {
        // Worker 0 has packet 3's record; worker 1 has packet 5's and has
        // seen every packet up to 9.
        let inputs = [
            input(&[(3, 30)], Position::Packet(4)),
            input(&[(5, 50)], Position::Packet(10)),
        ];
        assert!(matches!(next_step(&inputs), Step::Write(0)));
        // Worker 1 may still send records of packets 2 to 9: wait for it.
        let inputs = [
            input(&[(3, 30)], Position::Packet(4)),
            input(&[], Position::Packet(2)),
        ];
        assert!(matches!(next_step(&inputs), Step::Wait(1)));
        let inputs = [
            input(&[(3, 30)], Position::Packet(4)),
            input(&[], Position::Packet(3)),
        ];
        assert!(matches!(next_step(&inputs), Step::Write(0)));
    }

    #[test]
    fn an_interval_ends_when_every_worker_reported() {
        let mut a = input(&[], Position::End);
        let mut b = input(&[], Position::End);
        a.report = Some(vec![]);
        assert!(matches!(next_step(&[a, b]), Step::WaitAny));
        let mut a = input(&[], Position::End);
        a.report = Some(vec![]);
        b = input(&[], Position::End);
        b.report = Some(vec![]);
        assert!(matches!(next_step(&[a, b]), Step::EndInterval));
    }

    #[test]
    fn workers_records_come_out_in_position_order() {
        let (tx0, rx0) = crossbeam_channel::unbounded();
        let (tx1, rx1) = crossbeam_channel::unbounded();
        let (end_tx, ends) = crossbeam_channel::unbounded();
        let send = |tx: &crossbeam_channel::Sender<Out>, items: &[(Position, u64)], bound| {
            tx.send(Out::Records {
                records: items.iter().map(|&(_, n)| record(n)).collect(),
                positions: items.iter().map(|&(at, _)| at).collect(),
                bound,
            })
            .unwrap();
        };
        let key = |n: u8| flowstat_core::FlowKey {
            ip_version: 4,
            protocol: 17,
            vlan_id: 0,
            lower_port: 1,
            upper_port: 2,
            lower: [n; 16],
            upper: [9; 16],
        };
        let t = Timestamp::from_secs;
        use std::cmp::Reverse;
        send(
            &tx0,
            &[(Position::Packet(1), 1), (Position::Packet(4), 4)],
            Position::Packet(7),
        );
        send(
            &tx1,
            &[(Position::Packet(2), 2), (Position::Packet(6), 6)],
            Position::Packet(7),
        );
        send(
            &tx0,
            &[
                (Position::Purge(t(1), key(1)), 10),
                (Position::Stats(Reverse(t(9)), key(1)), 13),
            ],
            Position::End,
        );
        send(
            &tx1,
            &[
                (Position::Purge(t(1), key(2)), 11),
                (Position::Purge(t(2), key(0)), 12),
                (Position::Stats(Reverse(t(5)), key(0)), 14),
            ],
            Position::End,
        );
        for tx in [&tx0, &tx1] {
            tx.send(Out::Report(vec![SourceReport::default()])).unwrap();
        }
        end_tx
            .send(IntervalEnd {
                source: 0,
                part: CapturePart {
                    now: t(15),
                    uptime: Duration::ZERO,
                    interfaces: Vec::new(),
                    reports: Vec::new(),
                    captures: Vec::new(),
                },
            })
            .unwrap();
        drop((tx0, tx1, end_tx));
        let collect = crate::tests::Collect::default();
        let mut sinks = SinkRuntime::inline(false);
        sinks
            .add(
                Box::new(collect.clone()),
                flowstat_sinks::SinkOptions::new(KindSet::ALL),
            )
            .unwrap();
        let reducer = Reducer::new(Duration::from_secs(15), false, Vec::new(), KindSet::ALL);
        let (sinks, snapshot) = run(vec![rx0, rx1], &ends, reducer, sinks);
        drop(sinks);
        assert!(snapshot.is_some(), "the interval ended");
        assert_eq!(
            collect.lines(),
            ["1", "2", "4", "6", "10", "11", "12", "13", "14"]
        );
    }
}

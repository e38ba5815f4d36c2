//! Replay on several workers: merging their records into the order one
//! worker gives, and ending each interval.
//!
//! Each worker sends its records in its own record order, each with its
//! [`Position`], and a bound after every batch of packets: every record it
//! sends later in the interval is at or after the bound. The [`Merger`]
//! writes the record at the smallest position as soon as no other worker
//! can still send a smaller one; once every worker has sent its report of
//! an interval's end, it merges them with the reader's part of the
//! interval and runs the reducer. It runs on the reader's thread, between
//! batches and whenever the reader would otherwise wait for a worker; the
//! reader does not wait at an interval's end: a worker that is done with
//! the interval goes on with the next, whose records wait, in order, until
//! every worker is done with it. Memory stays bounded: the channels are
//! bounded, a worker is at most its input queue ahead of another, and
//! records go to the sinks as they are merged.

use std::collections::VecDeque;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvError, Sender, TryRecvError};
use flowstat_core::{Record, Records};
use flowstat_sinks::SinkRuntime;

use crate::interval::{CapturePart, Reducer, WorkerReport, merge_reports};
use crate::worker::{Deliver, Position};

/// Records merged before they are published.
pub const PUBLISH_BATCH: usize = 256;

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
    /// The interval (or the source) ended: the worker's report. Records
    /// after it belong to the next interval.
    Report(WorkerReport),
}

/// A worker's [`Deliver`]: its records and reports go to the merger, in
/// one message per batch of packets (or per [`PUBLISH_BATCH`] records).
pub struct Lane {
    tx: Sender<Vec<Out>>,
    pending: Vec<Out>,
    /// Records in `pending`.
    records: usize,
}

impl Lane {
    /// A lane to the merger over `tx`.
    pub fn new(tx: Sender<Vec<Out>>) -> Self {
        Lane {
            tx,
            pending: Vec::new(),
            records: 0,
        }
    }

    /// Sends what is pending.
    pub fn send(&mut self) {
        if !self.pending.is_empty() {
            self.records = 0;
            // The merger stops only after the workers: a failed send
            // means the replay is being torn down.
            let _ = self.tx.send(std::mem::take(&mut self.pending));
        }
    }
}

impl Deliver for Lane {
    fn deliver(&mut self, records: &mut Records, positions: &mut Vec<Position>, bound: Position) {
        self.records += records.len();
        self.pending.push(Out::Records {
            records: records.take(),
            positions: std::mem::take(positions),
            bound,
        });
        if self.records >= PUBLISH_BATCH {
            self.send();
        }
    }

    fn report(&mut self, report: WorkerReport) {
        self.pending.push(Out::Report(report));
    }
}

/// One worker as the merger sees it.
struct Input {
    /// Its channel; none for a worker on the merger's own thread, which
    /// hands its records over as it makes them.
    rx: Option<Receiver<Vec<Out>>>,
    /// Records of the interval being merged, in the worker's order.
    queue: VecDeque<(Position, Record)>,
    bound: Position,
    /// The worker's report of the interval being merged, once sent.
    report: Option<WorkerReport>,
    /// What it sent after that report, for the intervals after.
    later: VecDeque<Out>,
    /// The worker has stopped (its channel is closed).
    done: bool,
}

impl Input {
    /// Whether a record at `at` from another worker may be written: this
    /// one cannot send anything before it.
    fn allows(&self, at: &Position) -> bool {
        !self.queue.is_empty() || self.report.is_some() || self.done || self.bound >= *at
    }

    /// Takes the worker's next message: its outputs, or the end of its
    /// channel.
    fn take(&mut self, msg: Result<Vec<Out>, RecvError>) {
        match msg {
            Ok(outs) => outs.into_iter().for_each(|out| self.take_one(out)),
            Err(_) => self.done = true,
        }
    }

    fn take_one(&mut self, out: Out) {
        match out {
            out if self.report.is_some() => self.later.push_back(out),
            Out::Records {
                records,
                positions,
                bound,
            } => {
                self.queue.extend(positions.into_iter().zip(records));
                self.bound = bound;
            }
            Out::Report(r) => self.report = Some(r),
        }
    }

    /// Moves on to the next interval: takes what the worker sent for it.
    fn next_interval(&mut self) {
        self.report = None;
        self.bound = Position::Packet(0);
        while self.report.is_none()
            && let Some(out) = self.later.pop_front()
        {
            self.take_one(out);
        }
    }
}

/// What the merger can do next.
enum Step {
    /// Write the head record of this worker's queue.
    Write(usize),
    /// Wait for this worker: it may still send a record before the
    /// smallest one queued.
    Wait(usize),
    /// Nothing is queued: wait for whichever worker that has not reported
    /// sends first.
    WaitAny,
    /// Every worker has reported: the interval can end.
    EndInterval,
    /// Every worker has stopped.
    Done,
}

/// Merges the workers' records into the sinks, and ends intervals.
pub struct Merger {
    inputs: Vec<Input>,
    /// Interval ends the workers were told of and have not all reported:
    /// the source, and the reader's part.
    ends: VecDeque<(usize, CapturePart)>,
    reducer: Reducer,
    sinks: SinkRuntime,
    merged: Vec<Record>,
}

impl Merger {
    /// A merger of the workers that send on `workers`, one channel each
    /// (none for a worker on the merger's thread, which [`take`]s its
    /// records itself).
    ///
    /// [`take`]: Merger::take
    pub fn new(
        workers: Vec<Option<Receiver<Vec<Out>>>>,
        reducer: Reducer,
        sinks: SinkRuntime,
    ) -> Self {
        Merger {
            inputs: workers
                .into_iter()
                .map(|rx| Input {
                    rx,
                    queue: VecDeque::new(),
                    bound: Position::Packet(0),
                    report: None,
                    later: VecDeque::new(),
                    done: false,
                })
                .collect(),
            ends: VecDeque::new(),
            reducer,
            sinks,
            merged: Vec::with_capacity(PUBLISH_BATCH),
        }
    }

    /// Takes a message received from worker `i`, and writes what it lets.
    pub fn take(&mut self, i: usize, msg: Result<Vec<Out>, RecvError>) {
        self.inputs[i].take(msg);
        self.write_ready();
    }

    /// Takes whatever the workers have sent, without waiting, and writes
    /// what can be written.
    pub fn poll(&mut self) {
        for input in &mut self.inputs {
            loop {
                let msg = match &input.rx {
                    Some(rx) if !input.done => rx.try_recv(),
                    _ => break,
                };
                match msg {
                    Ok(msg) => input.take(Ok(msg)),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => input.take(Err(RecvError)),
                }
            }
        }
        self.write_ready();
    }

    /// Writes every record that no worker can still undercut, and ends
    /// every interval all workers have reported; returns the step that
    /// needs more from the workers.
    fn write_ready(&mut self) -> Step {
        loop {
            match next_step(&self.inputs) {
                Step::Write(i) => {
                    if let Some((_, record)) = self.inputs[i].queue.pop_front() {
                        self.merged.push(record);
                    }
                    if self.merged.len() >= PUBLISH_BATCH {
                        self.publish();
                    }
                }
                Step::EndInterval if !self.ends.is_empty() => self.reduce(),
                step => {
                    self.publish();
                    return step;
                }
            }
        }
    }

    fn publish(&mut self) {
        if !self.merged.is_empty() {
            self.sinks.publish(self.merged.drain(..));
        }
    }

    /// An interval of `source` ends: every worker will be told, after the
    /// packets before it, and `part` is the reader's part of it. It is
    /// reduced once every worker has reported it.
    pub fn end_interval(&mut self, source: usize, part: CapturePart) {
        self.ends.push_back((source, part));
    }

    /// Waits until every interval announced has ended, writing the
    /// workers' records meanwhile.
    pub fn wait(&mut self) {
        loop {
            let step = self.write_ready();
            if self.ends.is_empty() || !self.wait_for(step) {
                return;
            }
        }
    }

    /// Records of worker `lane` waiting to be written.
    pub fn queued(&self, lane: usize) -> usize {
        self.inputs[lane].queue.len()
    }

    /// Waits until at most `most` records of worker `lane` wait to be
    /// written, writing the workers' records meanwhile.
    pub fn drain_lane(&mut self, lane: usize, most: usize) {
        loop {
            let step = self.write_ready();
            if self.queued(lane) <= most || !self.wait_for(step) {
                return;
            }
        }
    }

    /// Waits for the worker `step` needs to hear from (whichever one, if
    /// any will do) and takes its message. False when there is no worker
    /// to wait for: the one needed is on this thread, or every one has
    /// reported.
    fn wait_for(&mut self, step: Step) -> bool {
        let waiting: Vec<usize> = match step {
            Step::Wait(i) => vec![i],
            Step::WaitAny => (0..self.inputs.len())
                .filter(|&i| self.inputs[i].report.is_none() && !self.inputs[i].done)
                .collect(),
            Step::Write(_) | Step::EndInterval | Step::Done => return false,
        };
        let rxs: Vec<(usize, &Receiver<Vec<Out>>)> = waiting
            .iter()
            .filter_map(|&i| self.inputs[i].rx.as_ref().map(|rx| (i, rx)))
            .collect();
        if rxs.is_empty() {
            return false;
        }
        let mut select = crossbeam_channel::Select::new();
        for (_, rx) in &rxs {
            select.recv(rx);
        }
        let oper = select.select();
        let (i, rx) = rxs[oper.index()];
        let msg = oper.recv(rx);
        self.inputs[i].take(msg);
        true
    }

    /// Ends the oldest interval announced, which every worker reported:
    /// builds its snapshot from their reports and the reader's part, and
    /// writes its records.
    fn reduce(&mut self) {
        let Some((source, mut part)) = self.ends.pop_front() else {
            return;
        };
        // The interval's flow records first.
        self.publish();
        let mut reports = Vec::new();
        for input in &mut self.inputs {
            if let Some(r) = input.report.take() {
                merge_reports(&mut reports, &r.sources);
                part.tallies.push(r.tally);
            }
            input.next_interval();
        }
        part.reports = vec![reports.get(source).copied().unwrap_or_default()];
        self.sinks.settle(SETTLE_TIMEOUT);
        let records = self.reducer.end_interval(part, self.sinks.status());
        self.sinks.publish(records);
    }

    /// Flows created, as of the last interval reduced.
    pub fn flows(&self) -> u64 {
        self.reducer.flows()
    }

    /// The sinks.
    pub fn finish(self) -> SinkRuntime {
        self.sinks
    }
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
    use crate::interval::SourceReport;
    use flowstat_analytics::{Shared, TallyPart};
    use flowstat_core::{KindSet, RecordKind, Timestamp};

    fn record(n: u64) -> Record {
        Record {
            kind: RecordKind::Flow,
            json: n.to_string().into_bytes(),
        }
    }

    /// A worker's report of one source that saw nothing.
    fn worker_report() -> WorkerReport {
        WorkerReport {
            sources: vec![SourceReport::default()],
            tally: TallyPart::default(),
        }
    }

    fn input(items: &[(u64, u64)], bound: Position) -> Input {
        let (_, rx) = crossbeam_channel::unbounded();
        Input {
            rx: Some(rx),
            queue: items
                .iter()
                .map(|&(seq, n)| (Position::Packet(seq), record(n)))
                .collect(),
            bound,
            report: None,
            later: VecDeque::new(),
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
        a.report = Some(worker_report());
        assert!(matches!(next_step(&[a, b]), Step::WaitAny));
        let mut a = input(&[], Position::End);
        a.report = Some(worker_report());
        b = input(&[], Position::End);
        b.report = Some(worker_report());
        assert!(matches!(next_step(&[a, b]), Step::EndInterval));
    }

    #[test]
    fn workers_records_come_out_in_position_order_interval_by_interval() {
        // Worker 0 is on the merger's thread and hands its records over
        // itself; worker 1 sends them.
        let (tx0, rx0) = crossbeam_channel::unbounded::<Vec<Out>>();
        let (tx1, rx1) = crossbeam_channel::unbounded();
        let records = |items: &[(Position, u64)], bound| Out::Records {
            records: items.iter().map(|&(_, n)| record(n)).collect(),
            positions: items.iter().map(|&(at, _)| at).collect(),
            bound,
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
        use Position::{Packet, Purge, Stats};
        use std::cmp::Reverse;
        let sends = [
            (
                &tx0,
                vec![records(&[(Packet(1), 1), (Packet(4), 4)], Packet(7))],
            ),
            (
                &tx1,
                vec![records(&[(Packet(2), 2), (Packet(6), 6)], Packet(7))],
            ),
            (
                &tx0,
                vec![
                    records(
                        &[
                            (Purge(t(1), key(1)), 10),
                            (Stats(Reverse(t(9)), key(1)), 13),
                        ],
                        Position::End,
                    ),
                    Out::Report(worker_report()),
                ],
            ),
            // Worker 0 is on to the next interval before worker 1 is done
            // with this one: its records wait for the interval's end.
            (
                &tx0,
                vec![
                    records(&[(Packet(9), 9)], Position::End),
                    Out::Report(worker_report()),
                ],
            ),
            (
                &tx1,
                vec![
                    records(
                        &[
                            (Purge(t(1), key(2)), 11),
                            (Purge(t(2), key(0)), 12),
                            (Stats(Reverse(t(5)), key(0)), 14),
                        ],
                        Position::End,
                    ),
                    Out::Report(worker_report()),
                ],
            ),
            (
                &tx1,
                vec![
                    records(&[(Packet(8), 8)], Position::End),
                    Out::Report(worker_report()),
                ],
            ),
        ];
        for (tx, outs) in sends {
            tx.send(outs).unwrap();
        }
        drop((tx0, tx1));
        let memory = flowstat_sinks::MemorySink::default();
        let mut sinks = SinkRuntime::inline(false);
        sinks
            .add(
                Box::new(memory.clone()),
                flowstat_sinks::SinkOptions::new(KindSet::ALL),
            )
            .unwrap();
        let reducer = Reducer::new(
            Duration::from_secs(15),
            false,
            Shared::default(),
            Vec::new(),
            KindSet::ALL,
        );
        let mut merger = Merger::new(vec![None, Some(rx1)], reducer, sinks);
        for outs in rx0.try_iter() {
            merger.take(0, Ok(outs));
        }
        let part = |secs| CapturePart {
            now: t(secs),
            uptime: Duration::ZERO,
            interfaces: Vec::new(),
            reports: Vec::new(),
            tallies: Vec::new(),
            captures: Vec::new(),
        };
        merger.end_interval(0, part(15));
        merger.end_interval(0, part(30));
        merger.wait();
        drop(merger.finish());
        assert_eq!(
            memory.lines(),
            ["1", "2", "4", "6", "10", "11", "12", "13", "14", "8", "9"]
        );
    }
}

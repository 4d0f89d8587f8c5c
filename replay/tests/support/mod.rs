//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod evtx_writer;

use trawl_replay::unit::UnitOutput;

/// What a unit gave, as comparable text: events (sequence number and the
/// event's `Debug`), problems, counts, and records per channel and id.
pub fn shown(out: &UnitOutput) -> Vec<String> {
    let mut lines: Vec<String> = out
        .events
        .iter()
        .map(|e| format!("{} {:?}", e.seq, e.event))
        .collect();
    lines.extend(out.problems.iter().map(|p| format!("problem {p:?}")));
    lines.push(format!("records {} skipped {}", out.records, out.skipped));
    lines.extend(
        out.channels
            .channels()
            .map(|(c, ids)| format!("channel {c} {ids:?}")),
    );
    lines
}

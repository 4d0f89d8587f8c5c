//! Windows event logs: one record parser and one mapping to trawl events,
//! shared by the EVTX reader ([`crate::evtx_file`]) and the `evtx_dump` JSON
//! reader (in [`crate::unit`]), both through [`read_record`].
//!
//! A record is first read as the JSON `evtx_dump` writes ([`record`]); the
//! `evtx` crate renders binary records into the same JSON, so there is one
//! parser for both inputs. [`mapping`] then turns Sysmon and Security
//! process and file records into events and leaves the rest to be counted
//! per channel and event id ([`ChannelCounts`]).

pub mod mapping;
pub mod record;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::unit::UnitOutput;
use crate::Location;
use mapping::{is_mapped, map_record, Mapped};
use record::parse_record;

/// Reads one Windows record, as JSON, into `out`: counts it per channel and
/// event id, adds its event when trawl maps it (sequence number: its
/// `EventRecordID`, else `fallback_seq`), and reports it at `at` when it
/// cannot be read. `host` keeps the last host name, shared between events.
pub fn read_record(
    json: &[u8],
    fallback_seq: u64,
    at: Location,
    host: &mut Option<Arc<str>>,
    out: &mut UnitOutput,
) {
    let rec = match parse_record(json, &is_mapped) {
        Ok(r) => r,
        Err(reason) => return out.bad(at, reason, 1),
    };
    out.channels.add(
        rec.channel.as_deref(),
        rec.provider.as_deref(),
        rec.event_id,
    );
    match map_record(rec, host) {
        Ok(Mapped::Event { seq, event }) => out.event(seq.unwrap_or(fallback_seq), event),
        Ok(Mapped::Other) => {}
        Err(reason) => out.bad(at, reason, 1),
    }
}

/// Records seen per (channel, event id), for the replay summary. A record
/// without a channel is counted under its provider in brackets, and one with
/// neither under `(unknown)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelCounts(BTreeMap<String, BTreeMap<u32, u64>>);

impl ChannelCounts {
    /// Counts one record (event id 0 when it has none).
    pub fn add(&mut self, channel: Option<&str>, provider: Option<&str>, event_id: Option<u32>) {
        let id = event_id.unwrap_or(0);
        let ids = match (channel, provider) {
            // Looked up by reference first: most records repeat a known channel.
            (Some(c), _) => match self.0.get_mut(c) {
                Some(ids) => ids,
                None => self.0.entry(c.to_owned()).or_default(),
            },
            (None, Some(p)) => self.0.entry(format!("({p})")).or_default(),
            (None, None) => self.0.entry("(unknown)".to_owned()).or_default(),
        };
        *ids.entry(id).or_insert(0) += 1;
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: ChannelCounts) {
        for (channel, ids) in other.0 {
            let mine = self.0.entry(channel).or_default();
            for (id, n) in ids {
                *mine.entry(id).or_insert(0) += n;
            }
        }
    }

    /// Channels in name order, each with `(event id, records)` in id order.
    pub fn channels(&self) -> impl Iterator<Item = (&str, &BTreeMap<u32, u64>)> {
        self.0.iter().map(|(c, ids)| (c.as_str(), ids))
    }

    /// Records counted.
    pub fn total(&self) -> u64 {
        self.0.values().flat_map(|ids| ids.values()).sum()
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_channel_then_id() {
        let mut a = ChannelCounts::default();
        a.add(Some("Security"), Some("x"), Some(4624));
        a.add(Some("Security"), None, Some(4624));
        a.add(None, Some("Microsoft-Windows-RPC"), Some(6));
        a.add(None, None, None);
        let mut b = ChannelCounts::default();
        b.add(Some("Security"), None, Some(4688));
        a.merge(b);
        let shown: Vec<String> = a
            .channels()
            .flat_map(|(c, ids)| ids.iter().map(move |(id, n)| format!("{c} {id} {n}")))
            .collect();
        assert_eq!(
            shown,
            [
                "(Microsoft-Windows-RPC) 6 1",
                "(unknown) 0 1",
                "Security 4624 2",
                "Security 4688 1"
            ]
        );
        assert_eq!(a.total(), 5);
    }
}

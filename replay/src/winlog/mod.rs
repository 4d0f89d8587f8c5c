//! Windows event logs: one record parser and one mapping to trawl events,
//! shared by the EVTX reader ([`crate::evtx`]) and the `evtx_dump` JSON reader
//! ([`crate::evtx_json`]).
//!
//! A record is first read as the JSON `evtx_dump` writes ([`record`]); the
//! `evtx` crate renders binary records into the same JSON, so there is one
//! parser for both inputs. [`mapping`] then turns Sysmon and Security
//! process and file records into events and leaves the rest to be counted
//! per channel and event id ([`ChannelCounts`]).

pub mod mapping;
pub mod record;

use std::collections::BTreeMap;

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

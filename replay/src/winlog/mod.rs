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

use std::cmp::Ordering;
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
#[derive(Debug, Clone, Default)]
pub struct ChannelCounts {
    /// Per channel in name order, its counts per event id.
    channels: Vec<(String, BTreeMap<u32, u64>)>,
    /// The channel of the last record counted: the next record is most
    /// likely of the same one, and is counted without a search.
    last: usize,
}

impl PartialEq for ChannelCounts {
    fn eq(&self, other: &Self) -> bool {
        self.channels == other.channels
    }
}

impl Eq for ChannelCounts {}

impl ChannelCounts {
    /// Counts one record (event id 0 when it has none).
    pub fn add(&mut self, channel: Option<&str>, provider: Option<&str>, event_id: Option<u32>) {
        let name = match (channel, provider) {
            (Some(c), _) => ["", c, ""],
            (None, Some(p)) => ["(", p, ")"],
            (None, None) => ["", "(unknown)", ""],
        };
        *self.ids_of(name).entry(event_id.unwrap_or(0)).or_insert(0) += 1;
    }

    /// The counts of the channel named by the concatenation of `name`,
    /// added when new. Nothing is allocated for a channel counted before.
    fn ids_of(&mut self, name: [&str; 3]) -> &mut BTreeMap<u32, u64> {
        let at = match self.channels.get(self.last) {
            Some((last, _)) if cmp_concat(last, name).is_eq() => self.last,
            _ => match (self.channels).binary_search_by(|(c, _)| cmp_concat(c, name)) {
                Ok(at) => at,
                Err(at) => {
                    self.channels.insert(at, (name.concat(), BTreeMap::new()));
                    at
                }
            },
        };
        self.last = at;
        &mut self.channels[at].1
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: ChannelCounts) {
        for (channel, ids) in other.channels {
            let mine = self.ids_of(["", &channel, ""]);
            for (id, n) in ids {
                *mine.entry(id).or_insert(0) += n;
            }
        }
    }

    /// Channels in name order, each with `(event id, records)` in id order.
    pub fn channels(&self) -> impl Iterator<Item = (&str, &BTreeMap<u32, u64>)> {
        self.channels.iter().map(|(c, ids)| (c.as_str(), ids))
    }

    /// Records counted.
    pub fn total(&self) -> u64 {
        self.channels.iter().flat_map(|(_, ids)| ids.values()).sum()
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }
}

/// How `a` orders against the concatenation of `pieces`, as strings
/// compare, without building it.
fn cmp_concat(a: &str, pieces: [&str; 3]) -> Ordering {
    let mut rest = a.as_bytes();
    for piece in pieces.map(str::as_bytes) {
        let n = piece.len().min(rest.len());
        let order = rest[..n].cmp(&piece[..n]);
        if order.is_ne() {
            return order;
        }
        if n < piece.len() {
            // `a` ends within the piece, equal so far: it is a prefix.
            return Ordering::Less;
        }
        rest = &rest[n..];
    }
    if rest.is_empty() {
        Ordering::Equal
    } else {
        Ordering::Greater
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

    #[test]
    fn counts_are_those_of_a_map_by_name_whatever_the_order() {
        // Names that are prefixes of each other, bracketed or not, empty.
        let names = [
            "",
            "S",
            "Se",
            "Security",
            "(S)",
            "(",
            ")",
            "(unknown)",
            "Sé",
        ];
        let mut ours = ChannelCounts::default();
        let mut map: BTreeMap<String, BTreeMap<u32, u64>> = BTreeMap::new();
        let mut seed = 1u32;
        for _ in 0..5_000 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let pick = |shift: u32| names[(seed >> shift) as usize % names.len()];
            let channel = (seed & 1 == 0).then(|| pick(8));
            let provider = (seed & 2 == 0).then(|| pick(16));
            let id = (seed >> 28 != 0).then_some(seed >> 28);
            ours.add(channel, provider, id);
            let key = match (channel, provider) {
                (Some(c), _) => c.to_owned(),
                (None, Some(p)) => format!("({p})"),
                (None, None) => "(unknown)".to_owned(),
            };
            *map.entry(key)
                .or_default()
                .entry(id.unwrap_or(0))
                .or_default() += 1;
        }
        let ours: Vec<_> = ours
            .channels()
            .map(|(c, ids)| (c.to_owned(), ids.clone()))
            .collect();
        let theirs: Vec<_> = map.into_iter().collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn names_compare_as_their_concatenation() {
        let parts = ["", "(", ")", "a", "ab", "b", "é"];
        for a in parts.iter().flat_map(|x| parts.map(|y| format!("{x}{y}"))) {
            for p in parts {
                for q in parts {
                    for r in ["", ")"] {
                        let whole = format!("{p}{q}{r}");
                        assert_eq!(
                            cmp_concat(&a, [p, q, r]),
                            a.as_str().cmp(&whole),
                            "{a:?} {whole:?}"
                        );
                    }
                }
            }
        }
    }
}

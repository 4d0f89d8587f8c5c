//! Rules' verdicts on remembered texts, remembered in turn.
//!
//! A rule's verdict is a pure function of the fields it reads. When each of
//! them is absent from the event or holds a text the field's [`memo`] holds
//! (a named text: see [`TextId`]), the verdict can be kept under those ids:
//! the next event that brings the same texts in those fields gets it back
//! without evaluating anything. On an endpoint most events repeat most
//! fields, and the rules always evaluated (conditions with no literal that
//! must be present, such as `Image|fieldref: ParentImage`) or woken by a
//! common image read only such fields.
//!
//! Only "does not fire" is kept: it is what nearly every evaluation decides
//! (a rule fires on some 2% of the bench corpus's events), and a firing rule
//! is then always evaluated, so its alert's `matches` are collected as
//! before. The table is small and direct-mapped, its memory kept from use to
//! use: nothing is allocated per event.
//!
//! [`memo`]: super::memo

use super::memo::TextId;

/// The most fields a rule may read for its verdicts to be kept.
pub(super) const MAX_READS: usize = 6;
/// The id of a field the event does not have.
pub(super) const ABSENT: TextId = 0;
/// The id of a field whose text is not remembered (too long, not a string,
/// a long text on its first sighting, or the memory is off): a rule
/// reading it is evaluated.
pub(super) const UNNAMED: TextId = TextId::MAX;
/// Slots in the table (a power of two).
const SLOTS: usize = 4096;
/// A slot no rule's reading fills.
const EMPTY: u32 = u32::MAX;

/// One rule's reading of one event: the rule and the ids of the texts of
/// the fields it reads, in a fixed order (unused ids are [`ABSENT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reading {
    rule: u32,
    ids: [TextId; MAX_READS],
}

impl Reading {
    /// Rule `rule`'s reading of the fields at `reads` (positions in
    /// `ids`, this event's text ids by field scan), or `None` if one of
    /// them is [`UNNAMED`].
    #[inline]
    pub(super) fn of(rule: u32, reads: &[u32], ids: &[TextId]) -> Option<Reading> {
        // More would be dropped by the zip below: `compile::reads` keeps to it.
        debug_assert!(reads.len() <= MAX_READS);
        let mut reading = Reading {
            rule,
            ids: [ABSENT; MAX_READS],
        };
        for (slot, &at) in reading.ids.iter_mut().zip(reads) {
            *slot = ids[at as usize];
            if *slot == UNNAMED {
                return None;
            }
        }
        Some(reading)
    }

    fn slot(&self) -> usize {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = u64::from(self.rule);
        for &id in &self.ids {
            h = (h.rotate_left(5) ^ id).wrapping_mul(K);
        }
        (h >> (64 - SLOTS.trailing_zeros())) as usize
    }
}

/// The readings known not to fire.
#[derive(Debug, Default)]
pub(super) struct Verdicts {
    slots: Vec<Reading>,
}

impl Verdicts {
    /// Whether `reading` is known not to fire.
    #[inline]
    pub(super) fn known_false(&self, reading: &Reading) -> bool {
        self.slots.get(reading.slot()) == Some(reading)
    }

    /// Remembers that `reading` does not fire (in place of its slot's last).
    pub(super) fn remember_false(&mut self, reading: Reading) {
        if self.slots.is_empty() {
            let empty = Reading {
                rule: EMPTY,
                ids: [ABSENT; MAX_READS],
            };
            self.slots.resize(SLOTS, empty);
        }
        let at = reading.slot();
        self.slots[at] = reading;
    }

    /// Forgets every verdict (keeping the memory).
    pub(super) fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| s.rule = EMPTY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_answers_only_for_its_rule_and_texts() {
        let ids = [5, ABSENT, 9, UNNAMED];
        let mut v = Verdicts::default();
        let read = Reading::of(3, &[0, 1, 2], &ids).unwrap();
        assert!(!v.known_false(&read));
        v.remember_false(read);
        assert!(v.known_false(&read));
        // The same texts in another order, another rule, another text.
        assert!(!v.known_false(&Reading::of(3, &[2, 1, 0], &ids).unwrap()));
        assert!(!v.known_false(&Reading::of(4, &[0, 1, 2], &ids).unwrap()));
        assert!(!v.known_false(&Reading::of(3, &[0, 1], &ids).unwrap()));
        // A text that is not remembered has no reading.
        assert_eq!(Reading::of(3, &[0, 3], &ids), None);
        v.clear();
        assert!(!v.known_false(&read));
    }
}

//! `contains` needles of one field that a condition ORs together, searched
//! for in one pass.
//!
//! A typical SigmaHQ rule wakes on its image (`Image|endswith:
//! '\rundll32.exe'`) and then asks whether the command line holds any of a
//! list of literals. Tested one by one, that list is one substring search
//! per literal over the same text, each paying a search's fixed cost. Here
//! the list is one Aho-Corasick searcher (a vectorised packed search for
//! lists this short) over the field's lower-cased text: one pass answers
//! "any of them?", which is all the condition asks.
//!
//! A searcher is built on first use: a rule set holds many lists that a
//! given endpoint never reaches, and building them all would slow every
//! start.

use std::sync::OnceLock;

use aho_corasick::packed::{Config, MatchKind};
use aho_corasick::{AhoCorasick, MatchKind as AcMatchKind};

use crate::event::FieldKey;

/// The needles one OR of a condition tests on one field.
#[derive(Debug)]
pub(super) struct NeedleSet {
    /// The field they are searched for in.
    pub(super) key: FieldKey,
    /// Their atoms, in the order of `patterns`.
    pub(super) atoms: Vec<u32>,
    /// Their literals, ASCII-lower-cased.
    patterns: Vec<Vec<u8>>,
    searcher: OnceLock<Searcher>,
}

/// A vectorised packed search where the CPU has one, an automaton otherwise.
#[derive(Debug)]
enum Searcher {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

impl NeedleSet {
    /// A set over `(atom, lower-cased literal)` pairs of one field.
    pub(super) fn new(key: FieldKey, needles: Vec<(u32, Vec<u8>)>) -> NeedleSet {
        let (atoms, patterns) = needles.into_iter().unzip();
        NeedleSet {
            key,
            atoms,
            patterns,
            searcher: OnceLock::new(),
        }
    }

    /// The first needle found in `lower` (the field's lower-cased text), as
    /// an index into [`NeedleSet::atoms`].
    #[inline]
    pub(super) fn find(&self, lower: &[u8]) -> Option<usize> {
        let searcher = self.searcher.get_or_init(|| {
            let packed = Config::new()
                .match_kind(MatchKind::LeftmostFirst)
                .builder()
                .extend(&self.patterns)
                .build();
            match packed {
                Some(p) => Searcher::Packed(p),
                None => Searcher::Automaton(
                    AhoCorasick::builder()
                        .match_kind(AcMatchKind::LeftmostFirst)
                        .build(&self.patterns)
                        .expect("a searcher over a few literals always builds"),
                ),
            }
        });
        let m = match searcher {
            Searcher::Packed(p) => p.find(lower),
            Searcher::Automaton(ac) => ac.find(lower),
        };
        m.map(|m| m.pattern().as_usize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_any_needle_of_the_set() {
        let set = NeedleSet::new(
            crate::event::fields::COMMAND_LINE,
            vec![(7, b"-enc".to_vec()), (9, b"frombase64".to_vec())],
        );
        assert_eq!(set.find(b"powershell -enc aqb"), Some(0));
        assert_eq!(set.find(b"[convert]::frombase64string"), Some(1));
        assert_eq!(set.find(b"powershell -nop"), None);
        assert_eq!(set.find(b""), None);
    }
}

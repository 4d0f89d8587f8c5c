//! `contains` literals tested directly, when a woken rule asks for one its
//! scan did not hold: a precompiled `memchr::memmem` finder run over the
//! field's text, ASCII-lower-cased once per event and field (kept in
//! [`LoweredFields`]), so each test is one vectorised substring search.
//!
//! Only literals whose characters fold as bytes (ASCII, and caseless
//! characters such as the dashes `windash` writes) take this path: for them
//! ASCII-lower-casing both sides is exactly the matcher's folding rule (see
//! [`super::text`]). Case-sensitive literals search the text as it is.

use memchr::memmem::Finder;

use super::text::{folds_as_bytes, term_bounded};
use crate::rule::{StrOp, Test};

/// One precompiled literal search.
#[derive(Debug)]
pub(super) struct Needle {
    finder: Finder<'static>,
    /// KQL `has`: the hit must sit on term boundaries.
    term: bool,
    /// Search the text as it is, not lower-cased.
    pub(super) cased: bool,
}

impl Needle {
    /// A needle for a `contains` or `has` test, when its literal can be
    /// searched as bytes.
    pub(super) fn for_test(test: &Test) -> Option<Needle> {
        let Test::Str { op, value, cased } = test else {
            return None;
        };
        let term = match op {
            StrOp::Contains => false,
            StrOp::Term => true,
            _ => return None,
        };
        if value.is_empty() || !(*cased || value.chars().all(folds_as_bytes)) {
            return None;
        }
        let bytes = if *cased {
            value.as_bytes().to_vec()
        } else {
            value.as_bytes().to_ascii_lowercase()
        };
        Some(Needle {
            finder: Finder::new(&bytes).into_owned(),
            term,
            cased: *cased,
        })
    }

    /// Whether the literal is in `hay` (already lower-cased unless `cased`).
    #[inline]
    pub(super) fn is_in(&self, hay: &[u8]) -> bool {
        if !self.term {
            return self.finder.find(hay).is_some();
        }
        let n = self.finder.needle().len();
        self.finder
            .find_iter(hay)
            .any(|i| term_bounded(hay, i, i + n))
    }
}

/// Per event: the ASCII-lower-cased text of the fields a needle searched,
/// made once each, in one reused buffer.
#[derive(Debug, Default)]
pub(super) struct LoweredFields {
    buf: Vec<u8>,
    /// For text that is not an event field (a derived value).
    other: Vec<u8>,
    /// Per field position in the event: its span in `buf`, if made.
    spans: Vec<Option<(u32, u32)>>,
}

impl LoweredFields {
    /// Forgets the last event's fields (keeps the memory).
    pub(super) fn reset(&mut self) {
        self.buf.clear();
        self.spans.clear();
    }

    /// `text` lower-cased, not kept past the next call.
    pub(super) fn scratch(&mut self, text: &[u8]) -> &[u8] {
        self.other.clear();
        self.other.extend_from_slice(text);
        self.other.make_ascii_lowercase();
        &self.other
    }

    /// The lower-cased `text` of the field at `position`.
    pub(super) fn get(&mut self, position: usize, text: &[u8]) -> &[u8] {
        if self.spans.len() <= position {
            self.spans.resize(position + 1, None);
        }
        let (start, end) = match self.spans[position] {
            Some(span) => span,
            None => {
                // A copy, then folded in place: both run many bytes at a
                // time, where a byte-by-byte map did not.
                let start = self.buf.len();
                self.buf.extend_from_slice(text);
                self.buf[start..].make_ascii_lowercase();
                let span = (start as u32, self.buf.len() as u32);
                self.spans[position] = Some(span);
                span
            }
        };
        &self.buf[start as usize..end as usize]
    }
}

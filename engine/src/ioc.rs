//! Indicator lists: known-bad file hashes, as threat reports publish them.
//!
//! The format is plain text, one indicator a line: a hex MD5, SHA-1 or SHA-256
//! (told apart by length), then optionally whitespace and a free-text name.
//! Blank lines are ignored; hex is case-insensitive; a UTF-8 byte-order mark
//! at the start of the text is ignored.
//!
//! Comments: a line whose first non-blank character is `#` is a comment.
//! Elsewhere `#` starts a trailing comment only when whitespace comes before
//! it and whitespace or the end of the line after it (` # seen 2021`), because
//! report names often hold a `#` of their own: `<digest> implant #2` is named
//! `implant #2`, `<digest> implant # seen 2021` is named `implant`.
//!
//! A line that is not an indicator is reported as an [`IocProblem`] and
//! skipped; it never stops the rest of the list. So is a digest listed again
//! under another name: the first line's name is the one alerts show, and the
//! repeat says which line it lost to (a repeat with the same name is merely
//! merged). Text that was not UTF-8 arrives here decoded lossily, with U+FFFD
//! in place of the bad bytes: a line that then does not parse is reported as
//! "not UTF-8 text", while a good digest with such a name is kept, since the
//! digest alone is what matches.
//!
//! ```
//! use trawl_engine::ioc::IocSet;
//!
//! let (set, problems) = IocSet::parse("# DEV-0228\n2A1044E9E6E87A032F80C6D9EA6AE61BBBB053C0A21B186ECB3B812B49EB03B7 lsa.exe #2 # seen 2021\nnot-a-hash\n");
//! assert_eq!(set.len(), 1);
//! assert_eq!(problems.len(), 1);
//! assert_eq!(problems[0].line, 3);
//! let hit = set.lookup_hex("2a1044e9e6e87a032f80c6d9ea6ae61bbbb053c0a21b186ecb3b812b49eb03b7").unwrap();
//! assert_eq!(hit.name, "lsa.exe #2");
//! ```

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::event::{fields, Event, FieldKey, Value};

/// Which hash function an indicator is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgo {
    /// MD5: 16 bytes, 32 hex digits.
    Md5,
    /// SHA-1: 20 bytes, 40 hex digits.
    Sha1,
    /// SHA-256: 32 bytes, 64 hex digits.
    Sha256,
}

impl HashAlgo {
    /// The name Sysmon uses in `Hashes` (`MD5`, `SHA1`, `SHA256`).
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "MD5",
            HashAlgo::Sha1 => "SHA1",
            HashAlgo::Sha256 => "SHA256",
        }
    }

    /// The algorithm a `Hashes` label (or a field name) names: `MD5`, `SHA1`,
    /// `SHA256`, also spelt `SHA-1`, `SHA-256`, in any case. Other labels
    /// (`IMPHASH`, …) are hashes of something else, not of the file, so they
    /// name no algorithm here and their values must not be matched.
    pub fn from_label(label: &str) -> Option<HashAlgo> {
        // Most field names are none of these: reject them on length and
        // first letter before comparing (the matcher asks for every field).
        if !(3..=7).contains(&label.len()) || !matches!(label.as_bytes()[0] | 0x20, b'm' | b's') {
            return None;
        }
        let is = |name: &str| label.eq_ignore_ascii_case(name);
        if is("MD5") {
            Some(HashAlgo::Md5)
        } else if is("SHA1") || is("SHA-1") {
            Some(HashAlgo::Sha1)
        } else if is("SHA256") || is("SHA-256") {
            Some(HashAlgo::Sha256)
        } else {
            None
        }
    }

    /// A small number per algorithm, for tables.
    fn index(self) -> usize {
        match self {
            HashAlgo::Md5 => 0,
            HashAlgo::Sha1 => 1,
            HashAlgo::Sha256 => 2,
        }
    }

    fn from_hex_len(len: usize) -> Option<HashAlgo> {
        match len {
            32 => Some(HashAlgo::Md5),
            40 => Some(HashAlgo::Sha1),
            64 => Some(HashAlgo::Sha256),
            _ => None,
        }
    }
}

/// A digest, stored as bytes so lookups neither allocate nor care about case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    algo: HashAlgo,
    len: u8,
    bytes: [u8; 32],
}

/// A digest's bytes are already uniformly spread, so its first eight are
/// its hash: no hash function runs per lookup (every process start with
/// `Hashes` is looked up).
impl std::hash::Hash for Digest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.bytes[..8]);
        state.write_u64(u64::from_le_bytes(head) ^ u64::from(self.len));
    }
}

/// The hasher of [`Digest`] keys: it keeps the one `u64` a digest writes.
#[derive(Default)]
struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not reached by `Digest`; any other input still hashes.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

/// Indicators by digest.
type Entries = HashMap<Digest, IocEntry, std::hash::BuildHasherDefault<DigestHasher>>;

impl Digest {
    /// Parses hex (either case) of an MD5, SHA-1 or SHA-256 digest.
    pub fn from_hex(hex: &str) -> Option<Digest> {
        let algo = HashAlgo::from_hex_len(hex.len())?;
        let mut bytes = [0u8; 32];
        let raw = hex.as_bytes();
        for (i, pair) in raw.chunks_exact(2).enumerate() {
            bytes[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Some(Digest {
            algo,
            len: (hex.len() / 2) as u8,
            bytes,
        })
    }

    /// A SHA-256 digest from its 32 bytes.
    pub fn sha256(bytes: [u8; 32]) -> Digest {
        Digest {
            algo: HashAlgo::Sha256,
            len: 32,
            bytes,
        }
    }

    /// The hash function.
    pub fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Display for Digest {
    /// Lower-case hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// One indicator of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IocEntry {
    /// What is matched.
    pub digest: Digest,
    /// The free text after the hash (may be empty).
    pub name: String,
    /// 1-based line in the list file.
    pub line: usize,
}

/// A line of a list that was skipped: not an indicator, a digest repeated
/// under another name, or (in the header) a level that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IocProblem {
    /// 1-based line number.
    pub line: usize,
    /// Why the line was skipped, in words a list author can act on.
    pub reason: String,
}

/// A parsed indicator list, ready for lookups.
#[derive(Debug, Clone, Default)]
pub struct IocSet {
    entries: Arc<Entries>,
    /// Which algorithms the list holds (by [`HashAlgo::index`]): an event's
    /// digest of another is not even decoded.
    algos: [bool; 3],
    /// A bit per first two bytes of the list's digests: an event's digest
    /// (three in each Sysmon `Hashes`) is decoded whole only when its first
    /// four hex digits could start one. Empty only in `IocSet::default()`
    /// (which holds no digest either).
    heads: Arc<[u64]>,
}

impl IocSet {
    /// Parses a list. Lines that are not indicators, and repeats of a digest
    /// under another name, are returned as problems (line and reason); they
    /// never stop the parse.
    pub fn parse(text: &str) -> (IocSet, Vec<IocProblem>) {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let mut entries = Entries::default();
        let mut problems = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = strip_comment(raw).trim();
            if content.is_empty() {
                continue;
            }
            let (hex, name) = match content.find(char::is_whitespace) {
                Some(p) => (&content[..p], content[p..].trim()),
                None => (content, ""),
            };
            let Some(digest) = Digest::from_hex(hex) else {
                let reason = if raw.contains(char::REPLACEMENT_CHARACTER) {
                    "not UTF-8 text (save the list as UTF-8)".to_owned()
                } else {
                    format!(
                        "`{}` is not a hex MD5 (32), SHA-1 (40) or SHA-256 (64) digest",
                        truncate(hex, 80)
                    )
                };
                problems.push(IocProblem { line, reason });
                continue;
            };
            match entries.entry(digest) {
                Entry::Vacant(v) => {
                    v.insert(IocEntry {
                        digest,
                        name: name.to_owned(),
                        line,
                    });
                }
                // Alerts can show one name only; the repeat is said so that
                // its name is not lost without a word.
                Entry::Occupied(first) if first.get().name != name => {
                    let first = first.get();
                    let first_name = if first.name.is_empty() {
                        "no name".to_owned()
                    } else {
                        format!("`{}`", truncate(&first.name, 80))
                    };
                    problems.push(IocProblem {
                        line,
                        reason: format!(
                            "duplicate of line {} ({first_name}); the first is kept",
                            first.line
                        ),
                    });
                }
                // The same digest and name again adds nothing and loses nothing.
                Entry::Occupied(_) => {}
            }
        }
        let mut algos = [false; 3];
        let mut heads = vec![0u64; 1 << 10];
        for digest in entries.keys() {
            algos[digest.algo().index()] = true;
            let head = usize::from(u16::from_be_bytes([digest.bytes[0], digest.bytes[1]]));
            heads[head >> 6] |= 1 << (head & 63);
        }
        (
            IocSet {
                entries: Arc::new(entries),
                algos,
                heads: heads.into(),
            },
            problems,
        )
    }

    /// How many indicators the list holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Looks up a digest.
    pub fn lookup(&self, digest: &Digest) -> Option<&IocEntry> {
        self.entries.get(digest)
    }

    /// Looks up a digest given as hex.
    pub fn lookup_hex(&self, hex: &str) -> Option<&IocEntry> {
        Digest::from_hex(hex).and_then(|d| self.lookup(&d))
    }

    /// Every entry of the list that one of the event's hashes hits, with the
    /// field the hash was found in. Hashes are read from `Hashes` (or `Hash`):
    /// `LABEL=HEX` items as Sysmon writes them (`SHA1=…,MD5=…,SHA256=…,IMPHASH=…`),
    /// where the label must name the digest's algorithm ([`HashAlgo::from_label`])
    /// and other labels (`IMPHASH`, …) are passed over, or bare digests, taken
    /// by length; and from fields named `SHA256`, `SHA1`, `MD5` (any case, or
    /// spelt `SHA-256`, `SHA-1`), whose value must be a digest of that
    /// algorithm. A label that disagrees
    /// with the digest never matches: an MD5 indicator equal to an import hash
    /// is not a hit.
    pub fn hits<'a>(&'a self, event: &Event, mut f: impl FnMut(&'a IocEntry, &FieldKey)) {
        for (key, value) in event.fields() {
            let Value::Str(text) = value else { continue };
            // Of the well-known names only `Hashes` holds digests: the
            // others are skipped without a look at their names.
            if key.known_id().is_some() && *key != fields::HASHES {
                continue;
            }
            let name = key.as_str();
            if name == "Hashes" || name == "Hash" {
                for_each_hash_item(text, |label, hex| {
                    if let Some(e) = self.lookup_labelled(label, hex) {
                        f(e, key);
                    }
                });
            } else if HashAlgo::from_label(name).is_some() {
                if let Some(e) = self.lookup_labelled(Some(name), text.trim()) {
                    f(e, key);
                }
            }
        }
    }

    /// Looks up `hex` if `label` (when there is one) names its algorithm.
    fn lookup_labelled(&self, label: Option<&str>, hex: &str) -> Option<&IocEntry> {
        if !self.algos[HashAlgo::from_hex_len(hex.len())?.index()] {
            return None;
        }
        let head = match hex.as_bytes() {
            [a, b, c, d, ..] => {
                [(*a, *b), (*c, *d)].map(|(h, l)| Some((hex_val(h)? << 4) | hex_val(l)?))
            }
            _ => return None,
        };
        let head = usize::from(u16::from_be_bytes([head[0]?, head[1]?]));
        if self
            .heads
            .get(head >> 6)
            .is_none_or(|w| w & (1 << (head & 63)) == 0)
        {
            return None;
        }
        let digest = Digest::from_hex(hex)?;
        match label {
            Some(label) if HashAlgo::from_label(label)? != digest.algo() => None,
            _ => self.lookup(&digest),
        }
    }
}

/// The event's digest of `algo`, as text: a field named after the algorithm
/// (`SHA256`, `sha-256`, …) if there is one, else the item of `Hashes` (or
/// `Hash`) whose label names it, or an unlabelled item of its length. The
/// value is returned as the event has it (any case); `None` when the event
/// carries no such digest. Allocates nothing.
pub fn event_digest(event: &Event, algo: HashAlgo) -> Option<&str> {
    let strings = || {
        event.fields().filter_map(|(k, v)| match v {
            Value::Str(s) => Some((k.as_str(), s.as_str())),
            _ => None,
        })
    };
    if let Some((_, text)) = strings().find(|(name, _)| HashAlgo::from_label(name) == Some(algo)) {
        return Some(text.trim());
    }
    let mut found = None;
    for (_, text) in strings().filter(|(name, _)| *name == "Hashes" || *name == "Hash") {
        for_each_hash_item(text, |label, hex| {
            let names_algo = match label {
                Some(label) => HashAlgo::from_label(label) == Some(algo),
                None => HashAlgo::from_hex_len(hex.len()) == Some(algo),
            };
            if found.is_none() && names_algo {
                found = Some(hex);
            }
        });
        if found.is_some() {
            break;
        }
    }
    found
}

/// The part of a list line before its comment, if it has one (see the module
/// docs for when `#` starts a comment).
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    for (i, c) in line.char_indices() {
        if c != '#' {
            continue;
        }
        let after_space = line[..i]
            .chars()
            .next_back()
            .is_some_and(char::is_whitespace);
        let before_space_or_end = line[i + 1..].chars().next().is_none_or(char::is_whitespace);
        if after_space && before_space_or_end {
            return &line[..i];
        }
    }
    line
}

/// Calls `f(label, value)` for each item of a `Hashes` value: `label` is the
/// text before `=` (`None` for a bare digest). Items are separated by `,` or
/// `;` (Sysmon) or by whitespace; whitespace around `=` is allowed, so
/// `MD5 = <hex>` stays one labelled item rather than a label and a bare
/// digest that would be taken by its length. Allocates nothing: this runs on
/// every event.
fn for_each_hash_item<'t>(text: &'t str, mut f: impl FnMut(Option<&'t str>, &'t str)) {
    // Sysmon's own form (`SHA1=…,MD5=…`: printable ASCII, no blank, no `;`)
    // needs neither the character-wise splits nor the whitespace rules
    // below, and it is nearly every event's.
    if is_plain_items(text.as_bytes()) {
        // Items split on `,`, each on its first `=`, as `split` and
        // `split_once` would, with one search for both bytes (the two
        // searches were most of the cost of IOC matching). All ASCII, so
        // every offset is a character boundary.
        let bytes = text.as_bytes();
        let (mut start, mut eq) = (0, None);
        for at in memchr::memchr2_iter(b',', b'=', bytes).chain([bytes.len()]) {
            if bytes.get(at) == Some(&b'=') {
                eq = eq.or(Some(at));
                continue;
            }
            match eq {
                Some(eq) => f(Some(&text[start..eq]), &text[eq + 1..at]),
                None if at > start => f(None, &text[start..at]),
                None => {}
            }
            (start, eq) = (at + 1, None);
        }
        return;
    }
    for_each_hash_item_in_any_form(text, f);
}

/// Whether every byte is printable ASCII other than the blank and `;`
/// (`0x21..=0x7e`, not `0x3b`): Sysmon's own `Hashes`. Eight bytes at a time,
/// as it runs on every event.
fn is_plain_items(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let (words, tail) = bytes.as_chunks::<8>();
    let plain = |b: &u8| (0x21..=0x7e).contains(b) && *b != b';';
    words.iter().all(|w| {
        let x = u64::from_le_bytes(*w);
        // A byte below 0x21, above 0x7e (adding one sets its top bit, or
        // it was set), or equal to `;` (a zero byte of `x ^ ';'`s): each
        // test exact for the word as a whole.
        let below = x.wrapping_sub(ONES * 0x21) & !x;
        let above = x.wrapping_add(ONES) | x;
        let semi = x ^ (ONES * u64::from(b';'));
        let semi = semi.wrapping_sub(ONES) & !semi;
        (below | above | semi) & HIGHS == 0
    }) && tail.iter().all(plain)
}

/// [`for_each_hash_item`] for any text: items split on `,` and `;`, words on
/// any whitespace.
fn for_each_hash_item_in_any_form<'t>(text: &'t str, mut f: impl FnMut(Option<&'t str>, &'t str)) {
    for part in text.split([',', ';']) {
        let mut words = part.split_whitespace().peekable();
        while let Some(word) = words.next() {
            let (label, value) = if let Some((label, value)) = word.split_once('=') {
                (Some(label), value)
            } else if let Some(rest) = words.next_if(|w| w.starts_with('=')) {
                (Some(word), rest.strip_prefix('=').unwrap_or(rest))
            } else {
                (None, word)
            };
            // `=` ended the word: the value is the next word, unless that is
            // an item of its own (`MD5= SHA1=…`).
            let value = match label {
                Some(_) if value.is_empty() => words.next_if(|w| !w.contains('=')).unwrap_or(""),
                _ => value,
            };
            f(label, value);
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_well_known_name_but_hashes_names_a_digest() {
        // `hits` skips every other well-known field unread.
        for (name, _) in crate::event::KNOWN_FIELDS {
            let digest = *name == "Hash" || HashAlgo::from_label(name).is_some();
            assert!(!digest, "{name}");
        }
    }

    #[test]
    fn plain_items_are_told_from_any_byte_at_any_place_in_a_word() {
        let plain = |b: &[u8]| b.iter().all(|b| (0x21..=0x7e).contains(b) && *b != b';');
        let base = b"SHA1=99AE9C73E9BEE6F9,MD5=A6177D08".to_vec();
        assert!(is_plain_items(&base));
        for at in 0..base.len() {
            for b in 0..=255u8 {
                let mut text = base.clone();
                text[at] = b;
                assert_eq!(is_plain_items(&text), plain(&text), "{b:#x} at {at}");
            }
        }
        // Two odd bytes in one word, borrows between them included.
        for (x, y) in [
            (0x20u8, 0x21u8),
            (0x7f, 0x7e),
            (0x00, 0xff),
            (b';', b'<'),
            (0x3a, b';'),
        ] {
            let mut text = base.clone();
            text[8] = x;
            text[9] = y;
            assert_eq!(is_plain_items(&text), plain(&text), "{x:#x} {y:#x}");
        }
    }
    use crate::event::{fields, EventKind, Os, Timestamp};

    const SHA: &str = "2a1044e9e6e87a032f80c6d9ea6ae61bbbb053c0a21b186ecb3b812b49eb03b7";

    #[test]
    fn sysmon_form_is_split_as_any_form_is() {
        fn items(text: &str, general: bool) -> Vec<(Option<String>, String)> {
            let mut got = Vec::new();
            let push = |label: Option<&str>, value: &str| {
                got.push((label.map(str::to_owned), value.to_owned()))
            };
            if general {
                for_each_hash_item_in_any_form(text, push);
            } else {
                for_each_hash_item(text, push);
            }
            got
        }
        for text in [
            "SHA1=97A2,MD5=FFE1,SHA256=EAD7,IMPHASH=70CA",
            "SHA1=,MD5=CD",
            ",,SHA256=AB,",
            "ABCDEF",
            "=x",
            "a=b=c",
            "",
        ] {
            assert_eq!(items(text, false), items(text, true), "{text:?}");
        }
        // Every arrangement of separators and text up to seven bytes.
        let mut texts = vec![String::new()];
        for len in 1..=7 {
            let shorter: Vec<String> = texts
                .iter()
                .filter(|t| t.len() == len - 1)
                .cloned()
                .collect();
            texts.extend(
                shorter
                    .iter()
                    .flat_map(|t| [",", "=", "a", "-"].map(|c| format!("{t}{c}"))),
            );
        }
        assert_eq!(texts.len(), (0..=7).map(|n| 4usize.pow(n)).sum::<usize>());
        for text in &texts {
            assert_eq!(items(text, false), items(text, true), "{text:?}");
        }
    }

    #[test]
    fn lengths_pick_the_algorithm() {
        let (set, problems) = IocSet::parse(&format!(
            "{SHA} implant one\n44d88612fea8a8f36de82e1278abb02f eicar md5\n3395856ce81f2b7382dee72602f798b642f14140 # sha1, no name\n\n# only a comment\nabc\n"
        ));
        assert_eq!(set.len(), 3);
        assert_eq!(
            problems,
            vec![IocProblem {
                line: 6,
                reason: "`abc` is not a hex MD5 (32), SHA-1 (40) or SHA-256 (64) digest".into()
            }]
        );
        assert_eq!(
            set.lookup_hex(&SHA.to_uppercase()).unwrap().name,
            "implant one"
        );
        assert_eq!(
            set.lookup_hex("44D88612FEA8A8F36DE82E1278ABB02F")
                .unwrap()
                .digest
                .algo(),
            HashAlgo::Md5
        );
        assert_eq!(
            set.lookup_hex("3395856ce81f2b7382dee72602f798b642f14140")
                .unwrap()
                .name,
            ""
        );
        assert!(set
            .lookup_hex("0000000000000000000000000000000000000000")
            .is_none());
    }

    #[test]
    fn sysmon_hashes_field_is_split() {
        let (set, _) = IocSet::parse(&format!("{SHA} lsa.exe\n"));
        let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
        ev.set(
            fields::HASHES,
            format!(
                "SHA1=AAAA,MD5=BBBB,SHA256={},IMPHASH=CC",
                SHA.to_uppercase()
            )
            .into(),
        );
        let mut hits = Vec::new();
        set.hits(&ev, |e, k| {
            hits.push((e.name.clone(), k.as_str().to_owned()))
        });
        assert_eq!(hits, vec![("lsa.exe".to_owned(), "Hashes".to_owned())]);

        let mut miss = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
        miss.set(fields::HASHES, "SHA256=ABCDEF".into());
        let mut n = 0;
        set.hits(&miss, |_, _| n += 1);
        assert_eq!(n, 0);
    }

    #[test]
    fn digest_displays_lower_hex() {
        assert_eq!(
            Digest::from_hex(&SHA.to_uppercase()).unwrap().to_string(),
            SHA
        );
        assert!(Digest::from_hex(
            "zz1044e9e6e87a032f80c6d9ea6ae61bbbb053c0a21b186ecb3b812b49eb03b7"
        )
        .is_none());
    }

    const MD5: &str = "44d88612fea8a8f36de82e1278abb02f";

    /// The names of the entries that an event with these fields hits.
    fn hit_names(set: &IocSet, fields: &[(&str, &str)]) -> Vec<String> {
        let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
        for (k, v) in fields {
            ev.set(FieldKey::from_name(k), (*v).into());
        }
        let mut names = Vec::new();
        set.hits(&ev, |e, _| names.push(e.name.clone()));
        names
    }

    #[test]
    fn hashes_labels_must_name_the_digest_algorithm() {
        let (set, _) = IocSet::parse(&format!("{MD5} md5 ioc\n{SHA} sha ioc\n"));
        let hashes = |v: &str| hit_names(&set, &[("Hashes", v)]);
        let none: Vec<String> = vec![];

        // An import hash is not a file hash, even when the hex is equal.
        assert_eq!(hashes(&format!("IMPHASH={MD5}")), none);
        assert_eq!(
            hashes(&format!("SHA1=AA,IMPHASH={}", MD5.to_uppercase())),
            none
        );
        assert_eq!(hashes(&format!("IMPHASH = {MD5}")), none);
        assert_eq!(hashes(&format!("IMPHASH= {MD5}")), none);
        assert_eq!(hashes(&format!("=  {MD5}")), none);
        assert_eq!(hashes(&format!("MD5={MD5}")), ["md5 ioc"]);
        assert_eq!(hashes(&format!("md5={}", MD5.to_uppercase())), ["md5 ioc"]);
        assert_eq!(hashes(&format!("MD5 = {MD5}")), ["md5 ioc"]);
        assert_eq!(
            hashes(&format!("MD5= ; {MD5}")),
            ["md5 ioc"],
            "`;` ends the item"
        );
        // A label that disagrees with the digest's length does not match.
        assert_eq!(hashes(&format!("MD5={SHA}")), none);
        assert_eq!(hashes(&format!("SHA1={SHA}")), none);
        assert_eq!(hashes(&format!("SHA256={MD5}")), none);
        assert_eq!(hashes(&format!("SHA-256={SHA}")), ["sha ioc"]);
        assert_eq!(
            hashes(&format!("sha256={SHA} md5={MD5}")),
            ["sha ioc", "md5 ioc"]
        );
        // A bare digest is taken by its length.
        assert_eq!(hashes(MD5), ["md5 ioc"]);
        assert_eq!(hashes(&format!(" {SHA} ; {MD5}")), ["sha ioc", "md5 ioc"]);

        // Fields named after an algorithm hold digests of that algorithm.
        assert_eq!(hit_names(&set, &[("md5", MD5)]), ["md5 ioc"]);
        assert_eq!(
            hit_names(&set, &[("SHA256", &format!(" {SHA} "))]),
            ["sha ioc"]
        );
        assert_eq!(hit_names(&set, &[("MD5", SHA)]), none);
        assert_eq!(hit_names(&set, &[("SHA1", MD5)]), none);
        assert_eq!(hit_names(&set, &[("IMPHASH", MD5)]), none);
    }

    #[test]
    fn digests_alike_in_their_first_bytes_stay_apart() {
        // The lookup hashes a digest by its first eight bytes only; equality
        // still compares all of them.
        let a = format!("{}{}", "ab".repeat(8), "01".repeat(24));
        let b = format!("{}{}", "ab".repeat(8), "02".repeat(24));
        let (set, problems) = IocSet::parse(&format!("{a} first\n{b} second\n"));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(set.len(), 2);
        assert_eq!(set.lookup_hex(&a).map(|e| e.name.as_str()), Some("first"));
        assert_eq!(set.lookup_hex(&b).map(|e| e.name.as_str()), Some("second"));
        let c = format!("{}{}", "ab".repeat(8), "03".repeat(24));
        assert!(set.lookup_hex(&c).is_none());
        // A SHA-256-only list still finds its digest among Sysmon's others.
        let hashes = format!(
            "SHA1={},MD5={},SHA256={b},IMPHASH={}",
            "1".repeat(40),
            MD5,
            MD5
        );
        assert_eq!(hit_names(&set, &[("Hashes", &hashes)]), ["second"]);
    }

    #[test]
    fn hash_signs_inside_names_are_kept() {
        let other = "3395856ce81f2b7382dee72602f798b642f14140";
        let (set, problems) = IocSet::parse(&format!(
            "   # an indented comment\n{SHA} implant #2\n{MD5} implant # seen 2021\n{other}\t#\n#{SHA} commented out\n{SHA}#glued\n"
        ));
        assert_eq!(set.lookup_hex(SHA).unwrap().name, "implant #2");
        assert_eq!(set.lookup_hex(MD5).unwrap().name, "implant");
        assert_eq!(set.lookup_hex(other).unwrap().name, "");
        assert_eq!(set.len(), 3);
        // `#` glued to the digest is part of it, so the line is not a digest.
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, 6);
        assert!(problems[0].reason.contains("is not a hex"), "{problems:?}");
    }

    #[test]
    fn a_repeated_digest_with_another_name_is_reported_and_the_first_kept() {
        let (set, problems) = IocSet::parse(&format!(
            "{SHA} first\n{MD5}\n{} second\n{SHA} first\n{MD5} named later\n",
            SHA.to_uppercase()
        ));
        assert_eq!(set.len(), 2);
        assert_eq!(set.lookup_hex(SHA).unwrap().name, "first");
        assert_eq!(set.lookup_hex(SHA).unwrap().line, 1);
        assert_eq!(set.lookup_hex(MD5).unwrap().name, "");
        assert_eq!(
            problems,
            [
                IocProblem {
                    line: 3,
                    reason: "duplicate of line 1 (`first`); the first is kept".into()
                },
                IocProblem {
                    line: 5,
                    reason: "duplicate of line 2 (no name); the first is kept".into()
                },
            ],
            "line 4 repeats line 1 exactly, which loses nothing"
        );
    }

    #[test]
    fn text_that_was_not_utf8_is_reported_by_line() {
        let mut bytes = b"\xff\xfe".to_vec();
        bytes.extend_from_slice(SHA.as_bytes());
        bytes.extend_from_slice(b" utf-16 mark\n");
        bytes.extend_from_slice(MD5.as_bytes());
        bytes.extend_from_slice(b" caf\xe9 dropper\n4\xd0\n");
        let (set, problems) = IocSet::parse(&String::from_utf8_lossy(&bytes));
        assert_eq!(set.len(), 1);
        assert_eq!(set.lookup_hex(MD5).unwrap().name, "caf\u{FFFD} dropper");
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [1, 3]);
        assert!(problems
            .iter()
            .all(|p| p.reason.starts_with("not UTF-8 text")));
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_digest() {
        let (set, problems) = IocSet::parse(&format!("\u{FEFF}{SHA} x\n"));
        assert_eq!((set.len(), problems.len()), (1, 0));
    }

    #[test]
    fn odd_input_never_panics() {
        // Every short string over characters that steer the parsers: multi-byte
        // ones where a byte index could fall inside a character, separators,
        // `#`, `=`.
        let alphabet = [
            'a', '1', '#', '=', ' ', ',', ';', '\t', '\n', 'é', '\u{FFFD}', '\u{FEFF}',
        ];
        let (set, _) = IocSet::parse(&format!("{MD5}\n"));
        let mut text = String::new();
        for n in 0..alphabet.len().pow(4) {
            text.clear();
            let mut k = n;
            for _ in 0..4 {
                text.push(alphabet[k % alphabet.len()]);
                k /= alphabet.len();
            }
            let _ = IocSet::parse(&text);
            let _ = IocSet::parse(&format!("{MD5}{text}{MD5}"));
            hit_names(&set, &[("Hashes", &text), ("MD5", &text)]);
            hit_names(&set, &[("Hashes", &format!("{text}{MD5}{text}"))]);
        }
    }
}

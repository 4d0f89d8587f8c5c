//! Indicator lists: known-bad file hashes, as threat reports publish them.
//!
//! The format is plain text, one indicator a line: a hex MD5, SHA-1 or SHA-256
//! (told apart by length), then optionally whitespace and a free-text name.
//! `#` starts a comment; blank lines are ignored; hex is case-insensitive.
//!
//! ```
//! use trawl_engine::ioc::IocSet;
//!
//! let (set, problems) = IocSet::parse("# DEV-0228\n2A1044E9E6E87A032F80C6D9EA6AE61BBBB053C0A21B186ECB3B812B49EB03B7 lsa.exe\nnot-a-hash\n");
//! assert_eq!(set.len(), 1);
//! assert_eq!(problems.len(), 1);
//! assert_eq!(problems[0].line, 3);
//! let hit = set.lookup_hex("2a1044e9e6e87a032f80c6d9ea6ae61bbbb053c0a21b186ecb3b812b49eb03b7").unwrap();
//! assert_eq!(hit.name, "lsa.exe");
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::event::{Event, FieldKey, Value};

/// Which hash function an indicator is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgo {
    Md5,
    Sha1,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    algo: HashAlgo,
    len: u8,
    bytes: [u8; 32],
}

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
    pub digest: Digest,
    /// The free text after the hash (may be empty).
    pub name: String,
    /// 1-based line in the list file.
    pub line: usize,
}

/// A line of a list that is not an indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IocProblem {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

/// A parsed indicator list, ready for lookups.
#[derive(Debug, Clone, Default)]
pub struct IocSet {
    entries: Arc<HashMap<Digest, IocEntry>>,
}

impl IocSet {
    /// Parses a list. Lines that are not indicators are returned as problems
    /// (line and reason); they never stop the parse.
    pub fn parse(text: &str) -> (IocSet, Vec<IocProblem>) {
        let mut entries = HashMap::new();
        let mut problems = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let (hex, name) = match content.find(char::is_whitespace) {
                Some(p) => (&content[..p], content[p..].trim()),
                None => (content, ""),
            };
            match Digest::from_hex(hex) {
                Some(digest) => {
                    entries.entry(digest).or_insert(IocEntry {
                        digest,
                        name: name.to_owned(),
                        line,
                    });
                }
                None => problems.push(IocProblem {
                    line,
                    reason: format!(
                        "`{}` is not a hex MD5 (32), SHA-1 (40) or SHA-256 (64) digest",
                        truncate(hex, 80)
                    ),
                }),
            }
        }
        (
            IocSet {
                entries: Arc::new(entries),
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
    /// field the hash was found in. Hashes are read from `Hashes`
    /// (`SHA256=…,MD5=…` as Sysmon writes it, or a bare digest) and from
    /// fields named `SHA256`, `SHA1`, `MD5` (any case).
    pub fn hits<'a>(&'a self, event: &Event, mut f: impl FnMut(&'a IocEntry, &FieldKey)) {
        for (key, value) in event.fields() {
            let Value::Str(text) = value else { continue };
            let name = key.as_str();
            if name == "Hashes" || name == "Hash" {
                for part in text.split([',', ';', ' ']) {
                    let hex = part.split_once('=').map_or(part, |(_, h)| h).trim();
                    if let Some(e) = self.lookup_hex(hex) {
                        f(e, key);
                    }
                }
            } else if name.eq_ignore_ascii_case("sha256")
                || name.eq_ignore_ascii_case("sha1")
                || name.eq_ignore_ascii_case("md5")
            {
                if let Some(e) = self.lookup_hex(text.trim()) {
                    f(e, key);
                }
            }
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
    use crate::event::{fields, EventKind, Os, Timestamp};

    const SHA: &str = "2a1044e9e6e87a032f80c6d9ea6ae61bbbb053c0a21b186ecb3b812b49eb03b7";

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
}

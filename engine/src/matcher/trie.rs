//! Anchored literals (`startswith`, `endswith`, equals) of one field, as a
//! byte trie walked from one end of the text.
//!
//! A literal that must sit at the start (or end) of a field can only match
//! one way, so there is no need to scan the text for it: walking a trie of
//! the ASCII-lower-cased literals from the first byte (or, over the reversed
//! literals, from the last) finds every one that holds, and the walk stops at
//! the first byte no literal continues with, typically after a few bytes
//! (`\cmd.exe` is seven steps from the end of `C:\Windows\System32\cmd.exe`).
//! So every anchored literal of every rule is known after the scan at almost
//! no cost, and only `contains` literals need an automaton over the text.

use super::compile::LitUse;

/// One trie, built once; nodes in breadth-first order are not needed, only
/// compact edge lists.
#[derive(Debug)]
pub(super) struct AnchoredTrie {
    /// Walk from the end of the text (the keys are reversed).
    backward: bool,
    /// Node `n`'s edges are `edge_bytes[edge_start[n]..edge_start[n + 1]]`,
    /// leading to `edge_next[..]` at the same positions.
    edge_start: Vec<u32>,
    edge_bytes: Vec<u8>,
    edge_next: Vec<u32>,
    /// Node `n`'s literals are `uses[use_start[n]..use_start[n + 1]]`.
    use_start: Vec<u32>,
    uses: Vec<LitUse>,
}

impl AnchoredTrie {
    /// Builds a trie over `(spelling, use)` pairs; `backward` for suffixes.
    pub(super) fn build(lits: Vec<(String, LitUse)>, backward: bool) -> AnchoredTrie {
        // Build with sorted child lists, then flatten.
        struct Node {
            children: Vec<(u8, u32)>,
            uses: Vec<LitUse>,
        }
        let mut nodes = vec![Node {
            children: Vec::new(),
            uses: Vec::new(),
        }];
        for (spelling, u) in lits {
            let mut key = spelling.to_ascii_lowercase().into_bytes();
            if backward {
                key.reverse();
            }
            let mut n = 0usize;
            for b in key {
                n = match nodes[n].children.binary_search_by_key(&b, |c| c.0) {
                    Ok(i) => nodes[n].children[i].1 as usize,
                    Err(i) => {
                        let id = nodes.len() as u32;
                        nodes[n].children.insert(i, (b, id));
                        nodes.push(Node {
                            children: Vec::new(),
                            uses: Vec::new(),
                        });
                        id as usize
                    }
                };
            }
            nodes[n].uses.push(u);
        }
        let mut t = AnchoredTrie {
            backward,
            edge_start: Vec::with_capacity(nodes.len() + 1),
            edge_bytes: Vec::new(),
            edge_next: Vec::new(),
            use_start: Vec::with_capacity(nodes.len() + 1),
            uses: Vec::new(),
        };
        for node in nodes {
            t.edge_start.push(t.edge_bytes.len() as u32);
            t.use_start.push(t.uses.len() as u32);
            for (b, next) in node.children {
                t.edge_bytes.push(b);
                t.edge_next.push(next);
            }
            t.uses.extend(node.uses);
        }
        t.edge_start.push(t.edge_bytes.len() as u32);
        t.use_start.push(t.uses.len() as u32);
        t
    }

    /// How many literal spellings it holds.
    pub(super) fn len(&self) -> usize {
        self.uses.len()
    }

    /// Calls `hit(use, start, end)` for every literal of the trie that
    /// matches at its end of `hay` (ignoring ASCII case; exact case and
    /// `equals` are for the caller to check from the span).
    #[inline]
    pub(super) fn walk(&self, hay: &[u8], mut hit: impl FnMut(&LitUse, usize, usize)) {
        let n = hay.len();
        let mut node = 0usize;
        for depth in 1..=n {
            let b = if self.backward {
                hay[n - depth]
            } else {
                hay[depth - 1]
            }
            .to_ascii_lowercase();
            let (s, e) = (
                self.edge_start[node] as usize,
                self.edge_start[node + 1] as usize,
            );
            // Edge lists are short past the first few levels: a plain loop
            // beats a vectorised search's setup.
            match self.edge_bytes[s..e].iter().position(|&x| x == b) {
                Some(k) => node = self.edge_next[s + k] as usize,
                None => return,
            }
            let (us, ue) = (
                self.use_start[node] as usize,
                self.use_start[node + 1] as usize,
            );
            if us < ue {
                let (start, end) = if self.backward {
                    (n - depth, n)
                } else {
                    (0, depth)
                };
                for u in &self.uses[us..ue] {
                    hit(u, start, end);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::StrOp;

    #[test]
    fn walks_find_every_literal_at_their_end() {
        let lits = [
            "\\cmd.exe",
            ".exe",
            "e",
            "c:\\windows\\",
            "c:\\",
            "\\CMD.EXE.bak",
        ];
        let texts = [
            "C:\\Windows\\System32\\cmd.EXE",
            "c:\\x.exe",
            "",
            "e",
            "x.exe.bak",
        ];
        for backward in [false, true] {
            let op = if backward {
                StrOp::Suffix
            } else {
                StrOp::Prefix
            };
            let t = AnchoredTrie::build(LitUse::numbered(&lits, op), backward);
            assert_eq!(t.len(), lits.len());
            for text in texts {
                let lower = text.to_ascii_lowercase();
                let mut got: Vec<u32> = Vec::new();
                t.walk(text.as_bytes(), |u, start, end| {
                    assert!(lower[start..end].eq_ignore_ascii_case(lits[u.atom as usize]));
                    got.push(u.atom);
                });
                got.sort_unstable();
                let want: Vec<u32> = (0..lits.len() as u32)
                    .filter(|&i| {
                        let l = lits[i as usize].to_ascii_lowercase();
                        if backward {
                            lower.ends_with(&l)
                        } else {
                            lower.starts_with(&l)
                        }
                    })
                    .collect();
                assert_eq!(got, want, "{text:?} backward={backward}");
            }
        }
    }
}

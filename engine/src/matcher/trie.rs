//! Anchored literals (`startswith`, `endswith`, equals) of one field, as a
//! byte trie walked from one end of the text.
//!
//! A literal that must sit at the start (or end) of a field can only match
//! one way, so there is no need to scan the text for it: walking a trie of
//! the ASCII-lower-cased literals from the first byte (or, over the reversed
//! literals, from the last) finds every one that holds, and the walk stops at
//! the first byte no literal continues with, typically after a few bytes
//! (`\cmd.exe` is seven steps from the end of `C:\Windows\System32\cmd.exe`).
//! So every anchored literal of a scanned field is known after the scan at
//! almost no cost, and only `contains` literals need an automaton over the
//! text.
//!
//! A step is one read of a packed node and, for the few nodes with many
//! children (the root, the byte after `\` in a path), one read of a 256-way
//! table; other nodes have a handful of edges, searched in place. A run of
//! nodes with one child each (`indows\system32\` once `c:\w` is read) is
//! one step too: its bytes are compared with the text's in one go.

use super::compile::LitUse;

/// Nodes with more children than this get a 256-way table: a list that long
/// costs a mispredicted branch per step.
const DENSE_FROM: usize = 6;

/// One node, packed so that a step reads one cache line.
#[derive(Debug, Clone, Copy)]
struct TNode {
    /// Its edges: `edge_bytes[edges..edges + n_edges]`, leading to
    /// `edge_next[..]` at the same positions; or, when `dense` is set, the
    /// table `dense[edges]`.
    edges: u32,
    n_edges: u16,
    dense: bool,
    /// Its literals: `uses[uses..uses + n_uses]`.
    n_uses: u16,
    uses: u32,
    /// When it has one child, and that child one child and no literal, and
    /// so on: the bytes of that run, `chain_bytes[chain..chain +
    /// chain_len]`, and the node at its end.
    chain: u32,
    chain_len: u32,
    chain_to: u32,
}

/// One trie, built once.
#[derive(Debug)]
pub(super) struct AnchoredTrie {
    /// Walk from the end of the text (the keys are reversed).
    backward: bool,
    /// Node 0 is the root.
    nodes: Vec<TNode>,
    edge_bytes: Vec<u8>,
    edge_next: Vec<u32>,
    /// Child per byte for nodes with many children (0: none; the root is
    /// never a child).
    dense: Vec<[u32; 256]>,
    chain_bytes: Vec<u8>,
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
            nodes: Vec::with_capacity(nodes.len()),
            edge_bytes: Vec::new(),
            edge_next: Vec::new(),
            dense: Vec::new(),
            chain_bytes: Vec::new(),
            uses: Vec::new(),
        };
        // The run of single children of each node a walk can stand on: the
        // root, the children of nodes with several, and the ends of runs.
        // (A node inside a run is jumped over, so it needs none; computing
        // one for every node would copy each long literal's bytes once per
        // byte.)
        let mut chains = vec![(0u32, 0u32, 0u32); nodes.len()];
        let mut stack = vec![0usize];
        while let Some(n) = stack.pop() {
            if nodes[n].children.len() != 1 {
                stack.extend(nodes[n].children.iter().map(|&(_, c)| c as usize));
                continue;
            }
            let start = t.chain_bytes.len();
            let mut at = n;
            let end = loop {
                let (b, child) = nodes[at].children[0];
                t.chain_bytes.push(b);
                let c = &nodes[child as usize];
                if c.uses.is_empty() && c.children.len() == 1 {
                    at = child as usize;
                    continue;
                }
                break child;
            };
            let len = t.chain_bytes.len() - start;
            chains[n] = (start as u32, len as u32, end);
            stack.push(end as usize);
        }
        for (node, (chain, chain_len, chain_to)) in nodes.into_iter().zip(chains) {
            let dense = node.children.len() > DENSE_FROM;
            let edges = if dense {
                let mut table = [0u32; 256];
                for &(b, next) in &node.children {
                    table[b as usize] = next;
                }
                t.dense.push(table);
                t.dense.len() - 1
            } else {
                let at = t.edge_bytes.len();
                for &(b, next) in &node.children {
                    t.edge_bytes.push(b);
                    t.edge_next.push(next);
                }
                at
            };
            t.nodes.push(TNode {
                edges: edges as u32,
                n_edges: node.children.len() as u16,
                dense,
                n_uses: node.uses.len() as u16,
                uses: t.uses.len() as u32,
                chain,
                chain_len,
                chain_to,
            });
            t.uses.extend(node.uses);
        }
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
        // The text's byte `depth` places from the walk's end, lower-cased.
        let at = |depth: usize| {
            if self.backward {
                hay[n - 1 - depth]
            } else {
                hay[depth]
            }
            .to_ascii_lowercase()
        };
        let mut node = self.nodes[0];
        let mut depth = 0;
        loop {
            if node.chain_len > 0 {
                let k = node.chain_len as usize;
                if depth + k > n {
                    return;
                }
                let run = &self.chain_bytes[node.chain as usize..node.chain as usize + k];
                if !run.iter().enumerate().all(|(j, &b)| at(depth + j) == b) {
                    return;
                }
                depth += k;
                node = self.nodes[node.chain_to as usize];
            } else {
                if depth == n || node.n_edges == 0 {
                    return;
                }
                let b = at(depth);
                depth += 1;
                let next = if node.dense {
                    self.dense[node.edges as usize][b as usize]
                } else {
                    let s = node.edges as usize;
                    let e = s + node.n_edges as usize;
                    match self.edge_bytes[s..e].iter().position(|&x| x == b) {
                        Some(k) => self.edge_next[s + k],
                        None => 0,
                    }
                };
                if next == 0 {
                    return;
                }
                node = self.nodes[next as usize];
            }
            if node.n_uses > 0 {
                let (start, end) = if self.backward {
                    (n - depth, n)
                } else {
                    (0, depth)
                };
                let us = node.uses as usize;
                for u in &self.uses[us..us + node.n_uses as usize] {
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
            // Long runs of single children, sharing their start.
            "c:\\windows\\system32\\cmd.exe",
            "c:\\windows\\system32\\wbem\\",
            "c:\\programdata\\",
        ];
        let texts = [
            "C:\\Windows\\System32\\cmd.EXE",
            "c:\\x.exe",
            "",
            "e",
            "x.exe.bak",
            "C:\\WINDOWS\\system32\\wbem\\wmic.exe",
            "c:\\windows\\sys",
            "c:\\windows\\system32\\cmd.ex",
            "c:\\programdata",
            "c:\\programdatA\\x\\cmd.exe",
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

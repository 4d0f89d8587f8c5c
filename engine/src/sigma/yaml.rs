//! YAML text to documents in one pass, with the bounds hostile input needs.
//!
//! yaml-rust2's own loader builds the tree by recursion (so deep nesting can
//! overflow the stack) and copies an aliased node at each use (so a few
//! aliases can blow up memory). This loader pulls the parser's events in a
//! loop, checks depth, node count and text size as they come, and builds the
//! same documents `YamlLoader::load_from_str` builds (the same scalar
//! resolution, the same duplicate-key error) without a second pass over the
//! text. Reading rule files is most of the time it takes to load a rule set,
//! so the one pass matters.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::yaml::Hash;
use yaml_rust2::{ScanError, Yaml};

/// How deeply YAML collections may nest. Sigma rules need about five levels.
pub(super) const MAX_YAML_DEPTH: usize = 64;

/// How many nodes a file may expand to once aliases are resolved: guards
/// against "billion laughs" alias bombs.
pub(super) const MAX_YAML_NODES: usize = 1_000_000;

/// How many bytes of scalar text a file may expand to once aliases are
/// resolved: an aliased string is copied at every use, so a few aliases of
/// one large string are a bomb too.
pub(super) const MAX_YAML_BYTES: usize = 64 << 20;

/// Nodes and scalar bytes a subtree expands to.
#[derive(Clone, Copy, Default)]
struct Size {
    nodes: usize,
    bytes: usize,
}

impl Size {
    fn add(&mut self, other: Size) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// An open collection: its node so far, its anchor, its expanded size, and
/// (for a mapping) the key waiting for its value.
struct Open {
    node: Yaml,
    anchor: usize,
    size: Size,
    key: Option<Yaml>,
}

/// Loads every document of `text`, as `YamlLoader::load_from_str` would,
/// or fails with the first syntax error or exceeded bound.
pub(super) fn load(text: &str) -> Result<Vec<Yaml>, ScanError> {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    // The anchors of the current document: node and expanded size.
    let mut anchors: HashMap<usize, (Yaml, Size)> = HashMap::new();
    let mut total = Size::default();
    let mut root: Option<Yaml> = None;
    loop {
        let (ev, mark) = parser.next_token()?;
        let (node, anchor, size) = match ev {
            Event::StreamEnd => return Ok(docs),
            Event::Nothing | Event::StreamStart => continue,
            Event::DocumentStart => {
                // Anchors do not reach across documents.
                anchors.clear();
                root = None;
                continue;
            }
            Event::DocumentEnd => {
                // An empty document is `BadValue`, as yaml-rust2 has it.
                docs.push(root.take().unwrap_or(Yaml::BadValue));
                continue;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let node = if matches!(ev, Event::SequenceStart(..)) {
                    Yaml::Array(Vec::new())
                } else {
                    Yaml::Hash(Hash::new())
                };
                open.push(Open {
                    node,
                    anchor,
                    size: Size { nodes: 1, bytes: 0 },
                    key: None,
                });
                if open.len() > MAX_YAML_DEPTH {
                    return Err(ScanError::new(
                        mark,
                        &format!("collections nested more than {MAX_YAML_DEPTH} levels deep"),
                    ));
                }
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match open.pop() {
                Some(o) => (o.node, o.anchor, o.size),
                None => continue,
            },
            Event::Scalar(text, style, anchor, tag) => {
                let size = Size {
                    nodes: 1,
                    bytes: text.len(),
                };
                (scalar(text, style, tag.as_ref()), anchor, size)
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some((node, size)) => {
                    // Checked before the copy is made.
                    let mut after = total;
                    after.add(*size);
                    check(after, mark)?;
                    (node.clone(), 0, *size)
                }
                // An anchor of an earlier document, which the parser still
                // knows: an error, as yaml-rust2's loader has it.
                None => {
                    return Err(ScanError::new(
                        mark,
                        "while parsing node, found unknown anchor",
                    ))
                }
            },
        };
        total.add(size);
        check(total, mark)?;
        if anchor > 0 {
            anchors.insert(anchor, (node.clone(), size));
        }
        match open.last_mut() {
            None => root = Some(node),
            Some(parent) => {
                parent.size.add(size);
                insert(parent, node, mark)?;
            }
        }
    }
}

fn check(total: Size, mark: Marker) -> Result<(), ScanError> {
    if total.nodes > MAX_YAML_NODES {
        return Err(ScanError::new(
            mark,
            &format!("more than {MAX_YAML_NODES} nodes once aliases are expanded"),
        ));
    }
    if total.bytes > MAX_YAML_BYTES {
        return Err(ScanError::new(
            mark,
            &format!(
                "more than {} MiB of text once aliases are expanded",
                MAX_YAML_BYTES >> 20
            ),
        ));
    }
    Ok(())
}

/// Adds a finished node to its parent collection (yaml-rust2's
/// `insert_new_node`).
fn insert(parent: &mut Open, node: Yaml, mark: Marker) -> Result<(), ScanError> {
    match &mut parent.node {
        Yaml::Array(v) => v.push(node),
        Yaml::Hash(h) => match parent.key.take() {
            None => parent.key = Some(node),
            Some(key) => {
                if h.insert(key, node).is_some() {
                    let inserted_key = h.back().map(|(k, _)| k);
                    return Err(ScanError::new_string(
                        mark,
                        format!(
                            "{:?}: duplicated key in mapping",
                            inserted_key.unwrap_or(&Yaml::BadValue)
                        ),
                    ));
                }
            }
        },
        _ => unreachable!("only collections are open"),
    }
    Ok(())
}

/// A scalar's value, resolved as yaml-rust2's loader resolves it: quoted
/// scalars are strings, `!!bool`/`!!int`/`!!float`/`!!null` tags are
/// honoured, plain scalars follow the YAML 1.2 core schema.
pub(super) fn scalar(v: String, style: TScalarStyle, tag: Option<&Tag>) -> Yaml {
    if style != TScalarStyle::Plain {
        return Yaml::String(v);
    }
    let Some(tag) = tag else {
        return Yaml::from_str(&v);
    };
    if tag.handle != "tag:yaml.org,2002:" {
        return Yaml::String(v);
    }
    match tag.suffix.as_ref() {
        "bool" => match v.as_str() {
            "true" | "True" | "TRUE" => Yaml::Boolean(true),
            "false" | "False" | "FALSE" => Yaml::Boolean(false),
            _ => Yaml::BadValue,
        },
        "int" => match v.parse::<i64>() {
            Err(_) => Yaml::BadValue,
            Ok(i) => Yaml::Integer(i),
        },
        "float" => match parse_f64(&v) {
            Some(_) => Yaml::Real(v),
            None => Yaml::BadValue,
        },
        "null" => match v.as_ref() {
            "~" | "null" => Yaml::Null,
            _ => Yaml::BadValue,
        },
        _ => Yaml::String(v),
    }
}

/// yaml-rust2's float syntax: Rust's, plus the YAML spellings of infinity
/// and NaN, and never a word without a digit (`inf`).
fn parse_f64(v: &str) -> Option<f64> {
    match v {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ if v.as_bytes().iter().any(u8::is_ascii_digit) => v.parse::<f64>().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yaml_rust2::YamlLoader;

    /// The same documents, or the same error, as yaml-rust2's own loader.
    fn same_as_yaml_rust2(text: &str) {
        let ours = load(text).map_err(|e| e.to_string());
        let theirs = YamlLoader::load_from_str(text).map_err(|e| e.to_string());
        // NaN is not equal to itself: compare the debug text.
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{text:?}");
    }

    #[test]
    fn builds_what_yaml_rust2_builds() {
        for text in [
            "",
            "---\n",
            "a: 1\n",
            "title: x\nid: 5\nlevel: high\ntags: [a, b]\nlogsource: {category: process_creation}\n",
            "a: yes\nb: no\nc: ~\nd: null\ne: 0x1F\nf: 0o17\ng: +5\nh: 1.5\ni: .inf\nj: -.Inf\nk: .nan\nl: inf\nm: ''\nn: \"q\"\n",
            "a: !!bool true\nb: !!bool yes\nc: !!int 12\nd: !!int x\ne: !!float 1\nf: !!float z\ng: !!null ~\nh: !!null no\ni: !!str 5\nj: !custom 5\n",
            "base: &b {x: 1, y: [1, 2]}\nuse: *b\nagain: *b\n",
            "a: &s str\nb: *s\n---\nc: 1\n---\n",
            "- - - 1\n  - 2\n- {a: [b, {c: d}]}\n",
            "a: 1\na: 2\n",
            "? [complex, key]\n: value\n",
            "a: [1, 2\n",
            "a: *missing\n",
            "x: &a 1\n---\ny: *a\n",
            "key: |\n  multi\n  line\n",
        ] {
            same_as_yaml_rust2(text);
        }
    }

    #[test]
    fn bounds_are_checked_before_the_tree_grows() {
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(load(&deep).unwrap_err().to_string().contains("nested more"));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_owned()
            } else {
                format!("b{}", i - 1)
            };
            bomb += &format!(
                "b{i}: &b{i} [{}]\n",
                vec![format!("*{prev}"); 10].join(", ")
            );
        }
        assert!(load(&bomb)
            .unwrap_err()
            .to_string()
            .contains("nodes once aliases are expanded"));
        let big = "x".repeat(1 << 20);
        let mut text = format!("a: &a {big}\nb: [");
        text += &vec!["*a"; 80].join(", ");
        text += "]\n";
        assert!(load(&text).unwrap_err().to_string().contains("MiB of text"));
    }

    /// Every SigmaHQ rule file loads to exactly what yaml-rust2's loader
    /// builds. Reads `../shared/corpus/sigma` (CI); passes with a message
    /// where it is absent.
    #[test]
    fn sigmahq_files_load_as_yaml_rust2_loads_them() {
        for (_, text) in super::super::corpus::sigmahq_files().unwrap_or_default() {
            same_as_yaml_rust2(&text);
        }
    }
}

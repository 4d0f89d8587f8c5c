//! A look at a rule file's log source before it is parsed whole.
//!
//! Over half of SigmaHQ's rules are for log sources trawl does not produce
//! (registry, network, cloud audit logs, …), and reading YAML is most of the
//! time a rule set takes to load. A rule's `logsource` comes before its
//! `detection`, so only the head is looked at: its top-level `title`, `id`
//! and `logsource` entries are cut out by lines (the description, references
//! and tags are most of a head), read by lines when they are written in the
//! plainest YAML, and by the parser's events otherwise. A rule found out of
//! scope there is reported as such and the rest of its file is never read.
//!
//! Anything unusual (more than one document, a collection `action`, a
//! `filter` or `correlation` document, aliases or tags in `logsource`, `id`
//! or `title` after `detection`) gives no verdict: the file is then parsed
//! whole, as before.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::yaml::Hash;
use yaml_rust2::Yaml;

use super::yaml::scalar;
use super::{scalar_text, scope};

/// The categories trawl produces, as a rule would name them.
const IN_SCOPE_WORDS: [&str; 4] = [
    "process_creation",
    "file_event",
    "file_rename",
    "file_delete",
];

/// An out-of-scope rule found by the peek: its `id`, `title` and why.
pub(super) struct OutOfScope {
    pub(super) id: Option<String>,
    pub(super) title: Option<String>,
    pub(super) reason: String,
}

/// The verdict on a single-document rule whose log source is out of scope,
/// or `None` when the file must be parsed whole to know.
pub(super) fn out_of_scope(text: &str) -> Option<OutOfScope> {
    // A second document (or an explicit first one) could change the rule.
    if text.starts_with("---") || text.contains("\n---") {
        return None;
    }
    // A rule that names a category trawl produces is most likely in scope:
    // the whole parse reads it anyway, so do not read its head twice.
    if IN_SCOPE_WORDS.iter().any(|w| text.contains(w)) {
        return None;
    }
    // The parser ends the stream at a NUL and breaks lines at a lone CR,
    // which a cut by lines would not see: such a text is read whole.
    if text.contains('\0') || has_lone_cr(text) {
        return judge(text);
    }
    match head_entries(text) {
        Some(head) => judge_plain(&head).unwrap_or_else(|| judge(&head)),
        None => judge(text),
    }
}

/// Whether a CR in `text` is not the start of a CRLF line end.
fn has_lone_cr(text: &str) -> bool {
    text.match_indices('\r')
        .any(|(i, _)| text.as_bytes().get(i + 1) != Some(&b'\n'))
}

/// The verdict on a cut head (see [`head_entries`]) written in the plainest
/// YAML, read by lines: `id` and `title` as `key: value`, `logsource` as
/// `key: value` lines indented alike under it, every value a plain scalar
/// on one line (no quotes, no indicator first, no `: ` or ` #` inside).
/// Values are typed as the parser types plain scalars. `None` for anything
/// else, which [`judge`] reads.
///
/// Why: most of SigmaHQ's heads are that plain, and the YAML parser spent
/// about 35,000 instructions on each, mostly setting itself up.
fn judge_plain(head: &str) -> Option<Option<OutOfScope>> {
    let (mut id, mut title, mut logsource) = (None, None, None::<Hash>);
    // Indented lines belong to the log source only right under its key.
    let mut in_logsource = false;
    let mut indent = None;
    for line in head.lines() {
        let entry = line.trim_start_matches(' ');
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        let (key, after) = entry.split_once(':')?;
        if entry.len() == line.len() {
            in_logsource = false;
            let slot = match key {
                "id" => &mut id,
                "title" => &mut title,
                "logsource" if after.trim_matches(' ').is_empty() && logsource.is_none() => {
                    logsource = Some(Hash::new());
                    in_logsource = true;
                    continue;
                }
                _ => return None,
            };
            if slot.is_some() {
                return None;
            }
            *slot = Some(line_scalar(after)?);
        } else {
            let map = logsource.as_mut().filter(|_| in_logsource)?;
            let depth = line.len() - entry.len();
            if *indent.get_or_insert(depth) != depth || !is_word(key) {
                return None;
            }
            let value = line_scalar(after)?;
            if map.insert(Yaml::from_str(key), value).is_some() {
                return None;
            }
        }
    }
    // `logsource:` with nothing under it is null, not a mapping.
    if logsource.as_ref().is_some_and(Hash::is_empty) {
        return None;
    }
    Some(verdict(id, title, logsource))
}

/// The value after a key's colon when it is one scalar on its line that
/// needs no parser to read, as the parser reads it: plain (typed as YAML
/// types plain scalars), single-quoted, or double-quoted without escapes.
/// `None` otherwise, and for an empty value.
fn line_scalar(after_colon: &str) -> Option<Yaml> {
    let v = after_colon.strip_prefix(' ')?.trim_matches(' ');
    if v.contains(['\t', '\r']) {
        return None;
    }
    let first = v.bytes().next()?;
    let quoted = |q: char| v.strip_prefix(q)?.strip_suffix(q);
    match first {
        b'\'' => {
            let inner = quoted('\'')?;
            // A lone quote inside would end the scalar early.
            (!inner.replace("''", "").contains('\''))
                .then(|| Yaml::String(inner.replace("''", "'")))
        }
        b'"' => {
            let inner = quoted('"')?;
            (!inner.contains(['"', '\\'])).then(|| Yaml::String(inner.to_owned()))
        }
        _ => {
            let plain = !b"-?:,[]{}#&*!|>%@`".contains(&first)
                && !v.contains(": ")
                && !v.contains(" #")
                && !v.ends_with(':');
            plain.then(|| Yaml::from_str(v))
        }
    }
}

/// A plain word, as log source keys are written.
fn is_word(key: &str) -> bool {
    key.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The verdict on `text` read as parser events up to `detection`.
fn judge(text: &str) -> Option<OutOfScope> {
    let mut parser = Parser::new_from_str(text);
    let mut in_root = false;
    let (mut id, mut title, mut logsource) = (None, None, None);
    // Top-level keys, each followed by its value, up to `detection`.
    loop {
        let key = match parser.next_token().ok()?.0 {
            Event::StreamStart | Event::DocumentStart | Event::Nothing => continue,
            Event::MappingStart(..) if !in_root => {
                in_root = true;
                continue;
            }
            Event::Scalar(key, ..) if in_root => key,
            Event::MappingEnd if in_root => break,
            _ => return None,
        };
        match key.as_str() {
            "action" | "filter" | "correlation" => return None,
            "detection" => break,
            _ => {}
        }
        match (key.as_str(), parser.next_token().ok()?.0) {
            ("id" | "title" | "logsource", _) if seen(&key, &id, &title, &logsource) => {
                return None
            }
            ("id", Event::Scalar(v, style, _, tag)) => id = Some(scalar(v, style, tag.as_ref())),
            ("title", Event::Scalar(v, style, _, tag)) => {
                title = Some(scalar(v, style, tag.as_ref()))
            }
            ("logsource", Event::MappingStart(..)) => logsource = Some(read_mapping(&mut parser)?),
            ("id" | "title" | "logsource", _) => return None,
            (_, Event::Scalar(..)) => {}
            (_, Event::MappingStart(..) | Event::SequenceStart(..)) => {
                skip_collection(&mut parser)?
            }
            _ => return None,
        }
    }
    verdict(id, title, logsource)
}

/// The out-of-scope verdict on a head's `id`, `title` and `logsource`:
/// `None` when one is missing or the log source is in scope.
fn verdict(id: Option<Yaml>, title: Option<Yaml>, logsource: Option<Hash>) -> Option<OutOfScope> {
    let (id, title) = (id?, title?);
    let problem = scope(Some(&Yaml::Hash(logsource?))).err()?;
    problem.out_of_scope.then(|| OutOfScope {
        id: scalar_text(&id),
        title: scalar_text(&title),
        reason: problem.reason,
    })
}

/// The top-level `title`, `id` and `logsource` entries that come before
/// `detection`, cut out of the text with their lines as written, or `None`
/// when the top level is not plain enough to cut by lines.
///
/// Why: the YAML parser reads about 100 instructions a byte, and a rule's
/// description, references and tags are most of its head. Cutting by lines
/// is safe because a line that starts in column 0 can only be a top-level
/// key, a comment or a document marker: block scalars and the continuation
/// lines of flow scalars and collections are indented under their key.
/// Anything else in column 0 (a quoted or complex key, a directive, a byte
/// order mark, a flow mapping) gives `None`, and the text is read whole.
///
/// That holds in valid YAML. So that a broken file is not read as valid, a
/// line that opens a quoted scalar or a flow collection without closing it,
/// or is indented with a tab, also gives `None` (a column-0 line after it
/// could be inside it): the whole parse then reports the error, with its
/// line. Other syntax errors in the entries the verdict does not read are
/// not looked for, as in all that follows `detection`: an out-of-scope rule
/// is judged on its title, id and log source alone.
fn head_entries(text: &str) -> Option<String> {
    let mut head = String::new();
    let mut keep = false;
    for line in text.split_inclusive('\n') {
        if !closes_what_it_opens(line.as_bytes()) {
            return None;
        }
        match line.as_bytes().first() {
            // Indented, blank or a comment: part of the entry above.
            Some(b' ' | b'\t' | b'\r' | b'\n' | b'#') => {}
            // A sequence entry in column 0 belongs to the key above it
            // (`references:` then `- url`); `---` was ruled out before.
            Some(b'-')
                if matches!(
                    line.as_bytes().get(1),
                    None | Some(b' ' | b'\t' | b'\r' | b'\n')
                ) => {}
            _ => {
                let key = top_level_key(line)?;
                match key {
                    "detection" => return Some(head),
                    // Collections and their kind are the whole parse's to judge.
                    "action" | "filter" | "correlation" => return None,
                    _ => keep = matches!(key, "id" | "title" | "logsource"),
                }
            }
        }
        if keep {
            head.push_str(line);
        }
    }
    Some(head)
}

/// Whether a line, read alone, leaves nothing open: no tab indentation, and
/// a value (after any `- ` and `key: `) that starts a quoted scalar or a flow
/// collection ends it on the same line. Conservative: `"a" # note` or a
/// quoted scalar folded over lines gives `false`, and the text is read whole.
fn closes_what_it_opens(line: &[u8]) -> bool {
    if line.first() == Some(&b'\t') {
        return false;
    }
    let line = line.trim_ascii_end();
    let mut rest = line.trim_ascii_start();
    if line.len() > rest.len() && line[..line.len() - rest.len()].contains(&b'\t') {
        return false;
    }
    while let Some(after) = rest.strip_prefix(b"-") {
        if !after.is_empty() && !matches!(after[0], b' ' | b'\t') {
            break;
        }
        rest = after.trim_ascii_start();
    }
    if !matches!(rest.first(), Some(b'"' | b'\'' | b'[' | b'{')) {
        if let Some(colon) = rest.windows(2).position(|w| w == b": ") {
            rest = rest[colon + 2..].trim_ascii_start();
        }
    }
    match rest.first() {
        Some(&q @ (b'"' | b'\'')) => {
            let closed = rest.len() >= 2 && rest.ends_with(&[q]);
            // `"…\"` ends in an escaped quote: the scalar goes on.
            let escapes = rest[..rest.len() - 1]
                .iter()
                .rev()
                .take_while(|&&b| b == b'\\')
                .count();
            closed && (q == b'\'' || escapes % 2 == 0)
        }
        Some(b'[') => rest.ends_with(b"]"),
        Some(b'{') => rest.ends_with(b"}"),
        _ => true,
    }
}

/// The key of a top-level line `key: value` or `key:`, where `key` is a
/// plain word (letters, digits, `_` and `-`).
fn top_level_key(line: &str) -> Option<&str> {
    let (key, rest) = line.split_once(':')?;
    let word = !key.is_empty()
        && key.as_bytes()[0].is_ascii_alphabetic()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let ends = matches!(
        rest.as_bytes().first(),
        None | Some(b' ' | b'\t' | b'\r' | b'\n')
    );
    (word && ends).then_some(key)
}

/// Whether the top-level `key` was read before (a duplicate, which the full
/// parse reports).
fn seen(key: &str, id: &Option<Yaml>, title: &Option<Yaml>, logsource: &Option<Hash>) -> bool {
    match key {
        "id" => id.is_some(),
        "title" => title.is_some(),
        _ => logsource.is_some(),
    }
}

/// Reads past a collection whose start was just read.
fn skip_collection(parser: &mut Parser<std::str::Chars<'_>>) -> Option<()> {
    let mut depth = 1usize;
    while depth > 0 {
        match parser.next_token().ok()?.0 {
            Event::MappingStart(..) | Event::SequenceStart(..) => depth += 1,
            Event::MappingEnd | Event::SequenceEnd => depth -= 1,
            Event::StreamEnd | Event::DocumentEnd => return None,
            _ => {}
        }
    }
    Some(())
}

/// A flat mapping of scalars (the parser just past its start), or `None`
/// for anything else.
fn read_mapping(parser: &mut Parser<std::str::Chars<'_>>) -> Option<Hash> {
    let mut map = Hash::new();
    loop {
        let k = match parser.next_token().ok()?.0 {
            Event::MappingEnd => return Some(map),
            Event::Scalar(text, style, _, None) => scalar(text, style, None),
            _ => return None,
        };
        let v = match parser.next_token().ok()?.0 {
            Event::Scalar(text, style, _, None) => scalar(text, style, None),
            _ => return None,
        };
        if map.insert(k, v).is_some() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_str, parse_whole, SigmaLoad};
    use super::*;

    const OUT: &str = "title: Registry thing\nid: 1234-ab\nstatus: test\ntags:\n  - attack.t1\n\
                       logsource:\n  category: registry_set\n  product: windows\n\
                       detection:\n  sel:\n    TargetObject|contains: x\n  condition: sel\n";

    fn whole(text: &str) -> SigmaLoad {
        parse_whole(text, "r.yml", SigmaLoad::default())
    }

    #[test]
    fn an_out_of_scope_rule_is_judged_before_its_detection() {
        let out = out_of_scope(OUT).expect("a verdict");
        assert_eq!(out.id.as_deref(), Some("1234-ab"));
        assert_eq!(out.title.as_deref(), Some("Registry thing"));
        assert!(out.reason.contains("registry_set"), "{}", out.reason);
        // The same report as parsing the file whole.
        assert_eq!(parse_str(OUT, "r.yml").unsupported, whole(OUT).unsupported);
        // Even when what follows `detection` does not parse.
        let broken = format!("{OUT}  bad: [unclosed\n");
        assert!(out_of_scope(&broken).is_some());
    }

    #[test]
    fn the_head_is_cut_by_top_level_lines() {
        let text = "title: T\r\nstatus: test\ndescription: |\n  logsource: fake\n  id: no\n\
                    references:\n- https://x.test/a:b\n# logsource: comment\nid: 7\n\
                    logsource:\n    product: windows\n\n    category: registry_set\n\
                    detection:\n  logsource: later\nid: after\n";
        assert_eq!(
            head_entries(text).as_deref(),
            Some("title: T\r\nid: 7\nlogsource:\n    product: windows\n\n    category: registry_set\n")
        );
        let out = out_of_scope(text).expect("a verdict");
        assert_eq!(
            (out.id.as_deref(), out.title.as_deref()),
            (Some("7"), Some("T"))
        );
        // Column 0 holding anything but a plain key, a comment or a sequence
        // entry: not cut.
        for odd in [
            "\u{feff}title: T\n",
            "\"title\": T\n",
            "? title\n: T\n",
            "%YAML 1.2\ntitle: T\n",
            "{title: T}\n",
            "title:T\n",
            "-x: 1\n",
        ] {
            assert_eq!(head_entries(odd), None, "{odd:?}");
        }
        assert_eq!(head_entries("action: global\ntitle: T\n"), None);
        // A broken entry the verdict would skip, whose column-0 lines a cut
        // would take for keys: left to the whole parse, which reports it.
        let ls = "logsource:\n  category: registry_set\n  product: windows\ndetection:\n";
        for broken in [
            "title: T\ndescription: \"foo\nid: fake\"\n",
            "title: T\ndescription: 'foo\nid: fake'\n",
            "title: T\ndescription: \"foo\\\"\nid: fake\"\n",
            "title: T\ntags: [a,\nid: x]\n",
            "title: T\nx: {a: 1,\nid: x}\n",
            "title: T\nreferences:\n  - 'a\nid: x'\n",
            "title: T\nreferences:\n\t- x\nid: x\n",
            "title: T\nreferences:\n  -\t\"x\nid: x\"\n",
        ] {
            let text = format!("{broken}{ls}");
            assert_eq!(head_entries(&text), None, "{text:?}");
            assert!(out_of_scope(&text).is_none(), "{text:?}");
            let whole = whole(&text).unsupported;
            assert!(!whole[0].out_of_scope, "{text:?}: {whole:?}");
        }
        // A NUL ends the parser's stream, and a lone CR breaks its lines:
        // neither is cut, nor read by lines.
        for odd in [
            "title: T\nid: 1\nlogsource:\n  product: windows\n  # c\r  category: registry_set\n",
            "title: T\nid: 1\n# c\rid: 9\nlogsource:\n  category: registry_set\n",
            "title: T\nstatus: test\n# c\rid: 9\nid: 1\nlogsource:\n  category: registry_set\n",
            "title: T\0\nid: 1\nlogsource:\n  category: registry_set\n",
            "title: T\nid: 1\nlogsource:\n  category: a\0\n",
        ] {
            let text = format!("{odd}detection:\n  sel:\n    x: 1\n  condition: sel\n");
            assert_eq!(key(&out_of_scope(&text)), key(&judge(&text)), "{text:?}");
        }
        // What a line closes itself is cut as usual.
        let fine = format!("title: 'T'\nid: \"7\"\ntags: [a, b]\nx: {{a: 1}}\nd: it's \"x\n{ls}");
        assert!(head_entries(&fine).is_some());
        assert_eq!(out_of_scope(&fine).unwrap().id.as_deref(), Some("7"));
    }

    /// What a verdict says, to compare two.
    fn key(o: &Option<OutOfScope>) -> Option<(Option<String>, Option<String>, String)> {
        o.as_ref()
            .map(|o| (o.id.clone(), o.title.clone(), o.reason.clone()))
    }

    /// Read by lines, a head gets the parser's verdict, or is left to it.
    #[test]
    fn plain_heads_read_by_lines_as_the_parser_reads_them() {
        let base = "title: Reg thing\nid: 12ab\nlogsource:\n  product: windows\n  category: registry_set\n";
        let by_lines = judge_plain(base).expect("read by lines");
        assert_eq!(key(&by_lines), key(&judge(base)));
        assert!(by_lines.is_some());
        let decided = [
            base.to_owned(),
            base.replace("12ab", "123"),
            base.replace("Reg thing", "true"),
            base.replace("Reg thing", "~"),
            base.replace("Reg thing", "a, b [c] {d} it's \"e\""),
            base.replace("Reg thing", "'Reg: ''thing'' #1'"),
            base.replace("Reg thing", "\"Reg: 'thing' #1\""),
            base.replace("Reg thing", "'123'"),
            base.replace("windows", "'windows'"),
            base.replace('\n', "\r\n"),
            base.replace("  product", "# note\n  product"),
            base.replace("  ", "      "),
            base.replace("registry_set", "process_creation"),
            base.replace("windows", "linux"),
            base.replace("id: 12ab\n", ""),
            format!("{base}\n\n"),
        ];
        for h in &decided {
            let v = judge_plain(h).unwrap_or_else(|| panic!("not read by lines: {h:?}"));
            assert_eq!(key(&v), key(&judge(h)), "{h:?}");
        }
        let left = [
            base.replace("Reg thing", "'Reg' thing'"),
            base.replace("Reg thing", "'Reg thing' # note"),
            base.replace("Reg thing", "\"Reg \\\" thing\""),
            base.replace("Reg thing", "'Reg thing"),
            base.replace("Reg thing", "Reg: thing"),
            base.replace("Reg thing", "Reg #thing"),
            base.replace("Reg thing", "&a Reg"),
            base.replace("Reg thing", "!!str 1"),
            base.replace("Reg thing", "- x"),
            base.replace("12ab", "12ab\n  more"),
            base.replace("windows", "windows # note"),
            base.replace("windows", "[windows]"),
            base.replace("  category", "    category"),
            base.replace("  category", "\tcategory"),
            base.replace("  category: registry_set", "  product: linux"),
            base.replace("  category", "  2cat"),
            base.replace("logsource:\n", "logsource: {}\n"),
            "title: T\nid: 1\nlogsource:\n".to_owned(),
            "title: T\nlogsource:\n  product: windows\nid: 1\n  category: x\n".to_owned(),
            format!("{base}title: again\n"),
            base.replace("title:", "title:x\ntitle:"),
        ];
        for h in &left {
            assert!(judge_plain(h).is_none(), "read by lines: {h:?}");
        }
    }

    /// The head cut gives every SigmaHQ rule file the verdict the whole head
    /// gives. Reads `../shared/corpus/sigma` (CI); passes with a message where
    /// it is absent.
    #[test]
    fn sigmahq_verdicts_are_the_same_on_the_cut_head() {
        let Some(files) = super::super::corpus::sigmahq_files() else {
            return;
        };
        let (mut cut, mut verdicts, mut plain) = (0, 0, 0);
        for (path, text) in &files {
            let Some(head) = head_entries(text) else {
                continue;
            };
            cut += 1;
            let (short, long) = (judge(&head), judge(text));
            assert_eq!(key(&short), key(&long), "{}", path.display());
            verdicts += usize::from(short.is_some());
            if let Some(by_lines) = judge_plain(&head) {
                assert_eq!(key(&by_lines), key(&long), "{}", path.display());
                plain += 1;
            }
        }
        // Nearly every file is cut, and read by lines; over half are out of
        // scope.
        let files = files.len();
        assert!(cut * 100 > files * 99, "{cut} of {files} cut");
        assert!(plain * 100 > cut * 95, "{plain} of {cut} read by lines");
        assert!(verdicts * 2 > files, "{verdicts} verdicts of {files}");
    }

    #[test]
    fn anything_unusual_is_left_to_the_whole_parse() {
        let in_scope = OUT.replace("registry_set", "process_creation");
        let cases = [
            in_scope.clone(),
            format!("{OUT}---\n{OUT}"),
            format!("action: global\n{OUT}"),
            OUT.replace("detection:", "filter:"),
            OUT.replace("id: 1234-ab\n", "") + "id: later\n",
            OUT.replace("status: test", "logsource:\n  product: linux"),
            OUT.replace("  product: windows", "  product: *p"),
            OUT.replace("  product: windows", "  product: [windows]"),
            "- not a mapping\n".to_owned(),
        ];
        for text in &cases {
            assert!(out_of_scope(text).is_none(), "{text}");
            assert_eq!(
                parse_str(text, "r.yml").unsupported,
                whole(text).unsupported,
                "{text}"
            );
        }
        assert_eq!(parse_str(&in_scope, "r.yml").rules.len(), 1);
    }
}

//! Parse-level tests: Sigma text in, exact [`Expr`] (or [`Unsupported`]) out.
//! Every rule text here is written for the test.

use super::*;
use crate::event::{fields, FieldKey};
use crate::rule::{Atom, FieldTarget, GlobToken, NumOp, StrOp, Test};
use yaml_rust2::YamlLoader;

/// A windows process_creation rule around `detection` (given at 4 spaces
/// of indentation, one selection or condition a line).
fn rule_text(detection: &str) -> String {
    format!(
        "title: Test rule\nid: 00000000-0000-0000-0000-000000000001\nlogsource:\n    category: process_creation\n    product: windows\ndetection:\n{detection}\n"
    )
}

/// The expression of the one rule built from `detection`.
fn expr(detection: &str) -> Expr {
    let load = parse_str(&rule_text(detection), "test.yml");
    assert!(load.unsupported.is_empty(), "{:?}", load.unsupported);
    assert_eq!(load.rules.len(), 1);
    match &load.rules[0].body {
        RuleBody::Expr(e) => e.clone(),
        RuleBody::Ioc(_) => panic!("not an expression"),
    }
}

/// The reason `detection` does not load.
fn reason(detection: &str) -> String {
    let load = parse_str(&rule_text(detection), "test.yml");
    assert!(load.rules.is_empty(), "loaded: {:?}", load.rules[0].body);
    assert_eq!(load.unsupported.len(), 1);
    let u = &load.unsupported[0];
    assert!(!u.out_of_scope);
    assert_eq!(u.path, "test.yml");
    assert_eq!(
        u.id.as_deref(),
        Some("00000000-0000-0000-0000-000000000001")
    );
    assert_eq!(u.title.as_deref(), Some("Test rule"));
    u.reason.clone()
}

fn field(name: &str, test: Test) -> Expr {
    Expr::Atom(Atom::field(FieldKey::from_name(name), test))
}

fn keyword(test: Test) -> Expr {
    Expr::Atom(Atom {
        target: FieldTarget::AnyField,
        test,
    })
}

fn st(op: StrOp, value: &str) -> Test {
    Test::Str {
        op,
        value: value.to_owned(),
        cased: false,
    }
}

fn eq(v: &str) -> Test {
    st(StrOp::Equals, v)
}
fn contains(v: &str) -> Test {
    st(StrOp::Contains, v)
}
fn prefix(v: &str) -> Test {
    st(StrOp::Prefix, v)
}
fn suffix(v: &str) -> Test {
    st(StrOp::Suffix, v)
}

fn cl(test: Test) -> Expr {
    field("CommandLine", test)
}

fn or(v: Vec<Expr>) -> Expr {
    Expr::Or(v)
}
fn and(v: Vec<Expr>) -> Expr {
    Expr::And(v)
}
fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}

/// `CommandLine<key>: <value>` as the only selection.
fn cl_expr(key_and_value: &str) -> Expr {
    expr(&format!(
        "    sel:\n        CommandLine{key_and_value}\n    condition: sel"
    ))
}

fn cl_reason(key_and_value: &str) -> String {
    reason(&format!(
        "    sel:\n        CommandLine{key_and_value}\n    condition: sel"
    ))
}

// ---------------------------------------------------------------- metadata

#[test]
fn metadata_and_scope() {
    let text = r"
title: Suspicious Thing
id: 5f1c5c7a-1111-4222-8333-944445555666
level: high
tags:
    - attack.execution
    - attack.t1059
logsource:
    product: windows
    category: process_creation
    service: sysmon
detection:
    selection:
        Image|endswith: '\evil.exe'
    condition: selection
";
    let load = parse_str(text, "rules/x.yml");
    assert!(load.unsupported.is_empty());
    let r = &load.rules[0];
    assert_eq!(r.id, "5f1c5c7a-1111-4222-8333-944445555666");
    assert_eq!(r.title, "Suspicious Thing");
    assert_eq!(r.level, Level::High);
    assert_eq!(r.tags, ["attack.execution", "attack.t1059"]);
    assert_eq!(r.origin, "rules/x.yml");
    assert_eq!(
        r.scope,
        Scope {
            kinds: KindSet::of(&[EventKind::ProcessStart]),
            os: Some(Os::Windows)
        }
    );
    let RuleBody::Expr(e) = &r.body else { panic!() };
    assert_eq!(
        *e,
        Expr::Atom(Atom::field(fields::IMAGE, suffix("\\evil.exe")))
    );
}

#[test]
fn missing_or_odd_metadata_has_defaults() {
    let text = "title: No id\nlevel: severe\nlogsource: {category: file_event, product: linux}\ndetection: {sel: {TargetFilename: /tmp/x}, condition: sel}\n";
    let load = parse_str(text, "dir/no_id.yml");
    let r = &load.rules[0];
    assert_eq!(r.id, "path:dir/no_id.yml");
    assert_eq!(r.level, Level::Medium);
    assert!(r.tags.is_empty());
    let no_level = parse_str(
        "logsource: {category: file_event}\ndetection: {sel: {a: b}, condition: sel}\n",
        "n.yml",
    );
    assert_eq!(no_level.rules[0].level, Level::Medium);
    assert_eq!(no_level.rules[0].title, "");
}

#[test]
fn logsource_categories_and_products() {
    let scope_of = |ls: &str| {
        let text =
            format!("title: t\nlogsource: {ls}\ndetection: {{sel: {{a: b}}, condition: sel}}\n");
        let load = parse_str(&text, "s.yml");
        assert!(load.unsupported.is_empty(), "{ls}: {:?}", load.unsupported);
        load.rules[0].scope
    };
    use EventKind::*;
    assert_eq!(
        scope_of("{category: process_creation, product: linux}"),
        Scope {
            kinds: KindSet::of(&[ProcessStart]),
            os: Some(Os::Linux)
        }
    );
    assert_eq!(
        scope_of("{category: file_event, product: windows}"),
        Scope {
            kinds: KindSet::of(&[FileCreate, FileWrite]),
            os: Some(Os::Windows)
        }
    );
    assert_eq!(
        scope_of("{category: file_rename}"),
        Scope {
            kinds: KindSet::of(&[FileRename]),
            os: None
        }
    );
    assert_eq!(
        scope_of("{category: file_delete, product: windows, service: sysmon}"),
        Scope {
            kinds: KindSet::of(&[FileDelete]),
            os: Some(Os::Windows)
        }
    );
}

#[test]
fn other_logsources_are_out_of_scope() {
    let out = |ls: &str| {
        let text = format!(
            "title: Reg\nid: r1\nlogsource: {ls}\ndetection: {{sel: {{a: b}}, condition: sel}}\n"
        );
        let load = parse_str(&text, "o.yml");
        assert!(load.rules.is_empty(), "{ls}");
        let u = load.unsupported[0].clone();
        assert!(u.out_of_scope, "{ls}: {u}");
        assert_eq!(u.id.as_deref(), Some("r1"));
        assert_eq!(u.title.as_deref(), Some("Reg"));
        u.reason
    };
    assert_eq!(
        out("{category: registry_set, product: windows}"),
        "logsource category `registry_set` (product windows) is not an event kind trawl produces"
    );
    assert!(out("{category: process_creation, product: macos}").contains("product `macos`"));
    let r = out("{product: windows, service: sysmon}");
    assert!(r.contains("no category") && r.contains("sysmon"), "{r}");
    assert!(out("{category: network_connection}").contains("(any product)"));
    let no_ls = parse_str(
        "title: x\ndetection: {sel: {a: b}, condition: sel}\n",
        "n.yml",
    );
    // A missing or empty logsource is a malformed rule, not one for other events.
    assert!(!no_ls.unsupported[0].out_of_scope);
    assert!(
        no_ls.unsupported[0].reason.contains("no `logsource`"),
        "{}",
        no_ls.unsupported[0].reason
    );
    let empty_ls = parse_str(
        "title: x\nlogsource: {}\ndetection: {sel: {a: b}, condition: sel}\n",
        "e.yml",
    );
    assert!(!empty_ls.unsupported[0].out_of_scope);
    assert!(empty_ls.unsupported[0]
        .reason
        .contains("`logsource` is empty"));
}

#[test]
fn correlation_and_filter_documents_are_unsupported() {
    for kind in ["correlation", "filter"] {
        let text = format!("title: c\nid: c1\n{kind}:\n    rules: [a]\nlogsource: {{category: process_creation}}\n");
        let load = parse_str(&text, "c.yml");
        let u = &load.unsupported[0];
        assert!(!u.out_of_scope);
        assert!(u.reason.contains(kind), "{}", u.reason);
    }
}

// ------------------------------------------------------------ files & docs

#[test]
fn yaml_syntax_error_is_one_entry_with_position() {
    let load = parse_str(
        "title: x\ndetection:\n  sel: [a, b\n  condition: sel\n",
        "bad.yml",
    );
    assert!(load.rules.is_empty());
    assert_eq!(load.unsupported.len(), 1);
    let u = &load.unsupported[0];
    assert_eq!(u.path, "bad.yml");
    assert_eq!(u.id, None);
    assert!(
        u.reason.starts_with("YAML syntax error at line "),
        "{}",
        u.reason
    );
    assert!(u.reason.contains("column"), "{}", u.reason);
}

#[test]
fn multi_document_files_number_their_documents() {
    let text = "\
title: one
logsource: {category: process_creation}
detection: {sel: {Image: a.exe}, condition: sel}
---
title: two
logsource: {category: process_creation}
detection: {sel: {Image: b.exe}, condition: nope}
---
title: three
logsource: {category: file_delete}
detection: {sel: {Image: c.exe}, condition: sel}
";
    let load = parse_str(text, "m.yml");
    assert_eq!(load.rules.len(), 2);
    assert_eq!(load.rules[0].origin, "m.yml#1");
    assert_eq!(load.rules[0].id, "path:m.yml#1");
    assert_eq!(load.rules[1].origin, "m.yml#3");
    assert_eq!(load.rules[1].title, "three");
    assert_eq!(load.unsupported.len(), 1);
    assert_eq!(load.unsupported[0].path, "m.yml#2");
    assert!(load.unsupported[0].reason.contains("`nope`"));
}

#[test]
fn collection_actions_global_reset_repeat() {
    let text = "\
action: global
title: Shared
level: high
logsource: {product: windows}
detection:
    filter: {User: SYSTEM}
    condition: sel and not filter
---
logsource: {category: process_creation}
detection:
    sel: {Image: a.exe}
---
action: repeat
detection:
    sel: {Image: b.exe}
---
action: reset
---
title: Alone
logsource: {category: file_event}
detection: {sel: {Image: c.exe}, condition: sel}
---
action: bogus
";
    let load = parse_str(text, "g.yml");
    assert_eq!(load.rules.len(), 3, "{:?}", load.unsupported);
    let shared = |img: &str| {
        and(vec![
            field("Image", eq(img)),
            not(field("User", eq("SYSTEM"))),
        ])
    };
    let body = |i: usize| match &load.rules[i].body {
        RuleBody::Expr(e) => e.clone(),
        RuleBody::Ioc(_) => panic!(),
    };
    assert_eq!(load.rules[0].title, "Shared");
    assert_eq!(load.rules[0].level, Level::High);
    assert_eq!(load.rules[0].scope.os, Some(Os::Windows));
    assert_eq!(load.rules[0].origin, "g.yml#2");
    assert_eq!(body(0), shared("a.exe"));
    // `repeat` re-uses the previous rule with the new selection.
    assert_eq!(load.rules[1].origin, "g.yml#3");
    assert_eq!(body(1), shared("b.exe"));
    assert_eq!(
        load.rules[1].scope.kinds,
        KindSet::of(&[EventKind::ProcessStart])
    );
    // After `reset` nothing is shared.
    assert_eq!(load.rules[2].title, "Alone");
    assert_eq!(load.rules[2].level, Level::Medium);
    assert_eq!(body(2), field("Image", eq("c.exe")));
    assert_eq!(load.unsupported.len(), 1);
    assert_eq!(load.unsupported[0].path, "g.yml#6");
    assert!(load.unsupported[0].reason.contains("bogus"));
}

#[test]
fn empty_documents_do_not_make_a_collection() {
    let text = "---\ntitle: one\nlogsource: {category: process_creation}\ndetection: {sel: {Image: a}, condition: sel}\n---\n";
    let load = parse_str(text, "t.yml");
    assert_eq!(load.rules[0].origin, "t.yml");
    assert!(load.unsupported.is_empty());
}

#[test]
fn empty_and_odd_documents() {
    assert!(parse_str("", "e.yml").rules.is_empty());
    assert!(parse_str("", "e.yml").unsupported.is_empty());
    let load = parse_str("- just\n- a list\n", "l.yml");
    assert!(load.unsupported[0].reason.contains("not a mapping"));
    let load = parse_str(
        "title: x\nlogsource: {category: process_creation}\n",
        "nd.yml",
    );
    assert!(load.unsupported[0].reason.contains("no `detection`"));
}

// ------------------------------------------------------- strings & values

#[test]
fn plain_values_match_whole_fields_case_insensitively() {
    assert_eq!(cl_expr(": whoami"), cl(eq("whoami")));
    assert_eq!(cl_expr(": ''"), cl(eq("")));
    assert_eq!(cl_expr(": null"), cl(Test::Null));
    assert_eq!(cl_expr(": 4688"), cl(eq("4688")));
    assert_eq!(cl_expr(": -12"), cl(eq("-12")));
    assert_eq!(cl_expr(": 1.5"), cl(eq("1.5")));
    assert_eq!(cl_expr(": 2.0"), cl(eq("2")));
    assert_eq!(cl_expr(": true"), cl(eq("true")));
    assert_eq!(cl_expr(": '4688'"), cl(eq("4688")));
}

#[test]
fn wildcards_at_the_ends_become_positional_tests() {
    assert_eq!(cl_expr(": '*mimikatz*'"), cl(contains("mimikatz")));
    assert_eq!(cl_expr(r": 'C:\Windows\\*'"), cl(prefix("C:\\Windows\\")));
    assert_eq!(cl_expr(": '*\\cmd.exe'"), cl(suffix("\\cmd.exe")));
    assert_eq!(cl_expr(": '*'"), cl(contains("")));
    assert_eq!(cl_expr(": '**a**'"), cl(contains("a")));
}

#[test]
fn inner_wildcards_become_globs() {
    use GlobToken::*;
    let lit = |s: &str| Lit(s.to_owned());
    assert_eq!(
        cl_expr(r": '*\AppData\\*\evil.exe'"),
        cl(Test::Glob {
            tokens: vec![Star, lit("\\AppData\\"), Star, lit("\\evil.exe")],
            cased: false
        })
    );
    assert_eq!(
        cl_expr(": 'file?.txt'"),
        cl(Test::Glob {
            tokens: vec![lit("file"), Question, lit(".txt")],
            cased: false
        })
    );
    assert_eq!(
        cl_expr(": '?'"),
        cl(Test::Glob {
            tokens: vec![Question],
            cased: false
        })
    );
}

#[test]
fn backslash_escapes() {
    // `\*` and `\?` are literal, `\\` is one backslash, any other backslash
    // is itself.
    assert_eq!(cl_expr(r": 'a\*b'"), cl(eq("a*b")));
    assert_eq!(cl_expr(r": 'what\?'"), cl(eq("what?")));
    assert_eq!(cl_expr(r": '*\*'"), cl(suffix("*")));
    assert_eq!(cl_expr(r": 'C:\\\\share'"), cl(eq(r"C:\\share")));
    assert_eq!(cl_expr(r": '\\\\server\\*'"), cl(prefix(r"\\server\")));
    assert_eq!(cl_expr(r": '\cmd.exe'"), cl(eq(r"\cmd.exe")));
    // The classic trap: `\*` escapes the wildcard, so this is a literal `*`;
    // a folder prefix needs `C:\Windows\\*`.
    assert_eq!(cl_expr(r": 'C:\Windows\*'"), cl(eq(r"C:\Windows*")));
    assert_eq!(cl_expr(r": 'dir\'"), cl(eq(r"dir\")));
    // `\\*`: an escaped backslash, then a real wildcard.
    assert_eq!(cl_expr(r": 'x\\*'"), cl(prefix(r"x\")));
}

#[test]
fn value_lists_are_or_and_all_makes_them_and() {
    assert_eq!(
        cl_expr(":\n            - a\n            - b"),
        or(vec![cl(eq("a")), cl(eq("b"))])
    );
    assert_eq!(
        cl_expr("|contains|all:\n            - ' -enc '\n            - 'IEX'"),
        and(vec![cl(contains(" -enc ")), cl(contains("IEX"))])
    );
    // pySigma: an empty list is a null test.
    assert_eq!(cl_expr(": []"), cl(Test::Null));
}

#[test]
fn selection_shapes() {
    // A map is an AND; a list of maps an OR of ANDs.
    assert_eq!(
        expr("    sel:\n        - Image|endswith: '\\a.exe'\n          CommandLine|contains: x\n        - Image|endswith: '\\b.exe'\n    condition: sel"),
        or(vec![
            and(vec![field("Image", suffix("\\a.exe")), cl(contains("x"))]),
            field("Image", suffix("\\b.exe")),
        ])
    );
    assert!(reason("    sel: {}\n    condition: sel")
        .contains("selection `sel`: the selection is empty"));
    assert!(reason("    sel: []\n    condition: sel").contains("empty list"));
    assert!(
        reason("    sel:\n        Image:\n            x: y\n    condition: sel")
            .contains("`Image`: the value is a mapping")
    );
    assert!(
        reason("    sel:\n        Image:\n            - [a]\n    condition: sel")
            .contains("only plain values")
    );
}

// ------------------------------------------------------------- keywords

#[test]
fn keywords_are_contained_in_any_field() {
    assert_eq!(
        expr("    keywords:\n        - 'event::clear'\n        - 'event::drop'\n    condition: keywords"),
        or(vec![keyword(contains("event::clear")), keyword(contains("event::drop"))])
    );
    assert_eq!(
        expr("    keywords: 'mimikatz'\n    condition: keywords"),
        keyword(contains("mimikatz"))
    );
    // With wildcards, as written.
    assert_eq!(
        expr("    keywords:\n        - 'sekurlsa::*'\n        - 'a*b'\n        - 1337\n    condition: keywords"),
        or(vec![
            keyword(prefix("sekurlsa::")),
            keyword(Test::Glob {
                tokens: vec![GlobToken::Lit("a".into()), GlobToken::Star, GlobToken::Lit("b".into())],
                cased: false
            }),
            keyword(contains("1337")),
        ])
    );
    // `'|all'` keywords (the spec's example) AND-link contained values.
    assert_eq!(
        expr("    keywords:\n        '|all':\n            - 'OabVirtualDirectory'\n            - ' -ExternalUrl '\n    condition: keywords"),
        and(vec![keyword(contains("OabVirtualDirectory")), keyword(contains(" -ExternalUrl "))])
    );
    // Modifiers that neither place nor retype the value keep the search a
    // substring search.
    assert_eq!(
        expr("    keywords:\n        '|cased': 'AbC'\n    condition: keywords"),
        keyword(Test::Str {
            op: StrOp::Contains,
            value: "AbC".into(),
            cased: true
        })
    );
    assert_eq!(
        expr("    keywords:\n        '|windash': '-nop'\n    condition: keywords"),
        or(dashes("#nop")
            .iter()
            .map(|v| keyword(contains(v)))
            .collect())
    );
    assert_eq!(
        expr("    keywords:\n        '|base64offset': 'http://'\n    condition: keywords"),
        or(vec![
            keyword(contains("aHR0cDovL")),
            keyword(contains("h0dHA6Ly")),
            keyword(contains("odHRwOi8v"))
        ])
    );
    // A key with modifiers but no field name is a keyword with those modifiers.
    assert_eq!(
        expr("    keywords:\n        '|startswith': 'abc'\n    condition: keywords"),
        keyword(prefix("abc"))
    );
    assert_eq!(
        expr("    keywords:\n        '|re': 'a.c'\n    condition: keywords"),
        keyword(Test::Regex {
            pattern: "a.c".into(),
            case_insensitive: false,
            multi_line: false,
            dot_all: false
        })
    );
    assert!(
        reason("    keywords:\n        - null\n    condition: keywords")
            .contains("null needs a field")
    );
    assert!(
        reason("    keywords:\n        '|exists': true\n    condition: keywords")
            .contains("needs a field")
    );
}

// ------------------------------------------------------------ modifiers

#[test]
fn contains_startswith_endswith() {
    assert_eq!(cl_expr("|contains: 'x'"), cl(contains("x")));
    assert_eq!(cl_expr("|startswith: 'x'"), cl(prefix("x")));
    assert_eq!(cl_expr("|endswith: 'x'"), cl(suffix("x")));
    // Existing wildcards are kept and not doubled.
    assert_eq!(cl_expr("|contains: '*x'"), cl(contains("x")));
    assert_eq!(
        cl_expr("|startswith: 'a*b'"),
        cl(Test::Glob {
            tokens: vec![
                GlobToken::Lit("a".into()),
                GlobToken::Star,
                GlobToken::Lit("b".into()),
                GlobToken::Star
            ],
            cased: false
        })
    );
    // Numbers take string modifiers by their text.
    assert_eq!(cl_expr("|endswith: 1337"), cl(suffix("1337")));
}

fn dashes(template: &str) -> Vec<String> {
    ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}']
        .iter()
        .map(|d| template.replace('#', &d.to_string()))
        .collect()
}

#[test]
fn windash_expands_word_leading_dashes_and_slashes() {
    assert_eq!(
        cl_expr("|contains|windash: ' -s '"),
        or(dashes(" #s ").iter().map(|v| cl(contains(v))).collect())
    );
    // `/` is expanded too, at the start of the value as well.
    assert_eq!(
        cl_expr("|endswith|windash: '/quiet'"),
        or(dashes("#quiet").iter().map(|v| cl(suffix(v))).collect())
    );
    // A dash inside a word, or not followed by a word character, stays.
    assert_eq!(cl_expr("|contains|windash: 'a-b'"), cl(contains("a-b")));
    assert_eq!(cl_expr("|contains|windash: 'x - y'"), cl(contains("x - y")));
    // `--x`: only the second dash starts a word.
    assert_eq!(
        cl_expr("|contains|windash: '--x'"),
        or(dashes("-#x").iter().map(|v| cl(contains(v))).collect())
    );
    // Two dashes: 25 combinations, the first dash varying slowest.
    let Expr::Or(v) = cl_expr("|contains|windash: '-a -b'") else {
        panic!()
    };
    assert_eq!(v.len(), 25);
    assert_eq!(v[0], cl(contains("-a -b")));
    assert_eq!(v[1], cl(contains("-a /b")));
    assert_eq!(v[5], cl(contains("/a -b")));
    assert_eq!(v[24], cl(contains("\u{2015}a \u{2015}b")));
}

#[test]
fn windash_under_all_stays_or_per_value() {
    assert_eq!(
        cl_expr("|contains|all|windash:\n            - ' -a '\n            - ' -b '"),
        and(vec![
            or(dashes(" #a ").iter().map(|v| cl(contains(v))).collect()),
            or(dashes(" #b ").iter().map(|v| cl(contains(v))).collect()),
        ])
    );
    assert!(cl_reason("|contains|windash: '-a -b -c -d -e'").contains("5^5 variants"));
}

#[test]
fn base64_and_base64offset() {
    assert_eq!(cl_expr("|base64: 'http://'"), cl(eq("aHR0cDovLw==")));
    assert_eq!(
        cl_expr("|base64|contains: 'http://'"),
        cl(contains("aHR0cDovLw=="))
    );
    // pySigma's output for `base64offset|contains: 'http://'`.
    assert_eq!(
        cl_expr("|base64offset|contains: 'http://'"),
        or(vec![
            cl(contains("aHR0cDovL")),
            cl(contains("h0dHA6Ly")),
            cl(contains("odHRwOi8v"))
        ])
    );
    // Inside `all`, each value's three encodings stay OR-linked.
    assert_eq!(
        cl_expr("|base64offset|contains|all:\n            - 'http://'\n            - 'IEX'"),
        and(vec![
            or(vec![
                cl(contains("aHR0cDovL")),
                cl(contains("h0dHA6Ly")),
                cl(contains("odHRwOi8v"))
            ]),
            or(vec![
                cl(contains("SUVY")),
                cl(contains("lFW")),
                cl(contains("JRV"))
            ]),
        ])
    );
    assert!(cl_reason("|contains|base64: 'x'").contains("cannot encode wildcards"));
    assert!(cl_reason("|base64offset|contains: 'x'").contains("at least 2 bytes"));
}

#[test]
fn utf16_encodings_then_base64() {
    // Values checked against pySigma.
    assert_eq!(
        cl_expr("|wide|base64offset|contains: 'spinstall0.aspx'"),
        or(vec![
            cl(contains("cwBwAGkAbgBzAHQAYQBsAGwAMAAuAGEAcwBwAHgA")),
            cl(contains("MAcABpAG4AcwB0AGEAbABsADAALgBhAHMAcAB4A")),
            cl(contains("zAHAAaQBuAHMAdABhAGwAbAAwAC4AYQBzAHAAeA")),
        ])
    );
    assert_eq!(
        cl_expr("|utf16le|base64offset|contains: 'spinstall0.aspx'"),
        cl_expr("|wide|base64offset|contains: 'spinstall0.aspx'")
    );
    assert_eq!(
        cl_expr("|utf16|base64offset|contains: 'cmd'"),
        or(vec![
            cl(contains("//5jAG0AZA")),
            cl(contains("/+YwBtAGQA")),
            cl(contains("//mMAbQBkA"))
        ])
    );
    assert_eq!(
        cl_expr("|utf16be|base64offset|contains: 'cmd'"),
        or(vec![
            cl(contains("AGMAbQBk")),
            cl(contains("BjAG0AZ")),
            cl(contains("AYwBtAG"))
        ])
    );
    assert_eq!(cl_expr("|utf16be|base64: 'cmd'"), cl(eq("AGMAbQBk")));
    // ASCII in UTF-16LE is still valid UTF-8 (with NULs)...
    assert_eq!(cl_expr("|wide: 'ab'"), cl(eq("a\0b\0")));
    // ...a byte order mark is not.
    assert!(cl_reason("|utf16: 'ab'").contains("not text"));
}

#[test]
fn regular_expressions() {
    let re = |p: &str, i: bool, m: bool, s: bool| {
        cl(Test::Regex {
            pattern: p.to_owned(),
            case_insensitive: i,
            multi_line: m,
            dot_all: s,
        })
    };
    assert_eq!(
        cl_expr("|re: '\\s-e(nc)?\\s'"),
        // PCRE's `\s` is ASCII: translated to Rust's ASCII class.
        re("[[:space:]]-e(nc)?[[:space:]]", false, false, false)
    );
    assert_eq!(
        cl_expr("|re|i: 'invoke-\\w+'"),
        re("invoke-[[:word:]]+", true, false, false)
    );
    assert_eq!(cl_expr("|re|m|s: '^a.b$'"), re("^a.b$", false, true, true));
    assert_eq!(
        cl_expr("|re|ignorecase|multiline|dotall: 'x'"),
        re("x", true, true, true)
    );
    // Wildcard characters mean regex things here, not Sigma wildcards.
    assert_eq!(
        cl_expr("|re: 'a*b?\\*'"),
        re("a*b?\\*", false, false, false)
    );
    // PCRE literals Rust would misread are escaped.
    assert_eq!(
        cl_expr("|re: '\\<script\\>'"),
        re("<script>", false, false, false)
    );
    // `startswith`/`endswith` anchor (trawl's regexes are unanchored).
    assert_eq!(
        cl_expr("|re|startswith: 'a|b'"),
        re("\\A(?:a|b)", false, false, false)
    );
    assert_eq!(
        cl_expr("|re|endswith: 'a'"),
        re("(?:a)\\z", false, false, false)
    );
    assert_eq!(cl_expr("|re|contains: 'a'"), re("a", false, false, false));
    let r = cl_reason("|re: 'foo(?!bar)'");
    assert!(r.contains("look-around") && r.contains("foo(?!bar)"), "{r}");
    assert!(cl_reason("|re: '(a)\\1'").contains("backreferences"));
    assert!(cl_reason("|re: '(unclosed'").contains("regex `(unclosed`"));
    assert!(cl_reason("|contains|re: 'x'").contains("must come first"));
    assert!(cl_reason("|i: 'x'").contains("flag of `re`"));
}

#[test]
fn cased_makes_string_tests_case_sensitive() {
    let cased = |op, v: &str| {
        cl(Test::Str {
            op,
            value: v.to_owned(),
            cased: true,
        })
    };
    assert_eq!(cl_expr("|cased: 'AbC'"), cased(StrOp::Equals, "AbC"));
    assert_eq!(
        cl_expr("|contains|cased: 'AbC'"),
        cased(StrOp::Contains, "AbC")
    );
    assert_eq!(
        cl_expr("|cased|endswith: 'AbC'"),
        cased(StrOp::Suffix, "AbC")
    );
    assert_eq!(
        cl_expr("|cased: 'A*b*C'"),
        cl(Test::Glob {
            tokens: vec![
                GlobToken::Lit("A".into()),
                GlobToken::Star,
                GlobToken::Lit("b".into()),
                GlobToken::Star,
                GlobToken::Lit("C".into())
            ],
            cased: true
        })
    );
}

#[test]
fn exists() {
    assert_eq!(cl_expr("|exists: true"), cl(Test::Exists(true)));
    assert_eq!(cl_expr("|exists: false"), cl(Test::Exists(false)));
    assert!(cl_reason("|exists: 'yes'").contains("`true` or `false`"));
    assert!(cl_reason("|contains|exists: true").contains("must come first"));
}

#[test]
fn field_references() {
    let fr = |op| {
        Expr::Atom(Atom::field(
            fields::TARGET_FILENAME,
            Test::FieldRef {
                other: fields::IMAGE,
                op,
                cased: false,
            },
        ))
    };
    let sel = |key: &str| {
        expr(&format!(
            "    sel:\n        TargetFilename{key}: Image\n    condition: sel"
        ))
    };
    assert_eq!(sel("|fieldref"), fr(StrOp::Equals));
    assert_eq!(sel("|fieldref|endswith"), fr(StrOp::Suffix));
    assert_eq!(sel("|fieldref|startswith"), fr(StrOp::Prefix));
    assert_eq!(sel("|fieldref|contains"), fr(StrOp::Contains));
    assert_eq!(
        sel("|fieldref|cased"),
        Expr::Atom(Atom::field(
            fields::TARGET_FILENAME,
            Test::FieldRef {
                other: fields::IMAGE,
                op: StrOp::Equals,
                cased: true
            },
        ))
    );
    assert!(cl_reason("|fieldref: 'Ima*'").contains("wildcards"));
    assert!(
        reason("    sel:\n        '|fieldref': Image\n    condition: sel")
            .contains("field name on the left")
    );
}

#[test]
fn numeric_comparisons() {
    let num = |op, value| field("TerminalSessionId", Test::Num { op, value });
    let sel = |kv: &str| {
        expr(&format!(
            "    sel:\n        TerminalSessionId{kv}\n    condition: sel"
        ))
    };
    assert_eq!(sel("|lt: 1"), num(NumOp::Lt, 1.0));
    assert_eq!(sel("|lte: 2.5"), num(NumOp::Lte, 2.5));
    assert_eq!(sel("|gt: -3"), num(NumOp::Gt, -3.0));
    assert_eq!(sel("|gte: '0x10'"), num(NumOp::Gte, 16.0));
    assert!(cl_reason("|gt: abc").contains("compares with a number"));
}

#[test]
fn cidr_networks() {
    let net = |s: &str| field("DestinationIp", Test::Cidr(s.parse().unwrap()));
    let sel = |kv: &str| {
        expr(&format!(
            "    sel:\n        DestinationIp{kv}\n    condition: sel"
        ))
    };
    assert_eq!(sel("|cidr: 10.0.0.0/8"), net("10.0.0.0/8"));
    assert_eq!(sel("|cidr: 'fe80::/10'"), net("fe80::/10"));
    assert_eq!(sel("|cidr: 127.0.0.1"), net("127.0.0.1/32"));
    assert_eq!(
        sel("|cidr:\n            - 10.0.0.0/8\n            - 192.168.0.0/16"),
        or(vec![net("10.0.0.0/8"), net("192.168.0.0/16")])
    );
    assert!(cl_reason("|cidr: 10.0.0.300/8").contains("not a CIDR network"));
    assert!(cl_reason("|cidr: 10.1.0.0/8").contains("did you mean `10.0.0.0/8`"));
}

#[test]
fn neq_negates_the_item() {
    assert_eq!(
        cl_expr("|neq:\n            - a\n            - b"),
        not(or(vec![cl(eq("a")), cl(eq("b"))]))
    );
}

#[test]
fn unsupported_modifiers_name_the_problem() {
    assert!(cl_reason("|expand: '%Admins%'").contains("`expand` modifier"));
    assert_eq!(
        cl_reason("|containz: x"),
        "selection `sel`: `CommandLine|containz`: unknown modifier `containz`"
    );
    assert!(cl_reason("|Contains: x").contains("lower-case"));
    assert!(cl_reason("|hour: 3").contains("time modifier"));
    assert!(cl_reason("||contains: x").contains("empty modifier"));
}

// ------------------------------------------------------------ conditions

/// Selections `sel_a`, `sel_b`, `filter_x`, `_helper` on Image `a`/`b`/`x`/`h`.
fn cond(condition: &str) -> Expr {
    expr(&format!(
        "    sel_a: {{Image: a}}\n    sel_b: {{Image: b}}\n    filter_x: {{Image: x}}\n    _helper: {{Image: h}}\n    condition: {condition}"
    ))
}

fn cond_reason(condition: &str) -> String {
    reason(&format!(
        "    sel_a: {{Image: a}}\n    sel_b: {{Image: b}}\n    filter_x: {{Image: x}}\n    _helper: {{Image: h}}\n    condition: {condition}"
    ))
}

fn img(v: &str) -> Expr {
    field("Image", eq(v))
}

#[test]
fn condition_forms() {
    assert_eq!(cond("sel_a"), img("a"));
    assert_eq!(cond("1 of sel_*"), or(vec![img("a"), img("b")]));
    assert_eq!(cond("any of sel_*"), or(vec![img("a"), img("b")]));
    assert_eq!(cond("all of sel_*"), and(vec![img("a"), img("b")]));
    assert_eq!(cond("1 of them"), or(vec![img("a"), img("b"), img("x")]));
    assert_eq!(cond("all of them"), and(vec![img("a"), img("b"), img("x")]));
    assert_eq!(cond("1 of _*"), img("h"));
    assert_eq!(cond("1 of *_x"), img("x"));
    assert_eq!(
        cond("1 of sel_* and not 1 of filter_*"),
        and(vec![or(vec![img("a"), img("b")]), not(img("x"))])
    );
    assert_eq!(
        cond("sel_a and not (sel_b or filter_x)"),
        and(vec![img("a"), not(or(vec![img("b"), img("x")]))])
    );
    assert_eq!(
        cond("sel_a or sel_b and not filter_x"),
        or(vec![img("a"), and(vec![img("b"), not(img("x"))])])
    );
    assert_eq!(
        cond("(sel_a or sel_b) and not filter_x"),
        and(vec![or(vec![img("a"), img("b")]), not(img("x"))])
    );
    // Nested ANDs/ORs are flattened.
    assert_eq!(
        cond("sel_a and (sel_b and (filter_x and _helper))"),
        and(vec![img("a"), img("b"), img("x"), img("h")])
    );
    assert_eq!(cond("sel_a OR sel_b"), or(vec![img("a"), img("b")]));
    assert_eq!(cond("NOT sel_a"), not(img("a")));
}

/// Selection names are case-sensitive even though keywords are not.
#[test]
#[should_panic(expected = "not a selection")]
fn selection_names_are_case_sensitive() {
    cond("SEL_A");
}

#[test]
fn condition_lists_are_or() {
    assert_eq!(
        cond("\n        - sel_a and not filter_x\n        - sel_b"),
        or(vec![and(vec![img("a"), not(img("x"))]), img("b")])
    );
}

#[test]
fn condition_errors() {
    assert_eq!(
        cond_reason("sel_a and nope"),
        "the condition names `nope`, which is not a selection in `detection`"
    );
    assert_eq!(
        cond_reason("1 of proc_*"),
        "`1 of proc_*` matches no selection in `detection`"
    );
    assert!(cond_reason("sel_a and").contains("condition `sel_a and`"));
    assert!(cond_reason("(sel_a").contains("never closed"));
    assert!(cond_reason("2 of sel_*").contains("not a Sigma quantifier"));
    assert!(cond_reason("'sel_a | count() by Image > 5'").starts_with("aggregation conditions"));
    assert!(cond_reason("'sel_a | near sel_b'").starts_with("aggregation conditions"));
    let r = reason("    sel: {Image: a}\n    timeframe: 5m\n    condition: 'sel | count() > 3'");
    assert!(r.starts_with("aggregation conditions"), "{r}");
    assert!(reason("    sel: {Image: a}").contains("no `condition`"));
    assert!(reason("    sel: {Image: a}\n    condition: []").contains("must be a string"));
    assert!(reason("    sel: {Image: a}\n    condition: [sel, 3]").contains("must be a string"));
}

#[test]
fn timeframe_without_aggregation_is_ignored() {
    assert_eq!(
        expr("    sel: {Image: a}\n    timeframe: 5m\n    condition: sel"),
        img("a")
    );
}

#[test]
fn unused_selections_must_still_be_valid() {
    // As pySigma: every selection is parsed, used or not.
    assert!(
        reason("    sel: {Image: a}\n    other: {Image|bogus: a}\n    condition: sel")
            .contains("selection `other`")
    );
}

// ------------------------------------------------------------ robustness

#[test]
fn hostile_yaml_is_rejected_not_crashed() {
    let deep = format!("{}x{}", "[".repeat(200), "]".repeat(200));
    let load = parse_str(&deep, "deep.yml");
    assert_eq!(load.unsupported.len(), 1);
    let deep_block = "- ".repeat(5000) + "x\n";
    let load = parse_str(&deep_block, "deep2.yml");
    assert!(
        load.unsupported[0].reason.contains("nested more than"),
        "{}",
        load.unsupported[0].reason
    );
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let load = parse_str(&bomb, "bomb.yml");
    assert!(
        load.unsupported[0].reason.contains("aliases"),
        "{}",
        load.unsupported[0].reason
    );
    // Few nodes, but each alias copies a 1 MB string: bounded by bytes.
    let big = format!(
        "big: &a '{}'\nlist: [{}]\n",
        "x".repeat(1 << 20),
        vec!["*a"; 200].join(", ")
    );
    let load = parse_str(&big, "big.yml");
    assert!(
        load.unsupported[0]
            .reason
            .contains("MiB of text once aliases are expanded"),
        "{}",
        load.unsupported[0].reason
    );
    let load = parse_str("a: 1\na: 2\n", "dup.yml");
    assert!(
        load.unsupported[0].reason.contains("duplicated key"),
        "{}",
        load.unsupported[0].reason
    );
}

#[test]
fn mutated_rules_never_panic() {
    let seed = rule_text(
        "    sel_a:\n        CommandLine|contains|windash: ' -enc '\n        Image|endswith:\n            - '\\a.exe'\n            - 'C:\\W*\\?x'\n    sel_b:\n        - CommandLine|base64offset|contains: 'http://'\n        - CommandLine|re|i: '^a(b|c)+$'\n        - DestinationIp|cidr: 10.0.0.0/8\n        - TargetFilename|fieldref|endswith: Image\n    keywords: [a, 'b*c']\n    condition: (1 of sel_* or keywords) and not all of them",
    );
    assert!(parse_str(&seed, "seed.yml").unsupported.is_empty());
    let bytes = seed.as_bytes();
    let inserts: &[&[u8]] = &[
        b"|",
        b"*",
        b"?",
        b"\\",
        b":",
        b"-",
        b"[",
        b"]",
        b"{",
        b"}",
        b"'",
        b"\"",
        b"\n",
        b" ",
        b"(",
        b")",
        b"&a",
        b"*a",
        b"!!int ",
        b"|re",
        b"|base64offset",
        b"|windash",
        b"\xc3\xa9",
        b"not ",
        b"1 of ",
        b"---\n",
        b"|utf16",
        b"|cidr",
        b"|gt",
        b"|exists",
        b"|fieldref",
    ];
    // A small deterministic generator: no dependency, reproducible failures.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // `TRAWL_FUZZ_ROUNDS` runs longer on demand.
    let rounds = std::env::var("TRAWL_FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3000u32);
    for round in 0..rounds {
        let mut text = bytes.to_vec();
        for _ in 0..(1 + next() % 4) {
            let pos = (next() as usize) % (text.len() + 1);
            match next() % 3 {
                0 => {
                    let ins = inserts[(next() as usize) % inserts.len()];
                    text.splice(pos..pos, ins.iter().copied());
                }
                1 if pos < text.len() => {
                    let end = (pos + 1 + (next() as usize) % 8).min(text.len());
                    text.drain(pos..end);
                }
                _ => text.truncate(pos.max(1)),
            }
        }
        let text = String::from_utf8_lossy(&text);
        let load = parse_str(&text, "fuzz.yml");
        // Every document is accounted for one way or the other.
        assert!(
            load.rules.len() + load.unsupported.len() <= text.matches("---").count() + 1,
            "round {round}"
        );
    }
}

// ------------------------------------------------------------ corpus

/// Loads every SigmaHQ rule under `$TRAWL_SIGMA_CORPUS` (default
/// `/work/shared/corpus/sigma`) and prints how many in-scope rules load, with
/// every in-scope failure. Run with
/// `cargo test -p trawl-engine --lib sigma::tests::corpus -- --ignored --nocapture`.
#[test]
#[ignore = "reads the SigmaHQ corpus from disk; run on demand"]
fn corpus() {
    let root = std::env::var("TRAWL_SIGMA_CORPUS")
        .unwrap_or_else(|_| "/work/shared/corpus/sigma".to_owned());
    let root = std::path::Path::new(&root);
    if !root.is_dir() {
        println!("skipped: no Sigma corpus at {}", root.display());
        return;
    }
    let (mut files, mut loaded, mut out_of_scope) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut pattern_diffs = Vec::new();
    let mut by_scope = std::collections::BTreeMap::<String, usize>::new();
    for dir in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        for entry in walkdir::WalkDir::new(root.join(dir)).sort_by_file_name() {
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("yml") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            files += 1;
            let shown = path
                .strip_prefix(root)
                .unwrap_or(path)
                .display()
                .to_string();
            let load = parse_str(&text, &shown);
            loaded += load.rules.len();
            for r in &load.rules {
                let kinds: Vec<&str> = EventKind::ALL
                    .iter()
                    .filter(|k| r.scope.kinds.contains(**k))
                    .map(|k| k.as_str())
                    .collect();
                let os = r.scope.os.map_or("any", Os::as_str);
                *by_scope
                    .entry(format!("{} / {os}", kinds.join("+")))
                    .or_insert(0) += 1;
            }
            for u in load.unsupported {
                if u.out_of_scope {
                    out_of_scope += 1;
                } else {
                    failures.push(u);
                }
            }
            pattern_diffs.extend(pysigma_pattern_differences(&text, &shown));
        }
    }
    let in_scope = loaded + failures.len();
    println!("files: {files}");
    println!("out of scope: {out_of_scope}");
    println!(
        "in scope: {in_scope}, loaded: {loaded}, failed: {}",
        failures.len()
    );
    for (scope, n) in &by_scope {
        println!("  loaded {scope}: {n}");
    }
    for f in &failures {
        println!("  FAIL {f}");
    }
    println!(
        "`X of pattern` rules where whole-name matching differs from pySigma's prefix match: {}",
        pattern_diffs.len()
    );
    for d in &pattern_diffs {
        println!("  DIFF {d}");
    }
}

/// Rules whose `1 of`/`all of` patterns select other selections under
/// pySigma's start-anchored matching than under whole-name matching.
fn pysigma_pattern_differences(text: &str, path: &str) -> Vec<String> {
    fn walk(c: &condition::Cond, out: &mut Vec<String>) {
        match c {
            condition::Cond::Of {
                pattern: Some(p), ..
            } => out.push(p.clone()),
            condition::Cond::Not(i) => walk(i, out),
            condition::Cond::And(v) | condition::Cond::Or(v) => v.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut diffs = Vec::new();
    let Ok(docs) = YamlLoader::load_from_str(text) else {
        return diffs;
    };
    for doc in docs {
        let Some(det) = doc["detection"].as_hash() else {
            continue;
        };
        let names: Vec<String> = det.keys().filter_map(scalar_text).collect();
        let Some(cond) = doc["detection"]["condition"].as_str() else {
            continue;
        };
        let Ok(parsed) = condition::parse(cond) else {
            continue;
        };
        let mut patterns = Vec::new();
        walk(&parsed, &mut patterns);
        for p in patterns {
            let ours: Vec<&String> = names
                .iter()
                .filter(|n| condition::matches_pattern(&p, n))
                .collect();
            let theirs: Vec<&String> = names
                .iter()
                .filter(|n| !n.starts_with('_') && condition::matches_pattern(&format!("{p}*"), n))
                .filter(|n| *n != "condition" && *n != "timeframe")
                .collect();
            if ours != theirs {
                diffs.push(format!("{path}: `{p}` ours {ours:?} pySigma {theirs:?}"));
            }
        }
    }
    diffs
}

#[test]
fn windash_expansion_is_bounded_per_rule() {
    // 200 values of four expandable dashes each: 625 variants apiece.
    let values: String = (0..200)
        .map(|i| format!("      - ' -a{i} -b{i} -c{i} -d{i}'\n"))
        .collect();
    let text = format!(
        "title: t\nid: wd\nlogsource: {{category: process_creation, product: windows}}\ndetection:\n  sel:\n    CommandLine|windash|contains:\n{values}  condition: sel\n"
    );
    let load = parse_str(&text, "wd.yml");
    assert!(load.rules.is_empty());
    assert!(
        load.unsupported[0]
            .reason
            .contains("expands to more than 20000 tests"),
        "{}",
        load.unsupported[0].reason
    );
    // Many selections that are each within bounds still add up.
    let sels: String = (0..40)
        .map(|i| format!("  s{i}:\n    CommandLine|windash|contains: ' -a{i} -b -c -d'\n"))
        .collect();
    let text = format!(
        "title: t\nid: wd2\nlogsource: {{category: process_creation, product: windows}}\ndetection:\n{sels}  condition: 1 of them\n"
    );
    let load = parse_str(&text, "wd2.yml");
    assert!(load.rules.is_empty(), "40 x 625 tests is over the bound");
}

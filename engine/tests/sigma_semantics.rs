//! Sigma semantics end to end: rule text → compiled ruleset → verdicts on
//! events. Every modifier and condition form has a case that must match and
//! one that must not.

use trawl_engine::event::{Event, EventKind, FieldKey, Os, Timestamp, Value};
use trawl_engine::matcher::Ruleset;
use trawl_engine::sigma;

/// Compiles one process_creation rule with the given detection block.
fn rule(detection: &str) -> Ruleset {
    rule_with("category: process_creation\n  product: windows", detection)
}

fn rule_with(logsource: &str, detection: &str) -> Ruleset {
    let text = format!(
        "title: t\nid: 00000000-0000-0000-0000-00000000000a\nlogsource:\n  {logsource}\ndetection:\n{detection}\nlevel: high\n"
    );
    let load = sigma::parse_str(&text, "test.yml");
    assert!(
        load.unsupported.is_empty(),
        "rule did not load: {:?}\n{text}",
        load.unsupported
    );
    assert_eq!(load.rules.len(), 1);
    let (rs, rejected) = Ruleset::compile(load.rules);
    assert!(rejected.is_empty(), "{rejected:?}");
    rs
}

fn unsupported_reason(detection: &str) -> String {
    let text = format!(
        "title: t\nid: u\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n{detection}\n"
    );
    let load = sigma::parse_str(&text, "test.yml");
    let compiled = Ruleset::compile(load.rules).1;
    let all: Vec<_> = load.unsupported.into_iter().chain(compiled).collect();
    assert_eq!(all.len(), 1, "expected the rule to be unsupported: {text}");
    all[0].reason.clone()
}

fn proc(fields: &[(&str, Value)]) -> Event {
    let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
    for (k, v) in fields {
        ev.set(FieldKey::from_name(k), v.clone());
    }
    ev
}

fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}

fn fires(rs: &Ruleset, ev: &Event) -> bool {
    !rs.matching_ids(ev).is_empty()
}

/// Asserts the rule fires on every `yes` event and on none of the `no` events.
fn check(rs: &Ruleset, yes: &[&[(&str, Value)]], no: &[&[(&str, Value)]]) {
    for f in yes {
        assert!(fires(rs, &proc(f)), "should match: {f:?}");
    }
    for f in no {
        assert!(!fires(rs, &proc(f)), "should not match: {f:?}");
    }
}

#[test]
fn plain_value_is_whole_field_and_case_insensitive() {
    let rs = rule("  sel:\n    Image: 'C:\\Windows\\System32\\cmd.exe'\n  condition: sel");
    check(
        &rs,
        &[&[("Image", s("c:\\windows\\system32\\CMD.EXE"))]],
        &[
            &[("Image", s("C:\\Windows\\System32\\cmd.exe.bak"))],
            &[("Image", s("D:\\C:\\Windows\\System32\\cmd.exe"))],
            &[],
        ],
    );
}

#[test]
fn contains_startswith_endswith() {
    let rs = rule("  sel:\n    CommandLine|contains: 'lsass'\n    Image|startswith: 'C:\\Tools\\'\n    ParentImage|endswith: '\\cmd.exe'\n  condition: sel");
    let all = [
        ("CommandLine", s("x LSASS y")),
        ("Image", s("c:\\tools\\pd.exe")),
        ("ParentImage", s("C:\\x\\CMD.exe")),
    ];
    check(
        &rs,
        &[&all],
        &[
            &[
                ("CommandLine", s("x lsas y")),
                all[1].clone(),
                all[2].clone(),
            ],
            &[
                all[0].clone(),
                ("Image", s("D:\\C:\\Tools\\pd.exe")),
                all[2].clone(),
            ],
            &[
                all[0].clone(),
                all[1].clone(),
                ("ParentImage", s("C:\\x\\cmd.exe.old")),
            ],
        ],
    );
}

#[test]
fn list_is_or_and_all_is_and() {
    let any = rule(
        "  sel:\n    CommandLine|contains:\n      - 'alpha'\n      - 'beta'\n  condition: sel",
    );
    check(
        &any,
        &[&[("CommandLine", s("beta"))]],
        &[&[("CommandLine", s("gamma"))]],
    );
    let all = rule(
        "  sel:\n    CommandLine|contains|all:\n      - 'alpha'\n      - 'beta'\n  condition: sel",
    );
    check(
        &all,
        &[&[("CommandLine", s("beta alpha"))]],
        &[&[("CommandLine", s("beta"))]],
    );
}

#[test]
fn list_of_maps_is_or_of_ands() {
    let rs = rule("  sel:\n    - Image|endswith: '\\a.exe'\n      CommandLine|contains: 'x'\n    - Image|endswith: '\\b.exe'\n  condition: sel");
    check(
        &rs,
        &[
            &[("Image", s("C:\\a.exe")), ("CommandLine", s("x"))],
            &[("Image", s("C:\\b.exe"))],
        ],
        &[&[("Image", s("C:\\a.exe")), ("CommandLine", s("y"))]],
    );
}

#[test]
fn wildcards_and_escapes() {
    // `\\*` is a backslash then a wildcard (a lone `\*` would be a literal star).
    let rs = rule("  sel:\n    CommandLine: '*\\temp\\\\*.p?1'\n  condition: sel");
    check(
        &rs,
        &[&[("CommandLine", s("run C:\\TEMP\\x\\a.ps1"))]],
        &[
            &[("CommandLine", s("run C:\\TEMP\\x\\a.ps12"))],
            &[("CommandLine", s("run C:\\tmp\\x\\a.ps1"))],
        ],
    );
    // `\*` is a literal star, `\\` one backslash, `\t` a backslash and a `t`.
    let lit = rule("  sel:\n    CommandLine: 'a\\*b\\\\c'\n  condition: sel");
    check(
        &lit,
        &[&[("CommandLine", s("a*b\\c"))]],
        &[
            &[("CommandLine", s("aXb\\c"))],
            &[("CommandLine", s("a*b\\\\c"))],
        ],
    );
}

#[test]
fn windash_expands_all_five_dashes() {
    let rs = rule("  sel:\n    CommandLine|contains|windash: ' -ma '\n  condition: sel");
    for dash in ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"] {
        assert!(
            fires(
                &rs,
                &proc(&[("CommandLine", s(&format!("pd.exe {dash}ma lsass")))])
            ),
            "dash {dash:?}"
        );
    }
    check(
        &rs,
        &[],
        &[
            &[("CommandLine", s("pd.exe +ma lsass"))],
            &[("CommandLine", s("pd.exe -mb lsass"))],
        ],
    );
}

#[test]
fn regex_with_flags() {
    let cased = rule("  sel:\n    CommandLine|re: 'Invoke-[A-Z]+'\n  condition: sel");
    check(
        &cased,
        &[&[("CommandLine", s("x Invoke-MIMI"))]],
        &[&[("CommandLine", s("x invoke-mimi"))]],
    );
    let ci = rule("  sel:\n    CommandLine|re|i: 'invoke-[a-z]+'\n  condition: sel");
    check(
        &ci,
        &[&[("CommandLine", s("x INVOKE-MIMI"))]],
        &[&[("CommandLine", s("x invoke-1"))]],
    );
    let ml = rule("  sel:\n    CommandLine|re|m: '^second$'\n  condition: sel");
    check(
        &ml,
        &[&[("CommandLine", s("first\nsecond"))]],
        &[&[("CommandLine", s("first second"))]],
    );
    let dotall = rule("  sel:\n    CommandLine|re|s: 'a.b'\n  condition: sel");
    check(
        &dotall,
        &[&[("CommandLine", s("a\nb"))]],
        &[&[("CommandLine", s("ab"))]],
    );
}

#[test]
fn cased_is_case_sensitive() {
    let rs = rule("  sel:\n    CommandLine|contains|cased: 'FromBase64String'\n  condition: sel");
    check(
        &rs,
        &[&[("CommandLine", s("[Convert]::FromBase64String('x')"))]],
        &[&[("CommandLine", s("frombase64string"))]],
    );
}

#[test]
fn exists_and_null() {
    let yes = rule("  sel:\n    OriginalFileName|exists: true\n  condition: sel");
    check(
        &yes,
        &[&[("OriginalFileName", s("x.exe"))]],
        &[&[("Image", s("x"))]],
    );
    let no = rule("  sel:\n    OriginalFileName|exists: false\n  condition: sel");
    check(
        &no,
        &[&[("Image", s("x"))]],
        &[&[("OriginalFileName", s("x.exe"))]],
    );
    let null = rule("  sel:\n    OriginalFileName: null\n  condition: sel");
    check(
        &null,
        &[
            &[("Image", s("x"))],
            &[("OriginalFileName", s(""))],
            &[("OriginalFileName", Value::Null)],
        ],
        &[&[("OriginalFileName", s("x.exe"))]],
    );
}

#[test]
fn base64_and_base64offset() {
    // "http://" at the three offsets, as pySigma encodes it.
    let rs = rule("  sel:\n    CommandLine|base64offset|contains: 'http://'\n  condition: sel");
    for enc in ["aHR0cDovL", "h0dHA6Ly", "odHRwOi8v"] {
        assert!(
            fires(
                &rs,
                &proc(&[("CommandLine", s(&format!("powershell -enc xx{enc}yy")))])
            ),
            "{enc}"
        );
    }
    check(&rs, &[], &[&[("CommandLine", s("powershell http://"))]]);
    let plain = rule("  sel:\n    CommandLine|base64|contains: 'iex'\n  condition: sel");
    check(
        &plain,
        &[&[("CommandLine", s("x aWV4 y"))]],
        &[&[("CommandLine", s("iex"))]],
    );
}

#[test]
fn utf16_wide_then_base64() {
    // `wide|base64offset|contains` is how SigmaHQ catches -EncodedCommand
    // payloads: "iex" as UTF-16LE is 69 00 65 00 78 00.
    let rs = rule("  sel:\n    CommandLine|wide|base64offset|contains: 'iex'\n  condition: sel");
    let payload = "aQBlAHgA"; // base64 of "i\0e\0x\0"
    check(
        &rs,
        &[&[("CommandLine", s(&format!("powershell -e {payload}")))]],
        &[&[("CommandLine", s("powershell iex"))]],
    );
}

#[test]
fn fieldref_compares_two_fields() {
    let rs = rule("  sel:\n    Image|fieldref: ParentImage\n  condition: sel");
    check(
        &rs,
        &[&[("Image", s("C:\\a.exe")), ("ParentImage", s("c:\\A.exe"))]],
        &[
            &[("Image", s("C:\\a.exe")), ("ParentImage", s("C:\\b.exe"))],
            &[("Image", s("C:\\a.exe"))],
        ],
    );
}

#[test]
fn numeric_comparisons_and_integer_equality() {
    let gt = rule("  sel:\n    ProcessId|gt: 1000\n  condition: sel");
    check(
        &gt,
        &[&[("ProcessId", Value::Int(4312))]],
        &[&[("ProcessId", Value::Int(4))], &[("Image", s("x"))]],
    );
    let lte = rule("  sel:\n    ProcessId|lte: 4\n  condition: sel");
    check(
        &lte,
        &[&[("ProcessId", Value::Int(4))]],
        &[&[("ProcessId", Value::Int(5))]],
    );
    let lt = rule("  sel:\n    ProcessId|lt: 4\n  condition: sel");
    check(
        &lt,
        &[&[("ProcessId", Value::Int(3))]],
        &[&[("ProcessId", Value::Int(4))]],
    );
    let gte = rule("  sel:\n    ProcessId|gte: 4\n  condition: sel");
    check(
        &gte,
        &[&[("ProcessId", Value::Int(4))]],
        &[&[("ProcessId", Value::Int(3))]],
    );
    let eq = rule("  sel:\n    ProcessId: 4\n  condition: sel");
    check(
        &eq,
        &[&[("ProcessId", Value::Int(4))]],
        &[&[("ProcessId", Value::Int(44))]],
    );
}

#[test]
fn cidr() {
    let rs = rule(
        "  sel:\n    SourceIp|cidr:\n      - '10.0.0.0/8'\n      - 'fe80::/10'\n  condition: sel",
    );
    check(
        &rs,
        &[
            &[("SourceIp", s("10.20.30.40"))],
            &[("SourceIp", s("fe80::1"))],
        ],
        &[
            &[("SourceIp", s("11.0.0.1"))],
            &[("SourceIp", s("not an ip"))],
        ],
    );
}

#[test]
fn keywords_match_any_field() {
    let rs = rule("  keywords:\n    - 'mimikatz'\n    - 'sekurlsa'\n  condition: keywords");
    check(
        &rs,
        &[&[("ParentCommandLine", s("run Mimikatz.exe"))]],
        &[&[("CommandLine", s("benign"))]],
    );
}

#[test]
fn condition_forms() {
    let det = "  sel_a:\n    CommandLine|contains: 'aaa'\n  sel_b:\n    CommandLine|contains: 'bbb'\n  filter:\n    CommandLine|contains: 'fff'\n";
    let a = [("CommandLine", s("aaa"))];
    let b = [("CommandLine", s("bbb"))];
    let ab = [("CommandLine", s("aaa bbb"))];
    let af = [("CommandLine", s("aaa fff"))];
    let none = [("CommandLine", s("zzz"))];

    check(
        &rule(&format!("{det}  condition: sel_a and not filter")),
        &[&a],
        &[&af, &b],
    );
    check(
        &rule(&format!("{det}  condition: sel_a or sel_b")),
        &[&a, &b],
        &[&none],
    );
    check(
        &rule(&format!("{det}  condition: 1 of sel_*")),
        &[&a, &b],
        &[&none],
    );
    check(
        &rule(&format!("{det}  condition: any of sel_*")),
        &[&a, &b],
        &[&none],
    );
    check(
        &rule(&format!("{det}  condition: all of sel_*")),
        &[&ab],
        &[&a, &b],
    );
    check(
        &rule(&format!("{det}  condition: 1 of them")),
        &[&a, &[("CommandLine", s("fff"))]],
        &[&none],
    );
    check(
        &rule(&format!("{det}  condition: all of them")),
        &[&[("CommandLine", s("aaa bbb fff"))]],
        &[&ab],
    );
    // Precedence: not > and > or.
    check(
        &rule(&format!("{det}  condition: sel_a or sel_b and not filter")),
        &[&af, &b],
        &[&[("CommandLine", s("bbb fff"))]],
    );
    check(
        &rule(&format!(
            "{det}  condition: (sel_a or sel_b) and not filter"
        )),
        &[&a, &b],
        &[&af, &[("CommandLine", s("bbb fff"))]],
    );
    check(
        &rule(&format!("{det}  condition: not sel_a")),
        &[&b, &none],
        &[&a],
    );
    // A list of conditions is their OR.
    check(
        &rule(&format!(
            "{det}  condition:\n    - sel_a and filter\n    - sel_b"
        )),
        &[&af, &b],
        &[&a],
    );
}

#[test]
fn logsource_is_respected() {
    let rs = rule_with(
        "category: file_event\n  product: windows",
        "  sel:\n    TargetFilename|startswith: 'C:\\Windows\\TAPI\\'\n  condition: sel",
    );
    let mut ev = Event::new(EventKind::FileCreate, Os::Windows, Timestamp::UNIX_EPOCH);
    ev.set(
        FieldKey::from_name("TargetFilename"),
        s("C:\\Windows\\TAPI\\pa.exe"),
    );
    assert!(fires(&rs, &ev));
    ev.kind = EventKind::FileWrite;
    assert!(fires(&rs, &ev), "file_event covers file writes");
    ev.kind = EventKind::FileDelete;
    assert!(!fires(&rs, &ev), "file_event does not cover deletes");
    ev.kind = EventKind::FileCreate;
    ev.os = Os::Linux;
    assert!(
        !fires(&rs, &ev),
        "product windows does not see linux events"
    );

    let linux = rule_with(
        "category: process_creation\n  product: linux",
        "  sel:\n    Image|endswith: '/curl'\n  condition: sel",
    );
    let mut lev = Event::new(EventKind::ProcessStart, Os::Linux, Timestamp::UNIX_EPOCH);
    lev.set(FieldKey::from_name("Image"), s("/usr/bin/curl"));
    assert!(fires(&linux, &lev));
    lev.os = Os::Windows;
    assert!(!fires(&linux, &lev));
}

#[test]
fn every_matching_rule_alerts() {
    let text = "title: one\nid: r1\nlogsource: {category: process_creation, product: windows}\ndetection:\n  s: {CommandLine|contains: x}\n  condition: s\n---\ntitle: two\nid: r2\nlogsource: {category: process_creation, product: windows}\ndetection:\n  s: {CommandLine|contains: xy}\n  condition: s\n";
    let load = sigma::parse_str(text, "multi.yml");
    assert_eq!(load.rules.len(), 2, "{:?}", load.unsupported);
    let (rs, _) = Ruleset::compile(load.rules);
    assert_eq!(
        rs.matching_ids(&proc(&[("CommandLine", s("xyz"))])),
        ["r1", "r2"]
    );
}

#[test]
fn unsupported_rules_say_why() {
    assert!(
        unsupported_reason("  s: {CommandLine|contains: x}\n  condition: s | count() > 3")
            .contains("aggregation")
    );
    assert!(
        unsupported_reason("  s: {CommandLine|contains: x}\n  condition: missing")
            .contains("missing")
    );
    assert!(unsupported_reason("  s: {CommandLine|bogus: x}\n  condition: s").contains("bogus"));
    assert!(
        unsupported_reason("  s: {CommandLine|contains|expand: '%x%'}\n  condition: s")
            .contains("expand")
    );
    assert!(
        unsupported_reason("  s: {CommandLine|re: '(?<=a)b'}\n  condition: s")
            .to_lowercase()
            .contains("look")
    );
}

#[test]
fn windash_from_a_slash_and_under_all() {
    // SigmaHQ writes both spellings; `all` ANDs the values while each
    // value's dash variants stay OR-linked.
    let rs = rule(
        "  sel:\n    CommandLine|contains|windash|all:\n      - ' /c '\n      - ' -k '\n  condition: sel",
    );
    for (c, k) in [
        ("/", "-"),
        ("-", "/"),
        ("\u{2013}", "\u{2014}"),
        ("\u{2015}", "\u{2013}"),
        ("\u{2014}", "\u{2015}"),
    ] {
        let line = format!("cmd.exe {c}c svc {k}k x");
        assert!(fires(&rs, &proc(&[("CommandLine", s(&line))])), "{line:?}");
    }
    check(
        &rs,
        &[],
        &[
            &[("CommandLine", s("cmd.exe /c svc"))],
            &[("CommandLine", s("cmd.exe +c svc -k x"))],
        ],
    );
}

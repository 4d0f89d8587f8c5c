//! KQL semantics, checked end to end: text → rule → compiled ruleset →
//! verdict on an event. Examples marked "Kusto docs" are the examples of
//! Microsoft's *String operators* page
//! (<https://learn.microsoft.com/azure/data-explorer/kusto/query/datatypes-string-operators>).

use std::sync::Arc;

use super::parse_str;
use crate::event::{Event, EventKind, FieldKey, Os, Timestamp, Value};
use crate::matcher::{Ruleset, Scratch};

fn compile(text: &str) -> Ruleset {
    let load = parse_str(text, "rules/t.kql");
    assert!(load.unsupported.is_empty(), "{:?}", load.unsupported);
    let (rs, rejected) = Ruleset::compile(load.rules);
    assert!(rejected.is_empty(), "{rejected:?}");
    rs
}

fn event(kind: EventKind, fields: &[(&str, &str)]) -> Event {
    let mut ev = Event::new(kind, Os::Windows, Timestamp::UNIX_EPOCH);
    ev.host = Some(Arc::from("LF-WS-0142.lawfirm.local"));
    for (k, v) in fields {
        ev.set(FieldKey::from_name(k), Value::from(*v));
    }
    ev
}

fn fires(rs: &Ruleset, ev: &Event) -> bool {
    !rs.matching_ids(ev).is_empty()
}

/// Whether `ProcessCommandLine <cond>` holds for a process whose command line
/// is `text`.
fn holds(text: &str, cond: &str) -> bool {
    let rs = compile(&format!(
        "DeviceProcessEvents\n| where ProcessCommandLine {cond}"
    ));
    fires(
        &rs,
        &event(EventKind::ProcessStart, &[("CommandLine", text)]),
    )
}

fn error(text: &str) -> String {
    let load = parse_str(text, "rules/t.kql");
    assert!(load.rules.is_empty(), "loaded: {:?}", load.rules);
    assert_eq!(load.unsupported.len(), 1);
    load.unsupported[0].reason.clone()
}

#[test]
fn equality_operators_follow_kusto_case_rules() {
    // Kusto docs: "aBc" == "aBc", "abc" != "ABC", "abc" =~ "ABC", "aBc" !~ "xyz".
    assert!(holds("aBc", r#"== "aBc""#));
    assert!(!holds("aBc", r#"== "abc""#), "== is case-sensitive");
    assert!(holds("abc", r#"!= "ABC""#));
    assert!(!holds("abc", r#"!= "abc""#));
    assert!(holds("abc", r#"=~ "ABC""#));
    assert!(!holds("abcd", r#"=~ "ABC""#));
    assert!(holds("aBc", r#"!~ "xyz""#));
    assert!(!holds("aBc", r#"!~ "ABC""#));
    // Kusto folds ASCII only; trawl also folds a non-ASCII letter of the
    // literal, as for Sigma (a documented difference).
    assert!(holds("été", r#"=~ "ÉTÉ""#));
    assert!(!holds("été", r#"== "ÉTÉ""#));
}

#[test]
fn contains_startswith_endswith_and_their_negations() {
    // Kusto docs examples.
    assert!(holds("FabriKam", r#"contains "BRik""#));
    assert!(!holds("FabriKam", r#"contains "xyz""#));
    assert!(holds("Fabrikam", r#"!contains "xyz""#));
    assert!(!holds("Fabrikam", r#"!contains "BRIK""#));
    assert!(holds("FabriKam", r#"contains_cs "Kam""#));
    assert!(!holds("FabriKam", r#"contains_cs "kam""#));
    assert!(holds("Fabrikam", r#"!contains_cs "Kam""#));
    assert!(!holds("FabriKam", r#"!contains_cs "Kam""#));
    assert!(holds("Fabrikam", r#"endswith "Kam""#));
    assert!(!holds("Fabrikam", r#"endswith "brik""#));
    assert!(holds("Fabrikam", r#"!endswith "brik""#));
    assert!(!holds("Fabrikam", r#"!endswith "KAM""#));
    assert!(holds("Fabrikam", r#"endswith_cs "kam""#));
    assert!(!holds("Fabrikam", r#"endswith_cs "Kam""#));
    assert!(holds("Fabrikam", r#"!endswith_cs "brik""#));
    assert!(!holds("Fabrikam", r#"!endswith_cs "kam""#));
    assert!(holds("Fabrikam", r#"startswith "fab""#));
    assert!(!holds("Fabrikam", r#"startswith "kam""#));
    assert!(holds("Fabrikam", r#"!startswith "kam""#));
    assert!(!holds("Fabrikam", r#"!startswith "FAB""#));
    assert!(holds("Fabrikam", r#"startswith_cs "Fab""#));
    assert!(!holds("Fabrikam", r#"startswith_cs "fab""#));
    assert!(holds("Fabrikam", r#"!startswith_cs "fab""#));
    assert!(!holds("Fabrikam", r#"!startswith_cs "Fab""#));
}

#[test]
fn has_matches_whole_terms() {
    // Kusto docs: "North America" has "america", !has "amer", has_cs "America".
    assert!(holds("North America", r#"has "america""#));
    assert!(!holds("North America", r#"has "amer""#));
    assert!(holds("North America", r#"!has "amer""#));
    assert!(!holds("North America", r#"!has "AMERICA""#));
    assert!(holds("North America", r#"has_cs "America""#));
    assert!(!holds("North America", r#"has_cs "america""#));
    assert!(holds("North America", r#"!has_cs "amer""#));
    assert!(!holds("North America", r#"!has_cs "America""#));
    // Kusto docs: the terms of this string are Kusto, KustoExplorerQueryRun,
    // ad67d136, c1db, 4f9f, 88ef, d94f3b6b0b5a.
    let s = "Kusto: ad67d136-c1db-4f9f-88ef-d94f3b6b0b5a;KustoExplorerQueryRun";
    assert!(holds(s, r#"has "KustoExplorerQueryRun""#));
    assert!(holds(s, r#"has "c1db""#));
    assert!(holds(s, r#"has "kusto""#));
    assert!(!holds(s, r#"has "Explorer""#));
    assert!(!holds(s, r#"has "67d136""#));
    assert!(!holds(s, r#"has "d94f3b6b0b5""#));
    assert!(!holds("KustoExplorerQueryRun", r#"has "Explorer""#));
    // A needle with punctuation is a phrase: its alphanumeric ends sit on
    // term boundaries, its punctuation must be there as written.
    assert!(holds(s, r#"has "ad67d136-c1db""#));
    assert!(!holds(s, r#"has "d67d136-c1db""#));
    assert!(!holds(s, r#"has "ad67d136-c1d""#));
    assert!(holds(
        "cmd.exe /q /c color f7&whoami /all",
        r#"has "/q /c color f7&""#
    ));
    assert!(holds(
        "$w=New-Object Net.We$()bClient;",
        r#"has "Net.We$()bClient""#
    ));
    assert!(!holds(
        "$w=New-Object xNet.We$()bClient;",
        r#"has "Net.We$()bClient""#
    ));
    assert!(!holds(
        "$w=New-Object Net.We$( )bClient;",
        r#"has "Net.We$()bClient""#
    ));
    assert!(holds(
        "GetString($b,15,$b.Length-15))",
        r#"has "$b,15,$b.Length-15""#
    ));
    assert!(!holds(
        "GetString($b,15,$b.Length-150))",
        r#"has "$b,15,$b.Length-15""#
    ));
    assert!(holds("powershell -nop -w hidden", r#"has "-nop""#));
    assert!(!holds("powershell -noprofile", r#"has "-nop""#));
    assert!(holds("x (iex ([Text", r#"has "(iex""#));
    assert!(!holds("x (iexplore", r#"has "(iex""#));
    assert!(holds(
        "run C:\\Windows\\TAPI\\pa.exe",
        r#"has @"C:\Windows\TAPI""#
    ));
    assert!(!holds(
        "run C:\\Windows\\TAPIX\\pa.exe",
        r#"has @"C:\Windows\TAPI""#
    ));
    // Case-insensitive hits are still checked for boundaries on every hit.
    assert!(holds("americas AMERICA", r#"has "america""#));
    // Kusto docs (*has operator*): a term under three characters is not in
    // Kusto's index, so the column is scanned; the match is still whole-term.
    assert!(holds("a-b c", r#"has "b""#));
    assert!(!holds("ab c", r#"has "b""#));
    assert!(holds("x 7z", r#"has "7Z""#));
    assert!(!holds("x 7z", r#"has "7""#));
    // `_` is not alphanumeric: it separates terms.
    assert!(holds("run my_script.ps1", r#"has "script""#));
    assert!(!holds("run myscript.ps1", r#"has "script""#));
}

#[test]
fn has_any_and_has_all_over_literal_and_let_lists() {
    // Kusto docs: "North America" has_any("south", "north"), has_all.
    assert!(holds("North America", r#"has_any ("south", "north")"#));
    assert!(!holds("North America", r#"has_any ("south", "nort")"#));
    assert!(holds("North America", r#"has_all ("america", "north")"#));
    assert!(!holds("North America", r#"has_all ("south", "north")"#));
    let rs = compile(
        "let terms = dynamic([\"iex\", \"-nop\"]);\nlet one = \"FromBase64String\";\nDeviceProcessEvents\n| where ProcessCommandLine has_all (terms, one)",
    );
    let cmd = |c: &str| event(EventKind::ProcessStart, &[("CommandLine", c)]);
    assert!(fires(
        &rs,
        &cmd("powershell -nop iex([Convert]::FromBase64String('x'))")
    ));
    assert!(!fires(&rs, &cmd("powershell -nop iex x")));
    let rs = compile(
        "let l = dynamic([\"a.exe\", \"b.exe\"]);\nDeviceProcessEvents | where FileName has_any (l) or FileName in~ (dynamic([\"C.EXE\"]))",
    );
    let img = |p: &str| event(EventKind::ProcessStart, &[("Image", p)]);
    assert!(fires(&rs, &img("C:\\x\\B.exe")));
    assert!(fires(&rs, &img("C:\\x\\c.exe")));
    assert!(!fires(&rs, &img("C:\\x\\ab.exe")));
}

#[test]
fn in_is_case_sensitive_and_in_tilde_is_not() {
    // Kusto docs: "abc" in ("123", "345", "abc"), "bca" !in (…),
    // "Abc" in~ ("123", "345", "abc"), "bca" !in~ ("123", "345", "ABC").
    assert!(holds("abc", r#"in ("123", "345", "abc")"#));
    assert!(!holds("Abc", r#"in ("123", "345", "abc")"#));
    assert!(holds("bca", r#"!in ("123", "345", "abc")"#));
    assert!(!holds("abc", r#"!in ("123", "345", "abc")"#));
    assert!(holds("Abc", r#"in~ ("123", "345", "abc")"#));
    assert!(!holds("Abcd", r#"in~ ("123", "345", "abc")"#));
    assert!(holds("bca", r#"!in~ ("123", "345", "ABC")"#));
    assert!(!holds("abc", r#"!in~ ("123", "345", "ABC")"#));
    assert!(
        holds("", r#"in ("", "x")"#),
        "the empty item matches an empty value"
    );
}

#[test]
fn matches_regex_is_case_sensitive_and_unanchored() {
    // Kusto docs: "Fabrikam" matches regex "b.*k".
    assert!(holds("Fabrikam", r#"matches regex "b.*k""#));
    assert!(!holds("Fabrikam", r#"matches regex "B.*K""#));
    assert!(holds("Fabrikam", r#"matches regex @"(?i)B.*K""#));
    assert!(!holds("Fabrikam", r#"matches regex "^abrik""#));
}

#[test]
fn empty_needles_and_absent_columns_read_as_empty_strings() {
    let rs = compile("DeviceProcessEvents | where ProcessCommandLine == \"\"");
    assert!(fires(&rs, &event(EventKind::ProcessStart, &[])));
    assert!(fires(
        &rs,
        &event(EventKind::ProcessStart, &[("CommandLine", "")])
    ));
    assert!(!fires(
        &rs,
        &event(EventKind::ProcessStart, &[("CommandLine", "x")])
    ));
    let rs = compile("DeviceProcessEvents | where ProcessCommandLine !contains \"x\"");
    assert!(
        fires(&rs, &event(EventKind::ProcessStart, &[])),
        "an absent column is \"\", which does not contain x"
    );
    // `startswith ""` holds for every text (alone, it would make a rule that
    // alerts on every event, which is reported).
    assert!(holds(
        "abc",
        r#"startswith "" and ProcessCommandLine has "abc""#
    ));
    assert!(!holds(
        "abc",
        r#"!startswith "" or ProcessCommandLine has "x""#
    ));
    let rs = compile("DeviceProcessEvents | where isempty(ProcessCommandLine)");
    assert!(fires(&rs, &event(EventKind::ProcessStart, &[])));
    assert!(fires(
        &rs,
        &event(EventKind::ProcessStart, &[("CommandLine", "")])
    ));
    assert!(!fires(
        &rs,
        &event(EventKind::ProcessStart, &[("CommandLine", "x")])
    ));
    let rs = compile("DeviceProcessEvents | where isnotempty(AccountDomain)");
    assert!(fires(
        &rs,
        &event(EventKind::ProcessStart, &[("User", "D\\u")])
    ));
    assert!(!fires(
        &rs,
        &event(EventKind::ProcessStart, &[("User", "root")])
    ));
    assert!(
        error("DeviceProcessEvents | where ProcessCommandLine has \"\"")
            .contains("`has` needs a term")
    );
}

#[test]
fn numbers_compare_numerically() {
    let pid = |op: &str| {
        let rs = compile(&format!("DeviceProcessEvents | where ProcessId {op}"));
        let mut ev = event(EventKind::ProcessStart, &[]);
        ev.set(FieldKey::from_name("ProcessId"), Value::Int(4312));
        fires(&rs, &ev)
    };
    assert!(pid("== 4312"));
    assert!(!pid("== 4313"));
    assert!(pid("!= 4313"));
    assert!(!pid("!= 4312"));
    assert!(pid("> 4000") && !pid("> 4312"));
    assert!(pid(">= 4312") && !pid(">= 4313"));
    assert!(pid("< 5000") && !pid("< 4312"));
    assert!(pid("<= 4312") && !pid("<= 4311"));
    assert!(pid("in (1, 4312)") && !pid("in (1, 2)"));
    assert!(pid("!in (1, 2)") && !pid("!in (4312)"));
    assert!(pid("== '4312'"), "a numeric string is read as a number");
    assert!(pid("== 0x10D8"));
    assert!(pid("> -1") && !pid("< -1") && pid("!in (-4312)"));
    assert!(error("DeviceProcessEvents | where ProcessId has \"43\"")
        .contains("`ProcessId` is a number"));
    assert!(error("DeviceProcessEvents | where ProcessId == \"x\"").contains("\"x\" is not one"));
    assert!(error("DeviceProcessEvents | where FolderPath > 3").contains("compares numbers"));
}

#[test]
fn not_parentheses_and_precedence() {
    let q = "DeviceProcessEvents | where ProcessCommandLine has \"a\" or ProcessCommandLine has \"b\" and ProcessCommandLine has \"c\"";
    let rs = compile(q);
    let cmd = |c: &str| event(EventKind::ProcessStart, &[("CommandLine", c)]);
    assert!(fires(&rs, &cmd("a")), "and binds tighter than or");
    assert!(!fires(&rs, &cmd("b")));
    assert!(fires(&rs, &cmd("b c")));
    let rs = compile(
        "DeviceProcessEvents | where (ProcessCommandLine has \"a\" or ProcessCommandLine has \"b\") and not(ProcessCommandLine has \"c\")",
    );
    assert!(fires(&rs, &cmd("b")));
    assert!(!fires(&rs, &cmd("b c")));
    assert!(!fires(&rs, &cmd("c")));
    // Several `where` stages are ANDed.
    let rs = compile("DeviceProcessEvents\n| where ProcessCommandLine has \"a\"\n| where ProcessCommandLine has \"b\"");
    assert!(fires(&rs, &cmd("a b")));
    assert!(!fires(&rs, &cmd("a")));
}

#[test]
fn defender_columns_map_onto_trawl_fields() {
    let rs = compile(
        "DeviceProcessEvents | where FileName =~ \"PA.EXE\" and FolderPath startswith @\"C:\\Windows\\TAPI\\\" \
         and SHA256 == \"2a1044e9e6e87a032f80c6d9ea6ae61bbbb053c0a21b186ecb3b812b49eb03b7\" \
         and AccountName == \"itp-admin\" and AccountDomain =~ \"lawfirm\" and DeviceName startswith \"LF-WS\" \
         and InitiatingProcessFileName == \"cmd.exe\" and ActionType == \"ProcessCreated\"",
    );
    let ev = event(
        EventKind::ProcessStart,
        &[
            ("Image", "C:\\Windows\\TAPI\\pa.exe"),
            ("Hashes", "SHA1=00,MD5=00,SHA256=2A1044E9E6E87A032F80C6D9EA6AE61BBBB053C0A21B186ECB3B812B49EB03B7"),
            ("User", "LAWFIRM\\itp-admin"),
            ("ParentImage", "C:\\Windows\\System32\\cmd.exe"),
        ],
    );
    assert!(fires(&rs, &ev));
    let mut other = ev.clone();
    other.kind = EventKind::FileCreate;
    assert!(
        !fires(&rs, &other),
        "a process table sees process starts only"
    );

    let rs = compile(
        "DeviceFileEvents | where FolderPath has @\"C:\\Windows\\TAPI\" and ActionType in (\"FileCreated\", \"FileRenamed\") \
         and InitiatingProcessFileName =~ \"dllhost.exe\" and FileName endswith \".exe\"",
    );
    let file = |kind| {
        event(
            kind,
            &[
                ("Image", "C:\\Windows\\System32\\dllhost.exe"),
                ("TargetFilename", "C:\\Windows\\TAPI\\lsa.exe"),
            ],
        )
    };
    assert!(fires(&rs, &file(EventKind::FileCreate)));
    assert!(fires(&rs, &file(EventKind::FileRename)));
    assert!(!fires(&rs, &file(EventKind::FileWrite)), "FileModified");
    assert!(!fires(&rs, &file(EventKind::FileDelete)));

    let rs = compile(
        "SecurityEvent | where EventID == 4688 | where NewProcessName endswith \"\\\\pa.exe\" and Computer =~ \"lf-ws-0142.LAWFIRM.local\" and Account == @\"LAWFIRM\\itp-admin\"",
    );
    let mut proc = event(
        EventKind::ProcessStart,
        &[
            ("Image", "C:\\Windows\\TAPI\\pa.exe"),
            ("User", "LAWFIRM\\itp-admin"),
        ],
    );
    assert!(fires(&rs, &proc));
    proc.os = Os::Linux;
    assert!(!fires(&rs, &proc), "SecurityEvent rows come from Windows");
}

#[test]
fn matches_name_the_fields_and_derived_values_that_held() {
    let rs = compile(
        "DeviceProcessEvents | where FileName =~ \"pa.exe\" and ProcessCommandLine has \"lsass\"",
    );
    let ev = event(
        EventKind::ProcessStart,
        &[
            ("Image", "C:\\Windows\\TAPI\\pa.exe"),
            ("CommandLine", "pa.exe -ma lsass.exe"),
        ],
    );
    let mut scratch = Scratch::new(&rs);
    let mut out = Vec::new();
    rs.evaluate(&ev, &mut scratch, &mut out);
    let shown: Vec<(String, String, String)> = out[0]
        .matches
        .iter()
        .map(|m| (m.field.to_string(), m.op.to_owned(), m.value.to_string()))
        .collect();
    assert_eq!(
        shown,
        [
            ("Image|filename".into(), "equals".into(), "pa.exe".into()),
            ("CommandLine".into(), "has".into(), "lsass".into())
        ]
    );
}

#[test]
fn header_comments_name_the_rule() {
    let load = parse_str(
        "// title: TAPI files\n// id: 1234\n// level: critical\nDeviceFileEvents | where FolderPath has \"tapi\"",
        "x/y/tapi.kql",
    );
    let r = &load.rules[0];
    assert_eq!(
        (r.id.as_str(), r.title.as_str(), r.level.as_str()),
        ("1234", "TAPI files", "critical")
    );
    let load = parse_str(
        "// level: severe\nDeviceFileEvents | where FolderPath has \"tapi\"",
        "x/tapi.kql",
    );
    let r = &load.rules[0];
    assert_eq!(
        (r.id.as_str(), r.title.as_str(), r.level.as_str()),
        ("kql:tapi", "tapi", "medium")
    );
    assert_eq!(load.problems[0].line, 1);
    assert!(load.problems[0]
        .reason
        .contains("`severe` is not a Sigma level"));
}

#[test]
fn unsupported_constructs_are_reported_with_line_and_column() {
    let cases: &[(&str, &str)] = &[
        (
            "DeviceProcessEvents\n| summarize count() by DeviceName",
            "line 2, column 3: `summarize` before any `where` is not supported",
        ),
        (
            "DeviceProcessEvents\n| extend X = 1\n| where X == 1",
            "line 2, column 3: `extend` before any `where`",
        ),
        (
            "union DeviceProcessEvents, DeviceFileEvents\n| where FileName == \"x\"",
            "line 1, column 1: `union` is not supported",
        ),
        (
            "(union isfuzzy=true\n(DeviceProcessEvents | where FileName == \"x\"))",
            "line 1, column 1: a query in parentheses is not supported",
        ),
        (
            "DeviceProcessEvents\n| where FileName == \"x\" and DeviceId == \"y\"",
            "line 2, column 29: `DeviceId` is not a column of DeviceProcessEvents that trawl can fill",
        ),
        (
            "DeviceProcessEvents\n| where tolower(FileName) == \"x\"",
            "line 2, column 9: function `tolower` is not supported",
        ),
        (
            "DeviceProcessEvents\n| where FileName hasprefix \"x\"",
            "line 2, column 18: operator `hasprefix` is not supported",
        ),
        (
            "DeviceProcessEvents\n| where FileName == \"x\n",
            "line 2, column 21: string not closed",
        ),
        (
            "DeviceProcessEvents\n| where FileName == InitiatingProcessFileName",
            "line 2, column 21: `InitiatingProcessFileName` is neither a literal nor a `let` name",
        ),
        (
            "DeviceProcessEvents\n| where FileName = \"x\"",
            "line 2, column 18: `=` assigns",
        ),
        (
            "DeviceProcessEvents\n| where FileName == \"x\" FolderPath",
            "line 2, column 25: unexpected `FolderPath` after the `where` condition",
        ),
        (
            "let x = DeviceProcessEvents | where FileName == \"a\";\nx",
            "line 1, column 9: `let x` must be a `dynamic([...])` list or a literal",
        ),
        ("DeviceProcessEvents", "line 1, column 1: `DeviceProcessEvents` has no `where` clause"),
        (
            "DeviceProcessEvents\n| where Timestamp > ago(7d) or FileName == \"x\"",
            "line 2, column 21: time conditions are not evaluated",
        ),
        (
            "DeviceProcessEvents\n| where FileName matches regex \"(?<=a)b\"",
            "line 2, column 32: the regex does not parse",
        ),
        (
            "DeviceProcessEvents\n| where FileName has_any ()",
            "line 2, column 26: the list is empty",
        ),
        (
            "DeviceProcessEvents\n| where FileName ==",
            "line 2, column 20: expected a value, found the end of the query",
        ),
        (
            "DeviceProcessEvents\n| where FileName ==\n\n// trailing comment\n",
            "line 2, column 20: expected a value, found the end of the query",
        ),
        (
            "\u{FEFF}DeviceProcessEvents | where FileName = \"x\"",
            "line 1, column 38: `=` assigns",
        ),
        (
            "deviceprocessevents\n| where FileName == \"x\"",
            "line 1, column 1: table `deviceprocessevents` is not known: table names are case-sensitive; did you mean `DeviceProcessEvents`?",
        ),
        (
            "DeviceProcessEvents\n| where Timestamp > ago(7d)",
            "line 1, column 1: the filter holds for every DeviceProcessEvents row once its time condition is ignored: as a rule it would alert on every event",
        ),
        (
            "SecurityEvent\n| where EventID == 4688",
            "line 1, column 1: the filter holds for every SecurityEvent row: as a rule",
        ),
        (
            "DeviceProcessEvents\n| where Timestamp < ago(7d) and FileName == \"x\"",
            "line 2, column 21: time conditions are not evaluated",
        ),
        (
            "DeviceProcessEvents\n| where FileName !contains \"\"",
            "line 1, column 1: the filter holds for no DeviceProcessEvents row",
        ),
        (
            "DeviceProcessEvents\n| where not FileName == \"x\"",
            "line 2, column 9: `not` is a function: write `not(condition)`",
        ),
    ];
    for (text, want) in cases {
        let got = error(text);
        assert!(
            got.starts_with(want),
            "{text:?}\n  got:  {got}\n  want: {want}…"
        );
    }
}

#[test]
fn tables_trawl_does_not_produce_are_out_of_scope() {
    let load = parse_str("SigninLogs\n| where ResultType == 50126", "s.kql");
    assert!(load.rules.is_empty());
    assert!(load.unsupported[0].out_of_scope);
    assert!(load.unsupported[0]
        .reason
        .starts_with("line 1, column 1: table `SigninLogs`"));
    let load = parse_str("deviceFileEvents | where FileName == \"x\"", "s.kql");
    assert!(!load.unsupported[0].out_of_scope, "a typo is an error");
    let load = parse_str("SecurityEvent | where EventID == 4624", "s.kql");
    assert!(load.unsupported[0].out_of_scope, "{:?}", load.unsupported);
    assert!(load.unsupported[0].reason.contains("EventID 4688"));
}

#[test]
fn a_supported_filter_followed_by_other_stages_loads_with_a_warning() {
    let text = "DeviceProcessEvents\n| where Timestamp > ago(7d)\n| where FileName =~ \"pa.exe\"\n| join kind=leftouter (SecurityAlert\n  | where ProviderName =~ \"MDATP\") on DeviceId\n| project-reorder Timestamp\n| where AlertRiskScore > 0.5\n";
    let load = parse_str(text, "j.kql");
    assert!(load.unsupported.is_empty(), "{:?}", load.unsupported);
    assert_eq!(load.rules.len(), 1);
    let shown: Vec<String> = load.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        shown,
        [
            "j.kql:2: column 9: the time condition is ignored: on the endpoint every event is current (warning; the rule loads)",
            "j.kql:4: column 3: only the `where` filter runs on the endpoint; `join` and everything after it are not evaluated (warning; the rule loads); the `where` at line 7, column 3 is skipped too, so the rule can alert on rows the full query drops",
        ]
    );
    let (rs, _) = Ruleset::compile(load.rules);
    assert!(fires(
        &rs,
        &event(EventKind::ProcessStart, &[("Image", "C:\\x\\PA.exe")])
    ));
}

/// Queries the robustness tests cut and mutate: the shipped queries and a
/// few that use every construct of the subset.
const CORPUS: &[&str] = &[
    include_str!("../../rules/kql/dev-0056-powershell.kql"),
    include_str!("../../rules/kql/dev-0228-paexec.kql"),
    include_str!("../../rules/kql/dev-0228-tapi-files.kql"),
    include_str!("../../rules/kql/sentinel-dev-0056-securityevent.kql"),
    include_str!("../../rules/kql/sentinel-dev-0228-file-path-hashes.kql"),
    "// id: x\nlet l = dynamic(['a', @\"b\\c\", h'd', 0x1F, 1.5e3]);\nlet s = 'v';\nDeviceProcessEvents\n| where ProcessId !in (1, 2) and not(ProcessId > 7 or isempty(FileName))\n| where FileName in~ (l, s) or FolderPath !startswith_cs @'C:\\x' and ProcessCommandLine matches regex \"a+b\"\n| filter SHA256 has_all (l) or AccountName !has \"z\" or Timestamp > ago(1d)\n| project FileName;",
    "SecurityEvent | where EventID == '4688' and CommandLine =~ h@\"x\"\"y\" and Account !~ \"\\u0041\"",
];

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Parses and compiles `text`: must not panic, and must account for the
/// file (one rule, or one unsupported entry).
fn load_and_compile(text: &str) {
    let load = parse_str(text, "rules/fuzz.kql");
    assert_eq!(
        load.rules.len() + load.unsupported.len(),
        1,
        "{text:?} -> {:?} / {:?}",
        load.rules,
        load.unsupported
    );
    let (rs, _) = Ruleset::compile(load.rules);
    let ev = event(
        EventKind::ProcessStart,
        &[("CommandLine", "a b"), ("Image", "C:\\x\\a.exe")],
    );
    let _ = rs.matching_ids(&ev);
}

#[test]
fn truncated_and_mutated_queries_never_panic() {
    // Characters that change the meaning of KQL text the most.
    const SPLICE: &[&str] = &[
        "\"", "'", "@", "h", "(", ")", "[", "]", "|", "!", "~", "=", "\\", "/", "//", ",", ";",
        "-", "0x", "1e", "\n", " ", "é", "not(", "dynamic(", "in~", "has_any", "ago(", "let ",
        "\\u", "```", "~~~",
    ];
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut runs = 0;
    for text in CORPUS {
        let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        for &cut in &cuts {
            load_and_compile(&text[..cut]);
            runs += 1;
        }
        for _ in 0..600 {
            let mut s = (*text).to_owned();
            for _ in 0..1 + rng.below(3) {
                let cuts: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
                let at = cuts[rng.below(cuts.len())];
                match rng.below(3) {
                    0 => s.insert_str(at, SPLICE[rng.below(SPLICE.len())]),
                    1 if at < s.len() => {
                        s.remove(at);
                    }
                    _ => {
                        let to = cuts[rng.below(cuts.len())].max(at);
                        let piece = s[at..to].to_owned();
                        s.insert_str(to, &piece);
                    }
                }
            }
            load_and_compile(&s);
            runs += 1;
        }
    }
    assert!(runs > 8_000, "{runs}");
}

#[test]
fn deep_nesting_is_reported_not_a_stack_overflow() {
    // The 65th opening is refused, where it stands.
    for (open, close, col) in [("(", ")", 29 + 64), ("not(", ")", 29 + 64 * 4)] {
        let n = 100_000;
        let text = format!(
            "DeviceProcessEvents | where {}FileName == \"x\"{}",
            open.repeat(n),
            close.repeat(n)
        );
        let reason = error(&text);
        assert!(
            reason.starts_with(&format!("line 1, column {col}: nested more than 64 levels")),
            "{reason}"
        );
    }
    // Real queries nest a few levels: well within the limit.
    let text = format!(
        "DeviceProcessEvents | where {}FileName == \"x\"{}",
        "(".repeat(60),
        ")".repeat(60)
    );
    assert_eq!(parse_str(&text, "t.kql").rules.len(), 1);
}

#[test]
fn a_missing_number_is_null_as_in_kusto() {
    // Kusto docs (*Null values*): null == 5 is false, null != 5 is true,
    // null > 3 is null; `where` keeps only rows whose condition is true,
    // and not(null) is null.
    let verdict = |cond: &str, pid: Option<i64>| {
        let rs = compile(&format!("DeviceProcessEvents | where {cond}"));
        let mut ev = event(EventKind::ProcessStart, &[("Image", "C:\\y.exe")]);
        if let Some(p) = pid {
            ev.set(FieldKey::from_name("ProcessId"), Value::Int(p));
        }
        fires(&rs, &ev)
    };
    let cases: &[(&str, bool, bool)] = &[
        // condition, with ProcessId 3, without ProcessId
        ("ProcessId == 5", false, false),
        ("ProcessId != 5", true, true),
        ("ProcessId > 5", false, false),
        ("ProcessId <= 5", true, false),
        ("not(ProcessId == 5)", true, true),
        ("not(ProcessId != 5)", false, false),
        ("not(ProcessId > 5)", true, false),
        ("not(ProcessId >= 3)", false, false),
        ("not(ProcessId < 3)", true, false),
        ("not(ProcessId <= 2)", true, false),
        ("not(not(ProcessId > 2))", true, false),
        ("ProcessId in (5, 6)", false, false),
        ("ProcessId !in (5, 6)", true, true),
        ("not(ProcessId in (3))", false, true),
        ("not(ProcessId !in (3))", true, false),
        // null or false is null; null and false is false.
        ("not(ProcessId > 5 or FileName == \"x.exe\")", true, false),
        ("not(ProcessId > 5 and FileName == \"y.exe\")", true, false),
        ("not(ProcessId > 5 and FileName == \"x.exe\")", true, true),
        ("not(ProcessId > 5) or FileName == \"y.exe\"", true, true),
        // Strings are never null: a missing one is "".
        ("not(ProcessCommandLine has \"a\")", true, true),
        ("not(isempty(ProcessId))", true, false),
    ];
    for (cond, with, without) in cases {
        assert_eq!(
            (verdict(cond, Some(3)), verdict(cond, None)),
            (*with, *without),
            "{cond}"
        );
    }
}

//! End-to-end: the `trawl` binary replaying traces, as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn trawl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn trace() -> PathBuf {
    root().join("replay/traces/dev-0228.ndjson")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the trawl binary runs")
}

fn alerts(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .expect("alerts are UTF-8")
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("alert line is not JSON ({e}): {l}"))
        })
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `(line, rule_id)` pairs of `replay/traces/dev-0228.expected`.
fn expected() -> Vec<(u64, String)> {
    expected_in("dev-0228.expected")
}

/// `(line, rule_id)` pairs of an expected-alerts file in `replay/traces/`.
fn expected_in(name: &str) -> Vec<(u64, String)> {
    std::fs::read_to_string(root().join("replay/traces").join(name))
        .expect("expected alerts file")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (n, id) = l.split_once(' ').expect("`<line> <rule_id>`");
            (n.parse().expect("line number"), id.trim().to_owned())
        })
        .collect()
}

#[test]
fn dev_0228_replay_fires_exactly_the_expected_alerts() {
    let out = run(trawl().arg("replay").arg(trace()));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let alerts = alerts(&out);
    let got: Vec<(u64, String)> = alerts
        .iter()
        .map(|a| {
            (
                a["seq"].as_u64().unwrap(),
                a["rule_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        expected(),
        "alerts differ from replay/traces/dev-0228.expected"
    );

    // Every seed rule fires at least once on the intrusion.
    for rule in trawl_engine::seed::load().rules {
        assert!(
            got.iter().any(|(_, r)| *r == rule.id),
            "seed rule {} never fired",
            rule.id
        );
    }

    // The alert shape: every key, the whole event, and why it fired.
    let source = trace().display().to_string();
    for a in &alerts {
        for key in [
            "ts",
            "host",
            "source",
            "seq",
            "rule_id",
            "rule_title",
            "level",
            "tags",
            "kind",
            "event",
            "matches",
        ] {
            assert!(a.get(key).is_some(), "alert lacks `{key}`: {a}");
        }
        assert_eq!(a["source"], source.as_str());
        assert_eq!(a["event"]["kind"], a["kind"]);
        assert_eq!(a["event"]["ts"], a["ts"]);
        let matches = a["matches"].as_array().unwrap();
        assert!(!matches.is_empty(), "alert without matches: {a}");
        if a["rule_id"] == "6ca70d8a-f804-441f-9e4a-faa700ca48f4" {
            let m = &matches[0];
            assert_eq!(m["op"], "ioc");
            let hash = m["value"].as_str().unwrap();
            assert_eq!(hash.len(), 64);
            assert!(a["event"]["Hashes"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains(hash));
            assert!(m["name"].is_string());
        }
    }

    // The summary names the totals.
    let err = stderr(&out);
    assert!(err.contains(&format!("{} alerts", alerts.len())), "{err}");
    assert!(err.contains("0 skipped"), "{err}");
}

#[test]
fn benign_activity_raises_nothing() {
    // Every event of the trace that the expected list does not name, replayed
    // on its own, must stay silent.
    let text = std::fs::read_to_string(trace()).unwrap();
    let alerting: std::collections::HashSet<u64> = expected().iter().map(|(l, _)| *l).collect();
    let benign: String = text
        .lines()
        .enumerate()
        .filter(|(i, _)| !alerting.contains(&(*i as u64 + 1)))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    assert!(
        benign.lines().count() > 200,
        "the trace should be mostly ordinary activity"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("benign.ndjson");
    std::fs::write(&p, benign).unwrap();
    let out = run(trawl().arg("replay").arg(&p));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(alerts(&out), Vec::<Value>::new());
}

#[test]
fn bad_records_are_reported_by_line_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mixed.ndjson");
    let good = r#"{"ts":"2021-09-14T10:00:00Z","kind":"process_start","Image":"C:\\Windows\\TAPI\\pc.exe"}"#;
    std::fs::write(
        &p,
        format!(
            "{good}\nthis is not json\n{{\"kind\":\"process_start\"}}\n{{\"ts\":\"2021-09-14T10:00:01Z\",\"kind\":\"process_start\",\"ProcessId\":[1]}}\n\n{good}\n"
        ),
    )
    .unwrap();
    let out = run(trawl().arg("replay").arg(&p));
    assert_eq!(
        out.status.code(),
        Some(2),
        "bad records make the exit status 2"
    );
    let err = stderr(&out);
    let name = p.display().to_string();
    assert!(err.contains(&format!("{name}:2: not valid JSON")), "{err}");
    assert!(
        err.contains(&format!("{name}:3: missing the required key `ts`")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{name}:4: `ProcessId` must be an integer, not an array"
        )),
        "{err}"
    );
    assert!(err.contains("3 skipped"), "{err}");
    // The good records around them were replayed.
    let seqs: Vec<u64> = alerts(&out)
        .iter()
        .map(|a| a["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 6]);
}

#[test]
fn output_is_byte_identical_at_any_thread_count() {
    // Enough events for many batches, so workers really interleave.
    let text = std::fs::read_to_string(trace()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.ndjson");
    std::fs::write(&big, text.repeat(40)).unwrap();
    let outputs: Vec<Vec<u8>> = ["1", "4", "3", "4"]
        .iter()
        .map(|t| {
            let out = run(trawl().args(["replay", "--threads", t]).arg(&big));
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            out.stdout
        })
        .collect();
    assert!(outputs[0].len() > 10_000);
    for (i, o) in outputs.iter().enumerate().skip(1) {
        assert!(o == &outputs[0], "run {i} differs from --threads 1");
    }
}

#[test]
fn user_rules_and_ioc_lists_load_beside_or_without_the_seed_pack() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("marker.yml");
    std::fs::write(
        &rule,
        r#"title: Marker in command line
id: 11111111-2222-3333-4444-555555555555
status: test
logsource: {category: process_creation, product: windows}
detection:
  sel:
    CommandLine|contains: 'trawl-marker-7f3a'
  condition: sel
level: low
"#,
    )
    .unwrap();
    let iocs = dir.path().join("case-42.txt");
    std::fs::write(
        &iocs,
        "# title: Case 42\nDEADBEEFDEADBEEFDEADBEEFDEADBEEF   dropper\n",
    )
    .unwrap();
    let t = dir.path().join("t.ndjson");
    std::fs::write(
        &t,
        concat!(
            r#"{"ts":"2021-09-14T10:00:00Z","kind":"process_start","CommandLine":"x TRAWL-MARKER-7F3A y","Image":"C:\\Windows\\TAPI\\x.exe"}"#,
            "\n",
            r#"{"ts":"2021-09-14T10:00:01Z","kind":"file_create","TargetFilename":"C:\\x","Hashes":"MD5=deadbeefdeadbeefdeadbeefdeadbeef,SHA256=00"}"#,
            "\n"
        ),
    )
    .unwrap();
    let ids = |out: &Output| -> Vec<String> {
        alerts(out)
            .iter()
            .map(|a| a["rule_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let with_seed = run(trawl()
        .arg("replay")
        .arg("--rules")
        .arg(&rule)
        .arg("--iocs")
        .arg(&iocs)
        .arg(&t));
    assert_eq!(
        ids(&with_seed),
        [
            "690e5397-2376-41f9-8159-649102f6f86b",
            "11111111-2222-3333-4444-555555555555",
            "ioc:case-42.txt"
        ]
    );
    let ioc_alert = &alerts(&with_seed)[2];
    assert_eq!(ioc_alert["rule_title"], "Case 42");
    assert_eq!(
        ioc_alert["matches"][0]["value"],
        "deadbeefdeadbeefdeadbeefdeadbeef"
    );
    assert_eq!(ioc_alert["matches"][0]["name"], "dropper");

    let without = run(trawl()
        .args(["replay", "--no-default-rules", "--rules"])
        .arg(&rule)
        .arg(&t));
    assert_eq!(ids(&without), ["11111111-2222-3333-4444-555555555555"]);

    let missing = run(trawl()
        .args(["replay", "--rules", "/no/such/rules"])
        .arg(&t));
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("/no/such/rules"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn output_file_and_text_format() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("alerts.txt");
    let out = run(trawl()
        .args(["replay", "--format", "text", "--output"])
        .arg(&out_path)
        .arg(trace()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "alerts go to the file, not stdout");
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(text.lines().count(), expected().len());
    assert!(text.lines().all(|l| l.contains(" | matched: ")), "{text}");
    assert!(text.contains("CRITICAL"), "{text}");
}

#[test]
fn rules_check_reports_loaded_and_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ok.yml"),
        "title: ok\nid: a\nlogsource: {category: process_creation, product: windows}\ndetection:\n  s: {Image|endswith: '\\x.exe'}\n  condition: s\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("agg.yml"),
        "title: agg\nid: b\nlogsource: {category: process_creation, product: windows}\ndetection:\n  s: {Image|endswith: '\\x.exe'}\n  condition: s | count() > 5\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("reg.yml"),
        "title: reg\nid: c\nlogsource: {category: registry_set, product: windows}\ndetection:\n  s: {TargetObject|contains: Run}\n  condition: s\n",
    )
    .unwrap();
    let out = run(trawl().args(["rules", "check", "--json"]).arg(dir.path()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["loaded"], 1);
    let unsupported = doc["unsupported"].as_array().unwrap();
    assert_eq!(unsupported.len(), 2);
    let agg = unsupported.iter().find(|u| u["id"] == "b").unwrap();
    assert!(agg["path"].as_str().unwrap().ends_with("agg.yml"));
    assert_eq!(agg["out_of_scope"], false);
    assert!(
        agg["reason"].as_str().unwrap().contains("aggregation"),
        "{agg}"
    );
    let reg = unsupported.iter().find(|u| u["id"] == "c").unwrap();
    assert_eq!(reg["out_of_scope"], true);

    let seed = run(trawl().args(["rules", "check", "--json"]));
    let doc: Value = serde_json::from_slice(&seed.stdout).unwrap();
    assert_eq!(doc["loaded"], 7, "six Sigma rules and one IOC list");
    assert_eq!(doc["unsupported"].as_array().unwrap().len(), 0);
}

#[test]
fn output_may_not_overwrite_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.ndjson");
    std::fs::copy(trace(), &t).unwrap();
    let before = std::fs::read(&t).unwrap();
    let out = run(trawl().args(["replay", "--output"]).arg(&t).arg(&t));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is one of the traces to replay"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(&t).unwrap(),
        before,
        "the trace must be left intact"
    );
}

#[test]
fn a_closed_stdout_still_gets_a_summary_and_a_clean_exit() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.ndjson");
    std::fs::write(&big, std::fs::read_to_string(trace()).unwrap().repeat(40)).unwrap();
    let mut child = trawl()
        .arg("replay")
        .arg(&big)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one alert, then hang up, as `trawl replay … | head -1` does.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("rule_id"));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("2000 alerts"),
        "the summary counts every alert: {err}"
    );
}

#[test]
fn rules_check_reports_bad_ioc_lines_as_problems_not_unsupported_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ok.yml"),
        "title: ok\nid: a\nlogsource: {category: process_creation, product: windows}\ndetection:\n  s: {Image|endswith: '\\x.exe'}\n  condition: s\n",
    )
    .unwrap();
    let list = dir.path().join("case.iocs");
    std::fs::write(
        &list,
        "# title: Case 7\n44d88612fea8a8f36de82e1278abb02f dropper #2\nnot-a-digest\n44D88612FEA8A8F36DE82E1278ABB02F other name\n",
    )
    .unwrap();
    // A folder's walk reads Sigma files only; the list is named as well.
    let out = run(trawl()
        .args(["rules", "check", "--json"])
        .arg(dir.path())
        .arg(&list));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["loaded"], 2, "the Sigma rule and the list: {doc}");
    assert_eq!(doc["files"], 2, "{doc}");
    assert!(doc["compile_ms"].is_number(), "{doc}");
    assert_eq!(doc["unsupported"], serde_json::json!([]), "{doc}");
    let problems = doc["problems"].as_array().unwrap();
    let path = list.display().to_string();
    let lines: Vec<(&str, u64)> = problems
        .iter()
        .map(|p| (p["path"].as_str().unwrap(), p["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(lines, [(path.as_str(), 3), (path.as_str(), 4)], "{doc}");
    assert!(
        problems[0]["reason"]
            .as_str()
            .unwrap()
            .contains("`not-a-digest` is not a hex"),
        "{doc}"
    );
    assert_eq!(
        problems[1]["reason"],
        "duplicate of line 2 (`dropper #2`); the first is kept"
    );
}

/// `(seq, rule_id)` of each alert.
fn seq_ids(out: &Output) -> Vec<(u64, String)> {
    alerts(out)
        .iter()
        .map(|a| {
            (
                a["seq"].as_u64().unwrap(),
                a["rule_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn kql_rules() -> PathBuf {
    root().join("engine/rules/kql")
}

#[test]
fn the_reports_kql_queries_fire_on_the_dev_0228_trace_as_expected() {
    let out = run(trawl()
        .args(["replay", "--no-default-rules", "--rules"])
        .arg(kql_rules())
        .arg(trace()));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let got = seq_ids(&out);
    assert_eq!(
        got,
        expected_in("dev-0228.kql.expected"),
        "alerts differ from replay/traces/dev-0228.kql.expected"
    );
    for id in [
        "kql:dev-0228-paexec",
        "kql:dev-0228-tapi-files",
        "kql:dev-0056-powershell",
        "kql:sentinel-dev-0056-securityevent",
        "kql:sentinel-dev-0228-file-path-hashes",
    ] {
        assert!(got.iter().any(|(_, r)| r == id), "{id} never fired");
    }
    // The same alert format as Sigma rules: title, level, why.
    let a = alerts(&out)
        .into_iter()
        .find(|a| a["rule_id"] == "kql:sentinel-dev-0228-file-path-hashes")
        .unwrap();
    assert_eq!(
        a["rule_title"],
        "DEV-0228 implants by path and SHA-256 (Sentinel)"
    );
    assert_eq!(a["level"], "high");
    let fields: Vec<&str> = a["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["Image", "Hashes|SHA256"]);

    // The Sentinel queries go on past their filter: they load, with a warning.
    let check = run(trawl().args(["rules", "check", "--json"]).arg(kql_rules()));
    let doc: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(doc["loaded"], 5);
    assert_eq!(doc["unsupported"], serde_json::json!([]));
    let problems: Vec<(String, u64)> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let path = p["path"].as_str().unwrap();
            let name = Path::new(path).file_name().unwrap().to_string_lossy();
            assert!(
                p["reason"]
                    .as_str()
                    .unwrap()
                    .contains("only the `where` filter runs on the endpoint"),
                "{p}"
            );
            (name.into_owned(), p["line"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        problems,
        [
            ("sentinel-dev-0056-securityevent.kql".to_owned(), 14),
            ("sentinel-dev-0228-file-path-hashes.kql".to_owned(), 24)
        ]
    );
}

#[test]
fn a_rules_folder_mixes_sigma_and_kql() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in trawl_engine::seed::SIGMA_RULES {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    for e in std::fs::read_dir(kql_rules()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "kql") {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        dir.path().join("zz-broken.kql"),
        "DeviceProcessEvents\n| where FileName == \"x\" and\n| summarize count() by DeviceId\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("zz-union.kql"),
        "// title: two tables\nunion DeviceProcessEvents, DeviceFileEvents\n| where FileName == \"x\"\n",
    )
    .unwrap();
    let out = run(trawl()
        .args(["replay", "--no-default-rules", "--rules"])
        .arg(dir.path())
        .arg(trace()));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    // Sigma files sort first (01-…yml), then the .kql files: per line, the
    // seed pack's Sigma alerts, then the KQL ones.
    let ioc = trawl_engine::seed::IOC_RULE_ID;
    let mut want: Vec<(u64, u8, String)> = expected()
        .into_iter()
        .filter(|(_, id)| id != ioc)
        .map(|(n, id)| (n, 0, id))
        .chain(
            expected_in("dev-0228.kql.expected")
                .into_iter()
                .map(|(n, id)| (n, 1, id)),
        )
        .collect();
    want.sort_by_key(|(n, group, _)| (*n, *group));
    let want: Vec<(u64, String)> = want.into_iter().map(|(n, _, id)| (n, id)).collect();
    assert_eq!(seq_ids(&out), want);

    let check = run(trawl().args(["rules", "check"]).arg(dir.path()));
    let text = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        text.contains("zz-union.kql (id kql:zz-union): line 2, column 1: `union` is not supported"),
        "{text}"
    );
    assert!(
        text.contains("zz-broken.kql (id kql:zz-broken): line 3, column 1: expected a column name"),
        "{text}"
    );
    assert!(
        text.contains("11 rules loaded from 13 files") && text.contains("; 2 unsupported;"),
        "six Sigma rules and five KQL queries load; two .kql files do not: {text}"
    );
}

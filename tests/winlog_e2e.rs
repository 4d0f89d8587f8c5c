//! End-to-end: the `trawl` binary replaying Windows event logs.
//!
//! The first tests use `tests/fixtures/evtx_dump.jsonl`, which the project
//! wrote itself. The tests named `shared_*` read the real attack recordings
//! and SigmaHQ rules in `../shared/corpus` and pass with a message when that
//! folder is absent (a fresh clone): they run in CI, where it is present.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn trawl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture() -> PathBuf {
    root().join("tests/fixtures/evtx_dump.jsonl")
}

fn replay(args: &[&std::ffi::OsStr]) -> (Output, Vec<Value>, String) {
    let out = trawl()
        .arg("replay")
        .args(args)
        .output()
        .expect("the trawl binary runs");
    let alerts = String::from_utf8(out.stdout.clone())
        .expect("alerts are UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert lines are JSON"))
        .collect();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, alerts, err)
}

#[test]
fn evtx_dump_json_maps_sysmon_and_security_and_reports_the_bad_line() {
    let path = fixture();
    let (out, alerts, err) = replay(&[path.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "one bad record: {err}");
    let got: Vec<(u64, &str, &str)> = alerts
        .iter()
        .map(|a| {
            (
                a["seq"].as_u64().unwrap(),
                a["rule_id"].as_str().unwrap(),
                a["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            // Sysmon 1: PAExec renamed pa.exe in C:\Windows\TAPI, hash = IOC 3.
            (101, "39b030ec-e026-481d-ada1-9f8439d97552", "process_start"),
            (101, "690e5397-2376-41f9-8159-649102f6f86b", "process_start"),
            (101, "6ca70d8a-f804-441f-9e4a-faa700ca48f4", "process_start"),
            // Sysmon 11: a file staged in C:\Windows\TAPI.
            (102, "a254d0dd-22b0-4a52-8b06-3db829450fd2", "file_create"),
            // Security 4688: only its NewProcessName says C:\Windows\TAPI.
            (
                5001,
                "690e5397-2376-41f9-8159-649102f6f86b",
                "process_start"
            ),
        ]
    );
    let ev = &alerts[4]["event"];
    assert_eq!(ev["ts"], "2021-09-14T10:03:14.125Z");
    assert_eq!(ev["host"], "LF-FS01.lf.local");
    assert_eq!(ev["Image"], "C:\\Windows\\TAPI\\PAExec-4312-LF-WS-0142.exe");
    assert_eq!(ev["ParentImage"], "C:\\Windows\\System32\\services.exe");
    assert_eq!(ev["ProcessId"], 0x10e8);
    assert_eq!(ev["ParentProcessId"], 0x26c);
    // The mapping, exactly: SubjectDomainName\SubjectUserName.
    assert_eq!(ev["User"], "LF\\LF-FS01$");
    assert_eq!(ev["LogonId"], "0x3e7");
    assert_eq!(ev["IntegrityLevel"], "System");
    assert_eq!(ev["MandatoryLabel"], "S-1-16-16384", "raw fields are kept");
    assert_eq!(ev["SubjectUserName"], "LF-FS01$");
    assert_eq!(alerts[0]["event"]["TerminalSessionId"], 0);

    let name = path.display().to_string();
    assert!(
        err.contains(&format!("{name}:6: not valid JSON")),
        "the truncated record is reported by line: {err}"
    );
    assert!(
        err.contains(
            "7 records, 4 events (process_start 2, process_exit 1, file_create 1), 1 skipped"
        ),
        "{err}"
    );
    assert!(
        err.contains("Microsoft-Windows-Sysmon/Operational: 1 ×1, 3 ×1, 11 ×1"),
        "{err}"
    );
    assert!(err.contains("Security: 4624 ×1, 4688 ×1, 4689 ×1"), "{err}");
}

#[test]
fn folders_are_walked_and_files_recognised_by_content_in_a_stable_order() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs/host-a");
    std::fs::create_dir_all(&logs).unwrap();
    // Misleading names: content decides.
    std::fs::copy(fixture(), logs.join("security.evtx")).unwrap();
    std::fs::copy(
        root().join("replay/traces/dev-0228.ndjson"),
        dir.path().join("logs/a-trace.log"),
    )
    .unwrap();
    std::fs::write(dir.path().join("logs/NOTES.txt"), "collected 2021-09-14\n").unwrap();
    std::fs::write(dir.path().join("logs/.hidden.jsonl"), "{\"System\":{}}\n").unwrap();

    let folder = dir.path().join("logs");
    let mut outputs = Vec::new();
    for threads in ["1", "2", "5"] {
        let (out, alerts, err) =
            replay(&["--threads".as_ref(), threads.as_ref(), folder.as_os_str()]);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("replayed 2 files (1 ndjson, 1 evtx-json)"),
            "{err}"
        );
        assert!(
            err.contains("1 file in the folders given passed over"),
            "{err}"
        );
        let sources: Vec<String> = alerts
            .iter()
            .map(|a| a["source"].as_str().unwrap().to_owned())
            .collect();
        let first_json = sources
            .iter()
            .position(|s| s.ends_with("security.evtx"))
            .expect("the JSON log alerts");
        assert!(
            sources[..first_json]
                .iter()
                .all(|s| s.ends_with("a-trace.log")),
            "files in name order: a-trace.log, then host-a/security.evtx"
        );
        assert!(sources[first_json..]
            .iter()
            .all(|s| s.ends_with("security.evtx")));
        outputs.push(out.stdout);
    }
    assert!(
        outputs.windows(2).all(|w| w[0] == w[1]),
        "byte-identical output at 1, 2 and 5 threads"
    );
}

#[test]
fn a_file_with_the_evtx_magic_but_no_valid_header_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.json");
    let mut bytes = b"ElfFile\0".to_vec();
    bytes.resize(300, 0xAB);
    std::fs::write(&bad, bytes).unwrap();
    let (out, alerts, err) = replay(&[bad.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(alerts.is_empty());
    assert!(
        err.contains(&format!("{}: not a readable EVTX file", bad.display())),
        "{err}"
    );
    assert!(err.contains("replayed 1 file (1 evtx)"), "{err}");
}

/// `../shared/corpus/<name>`, or `None` (with a message) when the shared
/// corpus is not beside the project.
fn shared(name: &str) -> Option<PathBuf> {
    let p = root().join("../shared/corpus").join(name);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "skipped: {} is absent (the shared corpus is only beside the project in CI)",
            p.display()
        );
        None
    }
}

/// Attack recordings and SigmaHQ rules written for what they show: each file
/// must raise at least these rules (it may raise more).
const EXPECTED: &[(&str, &[&str])] = &[
    // PsExec: the service binary and its SYSTEM child.
    (
        "Lateral Movement/remote_file_copy_system_proc_file_write_sysmon_11.evtx",
        &[
            "fdfcbd78-48f1-4a4b-90ac-d82241e368c5", // PsExec Service Execution
            "259e5a6a-b8d2-4c38-86e2-26c5e651361d", // PsExec Service File Creation
        ],
    ),
    (
        "Privilege Escalation/sysmon_privesc_psexec_dwell.evtx",
        &[
            "fdfcbd78-48f1-4a4b-90ac-d82241e368c5", // PsExec Service Execution
            "7c0dcd3d-acf8-4f71-9570-f448b0034f94", // PsExec Service Child Process Execution as LOCAL SYSTEM
        ],
    ),
    // PsExec-delivered Meterpreter: encoded, compressed PowerShell.
    (
        "Lateral Movement/LM_sysmon_psexec_smb_meterpreter.evtx",
        &[
            "e32d4572-9826-4738-b651-95fa63747e8a", // Base64 Encoded PowerShell Command Detected
            "d75d6b6b-adb9-48f7-824b-ac2e786efe1f", // Suspicious FromBase64String Usage On Gzip Archive
        ],
    ),
    // LSASS dumps.
    (
        "Credential Access/sysmon_10_11_lsass_memdump.evtx",
        &[
            "69ca12af-119d-44ed-b50f-a47af0ebc364", // LSASS Process Memory Dump Creation Via Taskmgr.EXE
            "a5a2d357-1ab8-4675-a967-ef9990a59391", // LSASS Process Memory Dump Files
        ],
    ),
    (
        "Credential Access/sysmon_10_11_outlfank_dumpert_and_andrewspecial_memdump.evtx",
        &[
            "93d94efc-d7ad-4161-ad7d-1638c4f908d8", // HackTool - Dumpert Process Dumper Default File
            "a5a2d357-1ab8-4675-a967-ef9990a59391", // LSASS Process Memory Dump Files
        ],
    ),
    (
        "Credential Access/sysmon_10_1_memdump_comsvcs_minidump.evtx",
        &["646ea171-dded-4578-8a4d-65e9822892e3"], // Process Memory Dump Via Comsvcs.DLL
    ),
    (
        "Credential Access/sysmon_rdrleakdiag_lsass_dump.evtx",
        &[
            "edadb1e5-5919-4e4c-8462-a9e643b02c4b", // Process Memory Dump via RdrLeakDiag.EXE
            "c8da0dfd-4ed0-4b68-962d-13c9c884384e", // Potential Credential Dumping Via LSASS Process Clone
        ],
    ),
    (
        "Credential Access/ppl_bypass_ppldump_knowdll_hijack_sysmon_security.evtx",
        &[
            "ffa6861c-4461-4f59-8a41-578c39f3f23e", // LSASS Dump Keyword In CommandLine
            "24e3e58a-646b-4b50-adef-02ef935b9fc8", // Hacktool Execution - Imphash (Hashes parsed)
        ],
    ),
    // Encoded PowerShell.
    (
        "Credential Access/discovery_sysmon_1_iis_pwd_and_config_discovery_appcmd.evtx",
        &[
            "ca2092a1-c273-4878-9b4b-0d60115bf5ea", // Suspicious Encoded PowerShell Command Line
            "b9d9cc83-380b-4ba3-8d8f-60c0e7e2930c", // Suspicious PowerShell Encoded Command Patterns
        ],
    ),
    (
        "Execution/susp_explorer_exec.evtx",
        &[
            "e32d4572-9826-4738-b651-95fa63747e8a", // Base64 Encoded PowerShell Command Detected
            "88f680b8-070e-402c-ae11-d2914f2257f1", // PowerShell Base64 Encoded IEX Cmdlet
        ],
    ),
    // Masquerading: renamed binaries, a fake svchost.
    (
        "Execution/sysmon_zipexec.evtx",
        &["36480ae1-a1cb-4eaa-a0d6-29801d7e9142"], // Potential Defense Evasion Via Binary Rename
    ),
    (
        "AutomatedTestingTools/Malware/sideloading_uacbypass_rundll32_injection_c2.evtx",
        &["0b0cd537-fc77-4e6e-a973-e53495c1083d"], // Renamed Office Binary Execution
    ),
    (
        "Defense Evasion/apt10_jjs_sideloading_prochollowing_persist_as_service_sysmon_1_7_8_13.evtx",
        &[
            "16c37b52-b141-42a5-a3ea-bbe098444397", // Suspect Svchost Activity
            "f17211f1-1f24-4d0c-829f-31e28dc93cdd", // Uncommon Svchost Command Line Parameter
        ],
    ),
];

#[test]
fn shared_attack_samples_fire_the_sigmahq_rules_written_for_them() {
    let (Some(samples), Some(sigma)) = (shared("evtx-attack-samples"), shared("sigma")) else {
        return;
    };
    let files: Vec<PathBuf> = EXPECTED.iter().map(|(f, _)| samples.join(f)).collect();
    let rules = sigma.join("rules");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--no-default-rules".as_ref(),
        "--rules".as_ref(),
        rules.as_os_str(),
    ];
    args.extend(files.iter().map(|f| f.as_os_str()));
    let (out, alerts, err) = replay(&args);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(" 0 skipped"), "{err}");
    let mut fired: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for a in &alerts {
        fired
            .entry(a["source"].as_str().unwrap().to_owned())
            .or_default()
            .insert(a["rule_id"].as_str().unwrap().to_owned());
    }
    let mut missing = Vec::new();
    for ((name, ids), file) in EXPECTED.iter().zip(&files) {
        let got = fired.get(&file.display().to_string());
        for id in *ids {
            if !got.is_some_and(|g| g.contains(*id)) {
                missing.push(format!("{name}: {id}"));
            }
        }
    }
    assert!(missing.is_empty(), "rules that did not fire: {missing:#?}");
}

#[test]
fn shared_corrupt_chunks_and_records_are_reported_and_the_rest_is_read() {
    let Some(samples) = shared("evtx-attack-samples") else {
        return;
    };
    // 17 chunks of BITS client records (1,537 records).
    let original = samples.join("Command and Control/bits_openvpn.evtx");
    let bytes = std::fs::read(&original).unwrap();
    let (out, _, err) = replay(&["--no-default-rules".as_ref(), original.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("1537 records"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    // Chunk 0's header magic damaged: that chunk is skipped, the others read.
    let mut header = bytes.clone();
    header[4096..4100].copy_from_slice(b"XXXX");
    let bad_chunk = dir.path().join("bad-chunk.evtx");
    std::fs::write(&bad_chunk, header).unwrap();
    let (out, _, err) = replay(&["--no-default-rules".as_ref(), bad_chunk.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{}: chunk 0: Failed to parse chunk header",
            bad_chunk.display()
        )),
        "{err}"
    );
    assert!(err.contains("1439 records"), "chunks 1.. still read: {err}");

    // Bytes inside chunk 1's records overwritten: those records are reported
    // by id and skipped, the rest of the file is read.
    let mut records = bytes;
    let at = 4096 + 65536 + 512 + 2000;
    records[at..at + 64].fill(0xFF);
    let bad_records = dir.path().join("bad-records.evtx");
    std::fs::write(&bad_records, records).unwrap();
    let (out, _, err) = replay(&["--no-default-rules".as_ref(), bad_records.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let reported = err
        .lines()
        .filter(|l| l.starts_with(&format!("{}: record ", bad_records.display())))
        .count();
    assert!(reported > 0, "{err}");
    assert!(err.contains("1537 records"), "{err}");
    assert!(err.contains(&format!("{reported} skipped")), "{err}");
}

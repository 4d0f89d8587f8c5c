use std::time::{Duration, Instant};

use trawl_engine::event::Event;
use trawl_engine::load::RuleSources;

use super::*;
use crate::etw::recorded::*;

fn converter() -> Converter {
    let users = AccountNames::new(
        Box::new(|sid| {
            (sid == "S-1-5-21-1004336348-1177238915-682003330-1001")
                .then(|| "LAWFIRM\\itp-admin".to_owned())
        }),
        16,
    );
    let mut c = Converter::new(
        ConverterConfig {
            host: Some(Arc::from("LF-WS-0142")),
            ..ConverterConfig::default()
        },
        DeviceMap::new(
            [
                ("C:", r"\Device\HarddiskVolume3"),
                ("D:", r"\Device\HarddiskVolume4"),
            ],
            r"C:\Windows",
        ),
        users,
    );
    c.seed([SnapshotProcess {
        process_id: 4,
        image: Some("System".into()),
        ..Default::default()
    }]);
    c
}

fn feed(c: &mut Converter, records: Vec<EtwRecord>, now: Instant) -> Vec<Event> {
    let mut out = Vec::new();
    for r in records {
        c.on_record(r, now, &mut |e| out.push(e));
    }
    out
}

fn json(ev: &Event) -> String {
    serde_json::to_string(ev).unwrap()
}

const PA_START: &str = concat!(
    r#"{"ts":"2021-09-14T10:03:11Z","kind":"process_start","host":"LF-WS-0142","os":"windows","#,
    r#""ProcessId":4312,"ParentProcessId":2200,"Image":"C:\\Windows\\TAPI\\pa.exe","#,
    r#""CommandLine":"pa.exe \\\\LF-FS01 -s cmd.exe","User":"LAWFIRM\\itp-admin","#,
    r#""IntegrityLevel":"High","TerminalSessionId":1,"#,
    r#""ParentImage":"C:\\Windows\\system32\\cmd.exe","ParentCommandLine":"\"C:\\Windows\\system32\\cmd.exe\" "}"#
);

#[test]
fn mof_then_kernel_process_gives_one_full_start() {
    let mut c = converter();
    let t0 = Instant::now();
    let out = feed(
        &mut c,
        vec![
            EtwRecord::MofProcess(mof_rundown_parent()),
            EtwRecord::MofProcess(mof_start()),
            EtwRecord::ProcessStart(kernel_start()),
        ],
        t0,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(json(&out[0]), PA_START);
    let s = c.stats();
    assert_eq!((s.records, s.process_starts, s.join.joined), (3, 1, 1));
    assert_eq!((s.parents_unknown, s.unmapped_paths), (0, 0));
}

#[test]
fn kernel_process_then_mof_gives_the_same_start() {
    let mut c = converter();
    let out = feed(
        &mut c,
        vec![
            EtwRecord::MofProcess(mof_rundown_parent()),
            EtwRecord::ProcessStart(kernel_start()),
            EtwRecord::MofProcess(mof_start()),
        ],
        Instant::now(),
    );
    assert_eq!(out.len(), 1);
    assert_eq!(json(&out[0]), PA_START);
}

#[test]
fn the_joined_start_alerts_on_the_seed_rule_for_tapi() {
    let rules = RuleSources {
        default_rules: true,
        rules: vec![],
        iocs: vec![],
    }
    .load()
    .unwrap()
    .ruleset;
    let mut c = converter();
    let out = feed(
        &mut c,
        vec![
            EtwRecord::MofProcess(mof_start()),
            EtwRecord::ProcessStart(kernel_start()),
        ],
        Instant::now(),
    );
    let ids = rules.matching_ids(&out[0]);
    assert!(
        ids.contains(&"690e5397-2376-41f9-8159-649102f6f86b"),
        "{ids:?}"
    );
    // The MOF half alone has only `pa.exe`: no path, so no TAPI alert. This
    // is why the halves are joined.
    let mut lone = converter();
    let mut m = mof_start();
    m.command_line = "pa.exe -s cmd.exe".into();
    let mut out = feed(&mut lone, vec![EtwRecord::MofProcess(m)], Instant::now());
    lone.drain(Instant::now(), &mut |e| out.push(e));
    assert_eq!(out[0].get_str("Image"), Some("pa.exe"));
    assert!(!rules
        .matching_ids(&out[0])
        .contains(&"690e5397-2376-41f9-8159-649102f6f86b"));
}

#[test]
fn a_lone_mof_start_takes_its_image_from_the_command_line() {
    let mut c = converter();
    let t0 = Instant::now();
    let mut m = mof_start();
    m.command_line = r#""\??\C:\Windows\TAPI\PA.EXE" -s cmd.exe"#.into();
    let mut out = feed(&mut c, vec![EtwRecord::MofProcess(m)], t0);
    assert!(out.is_empty(), "waits for its partner");
    c.tick(t0 + Duration::from_secs(3), &mut |e| out.push(e));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].get_str("Image"), Some(r"C:\Windows\TAPI\PA.EXE"));
    assert_eq!(out[0].get_str("IntegrityLevel"), None);
    assert_eq!(c.stats().join.mof_only, 1);
    assert_eq!(c.stats().parents_unknown, 1);

    // The Kernel-Process half, late, still improves the table.
    let late = feed(&mut c, vec![EtwRecord::ProcessStart(kernel_start())], t0);
    assert!(late.is_empty());
    assert_eq!(c.stats().join.late, 1);
    let exit = feed(&mut c, vec![EtwRecord::ProcessStop(kernel_stop())], t0);
    assert_eq!(exit[0].get_str("Image"), Some(r"C:\Windows\TAPI\pa.exe"));
}

#[test]
fn a_lone_kernel_process_start_has_no_command_line() {
    let mut c = converter();
    let t0 = Instant::now();
    let mut out = feed(&mut c, vec![EtwRecord::ProcessStart(kernel_start())], t0);
    c.tick(t0 + Duration::from_secs(5), &mut |e| out.push(e));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].get_str("Image"), Some(r"C:\Windows\TAPI\pa.exe"));
    assert_eq!(out[0].get_str("CommandLine"), None);
    assert_eq!(out[0].get_str("User"), None);
    assert_eq!(c.stats().join.kernel_only, 1);
}

#[test]
fn process_stop_names_the_image_and_user_from_the_table() {
    let mut c = converter();
    let out = feed(
        &mut c,
        vec![
            EtwRecord::MofProcess(mof_start()),
            EtwRecord::ProcessStart(kernel_start()),
            EtwRecord::ProcessStop(kernel_stop()),
        ],
        Instant::now(),
    );
    assert_eq!(out.len(), 2);
    assert_eq!(
        json(&out[1]),
        concat!(
            r#"{"ts":"2021-09-14T10:03:11.9Z","kind":"process_exit","host":"LF-WS-0142","os":"windows","#,
            r#""ProcessId":4312,"Image":"C:\\Windows\\TAPI\\pa.exe","User":"LAWFIRM\\itp-admin"}"#
        )
    );
    // An unknown process's stop still reports, with the name the event has.
    let mut stop = kernel_stop();
    stop.process_id = 999;
    let out = feed(&mut c, vec![EtwRecord::ProcessStop(stop)], Instant::now());
    assert_eq!(out[0].get_str("Image"), Some("pa.exe"));
    assert_eq!(out[0].get_str("User"), None);
}

#[test]
fn a_stop_before_the_second_half_comes_after_the_start() {
    let mut c = converter();
    let out = feed(
        &mut c,
        vec![
            EtwRecord::ProcessStart(kernel_start()),
            EtwRecord::ProcessStop(kernel_stop()),
            EtwRecord::MofProcess(mof_start()),
        ],
        Instant::now(),
    );
    let kinds: Vec<&str> = out.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["process_start", "process_exit"]);
}

#[test]
fn file_create_maps_the_device_path_and_names_the_process() {
    let mut c = converter();
    let now = Instant::now();
    let mut out = feed(
        &mut c,
        vec![
            EtwRecord::MofProcess(mof_start()),
            EtwRecord::ProcessStart(kernel_start()),
        ],
        now,
    );
    out.extend(feed(
        &mut c,
        vec![EtwRecord::FileCreate(file_created())],
        now,
    ));
    assert_eq!(
        json(&out[1]),
        concat!(
            r#"{"ts":"2021-09-14T10:03:11.3Z","kind":"file_create","host":"LF-WS-0142","os":"windows","#,
            r#""ProcessId":4312,"Image":"C:\\Windows\\TAPI\\pa.exe","#,
            r#""TargetFilename":"C:\\Windows\\PAExec-2208-LF-FS01.exe","User":"LAWFIRM\\itp-admin"}"#
        )
    );
    // A file staged under TAPI by the kernel (pid 4, from the snapshot).
    let mut f = file_created();
    f.header.process_id = 4;
    f.file_object += 8;
    f.file_name = r"\Device\HarddiskVolume3\Windows\TAPI\pa.exe".into();
    let out = feed(&mut c, vec![EtwRecord::FileCreate(f)], now);
    assert_eq!(out[0].get_str("Image"), Some("System"));
    assert_eq!(
        out[0].get_str("TargetFilename"),
        Some(r"C:\Windows\TAPI\pa.exe")
    );
    let rules = RuleSources {
        default_rules: true,
        rules: vec![],
        iocs: vec![],
    }
    .load()
    .unwrap()
    .ruleset;
    assert!(rules
        .matching_ids(&out[0])
        .contains(&"a254d0dd-22b0-4a52-8b06-3db829450fd2"));
}

#[test]
fn opens_directories_and_doubles_are_passed_over_and_counted() {
    let mut c = converter();
    let now = Instant::now();
    let mut open = file_created();
    open.event = FileCreateEvent::Create;
    open.create_options = 0x0100_0060; // FILE_OPEN
    let mut dir = file_created();
    dir.create_options = 0x0200_0021; // FILE_CREATE | FILE_DIRECTORY_FILE
    let mut overwrite = file_created();
    overwrite.event = FileCreateEvent::Create;
    overwrite.create_options = 0x0500_0060; // FILE_OVERWRITE_IF
    let mut same_create_as_30 = overwrite.clone();
    same_create_as_30.event = FileCreateEvent::CreateNewFile;
    let out = feed(
        &mut c,
        vec![
            EtwRecord::FileCreate(open),
            EtwRecord::FileCreate(dir),
            EtwRecord::FileCreate(overwrite),
            EtwRecord::FileCreate(same_create_as_30),
        ],
        now,
    );
    assert_eq!(out.len(), 1);
    let s = c.stats();
    assert_eq!(
        (
            s.opens_skipped,
            s.directories_skipped,
            s.duplicate_creates,
            s.file_creates
        ),
        (1, 1, 1, 1)
    );
    // Unknown process: no Image, counted.
    assert_eq!(s.images_unknown, 1);
    assert_eq!(out[0].get_str("Image"), None);
}

#[test]
fn a_child_of_a_pending_parent_still_names_it() {
    let mut c = converter();
    let now = Instant::now();
    // Parent: only its Kernel-Process half has come so far.
    let mut out = feed(&mut c, vec![EtwRecord::ProcessStart(kernel_start())], now);
    let mut child_mof = mof_start();
    child_mof.process_id = 5000;
    child_mof.parent_id = 4312;
    child_mof.image_file_name = "cmd.exe".into();
    child_mof.command_line = "cmd.exe /c whoami".into();
    let mut child_kernel = kernel_start();
    child_kernel.process_id = 5000;
    child_kernel.parent_process_id = 4312;
    child_kernel.image_name = r"\Device\HarddiskVolume3\Windows\System32\cmd.exe".into();
    out.extend(feed(
        &mut c,
        vec![
            EtwRecord::MofProcess(child_mof),
            EtwRecord::ProcessStart(child_kernel),
        ],
        now,
    ));
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].get_str("ParentImage"),
        Some(r"C:\Windows\TAPI\pa.exe")
    );
    assert_eq!(out[0].get_str("ParentCommandLine"), None);
}

#[test]
fn unmapped_paths_are_kept_and_counted() {
    let mut c = converter();
    let mut k = kernel_start();
    k.image_name = r"\Device\HarddiskVolume9\x.exe".into();
    let mut out = feed(
        &mut c,
        vec![
            EtwRecord::ProcessStart(k),
            EtwRecord::MofProcess(mof_start()),
        ],
        Instant::now(),
    );
    c.drain(Instant::now(), &mut |e| out.push(e));
    assert_eq!(
        out[0].get_str("Image"),
        Some(r"\Device\HarddiskVolume9\x.exe")
    );
    assert_eq!(c.unmapped_paths(), 1);
}

#[test]
fn program_paths_come_only_from_paths_to_the_named_image() {
    assert_eq!(
        program_path(r#""C:\Program Files\x\a.exe" -v"#, "a.exe"),
        Some(r"C:\Program Files\x\a.exe")
    );
    assert_eq!(program_path(r"C:\x\a.exe", "A.EXE"), Some(r"C:\x\a.exe"));
    assert_eq!(
        program_path(r"C:\x\b.exe", "a.exe"),
        None,
        "another program"
    );
    assert_eq!(program_path("a.exe -v", "a.exe"), None, "not a path");
    assert_eq!(program_path("", "a.exe"), None);
    assert_eq!(program_path("\"", "a.exe"), None);
    assert_eq!(
        program_path(r"\SystemRoot\System32\smss.exe", "smss.exe"),
        Some(r"\SystemRoot\System32\smss.exe")
    );
}

#[test]
fn local_field_keys_name_the_engine_fields() {
    assert_eq!(INTEGRITY_LEVEL, FieldKey::from_name("IntegrityLevel"));
    assert_eq!(
        TERMINAL_SESSION_ID,
        FieldKey::from_name("TerminalSessionId")
    );
}

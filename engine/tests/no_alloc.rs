//! The matcher allocates nothing for an event that raises no alert, once its
//! per-thread scratch space has warmed up. Its own test binary, so the
//! counting allocator sees only this test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use trawl_engine::event::{fields, Event, EventKind, FieldKey, Os, Timestamp, Value};
use trawl_engine::matcher::{Ruleset, Scratch};
use trawl_engine::sigma;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const EXTRA_RULES: &str = r#"
title: every kind of test
id: 00000000-0000-0000-0000-0000000000aa
logsource: {category: process_creation, product: windows}
detection:
  glob: {Image: '*\temp\\*.p?1'}
  regex: {CommandLine|re: 'Invoke-[A-Z]{5,}'}
  regex_i: {CommandLine|re|i: 'mimi[k]atz'}
  number: {ProcessId|gt: 1000000}
  nonascii: {CommandLine|contains: 'ДЖЗИЙабв'}
  ref: {Image|fieldref: ParentImage}
  keyword: ['evil-keyword-123']
  condition: 1 of them
"#;

/// SigmaHQ's usual forms: `contains|all`, `endswith` lists, `windash`,
/// `base64offset`, case-insensitive regexes gated on their literals, a
/// negated filter. None of the events below fires them, but they wake them.
const SIGMA_FORMS: &str = r#"
title: encoded powershell download
id: 00000000-0000-0000-0000-0000000000b1
logsource: {category: process_creation, product: windows}
detection:
  img: {Image|endswith: ['\powershell.exe', '\pwsh.exe']}
  cli: {CommandLine|contains|all: ['-nop', 'DownloadString', 'http']}
  flag: {CommandLine|windash|contains: ' -enc '}
  b64: {CommandLine|base64offset|contains: 'IEX (New-Object'}
  filter: {ParentImage|endswith: '\services.exe'}
  condition: img and (cli or flag or b64) and not filter
---
title: regex after literals
id: 00000000-0000-0000-0000-0000000000b2
logsource: {category: process_creation, product: windows}
detection:
  sel:
    CommandLine|re|i: 'net\s+(user|group)\s+/add'
    Image|endswith: '\net.exe'
  sel2: {CommandLine|re: '\$PSHome\[\s*\d{1,3}\s*\]'}
  condition: sel or sel2
"#;

/// KQL's derived columns: a digest lower-cased from `Hashes`, a file name, an
/// account part; a `has` whose literal is hit but not on term boundaries.
const KQL_RULE: &str = r#"DeviceProcessEvents
| where SHA256 startswith "ff" or FileName matches regex "zz[0-9]+" or AccountName == "nobody"
    or ProcessCommandLine has "colo" or MD5 in ("11bc")
"#;

#[test]
fn no_allocation_when_nothing_fires() {
    let mut load = trawl_engine::seed::load();
    load.rules
        .extend(sigma::parse_str(EXTRA_RULES, "extra.yml").rules);
    load.rules
        .extend(trawl_engine::kql::parse_str(KQL_RULE, "derived.kql").rules);
    let sigma = sigma::parse_str(SIGMA_FORMS, "forms.yml");
    assert!(sigma.unsupported.is_empty(), "{:?}", sigma.unsupported);
    load.rules.extend(sigma.rules);
    let (rs, rejected) = Ruleset::compile(load.rules);
    assert!(rejected.is_empty());
    assert_eq!(rs.len(), 11);

    let mut events = Vec::new();
    for i in 0..200i64 {
        let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
        ev.set(fields::PROCESS_ID, Value::Int(4000 + i));
        // Odd events hit the glob's literal gate, so the glob itself runs (and fails).
        let image = if i % 2 == 0 {
            "C:\\Windows\\System32\\svchost.exe"
        } else {
            "C:\\temp\\x.ps2"
        };
        ev.set(fields::IMAGE, image.into());
        ev.set(
            fields::PARENT_IMAGE,
            "C:\\Windows\\System32\\services.exe".into(),
        );
        // Every literal of the Sigma forms above is met by some event, in
        // varying case, so their rules wake, run their regexes and fail.
        let cmd = match i % 5 {
            0 => format!("svchost.exe -k netsvcs -p -s Schedule {i} -nop color"),
            1 => format!("powershell.exe -NOP -w hidden DownloadString {i}"),
            2 => format!("NET user guest{i} /active:yes"),
            3 => format!("x $PSHome[ x{i} ]"),
            _ => format!("pwsh \u{2013}enc {i} http://a/"),
        };
        ev.set(fields::COMMAND_LINE, cmd.into());
        match i % 5 {
            1 => ev.set(
                fields::IMAGE,
                "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe".into(),
            ),
            2 => ev.set(fields::IMAGE, "C:\\Windows\\System32\\NET.exe".into()),
            _ => {}
        }
        ev.set(fields::HASHES, "SHA256=00AA,MD5=11BB".into());
        ev.set(FieldKey::from_name("Extra"), Value::Float(0.5));
        ev.set(fields::USER, "LAWFIRM\\jdoe".into());
        events.push(ev);
    }
    let mut scratch = Scratch::new(&rs);
    let mut out = Vec::with_capacity(16);
    // Warm up: scratch buffers and the regex engines' lazy caches settle.
    for ev in &events {
        rs.evaluate(ev, &mut scratch, &mut out);
    }
    assert!(out.is_empty(), "these events must raise nothing");

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..5 {
        // Forgotten field texts are scanned again (the matcher's memory of
        // them keeps its slots), so every pass takes the scan path too.
        scratch.forget();
        for ev in &events {
            rs.evaluate(ev, &mut scratch, &mut out);
        }
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert!(out.is_empty());
    assert_eq!(
        after - before,
        0,
        "allocations while evaluating 1000 silent events"
    );

    // Control: the counter does see the matcher's allocations (an alert's
    // `matches` list), so the zero above means something.
    let mut hit = events[0].clone();
    hit.set(fields::COMMAND_LINE, "run evil-keyword-123".into());
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    rs.evaluate(&hit, &mut scratch, &mut out);
    assert_eq!(out.len(), 1);
    assert!(ALLOCATIONS.load(Ordering::Relaxed) > before);
}

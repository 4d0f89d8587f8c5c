//! Typical values of the fields rules test most, for telling a common
//! literal from a rare one.
//!
//! A rule is evaluated only when a literal of its wake set is in the event,
//! and of the literals that can wake it the compiler picks the rarest (see
//! `compile::gate_cost`). Judged by length alone, a literal that is long but
//! in nearly every event passes for rare: `\Windows\` in `Image`, `.exe` in
//! `OriginalFileName`. SigmaHQ's path traversal rule then woke on nine
//! process starts out of ten, for want of `\..\..\` in the command line.
//! The share of these values that hold a literal is added to its cost.
//!
//! The values are made up to look like an ordinary Windows or Linux host,
//! not taken from any trace. They only steer which literals wake a rule and
//! which four bytes of a literal the `contains` filter looks for: whether a
//! rule fires never depends on them.

use memchr::memmem;

use crate::event::{fields, FieldKey};
use crate::rule::StrOp;

/// Paths: images, parent images, file targets, working folders.
const WINDOWS_PATHS: &[&str] = &[
    r"c:\windows\system32\svchost.exe",
    r"c:\windows\explorer.exe",
    r"c:\windows\system32\cmd.exe",
    r"c:\windows\system32\conhost.exe",
    r"c:\windows\system32\windowspowershell\v1.0\powershell.exe",
    r"c:\windows\system32\rundll32.exe",
    r"c:\windows\system32\services.exe",
    r"c:\windows\system32\taskhostw.exe",
    r"c:\windows\system32\runtimebroker.exe",
    r"c:\windows\system32\wbem\wmiprvse.exe",
    r"c:\windows\syswow64\msiexec.exe",
    r"c:\program files\google\chrome\application\chrome.exe",
    r"c:\program files (x86)\microsoft\edge\application\msedge.exe",
    r"c:\program files\windows defender\msmpeng.exe",
    r"c:\users\user\appdata\local\microsoft\teams\current\teams.exe",
    r"c:\users\user\appdata\local\temp\tmp4f2a.tmp",
    r"c:\windows\prefetch\svchost.exe-3530f672.pf",
    r"c:\programdata\microsoft\windows defender\scans\mpcache.bin",
];

const LINUX_PATHS: &[&str] = &[
    "/usr/bin/bash",
    "/usr/bin/python3.11",
    "/usr/lib/systemd/systemd",
    "/usr/sbin/sshd",
    "/usr/bin/sudo",
    "/usr/bin/cat",
    "/usr/bin/grep",
    "/usr/lib/apt/methods/http",
    "/usr/bin/dockerd",
    "/tmp/tmp.x8s2kq",
    "/var/log/syslog",
    "/home/user/.cache/pip/http/a1b2.body",
];

const WINDOWS_COMMAND_LINES: &[&str] = &[
    r"c:\windows\system32\svchost.exe -k netsvcs -p -s schedule",
    r#""c:\windows\system32\cmd.exe" /c echo done"#,
    r"\??\c:\windows\system32\conhost.exe 0xffffffff -forcev1",
    r#""c:\program files\google\chrome\application\chrome.exe" --type=renderer --field-trial-handle=1234 /prefetch:1"#,
    r"powershell.exe -noprofile -executionpolicy bypass -file c:\users\user\appdata\local\temp\script.ps1",
    r"c:\windows\system32\rundll32.exe c:\windows\system32\shell32.dll,control_rundll",
    r"c:\windows\explorer.exe",
    r"c:\windows\system32\msiexec.exe /v",
    r"taskhostw.exe {222a245b-e637-4ae9-a93f-a59ca119a75e}",
    r"c:\windows\system32\wbem\wmiprvse.exe -secured -embedding",
    r#""c:\program files (x86)\microsoft\edge\application\msedge.exe" --single-argument https://example.com/"#,
    r"c:\windows\system32\runtimebroker.exe -embedding",
    r#""c:\program files\google\chrome\application\chrome.exe" --type=renderer --enable-features=networkserviceinprocess2 --disable-features=sparerendererforsiteperprocess --lang=en-us --renderer-client-id=7 --mojo-platform-channel-handle=2912 /prefetch:1"#,
    r#""c:\users\user\appdata\local\programs\microsoft vs code\code.exe" --type=gpu-process --disable-gpu-sandbox --no-sandbox --user-data-dir="c:\users\user\appdata\roaming\code" --enable-blink-features=highlightapi"#,
];

const LINUX_COMMAND_LINES: &[&str] = &[
    "/bin/sh -c /usr/lib/update-notifier/update-motd-updates-available",
    "bash -c ls -la /tmp",
    "/usr/bin/python3 /usr/bin/unattended-upgrade",
    "sshd: user [priv]",
    "sudo apt-get update",
    "grep -r pattern /etc",
    "/usr/lib/systemd/systemd --user",
    "cat /etc/os-release",
    "/usr/bin/dockerd -h fd:// --containerd=/run/containerd/containerd.sock",
    "/usr/lib/jvm/java-17-openjdk-amd64/bin/java -xms1g -xmx2g -djava.awt.headless=true -dfile.encoding=utf-8 -cp /opt/app/lib/app.jar:/opt/app/lib/log4j-core-2.20.0.jar org.example.main",
];

const FILE_NAMES: &[&str] = &[
    "svchost.exe",
    "cmd.exe",
    "conhost.exe",
    "powershell.exe",
    "chrome.exe",
    "msedge.exe",
    "rundll32.exe",
    "explorer.exe",
    "msiexec.exe",
    "wmiprvse.exe",
    "taskhostw.exe",
    "runtimebroker.exe",
];

const USERS: &[&str] = &[
    r"nt authority\system",
    r"nt authority\network service",
    r"nt authority\local service",
    r"corp\user",
    "root",
    "user",
];

const INTEGRITY_LEVELS: &[&str] = &["system", "high", "medium"];

/// Every list above.
const ALL: [&[&str]; 7] = [
    WINDOWS_PATHS,
    LINUX_PATHS,
    WINDOWS_COMMAND_LINES,
    LINUX_COMMAND_LINES,
    FILE_NAMES,
    USERS,
    INTEGRITY_LEVELS,
];

/// The share, from 0 to 1, of the typical values of `field` that
/// `op literal` holds for, ignoring ASCII case (of the Windows and the Linux
/// values, the larger share); 0 for a field without typical values. For
/// `Image` and `contains \windows\`, most of the Windows paths.
pub(super) fn share(field: &FieldKey, op: StrOp, literal: &str) -> f64 {
    let paths = [
        fields::IMAGE,
        fields::PARENT_IMAGE,
        fields::TARGET_FILENAME,
        fields::SOURCE_FILENAME,
        fields::CURRENT_DIRECTORY,
    ];
    let lists: &[&[&str]] = if paths.contains(field) {
        &[WINDOWS_PATHS, LINUX_PATHS]
    } else if *field == fields::COMMAND_LINE || *field == fields::PARENT_COMMAND_LINE {
        &[WINDOWS_COMMAND_LINES, LINUX_COMMAND_LINES]
    } else if *field == fields::ORIGINAL_FILE_NAME {
        &[FILE_NAMES]
    } else if *field == fields::USER {
        &[USERS]
    } else if field.as_str() == "IntegrityLevel" {
        &[INTEGRITY_LEVELS]
    } else {
        return 0.0;
    };
    let literal = literal.to_ascii_lowercase();
    let finder = memmem::Finder::new(literal.as_bytes());
    lists
        .iter()
        .map(|list| {
            let held = list
                .iter()
                .filter(|value| match op {
                    StrOp::Equals => **value == literal,
                    StrOp::Prefix => value.starts_with(&literal),
                    StrOp::Suffix => value.ends_with(&literal),
                    StrOp::Contains | StrOp::Term => finder.find(value.as_bytes()).is_some(),
                })
                .count();
            held as f64 / list.len() as f64
        })
        .fold(0.0, f64::max)
}

/// How many of all the typical values (paths, command lines, names, of
/// every field) hold the 4-byte `window` (lower-case): for choosing which
/// window of a literal the `contains` filter looks for (see
/// [`super::gram`]). A byte-frequency table ranks `\`, `:` and digits
/// low, so it takes windows like `c:\w` and `m32\` for rare, though many
/// Windows paths hold them (`c:\w` 12 of the 18 here).
pub(super) fn window_count(window: [u8; 4]) -> u32 {
    type Counts = std::collections::HashMap<[u8; 4], u32, foldhash::fast::RandomState>;
    // Looked up for every window of every `contains` literal (some 60,000
    // for SigmaHQ), so hashed with foldhash rather than SipHash.
    static COUNTS: std::sync::OnceLock<Counts> = std::sync::OnceLock::new();
    let counts = COUNTS.get_or_init(|| {
        let mut counts = Counts::default();
        for value in ALL.iter().flat_map(|l| l.iter()) {
            let mut seen: Vec<[u8; 4]> = value
                .as_bytes()
                .windows(4)
                .map(|w| [w[0], w[1], w[2], w[3]])
                .collect();
            seen.sort_unstable();
            seen.dedup();
            for w in seen {
                *counts.entry(w).or_insert(0) += 1;
            }
        }
        counts
    });
    counts.get(&window).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_literals_have_a_large_share_and_rare_ones_none() {
        let image = |op, lit| share(&fields::IMAGE, op, lit);
        assert!(image(StrOp::Contains, r"\Windows\") > 0.5);
        assert!(
            image(StrOp::Contains, r"\WINDOWS\") > 0.5,
            "ASCII case is ignored"
        );
        assert!(
            image(StrOp::Prefix, "/usr/") > 0.5,
            "Linux values count too"
        );
        assert_eq!(image(StrOp::Suffix, r"\procdump.exe"), 0.0);
        assert_eq!(image(StrOp::Equals, r"\windows\"), 0.0, "equals is whole");
        assert_eq!(
            share(&fields::ORIGINAL_FILE_NAME, StrOp::Suffix, ".EXE"),
            1.0
        );
        let medium = share(
            &FieldKey::from_name("IntegrityLevel"),
            StrOp::Equals,
            "Medium",
        );
        assert!((medium - 1.0 / 3.0).abs() < 1e-9);
        assert!(share(&fields::COMMAND_LINE, StrOp::Contains, " -") > 0.5);
        assert_eq!(
            share(&fields::COMMAND_LINE, StrOp::Contains, r"\..\..\"),
            0.0
        );
        // Fields without typical values are judged by length alone.
        assert_eq!(
            share(&FieldKey::from_name("Company"), StrOp::Contains, "a"),
            0.0
        );
    }

    #[test]
    fn the_values_are_lower_case() {
        // `share` lower-cases only the literal.
        for list in ALL {
            for v in list {
                assert_eq!(*v, v.to_ascii_lowercase());
            }
        }
    }
}

//! What `/proc` says about a process: the process table's seed at start, and
//! the proc connector's only source of detail (read after the fact).

use std::path::Path;
use std::sync::Arc;

use crate::live::proctable::ProcessInfo;

/// One process as `/proc/PID` shows it now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcSnapshot {
    pub image: Option<String>,
    pub command_line: Option<String>,
    pub cwd: Option<String>,
    pub ppid: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Start time in clock ticks after boot (`/proc/PID/stat` field 22).
    pub start_ticks: Option<u64>,
}

/// Reads what `/proc/PID` still holds (any part may be gone already).
pub fn snapshot(pid: u32) -> ProcSnapshot {
    snapshot_at(&Path::new("/proc").join(pid.to_string()))
}

fn snapshot_at(dir: &Path) -> ProcSnapshot {
    let link = |name: &str| {
        std::fs::read_link(dir.join(name))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    };
    let command_line = std::fs::read(dir.join("cmdline")).ok().and_then(|raw| {
        let raw = raw.strip_suffix(b"\0").unwrap_or(&raw);
        (!raw.is_empty()).then(|| {
            let joined: Vec<u8> = raw
                .iter()
                .map(|b| if *b == 0 { b' ' } else { *b })
                .collect();
            String::from_utf8_lossy(&joined).into_owned()
        })
    });
    let (ppid, start_ticks) = std::fs::read_to_string(dir.join("stat"))
        .ok()
        .map_or((None, None), |s| parse_stat(&s));
    let (uid, gid) = std::fs::read_to_string(dir.join("status"))
        .ok()
        .map_or((None, None), |s| parse_status(&s));
    ProcSnapshot {
        image: link("exe"),
        command_line,
        cwd: link("cwd"),
        ppid,
        uid,
        gid,
        start_ticks,
    }
}

/// (ppid, start time) from `/proc/PID/stat`; the command name in parentheses
/// may itself hold spaces and parentheses, so fields count from the last `)`.
fn parse_stat(s: &str) -> (Option<u32>, Option<u64>) {
    let Some(rest) = s.rfind(')').map(|i| &s[i + 1..]) else {
        return (None, None);
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) … starttime(22).
    (
        f.get(1).and_then(|v| v.parse().ok()),
        f.get(19).and_then(|v| v.parse().ok()),
    )
}

/// Real uid and gid from `/proc/PID/status`.
fn parse_status(s: &str) -> (Option<u32>, Option<u32>) {
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    (field("Uid:"), field("Gid:"))
}

/// Every process running now, for the process table. Kernel threads (no
/// executable) are left out.
pub fn seed() -> Vec<(u32, ProcessInfo)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let tick_ns = 1_000_000_000 / clock_ticks().max(1);
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let s = snapshot(pid);
            let image = s.image?;
            Some((
                pid,
                ProcessInfo {
                    image: Arc::from(image),
                    command_line: Arc::from(s.command_line.unwrap_or_default()),
                    ppid: s.ppid.unwrap_or(0),
                    start_ns: s.start_ticks.unwrap_or(0) * tick_ns,
                },
            ))
        })
        .collect()
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        let stat = "4242 (we (ird) name) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(parse_stat(stat), (Some(17), Some(987_654)));
        assert_eq!(parse_stat("garbage"), (None, None));
    }

    #[test]
    fn status_gives_real_ids() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t100\t100\t100\t100\n";
        assert_eq!(parse_status(status), (Some(1000), Some(100)));
    }

    #[test]
    fn this_process_is_seen() {
        let me = std::process::id();
        let s = snapshot(me);
        assert!(s.image.is_some_and(|i| i.starts_with('/')));
        assert!(s.command_line.is_some());
        assert_eq!(s.ppid, Some(std::os::unix::process::parent_id()));
        assert!(seed().iter().any(|(pid, _)| *pid == me));
    }
}

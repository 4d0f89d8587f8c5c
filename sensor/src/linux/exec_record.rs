//! The records trawl's BPF programs write into the ring buffer, decoded.
//!
//! The layout mirrors `struct trawl_event` in `sensor/bpf/process.bpf.c`
//! (little-endian, 64-byte header, then argv, the executable's path, the
//! working directory and the exec filename back to back). Paths arrive as
//! their components, leaf first, each NUL-terminated (the kernel walks from
//! the file up to the root); [`path_from_components`] turns them around.

use std::path::{Component, Path, PathBuf};

/// Size of the fixed header.
pub const HEADER: usize = 64;

pub const KIND_EXEC: u32 = 1;
pub const KIND_FORK: u32 = 2;
pub const KIND_EXIT: u32 = 3;

pub const FLAG_ARGV_TRUNCATED: u32 = 1 << 0;
pub const FLAG_EXE_TRUNCATED: u32 = 1 << 1;
pub const FLAG_CWD_TRUNCATED: u32 = 1 << 2;
pub const FLAG_ARGV_UNREADABLE: u32 = 1 << 4;

/// One decoded record, borrowing its strings from the ring buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub kind: u32,
    pub flags: u32,
    pub ktime_ns: u64,
    pub start_ns: u64,
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub exit_code: i32,
    pub argv: &'a [u8],
    pub exe: &'a [u8],
    pub cwd: &'a [u8],
    pub filename: &'a [u8],
}

/// Why a record could not be decoded (a bug, or a program/loader mismatch).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record of {0} bytes is shorter than its {HEADER}-byte header")]
    Short(usize),
    #[error("record of {len} bytes announces {want} bytes of strings")]
    Lengths { len: usize, want: usize },
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | (u64::from(u32_at(b, at + 4)) << 32)
}

impl<'a> Record<'a> {
    /// Decodes one ring buffer record.
    pub fn parse(b: &'a [u8]) -> Result<Record<'a>, RecordError> {
        if b.len() < HEADER {
            return Err(RecordError::Short(b.len()));
        }
        let lens = [u32_at(b, 40), u32_at(b, 44), u32_at(b, 48), u32_at(b, 52)].map(|l| l as usize);
        let want = lens.iter().fold(0usize, |a, l| a.saturating_add(*l));
        if HEADER + want > b.len() {
            return Err(RecordError::Lengths { len: b.len(), want });
        }
        let mut at = HEADER;
        let mut take = |n: usize| {
            let s = &b[at..at + n];
            at += n;
            s
        };
        Ok(Record {
            kind: u32_at(b, 0),
            flags: u32_at(b, 4),
            ktime_ns: u64_at(b, 8),
            start_ns: u64_at(b, 16),
            pid: u32_at(b, 24),
            ppid: u32_at(b, 28),
            uid: u32_at(b, 32),
            gid: u32_at(b, 36),
            exit_code: u32_at(b, 56) as i32,
            argv: take(lens[0]),
            exe: take(lens[1]),
            cwd: take(lens[2]),
            filename: take(lens[3]),
        })
    }
}

/// argv as one command line: the NUL-separated arguments joined by spaces
/// (as Sysmon for Linux writes it). Invalid UTF-8 is replaced.
pub fn command_line(argv: &[u8]) -> String {
    let argv = argv.strip_suffix(b"\0").unwrap_or(argv);
    let joined: Vec<u8> = argv
        .iter()
        .map(|b| if *b == 0 { b' ' } else { *b })
        .collect();
    String::from_utf8_lossy(&joined).into_owned()
}

/// A path from its components, leaf first, each NUL-terminated. No
/// components is the root. A path cut short (`cut`) starts with `…/`.
pub fn path_from_components(raw: &[u8], cut: bool) -> String {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    let mut out = String::with_capacity(raw.len() + 2);
    if cut {
        out.push('…');
    }
    if raw.is_empty() {
        out.push('/');
        return out;
    }
    for part in raw.rsplit(|b| *b == 0) {
        out.push('/');
        out.push_str(&String::from_utf8_lossy(part));
    }
    out
}

/// `filename` made absolute against `cwd`, with `.` components dropped
/// (`..` is kept: it may cross a symbolic link).
pub fn absolute(filename: &str, cwd: &str) -> String {
    let joined = Path::new(cwd).join(filename);
    let clean: PathBuf = joined
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    clean.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u32, flags: u32, lens: [u32; 4]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER];
        b[0..4].copy_from_slice(&kind.to_le_bytes());
        b[4..8].copy_from_slice(&flags.to_le_bytes());
        b[8..16].copy_from_slice(&123_456u64.to_le_bytes());
        b[24..28].copy_from_slice(&42u32.to_le_bytes());
        b[28..32].copy_from_slice(&7u32.to_le_bytes());
        for (i, l) in lens.iter().enumerate() {
            b[40 + 4 * i..44 + 4 * i].copy_from_slice(&l.to_le_bytes());
        }
        b[56..60].copy_from_slice(&(-1i32).to_le_bytes());
        b
    }

    #[test]
    fn an_exec_record_decodes() {
        let argv = b"/bin/echo\0hello world\0x\0";
        let exe = b"echo\0bin\0usr\0";
        let cwd = b"";
        let file = b"./s.sh";
        let mut b = header(
            KIND_EXEC,
            FLAG_ARGV_TRUNCATED,
            [argv.len() as u32, exe.len() as u32, 0, file.len() as u32],
        );
        b.extend_from_slice(argv);
        b.extend_from_slice(exe);
        b.extend_from_slice(file);
        let r = Record::parse(&b).unwrap();
        assert_eq!(
            (r.kind, r.pid, r.ppid, r.ktime_ns, r.exit_code),
            (KIND_EXEC, 42, 7, 123_456, -1)
        );
        assert_eq!(r.flags & FLAG_ARGV_TRUNCATED, FLAG_ARGV_TRUNCATED);
        assert_eq!(command_line(r.argv), "/bin/echo hello world x");
        assert_eq!(path_from_components(r.exe, false), "/usr/bin/echo");
        assert_eq!(path_from_components(cwd, false), "/");
        assert_eq!(path_from_components(b"c\0b\0", true), "…/b/c");
        assert_eq!(
            absolute(std::str::from_utf8(r.filename).unwrap(), "/tmp/w"),
            "/tmp/w/s.sh"
        );
        assert_eq!(absolute("/abs/x", "/tmp"), "/abs/x");
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        assert_eq!(Record::parse(&[0; 10]), Err(RecordError::Short(10)));
        let b = header(KIND_EXEC, 0, [100, 0, 0, 0]);
        assert_eq!(
            Record::parse(&b),
            Err(RecordError::Lengths { len: 64, want: 100 })
        );
        let b = header(KIND_EXEC, 0, [u32::MAX; 4]);
        assert!(Record::parse(&b).is_err());
    }
}

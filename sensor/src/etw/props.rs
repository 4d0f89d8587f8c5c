//! The properties trawl reads from each ETW event shape, as plain data.
//!
//! The Windows glue fills these from an `EVENT_RECORD` (through ferrisetw's
//! parser) and does nothing else; everything after — joining, path mapping,
//! naming users, building the [`trawl_engine::event::Event`] — works on these structs
//! and is tested on any platform with property sets written down in the tests.
//! Property names in the docs are the providers' own.

/// What every record carries in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `EVENT_HEADER.TimeStamp`: 100 ns ticks since 1601-01-01 UTC (a
    /// `FILETIME`, as real-time sessions deliver it).
    pub timestamp: i64,
    /// `EVENT_HEADER.ProcessId`: the process that caused the event (for file
    /// events, the one that opened the file).
    pub process_id: u32,
}

/// Which of the kernel process provider's MOF events a record is (its opcode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MofProcessOpcode {
    /// 1, `Start`: a process was created.
    Start,
    /// 2, `End`: a process exited.
    End,
    /// 3, `DCStart`: a process that was already running when the session
    /// began (the kernel's rundown).
    DcStart,
    /// 4, `DCEnd`: rundown at the end of the session.
    DcEnd,
}

impl MofProcessOpcode {
    /// The opcode's meaning; `None` for opcodes trawl does not read
    /// (`Defunct`, performance counters, …).
    pub fn from_opcode(opcode: u8) -> Option<MofProcessOpcode> {
        Some(match opcode {
            1 => MofProcessOpcode::Start,
            2 => MofProcessOpcode::End,
            3 => MofProcessOpcode::DcStart,
            4 => MofProcessOpcode::DcEnd,
            _ => return None,
        })
    }
}

/// `KernelTrace` + `kernel_providers::PROCESS_PROVIDER`: the MOF class
/// `Process_V4_TypeGroup1` (`Process/Start`, `End`, `DCStart`, `DCEnd`).
/// It carries the command line and the user, but only a short image name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MofProcess {
    pub header: Header,
    pub opcode: MofProcessOpcode,
    /// `ProcessId`.
    pub process_id: u32,
    /// `ParentId`.
    pub parent_id: u32,
    /// `SessionId`.
    pub session_id: u32,
    /// `UserSID` as text (`S-1-5-18`), read from its `TOKEN_USER` blob by
    /// [`crate::etw::sid::sid_from_token_user`]; `None` when absent or garbled.
    pub user_sid: Option<String>,
    /// `ImageFileName`: the file name only (`notepad.exe`), ANSI.
    pub image_file_name: String,
    /// `CommandLine`.
    pub command_line: String,
}

/// `UserTrace` + Microsoft-Windows-Kernel-Process
/// (`22FB2CD6-0E7B-422B-A0C7-2FAD1FD0E716`), event 1 `ProcessStart`: the full
/// image path (as a device path), no command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelProcessStart {
    pub header: Header,
    /// `ProcessID`.
    pub process_id: u32,
    /// `ParentProcessID`.
    pub parent_process_id: u32,
    /// `SessionID`.
    pub session_id: u32,
    /// `ImageName`: `\Device\HarddiskVolume3\Windows\System32\notepad.exe`.
    pub image_name: String,
    /// `MandatoryLabel` (event version 3 and later) as a SID string
    /// (`S-1-16-12288`): the process's integrity level.
    pub mandatory_label: Option<String>,
}

/// Microsoft-Windows-Kernel-Process event 2 `ProcessStop`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelProcessStop {
    pub header: Header,
    /// `ProcessID`.
    pub process_id: u32,
    /// `ExitCode`.
    pub exit_code: u32,
    /// `ImageName`: the file name only, ANSI (`notepad.exe`).
    pub image_name: String,
}

/// Which Microsoft-Windows-Kernel-File event a file create came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileCreateEvent {
    /// Event 30 `CreateNewFile` (keyword `KERNEL_FILE_KEYWORD_CREATE_NEW_FILE`,
    /// 0x1000): a file that did not exist was created.
    CreateNewFile,
    /// Event 12 `Create` (keyword `KERNEL_FILE_KEYWORD_CREATE`, 0x80): every
    /// open; trawl keeps only the ones that overwrite a file.
    Create,
}

/// Microsoft-Windows-Kernel-File (`EDD08927-9CC4-4E65-B970-C2560FB5C289`)
/// events 30 and 12: `Irp`, `FileObject`, `IssuingThreadId`, `CreateOptions`,
/// `CreateAttributes`, `ShareAccess`, `FileName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFileCreate {
    pub header: Header,
    pub event: FileCreateEvent,
    /// `FileObject`: the kernel's file object; the same for the events of
    /// one open, so it tells a duplicate 12/30 pair apart.
    pub file_object: u64,
    /// `CreateOptions`: `NtCreateFile`'s options in the low 24 bits and the
    /// create disposition in the high 8.
    pub create_options: u32,
    /// `FileName`: `\Device\HarddiskVolume3\Users\…`.
    pub file_name: String,
}

impl KernelFileCreate {
    /// `FILE_DIRECTORY_FILE`: the create made or opened a directory.
    pub const FILE_DIRECTORY_FILE: u32 = 0x0000_0001;

    /// The create disposition (`FILE_SUPERSEDE` 0 … `FILE_OVERWRITE_IF` 5).
    pub fn disposition(&self) -> u32 {
        self.create_options >> 24
    }

    /// Whether this names a directory rather than a file.
    pub fn is_directory(&self) -> bool {
        self.create_options & Self::FILE_DIRECTORY_FILE != 0
    }

    /// Whether the open replaced an existing file's content (supersede,
    /// overwrite, overwrite-if): what Sysmon also reports as a file create.
    pub fn overwrites(&self) -> bool {
        matches!(self.disposition(), 0 | 4 | 5)
    }
}

/// One record in the shape the converter reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtwRecord {
    MofProcess(MofProcess),
    ProcessStart(KernelProcessStart),
    ProcessStop(KernelProcessStop),
    FileCreate(KernelFileCreate),
}

/// 100 ns ticks between 1601-01-01 and 1970-01-01, the two epochs.
const FILETIME_UNIX_OFFSET_TICKS: i64 = 116_444_736_000_000_000;

/// A `FILETIME` (100 ns ticks since 1601) as a UTC timestamp; `None` for
/// values outside what a timestamp can hold.
pub fn filetime_to_timestamp(ticks: i64) -> Option<trawl_engine::event::Timestamp> {
    let since_unix = i128::from(ticks) - i128::from(FILETIME_UNIX_OFFSET_TICKS);
    trawl_engine::event::Timestamp::from_nanosecond(since_unix * 100).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetimes_convert_to_utc() {
        // 2021-09-14T10:03:11.5Z, as FILETIME ticks.
        let ts = filetime_to_timestamp(132_760_873_915_000_000).unwrap();
        assert_eq!(ts.to_string(), "2021-09-14T10:03:11.5Z");
        assert_eq!(
            filetime_to_timestamp(FILETIME_UNIX_OFFSET_TICKS).unwrap(),
            trawl_engine::event::Timestamp::UNIX_EPOCH
        );
        assert_eq!(filetime_to_timestamp(i64::MAX), None);
    }

    #[test]
    fn create_dispositions_read_from_the_high_byte() {
        let mut f = KernelFileCreate {
            header: Header {
                timestamp: 0,
                process_id: 1,
            },
            event: FileCreateEvent::Create,
            file_object: 1,
            create_options: 0x0500_0060,
            file_name: String::new(),
        };
        assert_eq!(f.disposition(), 5);
        assert!(f.overwrites() && !f.is_directory());
        f.create_options = 0x0100_0021; // FILE_OPEN of a directory
        assert!(!f.overwrites() && f.is_directory());
        f.create_options = 0x0300_0000; // FILE_OPEN_IF
        assert!(!f.overwrites());
        assert_eq!(
            MofProcessOpcode::from_opcode(3),
            Some(MofProcessOpcode::DcStart)
        );
        assert_eq!(MofProcessOpcode::from_opcode(39), None);
    }
}

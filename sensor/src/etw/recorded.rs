//! Property sets as the providers deliver them, written down for the tests:
//! PAExec started by `cmd.exe` from `C:\Windows\TAPI\`, as in the DEV-0228
//! trace, in both shapes, then its stop and a file it creates.

use super::props::*;

/// 2021-09-14T10:03:11Z as FILETIME ticks.
pub const T0: i64 = 132_760_873_910_000_000;

/// 1 ms in FILETIME ticks.
pub const MS: i64 = 10_000;

pub fn header(pid: u32, at: i64) -> Header {
    Header {
        timestamp: at,
        process_id: pid,
    }
}

/// MOF `Process/Start` of pa.exe (pid 4312), parent cmd.exe (pid 2200).
pub fn mof_start() -> MofProcess {
    MofProcess {
        header: header(2200, T0),
        opcode: MofProcessOpcode::Start,
        process_id: 4312,
        parent_id: 2200,
        session_id: 1,
        user_sid: Some("S-1-5-21-1004336348-1177238915-682003330-1001".into()),
        image_file_name: "pa.exe".into(),
        command_line: r#"pa.exe \\LF-FS01 -s cmd.exe"#.into(),
    }
}

/// Microsoft-Windows-Kernel-Process event 1 for the same start.
pub fn kernel_start() -> KernelProcessStart {
    KernelProcessStart {
        header: header(2200, T0 + 2 * MS),
        process_id: 4312,
        parent_process_id: 2200,
        session_id: 1,
        image_name: r"\Device\HarddiskVolume3\Windows\TAPI\pa.exe".into(),
        mandatory_label: Some("S-1-16-12288".into()),
    }
}

/// Microsoft-Windows-Kernel-Process event 2 for pa.exe.
pub fn kernel_stop() -> KernelProcessStop {
    KernelProcessStop {
        header: header(4312, T0 + 900 * MS),
        process_id: 4312,
        exit_code: 0,
        image_name: "pa.exe".into(),
    }
}

/// Microsoft-Windows-Kernel-File event 30: pa.exe drops its service binary.
pub fn file_created() -> KernelFileCreate {
    KernelFileCreate {
        header: header(4312, T0 + 300 * MS),
        event: FileCreateEvent::CreateNewFile,
        file_object: 0xffff_c50a_1234_5670,
        // FILE_CREATE (2) << 24 | FILE_NON_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT
        create_options: 0x0200_0060,
        file_name: r"\Device\HarddiskVolume3\Windows\PAExec-2208-LF-FS01.exe".into(),
    }
}

/// MOF `Process/DCStart` (rundown) of the parent, cmd.exe, running before
/// the session began.
pub fn mof_rundown_parent() -> MofProcess {
    MofProcess {
        header: header(0, T0 - 60_000 * MS),
        opcode: MofProcessOpcode::DcStart,
        process_id: 2200,
        parent_id: 1800,
        session_id: 1,
        user_sid: Some("S-1-5-21-1004336348-1177238915-682003330-1001".into()),
        image_file_name: "cmd.exe".into(),
        command_line: r#""C:\Windows\system32\cmd.exe" "#.into(),
    }
}

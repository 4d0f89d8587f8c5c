//! The Win32 calls around the ETW sessions: drive letters, the process
//! snapshot, account names and session counters. Each returns what it could
//! learn and degrades to less (never panics) when a call is refused.

use std::ffi::c_void;
use std::ptr;

use windows_sys::Wdk::System::Threading::{
    NtQueryInformationProcess, ProcessCommandLineInformation,
};
use windows_sys::Win32::Foundation::{
    CloseHandle, LocalFree, HANDLE, INVALID_HANDLE_VALUE, UNICODE_STRING,
};
use windows_sys::Win32::Security::Authorization::ConvertStringSidToSidW;
use windows_sys::Win32::Security::{
    GetTokenInformation, LookupAccountSidW, TokenUser, PSID, SID_NAME_USE, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::Storage::FileSystem::{GetLogicalDriveStringsW, QueryDosDeviceW};
use windows_sys::Win32::System::Diagnostics::Etw::{
    ControlTraceW, CONTROLTRACE_HANDLE, EVENT_TRACE_CONTROL_QUERY, EVENT_TRACE_PROPERTIES,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Process32FirstW, Process32NextW, PROCESSENTRY32W, TH32CS_SNAPPROCESS,
};
use windows_sys::Win32::System::SystemInformation::{
    ComputerNameDnsFullyQualified, GetComputerNameExW, GetWindowsDirectoryW,
};
use windows_sys::Win32::System::Threading::{
    OpenProcess, OpenProcessToken, QueryFullProcessImageNameW, PROCESS_NAME_WIN32,
    PROCESS_QUERY_LIMITED_INFORMATION,
};

use crate::etw::device_map::DeviceMap;
use crate::etw::process_table::SnapshotProcess;
use crate::etw::sid::well_known_account;

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain([0]).collect()
}

fn from_wide(buf: &[u16]) -> String {
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf16_lossy(&buf[..end])
}

/// Closes a handle when dropped.
struct Owned(HANDLE);

impl Drop for Owned {
    fn drop(&mut self) {
        if !self.0.is_null() && self.0 != INVALID_HANDLE_VALUE {
            // SAFETY: the handle was returned open by the system and is
            // closed once, here.
            unsafe { CloseHandle(self.0) };
        }
    }
}

/// The DOS device table: every drive letter with the NT device it stands for.
pub(super) fn device_map() -> DeviceMap {
    let mut buf = vec![0u16; 512];
    // SAFETY: the buffer is valid for `len` u16s.
    let n = unsafe { GetLogicalDriveStringsW(buf.len() as u32, buf.as_mut_ptr()) } as usize;
    let drives: Vec<String> = buf[..n.min(buf.len())]
        .split(|&c| c == 0)
        .filter(|d| !d.is_empty())
        .map(|d| {
            String::from_utf16_lossy(d)
                .trim_end_matches('\\')
                .to_owned()
        })
        .collect();
    let mut pairs = Vec::new();
    for drive in drives {
        let name = wide(&drive);
        let mut target = vec![0u16; 1024];
        // SAFETY: `name` is NUL-terminated; `target` is valid for its length.
        let n = unsafe { QueryDosDeviceW(name.as_ptr(), target.as_mut_ptr(), target.len() as u32) };
        if n > 0 {
            pairs.push((drive, from_wide(&target)));
        }
    }
    let mut root = vec![0u16; 260];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { GetWindowsDirectoryW(root.as_mut_ptr(), root.len() as u32) } as usize;
    let root = if n > 0 && n < root.len() {
        from_wide(&root)
    } else {
        r"C:\Windows".to_owned()
    };
    DeviceMap::new(pairs, &root)
}

/// The processes running now, with what the system tells about each.
pub(super) fn process_snapshot() -> Vec<SnapshotProcess> {
    // SAFETY: plain call; the handle is owned below.
    let snap = Owned(unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) });
    if snap.0 == INVALID_HANDLE_VALUE {
        tracing::warn!(
            "process snapshot refused: parents of processes running before trawl will be unknown"
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut entry = PROCESSENTRY32W {
        dwSize: std::mem::size_of::<PROCESSENTRY32W>() as u32,
        ..Default::default()
    };
    // SAFETY: `entry.dwSize` is set as the API requires.
    let mut ok = unsafe { Process32FirstW(snap.0, &mut entry) } != 0;
    while ok {
        let pid = entry.th32ProcessID;
        let name = from_wide(&entry.szExeFile);
        let mut p = SnapshotProcess {
            process_id: pid,
            parent_id: entry.th32ParentProcessID,
            image: Some(name),
            command_line: None,
            user: None,
        };
        if pid != 0 && pid != 4 {
            describe(pid, &mut p);
        }
        out.push(p);
        // SAFETY: as above.
        ok = unsafe { Process32NextW(snap.0, &mut entry) } != 0;
    }
    out
}

/// Adds full image path, command line and user of `pid`, where allowed.
fn describe(pid: u32, p: &mut SnapshotProcess) {
    // SAFETY: plain call; the handle is owned below.
    let h = Owned(unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) });
    if h.0.is_null() {
        return; // Protected or gone: the bare name stays.
    }
    let mut path = vec![0u16; 1024];
    let mut len = path.len() as u32;
    // SAFETY: `len` is the buffer's length in u16s.
    if unsafe { QueryFullProcessImageNameW(h.0, PROCESS_NAME_WIN32, path.as_mut_ptr(), &mut len) }
        != 0
    {
        p.image = Some(String::from_utf16_lossy(&path[..len as usize]));
    }
    p.command_line = command_line(&h);
    p.user = token_user(&h);
}

fn command_line(h: &Owned) -> Option<String> {
    let mut buf = vec![0u64; 4096]; // 32 KiB, 8-aligned for UNICODE_STRING
    let mut needed = 0u32;
    let bytes = (buf.len() * 8) as u32;
    // SAFETY: the buffer is valid for `bytes` bytes; on success it starts with
    // a UNICODE_STRING whose Buffer points inside it.
    let status = unsafe {
        NtQueryInformationProcess(
            h.0,
            ProcessCommandLineInformation,
            buf.as_mut_ptr().cast::<c_void>(),
            bytes,
            &mut needed,
        )
    };
    if status < 0 {
        return None;
    }
    // SAFETY: success means the buffer holds a UNICODE_STRING at its start.
    let us = unsafe { &*buf.as_ptr().cast::<UNICODE_STRING>() };
    let start = buf.as_ptr() as usize;
    let text = us.Buffer as usize;
    let len = usize::from(us.Length);
    if us.Buffer.is_null() || text < start || text + len > start + bytes as usize {
        return None;
    }
    // SAFETY: checked above that the text lies inside `buf`.
    let units = unsafe { std::slice::from_raw_parts(us.Buffer, len / 2) };
    Some(String::from_utf16_lossy(units))
}

fn token_user(h: &Owned) -> Option<String> {
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: plain call with an out pointer.
    if unsafe { OpenProcessToken(h.0, TOKEN_QUERY, &mut token) } == 0 {
        return None;
    }
    let token = Owned(token);
    let mut buf = vec![0u64; 64];
    let mut needed = 0u32;
    // SAFETY: the buffer is valid for its size in bytes.
    let ok = unsafe {
        GetTokenInformation(
            token.0,
            TokenUser,
            buf.as_mut_ptr().cast::<c_void>(),
            (buf.len() * 8) as u32,
            &mut needed,
        )
    };
    if ok == 0 {
        return None;
    }
    // SAFETY: success means the buffer holds a TOKEN_USER.
    let user = unsafe { &*buf.as_ptr().cast::<TOKEN_USER>() };
    account_of(user.User.Sid)
}

/// `DOMAIN\user` for a SID in text form (`S-1-5-21-…`).
pub(super) fn account_name(sid: &str) -> Option<String> {
    if let Some(n) = well_known_account(sid) {
        return Some(n.to_owned());
    }
    let text = wide(sid);
    let mut psid: PSID = ptr::null_mut();
    // SAFETY: `text` is NUL-terminated; the SID is freed with LocalFree.
    if unsafe { ConvertStringSidToSidW(text.as_ptr(), &mut psid) } == 0 {
        return None;
    }
    let name = account_of(psid);
    // SAFETY: allocated by ConvertStringSidToSidW.
    unsafe { LocalFree(psid) };
    name
}

fn account_of(sid: PSID) -> Option<String> {
    let mut name = vec![0u16; 256];
    let mut domain = vec![0u16; 256];
    let (mut name_len, mut domain_len) = (name.len() as u32, domain.len() as u32);
    let mut kind: SID_NAME_USE = 0;
    // SAFETY: buffers valid for the lengths passed.
    let ok = unsafe {
        LookupAccountSidW(
            ptr::null(),
            sid,
            name.as_mut_ptr(),
            &mut name_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    };
    if ok == 0 {
        return None;
    }
    let (name, domain) = (from_wide(&name), from_wide(&domain));
    Some(if domain.is_empty() {
        name
    } else {
        format!("{domain}\\{name}")
    })
}

/// This machine's DNS name (`host.example.com`), as event logs' `Computer`
/// has it; `None` if the system will not say.
pub(super) fn host_name() -> Option<String> {
    let mut buf = vec![0u16; 256];
    let mut len = buf.len() as u32;
    // SAFETY: `len` is the buffer's length in u16s; on success it is the
    // name's length without the NUL.
    let ok =
        unsafe { GetComputerNameExW(ComputerNameDnsFullyQualified, buf.as_mut_ptr(), &mut len) };
    (ok != 0 && len > 0).then(|| String::from_utf16_lossy(&buf[..len as usize]))
}

/// ETW's own loss counters of a running session: (events lost, buffers lost).
pub(super) fn session_losses(session: &str) -> Option<(u64, u64)> {
    #[repr(C)]
    struct Query {
        props: EVENT_TRACE_PROPERTIES,
        names: [u16; 2048],
    }
    let mut q = Query {
        props: EVENT_TRACE_PROPERTIES::default(),
        names: [0; 2048],
    };
    q.props.Wnode.BufferSize = std::mem::size_of::<Query>() as u32;
    q.props.LoggerNameOffset = std::mem::size_of::<EVENT_TRACE_PROPERTIES>() as u32;
    q.props.LogFileNameOffset = q.props.LoggerNameOffset + 1024 * 2;
    let name = wide(session);
    // SAFETY: `q` is as large as BufferSize says, with room for both names.
    let status = unsafe {
        ControlTraceW(
            CONTROLTRACE_HANDLE { Value: 0 },
            name.as_ptr(),
            &mut q.props,
            EVENT_TRACE_CONTROL_QUERY,
        )
    };
    (status == 0).then(|| {
        (
            u64::from(q.props.EventsLost),
            u64::from(q.props.LogBuffersLost) + u64::from(q.props.RealTimeBuffersLost),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_drive_maps_back_to_its_letter() {
        let mut root = vec![0u16; 260];
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { GetWindowsDirectoryW(root.as_mut_ptr(), root.len() as u32) };
        assert!(n > 2);
        let drive = from_wide(&root)[..2].to_owned();
        let mut target = vec![0u16; 1024];
        let name = wide(&drive);
        // SAFETY: as in `device_map`.
        let n = unsafe { QueryDosDeviceW(name.as_ptr(), target.as_mut_ptr(), target.len() as u32) };
        assert!(n > 0, "QueryDosDeviceW({drive}) failed");
        let device = from_wide(&target);
        let map = device_map();
        assert_eq!(
            map.to_dos(&format!(r"{device}\Windows\x.exe")),
            format!(r"{drive}\Windows\x.exe")
        );
    }

    #[test]
    fn the_snapshot_describes_this_process() {
        let me = std::process::id();
        let snapshot = process_snapshot();
        let p = snapshot
            .iter()
            .find(|p| p.process_id == me)
            .expect("this process is in the snapshot");
        let exe = std::env::current_exe().unwrap();
        let name = exe
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        let image = p.image.as_deref().unwrap().to_ascii_lowercase();
        assert!(image.ends_with(&name) && image.contains('\\'), "{image}");
        assert!(p.user.is_some(), "own token is readable");
        if let Some(cmd) = &p.command_line {
            assert!(
                cmd.to_ascii_lowercase()
                    .contains(name.trim_end_matches(".exe")),
                "{cmd}"
            );
        }
    }

    #[test]
    fn the_host_has_a_name() {
        let name = host_name().expect("GetComputerNameExW answers");
        assert!(!name.is_empty() && !name.contains('\0'), "{name:?}");
    }

    #[test]
    fn well_known_and_unknown_accounts() {
        assert_eq!(
            account_name("S-1-5-18").as_deref(),
            Some("NT AUTHORITY\\SYSTEM")
        );
        assert_eq!(account_name("not a sid"), None);
    }
}

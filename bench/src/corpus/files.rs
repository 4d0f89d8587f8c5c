//! Ordinary file events: caches, temp files, documents, build output, logs,
//! with the program that wrote them.

use trawl_engine::event::{EventKind, Os};

use super::rng::Rng;
use super::words::{DOCUMENTS, OFFICE_FILES, PROJECTS};
use super::FileOp;

/// An ordinary Windows file event of `kind` by `user`.
pub fn windows(rng: &mut Rng, kind: EventKind, user: &str) -> FileOp {
    let home = format!(r"C:\Users\{user}");
    let project = rng.pick(PROJECTS);
    // Prefetch files are written, not deleted, in ordinary use.
    let pick = match rng.below(9) {
        1 if kind == EventKind::FileDelete => 3,
        n => n,
    };
    let (image, target) = match pick {
        0 => (
            r"C:\Program Files\Google\Chrome\Application\chrome.exe".to_owned(),
            format!(
                r"{home}\AppData\Local\Google\Chrome\User Data\Default\Cache\Cache_Data\f_{}",
                rng.hex(6)
            ),
        ),
        1 => (
            r"C:\Windows\System32\svchost.exe".to_owned(),
            format!(
                r"C:\Windows\Prefetch\{}-{}.pf",
                rng.pick(&[
                    "CHROME.EXE",
                    "SVCHOST.EXE",
                    "GIT.EXE",
                    "CONHOST.EXE",
                    "MSEDGE.EXE"
                ]),
                rng.upper_hex(8)
            ),
        ),
        2 => {
            let (ext, exe, _) = *rng.pick(OFFICE_FILES);
            (
                format!(r"C:\Program Files\Microsoft Office\root\Office16\{exe}"),
                format!(r"{home}\Documents\{}.{ext}", rng.pick(DOCUMENTS)),
            )
        }
        3 => (
            r"C:\Program Files\dotnet\dotnet.exe".to_owned(),
            format!(r"{home}\source\repos\{project}\obj\Release\net8.0\{project}.dll"),
        ),
        4 => (
            r"C:\Windows\System32\msiexec.exe".to_owned(),
            format!(r"C:\Windows\Installer\{}.msi", rng.hex(7)),
        ),
        5 => (
            r"C:\Windows\System32\svchost.exe".to_owned(),
            format!(
                r"C:\Windows\SoftwareDistribution\Download\{}\metadata\{}.cab",
                rng.hex(32),
                rng.hex(8)
            ),
        ),
        6 => (
            format!(r"{home}\AppData\Local\Programs\Microsoft VS Code\Code.exe"),
            format!(
                r"{home}\AppData\Roaming\Code\User\workspaceStorage\{}\state.vscdb",
                rng.hex(32)
            ),
        ),
        7 => (
            r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.23110.3-0\MsMpEng.exe"
                .to_owned(),
            format!(
                r"C:\ProgramData\Microsoft\Windows Defender\Scans\History\Service\DetectionHistory\{:02}\{}",
                rng.below(100),
                rng.guid()
            ),
        ),
        _ => (
            r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe".to_owned(),
            format!(
                r"{home}\AppData\Local\Temp\__PSScriptPolicyTest_{}.{}.ps1",
                rng.hex(8),
                rng.hex(3)
            ),
        ),
    };
    FileOp {
        os: Os::Windows,
        kind,
        image,
        target,
        user: format!(r"{}\{user}", super::words::DOMAIN),
    }
}

/// An ordinary Linux file event of `kind` by `user`.
pub fn linux(rng: &mut Rng, kind: EventKind, user: &str) -> FileOp {
    let home = if user == "root" {
        "/root".to_owned()
    } else {
        format!("/home/{user}")
    };
    let (image, target) = match rng.below(7) {
        0 => ("/usr/bin/python3.11", format!("/tmp/tmp{}", rng.hex(8))),
        1 => (
            "/usr/bin/python3.11",
            format!("{home}/.cache/pip/http-v2/{}/{}/{}", rng.hex(1), rng.hex(1), rng.hex(40)),
        ),
        2 => ("/usr/sbin/nginx", "/var/log/nginx/access.log".to_owned()),
        3 => (
            "/home/jenkins/.cargo/bin/rustc",
            format!(
                "/home/jenkins/workspace/{}/target/debug/deps/{}-{}.d",
                rng.pick(PROJECTS),
                rng.pick(&["serde", "tokio", "regex", "libc", "trawl_engine"]),
                rng.hex(16)
            ),
        ),
        4 => (
            "/usr/bin/dockerd",
            format!("/var/lib/docker/overlay2/{}/diff/usr/lib/x86_64-linux-gnu/lib{}.so", rng.hex(64), rng.pick(&["ssl", "z", "crypto", "ffi"])),
        ),
        5 => (
            "/usr/lib/apt/methods/http",
            format!("/var/lib/apt/lists/partial/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.{}", rng.hex(4)),
        ),
        _ => ("/usr/bin/vim.basic", format!("{home}/.viminfo.tmp")),
    };
    FileOp {
        os: Os::Linux,
        kind,
        image: image.to_owned(),
        target,
        user: user.to_owned(),
    }
}

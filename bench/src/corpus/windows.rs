//! Ordinary Windows process starts: what a law firm's workstations and
//! servers run all day, with command lines of the lengths Sysmon records
//! (from `conhost.exe 0xffffffff` to Java class paths of several kilobytes).

use base64::Engine as _;

use super::rng::Rng;
use super::words::{DOCUMENTS, FEATURES, JARS, OFFICE_FILES, PROJECTS};
use super::{PeMeta, Proc};

const MS: &str = "Microsoft Corporation";

/// Parent processes: (image, command line).
const EXPLORER: (&str, &str) = (r"C:\Windows\explorer.exe", r"C:\Windows\Explorer.EXE");
const SERVICES: (&str, &str) = (
    r"C:\Windows\System32\services.exe",
    r"C:\Windows\system32\services.exe",
);
const DCOM: (&str, &str) = (
    r"C:\Windows\System32\svchost.exe",
    r"C:\Windows\system32\svchost.exe -k DcomLaunch -p",
);
const SCHEDULE: (&str, &str) = (
    r"C:\Windows\System32\svchost.exe",
    r"C:\Windows\system32\svchost.exe -k netsvcs -p -s Schedule",
);
const CMD: (&str, &str) = (
    r"C:\Windows\System32\cmd.exe",
    r#""C:\Windows\system32\cmd.exe" "#,
);
const CCM: (&str, &str) = (r"C:\Windows\CCM\CcmExec.exe", r"C:\Windows\CCM\CcmExec.exe");

/// One kind of ordinary process start.
pub type Template = fn(&mut Rng, &str) -> Proc;

/// The ordinary Windows starts, weighted by how often a fleet sees them.
pub const TEMPLATES: &[(u32, Template)] = &[
    (14, svchost),
    (12, chromium),
    (6, electron),
    (8, cmd),
    (7, powershell),
    (1, powershell_encoded),
    (8, conhost),
    (5, rundll32),
    (3, msiexec),
    (3, java),
    (4, search_protocol_host),
    (5, git),
    (3, office),
    (4, dllhost),
    (2, wmiprvse),
    (3, background_task_host),
    (2, onedrive),
    (2, defender_update),
    (3, dotnet_build),
    (3, taskhostw),
];

fn home(user: &str) -> String {
    format!(r"C:\Users\{user}")
}

fn svchost(rng: &mut Rng, _: &str) -> Proc {
    let group = *rng.pick(&[
        "-k netsvcs -p -s Schedule",
        "-k LocalServiceNetworkRestricted -p -s lmhosts",
        "-k DcomLaunch -p",
        "-k RPCSS -p",
        "-k wsappx -p -s AppXSvc",
        "-k LocalSystemNetworkRestricted -p -s SysMain",
        "-k NetworkService -p -s Dnscache",
        "-k LocalService -p -s EventSystem",
        "-k netsvcs -p -s BITS",
        "-k UnistackSvcGroup",
    ]);
    let command_line = if group == "-k UnistackSvcGroup" {
        format!(
            r"C:\Windows\system32\svchost.exe {group} -s WpnUserService_{}",
            rng.hex(5)
        )
    } else {
        format!(r"C:\Windows\system32\svchost.exe {group}")
    };
    Proc::system(
        r"C:\Windows\System32\svchost.exe",
        command_line,
        PeMeta::windows("svchost.exe", "Host Process for Windows Services"),
        SERVICES,
    )
}

fn chromium(rng: &mut Rng, user: &str) -> Proc {
    let (image, meta) = if rng.chance(600) {
        (
            r"C:\Program Files\Google\Chrome\Application\chrome.exe".to_owned(),
            PeMeta {
                original: "chrome.exe",
                description: "Google Chrome",
                company: "Google LLC",
                product: "Google Chrome",
            },
        )
    } else {
        (
            r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe".to_owned(),
            PeMeta {
                original: "msedge.exe",
                description: "Microsoft Edge",
                company: MS,
                product: "Microsoft Edge",
            },
        )
    };
    let kind = *rng.pick(&["renderer", "gpu-process", "utility", "crashpad-handler"]);
    let mut cmd = format!("\"{image}\" --type={kind}");
    if kind == "utility" {
        let sub = rng.pick(&[
            "network.mojom.NetworkService",
            "storage.mojom.StorageService",
            "audio.mojom.AudioService",
        ]);
        cmd.push_str(&format!(
            " --utility-sub-type={sub} --lang=en-US --service-sandbox-type=none"
        ));
    }
    if kind == "renderer" {
        let n = rng.range(2, 8) as usize;
        let features: Vec<&str> = (0..n).map(|_| *rng.pick(FEATURES)).collect();
        cmd.push_str(&format!(
            " --enable-features={} --lang=en-US --device-scale-factor=1.25 --num-raster-threads=4 \
             --enable-main-frame-before-activation --renderer-client-id={} --time-ticks-at-unix-epoch=-{} \
             --launch-time-ticks={}",
            features.join(","),
            rng.range(5, 400),
            rng.range(1_600_000_000_000_000, 1_700_000_000_000_000),
            rng.range(10_000_000, 9_999_999_999),
        ));
    }
    if kind == "crashpad-handler" {
        cmd.push_str(&format!(
            r#" "--user-data-dir=C:\Users\{user}\AppData\Local\Google\Chrome\User Data" /prefetch:4 --monitor-self-annotation=ptype=crashpad-handler "--database=C:\Users\{user}\AppData\Local\Google\Chrome\User Data\Crashpad" --url=https://clients2.google.com/cr/report --annotation=channel= --annotation=plat=Win64 --annotation=prod=Chrome --annotation=ver=117.0.5938.92 --initial-client-data=0x{},0x{},0x{}"#,
            rng.hex(3),
            rng.hex(3),
            rng.hex(3)
        ));
    } else {
        cmd.push_str(&format!(
            " --field-trial-handle={},i,{},{},262144 --mojo-platform-channel-handle={} /prefetch:{}",
            rng.range(1000, 9999),
            rng.next_u64() % 10_000_000_000_000_000_000,
            rng.next_u64() % 10_000_000_000_000_000_000,
            rng.range(1000, 9999),
            rng.range(1, 8)
        ));
    }
    let parent_cmd = format!("\"{image}\" ");
    Proc::person(user, image.clone(), cmd, meta, (image, parent_cmd))
}

fn electron(rng: &mut Rng, user: &str) -> Proc {
    let (app, exe, data) = *rng.pick(&[
        (r"Programs\Microsoft VS Code", "Code.exe", "Code"),
        (r"slack\app-4.33.90", "slack.exe", "Slack"),
        (r"Microsoft\Teams\current", "Teams.exe", r"Microsoft\Teams"),
        (r"Programs\signal-desktop", "Signal.exe", "Signal"),
    ]);
    let image = format!(r"{}\AppData\Local\{app}\{exe}", home(user));
    let kind = *rng.pick(&["renderer", "utility", "gpu-process"]);
    let cmd = format!(
        "\"{image}\" --type={kind} --user-data-dir=\"{}\\AppData\\Roaming\\{data}\" \
         --standard-schemes=vscode-webview,vscode-file --enable-sandbox \
         --secure-schemes=vscode-webview,vscode-file --bypasscsp-schemes \
         --cors-schemes=vscode-webview,vscode-file --fetch-schemes=vscode-webview,vscode-file \
         --service-worker-schemes=vscode-webview --streaming-schemes --app-path=\"{}\\AppData\\Local\\{app}\\resources\\app\" \
         --enable-sandbox --enable-blink-features=HighlightAPI --lang=en-US --device-scale-factor=1 \
         --num-raster-threads=2 --renderer-client-id={} --launch-time-ticks={} \
         --mojo-platform-channel-handle={} --field-trial-handle={},i,{},{},262144 \
         --disable-features=CalculateNativeWinOcclusion,SpareRendererForSitePerProcess /prefetch:1",
        home(user),
        home(user),
        rng.range(4, 40),
        rng.range(10_000_000, 9_999_999_999),
        rng.range(1000, 9999),
        rng.range(1000, 9999),
        rng.next_u64(),
        rng.next_u64(),
    );
    let meta = PeMeta {
        original: "electron.exe",
        description: exe.trim_end_matches(".exe"),
        company: "GitHub, Inc.",
        product: exe.trim_end_matches(".exe"),
    };
    let parent_cmd = format!("\"{image}\" ");
    Proc::person(user, image.clone(), cmd, meta, (image, parent_cmd))
}

fn cmd(rng: &mut Rng, user: &str) -> Proc {
    let project = rng.pick(PROJECTS);
    let doc = rng.pick(DOCUMENTS);
    let args = match rng.below(7) {
        0 => format!(
            r#"/c "{}\source\repos\{project}\build.bat" Release x64"#,
            home(user)
        ),
        1 => format!(
            r#"/d /s /c "npm run build --prefix {}\source\repos\{project}""#,
            home(user)
        ),
        2 => r#"/c "C:\ProgramData\LawFirm\scripts\map-drives.cmd" /persistent"#.to_owned(),
        3 => format!(r"/c ping -n 1 {}", rng.private_ip()),
        4 => format!(r"/c C:\Windows\TEMP\{}.cmd", rng.guid()),
        5 => format!(
            r#"/c copy /y "{}\Documents\{doc}.docx" \\LF-FS01\matters\2021\"#,
            home(user)
        ),
        _ => "/c echo %PROCESSOR_ARCHITECTURE%".to_owned(),
    };
    Proc::person(
        user,
        r"C:\Windows\System32\cmd.exe".to_owned(),
        format!(r#""C:\Windows\system32\cmd.exe" {args}"#),
        PeMeta::windows("Cmd.Exe", "Windows Command Processor"),
        if rng.chance(500) { EXPLORER } else { CCM },
    )
}

const POWERSHELL: &str = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe";
const POWERSHELL_META: PeMeta = PeMeta::windows("PowerShell.EXE", "Windows PowerShell");

fn powershell(rng: &mut Rng, user: &str) -> Proc {
    let script = *rng.pick(&[
        "inventory",
        "Map-Drives",
        "Update-Signatures",
        "Sync-Matters",
    ]);
    let args = match rng.below(4) {
        0 => format!(
            r#"-NoProfile -ExecutionPolicy RemoteSigned -File "C:\ProgramData\LawFirm\scripts\{script}.ps1" -LogPath C:\ProgramData\LawFirm\logs"#
        ),
        1 => "-NoProfile -Command \"Get-CimInstance Win32_LogicalDisk | Select-Object DeviceID,FreeSpace,Size | ConvertTo-Json\"".to_owned(),
        2 => format!(
            "-NoLogo -Command \"Get-ChildItem -Path '{}\\Downloads' -Recurse | Where-Object {{ $_.LastWriteTime -lt (Get-Date).AddDays(-30) }} | Measure-Object\"",
            home(user)
        ),
        _ => format!(
            "-NoProfile -Command \"Get-Content -Path '{}\\source\\repos\\{}\\logs\\app.log' -Tail 100 | Select-String -Pattern 'WARN|ERROR'\"",
            home(user),
            rng.pick(PROJECTS)
        ),
    };
    Proc::person(
        user,
        POWERSHELL.to_owned(),
        format!("\"{POWERSHELL}\" {args}"),
        POWERSHELL_META,
        EXPLORER,
    )
}

/// Management agents start PowerShell with `-EncodedCommand` all day; the
/// script inside is harmless.
fn powershell_encoded(rng: &mut Rng, _: &str) -> Proc {
    let script = format!(
        "$ErrorActionPreference = 'Stop'; $r = Get-ItemProperty -Path 'HKLM:\\SOFTWARE\\LawFirm\\Agent' -Name Version; \
         Write-Output (\"agent={{0}};run={}\" -f $r.Version)",
        rng.guid()
    );
    let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(utf16);
    Proc::system(
        POWERSHELL,
        format!("\"{POWERSHELL}\" -NoLogo -NonInteractive -NoProfile -ExecutionPolicy Bypass -EncodedCommand {encoded}"),
        POWERSHELL_META,
        CCM,
    )
}

fn conhost(rng: &mut Rng, user: &str) -> Proc {
    let cmd = if rng.chance(700) {
        r"\??\C:\Windows\system32\conhost.exe 0xffffffff -ForceV1"
    } else {
        r"\??\C:\Windows\system32\conhost.exe --headless --width 80 --height 25 --signal 0x8d0 --server 0x8cc"
    };
    Proc::person(
        user,
        r"C:\Windows\System32\conhost.exe".to_owned(),
        cmd.to_owned(),
        PeMeta::windows("CONHOST.EXE", "Console Window Host"),
        CMD,
    )
}

fn rundll32(rng: &mut Rng, user: &str) -> Proc {
    let args = match rng.below(4) {
        0 => format!(
            r"C:\Windows\system32\shell32.dll,SHCreateLocalServerRunDll {{{}}} -Embedding",
            rng.guid()
        ),
        1 => r"C:\Windows\system32\inetcpl.cpl,ClearMyTracksByProcess Flags:65536 WinX:0 WinY:0 IEFrame:0000000000000000".to_owned(),
        2 => format!(r#"printui.dll,PrintUIEntry /y /n "Floor{}-Color""#, rng.range(1, 6)),
        _ => r"C:\Windows\System32\LogiLDA.dll,LogiFetch".to_owned(),
    };
    Proc::person(
        user,
        r"C:\Windows\System32\rundll32.exe".to_owned(),
        format!(r"C:\Windows\system32\rundll32.exe {args}"),
        PeMeta::windows("RUNDLL32.EXE", "Windows host process (Rundll32)"),
        DCOM,
    )
}

fn msiexec(rng: &mut Rng, user: &str) -> Proc {
    let (image, cmd) = match rng.below(3) {
        0 => (
            r"C:\Windows\System32\msiexec.exe",
            r"C:\Windows\system32\msiexec.exe /V".to_owned(),
        ),
        1 => {
            let app = *rng.pick(&[
                "7z2301",
                "GoogleChromeStandaloneEnterprise64",
                "Zoom",
                "AcroRdrDC",
            ]);
            (
                r"C:\Windows\System32\msiexec.exe",
                format!(
                    r#""C:\Windows\system32\msiexec.exe" /i "{}\Downloads\{app}-x64.msi" /norestart /L*v "{}\AppData\Local\Temp\{app}-install.log""#,
                    home(user),
                    home(user)
                ),
            )
        }
        _ => (
            r"C:\Windows\SysWOW64\msiexec.exe",
            format!(
                r"C:\Windows\syswow64\MsiExec.exe -Embedding {} C",
                rng.upper_hex(32)
            ),
        ),
    };
    Proc::person(
        user,
        image.to_owned(),
        cmd,
        PeMeta::windows("msiexec.exe", "Windows® installer"),
        SERVICES,
    )
}

fn java(rng: &mut Rng, user: &str) -> Proc {
    let jdk = *rng.pick(&[
        "jdk-17.0.8.7-hotspot",
        "jdk-21.0.1.12-hotspot",
        "jdk-11.0.20.8-hotspot",
    ]);
    let image = format!(r"C:\Program Files\Eclipse Adoptium\{jdk}\bin\java.exe");
    let project = rng.pick(PROJECTS);
    let base = format!(r"{}\source\repos\{project}", home(user));
    let n = rng.range(5, 80) as usize;
    let classpath: Vec<String> = (0..n)
        .map(|_| {
            format!(
                r"{}\.gradle\caches\modules-2\files-2.1\{}.jar",
                home(user),
                rng.pick(JARS)
            )
        })
        .collect();
    let main = *rng.pick(&[
        "org.gradle.launcher.daemon.bootstrap.GradleDaemon 8.4",
        "com.lawfirm.matters.Application --spring.profiles.active=dev",
        "org.jetbrains.kotlin.daemon.KotlinCompileDaemon --daemon-runFilesPath",
    ]);
    let cmd = format!(
        "\"{image}\" -Xms256m -Xmx{}g -XX:+UseG1GC -XX:MaxMetaspaceSize=512m -Dfile.encoding=UTF-8 \
         -Duser.country=US -Duser.language=en -Duser.variant -Djava.io.tmpdir={}\\AppData\\Local\\Temp \
         -cp \"{base}\\build\\classes\\java\\main;{}\" {main}",
        rng.range(1, 8),
        home(user),
        classpath.join(";")
    );
    let meta = PeMeta {
        original: "java.exe",
        description: "OpenJDK Platform binary",
        company: "Eclipse Adoptium",
        product: "OpenJDK Platform 17.0.8.7",
    };
    Proc::person(user, image, cmd, meta, CMD)
}

fn search_protocol_host(rng: &mut Rng, _: &str) -> Proc {
    let n = rng.range(1, 40);
    Proc::system(
        r"C:\Windows\System32\SearchProtocolHost.exe",
        format!(
            r#""C:\Windows\system32\SearchProtocolHost.exe" Global\UsGthrFltPipeMssGthrPipe{n}_ Global\UsGthrCtrlFltPipeMssGthrPipe{n} 1 -2147483646 "Software\Microsoft\Windows Search" "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT; MS Search 4.0 Robot)" "C:\ProgramData\Microsoft\Search\Data\Temp\usgthrsvc" "DownLevelDaemon""#
        ),
        PeMeta::windows(
            "SearchProtocolHost.exe",
            "Microsoft Windows Search Protocol Host",
        ),
        (
            r"C:\Windows\System32\SearchIndexer.exe",
            r"C:\Windows\system32\SearchIndexer.exe /Embedding",
        ),
    )
}

fn git(rng: &mut Rng, user: &str) -> Proc {
    let args = *rng.pick(&[
        "-c core.quotepath=false -c color.ui=false fetch --all --prune",
        "status -z -uall",
        "-c core.quotepath=false -c color.ui=false log --format=%H%n%aN%n%aE%n%at%n%ct%n%P%n%B -n 50",
        "rev-parse --show-toplevel",
        "for-each-ref --sort -committerdate --format %(refname) %(objectname) %(*objectname)",
        "diff --no-color --no-ext-diff -- src/",
    ]);
    let code = format!(
        r"{}\AppData\Local\Programs\Microsoft VS Code\Code.exe",
        home(user)
    );
    let mut p = Proc::person(
        user,
        r"C:\Program Files\Git\cmd\git.exe",
        format!(r#""C:\Program Files\Git\cmd\git.exe" {args}"#),
        PeMeta {
            original: "git.exe",
            description: "Git for Windows",
            company: "The Git Development Community",
            product: "Git",
        },
        (code.clone(), format!("\"{code}\" ")),
    );
    p.cwd = format!(r"{}\source\repos\{}\", home(user), rng.pick(PROJECTS));
    p
}

fn office(rng: &mut Rng, user: &str) -> Proc {
    let (ext, exe, description) = *rng.pick(OFFICE_FILES);
    let image = format!(r"C:\Program Files\Microsoft Office\root\Office16\{exe}");
    let place = if rng.chance(500) {
        format!(r"{}\Documents", home(user))
    } else {
        r"\\LF-FS01\matters\2021".to_owned()
    };
    let cmd = format!(
        "\"{image}\" /n \"{place}\\{}.{ext}\" /o \"\"",
        rng.pick(DOCUMENTS)
    );
    Proc::person(
        user,
        image,
        cmd,
        PeMeta {
            original: exe,
            description,
            company: MS,
            product: "Microsoft Office",
        },
        EXPLORER,
    )
}

fn dllhost(rng: &mut Rng, user: &str) -> Proc {
    Proc::person(
        user,
        r"C:\Windows\System32\dllhost.exe".to_owned(),
        format!(
            r"C:\Windows\system32\DllHost.exe /Processid:{{{}}}",
            rng.guid()
        ),
        PeMeta::windows("dllhost.exe", "COM Surrogate"),
        DCOM,
    )
}

fn wmiprvse(_: &mut Rng, _: &str) -> Proc {
    Proc::system(
        r"C:\Windows\System32\wbem\WmiPrvSE.exe",
        r"C:\Windows\system32\wbem\wmiprvse.exe -secured -Embedding".to_owned(),
        PeMeta::windows("Wmiprvse.exe", "WMI Provider Host"),
        DCOM,
    )
}

fn background_task_host(rng: &mut Rng, user: &str) -> Proc {
    let server = *rng.pick(&[
        "BackgroundTaskHost.WebAccountProvider",
        "CortanaUI.AppXy7vb4pc2dr3kc93kfc509b1d0arkfb2x.mca",
        "App.AppXmtcan0h2tfbfy7k9kn8hbxb6dmzz1zh0.mca",
    ]);
    Proc::person(
        user,
        r"C:\Windows\System32\backgroundTaskHost.exe".to_owned(),
        format!(r#""C:\Windows\system32\backgroundTaskHost.exe" -ServerName:{server}"#),
        PeMeta::windows("backgroundTaskHost.exe", "Background Task Host"),
        DCOM,
    )
}

fn onedrive(rng: &mut Rng, user: &str) -> Proc {
    let image = format!(
        r"{}\AppData\Local\Microsoft\OneDrive\OneDrive.exe",
        home(user)
    );
    let cmd = if rng.chance(500) {
        format!("\"{image}\" /background")
    } else {
        format!("\"{image}\" /updateInstalled /background")
    };
    Proc::person(
        user,
        image,
        cmd,
        PeMeta {
            original: "OneDrive.exe",
            description: "Microsoft OneDrive",
            company: MS,
            product: "Microsoft OneDrive",
        },
        EXPLORER,
    )
}

fn defender_update(rng: &mut Rng, _: &str) -> Proc {
    let version = format!("4.18.{}.{}-0", rng.range(23000, 23120), rng.range(1, 9));
    let image =
        format!(r"C:\ProgramData\Microsoft\Windows Defender\Platform\{version}\MpCmdRun.exe");
    let cmd = format!("\"{image}\" SignatureUpdate -ScheduleJob -RestrictPrivileges -Reinvoke");
    Proc::system(
        image,
        cmd,
        PeMeta::windows(
            "MpCmdRun.exe",
            "Microsoft Malware Protection Command Line Utility",
        ),
        SCHEDULE,
    )
}

fn dotnet_build(rng: &mut Rng, user: &str) -> Proc {
    let project = rng.pick(PROJECTS);
    let cmd = format!(
        r#""C:\Program Files\dotnet\dotnet.exe" build "{}\source\repos\{project}\src\{project}\{project}.csproj" -c Release /p:Platform=x64 /p:Version=1.{}.{} --nologo -v:minimal"#,
        home(user),
        rng.range(0, 20),
        rng.range(0, 400)
    );
    Proc::person(
        user,
        r"C:\Program Files\dotnet\dotnet.exe".to_owned(),
        cmd,
        PeMeta {
            original: ".NET Host",
            description: ".NET Host",
            company: MS,
            product: "Microsoft® .NET",
        },
        CMD,
    )
}

fn taskhostw(rng: &mut Rng, user: &str) -> Proc {
    let arg = *rng.pick(&[
        "",
        "Install $(Arg0)",
        "-RegisterDevice -ProtectionStateChanged -FreeNetworkOnly",
        "NGCKeyPregen",
    ]);
    Proc::person(
        user,
        r"C:\Windows\System32\taskhostw.exe".to_owned(),
        format!("taskhostw.exe {arg}").trim_end().to_owned(),
        PeMeta::windows("taskhostw.exe", "Host Process for Windows Tasks"),
        SCHEDULE,
    )
}
